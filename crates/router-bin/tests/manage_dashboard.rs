//! The dashboard's forms in headless Chromium, driven over the DevTools protocol: a group
//! created from the page serves requests, a refused form shows why, and a key typed in is not
//! shown again. Needs Debian's `chromium` (`.ci/run` installs it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{call, config, start_with_file, KEY};
use futures_util::{SinkExt, StreamExt};
use http::Method;
use mock_upstream::MockUpstream;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::AsyncBufReadExt;
use tokio_tungstenite::tungstenite::Message;

const ADMIN: &str = "admin-key-for-forms";

/// A page in headless Chromium, spoken to over the DevTools protocol.
struct Page {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    session: String,
    next_id: u64,
    /// Whether the page's load event has been seen.
    loaded: bool,
    _browser: tokio::process::Child,
}

impl Page {
    /// Starts Chromium and opens `url` in it.
    async fn open(url: &str, profile: &std::path::Path) -> Page {
        let mut browser = common::headless_chromium(profile)
            .args(["--remote-debugging-port=0", "about:blank"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("chromium (Debian package chromium) must be installed");
        let mut lines = tokio::io::BufReader::new(browser.stderr.take().unwrap()).lines();
        let ws = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(at) = line.strip_prefix("DevTools listening on ") {
                    return at.trim().to_string();
                }
            }
            panic!("chromium ended without a DevTools address");
        })
        .await
        .expect("chromium gave no DevTools address");
        // Its later output is not needed, but must be drained.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let (socket, _) = tokio_tungstenite::connect_async(ws.as_str()).await.unwrap();
        let mut page = Page {
            socket,
            session: String::new(),
            next_id: 0,
            loaded: false,
            _browser: browser,
        };
        let target = page
            .send(None, "Target.createTarget", json!({"url": "about:blank"}))
            .await;
        let target = target["targetId"].as_str().unwrap().to_string();
        let attached = page
            .send(
                None,
                "Target.attachToTarget",
                json!({"targetId": target, "flatten": true}),
            )
            .await;
        page.session = attached["sessionId"].as_str().unwrap().to_string();
        // Then to the page, and wait for it to load: scripts run in its own context.
        let session = page.session.clone();
        page.send(Some(&session), "Page.enable", json!({})).await;
        page.send(Some(&session), "Page.navigate", json!({"url": url}))
            .await;
        while !page.loaded {
            page.read().await;
        }
        page
    }

    /// The next message from the browser; notes the page's load event.
    async fn read(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(30), self.socket.next())
                .await
                .expect("nothing from chromium in 30 s")
                .unwrap()
                .unwrap();
            let Message::Text(text) = frame else { continue };
            let message: Value = serde_json::from_str(text.as_str()).unwrap();
            if message["method"] == "Page.loadEventFired" {
                self.loaded = true;
            }
            return message;
        }
    }

    /// Sends one command (to the page's session, or the browser's) and waits for its result.
    async fn send(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            message["sessionId"] = json!(s);
        }
        self.socket
            .send(Message::text(message.to_string()))
            .await
            .unwrap();
        loop {
            let answer = self.read().await;
            if answer["id"] == json!(id) {
                assert!(answer.get("error").is_none(), "{method}: {answer}");
                return answer["result"].clone();
            }
        }
    }

    /// The value of `expression` (awaited when a promise), evaluated in the page.
    async fn eval(&mut self, expression: &str) -> Value {
        let session = self.session.clone();
        let params = json!({"expression": expression, "awaitPromise": true, "returnByValue": true});
        let result = self.send(Some(&session), "Runtime.evaluate", params).await;
        assert!(result.get("exceptionDetails").is_none(), "{result}");
        result["result"]["value"].clone()
    }

    /// Fills the form `id` with `fields`, submits it, and returns what the page then says.
    async fn submit(&mut self, id: &str, fields: Value) -> String {
        let script = format!(
            r#"(async () => {{
                const form = document.getElementById({id:?});
                const fields = {fields};
                for (const [name, value] of Object.entries(fields)) form.elements[name].value = value;
                const result = document.getElementById("manage-result");
                result.textContent = "";
                form.requestSubmit();
                for (let i = 0; i < 300 && result.textContent === ""; i++) await new Promise((r) => setTimeout(r, 20));
                return result.textContent;
            }})()"#
        );
        self.eval(&script)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium: run through scripts/test"]
async fn a_group_made_in_the_dashboard_serves_and_a_refusal_says_why() {
    let mock = MockUpstream::start().await.unwrap();
    let yaml = config(
        &mock.base_url(),
        &["sk-upstream-one"],
        &format!("admin_key: \"{ADMIN}\""),
    );
    let (server, path) = start_with_file("manage-dashboard", &yaml).await;
    let profile = path.parent().unwrap().join("profile");
    let url = format!("{}#key={ADMIN}", server.url("/dashboard"));
    let mut page = Page::open(&url, &profile).await;
    // The forms show once the page has the data.
    let shown = page
        .eval(
            r#"(async () => {
                // The page may still be loading: wait for the section, then for the data.
                const manage = () => document.getElementById("manage");
                for (let i = 0; i < 500 && (!manage() || manage().hidden); i++)
                    await new Promise((r) => setTimeout(r, 20));
                return !!manage() && !manage().hidden;
            })()"#,
        )
        .await;
    assert_eq!(shown, json!(true));
    let said = page
        .submit(
            "group-add",
            json!({"name": "web", "strategy": "least_busy", "model": "up/web-model"}),
        )
        .await;
    assert!(said.starts_with("added group 'web' in "), "{said}");
    assert!(
        said.ends_with(&format!(
            "now serving generation {}",
            server.router.snapshot().generation()
        )),
        "{said}"
    );
    // A request to the new group, through the router, at once.
    let reply = call(
        Method::POST,
        &server.url("/v1/chat/completions"),
        &[("authorization", &format!("Bearer {KEY}"))],
        r#"{"model":"web","messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text());
    assert_eq!(mock.requests().last().unwrap().json()["model"], "web-model");
    // A refused form shows the reason; the file is untouched.
    let before = std::fs::read(&path).unwrap();
    let refused = page
        .submit(
            "group-add",
            json!({"name": "web", "strategy": "usage", "model": "up/other"}),
        )
        .await;
    assert_eq!(refused, "refused: a group named 'web' exists already");
    let unknown = page
        .submit(
            "model-add",
            json!({"group": "web", "model": "nobody/m", "weight": ""}),
        )
        .await;
    assert!(
        unknown.starts_with("refused: the edit would make the config unusable"),
        "{unknown}"
    );
    assert!(
        unknown.contains("provider 'nobody' is not defined"),
        "{unknown}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
    // A weight, then a key added: the key is sent once and shown nowhere after.
    let weighted = page
        .submit(
            "model-weight",
            json!({"group": "web", "model": "up/web-model", "weight": "2"}),
        )
        .await;
    assert!(
        weighted.starts_with("set the weight of model 'web-model'"),
        "{weighted}"
    );
    let secret = "sk-typed-into-the-page-7777";
    let added = page
        .submit("key-add", json!({"provider": "up", "key": secret}))
        .await;
    assert!(
        added.starts_with("added key up#1 to provider 'up'"),
        "{added}"
    );
    let html = page.eval("document.documentElement.outerHTML + document.getElementById('key-add').elements.key.value").await;
    assert!(!html.as_str().unwrap().contains(secret));
    assert!(std::fs::read_to_string(&path).unwrap().contains(secret));
    let disabled = page
        .submit(
            "provider-state",
            json!({"provider": "up", "state": "disable"}),
        )
        .await;
    assert!(
        disabled.starts_with("refused: ") && disabled.contains("has no usable model"),
        "{disabled}"
    );
    server.shutdown().await;
}
