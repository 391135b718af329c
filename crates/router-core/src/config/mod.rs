//! Reading the config file: YAML or JSON by extension, `${VAR}` expansion, and errors that name
//! the file, the key path and (for YAML) the line.

mod cache;
mod de;
mod env;
mod lines;
mod oauth;
mod raw;
mod state;
mod telemetry;
mod tenants;

pub use cache::{CacheBackend, CacheConfig};
pub use oauth::{OAuthConfig, OAuthGrant};
pub use raw::{
    BreakerConfig, BudgetConfig, ClientConfig, Config, EnvString, GroupConfig, KeyLimitsConfig,
    LedgerConfig, LimitsConfig, MaxTokensField, ModelConfig, Outage, Period, PriceConfig,
    ProviderConfig, ProviderKey, ProviderTimeouts, ResilienceConfig, ResponsesMode, ServerConfig,
    TeamConfig, Weight,
};
pub use state::{RedisConfig, StateConfig};
pub use telemetry::TelemetryConfig;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// File format of a config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML (`.yaml`, `.yml`, and anything not `.json`).
    Yaml,
    /// JSON (`.json`).
    Json,
}

impl Format {
    /// The format a file's extension implies.
    pub fn of_path(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("json") => Self::Json,
            _ => Self::Yaml,
        }
    }
}

/// One problem found in a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Key path, such as `groups[1].models[0].provider` (empty for the whole file).
    pub path: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

/// A config that cannot be used, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file, when the config came from one.
    pub file: Option<PathBuf>,
    /// The problems, in file order where known.
    pub problems: Vec<Problem>,
}

impl ConfigError {
    pub(crate) fn single(file: Option<&Path>, message: impl Into<String>) -> Self {
        Self {
            file: file.map(Path::to_path_buf),
            problems: vec![Problem {
                path: String::new(),
                line: None,
                message: message.into(),
            }],
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self
            .file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "<config>".to_string());
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{file}")?;
            if let Some(line) = p.line {
                write!(f, ":{line}")?;
            }
            if !p.path.is_empty() {
                write!(f, ": {}", p.path)?;
            }
            write!(f, ": {}", p.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// The same error with every secret `redactor` knows masked in its paths and messages (a
    /// key of the running config pasted where a name goes, say).
    pub fn redacted(mut self, redactor: &crate::Redactor) -> Self {
        for p in &mut self.problems {
            p.path = redactor.redact_str(&p.path).into_owned();
            p.message = redactor.redact_str(&p.message).into_owned();
        }
        self
    }
}

/// A config's text with where it came from, kept so later checks can point at lines.
#[derive(Debug, Clone)]
pub struct Source {
    /// The file, if any.
    pub file: Option<PathBuf>,
    /// The text.
    pub text: String,
    /// Its format.
    pub format: Format,
}

impl Source {
    /// Reads a file.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::single(Some(path), format!("cannot read config file: {e}"))
        })?;
        Ok(Self {
            file: Some(path.to_path_buf()),
            text,
            format: Format::of_path(path),
        })
    }

    /// Text held in memory.
    pub fn from_text(text: impl Into<String>, format: Format) -> Self {
        Self {
            file: None,
            text: text.into(),
            format,
        }
    }

    /// Parses the text into a [`Config`] (unknown keys and bad values are errors).
    pub fn parse(&self) -> Result<Config, ConfigError> {
        let problem = match self.format {
            Format::Yaml => {
                let de = serde_yaml::Deserializer::from_str(&self.text);
                match serde_path_to_error::deserialize::<_, Config>(de) {
                    Ok(c) => return Ok(c),
                    Err(e) => {
                        let written = e.path().to_string();
                        let path = clean_path(&written);
                        let inner = e.into_inner();
                        let line = inner.location().map(|l| l.line());
                        Problem {
                            message: mask_secret_words(
                                &strip_yaml_decorations(&inner.to_string(), &written),
                                ' ',
                            ),
                            path,
                            line,
                        }
                    }
                }
            }
            Format::Json => {
                let mut de = serde_json::Deserializer::from_str(&self.text);
                match serde_path_to_error::deserialize::<_, Config>(&mut de) {
                    Ok(c) => return Ok(c),
                    Err(e) => {
                        let path = clean_path(&e.path().to_string());
                        let inner = e.into_inner();
                        let message = inner.to_string();
                        let message = match message.rfind(" at line ") {
                            Some(i) => message[..i].to_string(),
                            None => message,
                        };
                        Problem {
                            path,
                            line: Some(inner.line()),
                            message: mask_secret_words(&message, ' '),
                        }
                    }
                }
            }
        };
        Err(ConfigError {
            file: self.file.clone(),
            problems: vec![problem],
        })
    }

    /// Key path → line, for YAML sources.
    pub(crate) fn line_index(&self) -> HashMap<String, usize> {
        match self.format {
            Format::Yaml => lines::line_index(&self.text),
            Format::Json => HashMap::new(),
        }
    }
}

/// A message about the config (a check's problem or warning) with every word that looks like a
/// key masked: a key pasted into the wrong field is quoted masked.
pub(crate) fn mask_message(text: &str) -> String {
    mask_secret_words(text, ' ')
}

fn clean_path(path: &str) -> String {
    if path == "." {
        String::new()
    } else {
        mask_secret_words(path, '.')
    }
}

/// Prefixes of the API keys of common providers.
const KEY_PREFIXES: &[&str] = &[
    "sk-",
    "sk_",
    "pk-",
    "rk-",
    "AIza",
    "gsk_",
    "xai-",
    "hf_",
    "ghp_",
    "github_pat_",
    "glpat-",
    "AKIA",
    "Bearer ",
];

/// Whether a word in a config error (a map key where a key was pasted by mistake, say) may be
/// a secret: it starts as common API keys do, or it is a long run of key characters with digits
/// and letters mixed.
fn looks_secret(word: &str) -> bool {
    if KEY_PREFIXES.iter().any(|p| word.starts_with(p)) && word.len() > 8 {
        return true;
    }
    let key_chars = word.chars().all(is_key_char);
    let digits = word.chars().filter(char::is_ascii_digit).count();
    let letters = word.chars().filter(char::is_ascii_alphabetic).count();
    word.len() >= 20 && key_chars && digits >= 4 && letters >= 4
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.+/=".contains(c)
}

/// `word` with each run of key characters in it that [`looks_secret`] masked: a key glued to
/// other text (`a:sk-…`, `api_keys[1]`) is found too.
fn mask_runs(word: &str) -> String {
    word.split_inclusive(|c: char| !is_key_char(c))
        .map(|piece| {
            let (run, sep) = match piece.char_indices().last() {
                Some((i, c)) if !is_key_char(c) => piece.split_at(i),
                _ => (piece, ""),
            };
            if looks_secret(run) {
                format!("{}{sep}", crate::Secret::new(run).masked())
            } else {
                piece.to_string()
            }
        })
        .collect()
}

/// `text` with each of its words (split at `sep`, and inside backticks) masked where it
/// [`looks_secret`] (see [`mask_runs`]).
fn mask_secret_words(text: &str, sep: char) -> String {
    let masked: Vec<String> = text.split(sep).map(mask_runs).collect();
    let text = masked.join(&sep.to_string());
    // serde names an unknown field in backticks.
    let parts: Vec<&str> = text.split('`').collect();
    parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if i % 2 == 1 {
                mask_runs(p)
            } else {
                (*p).to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("`")
}

/// serde_yaml decorates messages with the path and the position, which [`Problem`] carries apart.
fn strip_yaml_decorations(message: &str, path: &str) -> String {
    let mut m = message;
    // serde_yaml prefixes the path it knows (the parent of an unknown key, say).
    if let Some((prefix, rest)) = m.split_once(": ") {
        if !prefix.is_empty() && !prefix.contains(' ') && path.starts_with(prefix) {
            m = rest;
        }
    }
    match m.rfind(" at line ") {
        Some(i) => m[..i].to_string(),
        None => m.to_string(),
    }
}
