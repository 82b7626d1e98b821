//! The `latchkey` command: serve (default), migrate, keys, openapi, healthcheck.

use anyhow::Context;
use clap::{Parser, Subcommand};
use latchkey::config::Config;
use latchkey::startup::{Application, BuildOptions, DEV_DATA_DIR, shutdown_signal};

#[derive(Parser)]
#[command(version, about = "A GoTrue-compatible authentication server on PostgreSQL")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (the default). Applies migrations first.
    Serve {
        /// Do not apply migrations (a runtime role that may not change the schema); refuse to
        /// start if the database lacks some. Run `latchkey migrate` as the owner first.
        #[arg(long)]
        no_migrate: bool,
    },
    /// Apply the database migrations and exit.
    Migrate,
    /// Print an anon and a service_role API key minted from the JWT secret (in the zero-setup
    /// mode, the secret kept in .latchkey/, made if needed).
    Keys,
    /// Print the OpenAPI document.
    Openapi,
    /// Exit 0 if the server on GOTRUE_API_HOST:PORT answers /health (for container health
    /// checks in images without curl or wget); non-zero otherwise.
    Healthcheck {
        /// Check readiness (/health/ready: the database answers) instead of liveness.
        #[arg(long)]
        ready: bool,
        /// The URL to ask instead of the configured address.
        #[arg(long)]
        url: Option<String>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // A missing .env is normal; a broken one is worth knowing about.
    if let Err(err) = dotenvy::dotenv()
        && !err.not_found()
    {
        eprintln!("warning: could not read .env: {err}");
    }
    let cli = Cli::parse();
    latchkey::telemetry::logging::init(&Config::log_from_env()?);

    // Only `serve` reads the whole configuration; the other commands read what they use, so a
    // bad value of an unrelated setting does not stop them.
    match cli.command.unwrap_or(Command::Serve { no_migrate: false }) {
        Command::Serve { no_migrate } => {
            let config = Config::from_env()?;
            let app = Application::build_with(config, BuildOptions { migrate: !no_migrate }).await?;
            // Printed on stdout so scripts and test harnesses can find the port.
            println!("latchkey listening on http://{}", app.local_addr());
            app.run_until(shutdown_signal()).await
        }
        Command::Migrate => {
            let config = Config::from_env_only(is_database_variable)?;
            let url = latchkey::db::expose_url(&config)
                .context("`latchkey migrate` needs DATABASE_URL (the private cluster is migrated by `serve`)")?;
            let pool = latchkey::db::pool(&config, &url)?;
            latchkey::db::migrate(&pool, &config.db_namespace).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Keys => {
            let config = Config::from_env_only(is_signing_variable)?;
            let secret = latchkey::startup::jwt_secret(&config, std::path::Path::new(DEV_DATA_DIR))?;
            let keys = latchkey::auth::jwt::JwtKeys::new(&secret);
            let now = chrono::Utc::now().timestamp();
            // Ten years, as Supabase's own keys.
            let lifetime = 10 * 365 * 24 * 3600;
            println!(
                "ANON_KEY={}",
                latchkey::auth::jwt::api_key(&keys, "anon", now, lifetime)?
            );
            println!(
                "SERVICE_ROLE_KEY={}",
                latchkey::auth::jwt::api_key(&keys, "service_role", now, lifetime)?
            );
            if config.jwt.secret.is_none() {
                eprintln!("(signed with the secret this zero-setup server keeps in {DEV_DATA_DIR}/)");
            }
            Ok(())
        }
        Command::Openapi => {
            println!("{}", latchkey::api::openapi().to_pretty_json()?);
            Ok(())
        }
        Command::Healthcheck { ready, url } => {
            let config = Config::from_env_only(is_listener_variable)?;
            latchkey::startup::healthcheck(&config, ready, url.as_deref()).await
        }
    }
}

/// What `migrate` reads: the database and its schema.
fn is_database_variable(name: &str) -> bool {
    matches!(name, "DATABASE_URL" | "DB_NAMESPACE") || name.starts_with("GOTRUE_DB_")
}

/// What `keys` reads: the signing settings, and what decides whether the zero-setup secret may
/// be used (no database URL, a loopback host).
fn is_signing_variable(name: &str) -> bool {
    name.starts_with("GOTRUE_JWT_")
        || name.starts_with("JWT_")
        || matches!(name, "DATABASE_URL" | "GOTRUE_DB_DATABASE_URL" | "GOTRUE_API_HOST")
}

/// What `healthcheck` reads: where the server listens.
fn is_listener_variable(name: &str) -> bool {
    matches!(name, "GOTRUE_API_HOST" | "PORT" | "GOTRUE_API_PORT")
}
