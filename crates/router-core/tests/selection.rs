//! Selection: lowest usage × weight wins; ties by raw usage then config order; reservations
//! spread bursts; counters survive reloads and key reordering.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::LiveRecord;
use router_core::{Format, Router, Source, TokenUsage};
use std::collections::HashMap;
use std::sync::{Arc, Barrier};

fn router(yaml: &str) -> Router {
    Router::from_source(&Source::from_text(yaml, Format::Yaml)).unwrap()
}

fn tokens(n: u64) -> TokenUsage {
    TokenUsage {
        prompt_tokens: n / 2,
        completion_tokens: n - n / 2,
        total_tokens: n,
        ..TokenUsage::default()
    }
}

/// Runs `n` sequential requests of `cost` tokens each; returns picks per "model key_id".
fn run(router: &Router, group: &str, n: usize, cost: u64) -> HashMap<String, usize> {
    let mut picks = HashMap::new();
    for _ in 0..n {
        let s = router.pick(group, 1).unwrap();
        *picks
            .entry(format!("{} {}", s.model(), s.key_id()))
            .or_default() += 1;
        s.succeed(tokens(cost));
    }
    picks
}

const WEIGHTED: &str = r#"
groups:
  - name: g
    models:
      - {provider: p, name: light, weight: 1}
      - {provider: p, name: heavy, weight: 3}
providers:
  - {name: p, base_url: "http://127.0.0.1:9/v1", api_key: "sk-a"}
"#;

#[test]
fn weight_divides_share() {
    // usage × weight is equalised: weight 3 ends with a third of weight 1's usage.
    let r = router(WEIGHTED);
    let picks = run(&r, "g", 400, 10);
    let light = picks["light p#0"] as i64;
    let heavy = picks["heavy p#0"] as i64;
    assert_eq!(light + heavy, 400);
    assert!(
        (light - 300).abs() <= 1 && (heavy - 100).abs() <= 1,
        "{picks:?}"
    );
}

#[test]
fn weight_zero_is_always_preferred_and_its_keys_balanced() {
    let r = router(
        r#"
groups:
  - name: g
    models:
      - {provider: p, name: normal, weight: 1}
      - {provider: q, name: free, weight: 0}
providers:
  - {name: p, base_url: "http://127.0.0.1:9/v1", api_key: "sk-a"}
  - {name: q, base_url: "http://127.0.0.1:9/v1", api_keys: ["sk-q1", "sk-q2"]}
"#,
    );
    let picks = run(&r, "g", 100, 7);
    assert_eq!(picks.get("normal p#0"), None, "{picks:?}");
    assert_eq!(picks["free q#0"], 50, "{picks:?}");
    assert_eq!(picks["free q#1"], 50, "{picks:?}");
}

#[test]
fn ties_go_to_lower_usage_then_config_order() {
    let r = router(
        r#"
groups:
  - name: g
    models:
      - {provider: p, name: first, weight: 0}
      - {provider: p, name: second, weight: 0}
providers:
  - {name: p, base_url: "http://127.0.0.1:9/v1", api_key: "sk-a"}
"#,
    );
    // All scores are 0: config order first, then the lower raw usage.
    let s = r.pick("g", 1).unwrap();
    assert_eq!(s.model(), "first");
    s.succeed(tokens(5));
    let s = r.pick("g", 1).unwrap();
    assert_eq!(s.model(), "second");
    s.succeed(tokens(3));
    let s = r.pick("g", 1).unwrap();
    assert_eq!(s.model(), "second", "3 < 5 raw usage");
    s.succeed(tokens(3));
    // 6 vs 5: back to first.
    assert_eq!(r.pick("g", 1).unwrap().model(), "first");
}

#[test]
fn simultaneous_burst_spreads_over_all_keys() {
    let r = Arc::new(router(
        r#"
groups:
  - name: g
    models: [{provider: p, name: m}]
providers:
  - {name: p, base_url: "http://127.0.0.1:9/v1", api_keys: ["k1", "k2", "k3", "k4"]}
"#,
    ));
    let barrier = Arc::new(Barrier::new(100));
    let handles: Vec<_> = (0..100)
        .map(|_| {
            let (r, b) = (r.clone(), barrier.clone());
            std::thread::spawn(move || {
                b.wait();
                r.pick("g", 50).unwrap()
            })
        })
        .collect();
    // Hold every selection (all in flight at once), then count.
    let held: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let mut per_key: HashMap<String, usize> = HashMap::new();
    for s in &held {
        *per_key.entry(s.key_id().to_string()).or_default() += 1;
    }
    assert_eq!(per_key.len(), 4, "{per_key:?}");
    assert!(per_key.values().all(|&n| n == 25), "{per_key:?}");
    let reserved: u64 = r.usage().iter().map(|u| u.live_state().reserved).sum();
    assert_eq!(reserved, 100 * 50);
    for s in held {
        s.succeed(tokens(10));
    }
    let usage = r.usage();
    assert_eq!(
        usage.iter().map(|u| u.live_state().reserved).sum::<u64>(),
        0
    );
    assert_eq!(usage.iter().map(|u| u.total_tokens).sum::<u64>(), 1000);
    assert_eq!(usage.iter().map(|u| u.requests).sum::<u64>(), 100);
}

#[test]
fn penalties_are_charged_and_errors_counted() {
    let r = router(
        r#"
request_penalty: 5
error_penalty: 100
groups:
  - name: g
    models: [{provider: p, name: m}]
providers:
  - {name: p, base_url: "http://127.0.0.1:9/v1", api_keys: ["key-one-000000aaaa", "key-two-000000bbbb"]}
"#,
    );
    let s = r.pick("g", 1).unwrap();
    assert_eq!(s.key_id(), "p#0");
    s.fail(router_core::Failure::Upstream);
    // p#0 now carries 5 + 100: the next two picks go to p#1 (5, then 5 + 5 + 20 tokens).
    let s = r.pick("g", 1).unwrap();
    assert_eq!(s.key_id(), "p#1");
    s.succeed(tokens(20));
    assert_eq!(r.pick("g", 1).unwrap().key_id(), "p#1");
    let usage = r.usage();
    // One key, one name: its id, as selection gives it, and its masked form.
    let one = (usage.iter())
        .find(|u| u.key_id.as_deref() == Some("p#0"))
        .unwrap();
    assert_eq!(one.key_masked, "key…aaaa");
    assert_eq!(
        (
            one.errors,
            one.live_state().penalty,
            one.requests,
            one.total_tokens
        ),
        (1, 105, 1, 0)
    );
    assert!(usage
        .iter()
        .all(|u| !u.key_masked.contains("one") && !u.key_masked.contains("two")));
}

#[test]
fn dropped_selection_releases_its_reservation() {
    let r = router(WEIGHTED);
    let s = r.pick("g", 1000).unwrap();
    assert_eq!(
        r.usage()
            .iter()
            .map(|u| u.live_state().reserved)
            .sum::<u64>(),
        1000
    );
    drop(s);
    let usage = r.usage();
    assert_eq!(
        usage.iter().map(|u| u.live_state().reserved).sum::<u64>(),
        0
    );
    assert_eq!(
        usage.iter().map(|u| u.total_tokens + u.errors).sum::<u64>(),
        0
    );
}

#[test]
fn counters_survive_reload_and_key_reordering() {
    let dir = std::env::temp_dir().join(format!("seltest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.yaml");
    let yaml = |keys: &str| {
        format!(
            "groups:\n  - name: g\n    models: [{{provider: p, name: m}}]\nproviders:\n  - {{name: p, base_url: \"http://127.0.0.1:9/v1\", api_keys: [{keys}]}}\n"
        )
    };
    std::fs::write(
        &path,
        yaml("\"alpha-key-000000001\", \"bravo-key-000000002\""),
    )
    .unwrap();
    let r = Router::from_file(&path).unwrap();
    let s = r.pick("g", 1).unwrap();
    assert_eq!(s.key_id(), "p#0");
    s.succeed(tokens(40));

    // Swap the keys' order and add a group: alpha keeps its 40 tokens, now as p#1.
    let mut text = yaml("\"bravo-key-000000002\", \"alpha-key-000000001\"");
    text = text.replace(
        "groups:\n",
        "groups:\n  - name: added\n    models: [{provider: p, name: m2}]\n",
    );
    std::fs::write(&path, text).unwrap();
    let outcome = r.reload().unwrap();
    assert_eq!(outcome.generation, 2);
    let snap = r.snapshot();
    assert!(snap.group("added").is_some());
    let pairs = snap.group("g").unwrap().pairs();
    assert_eq!((pairs[0].usage(), pairs[1].usage()), (0, 40));
    assert_eq!(
        r.pick("g", 1).unwrap().key_id(),
        "p#0",
        "bravo (unused) is picked"
    );

    // A broken file keeps the running config.
    std::fs::write(&path, "groups: [oops").unwrap();
    let e = r.reload().unwrap_err();
    assert!(e.to_string().contains("config.yaml"), "{e}");
    assert_eq!(r.snapshot().generation(), 2);
    assert!(r.snapshot().group("added").is_some());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_reload_in_the_middle_of_a_round_robin_continues_it() {
    let yaml = |extra_group: &str| {
        format!(
            "groups:\n  - name: rr\n    strategy: round_robin\n    models: [{{provider: p, name: m}}]\n{extra_group}providers:\n  - {{name: p, base_url: \"http://127.0.0.1:9\", api_keys: [k-zero-000001, k-one-0000002, k-two-0000003]}}\n"
        )
    };
    let r = router(&yaml(""));
    let mut served = Vec::new();
    let mut next = |r: &Router| {
        let s = r.pick("rr", 1).unwrap();
        served.push(s.key_id().to_string());
        s.succeed(tokens(1));
    };
    next(&r);
    next(&r);
    // A new generation: the group is compiled again, its rotation carries on.
    let changed = Source::from_text(
        yaml("  - name: other\n    models: [{provider: p, name: m2}]\n"),
        Format::Yaml,
    );
    assert_eq!(r.apply(&changed.parse().unwrap()).unwrap().generation, 2);
    next(&r);
    next(&r);
    assert_eq!(served, ["p#0", "p#1", "p#2", "p#0"]);
}

#[test]
fn a_key_disabled_after_a_reload_stays_disabled_when_an_older_call_ends() {
    let yaml = "groups:\n  - name: g\n    models: [{provider: p, name: m}]\nproviders:\n  - {name: p, base_url: \"http://127.0.0.1:9\", api_key: sk-only-key-0001}\n";
    let r = router(yaml);
    // Two calls picked on generation 1...
    let older = r.pick("g", 1).unwrap();
    let older_refused = r.pick("g", 1).unwrap();
    // ...a reload, and on generation 2 the key is refused (401): disabled until the next one.
    let config: router_core::Config = serde_yaml::from_str(yaml).unwrap();
    r.apply(&config).unwrap();
    r.pick("g", 1)
        .unwrap()
        .fail(router_core::Failure::Unauthorized);
    assert!(r.pick("g", 1).is_err(), "disabled");
    // An older call ending well leaves it disabled for generation 2...
    older.succeed(tokens(10));
    assert!(
        r.pick("g", 1).is_err(),
        "still disabled after an older success"
    );
    // ...and so does a late 401 of generation 1.
    older_refused.fail(router_core::Failure::Unauthorized);
    assert!(r.pick("g", 1).is_err(), "still disabled after an older 401");
    // A reload enables it again.
    r.apply(&config).unwrap();
    assert!(r.pick("g", 1).is_ok());
}

/// The `usage` strategy by its definition, over the group's pairs that are not cooling down:
/// weight-0 pairs first, then the lowest usage × weight, then the lowest raw usage, then config
/// order.
fn usage_winner(r: &Router, limited: &[bool]) -> Option<usize> {
    let snapshot = r.snapshot();
    let group = snapshot.group("g").unwrap();
    let records = r.usage();
    let mut best: Option<(bool, f64, u64, usize)> = None;
    for (i, pair) in group.pairs().iter().enumerate() {
        if limited[i] {
            continue;
        }
        let record = records
            .iter()
            .find(|u| {
                u.provider == pair.provider().name()
                    && u.model == pair.model()
                    && u.key_fingerprint == pair.key_fingerprint()
            })
            .unwrap();
        let usage =
            record.total_tokens + record.live_state().penalty + record.live_state().reserved;
        let key = (pair.weight() > 0.0, usage as f64 * pair.weight(), usage, i);
        if best.is_none_or(|b| key.partial_cmp(&b) == Some(std::cmp::Ordering::Less)) {
            best = Some(key);
        }
    }
    best.map(|b| b.3)
}

proptest::proptest! {
    /// Over random groups (model entries of different weights and numbers of keys), random
    /// usage restored from a ledger, and keys taken out one by one by 429s, every pick is the
    /// pair the definition names.
    #[test]
    fn usage_picks_follow_the_definition(
        models in proptest::collection::vec((0usize..4, 1usize..6), 1..5),
        usage in proptest::collection::vec(0u64..30, 25),
        outcomes in proptest::collection::vec(proptest::bool::ANY, 1..25),
    ) {
        const WEIGHTS: [&str; 4] = ["0", "0.5", "1", "3"];
        let mut yaml = String::from("groups:\n  - name: g\n    models:\n");
        let mut providers = String::from("providers:\n");
        for (mi, (w, keys)) in models.iter().enumerate() {
            yaml += &format!("      - {{provider: p{mi}, name: m{mi}, weight: {}}}\n", WEIGHTS[*w]);
            let keys: Vec<String> = (0..*keys).map(|k| format!("\"sk-{mi}-{k}\"")).collect();
            providers += &format!(
                "  - {{name: p{mi}, base_url: \"http://127.0.0.1:9/v1\", api_keys: [{}]}}\n",
                keys.join(", ")
            );
        }
        let r = router(&(yaml + &providers));
        let snapshot = r.snapshot();
        let pairs = snapshot.group("g").unwrap().pairs();
        let saved: Vec<router_core::UsageRecord> = pairs
            .iter()
            .enumerate()
            .map(|(i, p)| router_core::UsageRecord {
                provider: p.provider().name().to_string(),
                key_fingerprint: p.key_fingerprint(),
                key_id: Some(p.key_id().to_string()),
                key_masked: p.key_masked().to_string(),
                model: p.model().to_string(),
                total_tokens: usage[i % usage.len()],
                ..Default::default()
            })
            .collect();
        r.restore_usage(&saved);
        let mut limited = vec![false; pairs.len()];
        for rate_limit in outcomes {
            let expected = usage_winner(&r, &limited);
            match r.pick("g", 0) {
                Ok(s) => {
                    proptest::prop_assert_eq!(Some(s.pair_index()), expected);
                    if rate_limit {
                        limited[s.pair_index()] = true;
                        s.fail(router_core::Failure::RateLimited {
                            retry_after: Some(std::time::Duration::from_secs(600)),
                        });
                    } else {
                        s.succeed(tokens(7));
                    }
                }
                Err(_) => proptest::prop_assert_eq!(expected, None),
            }
        }
    }
}
