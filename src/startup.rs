//! Building and running the server: database (given or private), migrations, the signing
//! secret, listener, graceful shutdown.

mod http;
mod secret;

pub use secret::{SECRET_FILE, jwt_secret};

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use url::Url;

use crate::api::state::AppState;
use crate::cleanup::Cleanup;
use crate::config::Config;
use crate::devdb::DevCluster;

/// Where the zero-setup mode keeps its private PostgreSQL cluster.
pub const DEV_DATA_DIR: &str = ".latchkey";

pub struct Application {
    listener: TcpListener,
    state: AppState,
    /// The private cluster when no `DATABASE_URL` was given; stopped when the server stops.
    dev_cluster: Option<DevCluster>,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        // Before anything starts: a server that may not run should not touch the database.
        let secret = jwt_secret(&config, Path::new(DEV_DATA_DIR))?;
        let (database_url, dev_cluster) = match &config.database_url {
            Some(url) => (url.expose_secret().to_owned(), None),
            None => {
                tracing::info!("DATABASE_URL is not set: starting a private PostgreSQL cluster in {DEV_DATA_DIR}/");
                let cluster = tokio::task::spawn_blocking(|| DevCluster::start(Path::new(DEV_DATA_DIR))).await??;
                (cluster.url("postgres"), Some(cluster))
            }
        };
        let pool = crate::db::pool(&config, &database_url)?;
        if pool.behind_transaction_pooler() {
            crate::db::check_migrated(&pool, &config.db_namespace).await?;
        } else {
            crate::db::migrate(pool.sqlx(), &config.db_namespace).await?;
        }

        let address = format!("{}:{}", config.host, config.port);
        let listener = TcpListener::bind(&address)
            .await
            .with_context(|| format!("binding {address}"))?;
        let local = listener.local_addr()?;
        let external_url = match &config.api_external_url {
            Some(url) => url.clone(),
            None => default_external_url(local)?,
        };
        let state = AppState::new(config, pool, external_url, &secret)?;
        Ok(Application {
            listener,
            state,
            dev_cluster,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        // The listener is bound; reading its address only fails on a closed socket.
        self.listener.local_addr().expect("bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves (and runs the database cleanup) until `shutdown` completes, then finishes
    /// in-flight requests and stops the cleanup and the private cluster if there is one.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Application {
            listener,
            state,
            dev_cluster,
        } = self;
        let cleanup = Cleanup::start(state.db.clone());
        let limits = state.config.http.clone();
        http::serve(listener, crate::api::app(state), limits, shutdown).await;
        // Before the private cluster goes, or the task would log a failed statement.
        cleanup.stop().await;
        if let Some(mut cluster) = dev_cluster {
            // pg_ctl blocks; keep it off the async executor.
            let _ = tokio::task::spawn_blocking(move || cluster.stop()).await;
        }
        Ok(())
    }
}

fn default_external_url(local: SocketAddr) -> anyhow::Result<Url> {
    let host = if local.ip().is_unspecified() {
        "localhost".to_owned()
    } else {
        local.ip().to_string()
    };
    let host = if host.contains(':') { format!("[{host}]") } else { host };
    Ok(Url::parse(&format!("http://{host}:{}", local.port()))?)
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
