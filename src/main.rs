//! The `latchkey` command: serve (default), migrate, keys, openapi.

use anyhow::Context;
use clap::{Parser, Subcommand};
use latchkey::config::Config;
use latchkey::startup::{Application, DEV_DATA_DIR, shutdown_signal};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(version, about = "A GoTrue-compatible authentication server on PostgreSQL")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (the default). Applies migrations first.
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
    /// Print an anon and a service_role API key minted from the JWT secret (in the zero-setup
    /// mode, the secret kept in .latchkey/, made if needed).
    Keys,
    /// Print the OpenAPI document.
    Openapi,
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
    let config = Config::from_env()?;
    init_tracing(&config.log_level);

    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(config).await?;
            // Printed on stdout so scripts and test harnesses can find the port.
            println!("latchkey listening on http://{}", app.local_addr());
            app.run_until(shutdown_signal()).await
        }
        Command::Migrate => {
            let url = latchkey::db::expose_url(&config)
                .context("`latchkey migrate` needs DATABASE_URL (the private cluster is migrated by `serve`)")?;
            let pool = latchkey::db::migration_pool(&config, &url)?;
            latchkey::db::migrate(&pool, &config.db_namespace).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Keys => {
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
    }
}

fn init_tracing(level: &str) {
    // GoTrue's level names, mapped onto tracing's; RUST_LOG wins when set.
    let level = match level.to_ascii_lowercase().as_str() {
        "panic" | "fatal" | "error" => "error",
        "warn" | "warning" => "warn",
        "debug" => "debug",
        "trace" => "trace",
        _ => "info",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(format!("{level},sqlx=warn")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
