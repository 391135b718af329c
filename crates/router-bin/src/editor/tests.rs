//! The editor on the example configs: every kind of change, what it leaves of the file, and
//! its refusals.

use super::*;
use router_core::config::Config;

const HASH: &str = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

/// A well-formed `sha256:` key of one digit.
fn hashed(digit: char) -> String {
    format!("sha256:{}", digit.to_string().repeat(64))
}

fn example(ext: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../config.example.{ext}"));
    std::fs::read_to_string(path).unwrap()
}

fn parsed(text: &str, format: Format) -> Config {
    Source::from_text(text, format).parse().unwrap()
}

/// Makes `edit` on `text`, which must succeed.
fn made(text: &str, format: Format, edit: Edit) -> String {
    match apply(text, format, &edit) {
        Ok((edited, _)) => edited,
        Err(e) => panic!("{edit:?} refused: {e}\n{text}"),
    }
}

/// Every line of `before` is in `after`, in order.
fn keeps_every_line(before: &str, after: &str) {
    let mut rest = after.lines();
    for line in before.lines() {
        assert!(
            rest.any(|l| l == line),
            "lost: {line}\n{}",
            &after[after.find("\ngroups:").unwrap_or(0)..]
        );
    }
}

fn openai() -> NewProvider {
    NewProvider {
        name: "acme".into(),
        kind: Some("openai".into()),
        base_url: Some("http://127.0.0.1:9/v1".into()),
        api_keys: vec!["sk-one-1111".into()],
        rpm: Some(60),
        ..NewProvider::default()
    }
}

fn model(provider: &str, name: &str) -> NewModel {
    NewModel {
        provider: provider.into(),
        name: name.into(),
        weight: None,
        tags: Vec::new(),
    }
}

/// The same series of changes on the YAML and the JSON example; each keeps the rest.
fn every_change(format: Format, ext: &str) {
    let original = example(ext);
    let p = |e: ProviderEdit| Edit::Provider(e);
    let g = |e: GroupEdit| Edit::Group(e);
    let mut text = made(&original, format, p(ProviderEdit::Add(openai())));
    let key = NewKey {
        key: "sk-two-2222".into(),
        rpm: Some(5),
        tpm: None,
    };
    text = made(&text, format, p(ProviderEdit::KeyAdd("acme".into(), key)));
    text = made(
        &text,
        format,
        p(ProviderEdit::KeySetDisabled("acme".into(), 0, true)),
    );
    let c = parsed(&text, format);
    let acme = c
        .providers
        .iter()
        .find(|p| p.name.as_str() == "acme")
        .unwrap();
    assert_eq!(acme.limits.rpm, Some(60));
    assert_eq!(acme.api_keys.len(), 2);
    assert!(acme.api_keys[0].disabled && acme.api_keys[0].key.as_str() == "sk-one-1111");
    assert_eq!(
        (acme.api_keys[1].rpm, acme.api_keys[1].disabled),
        (Some(5), false)
    );
    text = made(
        &text,
        format,
        p(ProviderEdit::KeySetDisabled("acme".into(), 0, false)),
    );
    let new_group = NewGroup {
        name: "fast".into(),
        strategy: Some("least_busy".into()),
        models: vec![model("acme", "gpt-4o-mini"), model("mock", "mock-echo")],
    };
    text = made(&text, format, g(GroupEdit::Add(new_group)));
    if format == Format::Yaml {
        // A new entry goes after the whole of the last one, its trailing comment lines too.
        let demo_end = "are served by models carrying all of them\n  - name: \"fast\"\n";
        assert!(text.contains(demo_end), "{text}");
        let mock_end =
            "no group or other provider uses it)\n  - name: \"acme\"\n    type: openai\n";
        assert!(text.contains(mock_end), "{text}");
    }
    let mut tagged = model("acme", "gpt-4o");
    tagged.weight = Some(2.5);
    tagged.tags = vec!["big".into()];
    text = made(&text, format, g(GroupEdit::ModelAdd("demo".into(), tagged)));
    let weight = GroupEdit::ModelWeight("fast".into(), "mock".into(), "mock-echo".into(), 3.0);
    text = made(&text, format, g(weight));
    text = made(
        &text,
        format,
        g(GroupEdit::SetStrategy("demo".into(), "fallback".into())),
    );
    let c = parsed(&text, format);
    let fast = c.groups.iter().find(|g| g.name.as_str() == "fast").unwrap();
    assert_eq!(fast.strategy, router_core::Strategy::LeastBusy);
    let weights: Vec<f64> = fast.models.iter().map(|m| m.weight.0).collect();
    assert_eq!(weights, [1.0, 3.0]);
    let demo = &c.groups[0];
    assert_eq!(demo.strategy, router_core::Strategy::Fallback);
    assert_eq!(demo.models[1].weight.0, 2.5);
    assert_eq!(demo.models[1].tags, ["big"]);
    assert!(!c.providers[1].api_keys[0].disabled);
    // Every line of the example is still there: only entries were added or values set.
    if format == Format::Yaml {
        let strategy = "    strategy: usage             #";
        let kept: String = (original.lines())
            .filter(|l| !l.starts_with(strategy))
            .map(|l| format!("{l}\n"))
            .collect();
        keeps_every_line(&kept, &text);
    }
    // And back: the file is the example again, but for where JSON's new members were.
    text = made(
        &text,
        format,
        g(GroupEdit::ModelRemove(
            "demo".into(),
            "acme".into(),
            "gpt-4o".into(),
        )),
    );
    text = made(
        &text,
        format,
        g(GroupEdit::SetStrategy("demo".into(), "usage".into())),
    );
    text = made(&text, format, g(GroupEdit::Remove("fast".into())));
    text = made(&text, format, p(ProviderEdit::KeyRemove("acme".into(), 1)));
    text = made(&text, format, p(ProviderEdit::Remove("acme".into())));
    let c = parsed(&text, format);
    assert_eq!((c.groups.len(), c.providers.len()), (1, 1));
    keeps_every_line(&original, &text);
}

#[test]
fn every_change_on_the_yaml_example_keeps_its_comments() {
    every_change(Format::Yaml, "yaml");
}

#[test]
fn every_change_on_the_json_example_keeps_its_text() {
    every_change(Format::Json, "json");
}

#[test]
fn refusals_say_why() {
    let text = example("yaml");
    let refused = |edit: Edit| apply(&text, Format::Yaml, &edit).unwrap_err();
    // The only provider of a group cannot go, nor be disabled (the group would not load).
    let e = refused(Edit::Provider(ProviderEdit::Remove("mock".into())));
    assert!(
        matches!(&e, EditError::Conflict(m) if m.contains("serves the group(s) demo")),
        "{e}"
    );
    let e = refused(Edit::Provider(ProviderEdit::SetDisabled(
        "mock".into(),
        true,
    )));
    assert!(
        matches!(&e, EditError::Invalid(m) if m.contains("groups[0].models") && m.contains("disabled")),
        "{e}"
    );
    let e = refused(Edit::Group(GroupEdit::SetStrategy(
        "demo".into(),
        "fastest".into(),
    )));
    assert!(
        matches!(&e, EditError::Invalid(m) if m.contains("groups[0].strategy")),
        "{e}"
    );
    let e = refused(Edit::Group(GroupEdit::ModelAdd(
        "demo".into(),
        model("nobody", "x"),
    )));
    assert!(
        matches!(&e, EditError::Invalid(m) if m.contains("provider 'nobody' is not defined")),
        "{e}"
    );
    let e = refused(Edit::Group(GroupEdit::Add(NewGroup {
        name: "demo".into(),
        ..NewGroup::default()
    })));
    assert!(
        matches!(&e, EditError::Conflict(m) if m.contains("exists already")),
        "{e}"
    );
    let e = refused(Edit::Provider(ProviderEdit::KeyRemove("mock".into(), 0)));
    assert!(
        matches!(&e, EditError::NotFound(m) if m.contains("has no key #0")),
        "{e}"
    );
    let e = refused(Edit::Group(GroupEdit::ModelRemove(
        "demo".into(),
        "mock".into(),
        "mock-echo".into(),
    )));
    assert!(
        matches!(&e, EditError::Invalid(m) if m.contains("has no models")),
        "{e}"
    );
    let e = refused(Edit::Client(ClientEdit::Remove("b".into())));
    assert!(
        matches!(&e, EditError::NotFound(m) if m.contains("'b'")),
        "{e}"
    );
}

#[test]
fn a_refused_edit_leaves_the_file_byte_identical() {
    let dir = std::env::temp_dir().join(format!("llm-router-editor-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.yaml");
    std::fs::write(&path, example("yaml")).unwrap();
    let before = std::fs::read(&path).unwrap();
    let edit = Edit::Group(GroupEdit::SetStrategy("demo".into(), "fastest".into()));
    assert!(edit_file(&path, &edit).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let said = edit_file(
        &path,
        &Edit::Group(GroupEdit::SetStrategy("demo".into(), "fallback".into())),
    );
    assert!(said
        .unwrap()
        .starts_with("set the strategy of group 'demo' to fallback in "));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn client_changes_keep_every_comment_of_the_example() {
    let example = example("yaml");
    let new = NewClient {
        name: "team-b".into(),
        groups: Some(vec!["demo".into()]),
        budget_usd: Some(50.0),
        rpm: Some(600),
        ..NewClient::default()
    };
    let c = |e: ClientEdit| Edit::Client(e);
    let edited = made(&example, Format::Yaml, c(ClientEdit::Add(new, HASH.into())));
    keeps_every_line(&example, &edited);
    let config = parsed(&edited, Format::Yaml);
    assert_eq!(config.clients[0].name, "team-b");
    assert_eq!(config.clients[0].key.as_ref().unwrap().as_str(), HASH);
    assert_eq!(config.clients[0].limits.rpm, Some(600));
    let disabled = made(
        &edited,
        Format::Yaml,
        c(ClientEdit::SetDisabled("team-b".into(), true)),
    );
    assert!(parsed(&disabled, Format::Yaml).clients[0].disabled);
    let rotated = made(
        &disabled,
        Format::Yaml,
        c(ClientEdit::Rotate("team-b".into(), hashed('0'))),
    );
    let config = parsed(&rotated, Format::Yaml);
    assert_eq!(
        config.clients[0].key.as_ref().unwrap().as_str(),
        hashed('0')
    );
    let removed = made(
        &rotated,
        Format::Yaml,
        c(ClientEdit::Remove("team-b".into())),
    );
    assert!(parsed(&removed, Format::Yaml).clients.is_empty());
    keeps_every_line(&example, &removed);
}

#[test]
fn client_changes_on_json_keep_its_key_order() {
    let example = example("json");
    let new = |name: &str| NewClient {
        name: name.into(),
        groups: Some(vec!["demo".into()]),
        budget_usd: Some(5.0),
        rpm: Some(60),
        ..NewClient::default()
    };
    let c = |e: ClientEdit| Edit::Client(e);
    let one = made(
        &example,
        Format::Json,
        c(ClientEdit::Add(new("a"), hashed('a'))),
    );
    let prefix = example.trim_end().trim_end_matches('}').trim_end();
    assert!(one.starts_with(prefix), "{one}");
    let two = made(
        &one,
        Format::Json,
        c(ClientEdit::Add(new("b"), hashed('b'))),
    );
    let got = parsed(&two, Format::Json).clients;
    assert_eq!((got[0].name.as_str(), got[1].name.as_str()), ("a", "b"));
    let written = r#"{"name": "b", "key": "HASH", "groups": ["demo"], "budget": {"usd": 5.0, "period": "month"}, "limits": {"rpm": 60}}"#;
    assert!(
        two.contains(&written.replace("HASH", &hashed('b'))),
        "{two}"
    );
    let disabled = made(
        &two,
        Format::Json,
        c(ClientEdit::SetDisabled("a".into(), true)),
    );
    let got = parsed(&disabled, Format::Json).clients;
    assert!(got[0].disabled && !got[1].disabled);
    let text = "{\"clients\": [{\"name\": \"r\", \"keys\": [\"k1\", \"k2\"], \"team\": null}], \"groups\": [{\"name\": \"g\", \"models\": [{\"provider\": \"m\", \"name\": \"x\"}]}], \"providers\": [{\"name\": \"m\", \"type\": \"mock\"}]}";
    let rotated = made(
        text,
        Format::Json,
        c(ClientEdit::Rotate("r".into(), hashed('d'))),
    );
    let got = &parsed(&rotated, Format::Json).clients[0];
    assert_eq!(
        (got.key.as_ref().unwrap().as_str(), got.keys.len()),
        (hashed('d').as_str(), 0),
        "{rotated}"
    );
    let none = made(&disabled, Format::Json, c(ClientEdit::Remove("a".into())));
    let none = made(&none, Format::Json, c(ClientEdit::Remove("b".into())));
    assert!(parsed(&none, Format::Json).clients.is_empty());
    assert!(none.starts_with(prefix), "{none}");
}
