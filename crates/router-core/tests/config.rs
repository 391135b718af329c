//! Config loading: formats, env expansion, and errors that name file, key path and line.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use router_core::{ConfigError, Format, Router, Source};
use std::io::Write;

const GOOD: &str = r#"
port: 8080
api_key: "client-key"
request_penalty: 0
error_penalty: 0
groups:
  - name: "gpt-4-turbo"
    models:
      - weight: 1
        provider: "openai"
        name: "gpt-4-turbo-preview"
providers:
  - name: "openai"
    base_url: "https://api.openai.com/v1"
    api_keys: ["${CFG_TEST_OPENAI_KEY}", "sk-second"]
"#;

fn load(yaml: &str) -> Result<Router, ConfigError> {
    let mut source = Source::from_text(yaml, Format::Yaml);
    source.file = Some("test.yaml".into());
    Router::from_source(&source)
}

fn err(yaml: &str) -> (String, ConfigError) {
    match load(yaml) {
        Ok(_) => panic!("expected an error for:\n{yaml}"),
        Err(e) => (e.to_string(), e),
    }
}

#[test]
fn seed_schema_loads_and_skips_empty_env_key() {
    // CFG_TEST_OPENAI_KEY is unset: that key is skipped with a warning, the other stays.
    let router = load(GOOD).unwrap();
    let snap = router.snapshot();
    assert_eq!(snap.listen().port(), 8080);
    let group = snap.group("gpt-4-turbo").unwrap();
    assert_eq!(group.pairs().len(), 1);
    assert_eq!(group.pairs()[0].model(), "gpt-4-turbo-preview");
    // Named by its place among the keys as written, the skipped one counted.
    assert_eq!(group.pairs()[0].key_id(), "openai#1");
    assert!(
        snap.warnings()
            .iter()
            .any(|w| w.contains("providers[0].api_keys[0]") && w.contains("${CFG_TEST_OPENAI_KEY}")),
        "{:?}",
        snap.warnings()
    );
    let table = snap.routing_table();
    assert!(table.contains("group gpt-4-turbo"), "{table}");
    assert!(
        !table.contains("sk-second"),
        "routing table shows a key: {table}"
    );
}

#[test]
fn env_variables_and_defaults_expand_everywhere() {
    std::env::set_var("CFG_TEST_HOST", "llm.internal");
    let yaml = r#"
listen: "${CFG_TEST_LISTEN:-127.0.0.1:9999}"
groups:
  - name: "${CFG_TEST_GROUP:-g}"
    models: [{provider: p, name: m}]
providers:
  - name: p
    base_url: "https://${CFG_TEST_HOST}/v1"
    api_key: "${CFG_TEST_UNSET_KEY:-sk-from-default}"
"#;
    let snap = load(yaml).unwrap().snapshot();
    assert_eq!(snap.listen().to_string(), "127.0.0.1:9999");
    let pair = &snap.group("g").unwrap().pairs()[0];
    assert_eq!(pair.provider().base_url(), "https://llm.internal/v1");
    assert_eq!(pair.provider().keys()[0].expose(), "sk-from-default");
}

#[test]
fn listen_wins_over_port() {
    let yaml = GOOD.replace("port: 8080", "port: 8080\nlisten: \"127.0.0.1:7000\"");
    assert_eq!(
        load(&yaml).unwrap().snapshot().listen().to_string(),
        "127.0.0.1:7000"
    );
}

#[test]
fn unknown_key_is_reported_with_path_and_line() {
    let yaml = GOOD.replace(
        "        provider: \"openai\"",
        "        provider: \"openai\"\n        wieght: 2",
    );
    let (msg, e) = err(&yaml);
    assert_eq!(e.problems[0].path, "groups[0].models[0].wieght", "{msg}");
    assert_eq!(e.problems[0].line, Some(11), "{msg}");
    assert!(
        msg.starts_with(
            "test.yaml:11: groups[0].models[0].wieght: unknown field `wieght`, expected one of"
        ),
        "{msg}"
    );
}

#[test]
fn bad_weights_are_reported() {
    let (msg, e) = err(&GOOD.replace("weight: 1", "weight: -1"));
    assert_eq!(e.problems[0].path, "groups[0].models[0].weight", "{msg}");
    assert_eq!(e.problems[0].line, Some(9), "{msg}");
    assert!(msg.contains(">= 0"), "{msg}");
    let (msg, e) = err(&GOOD.replace("weight: 1", "weight: heavy"));
    assert_eq!(e.problems[0].path, "groups[0].models[0].weight", "{msg}");
    assert!(msg.contains("a number >= 0"), "{msg}");
}

#[test]
fn port_out_of_range() {
    let (msg, e) = err(&GOOD.replace("port: 8080", "port: 70000"));
    assert_eq!(e.problems[0].path, "port");
    assert_eq!(e.problems[0].line, Some(2));
    assert!(msg.contains("between 1 and 65535"), "{msg}");
}

#[test]
fn cross_reference_errors_name_path_and_line() {
    let yaml = r#"groups:
  - name: a
    models:
      - provider: nowhere
        name: m
  - name: a
    models: [{provider: p, name: m}]
  - name: empty
    models: []
providers:
  - name: p
    base_url: "https://ok.example/v1"
    api_key: k
  - name: p
    base_url: "https://ok.example/v1"
    api_key: k
  - name: q
    base_url: "ftp://bad.example"
    api_key: k
"#;
    let (msg, e) = err(yaml);
    let find = |path: &str| {
        e.problems
            .iter()
            .find(|p| p.path == path)
            .unwrap_or_else(|| panic!("no problem at {path}:\n{msg}"))
            .clone()
    };
    let p = find("groups[0].models[0].provider");
    assert_eq!(p.line, Some(4));
    assert!(p.message.contains("'nowhere' is not defined"), "{msg}");
    let p = find("groups[1].name");
    assert_eq!(p.line, Some(6));
    assert!(p.message.contains("duplicate group name 'a'"));
    let p = find("groups[2].models");
    assert_eq!(p.line, Some(9));
    assert!(p.message.contains("no models"));
    let p = find("providers[1].name");
    assert_eq!(p.line, Some(14));
    assert!(p.message.contains("duplicate provider name 'p'"));
    let p = find("providers[2].base_url");
    assert_eq!(p.line, Some(18));
    assert!(p.message.contains("http:// or https://"));
    assert!(
        msg.contains("test.yaml:4: groups[0].models[0].provider"),
        "{msg}"
    );
}

#[test]
fn group_left_without_keys_is_an_error_and_model_is_skipped() {
    let yaml = r#"
groups:
  - name: both
    models:
      - {provider: keyless, name: a}
      - {provider: keyed, name: b}
  - name: only-keyless
    models:
      - {provider: keyless, name: a}
providers:
  - {name: keyless, base_url: "http://127.0.0.1:1/v1", api_keys: ["${CFG_TEST_NOT_SET}"]}
  - {name: keyed, base_url: "http://127.0.0.1:1/v1", api_key: "k"}
"#;
    let (msg, e) = err(yaml);
    assert_eq!(e.problems.len(), 1, "{msg}");
    assert_eq!(e.problems[0].path, "groups[1].models");
    assert!(msg.contains("no usable model"), "{msg}");
    // Without the keyless-only group, the other loads with the keyless model skipped.
    let ok = yaml.replace(
        "  - name: only-keyless\n    models:\n      - {provider: keyless, name: a}\n",
        "",
    );
    let snap = load(&ok).unwrap().snapshot();
    let pairs = snap.group("both").unwrap().pairs();
    assert_eq!(pairs.len(), 1);
    assert_eq!(pairs[0].model(), "b");
    // The warning names the variable that was empty.
    assert!(
        snap.warnings()
            .iter()
            .any(|w| w.contains("groups[0].models[0]")
                && w.contains("has no usable key (${CFG_TEST_NOT_SET} empty)")),
        "{:?}",
        snap.warnings()
    );
}

#[test]
fn no_groups_is_an_error() {
    let (msg, _) = err("providers: []\n");
    assert!(msg.contains("no groups defined"), "{msg}");
}

#[test]
fn json_config_by_extension_with_located_errors() {
    let dir = std::env::temp_dir().join(format!("cfgtest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.json");
    let json = r#"{
  "api_key": "k",
  "groups": [{"name": "g", "models": [{"provider": "p", "name": "m", "weight": 2}]}],
  "providers": [{"name": "p", "base_url": "http://127.0.0.1:9/v1", "api_key": "sk"}]
}"#;
    std::fs::write(&path, json).unwrap();
    let router = Router::from_file(&path).unwrap();
    assert_eq!(
        router.snapshot().group("g").unwrap().pairs()[0].weight(),
        2.0
    );

    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(json.replace("\"weight\": 2", "\"weigth\": 2").as_bytes())
        .unwrap();
    drop(f);
    let e = Router::from_file(&path).unwrap_err();
    let msg = e.to_string();
    assert_eq!(e.problems[0].path, "groups[0].models[0].weigth", "{msg}");
    assert_eq!(e.problems[0].line, Some(3), "{msg}");
    assert!(
        msg.contains("config.json:3:") && msg.contains("unknown field `weigth`"),
        "{msg}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn example_configs_load_and_agree() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../");
    let yaml = Router::from_file(format!("{root}config.example.yaml")).unwrap();
    let json = Router::from_file(format!("{root}config.example.json")).unwrap();
    assert_eq!(
        yaml.snapshot().routing_table(),
        json.snapshot().routing_table()
    );
    // The settings too, every one of them.
    let settings = |r: &Router| {
        let s = r.snapshot();
        format!("{:?} {:?} {:?}", s.server(), s.resilience(), s.ledger())
    };
    assert_eq!(settings(&yaml), settings(&json));
    assert!(yaml.snapshot().group("demo").is_some());
}

#[test]
fn client_keys_that_all_expand_to_empty_refuse_to_load() {
    let yaml = GOOD.replace(
        "api_key: \"client-key\"",
        "api_key: \"${CFG_TEST_NO_CLIENT_KEY}\"",
    );
    let (msg, e) = err(&yaml);
    assert_eq!(e.problems[0].path, "api_key", "{msg}");
    assert!(
        msg.contains("refusing to serve without authentication"),
        "{msg}"
    );
    // No key configured at all is a deliberate choice: it loads.
    let open = GOOD.replace("api_key: \"client-key\"\n", "");
    assert!(load(&open).unwrap().snapshot().client_keys().is_empty());
}

#[test]
fn key_lists_accept_one_string_and_never_echo_a_bad_value() {
    let one = GOOD.replace(
        "[\"${CFG_TEST_OPENAI_KEY}\", \"sk-second\"]",
        "\"sk-only-one\"",
    );
    let snap = load(&one).unwrap().snapshot();
    assert_eq!(
        snap.group("gpt-4-turbo").unwrap().pairs()[0]
            .provider()
            .keys()[0]
            .expose(),
        "sk-only-one"
    );
    let bad = GOOD.replace(
        "[\"${CFG_TEST_OPENAI_KEY}\", \"sk-second\"]",
        "{nested: \"sk-live-secret\"}",
    );
    let (msg, e) = err(&bad);
    assert_eq!(e.problems[0].path, "providers[0].api_keys", "{msg}");
    assert!(!msg.contains("sk-live-secret"), "{msg}");
    let unterminated = GOOD.replace("\"sk-second\"", "\"sk-abc${oops\"");
    let (msg, _) = err(&unterminated);
    assert!(
        msg.contains("unterminated") && !msg.contains("sk-abc"),
        "{msg}"
    );
}

#[test]
fn the_binary_gets_compiled_settings() {
    let yaml = GOOD.replace(
        "error_penalty: 0\n",
        "error_penalty: 0\nserver:\n  admin_listen: \"127.0.0.1:9090\"\n  cors_origins: [\"https://app.example\", \"bad\\u0001origin\"]\nledger: {path: data/usage.db}\n",
    );
    let router = load(&yaml).unwrap();
    let snapshot = router.snapshot();
    let server = snapshot.server();
    assert_eq!(server.admin_listen, Some("127.0.0.1:9090".parse().unwrap()));
    assert_eq!(
        server.cors_origins,
        router_core::CorsOrigins::Only(vec!["https://app.example".parse().unwrap()])
    );
    // An origin no request can carry is left out, and said so.
    assert!(
        snapshot
            .warnings()
            .iter()
            .any(|w| w.starts_with("server.cors_origins[1]")),
        "{:?}",
        snapshot.warnings()
    );
    // The ledger's file is resolved against the config file's folder.
    assert_eq!(
        snapshot.ledger().path.as_deref(),
        Some(std::path::Path::new("./data/usage.db"))
    );
    let any = load(GOOD).unwrap();
    assert_eq!(
        any.snapshot().server().cors_origins,
        router_core::CorsOrigins::Any
    );
}

#[test]
fn config_errors_never_print_a_key() {
    let provider = |extra: &str| {
        format!(
            "groups:\n  - name: g\n    models: [{{provider: p, name: m}}]\nproviders:\n  - name: p\n    base_url: \"https://example.com/v1\"\n{extra}"
        )
    };
    let key = "sk-live-0123456789abcdefQRST";
    // A key pasted as a map key: masked in the path and in the message.
    let (msg, _) = err(&provider(&format!("    {key}: 1\n")));
    assert!(!msg.contains(key), "{msg}");
    assert!(
        msg.contains("providers[0].sk-…QRST: unknown field `sk-…QRST`"),
        "{msg}"
    );
    // A long key-like word without a known prefix is masked too; a field name is not.
    let odd = "a1b2c3d4e5f6g7h8i9j0kk";
    let (msg, _) = err(&provider(&format!("    {odd}: 1\n")));
    assert!(!msg.contains(odd), "{msg}");
    let (msg, _) = err(&provider("    wieght: 1\n"));
    assert!(msg.contains("unknown field `wieght`"), "{msg}");
    // Keys are text: a number in a list of keys is a type error, and so is a bare number.
    let (msg, _) = err(&provider("    api_keys: [\"sk-fine-key\", 5]\n"));
    assert!(
        msg.contains("providers[0].api_keys[1]: a key must be a string, found a number"),
        "{msg}"
    );
    let (msg, _) = err(&provider("    api_key: 12345678\n"));
    assert!(
        msg.contains("providers[0].api_key: a key must be a string"),
        "{msg}"
    );
    assert!(!msg.contains("12345678"), "{msg}");
    // A control character is a load error that shows no part of the key.
    let (msg, _) = err(&provider("    api_keys: [\"sk-line-one\\nline-two\"]\n"));
    assert!(
        msg.contains("providers[0].api_keys[0]: the key has a control character at position 12"),
        "{msg}"
    );
    assert!(!msg.contains("line-one"), "{msg}");
    let (msg, _) = err(&format!(
        "api_key: \"client\\tkey\"\n{}",
        provider("    api_key: k\n")
    ));
    assert!(
        msg.contains("api_key: the key has a control character"),
        "{msg}"
    );
    // `api_key: null` is no key.
    assert!(load(&provider(
        "    api_key: null\n    api_keys: [\"sk-fine-key\"]\n"
    ))
    .is_ok());
}

#[test]
fn a_reload_error_masks_the_running_keys() {
    let dir = std::env::temp_dir().join(format!("cfg-reload-mask-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.yaml");
    // A key that looks like nothing in particular: only the running config says it is one.
    let key = "plainwordsecretvalue";
    let good = format!(
        "groups:\n  - name: g\n    models: [{{provider: p, name: m}}]\nproviders:\n  - {{name: p, base_url: \"https://example.com/v1\", api_key: {key}}}\n"
    );
    std::fs::write(&path, &good).unwrap();
    let r = Router::from_file(&path).unwrap();
    std::fs::write(&path, good.replace("api_key: ", "")).unwrap();
    let msg = r.reload().unwrap_err().to_string();
    assert!(!msg.contains(key), "{msg}");
    assert!(msg.contains("pla…alue"), "{msg}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The configs that ship in `deploy/` (compose, the Kubernetes ConfigMap, the Helm chart's
/// default values) load, with their secrets given as the pods' environment would.
#[test]
fn the_deploy_configs_load() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    let read = |path: &str| std::fs::read_to_string(root.join(path)).unwrap();
    let configmap: serde_yaml::Value = serde_yaml::from_str(&read("k8s/configmap.yaml")).unwrap();
    let values: serde_yaml::Value =
        serde_yaml::from_str(&read("helm/llm-router/values.yaml")).unwrap();
    let configs = [
        ("compose", read("compose/config.yaml")),
        (
            "k8s",
            configmap["data"]["config.yaml"]
                .as_str()
                .unwrap()
                .to_string(),
        ),
        ("helm", serde_yaml::to_string(&values["config"]).unwrap()),
    ];
    for (name, text) in configs {
        let text = text
            .replace("${LLM_ROUTER_API_KEY}", "a-client-key")
            .replace("${LLM_ROUTER_ADMIN_KEY}", "an-admin-key");
        if let Err(e) = load(&text) {
            panic!("{name}: {e}");
        }
    }
}
