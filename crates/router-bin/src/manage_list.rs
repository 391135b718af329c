//! `provider list` / `provider show` and `group list` / `group show`: the config's providers
//! and groups as written, keys masked.

// A command's output is its stdout.
#![allow(clippy::print_stdout)]

use crate::manage::{keys_of, parsed, shown_keys, usage_error};
use router_core::config::ProviderConfig;
use std::path::Path;
use std::process::ExitCode;

/// `provider list`, or `provider show NAME` with `only`.
pub(crate) fn providers(path: &Path, only: Option<&str>) -> ExitCode {
    let config = match parsed(path) {
        Ok(c) => c,
        Err(e) => return usage_error(&e),
    };
    let providers: Vec<&ProviderConfig> = (config.providers.iter())
        .filter(|p| only.is_none_or(|n| p.name.as_str() == n))
        .collect();
    if let (Some(name), true) = (only, providers.is_empty()) {
        return usage_error(&format!("no provider named '{name}'"));
    }
    let limits = |rpm: Option<u64>, tpm: Option<u64>, label: &str| {
        let said: Vec<String> = [
            rpm.map(|n| format!("{n} rpm")),
            tpm.map(|n| format!("{n} tpm")),
        ]
        .into_iter()
        .flatten()
        .collect();
        if said.is_empty() {
            String::new()
        } else {
            format!("  {label}: {}", said.join(", "))
        }
    };
    for p in providers {
        let keys = keys_of(p);
        let state = if p.disabled { "disabled" } else { "enabled" };
        let base = p.base_url.as_ref().map_or("-", |u| u.as_str());
        println!(
            "{}  {}  {state}  {base}  keys: {}{}",
            p.name.as_str(),
            p.kind(),
            keys.len(),
            limits(p.limits.rpm, p.limits.tpm, "limits per key"),
        );
        if only.is_some() {
            for ((n, k), shown) in keys.iter().enumerate().zip(shown_keys(p)) {
                let state = if k.disabled { "  disabled" } else { "" };
                let own = limits(k.rpm, k.tpm, "own limits");
                println!("  key {}#{n}  {shown}{state}{own}", p.name.as_str());
            }
            for m in &p.models {
                println!("  model {}/{}", p.name.as_str(), m.as_str());
            }
        }
    }
    ExitCode::SUCCESS
}

/// `group list`, or `group show NAME` with `only`.
pub(crate) fn groups(path: &Path, only: Option<&str>) -> ExitCode {
    let config = match parsed(path) {
        Ok(c) => c,
        Err(e) => return usage_error(&e),
    };
    let groups: Vec<_> = (config.groups.iter())
        .filter(|g| only.is_none_or(|n| g.name.as_str() == n))
        .collect();
    if let (Some(name), true) = (only, groups.is_empty()) {
        return usage_error(&format!("no group named '{name}'"));
    }
    for g in groups {
        println!("{}  {}", g.name.as_str(), g.strategy.name());
        for m in &g.models {
            let tags = if m.tags.is_empty() {
                String::new()
            } else {
                format!("  tags: {}", m.tags.join(","))
            };
            println!(
                "  {}/{}  weight {}{tags}",
                m.provider.as_str(),
                m.name.as_str(),
                m.weight.0
            );
        }
    }
    ExitCode::SUCCESS
}
