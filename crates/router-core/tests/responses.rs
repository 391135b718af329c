//! `/v1/responses` (OpenAI's Responses API in): passed through to a provider that speaks it,
//! translated for one that only has chat completions and for Anthropic; usage counted either
//! way; bad input refused before anything is sent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use mock_upstream::{Fault, MockUpstream, Rule};
use router_core::{ClientRequest, Dialect, Format, Router, RouterError, Source, DROPPED_HEADER};
use serde_json::{json, Value};

/// A router whose group `codex` is served by one provider per `(kind, extra options)`, in order.
fn router(providers: &[(&str, &str, &MockUpstream)]) -> Router {
    let mut yaml = String::from("groups:\n  - name: codex\n    models:\n");
    for (i, _) in providers.iter().enumerate() {
        yaml += &format!(
            "      - {{provider: p{i}, name: upstream-model, weight: {}}}\n",
            100 - i
        );
    }
    yaml += "    strategy: fallback\nproviders:\n";
    for (i, (kind, extra, mock)) in providers.iter().enumerate() {
        yaml += &format!(
            "  - {{name: p{i}, type: {kind}, base_url: \"{}\", api_key: \"sk-key-0000000{i}\"{extra}}}\n",
            base_url(kind, mock)
        );
    }
    Router::from_source(&Source::from_text(yaml, Format::Yaml)).unwrap()
}

/// The base URL of a provider of `kind` on `mock`.
fn base_url(kind: &str, mock: &MockUpstream) -> String {
    match kind {
        "azure" => mock.base_url().trim_end_matches("/v1").to_string(),
        "gemini" => mock.base_url().replace("/v1", "/v1beta"),
        _ => mock.base_url(),
    }
}

/// A router whose group `codex` is served by one OpenAI-format provider on `mock`.
fn openai_router(extra: &str, mock: &MockUpstream) -> Router {
    let yaml = format!(
        "groups:\n  - name: codex\n    models: [{{provider: p, name: upstream-model}}]\nproviders:\n  - {{name: p, base_url: \"{}\", api_key: \"sk-key-00000001\"{extra}}}\n",
        mock.base_url()
    );
    Router::from_source(&Source::from_text(yaml, Format::Yaml)).unwrap()
}

async fn ask(r: &Router, body: &Value) -> Result<router_core::ChatResponse, RouterError> {
    let body = body.to_string();
    r.forward(&r.snapshot(), ClientRequest::responses(body.as_bytes()))
        .await
}

/// A complete answer: its headers, the provider that served it, and its body.
async fn complete(r: &Router, body: &Value) -> (http::HeaderMap, String, Value) {
    let answer = ask(r, body).await.unwrap();
    assert_eq!(answer.status, 200);
    let (headers, provider) = (answer.headers.clone(), answer.served.provider.to_string());
    let bytes = answer.body.collect_bytes().await;
    (headers, provider, serde_json::from_slice(&bytes).unwrap())
}

async fn events(r: &Router, body: &Value) -> Vec<(String, Value)> {
    let answer = ask(r, body).await.unwrap();
    assert_eq!(answer.status, 200);
    assert!(answer.body.is_stream());
    let text = String::from_utf8(answer.body.collect_bytes().await.to_vec()).unwrap();
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let name = e.lines().find_map(|l| l.strip_prefix("event: ")).unwrap();
            let data = e.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
            (name.to_string(), serde_json::from_str(data).unwrap())
        })
        .collect()
}

fn output_text(response: &Value) -> String {
    response["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "message")
        .flat_map(|i| i["content"].as_array().unwrap().iter())
        .map(|p| p["text"].as_str().unwrap().to_string())
        .collect()
}

const REQUEST: &str = r#"{"model":"codex","instructions":"be brief","input":[{"role":"user","content":[{"type":"input_text","text":"hi there"}]}],"store":false,"include":["reasoning.encrypted_content"],"prompt_cache_key":"s1"}"#;

#[tokio::test]
async fn a_provider_that_speaks_responses_gets_the_bytes() {
    let mock = MockUpstream::start().await.unwrap();
    let r = openai_router(", responses: native", &mock);
    let body: Value = serde_json::from_str(REQUEST).unwrap();
    let (headers, _, v) = complete(&r, &body).await;
    assert!(headers.get(DROPPED_HEADER).is_none());
    assert_eq!(v["object"], "response");
    assert_eq!(output_text(&v), "mock says: hi there");
    let seen = &mock.requests()[0];
    assert_eq!(seen.path, "/v1/responses");
    assert_eq!(
        std::str::from_utf8(&seen.body).unwrap(),
        body.to_string()
            .replace(r#""codex""#, r#""upstream-model""#),
        "only model changed"
    );
    assert_eq!(r.usage()[0].total_tokens, mock.tokens_reported());
    assert!(mock.tokens_reported() > 0);

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let ev = events(&r, &streamed).await;
    assert_eq!(ev.first().unwrap().0, "response.created");
    assert_eq!(ev.last().unwrap().0, "response.completed");
    for (i, (_, data)) in ev.iter().enumerate() {
        assert_eq!(
            data["sequence_number"], i as u64,
            "the upstream's events, as they came"
        );
    }
    assert_eq!(r.usage()[0].total_tokens, mock.tokens_reported());
    assert_eq!(r.usage()[0].requests, 2);
}

#[tokio::test]
async fn responses_fail_over_before_the_first_byte() {
    let (bad, good) = (
        MockUpstream::start().await.unwrap(),
        MockUpstream::start().await.unwrap(),
    );
    bad.add_rule(Rule::new(Fault::Status(500)));
    let yaml = format!(
        "groups:\n  - name: codex\n    strategy: fallback\n    models: [{{provider: a, name: m}}, {{provider: b, name: m}}]\nproviders:\n  - {{name: a, base_url: \"{}\", api_key: \"sk-key-00000001\", responses: native}}\n  - {{name: b, base_url: \"{}\", api_key: \"sk-key-00000002\", responses: native}}\n",
        bad.base_url(),
        good.base_url()
    );
    let r = Router::from_source(&Source::from_text(yaml, Format::Yaml)).unwrap();
    let (_, provider, v) = complete(&r, &json!({"model": "codex", "input": "hello"})).await;
    assert_eq!(provider, "b");
    assert_eq!(output_text(&v), "mock says: hello");
    let ev = events(
        &r,
        &json!({"model": "codex", "input": "hello", "stream": true}),
    )
    .await;
    assert_eq!(ev.last().unwrap().0, "response.completed");
    assert_eq!(bad.requests().len(), 2);
    assert_eq!(good.requests().len(), 2);
    let charged: u64 = r.usage().iter().map(|u| u.total_tokens).sum();
    assert_eq!(charged, good.tokens_reported());
}

#[tokio::test]
async fn azure_speaks_responses_at_its_v1_path() {
    let mock = MockUpstream::start().await.unwrap();
    let r = router(&[("azure", "", &mock)]);
    let (_, _, v) = complete(&r, &json!({"model": "codex", "input": "hello"})).await;
    assert_eq!(output_text(&v), "mock says: hello");
    let seen = &mock.requests()[0];
    assert_eq!(seen.path, "/openai/v1/responses");
    assert_eq!(seen.headers["api-key"], "sk-key-00000000");
    assert_eq!(seen.json()["model"], "upstream-model");
}

#[tokio::test]
async fn a_chat_only_provider_gets_a_translation() {
    let mock = MockUpstream::start().await.unwrap();
    let r = openai_router("", &mock);
    let body: Value = serde_json::from_str(REQUEST).unwrap();
    let (headers, _, v) = complete(&r, &body).await;
    assert_eq!(
        headers[DROPPED_HEADER], "include,store",
        "hints chat has no place for are named"
    );
    let sent = &mock.requests()[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(
        sent.json()["messages"],
        json!([{"role": "system", "content": "be brief"},
               {"role": "user", "content": [{"type": "text", "text": "hi there"}]}])
    );
    assert_eq!(sent.json()["prompt_cache_key"], "s1");
    assert_eq!(v["object"], "response");
    assert_eq!(v["status"], "completed");
    assert_eq!(v["instructions"], "be brief");
    assert_eq!(output_text(&v), "mock says: hi there");
    let usage = &v["usage"];
    assert_eq!(
        r.usage()[0].total_tokens,
        usage["total_tokens"].as_u64().unwrap()
    );
    assert_eq!(r.usage()[0].total_tokens, mock.tokens_reported());

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let ev = events(&r, &streamed).await;
    let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        &names[..4],
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added"
        ]
    );
    assert_eq!(
        &names[names.len() - 4..],
        [
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    let text: String = ev
        .iter()
        .filter(|(n, _)| n == "response.output_text.delta")
        .map(|(_, d)| d["delta"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(text, "mock says: hi there");
    let completed = &ev.last().unwrap().1["response"];
    assert_eq!(output_text(completed), "mock says: hi there");
    assert_eq!(
        mock.requests()[1].json()["stream_options"],
        json!({"include_usage": true})
    );
    assert_eq!(
        completed["usage"]["total_tokens"].as_u64(),
        Some(r.usage()[0].total_tokens - usage["total_tokens"].as_u64().unwrap())
    );
    assert_eq!(r.usage()[0].total_tokens, mock.tokens_reported());
}

/// A tool round trip through a provider of `kind`: the model calls the tool, the client sends
/// the call and its output back, and the answer repeats the output.
async fn tool_round_trip(kind: &str, stream: bool) {
    let mock = MockUpstream::start().await.unwrap();
    let r = router(&[(
        kind,
        if kind == "openai" {
            ", responses: chat"
        } else {
            ""
        },
        &mock,
    )]);
    let tools = json!([{"type": "function", "name": "exec_command", "description": "run a command",
        "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}, "strict": false}]);
    let first = json!({"model": "codex", "stream": stream, "tools": tools,
        "input": [{"role": "user", "content": "use a tool to run `echo 42`"}]});
    let call = if stream {
        let ev = events(&r, &first).await;
        let done: Vec<&Value> = ev
            .iter()
            .filter(|(n, d)| {
                n == "response.output_item.done" && d["item"]["type"] == "function_call"
            })
            .map(|(_, d)| &d["item"])
            .collect();
        assert_eq!(done.len(), 1);
        let args: String = ev
            .iter()
            .filter(|(n, _)| n == "response.function_call_arguments.delta")
            .map(|(_, d)| d["delta"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(args, done[0]["arguments"].as_str().unwrap());
        done[0].clone()
    } else {
        let (_, _, v) = complete(&r, &first).await;
        v["output"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["type"] == "function_call")
            .unwrap()
            .clone()
    };
    assert_eq!(call["name"], "exec_command");
    assert_eq!(call["arguments"], "{\"cmd\":\"echo 42\"}");
    let call_id = call["call_id"].as_str().unwrap();
    let second = json!({"model": "codex", "stream": stream, "tools": tools, "input": [
        {"role": "user", "content": "use a tool to run `echo 42`"},
        {"type": "function_call", "call_id": call_id, "name": "exec_command", "arguments": call["arguments"]},
        {"type": "function_call_output", "call_id": call_id, "output": "42"},
    ]});
    let text = if stream {
        output_text(&events(&r, &second).await.last().unwrap().1["response"])
    } else {
        output_text(&complete(&r, &second).await.2)
    };
    assert_eq!(text, "mock says: tool said: 42");
    assert_eq!(r.usage()[0].total_tokens, mock.tokens_reported());
}

#[tokio::test]
async fn tool_calls_round_trip_through_chat() {
    tool_round_trip("openai", false).await;
    tool_round_trip("openai", true).await;
}

#[tokio::test]
async fn tool_calls_round_trip_through_anthropic() {
    tool_round_trip("anthropic", false).await;
    tool_round_trip("anthropic", true).await;
}

#[tokio::test]
async fn tool_calls_round_trip_through_gemini() {
    tool_round_trip("gemini", false).await;
    tool_round_trip("gemini", true).await;
}

#[tokio::test]
async fn bad_input_is_refused_before_anything_is_sent() {
    let mock = MockUpstream::start().await.unwrap();
    let r = router(&[("anthropic", "", &mock)]);
    // (body, param, words of the message, whether the provider is named: refusals of the
    // translation are, malformed requests are refused before any provider is chosen).
    let cases = [
        (
            json!({"model": "codex", "input": 5}),
            "input",
            "'input' must be a string or an array",
            false,
        ),
        (
            json!({"model": "codex", "input": {"role": "user"}}),
            "input",
            "'input' must be a string or an array",
            false,
        ),
        (
            json!({"model": "codex"}),
            "input",
            "missing required field 'input'",
            false,
        ),
        (
            json!({"model": "codex", "input": [{"type": "mcp_call", "id": "x"}]}),
            "input",
            "input[0]: item type 'mcp_call'",
            true,
        ),
        (
            json!({"model": "codex", "input": [{"type": "function_call_output", "call_id": "call_9", "output": "x"}]}),
            "input",
            "function_call_output 'call_9' answers no function_call",
            true,
        ),
        (
            json!({"model": "codex", "input": "x", "previous_response_id": "resp_1"}),
            "previous_response_id",
            "'previous_response_id' cannot be translated",
            true,
        ),
        (
            json!({"model": "codex", "input": "x", "store": true}),
            "store",
            "'store' cannot be translated",
            true,
        ),
    ];
    for (body, param, words, named) in cases {
        let e = ask(&r, &body).await.unwrap_err();
        assert_eq!(e.status(), 400, "{body}");
        let reply = e.reply(Dialect::Responses);
        assert_eq!(reply.body["error"]["param"], param, "{body}");
        assert_eq!(reply.body["error"]["type"], "invalid_request_error");
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(words), "{message}");
        assert_eq!(message.ends_with("(provider 'p0')"), named, "{message}");
    }
    assert!(mock.requests().is_empty());
    assert_eq!(r.usage()[0].total_tokens, 0);
    assert_eq!(r.usage()[0].requests, 0);
}

#[tokio::test]
async fn stored_conversations_pass_through_to_responses_upstreams() {
    let mock = MockUpstream::start().await.unwrap();
    let r = openai_router(", responses: native", &mock);
    // The upstream keeps (or, the mock, does not have) the conversation: its answer comes back.
    let body =
        json!({"model": "codex", "input": "more", "previous_response_id": "resp_1", "store": true});
    let answer = ask(&r, &body).await.unwrap();
    assert_eq!(answer.status, 400);
    let v: Value = serde_json::from_slice(&answer.body.collect_bytes().await).unwrap();
    assert!(v["error"]["message"].as_str().unwrap().contains("resp_1"));
    assert_eq!(mock.requests()[0].json()["previous_response_id"], "resp_1");
    assert_eq!(mock.requests()[0].json()["store"], true);
    assert_eq!(
        r.usage()[0].total_tokens,
        0,
        "an upstream's refusal is not charged"
    );
}

#[test]
fn who_speaks_responses() {
    let names = ["o", "c", "n", "x", "z", "a"];
    let models: Vec<String> = names
        .iter()
        .map(|n| format!("{{provider: {n}, name: m}}"))
        .collect();
    let yaml = format!(
        "groups:\n  - name: g\n    models: [{}]\nproviders:\n  - {{name: o, base_url: \"https://api.openai.com/v1\", api_key: k}}\n  - {{name: c, base_url: \"https://llm.example.com/v1\", api_key: k}}\n  - {{name: n, base_url: \"https://llm.example.com/v1\", api_key: k, responses: native}}\n  - {{name: x, base_url: \"https://api.openai.com/v1\", api_key: k, responses: chat}}\n  - {{name: z, type: azure, base_url: \"https://r.openai.azure.com\", api_key: k}}\n  - {{name: a, type: anthropic, base_url: \"https://api.anthropic.com/v1\", api_key: k}}\n",
        models.join(", ")
    );
    let r = Router::from_source(&Source::from_text(yaml.clone(), Format::Yaml)).unwrap();
    let snapshot = r.snapshot();
    let native: Vec<(&str, bool)> = snapshot
        .group("g")
        .unwrap()
        .pairs()
        .iter()
        .map(|p| (p.provider().name(), p.provider().responses_native()))
        .collect();
    assert_eq!(
        native,
        [
            ("o", true),
            ("c", false),
            ("n", true),
            ("x", false),
            ("z", true),
            ("a", false)
        ]
    );
    let bad = yaml.replace(
        "api.anthropic.com/v1\", api_key: k}",
        "api.anthropic.com/v1\", api_key: k, responses: native}",
    );
    let e = Router::from_source(&Source::from_text(bad, Format::Yaml))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("providers[5].responses") && e.contains("does not speak the Responses API"),
        "{e}"
    );
}

#[tokio::test]
async fn a_stream_cut_midway_ends_in_the_responses_way() {
    let body = json!({"model": "codex", "input": "one two three four five", "stream": true});
    // Translated: the encoder ends the response it began with `response.failed`.
    let mock = MockUpstream::start().await.unwrap();
    let r = openai_router("", &mock);
    mock.cut_next_stream_after(3);
    let ev = events(&r, &body).await;
    let (last, data) = ev.last().unwrap();
    assert_eq!(last, "response.failed");
    assert_eq!(data["response"]["status"], "failed");
    assert!(data["response"]["error"]["message"].as_str().is_some());
    for (i, (_, data)) in ev.iter().enumerate() {
        assert_eq!(data["sequence_number"], i as u64);
    }
    // Passed through: the upstream's events as they came, then an `error` event.
    let mock = MockUpstream::start().await.unwrap();
    let r = openai_router(", responses: native", &mock);
    mock.cut_next_stream_after(3);
    let ev = events(&r, &body).await;
    assert_eq!(ev[0].0, "response.created");
    let (last, data) = ev.last().unwrap();
    assert_eq!(last, "error");
    assert_eq!(data["type"], "error");
    assert!(data["message"].as_str().is_some(), "{data}");
}

#[tokio::test]
async fn cache_tokens_and_reasoning_cross_both_ways() {
    let body = json!({"model": "codex", "input": "think", "reasoning": {"effort": "low"}});
    for extra in [", responses: native", ""] {
        let mock = MockUpstream::start().await.unwrap();
        mock.set_cache_tokens(8, 3);
        let r = openai_router(extra, &mock);
        let (_, _, v) = complete(&r, &body).await;
        assert_eq!(v["output"][0]["type"], "reasoning", "{extra}: {v}");
        assert_eq!(
            v["output"][0]["summary"][0]["text"],
            "reasoning at low effort"
        );
        assert_eq!(
            v["usage"]["input_tokens_details"],
            json!({"cached_tokens": 8, "cache_write_tokens": 3}),
            "{extra}"
        );
        let row = &r.usage()[0];
        assert_eq!(
            (row.cache_read_tokens, row.cache_write_tokens),
            (8, 3),
            "{extra}"
        );
        assert_eq!(row.total_tokens, mock.tokens_reported());
        let mut streamed = body.clone();
        streamed["stream"] = json!(true);
        let ev = events(&r, &streamed).await;
        let kinds: Vec<&str> = ev.iter().map(|(k, _)| k.as_str()).collect();
        assert!(
            kinds.contains(&"response.reasoning_summary_text.delta"),
            "{extra}: {kinds:?}"
        );
        let usage = &ev.last().unwrap().1["response"]["usage"];
        assert_eq!(
            usage["input_tokens_details"]["cache_write_tokens"], 3,
            "{extra}"
        );
        assert_eq!(r.usage()[0].cache_read_tokens, 16, "{extra}");
    }
}
