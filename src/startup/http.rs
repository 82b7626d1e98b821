//! The HTTP listener: HTTP/1.1 connections served by hyper, with the defences `axum::serve`
//! does not offer (issue #14, "slow clients"):
//! - a connection must deliver each request's headers within `header_read_timeout` of its
//!   first byte (of opening, for the first request), so a client trickling half a request
//!   (slowloris) is cut off;
//! - a keep-alive connection idle for `idle_timeout` between requests is closed;
//! - at most `max_connections` are open at once; beyond that the listener stops accepting and
//!   new connections wait in the kernel's accept queue, so a flood cannot exhaust the file
//!   descriptors the database pool needs.
//!
//! On shutdown the listener closes and open connections get `grace` (the longest a request
//! may take, plus a margin) to finish; whatever is left then (a client that stopped reading a
//! response, a half-sent request) is closed, so a stop never hangs.
//!
//! Only HTTP/1.1 is served: browsers speak HTTP/2 only over TLS, which a proxy in front
//! terminates, and supabase-js and GoTrue's clients speak HTTP/1.1 to a plain-HTTP server.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use crate::config::HttpConfig;
use threads::{Accepted, HttpThreads};

mod threads;

/// Serves `app` on `listener` until `shutdown` completes, then lets open requests finish for
/// at most `grace` before closing what is left. Connections are served by `limits.threads`
/// threads of their own (see [`threads`]); this task only accepts them.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpConfig,
    grace: Duration,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    // Dropping the sender tells every connection task to drop its connection.
    let (close_all, closing) = tokio::sync::watch::channel(());
    let mut threads = HttpThreads::start(app, &limits, closing)?;
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = accept(&listener, &slots) => accepted,
        };
        let Some((slot, stream, peer)) = accepted else { continue };
        threads.hand_over(Accepted {
            slot,
            stream,
            peer,
            watcher: graceful.watcher(),
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!(
            "connections still open {} s after the shutdown signal: closing them",
            grace.as_secs_f64()
        );
    }
    drop(close_all);
    threads.stop().await;
    Ok(())
}

/// Serves one connection to its end, on the runtime of the thread it was handed to.
async fn serve_connection(
    accepted: Accepted<TcpStream>,
    app: Router,
    limits: HttpConfig,
    mut closing: tokio::sync::watch::Receiver<()>,
) {
    let Accepted {
        slot,
        stream,
        peer,
        watcher,
    } = accepted;
    let timeouts = Timeouts::new(&limits);
    let service = request_service(app, peer, timeouts.clone());
    let connection = hyper::server::conn::http1::Builder::new()
        // Off: hyper's own header timer also runs while a keep-alive connection is idle,
        // so it cannot tell a slow client from an idle one; `Guarded` does both.
        .header_read_timeout(None)
        .serve_connection(TokioIo::new(Guarded::new(stream, timeouts)), service);
    tokio::select! {
        // Errors here are the client's: a reset, a timeout, a malformed request (hyper
        // has answered 400 where it could).
        ended = watcher.watch(connection) => if let Err(err) = ended {
            tracing::debug!(error = %err, "connection ended with an error");
        },
        _ = closing.changed() => {}
    }
    drop(slot);
}

/// The next connection, once a slot is free. `None` after a failed accept (retried by the
/// caller's loop).
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> Option<(tokio::sync::OwnedSemaphorePermit, TcpStream, SocketAddr)> {
    // The semaphore is never closed, so acquiring only waits.
    let slot = slots.clone().acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((stream, peer)) => {
            // Small JSON answers: send them at once rather than wait for more to coalesce.
            let _ = stream.set_nodelay(true);
            Some((slot, stream, peer))
        }
        Err(err) => {
            // Out of file descriptors and the like: wait, as axum::serve does, rather than spin.
            tracing::error!(error = %err, "accepting a connection failed");
            tokio::time::sleep(Duration::from_millis(100)).await;
            None
        }
    }
}

/// The per-connection service: the router with the peer address as `ConnectInfo` (as
/// `into_make_service_with_connect_info` provides it), marking the connection busy while a
/// request is handled.
fn request_service(
    app: Router,
    peer: SocketAddr,
    timeouts: Timeouts,
) -> impl hyper::service::Service<
    hyper::Request<Incoming>,
    Response = axum::response::Response,
    Error = Infallible,
    Future = impl Future<Output = Result<axum::response::Response, Infallible>> + Send,
> + Clone {
    hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        timeouts.request_started();
        let mut request = request.map(axum::body::Body::new);
        request.extensions_mut().insert(ConnectInfo(peer));
        let app = app.clone();
        let timeouts = timeouts.clone();
        async move {
            let response = app.oneshot(request).await;
            timeouts.request_finished();
            response
        }
    })
}

/// Where a connection is in its life, for its timeouts.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for a request's headers, which began to arrive (or the connection opened) at
    /// `since`.
    AwaitingHead { since: Instant },
    /// A request is being handled; `GOTRUE_API_MAX_REQUEST_DURATION` bounds it.
    Busy,
    /// Between requests since `since`.
    Idle { since: Instant },
}

/// The phase of one connection, shared by its socket wrapper and its service.
#[derive(Clone)]
struct Timeouts {
    phase: Arc<Mutex<PhaseState>>,
    header_read: Duration,
    idle: Duration,
}

struct PhaseState {
    phase: Phase,
    /// The reader parked while the connection was busy, when no deadline applied: woken when
    /// the request ends so that it arms the idle deadline.
    parked_reader: Option<Waker>,
}

impl Timeouts {
    fn new(limits: &HttpConfig) -> Timeouts {
        Timeouts {
            phase: Arc::new(Mutex::new(PhaseState {
                phase: Phase::AwaitingHead { since: Instant::now() },
                parked_reader: None,
            })),
            header_read: limits.header_read_timeout,
            idle: limits.idle_timeout,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, PhaseState> {
        self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn request_started(&self) {
        self.state().phase = Phase::Busy;
    }

    fn request_finished(&self) {
        let mut state = self.state();
        state.phase = Phase::Idle { since: Instant::now() };
        if let Some(reader) = state.parked_reader.take() {
            reader.wake();
        }
    }

    /// Bytes arrived: on an idle connection they begin the next request's headers.
    fn bytes_arrived(&self) {
        let mut state = self.state();
        if let Phase::Idle { .. } = state.phase {
            state.phase = Phase::AwaitingHead { since: Instant::now() };
        }
    }

    /// When the connection must be closed if nothing changes, and why; with no deadline
    /// (a request is being handled) the reader is parked until the request ends.
    fn deadline(&self, reader: &Waker) -> Option<(Instant, &'static str)> {
        let mut state = self.state();
        match state.phase {
            Phase::AwaitingHead { since } => {
                Some((later(since, self.header_read), "request headers not received in time"))
            }
            Phase::Busy => {
                state.parked_reader = Some(reader.clone());
                None
            }
            Phase::Idle { since } => Some((later(since, self.idle), "idle keep-alive connection")),
        }
    }
}

/// `since + wait`, or a moment decades away when that is past what the clock can hold (a
/// timeout of `1e19` seconds is accepted and means "never"; the plain sum would panic).
fn later(since: Instant, wait: Duration) -> Instant {
    since
        .checked_add(wait)
        .unwrap_or_else(|| since + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// A socket that fails its reads once its connection's deadline has passed, which makes
/// hyper close the connection.
struct Guarded {
    stream: TcpStream,
    timeouts: Timeouts,
    timer: Pin<Box<Sleep>>,
}

impl Guarded {
    fn new(stream: TcpStream, timeouts: Timeouts) -> Guarded {
        Guarded {
            stream,
            timeouts,
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
        }
    }
}

impl AsyncRead for Guarded {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let filled = buf.filled().len();
        match Pin::new(&mut self.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) if buf.filled().len() > filled => {
                self.timeouts.bytes_arrived();
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                let Some((deadline, reason)) = self.timeouts.deadline(cx.waker()) else {
                    return Poll::Pending;
                };
                if self.timer.deadline() != deadline {
                    self.timer.as_mut().reset(deadline);
                }
                // Registers the wake-up at the deadline, or reports that it has passed.
                match self.timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, reason))),
                    Poll::Pending => Poll::Pending,
                }
            }
            other => other,
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
