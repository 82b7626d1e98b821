//! Memory with many idle keep-alive connections: each connection sends one `GET /health`,
//! reads the answer and then stays open; the server's RSS is read while they are all held.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

#[derive(Debug, Clone, serde::Serialize)]
pub struct IdleResult {
    pub connections: usize,
    pub errors: u64,
    pub rss_before_mib: f64,
    pub rss_held_mib: f64,
    pub hwm_mib: f64,
}

async fn health(stream: &mut TcpStream) -> anyhow::Result<()> {
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await?;
    let mut buf = Vec::with_capacity(512);
    loop {
        let mut chunk = [0u8; 512];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed");
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        if !head.starts_with("http/1.1 200") {
            bail!("unexpected answer: {}", head.lines().next().unwrap_or(""));
        }
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .context("no content-length")?
            .trim()
            .parse()?;
        if buf.len() >= end + 4 + length {
            return Ok(());
        }
    }
}

pub async fn run(addr: SocketAddr, server_pid: u32, connections: usize) -> anyhow::Result<IdleResult> {
    let (rss_before_mib, _) = crate::server::memory_mib(server_pid)?;
    let mut streams = Vec::with_capacity(connections);
    let mut errors = 0u64;
    // Open them 100 at a time, like clients arriving, not all in one burst.
    for batch in (0..connections).collect::<Vec<_>>().chunks(100) {
        let mut opening = JoinSet::new();
        for _ in batch {
            opening.spawn(async move {
                let mut stream = TcpStream::connect(addr).await?;
                health(&mut stream).await?;
                anyhow::Ok(stream)
            });
        }
        while let Some(joined) = opening.join_next().await {
            match joined? {
                Ok(stream) => streams.push(stream),
                Err(_) => errors += 1,
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss_held_mib, _) = crate::server::memory_mib(server_pid)?;
    // Still open and usable: one more request on every held connection.
    let mut checks = JoinSet::new();
    for mut stream in streams {
        checks.spawn(async move { health(&mut stream).await.map(|()| stream) });
    }
    let mut held = Vec::with_capacity(connections);
    while let Some(joined) = checks.join_next().await {
        match joined? {
            Ok(stream) => held.push(stream),
            Err(_) => errors += 1,
        }
    }
    let (rss_after, hwm_mib) = crate::server::memory_mib(server_pid)?;
    drop(held);
    Ok(IdleResult {
        connections,
        errors,
        rss_before_mib,
        rss_held_mib: rss_held_mib.max(rss_after),
        hwm_mib,
    })
}
