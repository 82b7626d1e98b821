//! The threads that serve HTTP connections (issue #24). Each runs a single-threaded Tokio
//! runtime of its own; the accepting task hands each new connection to the next thread in
//! turn, and that thread serves it to its end, with hot database connections opened on its
//! own runtime (`db::hot`).
//!
//! Why not Tokio's work-stealing runtime, as before: with it a request's steps hop between
//! worker threads. An idle worker is woken to steal work that is gone by the time it looks,
//! a query's answer arrives on whichever worker polls the sockets, and memory freed on the
//! other worker contends for the allocator's lock. On two cores shared with PostgreSQL that
//! cost a quarter of the server's CPU per `GET /user` (BENCHMARKS.md, "#24"). Here a
//! connection, its requests and their queries stay on one thread. The rest of the server
//! (background tasks, the main connection pool, the metrics endpoint) stays on the main
//! runtime, and the threads use it as any task would.

use std::io;
use std::net::SocketAddr;
use std::thread::JoinHandle;

use axum::Router;
use hyper_util::server::graceful::Watcher;
use tokio::net::TcpStream;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::sync::{OwnedSemaphorePermit, watch};

use crate::config::HttpConfig;

/// An accepted connection with what its serving needs: its slot among the open connections
/// and its part in the graceful shutdown.
pub(super) struct Accepted<S> {
    pub slot: OwnedSemaphorePermit,
    pub stream: S,
    pub peer: SocketAddr,
    pub watcher: Watcher,
}

impl<S> Accepted<S> {
    /// The same connection with its socket converted (between a runtime's and std's).
    fn convert<T>(self, convert: impl FnOnce(S) -> io::Result<T>) -> io::Result<Accepted<T>> {
        Ok(Accepted {
            stream: convert(self.stream)?,
            slot: self.slot,
            peer: self.peer,
            watcher: self.watcher,
        })
    }
}

pub(super) struct HttpThreads {
    queues: Vec<UnboundedSender<Accepted<std::net::TcpStream>>>,
    next: usize,
    threads: Vec<JoinHandle<()>>,
}

impl HttpThreads {
    /// Starts `limits.threads` threads serving `app`; `closing` closes their connections when
    /// its sender goes.
    pub fn start(app: Router, limits: &HttpConfig, closing: watch::Receiver<()>) -> io::Result<HttpThreads> {
        let mut queues = Vec::with_capacity(limits.threads);
        let mut threads = Vec::with_capacity(limits.threads);
        for index in 0..limits.threads {
            let (queue, accepted) = unbounded_channel();
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let (app, limits, closing) = (app.clone(), limits.clone(), closing.clone());
            let thread = std::thread::Builder::new()
                .name(format!("latchkey-http-{index}"))
                .spawn(move || {
                    crate::db::hot::use_set_on_this_thread(index);
                    runtime.block_on(serve_accepted(accepted, app, limits, closing));
                    // Dropping the runtime drops the connections still open: by now the
                    // shutdown's grace has passed and `closing` has fired.
                })?;
            queues.push(queue);
            threads.push(thread);
        }
        Ok(HttpThreads {
            queues,
            next: 0,
            threads,
        })
    }

    /// Gives a connection to the next thread in turn.
    pub fn hand_over(&mut self, accepted: Accepted<TcpStream>) {
        // Off this runtime's poller, to be registered with the serving thread's.
        let accepted = match accepted.convert(TcpStream::into_std) {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::debug!(error = %err, "could not hand an accepted connection over");
                return;
            }
        };
        let queue = &self.queues[self.next];
        self.next = (self.next + 1) % self.queues.len();
        // Fails only if that thread has ended, which closes the connection.
        let _ = queue.send(accepted);
    }

    /// Ends the threads once their connections are gone, and waits for them.
    pub async fn stop(self) {
        drop(self.queues);
        for thread in self.threads {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// A thread's loop: serves each connection it is handed on its own task, until the
/// accepting side goes.
async fn serve_accepted(
    mut accepted: UnboundedReceiver<Accepted<std::net::TcpStream>>,
    app: Router,
    limits: HttpConfig,
    closing: watch::Receiver<()>,
) {
    while let Some(connection) = accepted.recv().await {
        let connection = match connection.convert(TcpStream::from_std) {
            Ok(connection) => connection,
            Err(err) => {
                tracing::debug!(error = %err, "could not serve an accepted connection");
                continue;
            }
        };
        tokio::spawn(super::serve_connection(
            connection,
            app.clone(),
            limits.clone(),
            closing.clone(),
        ));
    }
}
