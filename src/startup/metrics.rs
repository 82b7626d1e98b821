//! The Prometheus endpoint: `GET /metrics` on its own listener
//! (`GOTRUE_METRICS_OTEL_EXPORTER_PROMETHEUS_HOST`/`_PORT`, GoTrue's names), apart from the
//! API so that it is never reachable through the API's proxy. Served with the API's connection
//! defences (header timeout, connection cap).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;

use crate::config::{HttpConfig, MetricsConfig};
use crate::telemetry::metrics::{Sources, install};

/// How often histograms are folded in when nobody scrapes, so they do not grow.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

pub struct Endpoint {
    listener: TcpListener,
    handle: PrometheusHandle,
}

impl Endpoint {
    /// Installs the recorder and binds the listener (a taken port stops start-up here).
    pub async fn bind(config: &MetricsConfig) -> anyhow::Result<Endpoint> {
        let handle = install()?;
        let host = config.host.trim_start_matches('[').trim_end_matches(']');
        let listener = TcpListener::bind((host, config.port))
            .await
            .with_context(|| format!("binding the metrics endpoint to {}:{}", config.host, config.port))?;
        let endpoint = Endpoint { listener, handle };
        tracing::info!(address = %endpoint.local_addr(), "Prometheus metrics at /metrics");
        Ok(endpoint)
    }

    pub fn local_addr(&self) -> SocketAddr {
        // Bound above; reading its address only fails on a closed socket.
        self.listener.local_addr().expect("bound listener has an address")
    }

    /// Serves until `stopped` completes.
    pub async fn serve(self, sources: Sources, limits: HttpConfig, stopped: impl Future<Output = ()> + Send) {
        let upkeep = {
            let handle = self.handle.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(UPKEEP_INTERVAL);
                loop {
                    every.tick().await;
                    handle.run_upkeep();
                }
            })
        };
        let handle = self.handle;
        let app = Router::new().route(
            "/metrics",
            get(move || async move {
                sources.refresh();
                ([(CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()).into_response()
            }),
        );
        // One thread is plenty for a scraper every few seconds.
        let limits = HttpConfig { threads: 1, ..limits };
        if let Err(err) = super::http::serve(self.listener, app, limits, Duration::from_secs(1), stopped).await {
            tracing::error!(error = %err, "the metrics endpoint could not start its thread");
        }
        upkeep.abort();
    }
}
