//! One HTTP/1.1 keep-alive connection per virtual client, written and read in the client's own
//! task. The load generator shares the two cores with the server and Postgres, so every
//! microsecond it spends is taken from them; pgbench's C client, on the baseline's side, is
//! nearly free. hyper's client needs a second task per connection (the request goes to it and
//! the answer comes back through channels and wake-ups); this one writes the request, then
//! reads until the `Content-Length` of the answer is in, which is all a benchmark needs.

use std::net::SocketAddr;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Conn {
    addr: SocketAddr,
    stream: TcpStream,
    /// The request being written, reused between requests.
    request: Vec<u8>,
    /// Bytes read and not yet consumed (one answer at a time: no pipelining).
    received: Vec<u8>,
}

pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            addr,
            stream,
            request: Vec::with_capacity(1024),
            received: Vec::with_capacity(8192),
        })
    }

    /// Opens a new connection after a transport error.
    pub async fn reconnect(&mut self) -> anyhow::Result<()> {
        *self = Conn::connect(self.addr).await?;
        Ok(())
    }

    pub async fn get(&mut self, path: &str, bearer: Option<&str>) -> anyhow::Result<Reply> {
        self.send("GET", path, bearer, &[]).await
    }

    pub async fn post_json(&mut self, path: &str, body: &serde_json::Value) -> anyhow::Result<Reply> {
        let body = serde_json::to_vec(body)?;
        self.send("POST", path, None, &body).await
    }

    async fn send(&mut self, method: &str, path: &str, bearer: Option<&str>, body: &[u8]) -> anyhow::Result<Reply> {
        use std::io::Write as _;
        self.request.clear();
        write!(
            self.request,
            "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            body.len()
        )?;
        if let Some(token) = bearer {
            write!(self.request, "authorization: Bearer {token}\r\n")?;
        }
        self.request.extend_from_slice(b"\r\n");
        self.request.extend_from_slice(body);
        self.stream.write_all(&self.request).await?;
        self.read_reply().await
    }

    async fn read_reply(&mut self) -> anyhow::Result<Reply> {
        loop {
            if let Some((head_len, status, body_len)) = parse_head(&self.received)? {
                let end = head_len + body_len;
                while self.received.len() < end {
                    self.fill().await?;
                }
                let body = self.received[head_len..end].to_vec();
                self.received.drain(..end);
                return Ok(Reply { status, body });
            }
            self.fill().await?;
        }
    }

    async fn fill(&mut self) -> anyhow::Result<()> {
        self.received.reserve(8192);
        if self.stream.read_buf(&mut self.received).await? == 0 {
            bail!("the server closed the connection");
        }
        Ok(())
    }
}

/// `(length of the head, status, Content-Length)` once the whole head is in `received`.
fn parse_head(received: &[u8]) -> anyhow::Result<Option<(usize, u16, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(received).context("malformed HTTP answer")? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Ok(None),
    };
    let status = response.code.context("no status")?;
    let mut body_len = None;
    for header in response.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            body_len = Some(std::str::from_utf8(header.value)?.trim().parse::<usize>()?);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            bail!("chunked answers are not expected from these endpoints");
        }
    }
    Ok(Some((
        head_len,
        status,
        body_len.context("answer without Content-Length")?,
    )))
}

/// The tokens of a session answer; serde skips the rest of the body without building it.
#[derive(serde::Deserialize)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
}

impl Reply {
    /// The session in a 200 answer, an error naming the status otherwise.
    pub fn tokens(&self) -> anyhow::Result<Tokens> {
        if self.status != 200 {
            bail!("HTTP {}: {}", self.status, String::from_utf8_lossy(&self.body));
        }
        serde_json::from_slice(&self.body).context("the answer is not a session")
    }
}
