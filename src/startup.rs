//! Building and running the server: database (given or private), migrations, the signing
//! secret and keys, listener, graceful shutdown.

mod healthcheck;
mod http;
mod metrics;
mod secret;
mod signing;

pub use healthcheck::healthcheck;
pub use secret::{SECRET_FILE, jwt_secret};
pub use signing::{KEYS_FILE, jwt_keys};

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
pub use crate::config::DEV_DATA_DIR;

/// How long, after the last request could have timed out, shutdown waits for connections
/// before closing them.
const SHUTDOWN_MARGIN: std::time::Duration = std::time::Duration::from_secs(1);

pub struct Application {
    listener: TcpListener,
    state: AppState,
    /// The private cluster when no `DATABASE_URL` was given; stopped when the server stops.
    dev_cluster: Option<DevCluster>,
    /// The Prometheus endpoint's listener, with `GOTRUE_METRICS_ENABLED`.
    metrics: Option<metrics::Endpoint>,
}

/// Choices of `latchkey serve` that are not configuration.
#[derive(Debug, Clone, Copy)]
pub struct BuildOptions {
    /// Apply the migrations first (`false`: `serve --no-migrate`, for a runtime role that may
    /// not change the schema; the server then refuses to start on a database that lacks some).
    pub migrate: bool,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions { migrate: true }
    }
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        Application::build_with(config, BuildOptions::default()).await
    }

    pub async fn build_with(config: Config, options: BuildOptions) -> anyhow::Result<Application> {
        for warning in &config.warnings {
            tracing::warn!("{warning}");
        }
        // Before anything starts: a server that may not run should not touch the database.
        let (secret, keys) = jwt_keys(&config, Path::new(DEV_DATA_DIR))?;
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
        } else if options.migrate {
            crate::db::migrate(pool.sqlx(), &config.db_namespace).await?;
        } else {
            refuse_pending_migrations(pool.sqlx()).await?;
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
        let metrics = match config.metrics.enabled {
            true => Some(metrics::Endpoint::bind(&config.metrics).await?),
            false => None,
        };
        let state = AppState::new(config, pool, external_url, &secret, keys)?;
        // Mail templates configured as URLs: fetched before the first request can need them.
        state.outbox.templates().start().await;
        Ok(Application {
            listener,
            state,
            dev_cluster,
            metrics,
        })
    }

    /// Where the Prometheus endpoint listens, when metrics are on.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(metrics::Endpoint::local_addr)
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
            metrics,
        } = self;
        let cleanup = Cleanup::start(state.db.clone());
        let limits = state.config.http.clone();
        // Every request has answered (or timed out) by then; what is left is idle or stuck.
        let grace = state.config.max_request_duration.saturating_add(SHUTDOWN_MARGIN);
        let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
        let metrics = metrics.map(|endpoint| {
            let sources = crate::telemetry::metrics::Sources {
                db: state.db.sqlx().clone(),
                hot: state.hot.clone(),
                hasher: state.hasher.clone(),
            };
            let stopped = async move {
                let _ = metrics_stopped.await;
            };
            tokio::spawn(endpoint.serve(sources, limits.clone(), stopped))
        });
        let served = http::serve(listener, crate::api::app(state), limits, grace, shutdown)
            .await
            .context("starting the HTTP threads");
        let _ = stop_metrics.send(());
        if let Some(task) = metrics {
            let _ = task.await;
        }
        // Before the private cluster goes, or the task would log a failed statement.
        cleanup.stop().await;
        if let Some(mut cluster) = dev_cluster {
            // pg_ctl blocks; keep it off the async executor.
            let _ = tokio::task::spawn_blocking(move || cluster.stop()).await;
        }
        served
    }
}

/// `serve --no-migrate`: a database missing some of this version's migrations would fail in
/// the middle of requests; say so now, and how to fix it.
async fn refuse_pending_migrations(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    let pending = crate::db::pending_migrations(pool)
        .await
        .context("checking the applied migrations (the role needs SELECT on _sqlx_migrations)")?;
    if let Some(first) = pending.first() {
        anyhow::bail!(
            "--no-migrate: the database lacks {} migration(s) of this version, the first being {first}; \
             run `latchkey migrate` as a role allowed to change the schema, then start again",
            pending.len()
        );
    }
    Ok(())
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
