//! A small backend that stores notes under row-level security, with Latchkey's tokens.
//!
//! ```sh
//! latchkey migrate                     # once: roles and auth.uid() in DATABASE_URL
//! DATABASE_URL=postgres://... GOTRUE_JWT_SECRET=... PORT=8080 \
//!     cargo run --example notes-api
//! # or, when Latchkey signs with GOTRUE_JWT_KEYS, verify through its JWKS:
//! DATABASE_URL=... JWKS_URL=http://localhost:9999/auth/v1/.well-known/jwks.json \
//!     cargo run --example notes-api
//! curl -H "Authorization: Bearer $ACCESS_TOKEN" localhost:8080/notes
//! ```
//!
//! `GET /notes`, `POST /notes {"body"}`, `PATCH /notes/{id} {"body"}`, `DELETE /notes/{id}`;
//! each user sees only their own notes, `anon` none, a `service_role` key all of them.

mod app;

use anyhow::Context;
use latchkey::rls::Rls;
use secrecy::SecretString;
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();

    let database_url = std::env::var("DATABASE_URL").context("DATABASE_URL must be set")?;
    let rls = match std::env::var("JWKS_URL") {
        // Latchkey's public keys, fetched and cached.
        Ok(url) => Rls::from_jwks_url(url, latchkey::rls::DEFAULT_ROLES)?,
        // The secret Latchkey signs with (PostgREST's PGRST_JWT_SECRET is the same value).
        Err(_) => Rls::with_default_roles(&SecretString::from(
            std::env::var("GOTRUE_JWT_SECRET").context("JWKS_URL or GOTRUE_JWT_SECRET must be set")?,
        )),
    };
    let port: u16 = std::env::var("PORT")
        .unwrap_or_else(|_| "8080".into())
        .parse()
        .context("PORT must be a port number")?;
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());

    let pool = PgPoolOptions::new()
        .max_connections(10)
        .connect(&database_url)
        .await
        .context("connecting to DATABASE_URL")?;
    app::create_schema(&pool).await.context("creating the notes table")?;

    let state = app::NotesState { pool, rls };
    let listener = TcpListener::bind((host.as_str(), port))
        .await
        .with_context(|| format!("binding {host}:{port}"))?;
    tracing::info!("notes-api listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app::router(state))
        .with_graceful_shutdown(latchkey::startup::shutdown_signal())
        .await
        .context("serving HTTP")
}
