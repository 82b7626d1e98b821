//! The `latchkey` command: serve (default), migrate, keys, openapi, mail, healthcheck,
//! import-gotrue, export-gotrue.

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
    /// Print an anon and a service_role API key signed with the signing key (GOTRUE_JWT_KEYS,
    /// the secret, or in the zero-setup mode the key kept in .latchkey/, made if needed).
    Keys {
        #[command(subcommand)]
        action: Option<KeysAction>,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// List the newest mails in the mail folder (in the zero-setup mode .latchkey/mail, or
    /// LATCHKEY_MAIL_DIR), newest first, with their links.
    Mail {
        /// How many mails to list.
        #[arg(short = 'n', long, default_value_t = 10)]
        limit: usize,
    },
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
    /// Copy a Supabase project's users, identities, sessions and refresh tokens from GoTrue's
    /// tables (auth.users, ...) into Latchkey's, in one transaction. Running it again changes
    /// nothing. See the README, "Migrate from Supabase".
    ImportGotrue(ImportArgs),
    /// Write Latchkey's users and identities back into GoTrue's tables. Sessions end.
    ExportGotrue(ExportArgs),
}

#[derive(Subcommand)]
enum KeysAction {
    /// Print a new private JWK, ready to put in GOTRUE_JWT_KEYS (`key_ops` sign and verify;
    /// make it ["verify"] to add it to a set before it signs).
    Generate {
        #[arg(long, default_value = "ES256", value_parser = ["ES256", "RS256", "EdDSA"])]
        alg: String,
    },
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
    #[arg(long, conflicts_with_all = ["retarget", "audit_log", "skip_unusable_factors"])]
    undo: bool,
    /// Also copy GoTrue's audit log.
    #[arg(long)]
    audit_log: bool,
    /// Import users who have a verified MFA factor Latchkey cannot check (phone, WebAuthn, a
    /// TOTP secret encrypted by GoTrue or unreadable) without that factor, which stays in
    /// GoTrue's tables. Without this flag such users stop the import.
    #[arg(long)]
    skip_unusable_factors: bool,
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

// Requests are served by the HTTP threads, each with a runtime of its own (`startup::http`);
// this one accepts connections and runs the background tasks, and needs no thread pool.
#[tokio::main(flavor = "current_thread")]
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
            let pool = latchkey::db::migration_pool(&config, &url)?;
            latchkey::db::migrate(&pool, &config.db_namespace).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Keys { action: None } => print_api_keys(&Config::from_env_only(is_signing_variable)?),
        Command::Keys {
            action: Some(KeysAction::Generate { alg }),
        } => {
            let alg: jsonwebtoken::Algorithm = alg.parse()?;
            let jwk = latchkey::auth::jwt::jwk::generate(alg).map_err(anyhow::Error::msg)?;
            println!("{}", secrecy::ExposeSecret::expose_secret(&jwk));
            Ok(())
        }
        Command::Openapi => {
            println!("{}", latchkey::api::openapi().to_pretty_json()?);
            Ok(())
        }
        Command::Mail { limit } => {
            let config = Config::from_env_only(is_mail_variable)?;
            let dir = config.mailer.folder.clone().context(
                "no mail folder: mail is kept in one in the zero-setup mode (no DATABASE_URL) or with LATCHKEY_MAIL_DIR",
            )?;
            if config.mailer.smtp.is_some() {
                eprintln!(
                    "(GOTRUE_SMTP_HOST is set: new mail goes to the SMTP server, not to {})",
                    dir.display()
                );
            }
            let mails = latchkey::mail::folder::recent(&dir, limit)
                .with_context(|| format!("reading the mail folder {}", dir.display()))?;
            print!("{}", latchkey::mail::folder::describe(&dir, &mails));
            Ok(())
        }
        Command::Healthcheck { ready, url } => {
            let config = Config::from_env_only(is_listener_variable)?;
            latchkey::startup::healthcheck(&config, ready, url.as_deref()).await
        }
        Command::ImportGotrue(args) => import_gotrue(&Config::from_env_only(is_database_variable)?, args).await,
        Command::ExportGotrue(args) => {
            let options = latchkey::gotrue::ExportOptions {
                to: args.to,
                dry_run: args.dry_run,
            };
            latchkey::gotrue::export(
                &Config::from_env_only(is_database_variable)?,
                &options,
                &mut std::io::stdout(),
            )
            .await?;
            Ok(())
        }
    }
}

/// `latchkey keys`: an anon and a service_role key, signed as the server signs its tokens.
fn print_api_keys(config: &Config) -> anyhow::Result<()> {
    let (_, keys) = latchkey::startup::jwt_keys(config, std::path::Path::new(DEV_DATA_DIR))?;
    let now = chrono::Utc::now().timestamp();
    // Ten years, as Supabase's own keys.
    let lifetime = 10 * 365 * 24 * 3600;
    for (name, role) in [("ANON_KEY", "anon"), ("SERVICE_ROLE_KEY", "service_role")] {
        println!("{name}={}", latchkey::auth::jwt::api_key(&keys, role, now, lifetime)?);
    }
    let (kid, alg) = keys.signing_key();
    if config.jwt.keys.is_none() && config.jwt.secret.is_none() {
        eprintln!("(signed with the {alg:?} key {kid} this zero-setup server keeps in {DEV_DATA_DIR}/)");
    } else {
        eprintln!("(signed with the {alg:?} key {kid})");
    }
    Ok(())
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
        skip_unusable_factors: args.skip_unusable_factors,
    };
    latchkey::gotrue::import(config, &options, out).await?;
    Ok(())
}

/// What `migrate`, `import-gotrue` and `export-gotrue` read: the database and its schema.
fn is_database_variable(name: &str) -> bool {
    matches!(name, "DATABASE_URL" | "DB_NAMESPACE" | "LATCHKEY_DB_STATEMENT_CACHE") || name.starts_with("GOTRUE_DB_")
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

/// What `mail` reads: where mail goes (the folder, SMTP) and whether this is the zero-setup mode.
fn is_mail_variable(name: &str) -> bool {
    name.starts_with("GOTRUE_SMTP_")
        || matches!(
            name,
            "LATCHKEY_MAIL_DIR" | "DATABASE_URL" | "GOTRUE_DB_DATABASE_URL" | "GOTRUE_API_HOST"
        )
}
