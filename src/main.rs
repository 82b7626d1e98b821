//! The `latchkey` command: serve (default), migrate, keys, openapi, import-gotrue, export-gotrue.

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
    /// Copy a Supabase project's users, identities, sessions and refresh tokens from GoTrue's
    /// tables (auth.users, ...) into Latchkey's, in one transaction. Running it again changes
    /// nothing. See the README, "Migrate from Supabase".
    ImportGotrue(ImportArgs),
    /// Write Latchkey's users and identities back into GoTrue's tables. Sessions end.
    ExportGotrue(ExportArgs),
}

#[derive(clap::Args)]
struct ImportArgs {
    /// GoTrue's database, when it is not DATABASE_URL (a postgres:// connection string).
    #[arg(long, value_name = "DSN", conflicts_with_all = ["retarget", "undo"])]
    from: Option<String>,
    /// Print the counts and problems, and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Also point the project's foreign keys and triggers on auth.users at Latchkey's users,
    /// move GoTrue's tables to the schema auth_gotrue_backup, and leave read-only views
    /// auth.users, auth.identities and auth.sessions in their place.
    #[arg(long)]
    retarget: bool,
    /// Undo the import: GoTrue's tables, keys and triggers back as they were, the imported
    /// users removed from Latchkey. Refused while Latchkey holds changes GoTrue's tables lack
    /// (run export-gotrue first).
    #[arg(long, conflicts_with_all = ["retarget", "audit_log", "without_mfa"])]
    undo: bool,
    /// Also copy GoTrue's audit log.
    #[arg(long)]
    audit_log: bool,
    /// Import users who have a verified MFA factor, although Latchkey does not ask for it.
    #[arg(long)]
    without_mfa: bool,
}

#[derive(clap::Args)]
struct ExportArgs {
    /// GoTrue's database, when it is not DATABASE_URL (a postgres:// connection string).
    #[arg(long, value_name = "DSN")]
    to: Option<String>,
    /// Print what would be written, and write nothing.
    #[arg(long)]
    dry_run: bool,
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
            let pool = latchkey::db::pool(&config, &url)?;
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
        Command::ImportGotrue(args) => import_gotrue(&config, args).await,
        Command::ExportGotrue(args) => {
            let options = latchkey::gotrue::ExportOptions {
                to: args.to,
                dry_run: args.dry_run,
            };
            latchkey::gotrue::export(&config, &options, &mut std::io::stdout()).await?;
            Ok(())
        }
    }
}

async fn import_gotrue(config: &Config, args: ImportArgs) -> anyhow::Result<()> {
    let out = &mut std::io::stdout();
    if args.undo {
        latchkey::gotrue::undo(config, args.dry_run, out).await?;
        return Ok(());
    }
    let options = latchkey::gotrue::ImportOptions {
        from: args.from,
        dry_run: args.dry_run,
        retarget: args.retarget,
        audit_log: args.audit_log,
        without_mfa: args.without_mfa,
    };
    latchkey::gotrue::import(config, &options, out).await?;
    Ok(())
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
