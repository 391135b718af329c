//! `llm-router provider …` and `llm-router group …`: list and show what the config file
//! holds, or change it through the config editor (comments and layout kept, validated before
//! it is written); a running router's watcher applies the change. Keys are shown masked.
//! A key can be given as an argument, on standard input (one per line) or by the name of an
//! environment variable holding it, so it need not be typed into a command line that shell
//! history keeps; a key written as `${VARIABLE}` is kept as that reference and read by the
//! router when it loads the config.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use crate::editor::{
    edit_file, Edit, EditError, GroupEdit, NewGroup, NewKey, NewModel, NewProvider, ProviderEdit,
};
use router_core::config::{Config, ProviderConfig, ProviderKey};
use router_core::{Secret, Source};
use std::path::Path;
use std::process::ExitCode;

/// Where a command's keys come from.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct KeyInput {
    /// A key (repeat for several; visible in shell history: prefer the two below).
    #[arg(long = "key")]
    pub keys: Vec<String>,
    /// Read keys from standard input, one per line.
    #[arg(long)]
    pub key_stdin: bool,
    /// Read a key from this environment variable of the command (repeat for several).
    #[arg(long = "key-env", value_name = "VARIABLE")]
    pub key_env: Vec<String>,
}

impl KeyInput {
    /// The keys, from every source given.
    fn read(&self) -> Result<Vec<String>, String> {
        let mut keys = self.keys.clone();
        for name in &self.key_env {
            match std::env::var(name) {
                Ok(v) if !v.is_empty() => keys.push(v),
                _ => return Err(format!("the environment variable {name} is unset or empty")),
            }
        }
        if self.key_stdin {
            for line in std::io::stdin().lines() {
                let line = line.map_err(|e| format!("cannot read standard input: {e}"))?;
                let key = line.trim();
                if !key.is_empty() {
                    keys.push(key.to_string());
                }
            }
        }
        Ok(keys)
    }
}

/// `provider …`.
#[derive(Debug, clap::Subcommand)]
pub enum ProviderCommand {
    /// List the providers, their type, keys and state.
    List,
    /// Show one provider with each of its keys (masked), numbered from 0.
    Show {
        /// Its name.
        name: String,
    },
    /// Add a provider.
    Add {
        /// Its name.
        name: String,
        /// openai (any OpenAI-compatible API), anthropic, gemini, azure or mock.
        #[arg(long = "type", default_value = "openai")]
        kind: String,
        /// Its base URL, such as https://api.openai.com/v1 (every type but mock).
        #[arg(long)]
        base_url: Option<String>,
        /// Its keys.
        #[command(flatten)]
        keys: KeyInput,
        /// A model callable without a group as NAME/MODEL (repeat for several).
        #[arg(long = "model")]
        models: Vec<String>,
        /// Requests per minute the upstream allows each key.
        #[arg(long)]
        rpm: Option<u64>,
        /// Tokens per minute the upstream allows each key.
        #[arg(long)]
        tpm: Option<u64>,
    },
    /// Remove a provider no group uses.
    Remove {
        /// Its name.
        name: String,
    },
    /// Use the provider again.
    Enable {
        /// Its name.
        name: String,
    },
    /// Keep the provider in the file but send it nothing.
    Disable {
        /// Its name.
        name: String,
    },
    /// A provider's keys.
    #[command(subcommand)]
    Key(KeyCommand),
}

/// `provider key …`; keys are numbered from 0 as `provider show` lists them.
#[derive(Debug, clap::Subcommand)]
pub enum KeyCommand {
    /// Add one key to a provider.
    Add {
        /// The provider's name.
        provider: String,
        /// Its keys.
        #[command(flatten)]
        keys: KeyInput,
        /// Its own requests per minute.
        #[arg(long)]
        rpm: Option<u64>,
        /// Its own tokens per minute.
        #[arg(long)]
        tpm: Option<u64>,
    },
    /// Remove a key (the ones after it are renumbered).
    Remove {
        /// The provider's name.
        provider: String,
        /// The key's number (from `provider show`).
        number: usize,
    },
    /// Keep a key in the file but do not use it.
    Disable {
        /// The provider's name.
        provider: String,
        /// The key's number (from `provider show`).
        number: usize,
    },
    /// Use a disabled key again.
    Enable {
        /// The provider's name.
        provider: String,
        /// The key's number (from `provider show`).
        number: usize,
    },
}

/// `group …`.
#[derive(Debug, clap::Subcommand)]
pub enum GroupCommand {
    /// List the groups, their strategy and models.
    List,
    /// Show one group.
    Show {
        /// Its name.
        name: String,
    },
    /// Add a group.
    Add {
        /// Its name.
        name: String,
        /// usage, round_robin, fallback, weighted_random, least_busy, lowest_cost,
        /// lowest_latency or lowest_tpm_rpm [default: usage].
        #[arg(long)]
        strategy: Option<String>,
        /// A model as PROVIDER/MODEL (repeat for several; one at least).
        #[arg(long = "model", required = true)]
        models: Vec<String>,
    },
    /// Remove a group.
    Remove {
        /// Its name.
        name: String,
    },
    /// Set a group's strategy.
    SetStrategy {
        /// Its name.
        name: String,
        /// The strategy.
        strategy: String,
    },
    /// A group's models.
    #[command(subcommand)]
    Model(ModelCommand),
}

/// `group model …`; a model is PROVIDER/MODEL.
#[derive(Debug, clap::Subcommand)]
pub enum ModelCommand {
    /// Add a model to a group.
    Add {
        /// The group's name.
        group: String,
        /// PROVIDER/MODEL.
        model: String,
        /// Its weight [default: 1].
        #[arg(long)]
        weight: Option<f64>,
        /// A tag requests may ask for (repeat for several).
        #[arg(long = "tag")]
        tags: Vec<String>,
    },
    /// Remove a model from a group.
    Remove {
        /// The group's name.
        group: String,
        /// PROVIDER/MODEL.
        model: String,
    },
    /// Set a model's weight.
    SetWeight {
        /// The group's name.
        group: String,
        /// PROVIDER/MODEL.
        model: String,
        /// The weight.
        weight: f64,
    },
}

/// `PROVIDER/MODEL` split at its first slash (model names may have more).
fn provider_model(written: &str) -> Result<(String, String), String> {
    match written.split_once('/') {
        Some((p, m)) if !p.is_empty() && !m.is_empty() => Ok((p.to_string(), m.to_string())),
        _ => Err(format!(
            "'{written}' is not PROVIDER/MODEL (such as openai/gpt-4o)"
        )),
    }
}

/// A provider's keys as they may be shown, in order: a `${VARIABLE}` reference as written,
/// else masked as the router masks it (told apart from the provider's other keys); an OAuth
/// credential as `oauth:` and its client id.
pub(crate) fn shown_keys(p: &ProviderConfig) -> Vec<String> {
    let keys = keys_of(p);
    let values: Vec<Secret> = keys.iter().map(|k| Secret::new(k.key.as_str())).collect();
    let masked = router_core::masked_apart(&values);
    (keys.iter().zip(masked))
        .map(|(k, m)| match &k.oauth {
            Some(oauth) => format!("oauth:{}", oauth.client_id.as_str()),
            None => k.key.template().map_or(m, str::to_string),
        })
        .collect()
}

/// A provider's keys in order (`api_key`, then `api_keys`).
pub(crate) fn keys_of(p: &ProviderConfig) -> Vec<&ProviderKey> {
    p.api_key.iter().chain(&p.api_keys).collect()
}

pub(crate) fn parsed(path: &Path) -> Result<Config, String> {
    Source::read(path)
        .and_then(|s| s.parse())
        .map_err(|e| e.to_string())
}

/// Whether the router at `target` serves the file at `path`: an error saying why not (a
/// different file, the built-in example, or no answer).
pub fn served_by(path: &Path, target: &crate::status::Target) -> Result<(), String> {
    let mine = std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let served = target.served_file().map_err(|e| {
        format!(
            "cannot tell which file the router at {} serves: {e}",
            target.url
        )
    })?;
    match served {
        Some(s) if Path::new(&s) == mine => Ok(()),
        Some(s) => Err(format!(
            "{} is not the file the router at {} serves ({s}); edit that one, or leave out --url",
            mine.display(),
            target.url
        )),
        None => Err(format!(
            "the router at {} serves the built-in example, not {}",
            target.url,
            mine.display()
        )),
    }
}

/// Exit code 1 with the message (2 for an entry that does not exist).
pub(crate) fn refused(e: &EditError) -> ExitCode {
    eprintln!("error: {e}");
    match e {
        EditError::NotFound(_) => ExitCode::from(2),
        _ => ExitCode::FAILURE,
    }
}

pub(crate) fn usage_error(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

/// Makes `edit` on the file at `path`, printing what changed.
fn run(path: &Path, edit: Edit) -> ExitCode {
    match edit_file(path, &edit) {
        Ok(said) => {
            println!("{said}");
            ExitCode::SUCCESS
        }
        Err(e) => refused(&e),
    }
}

/// Runs a `provider …` command on the config file at `path`.
pub fn provider(path: &Path, command: ProviderCommand) -> ExitCode {
    let edit = match command {
        ProviderCommand::List => return crate::manage_list::providers(path, None),
        ProviderCommand::Show { name } => return crate::manage_list::providers(path, Some(&name)),
        ProviderCommand::Add {
            name,
            kind,
            base_url,
            keys,
            models,
            rpm,
            tpm,
        } => {
            let api_keys = match keys.read() {
                Ok(k) => k,
                Err(e) => return usage_error(&e),
            };
            let new = NewProvider {
                name,
                kind: Some(kind),
                base_url,
                api_keys,
                models,
                rpm,
                tpm,
            };
            ProviderEdit::Add(new)
        }
        ProviderCommand::Remove { name } => ProviderEdit::Remove(name),
        ProviderCommand::Enable { name } => ProviderEdit::SetDisabled(name, false),
        ProviderCommand::Disable { name } => ProviderEdit::SetDisabled(name, true),
        ProviderCommand::Key(KeyCommand::Add {
            provider,
            keys,
            rpm,
            tpm,
        }) => {
            let key = match keys.read().as_deref() {
                Ok([one]) => one.clone(),
                Ok(_) => return usage_error("give one key: --key, --key-stdin or --key-env"),
                Err(e) => return usage_error(e),
            };
            ProviderEdit::KeyAdd(provider, NewKey { key, rpm, tpm })
        }
        ProviderCommand::Key(KeyCommand::Remove { provider, number }) => {
            ProviderEdit::KeyRemove(provider, number)
        }
        ProviderCommand::Key(KeyCommand::Disable { provider, number }) => {
            ProviderEdit::KeySetDisabled(provider, number, true)
        }
        ProviderCommand::Key(KeyCommand::Enable { provider, number }) => {
            ProviderEdit::KeySetDisabled(provider, number, false)
        }
    };
    run(path, Edit::Provider(edit))
}

/// Runs a `group …` command on the config file at `path`.
pub fn group(path: &Path, command: GroupCommand) -> ExitCode {
    let model = |written: &str, weight: Option<f64>, tags: Vec<String>| {
        provider_model(written).map(|(provider, name)| NewModel {
            provider,
            name,
            weight,
            tags,
        })
    };
    let edit = match command {
        GroupCommand::List => return crate::manage_list::groups(path, None),
        GroupCommand::Show { name } => return crate::manage_list::groups(path, Some(&name)),
        GroupCommand::Add {
            name,
            strategy,
            models,
        } => {
            let models: Result<Vec<NewModel>, String> =
                models.iter().map(|m| model(m, None, Vec::new())).collect();
            match models {
                Ok(models) => GroupEdit::Add(NewGroup {
                    name,
                    strategy,
                    models,
                }),
                Err(e) => return usage_error(&e),
            }
        }
        GroupCommand::Remove { name } => GroupEdit::Remove(name),
        GroupCommand::SetStrategy { name, strategy } => GroupEdit::SetStrategy(name, strategy),
        GroupCommand::Model(ModelCommand::Add {
            group,
            model: m,
            weight,
            tags,
        }) => match model(&m, weight, tags) {
            Ok(m) => GroupEdit::ModelAdd(group, m),
            Err(e) => return usage_error(&e),
        },
        GroupCommand::Model(ModelCommand::Remove { group, model }) => {
            match provider_model(&model) {
                Ok((p, m)) => GroupEdit::ModelRemove(group, p, m),
                Err(e) => return usage_error(&e),
            }
        }
        GroupCommand::Model(ModelCommand::SetWeight {
            group,
            model,
            weight,
        }) => match provider_model(&model) {
            Ok((p, m)) => GroupEdit::ModelWeight(group, p, m, weight),
            Err(e) => return usage_error(&e),
        },
    };
    run(path, Edit::Group(edit))
}
