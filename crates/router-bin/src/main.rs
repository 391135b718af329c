//! `llm-router`: parse arguments, init logging, load config, serve.

use clap::{Parser, Subcommand, ValueEnum};
use router_bin::ledger::Ledger;
use router_bin::{serve, App, LedgerState, EMBEDDED_CONFIG};
use router_core::{Format, Router, Source};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use tokio::sync::watch;

/// A config-file-driven reverse proxy for LLM APIs.
#[derive(Parser)]
#[command(
    name = "llm-router",
    version,
    about = "A config-file-driven reverse proxy for LLM APIs (OpenAI-compatible)"
)]
struct Cli {
    /// Config file (YAML, or JSON by the .json extension). Without it, ./config.yaml is used if
    /// present, else the built-in example config (a `demo` group on the in-process mock provider).
    #[arg(long, short, global = true, env = "LLM_ROUTER_CONFIG")]
    config: Option<PathBuf>,
    /// Listen on this address instead of the config's `listen`/`port` (e.g. 127.0.0.1:0).
    #[arg(long, global = true, env = "LLM_ROUTER_LISTEN")]
    listen: Option<std::net::SocketAddr>,
    /// Log format [default: the config's server.log_format, else text]. Filter with RUST_LOG
    /// (e.g. `info`, `access=off`, `router_core=debug`).
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve (the default).
    Serve,
    /// Validate the config and print the resolved routing table; exits 1 on error.
    Check,
    /// Print the usage ledger (the counters saved by a running or stopped router).
    Usage {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// The ledger file [default: the one the config names].
        #[arg(long)]
        ledger: Option<PathBuf>,
    },
    /// Make or hash client keys.
    #[command(subcommand)]
    Key(KeyCommand),
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Print a new random client key (`sk-llmr-` and 40 characters from the OS's CSPRNG).
    Generate,
    /// Print `sha256:<hex>` of a key, read from standard input (so it stays out of shell
    /// history) or given as an argument.
    Hash {
        /// The key; read from standard input when absent.
        key: Option<String>,
    },
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(terminal);
    // Plain text (not JSON, not coloured): access lines are written in that format directly.
    router_bin::access_lines_as_text(matches!(format, LogFormat::Text) && !terminal);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Loads the router: the given file, else ./config.yaml, else the embedded example. The flag
/// says whether the embedded example is used.
fn load(config: Option<&Path>) -> Result<(Router, bool), String> {
    let path = match config {
        Some(p) => Some(p.to_path_buf()),
        None => {
            let default = PathBuf::from("config.yaml");
            default.exists().then_some(default)
        }
    };
    match path {
        Some(p) => Router::from_file(&p)
            .map(|r| (r, false))
            .map_err(|e| e.to_string()),
        None => Router::from_source(&Source::from_text(EMBEDDED_CONFIG, Format::Yaml))
            .map(|r| (r, true))
            .map_err(|e| e.to_string()),
    }
}

const KEY_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A new client key from the OS's CSPRNG (rejection sampling keeps the 62 symbols uniform).
fn generate_key() -> Result<String, String> {
    let mut key = String::from("sk-llmr-");
    while key.len() < 48 {
        let mut bytes = [0u8; 64];
        getrandom::fill(&mut bytes).map_err(|e| format!("no randomness from the OS: {e}"))?;
        for b in bytes {
            // 248 = 4 × 62: bytes above it would favour the first symbols.
            if b < 248 && key.len() < 48 {
                key.push(char::from(KEY_ALPHABET[usize::from(b % 62)]));
            }
        }
    }
    Ok(key)
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
fn key_command(command: KeyCommand) -> ExitCode {
    match command {
        KeyCommand::Generate => match generate_key() {
            Ok(key) => {
                println!("{key}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        KeyCommand::Hash { key } => {
            let key = match key {
                Some(k) => k,
                None => {
                    let mut line = String::new();
                    if let Err(e) = std::io::stdin().read_line(&mut line) {
                        eprintln!("error: cannot read the key from standard input: {e}");
                        return ExitCode::FAILURE;
                    }
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            if key.is_empty() {
                eprintln!("error: no key given (pass it as an argument or on standard input)");
                return ExitCode::from(2);
            }
            use sha2::Digest;
            println!(
                "sha256:{}",
                hex::encode(sha2::Sha256::digest(key.as_bytes()))
            );
            ExitCode::SUCCESS
        }
    }
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
fn usage_command(router: &Router, json: bool, ledger: Option<PathBuf>) -> ExitCode {
    let snapshot = router.snapshot();
    let path =
        ledger.or_else(|| router_bin::ledger::ledger_path(router.config_path(), snapshot.ledger()));
    let Some(path) = path else {
        eprintln!(
            "error: this config keeps no ledger (ledger.enabled is false, or there is no config \
             file); pass --ledger FILE to read one"
        );
        return ExitCode::from(2);
    };
    if !path.exists() {
        eprintln!(
            "error: no ledger at {} yet (a router writes it once it has served)",
            path.display()
        );
        return ExitCode::FAILURE;
    }
    let rows = match router_bin::ledger::read(&path) {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if json {
        let rows: Vec<_> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "provider": r.provider, "key_id": r.key_id, "key_fingerprint": r.key_fingerprint,
                    "model": r.model, "prompt_tokens": r.prompt_tokens,
                    "completion_tokens": r.completion_tokens, "total_tokens": r.total_tokens,
                    "requests": r.requests, "errors": r.errors,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(rows));
        return ExitCode::SUCCESS;
    }
    let header = [
        "provider",
        "key",
        "model",
        "requests",
        "errors",
        "prompt",
        "completion",
        "total",
    ];
    let table: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            [
                r.provider.clone(),
                r.key_id.clone(),
                r.model.clone(),
                r.requests.to_string(),
                r.errors.to_string(),
                r.prompt_tokens.to_string(),
                r.completion_tokens.to_string(),
                r.total_tokens.to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &table {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i < 3 {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    println!("{}", line(header.to_vec()));
    for row in &table {
        println!("{}", line(row.iter().map(String::as_str).collect()));
    }
    if table.is_empty() {
        println!("(no usage recorded yet)");
    }
    ExitCode::SUCCESS
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Key(k) = command {
        return key_command(k);
    }
    let (router, embedded) = match load(cli.config.as_deref()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: the config cannot be used:\n{e}");
            return ExitCode::FAILURE;
        }
    };
    let format = cli
        .log_format
        .unwrap_or(match router.snapshot().server().log_format {
            router_core::config::LogFormat::Json => LogFormat::Json,
            router_core::config::LogFormat::Text => LogFormat::Text,
        });
    match command {
        Command::Check => {
            let snapshot = router.snapshot();
            for w in snapshot.warnings() {
                println!("warning: {w}");
            }
            print!("{}", snapshot.routing_table());
            println!("config OK");
            ExitCode::SUCCESS
        }
        Command::Usage { json, ledger } => usage_command(&router, json, ledger),
        Command::Key(_) | Command::Serve => {
            init_logging(format);
            if embedded {
                tracing::warn!(
                    "no --config given and no ./config.yaml: serving the built-in example config \
                     (group `demo` on the in-process mock provider)"
                );
            }
            for w in router.snapshot().warnings() {
                tracing::warn!("{w}");
            }
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(run(Arc::new(router), cli.listen)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Opens the ledger the config names and restores its counters into `router`. A ledger that
/// cannot be used is reported, and the router serves with usage in memory.
fn open_ledger(router: &Router) -> (Option<Arc<Ledger>>, LedgerState) {
    let snapshot = router.snapshot();
    let settings = snapshot.ledger();
    let Some(path) = router_bin::ledger::ledger_path(router.config_path(), settings) else {
        let reason = if settings.enabled {
            "no config file to keep it next to".to_string()
        } else {
            "ledger.enabled is false".to_string()
        };
        tracing::info!("usage ledger off ({reason}): usage is kept in memory");
        return (None, LedgerState::Off { reason });
    };
    let shown = path.display().to_string();
    match Ledger::open(&path, settings.request_log, settings.retention) {
        Ok((ledger, saved)) => {
            router.restore_usage(&saved);
            tracing::info!(
                pairs = saved.len(),
                "usage ledger {shown}: counters restored"
            );
            (Some(Arc::new(ledger)), LedgerState::Ok { path: shown })
        }
        Err(error) => {
            tracing::error!(
                "{error}; serving with usage kept in memory only (fix or move the file and restart)"
            );
            (None, LedgerState::Failing { path: shown, error })
        }
    }
}

async fn run(router: Arc<Router>, listen: Option<std::net::SocketAddr>) -> Result<(), String> {
    // Signal handlers first: a SIGHUP or SIGTERM arriving during start-up is handled, not fatal.
    let signals = Signals::new().map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let addr = listen.unwrap_or_else(|| router.snapshot().listen());
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let admin_listener = match &router.snapshot().server().admin_listen {
        Some(a) => {
            let admin: std::net::SocketAddr = a
                .as_str()
                .parse()
                .map_err(|e| format!("server.admin_listen '{}': {e}", a.as_str()))?;
            let l = tokio::net::TcpListener::bind(admin)
                .await
                .map_err(|e| format!("cannot listen on {admin} (server.admin_listen): {e}"))?;
            Some(l)
        }
        None => None,
    };
    let (ledger, ledger_state) = open_ledger(&router);
    let app = App::with_ledger(router.clone(), ledger.clone(), ledger_state);
    tracing::info!(
        "llm-router {} listening on http://{local}",
        env!("CARGO_PKG_VERSION")
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mut tasks = Vec::new();
    if let Some(path) = router.config_path() {
        match router_core::watch_config(router.clone(), stopped(stop_rx.clone())) {
            Ok(task) => {
                tracing::info!("watching {} for changes", path.display());
                tasks.push(task);
            }
            Err(e) => tracing::warn!("cannot watch the config file (reload with SIGHUP): {e}"),
        }
    }
    let Signals { terminate, hangup } = signals;
    tasks.push(tokio::spawn(reload_on_hangup(
        router.clone(),
        hangup,
        stopped(stop_rx.clone()),
    )));
    // The ledger keeps being written while requests drain after a shutdown signal: it stops
    // only once serving has ended.
    let (flush_stop_tx, flush_stop_rx) = watch::channel(false);
    let flusher = ledger.as_ref().map(|_| {
        let every = router.snapshot().ledger().flush_interval;
        tokio::spawn(flush_ledger(app.clone(), every, stopped(flush_stop_rx)))
    });
    if let Some(l) = admin_listener {
        let admin = l.local_addr().map_err(|e| e.to_string())?;
        tracing::info!("admin endpoints also on http://{admin}");
        let app = app.clone();
        let stop = stopped(stop_rx.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(e) = router_bin::serve_admin(l, app, stop).await {
                tracing::error!("admin listener failed: {e}");
            }
        }));
    }

    let shutdown = async move {
        terminate.await;
        tracing::info!("shutdown signal received");
        let _ = stop_tx.send(true);
    };
    let served = serve(listener, app.clone(), shutdown).await;
    for t in tasks {
        let _ = t.await;
    }
    let _ = flush_stop_tx.send(true);
    if let Some(f) = flusher {
        let _ = f.await;
    }
    // Everything served is counted: the last write.
    if ledger.is_some() {
        let flushed = app.clone();
        let _ = tokio::task::spawn_blocking(move || flushed.flush_ledger()).await;
        tracing::info!("usage ledger written");
    }
    served.map_err(|e| e.to_string())
}

/// Writes the ledger every `every` until `stop`.
async fn flush_ledger(
    app: Arc<App>,
    every: std::time::Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {
                let app = app.clone();
                let _ = tokio::task::spawn_blocking(move || app.flush_ledger()).await;
            }
        }
    }
}

/// SIGTERM/SIGINT (as one future) and SIGHUP (as a stream), installed up front.
struct Signals {
    terminate: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let hangup = signal(SignalKind::hangup())?;
        let terminate = Box::pin(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        });
        Ok(Self { terminate, hangup })
    }
}

async fn reload_on_hangup(
    router: Arc<Router>,
    mut hangup: tokio::signal::unix::Signal,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = hangup.recv() => match router.reload() {
                Ok(o) => tracing::info!(generation = o.generation, "SIGHUP: config reloaded"),
                Err(e) => tracing::error!("SIGHUP: config cannot be used; still serving the previous one:\n{e}"),
            },
        }
    }
}
