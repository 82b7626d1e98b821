//! Reading the mail folder back for `latchkey mail`: the newest messages first, each with its
//! date, recipient, subject and the links of its text.

use std::path::{Path, PathBuf};

use mail_parser::MessageParser;

use super::is_mail_file;

/// One stored message, as `latchkey mail` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMail {
    pub file: PathBuf,
    pub date: String,
    pub to: String,
    pub subject: String,
    /// Every http(s) address in the text, in order, without repeats.
    pub links: Vec<String>,
}

/// The newest `limit` messages of `dir`, newest first. A missing folder holds none.
pub fn recent(dir: &Path, limit: usize) -> std::io::Result<Vec<StoredMail>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    let mut names: Vec<String> = entries
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| is_mail_file(name))
        .collect();
    // The names begin with the time they were written.
    names.sort_unstable_by(|a, b| b.cmp(a));
    names
        .into_iter()
        .take(limit)
        .map(|name| read(&dir.join(name)))
        .collect()
}

fn read(file: &Path) -> std::io::Result<StoredMail> {
    let raw = std::fs::read(file)?;
    let unreadable = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} is not a mail", file.display()),
        )
    };
    let message = MessageParser::default().parse(&raw).ok_or_else(unreadable)?;
    let text = message.body_text(0).unwrap_or_default();
    Ok(StoredMail {
        file: file.to_owned(),
        date: message.date().map(|d| d.to_rfc3339()).unwrap_or_default(),
        to: message
            .to()
            .and_then(|to| to.first())
            .and_then(|addr| addr.address())
            .unwrap_or_default()
            .to_owned(),
        subject: message.subject().unwrap_or_default().to_owned(),
        links: links(&text),
    })
}

fn links(text: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        let word = word.trim_matches(|c: char| matches!(c, '(' | ')' | '<' | '>' | '"' | '\'' | ',' | '.'));
        if (word.starts_with("http://") || word.starts_with("https://")) && !found.iter().any(|l| l == word) {
            found.push(word.to_owned());
        }
    }
    found
}

/// The listing `latchkey mail` prints. Subjects and links may carry what users typed (their
/// metadata, through a template): control characters are shown as `?`, so that no mail can
/// send escape sequences to the terminal.
pub fn describe(dir: &Path, mails: &[StoredMail]) -> String {
    if mails.is_empty() {
        return format!("No mail in {}/ yet.\n", dir.display());
    }
    let shown = |text: &str| text.replace(|c: char| c.is_control(), "?");
    let mut out = String::new();
    for mail in mails {
        out.push_str(&format!(
            "{}  to {}\n  {}\n",
            mail.date,
            shown(&mail.to),
            shown(&mail.subject)
        ));
        for link in &mail.links {
            out.push_str(&format!("  {}\n", shown(link)));
        }
        out.push_str(&format!("  ({})\n\n", mail.file.display()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_reaches_the_terminal_as_a_control_character() {
        let mail = StoredMail {
            file: PathBuf::from("m.eml"),
            date: "2026-12-05T01:25:00Z".into(),
            to: "a@example.com".into(),
            subject: "Hi \u{1b}]0;pwned\u{7}\u{1b}[2J".into(),
            links: vec!["https://x.test/\u{1b}[31m".into()],
        };
        let listing = describe(Path::new("mail"), &[mail]);
        assert!(!listing.contains('\u{1b}') && !listing.contains('\u{7}'), "{listing:?}");
        assert!(listing.contains("Hi ?]0;pwned??[2J"), "{listing}");
    }

    #[test]
    fn links_are_found_once_each_without_surrounding_punctuation() {
        let text = "Go here ( https://a.test/verify?token=x&type=signup ).\n\
                    Or https://a.test/verify?token=x&type=signup, or <http://b.test/p>.";
        assert_eq!(
            links(text),
            ["https://a.test/verify?token=x&type=signup", "http://b.test/p"]
        );
    }
}
