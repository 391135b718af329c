//! `llm-router client …`: list and show the named clients, and add, disable, enable, remove
//! or rotate one through the config editor. A new key is printed once; the file holds only
//! its `sha256:` hash.

use crate::editor::{edit_file, ClientEdit, Edit};
use crate::manage::refused;
use router_core::Router;
use std::path::Path;
use std::process::ExitCode;

/// `sha256:<hex>` of `key`.
pub(crate) fn hash(key: &str) -> String {
    use sha2::Digest;
    format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(key.as_bytes()))
    )
}

/// Runs `edit` on the config at `path`, printing what changed. `Add` and `Rotate` get a new
/// key first (their hash field is filled here): it is printed once, and the file holds its
/// hash.
#[allow(clippy::print_stdout, clippy::print_stderr)]
pub fn run(path: &Path, edit: ClientEdit) -> ExitCode {
    let mut key = None;
    let edit = match edit {
        ClientEdit::Add(..) | ClientEdit::Rotate(..) => {
            let new = match crate::cli::generate_key() {
                Ok(k) => k,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let hashed = hash(&new);
            key = Some(new);
            match edit {
                ClientEdit::Add(c, _) => ClientEdit::Add(c, hashed),
                ClientEdit::Rotate(n, _) => ClientEdit::Rotate(n, hashed),
                other => other,
            }
        }
        other => other,
    };
    match edit_file(path, &Edit::Client(edit)) {
        Ok(said) => {
            println!("{said}");
            if let Some(key) = key {
                println!("key (shown once; the config holds its sha256): {key}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => refused(&e),
    }
}

/// `client list`, or `client show NAME` with `only`: each client's groups, budget, limits and
/// state, from the config.
#[allow(clippy::print_stdout, clippy::print_stderr)]
pub fn list(router: &Router, only: Option<&str>) -> ExitCode {
    let snapshot = router.snapshot();
    let clients: Vec<_> = (snapshot.clients().iter())
        .filter(|c| only.is_none_or(|n| c.name() == n))
        .collect();
    if let (Some(name), true) = (only, clients.is_empty()) {
        eprintln!("error: no client named '{name}'");
        return ExitCode::from(2);
    }
    if clients.is_empty() {
        println!("(no named clients)");
    }
    for c in clients {
        let state = match c.refused_because(time::OffsetDateTime::now_utc()) {
            Some(why) => why.replace("this API key is ", ""),
            None => "active".into(),
        };
        let groups = c.groups().map_or("all".into(), |g| g.join(", "));
        let budget = c.budget().map_or("none".into(), |b| {
            let usd = b.cap.picodollars.map(|p| {
                format!(
                    "${}",
                    p as f64 / router_core::tenants::PICODOLLARS_PER_USD as f64
                )
            });
            let tokens = b.cap.tokens.map(|t| format!("{t} tokens"));
            let caps: Vec<String> = usd.into_iter().chain(tokens).collect();
            let period = match b.span {
                router_core::tenants::Span::Period(p) => format!("{p:?}").to_lowercase(),
                router_core::tenants::Span::Minute => "minute".into(),
            };
            format!("{} per {period}", caps.join(" + "))
        });
        let l = c.limits();
        let limits: Vec<String> = [
            l.rpm.map(|n| format!("{n} rpm")),
            l.tpm.map(|n| format!("{n} tpm")),
            l.parallel.map(|n| format!("{n} at once")),
        ]
        .into_iter()
        .flatten()
        .collect();
        println!(
            "{}  {state}  groups: {groups}  budget: {budget}  limits: {}{}",
            c.name(),
            if limits.is_empty() {
                "none".into()
            } else {
                limits.join(", ")
            },
            c.team()
                .map_or(String::new(), |t| format!("  team: {}", t.name())),
        );
    }
    ExitCode::SUCCESS
}
