//! `StoryWriter` against the loopback chat-completions server (issue 5).

use std::time::{Duration, Instant};

use storyreel_story::{
    ErrorKind, LlmConfig, StoryError, StoryRequest, StoryStyle, StoryWriter, count_words,
};

use crate::server::{MockServer, Reply};

/// A body of `n` words: sentences of ten words, paragraphs of five sentences.
fn body(n: usize) -> String {
    let mut out = String::new();
    for i in 0..n {
        if i > 0 {
            out.push_str(if i % 50 == 0 { "\n\n" } else { " " });
        }
        out.push_str(if i % 10 == 0 { "It" } else { "word" });
        if i % 10 == 9 || i + 1 == n {
            out.push('.');
        }
    }
    out
}

fn config(server: &MockServer) -> LlmConfig {
    LlmConfig {
        base_url: server.url.clone(),
        api_key: Some("test-key".into()),
        model: "test-model".into(),
        retry_base: Duration::from_millis(10),
        ..LlmConfig::default()
    }
}

fn writer(config: LlmConfig) -> StoryWriter {
    StoryWriter::new(config).expect("valid config")
}

fn request(prompt: &str) -> StoryRequest {
    StoryRequest {
        prompt: prompt.into(),
        seconds: 60,
        style: StoryStyle::Post,
        recent_titles: vec!["The night shift".into(), "My neighbour's cat".into()],
    }
}

async fn write(
    w: &StoryWriter,
    req: &StoryRequest,
) -> (Result<storyreel_story::Story, StoryError>, String) {
    let mut shown = String::new();
    let mut on_delta = |s: &str| shown.push_str(s);
    let result = w.write(req, &mut on_delta).await;
    (result, shown)
}

#[tokio::test]
async fn streams_a_structured_story_within_budget() {
    let text = body(160);
    let server = MockServer::start(vec![Reply::story("The elevator incident", &text)]).await;
    let w = writer(config(&server));
    let (result, shown) = write(&w, &request("a stuck elevator")).await;
    let story = result.unwrap();
    assert_eq!(story.title.as_deref(), Some("The elevator incident"));
    assert_eq!(story.body, text);
    assert!((128..=192).contains(&story.word_count()));
    // The display stream is the decoded story, not JSON.
    assert_eq!(shown, format!("The elevator incident\n\n{text}"));

    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(r.header("authorization"), Some("Bearer test-key"));
    assert_eq!(r.body["model"], "test-model");
    assert!(r.stream());
    let rf = &r.body["response_format"];
    assert_eq!(rf["type"], "json_schema");
    assert_eq!(rf["json_schema"]["strict"], true);
    assert_eq!(
        rf["json_schema"]["schema"]["required"],
        serde_json::json!(["title", "body"])
    );
    let system = r.system_prompt();
    assert!(
        system.contains("First person") && system.contains("Reddit"),
        "{system}"
    );
    assert!(system.contains("No Markdown") || system.contains("no Markdown"));
    let user = r.last_user();
    assert!(user.contains("a stuck elevator"));
    assert!(user.contains("between 128 and 192 words"), "{user}");
    assert!(user.contains("- The night shift") && user.contains("- My neighbour's cat"));
    // Nothing sent as null: compatible servers reject unknown nulls.
    let obj = r.body.as_object().unwrap();
    assert!(obj.values().all(|v| !v.is_null()), "{obj:?}");
}

#[tokio::test]
async fn replies_style_changes_the_system_prompt() {
    let server = MockServer::start(vec![Reply::story("Thread", &body(150))]).await;
    let w = writer(config(&server));
    let mut req = request("a group chat");
    req.style = StoryStyle::Replies;
    let (result, _) = write(&w, &req).await;
    result.unwrap();
    assert!(
        server.requests()[0]
            .system_prompt()
            .contains("replies from other users")
    );
}

#[tokio::test]
async fn falls_back_to_plain_text_when_json_schema_is_rejected() {
    let text = body(150);
    let server = MockServer::start_with(false, vec![Reply::story("Plain title", &text)]).await;
    let w = writer(config(&server));
    let (result, shown) = write(&w, &request("a lost wallet")).await;
    let story = result.unwrap();
    assert_eq!(story.title.as_deref(), Some("Plain title"));
    assert_eq!(story.body, text);
    assert_eq!(shown, format!("Plain title\n\n{text}"));
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs[0].has_response_format());
    assert!(!reqs[1].has_response_format());
    assert!(reqs[1].system_prompt().contains("title on the first line"));
}

#[tokio::test]
async fn non_json_answer_to_a_schema_request_is_read_as_text() {
    let text = body(150);
    let server = MockServer::start(vec![Reply::Content(format!(
        "**Title:** Markdown title\n\n{text}"
    ))])
    .await;
    let w = writer(config(&server));
    let (result, shown) = write(&w, &request("a garden")).await;
    let story = result.unwrap();
    assert_eq!(story.title.as_deref(), Some("Markdown title"));
    assert_eq!(story.body, text);
    assert!(
        shown.starts_with("**Title:**"),
        "raw text is shown as it streams"
    );
}

#[tokio::test]
async fn refusal_field_is_refused_with_the_models_words() {
    let server = MockServer::start(vec![Reply::Refusal("I can't write that.".into())]).await;
    let w = writer(config(&server));
    let (result, _) = write(&w, &request("something bad")).await;
    let e = result.unwrap_err();
    assert_eq!(e.error_name(), "StoryRefused");
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    match e {
        StoryError::Refused { model_words } => assert_eq!(model_words, "I can't write that."),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(server.requests().len(), 1, "refusals are not retried");
}

#[tokio::test]
async fn plain_apology_is_refused() {
    let sorry = "I'm sorry, but I can't help with that.";
    let server = MockServer::start_with(false, vec![Reply::Content(sorry.into())]).await;
    let w = writer(config(&server));
    let (result, _) = write(&w, &request("something bad")).await;
    match result.unwrap_err() {
        StoryError::Refused { model_words } => assert_eq!(model_words, sorry),
        other => panic!("unexpected {other:?}"),
    }
    // One schema request rejected, one plain-text request refused; no more.
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn too_short_story_is_asked_again_then_accepted() {
    let short = body(40);
    let good = body(160);
    let server = MockServer::start(vec![
        Reply::story("Short one", &short),
        Reply::story("Short one", &good),
    ])
    .await;
    let w = writer(config(&server));
    let (result, shown) = write(&w, &request("a bakery")).await;
    let story = result.unwrap();
    assert_eq!(story.body, good);
    assert!(
        shown.contains("[the story has 40 words, fewer than 128; asking again, attempt 2 of 3]")
    );
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    let second = reqs[1].messages();
    let roles: Vec<&str> = second.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(roles, ["system", "user", "assistant", "user"]);
    assert!(
        second[2].1.contains("Short one"),
        "the previous answer is quoted back"
    );
    assert!(reqs[1].last_user().contains("That story has 40 words"));
}

#[tokio::test]
async fn story_that_stays_too_short_is_length_unmet() {
    let server = MockServer::start(vec![
        Reply::story("A", &body(40)),
        Reply::story("A", &body(45)),
        Reply::story("A", &body(50)),
    ])
    .await;
    let w = writer(config(&server));
    let (result, _) = write(&w, &request("a bakery")).await;
    let e = result.unwrap_err();
    assert!(matches!(
        e,
        StoryError::LengthUnmet {
            words: 50,
            min: 128,
            max: 192,
            attempts: 3
        }
    ));
    assert_eq!(e.error_name(), "StoryLengthUnmet");
}

#[tokio::test]
async fn too_long_story_is_trimmed_at_a_sentence_boundary() {
    let long = body(300);
    let server = MockServer::start(vec![Reply::story("Long one", &long)]).await;
    let w = writer(config(&server));
    let (result, shown) = write(&w, &request("a road trip")).await;
    let story = result.unwrap();
    let words = count_words(&story.body);
    assert!((128..=192).contains(&words), "{words}");
    assert_eq!(words, 190, "cut after the last whole sentence that fits");
    assert!(story.body.ends_with('.'));
    assert!(long.starts_with(&story.body));
    assert_eq!(server.requests().len(), 1);
    assert!(
        shown.ends_with(&format!(
            "{long}\n\n[trimmed from 300 to 190 words at a sentence boundary]\n\n"
        )),
        "the full text was shown while streaming, then the notice"
    );
}

#[tokio::test]
async fn rate_limit_honours_retry_after_then_succeeds() {
    let server = MockServer::start(vec![
        Reply::Status {
            code: 429,
            headers: vec![("Retry-After".into(), "1".into())],
            body: r#"{"error":{"message":"Rate limit reached","type":"requests"}}"#.into(),
        },
        Reply::story("Patience", &body(150)),
    ])
    .await;
    let w = writer(config(&server));
    let start = Instant::now();
    let (result, _) = write(&w, &request("waiting")).await;
    let elapsed = start.elapsed();
    assert_eq!(result.unwrap().title.as_deref(), Some("Patience"));
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    let gap = reqs[1].at.duration_since(reqs[0].at);
    assert!(gap >= Duration::from_millis(900), "{gap:?}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}

#[tokio::test]
async fn retry_after_longer_than_the_cap_fails_at_once_as_retryable() {
    let server = MockServer::start(vec![Reply::Status {
        code: 429,
        headers: vec![("Retry-After".into(), "600".into())],
        body: r#"{"error":{"message":"slow down"}}"#.into(),
    }])
    .await;
    let w = writer(config(&server));
    let start = Instant::now();
    let (result, _) = write(&w, &request("waiting")).await;
    assert!(start.elapsed() < Duration::from_secs(5));
    let e = result.unwrap_err();
    assert_eq!(e.error_name(), "LlmUnavailable");
    assert!(e.to_string().contains("retry after 600 s"), "{e}");
    match e {
        StoryError::Unavailable { retry_after, .. } => {
            assert_eq!(retry_after, Some(Duration::from_secs(600)))
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn repeated_server_errors_become_a_retryable_error() {
    let server = MockServer::start(vec![
        Reply::status(500, r#"{"error":{"message":"boom"}}"#),
        Reply::status(500, "<html>oops</html>"),
        Reply::status(503, ""),
        Reply::status(500, "late"),
    ])
    .await;
    let w = writer(LlmConfig {
        max_retries: 2,
        ..config(&server)
    });
    let (result, _) = write(&w, &request("anything")).await;
    let e = result.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Retryable);
    assert_eq!(e.error_name(), "LlmUnavailable");
    assert!(e.to_string().contains(&server.url), "{e}");
    assert!(
        matches!(e, StoryError::Unavailable { attempts: 3, .. }),
        "{e:?}"
    );
    assert_eq!(server.requests().len(), 3);
    let chain = std::error::Error::source(&e)
        .map(|s| s.to_string())
        .unwrap_or_default();
    assert!(chain.contains("503"), "{chain}");
}

#[tokio::test]
async fn unauthorized_is_a_config_error_naming_the_key() {
    let server = MockServer::start(vec![Reply::status(
        401,
        r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}"#,
    )])
    .await;
    let w = writer(config(&server));
    let (result, _) = write(&w, &request("anything")).await;
    let e = result.unwrap_err();
    assert_eq!(e.error_name(), "LlmConfig");
    assert_eq!(e.kind(), ErrorKind::Fatal);
    assert!(e.to_string().contains("OPENAI_API_KEY"), "{e}");
    let source = std::error::Error::source(&e).unwrap().to_string();
    assert!(source.contains("Incorrect API key provided"), "{source}");
    assert_eq!(server.requests().len(), 1, "401 is not retried");
}

#[tokio::test]
async fn missing_key_is_named_on_403() {
    let server = MockServer::start(vec![Reply::status(403, "forbidden")]).await;
    let w = writer(LlmConfig {
        api_key: None,
        ..config(&server)
    });
    let (result, _) = write(&w, &request("anything")).await;
    let e = result.unwrap_err();
    assert!(e.to_string().contains("OPENAI_API_KEY is not set"), "{e}");
    assert_eq!(server.requests()[0].header("authorization"), Some("Bearer"));
}

#[tokio::test]
async fn duplicate_title_is_regenerated() {
    let server = MockServer::start(vec![
        Reply::story("My neighbours cat!", &body(150)),
        Reply::story("The borrowed ladder", &body(150)),
    ])
    .await;
    let w = writer(config(&server));
    let (result, shown) = write(&w, &request("neighbours")).await;
    assert_eq!(
        result.unwrap().title.as_deref(),
        Some("The borrowed ladder")
    );
    assert!(
        shown.contains("too close to the recent \"My neighbour's cat\""),
        "{shown}"
    );
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs[1].last_user().contains("too close to a recent story"));
}

#[tokio::test]
async fn a_title_repeated_every_time_is_an_error() {
    let server = MockServer::start(vec![
        Reply::story("The night shift", &body(150)),
        Reply::story("The night shift", &body(150)),
    ])
    .await;
    let w = writer(LlmConfig {
        max_attempts: 2,
        ..config(&server)
    });
    let (result, _) = write(&w, &request("work")).await;
    let e = result.unwrap_err();
    assert_eq!(e.error_name(), "StoryDuplicateTitle");
    assert!(matches!(e, StoryError::DuplicateTitle { attempts: 2, .. }));
}

#[tokio::test]
async fn connection_refused_is_retryable_and_names_the_url() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    drop(listener);
    let w = writer(LlmConfig {
        base_url: url.clone(),
        max_retries: 1,
        retry_base: Duration::from_millis(10),
        ..LlmConfig::default()
    });
    let (result, _) = write(&w, &request("anything")).await;
    let e = result.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Retryable);
    assert!(
        e.to_string().contains(&format!("cannot connect to {url}")),
        "{e}"
    );
}

#[tokio::test]
async fn non_streaming_mode_reads_a_json_completion() {
    let text = body(150);
    let server = MockServer::start(vec![Reply::story("No stream", &text)]).await;
    let w = writer(LlmConfig {
        stream: false,
        ..config(&server)
    });
    let (result, shown) = write(&w, &request("quiet")).await;
    let story = result.unwrap();
    assert_eq!(story.title.as_deref(), Some("No stream"));
    assert_eq!(shown, format!("No stream\n\n{text}"));
    assert!(!server.requests()[0].stream());
}

#[tokio::test]
async fn invalid_input_is_rejected_before_any_request() {
    let server = MockServer::start(vec![]).await;
    let w = writer(config(&server));
    let (result, _) = write(&w, &StoryRequest::new("   ")).await;
    assert_eq!(result.unwrap_err().error_name(), "StoryInvalidInput");
    let mut req = StoryRequest::new("fine");
    req.seconds = 181;
    let (result, _) = write(&w, &req).await;
    assert_eq!(result.unwrap_err().error_name(), "StoryInvalidInput");
    assert!(server.requests().is_empty());
}
