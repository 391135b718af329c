//! What a first config gets right or is told plainly: official providers without a base_url,
//! a base_url copied with an endpoint's path, a port from the environment, the README's
//! ten-line config, and admin endpoints left open.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use router_core::{ConfigError, Format, Router, Source};

fn load(yaml: &str) -> Result<Router, ConfigError> {
    let mut source = Source::from_text(yaml, Format::Yaml);
    source.file = Some("test.yaml".into());
    Router::from_source(&source)
}

fn problem(yaml: &str) -> String {
    match load(yaml) {
        Ok(_) => panic!("expected an error for:\n{yaml}"),
        Err(e) => e.to_string(),
    }
}

fn one_provider(provider: &str) -> String {
    format!(
        "groups:\n  - {{name: g, models: [{{provider: p, name: m}}]}}\nproviders:\n  - {{name: p, api_key: sk-first-screen-1, {provider}}}\n"
    )
}

fn base_url(snap: &router_core::Snapshot) -> String {
    snap.group("g").unwrap().pairs()[0]
        .provider()
        .base_url()
        .to_string()
}

#[test]
fn official_providers_need_no_base_url_when_their_type_is_written() {
    for (kind, url) in [
        ("openai", "https://api.openai.com/v1"),
        ("anthropic", "https://api.anthropic.com/v1"),
        ("gemini", "https://generativelanguage.googleapis.com/v1beta"),
    ] {
        let snap = load(&one_provider(&format!("type: {kind}")))
            .unwrap()
            .snapshot();
        assert_eq!(base_url(&snap), url, "{kind}");
    }
    // A base_url written still wins.
    let snap = load(&one_provider(
        "type: openai, base_url: \"http://127.0.0.1:9/v1/\"",
    ))
    .unwrap()
    .snapshot();
    assert_eq!(base_url(&snap), "http://127.0.0.1:9/v1");
}

#[test]
fn a_provider_without_a_type_or_an_azure_one_still_needs_its_base_url() {
    // No type may be any OpenAI-compatible server: its key is not sent to OpenAI by default.
    let said = problem(&one_provider("models: [m]"));
    assert!(said.contains("provider 'p' needs a base_url"), "{said}");
    assert!(
        said.contains("or a type: openai, anthropic or gemini"),
        "{said}"
    );
    let said = problem(&one_provider("type: azure"));
    assert!(
        said.contains(
            "its Azure OpenAI resource's endpoint, such as https://<resource>.openai.azure.com"
        ),
        "{said}"
    );
}

#[test]
fn a_base_url_ending_in_an_endpoint_is_refused_with_the_fix() {
    for (written, fix) in [
        ("https://api.openai.com/v1/chat/completions", "https://api.openai.com/v1"),
        ("https://api.openai.com/v1/responses/", "https://api.openai.com/v1"),
        ("http://localhost:8000/v1/embeddings", "http://localhost:8000/v1"),
        ("https://api.anthropic.com/v1/messages", "https://api.anthropic.com/v1"),
        (
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent",
            "https://generativelanguage.googleapis.com/v1beta",
        ),
    ] {
        let said = problem(&one_provider(&format!("base_url: \"{written}\"")));
        assert!(said.contains("providers[0].base_url"), "{said}");
        assert!(said.contains("ends in an endpoint's path"), "{said}");
        assert!(said.contains(&format!("write '{fix}'")), "{written}: {said}");
    }
}

#[test]
fn the_port_may_come_from_the_environment() {
    // A variable only this test reads.
    std::env::set_var("FIRST_SCREEN_TEST_PORT", "9123");
    let yaml = one_provider("type: mock");
    let snap = load(&format!("port: ${{FIRST_SCREEN_TEST_PORT}}\n{yaml}"))
        .unwrap()
        .snapshot();
    assert_eq!(snap.listen().port(), 9123);
    let snap = load(&format!(
        "port: \"${{FIRST_SCREEN_TEST_UNSET:-8181}}\"\n{yaml}"
    ))
    .unwrap()
    .snapshot();
    assert_eq!(snap.listen().port(), 8181);
    let said = problem(&format!("port: \"${{FIRST_SCREEN_TEST_UNSET}}x\"\n{yaml}"));
    assert!(
        said.contains(
            "port must be a number between 1 and 65535, got 'x' (from ${FIRST_SCREEN_TEST_UNSET}x)"
        ),
        "{said}"
    );
}

#[test]
fn the_readmes_ten_line_config_loads_and_calls_openai() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let section = readme
        .split("### A real provider in ten lines")
        .nth(1)
        .unwrap();
    let yaml = section.split("```yaml\n").nth(1).unwrap();
    let yaml = yaml.split("```").next().unwrap();
    assert!(yaml.lines().count() <= 10, "{yaml}");
    for (name, value) in [
        ("ROUTER_CLIENT_KEY", "sk-readme-client-key-1"),
        ("ROUTER_ADMIN_KEY", "sk-readme-admin-key-1"),
        ("OPENAI_API_KEY", "sk-readme-openai-key-1"),
    ] {
        // Variables only this test reads.
        std::env::set_var(name, value);
    }
    let snap = load(yaml).unwrap().snapshot();
    assert!(snap.warnings().is_empty(), "{:?}", snap.warnings());
    assert!(snap.unpriced().is_empty(), "{:?}", snap.unpriced());
    let pair = &snap.group("fast").unwrap().pairs()[0];
    assert_eq!(pair.provider().base_url(), "https://api.openai.com/v1");
}

#[test]
fn open_admin_doors_are_warned_about() {
    let groups = one_provider("type: mock");
    let warned = |yaml: &str, needle: &str| {
        let snap = load(yaml).unwrap().snapshot();
        snap.warnings().iter().any(|w| w.contains(needle))
    };
    // No key at all: everything is open.
    assert!(warned(
        &groups,
        "no api_key and no admin_key: anyone who can reach the router"
    ));
    // Client keys without an admin key: they open the admin endpoints.
    let clients = format!("api_key: sk-client-key-0001\n{groups}");
    assert!(warned(
        &clients,
        "admin_key is not set, so every client key also opens"
    ));
    // An admin key that is a client key.
    let same = format!("admin_key: sk-client-key-0001\n{clients}");
    assert!(warned(&same, "admin_key is also a client key"));
    // Apart: nothing to say.
    let apart = format!("admin_key: sk-admin-key-0001\n{clients}");
    let snap = load(&apart).unwrap().snapshot();
    assert!(snap.warnings().is_empty(), "{:?}", snap.warnings());
}
