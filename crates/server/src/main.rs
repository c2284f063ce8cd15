//! `greenlight`: the server binary.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use greenlight::config::{self, Layer};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "greenlight",
    version,
    about = "A WhatsApp Cloud API server that enforces Meta's compliance rules"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (sandbox mode by default).
    Serve(ServeArgs),
    /// Print the built-in default configuration (a commented TOML file).
    DefaultConfig,
    /// Message templates.
    #[command(subcommand)]
    Template(TemplateCommand),
    /// The consent (opt-in) registry.
    #[command(subcommand)]
    Optin(OptinCommand),
    /// Apply the database migrations of the configured database and exit (`serve` applies
    /// them too, at start).
    Migrate(DbArgs),
    /// Write every table of the configured database to stdout (JSON lines), from one
    /// consistent snapshot: `greenlight export --database-url sqlite://greenlight.db > dump`.
    Export(DbArgs),
    /// Read a dump made by `export` from stdin into the configured database, in one
    /// transaction; the database must hold no tenant yet:
    /// `greenlight import --database-url postgres://… < dump`.
    Import(DbArgs),
}

#[derive(clap::Args)]
struct DbArgs {
    /// TOML configuration file (for database_url).
    #[arg(long, env = "GREENLIGHT_CONFIG")]
    config: Option<String>,
    /// sqlite://<path> or postgres://…
    #[arg(long)]
    database_url: Option<String>,
}

#[derive(Subcommand)]
enum OptinCommand {
    /// Import opt-ins from a CSV file (columns wa_id, scope, source, proof[, captured_at]) into
    /// the database of the configuration, in one transaction. Rows that fail validation are
    /// listed with the reason; then nothing is imported unless --skip-invalid is given.
    Import {
        /// The WhatsApp Business Account the consents belong to.
        #[arg(long)]
        waba_id: String,
        /// Import the valid rows even when some rows are rejected.
        #[arg(long)]
        skip_invalid: bool,
        /// TOML configuration file (for database_url).
        #[arg(long, env = "GREENLIGHT_CONFIG")]
        config: Option<String>,
        /// sqlite://<path>
        #[arg(long)]
        database_url: Option<String>,
        file: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum TemplateCommand {
    /// Review template JSON files (bodies as one would POST them to Meta) before submitting:
    /// every finding with its rule id, the field and how to fix it. Exits 1 when any file has
    /// an error, 2 when a file cannot be read.
    Lint {
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: LintFormat,
        /// Files holding one template object, or an array of them.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
    /// Print every rule of the template review (format and content) as a Markdown table.
    Rules,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LintFormat {
    Text,
    Json,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "GREENLIGHT_CONFIG")]
    config: Option<String>,
    /// Address to listen on (host:port).
    #[arg(long)]
    listen: Option<String>,
    /// sqlite://<path> or postgres://…
    #[arg(long)]
    database_url: Option<String>,
    /// sandbox | gateway
    #[arg(long)]
    mode: Option<String>,
    /// Upstream Graph API base URL (gateway mode).
    #[arg(long)]
    upstream_url: Option<String>,
    /// Gateway mode: milliseconds one forwarded call may take.
    #[arg(long)]
    upstream_timeout_ms: Option<u64>,
    /// Gateway mode: template review findings `block` or `warn`.
    #[arg(long)]
    template_lint: Option<String>,
    /// Folder for uploaded media.
    #[arg(long)]
    media_dir: Option<String>,
    /// Base URL put in links greenlight hands out.
    #[arg(long)]
    public_url: Option<String>,
    /// Log filter, e.g. info or greenlight=debug.
    #[arg(long)]
    log: Option<String>,
}

/// jemalloc, not glibc's allocator: on the PostgreSQL send path glibc's `malloc` and `free`
/// (bins coalesced, fastbins consolidated before every request over 1 KB) took ~27 % of the
/// server's CPU samples; jemalloc's take ~6 % (docs/BENCHMARKS.md, ninth round). SQLite keeps
/// the system's allocator.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::DefaultConfig => {
            print!("{}", config::DEFAULTS);
            ExitCode::SUCCESS
        }
        Command::Serve(args) => serve(args),
        Command::Migrate(args) => migrate(args),
        Command::Export(args) => transfer(args, true),
        Command::Import(args) => transfer(args, false),
        Command::Optin(OptinCommand::Import {
            waba_id,
            skip_invalid,
            config,
            database_url,
            file,
        }) => optin_import(config, database_url, &waba_id, &file, skip_invalid),
        Command::Template(TemplateCommand::Rules) => {
            print!("{}", greenlight::lint::rules_markdown());
            ExitCode::SUCCESS
        }
        Command::Template(TemplateCommand::Lint { format, files }) => {
            greenlight::lint::run(&files, matches!(format, LintFormat::Json))
        }
    }
}

/// The configuration for a database command (flags over environment over file), or the exit
/// code after reporting why there is none.
fn db_config(
    config: Option<&str>,
    database_url: Option<String>,
) -> Result<config::Config, ExitCode> {
    let env = Layer::from_env(|k| std::env::var(k).ok()).map_err(|e| {
        eprintln!("greenlight: configuration error: {e}");
        ExitCode::from(2)
    })?;
    let flags = Layer {
        database_url,
        ..Layer::default()
    };
    config::load(config, &env, &flags).map_err(|errs| {
        eprintln!("greenlight: the configuration is not valid:");
        for e in errs {
            eprintln!("  - {e}");
        }
        ExitCode::from(2)
    })
}

fn migrate(args: DbArgs) -> ExitCode {
    let config = match db_config(args.config.as_deref(), args.database_url) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let url = &config.database_url;
    if greenlight_store::postgres::is_postgres_url(url) {
        match greenlight_store::postgres::migrate(url) {
            Ok(applied) if applied.is_empty() => println!("the database is up to date"),
            Ok(applied) => println!("applied: {}", applied.join(", ")),
            Err(e) => {
                eprintln!("greenlight migrate: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        match greenlight::open_store(&config) {
            Ok((_, closer)) => {
                if let Some(close) = closer {
                    close();
                }
                println!("the database is up to date");
            }
            Err(e) => {
                eprintln!("greenlight migrate: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

fn transfer(args: DbArgs, export: bool) -> ExitCode {
    let config = match db_config(args.config.as_deref(), args.database_url) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let url = &config.database_url;
    let result = if export {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        greenlight_store::transfer::export(url, &mut out)
    } else {
        let stdin = std::io::stdin();
        let mut input = std::io::BufReader::new(stdin.lock());
        greenlight_store::transfer::import(url, &mut input)
    };
    match result {
        Ok(stats) => {
            let what = if export { "export" } else { "import" };
            for note in &stats.notes {
                eprintln!("note: {note}");
            }
            eprintln!(
                "{what}: {} rows in {} tables ({})",
                stats.rows,
                stats.tables,
                config::redact_url(url)
            );
            ExitCode::SUCCESS
        }
        Err(e) if export => {
            eprintln!("greenlight export: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("greenlight import: {e}; nothing was imported");
            ExitCode::FAILURE
        }
    }
}

fn optin_import(
    config: Option<String>,
    database_url: Option<String>,
    waba_id: &str,
    file: &std::path::Path,
    skip_invalid: bool,
) -> ExitCode {
    let env = match Layer::from_env(|k| std::env::var(k).ok()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("greenlight: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let flags = Layer {
        database_url,
        ..Layer::default()
    };
    let config = match config::load(config.as_deref(), &env, &flags) {
        Ok(c) => c,
        Err(errs) => {
            eprintln!("greenlight: the configuration is not valid:");
            for e in errs {
                eprintln!("  - {e}");
            }
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("greenlight: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(greenlight::import::run(
        &config,
        waba_id,
        file,
        skip_invalid,
    )) {
        Err(e) => {
            eprintln!("greenlight optin import: {e}");
            ExitCode::from(2)
        }
        Ok(o) => {
            for (line, reason) in &o.rejected {
                println!("rejected line {line}: {reason}");
            }
            println!(
                "accepted: {}  rejected: {}  imported: {}",
                o.accepted,
                o.rejected.len(),
                if o.imported { o.accepted } else { 0 }
            );
            if !o.imported {
                println!("nothing was imported: fix the rejected rows, or pass --skip-invalid to import the accepted ones");
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let env = match Layer::from_env(|k| std::env::var(k).ok()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("greenlight: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let flags = Layer {
        listen: args.listen,
        database_url: args.database_url,
        mode: args.mode,
        upstream_url: args.upstream_url,
        upstream_timeout_ms: args.upstream_timeout_ms,
        template_lint: args.template_lint,
        media_dir: args.media_dir,
        public_url: args.public_url,
        log: args.log,
        ..Layer::default()
    };
    let config = match config::load(args.config.as_deref(), &env, &flags) {
        Ok(c) => c,
        Err(errs) => {
            eprintln!("greenlight: the configuration is not valid:");
            for e in errs {
                eprintln!("  - {e}");
            }
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&config.log)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("greenlight: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(config.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("greenlight: cannot listen on {}: {e} (set GREENLIGHT_LISTEN or --listen to a free address)", config.listen);
                return ExitCode::FAILURE;
            }
        };
        let generated_admin = config.admin_token_generated.then(|| config.admin_token.clone());
        let running = match greenlight::run(config, listener).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("greenlight: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(addr = %running.addr, mode = ?running.state.config.mode, "greenlight is listening");
        // Printed on stdout for the person who started it, never logged.
        if let Some(t) = generated_admin {
            println!("Admin token (generated for this run; set GREENLIGHT_ADMIN_TOKEN to choose one): {t}\n");
        }
        match greenlight::ensure_demo_tenant(&running.state).await {
            Ok(Some(banner)) => println!("{banner}"),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "could not create the demo tenant"),
        }
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
        running.stop().await;
        ExitCode::SUCCESS
    })
}
