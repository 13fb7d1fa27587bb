//! A loopback chat-completions server for the tests: a small hand-written HTTP/1.1 server
//! that answers `POST /v1/chat/completions` from a script, as JSON or as server-sent events,
//! and records every request.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A story: JSON `{title, body}` content when the request has `response_format`,
    /// else plain text "title, blank line, body".
    Story { title: String, body: String },
    /// This exact content.
    Content(String),
    /// `message.refusal` set, content null.
    Refusal(String),
    /// An HTTP error.
    Status {
        code: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
}

impl Reply {
    pub fn story(title: &str, body: &str) -> Reply {
        Reply::Story {
            title: title.to_string(),
            body: body.to_string(),
        }
    }

    pub fn status(code: u16, body: &str) -> Reply {
        Reply::Status {
            code,
            headers: Vec::new(),
            body: body.to_string(),
        }
    }
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
    pub at: Instant,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn messages(&self) -> Vec<(String, String)> {
        self.body["messages"]
            .as_array()
            .map(|m| {
                m.iter()
                    .map(|m| {
                        (
                            m["role"].as_str().unwrap_or("").to_string(),
                            m["content"].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn system_prompt(&self) -> String {
        self.messages()
            .into_iter()
            .find(|(r, _)| r == "system")
            .map(|(_, c)| c)
            .unwrap_or_default()
    }

    pub fn last_user(&self) -> String {
        self.messages()
            .into_iter()
            .rev()
            .find(|(r, _)| r == "user")
            .map(|(_, c)| c)
            .unwrap_or_default()
    }

    pub fn has_response_format(&self) -> bool {
        self.body.get("response_format").is_some()
    }

    pub fn stream(&self) -> bool {
        self.body["stream"].as_bool().unwrap_or(false)
    }
}

struct State {
    script: VecDeque<Reply>,
    requests: Vec<Recorded>,
    supports_schema: bool,
}

/// The running server; stops when dropped.
pub struct MockServer {
    /// Base URL, `http://127.0.0.1:PORT/v1`.
    pub url: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockServer {
    /// A server that honours `response_format` and answers with `script` in order.
    pub async fn start(script: Vec<Reply>) -> MockServer {
        Self::start_with(true, script).await
    }

    /// With `supports_schema == false`, any request with `response_format` gets a 400 like
    /// a server without structured output (without using a script entry).
    pub async fn start_with(supports_schema: bool, script: Vec<Reply>) -> MockServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            script: script.into(),
            requests: Vec::new(),
            supports_schema,
        }));
        let task_state = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let state = task_state.clone();
                tokio::spawn(async move {
                    let _ = handle(socket, state).await;
                });
            }
        });
        MockServer {
            url: format!("http://{addr}/v1"),
            state,
            task,
        }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }
}

async fn handle(mut socket: TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < header_end + length {
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body: Value = serde_json::from_slice(&buf[header_end..]).unwrap_or(Value::Null);
    let recorded = Recorded {
        path: path.clone(),
        headers,
        body,
        at: Instant::now(),
    };
    let (reply, supports_schema) = {
        let mut s = state.lock().unwrap();
        s.requests.push(recorded.clone());
        let supports = s.supports_schema;
        if !supports && recorded.has_response_format() {
            (None, supports)
        } else {
            (s.script.pop_front(), supports)
        }
    };
    if path != "/v1/chat/completions" {
        return respond(
            &mut socket,
            404,
            &[],
            r#"{"error":{"message":"not found"}}"#,
        )
        .await;
    }
    if !supports_schema && recorded.has_response_format() {
        let body = json!({"error": {
            "message": "response_format of type json_schema is not supported by this server",
            "type": "invalid_request_error",
            "param": "response_format",
        }});
        return respond(&mut socket, 400, &[], &body.to_string()).await;
    }
    let Some(reply) = reply else {
        return respond(
            &mut socket,
            500,
            &[],
            r#"{"error":{"message":"script exhausted"}}"#,
        )
        .await;
    };
    let model = recorded.body["model"].as_str().unwrap_or("m").to_string();
    let (content, refusal) = match reply {
        Reply::Status {
            code,
            headers,
            body,
        } => return respond(&mut socket, code, &headers, &body).await,
        Reply::Story { title, body } => {
            if recorded.has_response_format() {
                // Title first, as models following the schema do (json! would sort keys).
                let (t, b) = (Value::String(title), Value::String(body));
                (format!("{{\"title\": {t}, \"body\": {b}}}"), None)
            } else {
                (format!("{title}\n\n{body}"), None)
            }
        }
        Reply::Content(c) => (c, None),
        Reply::Refusal(r) => (String::new(), Some(r)),
    };
    if recorded.stream() {
        stream_sse(&mut socket, &model, &content, refusal.as_deref()).await
    } else {
        let body = json!({
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [{
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": if refusal.is_some() { Value::Null } else { Value::String(content) },
                    "refusal": refusal,
                },
                "finish_reason": "stop",
            }],
        });
        respond(&mut socket, 200, &[], &body.to_string()).await
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        _ => "Status",
    }
}

async fn respond(
    socket: &mut TcpStream,
    code: u16,
    headers: &[(String, String)],
    body: &str,
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {code} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        reason(code),
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    socket.write_all(head.as_bytes()).await?;
    socket.write_all(body.as_bytes()).await?;
    socket.shutdown().await
}

fn chunk(model: &str, delta: Value, finish: Option<&str>) -> String {
    let c = json!({
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    });
    format!("data: {c}\n\n")
}

async fn stream_sse(
    socket: &mut TcpStream,
    model: &str,
    content: &str,
    refusal: Option<&str>,
) -> std::io::Result<()> {
    socket
        .write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n",
        )
        .await?;
    socket
        .write_all(chunk(model, json!({"role": "assistant", "content": ""}), None).as_bytes())
        .await?;
    let (key, text) = match refusal {
        Some(r) => ("refusal", r),
        None => ("content", content),
    };
    // Small pieces, split on char boundaries, to exercise incremental decoding.
    let chars: Vec<char> = text.chars().collect();
    for piece in chars.chunks(7) {
        let piece: String = piece.iter().collect();
        socket
            .write_all(chunk(model, json!({ key: piece }), None).as_bytes())
            .await?;
        socket.flush().await?;
    }
    socket
        .write_all(chunk(model, json!({}), Some("stop")).as_bytes())
        .await?;
    socket.write_all(b"data: [DONE]\n\n").await?;
    socket.shutdown().await
}
