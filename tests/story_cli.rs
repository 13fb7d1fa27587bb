//! `storyreel story --prompt` and `storyreel make --prompt` against a loopback server that
//! speaks the chat-completions API with server-sent events (issue 5), and `storyreel speak` on
//! odd Unicode (issue 3).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::support::{self, decode_errors, only_stream, streams, text};

const TITLE: &str = "My Neighbour Only Talks Through Notes";

/// A story of about 160 words: inside the 60-second budget at 160 words a minute.
fn body() -> String {
    let sentence =
        "Every morning a new note sits under my door, folded twice, in the same blue ink.";
    let mut b = String::new();
    for i in 0..10 {
        b.push_str(sentence);
        b.push(' ');
        if i % 3 == 2 {
            b.push_str("\n\n");
        }
    }
    b.trim().to_string()
}

/// Serves chat completions: streams `{"title","body"}` as JSON content in small SSE chunks.
/// Records each request body.
fn serve(requests: Arc<Mutex<Vec<Value>>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut len = 0usize;
            let mut line = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let l = line.trim_end().to_ascii_lowercase();
                if l.is_empty() {
                    break;
                }
                if let Some(v) = l.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut buf = vec![0; len];
            reader.read_exact(&mut buf).unwrap();
            let req: Value = serde_json::from_slice(&buf).unwrap_or(Value::Null);
            requests.lock().unwrap().push(req.clone());
            // The schema's order, title first, as OpenAI streams it (json! would sort the keys).
            let content = format!(
                "{{\"title\":{},\"body\":{}}}",
                Value::String(TITLE.into()),
                Value::String(body())
            );
            let mut out = String::from(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n",
            );
            let chars: Vec<char> = content.chars().collect();
            for (i, piece) in chars.chunks(40).enumerate() {
                let delta: String = piece.iter().collect();
                let mut d = json!({"content": delta});
                if i == 0 {
                    d["role"] = json!("assistant");
                }
                let chunk = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk",
                    "created": 1, "model": req["model"],
                    "choices": [{"index": 0, "delta": d, "finish_reason": null}]});
                out.push_str(&format!("data: {chunk}\n\n"));
            }
            let last = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                "model": req["model"], "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
            out.push_str(&format!("data: {last}\n\ndata: [DONE]\n\n"));
            let _ = stream.write_all(out.as_bytes());
        }
    });
    format!("http://{addr}/v1")
}

fn with_llm(cmd: &mut Command, base: &str) {
    cmd.env("OPENAI_BASE_URL", base)
        .env("OPENAI_API_KEY", "sk-test")
        .env("STORYREEL_MODEL", "test-model")
        .env_remove("OPENAI_MODEL");
}

#[test]
fn story_prompt_streams_and_writes_a_story_file() {
    let requests = Arc::new(Mutex::new(Vec::new()));
    let base = serve(requests.clone());
    let dir = support::tempdir();
    let out = dir.path().join("story.txt");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_storyreel"));
    cmd.args([
        "story",
        "--prompt",
        "a neighbour who only talks through notes",
        "--out",
    ])
    .arg(&out);
    with_llm(&mut cmd, &base);
    let o = support::run(&mut cmd);
    let streamed = String::from_utf8_lossy(&o.stderr);
    assert!(
        streamed.contains(TITLE),
        "the title was not streamed: {streamed}"
    );
    assert!(
        streamed.contains("folded twice, in the same blue ink"),
        "{streamed}"
    );
    let file = std::fs::read_to_string(&out).unwrap();
    let (title, rest) = file.split_once("\n\n").unwrap();
    assert_eq!(title, TITLE);
    let words = rest.split_whitespace().count();
    assert!((128..=192).contains(&words), "{words} words");
    let reqs = requests.lock().unwrap();
    assert_eq!(reqs[0]["model"], "test-model");
    assert_eq!(reqs[0]["stream"], true);
    assert_eq!(reqs[0]["response_format"]["type"], "json_schema");
    let system = reqs[0]["messages"][0]["content"]
        .as_str()
        .unwrap_or_default();
    assert!(system.contains("First person"), "{system}");
}

#[test]
fn make_prompt_produces_a_video() {
    let requests = Arc::new(Mutex::new(Vec::new()));
    let base = serve(requests.clone());
    let dir = support::tempdir();
    let out = dir.path().join("out");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_storyreel"));
    cmd.args([
        "make",
        "--prompt",
        "a neighbour who only talks through notes",
        "--draft",
        "--out",
    ])
    .arg(&out);
    with_llm(&mut cmd, &base);
    let o = support::run(&mut cmd);
    let video = std::path::PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
    let s = streams(&video);
    assert_eq!(text(only_stream(&s, "video"), "codec_name"), "h264");
    assert_eq!(decode_errors(&video), "");
    let job_id = video
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    let job: Value = serde_json::from_slice(
        &std::fs::read(out.join("jobs").join(format!("{job_id}.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(job["title"], TITLE);
    assert_eq!(job["source"], "prompt");
    assert_eq!(requests.lock().unwrap().len(), 1);
}

#[test]
fn speak_keeps_every_word_of_odd_unicode_in_order() {
    let dir = support::tempdir();
    let story = "“Naïve” café owners in Straße 12 said: it’s 2024, 3.5% up — see \
https://example.com/a?b=1 😀 Pneumonoultramicroscopicsilicovolcanoconiosis is long.";
    let path = support::write(dir.path(), "story.txt", story);
    let audio = dir.path().join("n.wav");
    let marks = dir.path().join("n.marks");
    support::run(
        Command::new(env!("CARGO_BIN_EXE_storyreel"))
            .arg("speak")
            .arg("--story")
            .arg(&path)
            .arg("--out-audio")
            .arg(&audio)
            .arg("--out-marks")
            .arg(&marks),
    );
    assert_eq!(decode_errors(&audio), "");
    let audio_ms = support::audio_ms(&audio);
    let text = std::fs::read_to_string(&path).unwrap();
    let words: Vec<Value> = std::fs::read_to_string(&marks)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|m| m["type"] == "word")
        .collect();
    let expected: Vec<&str> = text.split_whitespace().collect();
    let got: Vec<&str> = words.iter().map(|m| m["value"].as_str().unwrap()).collect();
    assert_eq!(got, expected);
    let mut last = -1i64;
    for m in &words {
        let (s, e) = (
            m["start"].as_u64().unwrap() as usize,
            m["end"].as_u64().unwrap() as usize,
        );
        assert_eq!(
            &text.as_bytes()[s..e],
            m["value"].as_str().unwrap().as_bytes()
        );
        let t = m["time"].as_i64().unwrap();
        assert!(t > last, "times not increasing at {m}");
        last = t;
    }
    assert!(
        (last as u64) < audio_ms,
        "last word at {last} ms, audio ends at {audio_ms} ms"
    );
}
