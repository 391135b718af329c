//! The legacy prompt API (`/v1/completions`) for providers that only chat (anthropic, gemini,
//! mock): the prompt becomes one user message, and the chat answer (complete or streamed)
//! comes back as `text_completion` objects. The chat request is then translated for the
//! provider like any other.

use crate::json::text_of;
use crate::providers::bad;
use crate::RouterError;
use serde_json::{json, Map, Value};

/// The prompt as one string: a string, or an array holding exactly one string.
fn prompt_text(prompt: &Value) -> Result<&str, RouterError> {
    match prompt {
        Value::String(s) => Ok(s),
        Value::Array(items) => match items.as_slice() {
            [Value::String(s)] => Ok(s),
            [] => Err(bad("'prompt' must not be empty".into(), "prompt")),
            [Value::String(_), ..] => Err(bad(
                "'prompt' holds several prompts, and a chat-only provider answers one: send one \
                 request per prompt"
                    .into(),
                "prompt",
            )),
            _ => Err(bad(
                "'prompt' as token ids cannot be sent to a chat-only provider: send text".into(),
                "prompt",
            )),
        },
        _ => Err(bad(
            "'prompt' must be a string or an array of strings".into(),
            "prompt",
        )),
    }
}

/// Translates a completions request into an OpenAI chat request for `model`. Fields the chat
/// API has are carried over (and then translated for the provider, which refuses what it
/// cannot take); fields only the prompt API has are refused unless they ask for nothing.
pub(crate) fn request(completion: &Map<String, Value>, model: &str) -> Result<Value, RouterError> {
    let mut out = Map::new();
    out.insert("model".into(), json!(model));
    let mut stream = false;
    for (key, value) in completion {
        if value.is_null() {
            continue;
        }
        match key.as_str() {
            "model" => {}
            "prompt" => {
                let text = prompt_text(value)?;
                out.insert(
                    "messages".into(),
                    json!([{"role": "user", "content": text}]),
                );
            }
            "echo" if value == &json!(false) => {}
            "best_of" if value == &json!(1) => {}
            "suffix" if value == &json!("") => {}
            "echo" | "best_of" | "suffix" | "logprobs" => {
                return Err(bad(
                    format!("'{key}' cannot be sent to a chat-only provider"),
                    key,
                ))
            }
            // Chat's own fields: the prompt API has no place for their results.
            "messages"
            | "tools"
            | "tool_choice"
            | "functions"
            | "function_call"
            | "parallel_tool_calls"
            | "modalities"
            | "audio" => {
                return Err(bad(
                    format!("'{key}' is not part of /v1/completions; use /v1/chat/completions"),
                    key,
                ))
            }
            "stream" => {
                stream = value == &json!(true);
                out.insert(key.clone(), value.clone());
            }
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    if stream {
        // Usage is counted from the stream's usage chunk (dropped again if not asked for).
        let options = out
            .entry("stream_options")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .ok_or_else(|| {
                bad(
                    "'stream_options' must be an object".into(),
                    "stream_options",
                )
            })?;
        options.insert("include_usage".into(), json!(true));
    }
    Ok(Value::Object(out))
}

fn choices(chat: &Value, field: &str) -> Vec<Value> {
    chat["choices"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            json!({
                "text": text_of(&c[field]["content"], ""),
                "index": c.get("index").cloned().unwrap_or(json!(0)),
                "logprobs": null,
                "finish_reason": c.get("finish_reason").cloned().unwrap_or(Value::Null),
            })
        })
        .collect()
}

/// A `text_completion` object from a chat completion (or chunk, with `field` = `delta`).
fn completion(chat: &Value, field: &str) -> Value {
    let mut out = Map::new();
    for key in ["id", "created", "model", "system_fingerprint"] {
        if let Some(v) = chat.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    out.insert("object".into(), json!("text_completion"));
    out.insert("choices".into(), Value::Array(choices(chat, field)));
    if let Some(u) = chat.get("usage").filter(|u| !u.is_null()) {
        out.insert("usage".into(), u.clone());
    }
    Value::Object(out)
}

/// Translates a complete chat answer into a completions answer.
pub(crate) fn response(chat: &Value) -> Value {
    completion(chat, "message")
}

/// Translates one chat stream chunk into a completions chunk; `None` for a chunk that says
/// nothing in the prompt API (the opening role-only delta). Error events pass unchanged.
pub(crate) fn chunk(chat: &Value) -> Option<Value> {
    if chat.get("error").is_some() {
        return Some(chat.clone());
    }
    let out = completion(chat, "delta");
    let says_something = out.get("usage").is_some()
        || out["choices"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["text"] != "" || !c["finish_reason"].is_null())
        });
    says_something.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn prompt_becomes_one_user_message() {
        let r = request(
            &object(json!({"model": "g", "prompt": ["Say hi"], "max_tokens": 5,
                           "temperature": 0, "stop": "\n", "echo": false, "suffix": null})),
            "m",
        )
        .unwrap();
        assert_eq!(
            r,
            json!({"model": "m", "messages": [{"role": "user", "content": "Say hi"}],
                   "max_tokens": 5, "temperature": 0, "stop": "\n"})
        );
        let r = request(
            &object(json!({"model": "g", "prompt": "x", "stream": true})),
            "m",
        )
        .unwrap();
        assert_eq!(r["stream_options"], json!({"include_usage": true}));
    }

    #[test]
    fn refuses_what_a_chat_cannot_say() {
        let msg = |v: Value| match request(&object(v), "m") {
            Err(RouterError::BadRequest { message, param, .. }) => (message, param),
            other => panic!("expected 400, got {other:?}"),
        };
        let (m, p) = msg(json!({"prompt": ["a", "b"]}));
        assert!(m.contains("several prompts"), "{m}");
        assert_eq!(p.as_deref(), Some("prompt"));
        assert!(msg(json!({"prompt": [1, 2]})).0.contains("token ids"));
        assert!(msg(json!({"prompt": []})).0.contains("empty"));
        assert!(msg(json!({"prompt": 3})).0.contains("string"));
        assert_eq!(
            msg(json!({"prompt": "a", "echo": true})).1.as_deref(),
            Some("echo")
        );
        assert_eq!(
            msg(json!({"prompt": "a", "logprobs": 2})).1.as_deref(),
            Some("logprobs")
        );
        assert_eq!(
            msg(json!({"prompt": "a", "best_of": 3})).1.as_deref(),
            Some("best_of")
        );
        assert_eq!(
            msg(json!({"prompt": "a", "suffix": "z"})).1.as_deref(),
            Some("suffix")
        );
    }

    #[test]
    fn answers_and_chunks_become_text_completions() {
        let chat = json!({"id": "c1", "object": "chat.completion", "created": 7, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}});
        assert_eq!(
            response(&chat),
            json!({"id": "c1", "object": "text_completion", "created": 7, "model": "m",
                   "choices": [{"text": "Hello", "index": 0, "logprobs": null, "finish_reason": "stop"}],
                   "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}})
        );
        let role = json!({"id": "c1", "created": 7, "model": "m",
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]});
        assert_eq!(chunk(&role), None);
        let text = json!({"id": "c1", "created": 7, "model": "m",
            "choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": null}]});
        assert_eq!(chunk(&text).unwrap()["choices"][0]["text"], "Hel");
        let end = json!({"id": "c1", "created": 7, "model": "m",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]});
        assert_eq!(
            chunk(&end).unwrap()["choices"][0]["finish_reason"],
            "length"
        );
        let usage = json!({"id": "c1", "created": 7, "model": "m", "choices": [],
            "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}});
        let u = chunk(&usage).unwrap();
        assert_eq!(u["object"], "text_completion");
        assert_eq!(u["usage"]["total_tokens"], 3);
        let error = json!({"error": {"message": "boom"}});
        assert_eq!(chunk(&error), Some(error.clone()));
    }

    #[test]
    fn chat_fields_are_refused() {
        for field in ["messages", "tools", "tool_choice", "functions"] {
            let mut v = json!({"prompt": "a"});
            v[field] = json!([{"x": 1}]);
            match request(&object(v), "m") {
                Err(RouterError::BadRequest { message, param, .. }) => {
                    assert_eq!(param.as_deref(), Some(field));
                    assert!(message.contains("/v1/chat/completions"), "{message}");
                }
                other => panic!("expected 400, got {other:?}"),
            }
        }
    }
}
