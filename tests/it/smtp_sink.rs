//! A tiny SMTP server on a local socket that keeps every message it receives: enough of
//! RFC 5321 (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT; no TLS, no AUTH) for lettre.
//! Messages are decoded enough for tests: headers, and the text/html parts of a multipart
//! body (7bit, quoted-printable or base64).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub struct Captured {
    pub to: Vec<String>,
    pub raw: String,
}

impl Captured {
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.raw.split("\r\n\r\n").next()?;
        let prefix = format!("{}:", name.to_ascii_lowercase());
        head.split("\r\n")
            .find(|line| line.to_ascii_lowercase().starts_with(&prefix))
            .map(|line| line[prefix.len()..].trim().to_owned())
    }

    pub fn subject(&self) -> String {
        self.header("Subject").unwrap_or_default()
    }

    /// The decoded body of the part with `content_type` (e.g. `text/plain`).
    pub fn part(&self, content_type: &str) -> String {
        for part in self.raw.split("\r\n--") {
            let Some((head, body)) = part.split_once("\r\n\r\n") else {
                continue;
            };
            let head_lower = head.to_ascii_lowercase();
            if !head_lower.contains(&format!("content-type: {content_type}")) {
                continue;
            }
            // Drop a trailing boundary line, if any.
            let body = body.split("\r\n--").next().unwrap_or(body);
            if head_lower.contains("content-transfer-encoding: base64") {
                let joined: String = body.split_whitespace().collect();
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(joined)
                    .expect("base64 part");
                return String::from_utf8(bytes).expect("utf-8 part");
            }
            if head_lower.contains("content-transfer-encoding: quoted-printable") {
                return decode_quoted_printable(body);
            }
            return body.to_owned();
        }
        panic!("no {content_type} part in message:\n{}", self.raw);
    }

    pub fn text(&self) -> String {
        self.part("text/plain")
    }

    pub fn html(&self) -> String {
        self.part("text/html")
    }

    /// The first `/verify` link in the text part.
    pub fn link(&self) -> String {
        let text = self.text();
        text.split(|c: char| c.is_whitespace())
            .find(|word| word.starts_with("http") && word.contains("/verify?"))
            .unwrap_or_else(|| panic!("no /verify link in {text}"))
            .to_owned()
    }

    /// The digits after "code: ".
    pub fn code(&self) -> String {
        let text = self.text();
        let at = text.find("code: ").unwrap_or_else(|| panic!("no code in {text}")) + "code: ".len();
        text[at..].chars().take_while(char::is_ascii_digit).collect()
    }
}

fn decode_quoted_printable(body: &str) -> String {
    let joined = body.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 3 <= bytes.len()
            && let Some(byte) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).expect("utf-8 part")
}

#[derive(Clone)]
pub struct SmtpSink {
    pub port: u16,
    messages: Arc<Mutex<Vec<Captured>>>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        SmtpSink::start_slow(Duration::ZERO).await
    }

    /// A sink that takes `delay` to accept each message, like a distant mail server.
    pub async fn start_slow(delay: Duration) -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind SMTP sink");
        let port = listener.local_addr().expect("sink address").port();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let store = messages.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let _ = serve(socket, store, delay).await;
                });
            }
        });
        SmtpSink { port, messages }
    }

    pub fn messages(&self) -> Vec<Captured> {
        self.messages.lock().expect("sink lock").clone()
    }

    pub fn to(&self, address: &str) -> Vec<Captured> {
        self.messages()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(address)))
            .collect()
    }

    /// The newest message to `address` (sending is synchronous with the request, so it is
    /// there when the response is; the short wait only guards against scheduling).
    pub async fn last_to(&self, address: &str) -> Captured {
        for _ in 0..50 {
            if let Some(message) = self.to(address).pop() {
                return message;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "no mail to {address}; have {:?}",
            self.messages().iter().map(|m| &m.to).collect::<Vec<_>>()
        );
    }
}

async fn serve(
    socket: tokio::net::TcpStream,
    store: Arc<Mutex<Vec<Captured>>>,
    delay: Duration,
) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink ESMTP ready\r\n").await?;
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_ascii_uppercase();
        let reply: &[u8] = if command.starts_with("EHLO") {
            b"250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
        } else if command.starts_with("HELO") || command.starts_with("NOOP") {
            b"250 ok\r\n"
        } else if command.starts_with("MAIL FROM") || command.starts_with("RSET") {
            to.clear();
            b"250 ok\r\n"
        } else if command.starts_with("RCPT TO") {
            let address = line.trim_end()[8..]
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>');
            to.push(address.to_owned());
            b"250 ok\r\n"
        } else if command == "DATA" {
            write.write_all(b"354 go ahead\r\n").await?;
            let mut raw = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                let unstuffed = line.strip_prefix('.').unwrap_or(&line);
                raw.push_str(unstuffed);
            }
            store.lock().expect("sink lock").push(Captured {
                to: std::mem::take(&mut to),
                raw,
            });
            tokio::time::sleep(delay).await;
            b"250 queued\r\n"
        } else if command.starts_with("QUIT") {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"502 not implemented\r\n"
        };
        write.write_all(reply).await?;
    }
}
