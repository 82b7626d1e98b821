//! The listener's defences against slow and numerous clients (issue #14): half-sent requests
//! are cut off after `LATCHKEY_HEADER_READ_TIMEOUT`, idle keep-alive connections after
//! `LATCHKEY_IDLE_TIMEOUT`, and at most `LATCHKEY_MAX_CONNECTIONS` are open at once — while
//! a normal client is still served.
//!
//! These tests are about time itself, so they measure it, with bounds several times wider
//! than what they need on an idle machine.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::TestApp;

/// Half a request: the headers never end.
const HALF_REQUEST: &[u8] = b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: ";

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Waits (up to `limit`) for the server to close `stream`: end of stream or a reset.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // A 408 or other answer before closing is fine; keep reading until the close.
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn a_thousand_half_sent_requests_neither_stay_nor_block_a_normal_client() {
    let app = TestApp::spawn_with(&[("LATCHKEY_HEADER_READ_TIMEOUT", "2s")]).await;
    let opened = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..1000 {
        let mut stream = connect(&app).await;
        stream.write_all(HALF_REQUEST).await.unwrap();
        slow.push(stream);
    }
    let open_time = opened.elapsed();

    // A normal client, while all of them hold their connections.
    let asked = Instant::now();
    let response = app.get("/health").await;
    let answered_in = asked.elapsed();
    assert_eq!(response.status(), 200);
    assert!(
        answered_in < Duration::from_secs(1),
        "a normal client waited {answered_in:?} behind 1000 slow ones"
    );

    // Each half-sent request is cut off soon after the header timeout, not before.
    // One deadline for all of them: on a server without the timeout this fails in 12 s.
    let give_up = opened + Duration::from_secs(12);
    let mut closed = 0;
    for stream in &mut slow {
        let left = give_up.saturating_duration_since(Instant::now());
        if closed_within(stream, left).await {
            closed += 1;
        }
    }
    let all_closed_after = opened.elapsed();
    assert_eq!(closed, 1000, "every half-open connection is closed");
    assert!(
        all_closed_after >= Duration::from_millis(1900),
        "closed after {all_closed_after:?}, before the 2 s header timeout"
    );
    println!(
        "1000 half-open connections opened in {open_time:?}; a normal request answered in \
         {answered_in:?}; all 1000 closed {all_closed_after:?} after the first was opened"
    );
}

#[tokio::test]
async fn a_trickled_request_is_cut_off_even_while_bytes_keep_coming() {
    let app = TestApp::spawn_with(&[("LATCHKEY_HEADER_READ_TIMEOUT", "1s")]).await;
    let mut stream = connect(&app).await;
    let started = Instant::now();
    stream.write_all(HALF_REQUEST).await.unwrap();
    // One byte every 200 ms: never idle, never done.
    let mut cut_off = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if stream.write_all(b"x").await.is_err() {
            cut_off = true;
            break;
        }
    }
    let cut_off = cut_off || closed_within(&mut stream, Duration::from_secs(5)).await;
    assert!(cut_off, "a trickling client keeps its connection forever");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "cut off after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let app = TestApp::spawn_with(&[("LATCHKEY_IDLE_TIMEOUT", "1s"), ("LATCHKEY_HEADER_READ_TIMEOUT", "30s")]).await;
    let mut stream = connect(&app).await;
    let request = b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut buf = vec![0u8; 4096];

    // Two requests on one connection, the second after a short pause: keep-alive works.
    for pause in [Duration::ZERO, Duration::from_millis(300)] {
        tokio::time::sleep(pause).await;
        stream.write_all(request).await.unwrap();
        let n = stream.read(&mut buf).await.unwrap();
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&buf[..n])
        );
    }
    // Then idle: closed after about a second, although the header timeout is 30 s.
    let idle_since = Instant::now();
    assert!(
        closed_within(&mut stream, Duration::from_secs(10)).await,
        "idle connection kept"
    );
    let idle_for = idle_since.elapsed();
    assert!(
        idle_for >= Duration::from_millis(900),
        "closed after {idle_for:?}, before the idle timeout"
    );
}

#[tokio::test]
async fn beyond_the_connection_cap_new_clients_wait_for_a_free_slot() {
    let app = TestApp::spawn_with(&[
        ("LATCHKEY_MAX_CONNECTIONS", "20"),
        ("LATCHKEY_HEADER_READ_TIMEOUT", "2s"),
    ])
    .await;
    let mut slow = Vec::new();
    for _ in 0..20 {
        let mut stream = connect(&app).await;
        stream.write_all(HALF_REQUEST).await.unwrap();
        slow.push(stream);
    }
    // The 21st connection is queued by the kernel, not served, while all 20 slots are held...
    let mut extra = connect(&app).await;
    let asked = Instant::now();
    extra
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let early = tokio::time::timeout(Duration::from_millis(800), extra.read(&mut buf)).await;
    assert!(early.is_err(), "served beyond the cap of 20 open connections");
    // ... and served once the header timeout frees the slots.
    let n = tokio::time::timeout(Duration::from_secs(10), extra.read(&mut buf))
        .await
        .expect("served once slots are free")
        .unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    let waited = asked.elapsed();
    assert!(waited >= Duration::from_millis(1500), "served after {waited:?}");
}
