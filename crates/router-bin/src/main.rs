//! `llm-router`: parse arguments, init logging, then run the command.

mod allocator;

use clap::{Parser, Subcommand, ValueEnum};
use router_bin::cli;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// A config-file-driven reverse proxy for LLM APIs.
#[derive(Parser)]
#[command(
    name = "llm-router",
    version,
    about = "A config-file-driven reverse proxy for LLM APIs (OpenAI-compatible)",
    after_help = "Environment: LLM_ROUTER_DATA_DIR is the folder the usage ledger goes to when the config sets no ledger.path (default: next to the config file); RUST_LOG filters the log."
)]
struct Cli {
    /// Config file (YAML, or JSON by the .json extension). Without it, ./config.yaml is used if
    /// present, else the built-in example config (a `demo` group on the in-process mock provider).
    #[arg(long, short, global = true, env = "LLM_ROUTER_CONFIG")]
    config: Option<PathBuf>,
    /// Listen on this address instead of the config's `listen`/`port`: an IP address or a host
    /// name, and a port (e.g. 127.0.0.1:0, localhost:8080, [::1]:8080).
    #[arg(long, global = true, env = "LLM_ROUTER_LISTEN", value_parser = listen_address)]
    listen: Option<std::net::SocketAddr>,
    /// Log format [default: the config's server.log_format, else text]. Filter with RUST_LOG
    /// (e.g. `info`, `access=off`, `router_core=debug`).
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    /// A running router, for `status` and `health` [default: http://127.0.0.1:8080]; given to
    /// a command that edits the config, the edit is refused unless that router serves the
    /// file edited.
    #[arg(long, global = true, env = "LLM_ROUTER_URL")]
    url: Option<String>,
    /// That router's admin key (its client key when the config has no admin_key).
    #[arg(
        long,
        global = true,
        env = "LLM_ROUTER_ADMIN_KEY",
        hide_env_values = true
    )]
    admin_key: Option<String>,
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
        /// What each named client and team spent, by group, provider and model.
        #[arg(long)]
        clients: bool,
        /// The ledger file [default: the one the config names].
        #[arg(long)]
        ledger: Option<PathBuf>,
    },
    /// Make or hash client keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Named clients: list and show them, or edit the config file (comments and layout kept,
    /// validated before it is written); a running router picks the change up.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Upstream providers and their keys: list and show them (keys masked), or edit the config
    /// file as `client` does.
    #[command(subcommand)]
    Provider(router_bin::manage::ProviderCommand),
    /// Groups and their models: list and show them, or edit the config file as `client` does.
    #[command(subcommand)]
    Group(router_bin::manage::GroupCommand),
    /// A running router's generation, uptime, groups with each pair's state and last error,
    /// ledger and shared state. Exit code: 0 ready, 1 not ready, 3 unreachable or refused.
    Status,
    /// Whether a running router is ready, and why not. Exit code as for `status`.
    Health,
}

#[derive(Subcommand)]
enum ClientCommand {
    /// List the named clients.
    List,
    /// Show one client.
    Show { name: String },
    /// Add a client with a new key (printed once; the config keeps its sha256).
    Add(router_bin::editor::NewClient),
    /// Refuse the client's keys (401) until it is enabled.
    Disable { name: String },
    /// Accept the client's keys again.
    Enable { name: String },
    /// Remove the client.
    Remove { name: String },
    /// Replace the client's keys by a new one (printed once).
    Rotate { name: String },
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
        .with_writer(router_bin::one_line_stderr)
        .with_ansi(terminal);
    // Plain text (not JSON, not coloured): access lines are written in that format directly.
    router_bin::access_lines_as_text(matches!(format, LogFormat::Text) && !terminal);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// The address `--listen` names: an IP address and port, else a host name and port resolved
/// (the first address it has).
fn listen_address(text: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::ToSocketAddrs;
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let mut found = text.to_socket_addrs().map_err(|e| {
        format!("'{text}' is not an address such as 127.0.0.1:8080 or localhost:8080: {e}")
    })?;
    found
        .next()
        .ok_or_else(|| format!("'{text}' names no address"))
}

#[allow(clippy::print_stderr)]
fn main() -> ExitCode {
    allocator::return_large_blocks();
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    let target = router_bin::status::Target {
        url: (cli.url.clone()).unwrap_or_else(|| "http://127.0.0.1:8080".into()),
        admin_key: cli.admin_key.clone(),
    };
    match command {
        Command::Key(KeyCommand::Generate) => return cli::key_generate(),
        Command::Key(KeyCommand::Hash { key }) => return cli::key_hash(key),
        Command::Status => return router_bin::status::status(&target),
        Command::Health => return router_bin::status::health(&target),
        _ => {}
    }
    let (router, embedded) = match cli::load(cli.config.as_deref()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: the config cannot be used:\n{e}");
            return ExitCode::FAILURE;
        }
    };
    let file = || match (embedded, cli.config.clone()) {
        (true, _) => None,
        (false, given) => Some(given.unwrap_or_else(|| PathBuf::from("config.yaml"))),
    };
    let edits = matches!(
        &command,
        Command::Client(_) | Command::Provider(_) | Command::Group(_)
    );
    if let (true, Some(_), Some(path)) = (edits, &cli.url, file()) {
        if let Err(e) = router_bin::manage::served_by(&path, &target) {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    let no_file = || {
        eprintln!("error: this command reads and edits a config file: pass --config FILE");
        ExitCode::from(2)
    };
    match command {
        Command::Client(edit) => return client(edit, &router, cli.config.as_deref(), embedded),
        Command::Provider(c) => {
            return file().map_or_else(no_file, |f| router_bin::manage::provider(&f, c))
        }
        Command::Group(c) => {
            return file().map_or_else(no_file, |f| router_bin::manage::group(&f, c))
        }
        _ => {}
    }
    match command {
        Command::Check => cli::check(&router),
        Command::Usage {
            json,
            clients,
            ledger,
        } => cli::usage(&router, json, clients, ledger),
        Command::Key(_)
        | Command::Client(_)
        | Command::Provider(_)
        | Command::Group(_)
        | Command::Status
        | Command::Health
        | Command::Serve => {
            let format = cli
                .log_format
                .unwrap_or(match router.snapshot().server().log_format {
                    router_core::LogFormat::Json => LogFormat::Json,
                    router_core::LogFormat::Text => LogFormat::Text,
                });
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
            allocator::give_back_free_pages();
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let served = runtime.block_on(async {
                let shutdown = router_bin::shutdown_signal()?;
                router_bin::run(Arc::new(router), cli.listen, shutdown).await
            });
            match served {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// `client …`: the listing commands read the config; the others edit the file.
#[allow(clippy::print_stderr)]
fn client(
    command: ClientCommand,
    router: &router_core::Router,
    config: Option<&std::path::Path>,
    embedded: bool,
) -> ExitCode {
    use router_bin::client_cmd;
    use router_bin::editor::ClientEdit;
    let edit = match command {
        ClientCommand::List => return client_cmd::list(router, None),
        ClientCommand::Show { name } => return client_cmd::list(router, Some(&name)),
        _ if embedded => {
            eprintln!("error: the client commands edit a config file: pass --config FILE");
            return ExitCode::from(2);
        }
        ClientCommand::Add(new) => ClientEdit::Add(new, String::new()),
        ClientCommand::Rotate { name } => ClientEdit::Rotate(name, String::new()),
        ClientCommand::Disable { name } => ClientEdit::SetDisabled(name, true),
        ClientCommand::Enable { name } => ClientEdit::SetDisabled(name, false),
        ClientCommand::Remove { name } => ClientEdit::Remove(name),
    };
    let path = config.map_or_else(
        || PathBuf::from("config.yaml"),
        std::path::Path::to_path_buf,
    );
    client_cmd::run(&path, edit)
}
