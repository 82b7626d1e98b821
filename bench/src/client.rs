//! One HTTP/1.1 keep-alive connection per virtual client, on hyper's low-level client so that
//! the load generator costs as little CPU as possible (it shares the cores with the server and
//! Postgres).

use std::net::SocketAddr;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

pub struct Conn {
    addr: SocketAddr,
    sender: SendRequest<Full<Bytes>>,
}

pub struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Conn { addr, sender })
    }

    /// Opens a new connection after a transport error.
    pub async fn reconnect(&mut self) -> anyhow::Result<()> {
        *self = Conn::connect(self.addr).await?;
        Ok(())
    }

    pub async fn get(&mut self, path: &str, bearer: Option<&str>) -> anyhow::Result<Reply> {
        self.send(Method::GET, path, bearer, Bytes::new()).await
    }

    pub async fn post_json(&mut self, path: &str, body: &serde_json::Value) -> anyhow::Result<Reply> {
        self.send(Method::POST, path, None, Bytes::from(serde_json::to_vec(body)?))
            .await
    }

    async fn send(&mut self, method: Method, path: &str, bearer: Option<&str>, body: Bytes) -> anyhow::Result<Reply> {
        self.sender.ready().await?;
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, "127.0.0.1")
            .header(CONTENT_TYPE, "application/json");
        if let Some(token) = bearer {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let response = self.sender.send_request(request.body(Full::new(body))?).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Reply { status, body })
    }
}

impl Reply {
    /// The body as JSON when the status is 200, an error naming the status otherwise.
    pub fn json_ok(&self) -> anyhow::Result<serde_json::Value> {
        if self.status != StatusCode::OK {
            bail!("HTTP {}: {}", self.status, String::from_utf8_lossy(&self.body));
        }
        Ok(serde_json::from_slice(&self.body)?)
    }

    /// A string field of a 200 JSON body.
    pub fn field(&self, name: &str) -> anyhow::Result<String> {
        self.json_ok()?
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .with_context(|| format!("response has no {name}"))
    }
}
