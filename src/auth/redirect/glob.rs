//! The allow-list globs of `GOTRUE_URI_ALLOW_LIST`, with the semantics GoTrue gets from
//! gobwas/glob compiled with `.` and `/` as separators: `*` matches within one label or path
//! segment, `**` across them, `?` one character that is not a separator, `{a,b}` either
//! alternative (nested braces too), `\` takes the next character literally. Character
//! classes (`[a-z]`) are not supported: `[` and `]` are literal, as before.
//!
//! Each pattern is translated once, at start-up, into a `regex::Regex`. The regex crate
//! guarantees matching in time linear in the input whatever the pattern, so a pattern with
//! many `*`/`**` cannot make a request hang the way a backtracking matcher can.

use regex::Regex;

/// One compiled allow-list pattern.
#[derive(Debug, Clone)]
pub struct Glob {
    regex: Regex,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GlobError {
    #[error("a `{{` is never closed")]
    UnclosedBrace,
    #[error("the pattern ends with a lone `\\`")]
    TrailingEscape,
    #[error("the pattern is too large")]
    TooLarge,
}

impl Glob {
    pub fn compile(pattern: &str) -> Result<Glob, GlobError> {
        let regex = Regex::new(&translate(pattern)?).map_err(|_| GlobError::TooLarge)?;
        Ok(Glob { regex })
    }

    /// Whether the whole of `text` matches.
    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }
}

/// The glob as an anchored regular expression.
fn translate(pattern: &str) -> Result<String, GlobError> {
    // `(?s)`: `.` in `**` also matches a newline (never in a judged URL, but a glob's `**`
    // means "anything").
    let mut out = String::from("(?s)^(?:");
    let mut open_braces = 0usize;
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                while chars.next_if_eq(&'*').is_some() {}
                out.push_str(".*");
            }
            '*' => out.push_str("[^./]*"),
            '?' => out.push_str("[^./]"),
            '{' => {
                open_braces += 1;
                out.push_str("(?:");
            }
            '}' if open_braces > 0 => {
                open_braces -= 1;
                out.push(')');
            }
            ',' if open_braces > 0 => out.push('|'),
            '\\' => {
                let escaped = chars.next().ok_or(GlobError::TrailingEscape)?;
                out.push_str(&regex::escape(escaped.encode_utf8(&mut [0; 4])));
            }
            literal => out.push_str(&regex::escape(literal.encode_utf8(&mut [0; 4]))),
        }
    }
    if open_braces > 0 {
        return Err(GlobError::UnclosedBrace);
    }
    out.push_str(")$");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, text: &str) -> bool {
        Glob::compile(pattern).unwrap().is_match(text)
    }

    #[test]
    fn gobwas_semantics_with_dot_and_slash_separators() {
        for (pattern, text, expected) in [
            ("a*c", "abc", true),
            ("a*c", "ac", true),
            ("a*c", "a/c/c", false),
            ("a*c", "a.c", false),
            ("a**c", "a/b.c", true),
            ("a***c", "a/b.c", true),
            ("a?c", "abc", true),
            ("a?c", "a.c", false),
            ("a?c", "a/c", false),
            ("a?c", "ac", false),
            ("https://{a,b}.x.io", "https://b.x.io", true),
            ("https://{a,b}.x.io", "https://c.x.io", false),
            ("{a,{b,c}d}", "cd", true),
            ("{a,{b,c}d}", "c", false),
            ("x,y", "x,y", true),
            ("a}", "a}", true),
            ("a\\*", "a*", true),
            ("a\\*", "ab", false),
            ("a\\{b,c}", "a{b,c}", true),
            ("http://[::1]:3000/*", "http://[::1]:3000/cb", true),
            ("a.c", "abc", false),
            ("a+c", "aac", false),
            ("^a$", "^a$", true),
            ("https://*.example.org/**", "https://x.example.org/a/b?c=d", true),
            ("https://*.example.org/**", "https://a.b.example.org/", false),
            ("https://*.example.org/**", "https://evil.com/.example.org/", false),
            (
                "https://*-myteam.vercel.app/**",
                "https://app-git-main-myteam.vercel.app/x",
                true,
            ),
            (
                "https://*-myteam.vercel.app/**",
                "https://x.evil-myteam.vercel.app/x",
                false,
            ),
        ] {
            assert_eq!(matches(pattern, text), expected, "{pattern} ~ {text}");
        }
    }

    #[test]
    fn bad_patterns_are_errors() {
        assert_eq!(
            Glob::compile("https://{a,b.x.io").unwrap_err(),
            GlobError::UnclosedBrace
        );
        assert_eq!(Glob::compile("https://x.io/\\").unwrap_err(), GlobError::TrailingEscape);
    }

    /// The old hand-written matcher backtracked: this pattern against this input took
    /// time exponential in the number of stars (it would not finish). The regex runs in
    /// time linear in the input, so the test simply completes.
    #[test]
    fn many_stars_against_a_long_non_matching_input_complete() {
        let pattern = format!("https://{}x", "*a**".repeat(15));
        let glob = Glob::compile(&pattern).unwrap();
        let text = format!("https://{}", "a".repeat(20_000));
        assert!(!glob.is_match(&text));
        let dotted = format!("https://{}", "a.a/".repeat(5_000));
        assert!(!glob.is_match(&dotted));
    }
}
