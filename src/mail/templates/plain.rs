//! Plain text from what an HTML template wrote: the subject line, the built-in text parts, and
//! the text part derived from a configured HTML template.

/// Decodes the character references an HTML template's escaping writes (`&amp;`, `&#34;`,
/// `&#43;`, ...) and the common named ones, for text that is not HTML. Anything else is
/// left as it is.
pub(super) fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let decoded = rest
            .find(';')
            .filter(|end| *end <= 10)
            .and_then(|end| entity(&rest[1..end]).map(|c| (c, end)));
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<char> {
    let code = if let Some(hex) = name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
        u32::from_str_radix(hex, 16).ok()?
    } else if let Some(decimal) = name.strip_prefix('#') {
        decimal.parse().ok()?
    } else {
        return match name {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some(' '),
            _ => None,
        };
    };
    char::from_u32(code)
}

/// A readable plain-text version of an HTML body: tags dropped, block ends become line
/// breaks, each link's address follows its text.
pub(super) fn html_to_text(html: &str) -> String {
    let mut text = String::new();
    let mut rest = html;
    let mut pending_href: Option<String> = None;
    while let Some(open) = rest.find('<') {
        text.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('>') else {
            rest = &rest[open..];
            break;
        };
        let tag = &rest[open + 1..open + close];
        let name = tag_name(tag);
        let closing = tag.starts_with('/');
        rest = &rest[open + close + 1..];
        match (name.as_str(), closing) {
            ("style" | "script" | "head" | "title", false) => {
                let end = format!("</{name}");
                rest = rest.find(&end).map_or("", |i| &rest[i..]);
            }
            ("a", false) => pending_href = attribute(tag, "href"),
            ("a", true) => {
                if let Some(href) = pending_href.take() {
                    text.push_str(&format!(" ( {href} )"));
                }
            }
            ("br" | "p" | "div" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "li" | "tr" | "table", _) => {
                text.push('\n')
            }
            _ => {}
        }
    }
    text.push_str(rest);
    let text = decode_entities(&text);
    let mut lines: Vec<&str> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() && lines.last().is_none_or(|l| l.is_empty()) {
            continue;
        }
        lines.push(line);
    }
    let mut out = lines.join("\n").trim().to_owned();
    out.push('\n');
    out
}

fn tag_name(tag: &str) -> String {
    tag.trim_start_matches('/')
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase()
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let at = lower.find(&format!("{name}="))? + name.len() + 1;
    let raw = &tag[at..];
    let value = match raw.chars().next()? {
        quote @ ('"' | '\'') => raw[1..].split(quote).next()?,
        _ => raw.split_whitespace().next()?,
    };
    Some(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_from_html_escaping_are_decoded() {
        assert_eq!(
            decode_entities(
                "Tom &amp; &#34;Jerry&#34; &#39;n&#39; &#43;1 &lt;b&gt; &#x41;&nbsp;&unknown; & x &#xFFFFFFF;"
            ),
            "Tom & \"Jerry\" 'n' +1 <b> A &unknown; & x &#xFFFFFFF;"
        );
    }

    #[test]
    fn links_follow_their_text() {
        let html =
            "<style>p{}</style><h2>Hi &amp; welcome</h2><p>Go <a href=\"https://x.test/v?a=1&amp;b=2\">here</a></p>";
        assert_eq!(
            html_to_text(html),
            "Hi & welcome\n\nGo here ( https://x.test/v?a=1&b=2 )\n"
        );
    }
}
