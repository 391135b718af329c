//! `llm-router`: parse arguments, init logging, load config, serve.

use clap::{Parser, Subcommand, ValueEnum};
use router_bin::{serve, EMBEDDED_CONFIG};
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
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
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
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Loads the router: the given file, else ./config.yaml, else the embedded example.
fn load(config: Option<&Path>) -> Result<Router, String> {
    let path = match config {
        Some(p) => Some(p.to_path_buf()),
        None => {
            let default = PathBuf::from("config.yaml");
            default.exists().then_some(default)
        }
    };
    match path {
        Some(p) => Router::from_file(&p).map_err(|e| e.to_string()),
        None => {
            tracing::warn!(
                "no --config given and no ./config.yaml: serving the built-in example config \
                 (group `demo` on the in-process mock provider)"
            );
            Router::from_source(&Source::from_text(EMBEDDED_CONFIG, Format::Yaml))
                .map_err(|e| e.to_string())
        }
    }
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let router = match load(cli.config.as_deref()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: the config cannot be used:\n{e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Check => {
            let snapshot = router.snapshot();
            for w in snapshot.warnings() {
                println!("warning: {w}");
            }
            print!("{}", snapshot.routing_table());
            println!("config OK");
            ExitCode::SUCCESS
        }
        Command::Serve => {
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

async fn run(router: Arc<Router>, listen: Option<std::net::SocketAddr>) -> Result<(), String> {
    // Signal handlers first: a SIGHUP or SIGTERM arriving during start-up is handled, not fatal.
    let signals = Signals::new().map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let addr = listen.unwrap_or_else(|| router.snapshot().listen());
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
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

    let shutdown = async move {
        terminate.await;
        tracing::info!("shutdown signal received");
        let _ = stop_tx.send(true);
    };
    serve(listener, router, shutdown)
        .await
        .map_err(|e| e.to_string())?;
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
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
