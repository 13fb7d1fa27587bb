//! Writing a story from a prompt with any OpenAI-compatible chat-completions server.
//!
//! [`StoryWriter::write`] asks for structured output (a strict JSON schema with `title` and
//! `body`) over a streamed request, and falls back to plain text ("title line, blank line,
//! body") when the server rejects `response_format` or answers with something else. It
//! then judges the answer, in this order:
//! 1. a `refusal`, an empty body, a short answer that opens like a refusal ("I'm sorry…",
//!    "I can't help…") or fewer than 20 words → [`StoryError::Refused`], never retried;
//! 2. no title → asked again (the last attempt is accepted without one);
//! 3. a title too close to a recent one (see [`crate::title`]) → asked again;
//! 4. too long → trimmed at the last sentence that fits, or asked again when that leaves too
//!    little; too short → asked again, telling the model its word count.
//!
//! Up to [`LlmConfig::max_attempts`] answers are requested. Separately, each request is
//! retried on 408, 409, 429, 5xx and network failures up to [`LlmConfig::max_retries`]
//! times, waiting `Retry-After` seconds when given (a wait longer than
//! [`LlmConfig::max_retry_wait`] is not slept: the error is returned at once, retryable)
//! or an exponential backoff otherwise. async-openai's own retry layer is replaced (see
//! `transport`), so nothing sleeps behind our back.

use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestMessage,
    ChatCompletionRequestSystemMessage, ChatCompletionRequestUserMessage,
    CreateChatCompletionRequest, ResponseFormat, ResponseFormatJsonSchema,
};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::StoryError;
use crate::clean::{Story, clean_body_only, clean_title_only, clean_unchecked};
use crate::error::BoxError;
use crate::json_stream::{Field, JsonStoryStream, Piece};
use crate::length::{DEFAULT_SECONDS, DEFAULT_WORDS_PER_MINUTE, LengthTarget, WordBudget};
use crate::length::{count_words, trim_to_sentences};
use crate::prompt::{self, StoryStyle};
use crate::title::find_duplicate;
use crate::transport::{HttpFailure, Transport};

/// OpenAI's API, the default when `OPENAI_BASE_URL` is not set.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
/// Default model: cheap, fast, supports strict structured output.
pub const DEFAULT_MODEL: &str = "gpt-4o-mini";
/// Longest prompt accepted, in characters.
pub const MAX_PROMPT_CHARS: usize = 2000;
/// At most this many recent titles are sent (the first ones given).
pub const MAX_RECENT_TITLES: usize = 50;

/// Answers are read up to this size; a story is a few KiB, so more is a runaway model.
const MAX_ANSWER_BYTES: usize = 256 * 1024;
/// Previous answers quoted back to the model are cut to this many characters.
const MAX_QUOTED_ANSWER_CHARS: usize = 32 * 1024;
/// `Refused::model_words` is cut to this many characters.
const MAX_MODEL_WORDS_CHARS: usize = 1000;
/// Fewer words than this (or half the budget's minimum, if smaller) is not a story.
const MIN_STORY_WORDS: usize = 20;

/// Where and how to reach the model. Build it with [`LlmConfig::from_env`] and override
/// fields from command-line flags.
#[derive(Clone)]
pub struct LlmConfig {
    /// Base URL of the API, up to and including `/v1` (`OPENAI_BASE_URL`).
    pub base_url: String,
    /// API key (`OPENAI_API_KEY`); `None` sends an empty bearer token, which local servers
    /// such as Ollama accept.
    pub api_key: Option<String>,
    /// Organisation header (`OPENAI_ORG_ID`).
    pub org_id: Option<String>,
    /// Project header (`OPENAI_PROJECT_ID`).
    pub project_id: Option<String>,
    /// Model name (`STORYREEL_MODEL`, else `OPENAI_MODEL`, else [`DEFAULT_MODEL`]).
    pub model: String,
    /// Speaking rate of the voice, for the word budget.
    pub words_per_minute: u32,
    /// Answers requested per story (length and duplicate-title retries included); default 3.
    pub max_attempts: u32,
    /// Retries of one request on 429, 5xx and network errors; default 3.
    pub max_retries: u32,
    /// First backoff without `Retry-After`, doubled on each retry; default 1 s.
    pub retry_base: Duration,
    /// Longest single wait; a longer `Retry-After` fails at once (retryable); default 20 s.
    pub max_retry_wait: Duration,
    /// Whole-request timeout, streaming included; default 120 s.
    pub request_timeout: Duration,
    /// Ask for a JSON schema (falls back to plain text when rejected); default true.
    pub structured_output: bool,
    /// Stream the answer (server-sent events); default true.
    pub stream: bool,
}

impl std::fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("org_id", &self.org_id)
            .field("project_id", &self.project_id)
            .field("model", &self.model)
            .field("words_per_minute", &self.words_per_minute)
            .field("max_attempts", &self.max_attempts)
            .field("max_retries", &self.max_retries)
            .field("retry_base", &self.retry_base)
            .field("max_retry_wait", &self.max_retry_wait)
            .field("request_timeout", &self.request_timeout)
            .field("structured_output", &self.structured_output)
            .field("stream", &self.stream)
            .finish()
    }
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            base_url: DEFAULT_BASE_URL.to_string(),
            api_key: None,
            org_id: None,
            project_id: None,
            model: DEFAULT_MODEL.to_string(),
            words_per_minute: DEFAULT_WORDS_PER_MINUTE,
            max_attempts: 3,
            max_retries: 3,
            retry_base: Duration::from_secs(1),
            max_retry_wait: Duration::from_secs(20),
            request_timeout: Duration::from_secs(120),
            structured_output: true,
            stream: true,
        }
    }
}

impl LlmConfig {
    /// Reads `OPENAI_API_KEY`, `OPENAI_BASE_URL`, `OPENAI_ORG_ID`, `OPENAI_PROJECT_ID`,
    /// `STORYREEL_MODEL` and `OPENAI_MODEL` from the process environment; empty values count
    /// as unset.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`LlmConfig::from_env`] with another source of variables (tests, secrets).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let defaults = LlmConfig::default();
        LlmConfig {
            base_url: var("OPENAI_BASE_URL").unwrap_or(defaults.base_url.clone()),
            api_key: var("OPENAI_API_KEY"),
            org_id: var("OPENAI_ORG_ID"),
            project_id: var("OPENAI_PROJECT_ID"),
            model: var("STORYREEL_MODEL")
                .or_else(|| var("OPENAI_MODEL"))
                .unwrap_or(defaults.model.clone()),
            ..defaults
        }
    }
}

/// What to write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoryRequest {
    /// What the story is about (one line is enough), at most [`MAX_PROMPT_CHARS`].
    pub prompt: String,
    /// Target duration in seconds, `1..=180`.
    #[serde(default = "default_seconds")]
    pub seconds: u32,
    /// Post, or post with replies.
    #[serde(default)]
    pub style: StoryStyle,
    /// Titles of recent stories not to repeat (most recent first).
    #[serde(default)]
    pub recent_titles: Vec<String>,
}

fn default_seconds() -> u32 {
    DEFAULT_SECONDS
}

impl StoryRequest {
    /// A 60-second post about `prompt`.
    pub fn new(prompt: impl Into<String>) -> Self {
        StoryRequest {
            prompt: prompt.into(),
            seconds: DEFAULT_SECONDS,
            style: StoryStyle::Post,
            recent_titles: Vec::new(),
        }
    }
}

/// Writes stories with an OpenAI-compatible chat-completions server; cheap to share.
#[derive(Clone, Debug)]
pub struct StoryWriter {
    client: Client<OpenAIConfig>,
    config: LlmConfig,
}

/// The model's raw answer.
#[derive(Debug, Default)]
struct Answer {
    text: String,
    refusal: String,
    /// Title and body decoded while streaming JSON (also from JSON cut short).
    streamed: Option<(String, String)>,
}

/// Why one HTTP attempt failed.
enum Attempt {
    Transient {
        reason: String,
        retry_after: Option<Duration>,
        source: BoxError,
    },
    FormatRejected(HttpFailure),
    Fatal(StoryError),
}

enum CallFailure {
    FormatRejected(HttpFailure),
    Failed(StoryError),
}

enum Verdict {
    /// A story to return; `trimmed_from` is the word count before trimming, if trimmed.
    Accept {
        story: Story,
        trimmed_from: Option<usize>,
    },
    Refuse(StoryError),
    Retry {
        feedback: String,
        notice: String,
        failure: StoryError,
    },
}

/// The parts of a chat completion (or of a streamed chunk) we read; every field optional,
/// since compatible servers differ in what they send.
#[derive(Debug, Deserialize)]
struct ChatAnswer {
    #[serde(default)]
    choices: Vec<ChoiceIn>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct ChoiceIn {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    delta: Option<MessageIn>,
    #[serde(default)]
    message: Option<MessageIn>,
}

#[derive(Debug, Deserialize)]
struct MessageIn {
    #[serde(default)]
    content: Option<serde_json::Value>,
    #[serde(default)]
    refusal: Option<String>,
}

impl MessageIn {
    /// `content` as a string, or the text parts of a content array.
    fn text(&self) -> Option<String> {
        match self.content.as_ref()? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Array(parts) => Some(
                parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(|t| t.as_str()))
                    .collect(),
            ),
            _ => None,
        }
    }
}

#[derive(Debug, Deserialize)]
struct TitleBody {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    body: Option<String>,
}

impl StoryWriter {
    /// A writer for `config`. Fails with [`StoryError::Config`] when the base URL is not an
    /// http(s) URL, a header value (key, organisation, project) has characters HTTP does not
    /// allow, or the model name is empty.
    pub fn new(mut config: LlmConfig) -> Result<Self, StoryError> {
        let config_error = |message: String| StoryError::Config {
            message,
            source: None,
        };
        config.base_url = config.base_url.trim().trim_end_matches('/').to_string();
        let url_ok = reqwest::Url::parse(&config.base_url)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
        if !url_ok {
            return Err(config_error(format!(
                "invalid OPENAI_BASE_URL {:?} (expected an http:// or https:// url such as {DEFAULT_BASE_URL})",
                config.base_url
            )));
        }
        for (name, value) in [
            ("OPENAI_API_KEY", &mut config.api_key),
            ("OPENAI_ORG_ID", &mut config.org_id),
            ("OPENAI_PROJECT_ID", &mut config.project_id),
        ] {
            if let Some(v) = value {
                *v = v.trim().to_string();
                if !v.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
                    return Err(config_error(format!(
                        "{name} holds spaces or characters not allowed in an http header ({} characters)",
                        v.chars().count()
                    )));
                }
            }
        }
        config.model = config.model.trim().to_string();
        if config.model.is_empty() {
            return Err(config_error(
                "the model name is empty (set STORYREEL_MODEL or OPENAI_MODEL)".to_string(),
            ));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(config.request_timeout)
            .build()
            .map_err(|e| StoryError::Config {
                message: "cannot build the http client".to_string(),
                source: Some(Box::new(e)),
            })?;
        let openai = OpenAIConfig::new()
            .with_api_base(config.base_url.clone())
            .with_api_key(config.api_key.clone().unwrap_or_default())
            .with_org_id(config.org_id.clone().unwrap_or_default())
            .with_project_id(config.project_id.clone().unwrap_or_default());
        let client = Client::with_config(openai)
            .with_http_client(http.clone())
            .with_http_service(Transport::new(http));
        Ok(StoryWriter { client, config })
    }

    /// A writer configured from the environment (see [`LlmConfig::from_env`]).
    pub fn from_env() -> Result<Self, StoryError> {
        Self::new(LlmConfig::from_env())
    }

    /// The configuration in use (base URL normalised).
    pub fn config(&self) -> &LlmConfig {
        &self.config
    }

    /// Writes a story for `req`, passing text to `on_delta` as it is generated.
    ///
    /// `on_delta` is for display: it receives the title, a blank line, then the body as they
    /// stream in (decoded from JSON; raw text when the answer is plain text), and notices in
    /// square brackets on their own lines when an answer is asked for again, a request is
    /// retried or the story is trimmed. The returned [`Story`] is the cleaned, checked
    /// result. Must run on a Tokio runtime (async-openai reads streams in a spawned task).
    ///
    /// Errors: [`StoryError::InvalidPrompt`] / [`StoryError::InvalidTarget`] for bad input,
    /// [`StoryError::Refused`], [`StoryError::LengthUnmet`], [`StoryError::DuplicateTitle`],
    /// and the server errors described on [`StoryError`].
    pub async fn write(
        &self,
        req: &StoryRequest,
        on_delta: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Story, StoryError> {
        let prompt = clean_prompt(&req.prompt)?;
        let budget = LengthTarget {
            seconds: req.seconds,
            words_per_minute: self.config.words_per_minute,
        }
        .budget()?;
        let recent = clean_recent_titles(&req.recent_titles);
        let user = prompt::user_prompt(&prompt, &budget, req.seconds, &recent);
        let mut structured = self.config.structured_output;
        let mut followup: Option<(String, String)> = None;
        let mut last_failure = None;
        let attempts = self.config.max_attempts.max(1);
        for attempt in 1..=attempts {
            let answer = self
                .ask(
                    req.style,
                    &user,
                    followup.as_ref(),
                    &mut structured,
                    on_delta,
                )
                .await?;
            match judge(&answer, &budget, &recent, attempt, attempts) {
                Verdict::Accept {
                    story,
                    trimmed_from,
                } => {
                    if let Some(before) = trimmed_from {
                        on_delta(&format!(
                            "\n\n[trimmed from {before} to {} words at a sentence boundary]\n\n",
                            story.word_count()
                        ));
                    }
                    tracing::info!(
                        trimmed_from,
                        attempt,
                        words = story.word_count(),
                        title = story.title.as_deref().unwrap_or(""),
                        "story written"
                    );
                    return Ok(story);
                }
                Verdict::Refuse(e) => return Err(e),
                Verdict::Retry {
                    feedback,
                    notice,
                    failure,
                } => {
                    tracing::warn!(attempt, reason = %failure, "asking the model again");
                    if attempt < attempts {
                        on_delta(&format!(
                            "\n\n[{notice}; asking again, attempt {} of {attempts}]\n\n",
                            attempt + 1
                        ));
                    }
                    let quoted: String =
                        answer.text.chars().take(MAX_QUOTED_ANSWER_CHARS).collect();
                    followup = Some((quoted, feedback));
                    last_failure = Some(failure);
                }
            }
        }
        Err(last_failure.unwrap_or_else(|| StoryError::BadResponse {
            url: self.config.base_url.clone(),
            message: "no answer".to_string(),
            source: None,
        }))
    }

    /// One answer, falling back to plain text if the server rejects the JSON schema.
    async fn ask(
        &self,
        style: StoryStyle,
        user: &str,
        followup: Option<&(String, String)>,
        structured: &mut bool,
        on_delta: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Answer, StoryError> {
        loop {
            let mut messages: Vec<ChatCompletionRequestMessage> = vec![
                ChatCompletionRequestSystemMessage::from(prompt::system_prompt(style, *structured))
                    .into(),
                ChatCompletionRequestUserMessage::from(user).into(),
            ];
            if let Some((previous, feedback)) = followup {
                messages
                    .push(ChatCompletionRequestAssistantMessage::from(previous.as_str()).into());
                messages.push(ChatCompletionRequestUserMessage::from(feedback.as_str()).into());
            }
            match self.complete(messages, *structured, on_delta).await {
                Ok(answer) => return Ok(answer),
                Err(CallFailure::FormatRejected(f)) if *structured => {
                    tracing::info!(status = f.status, message = %f.message,
                        "server rejected response_format; falling back to plain text");
                    *structured = false;
                }
                Err(CallFailure::FormatRejected(f)) => {
                    return Err(StoryError::Rejected {
                        url: self.config.base_url.clone(),
                        message: format!("status {}", f.status),
                        source: Some(Box::new(f)),
                    });
                }
                Err(CallFailure::Failed(e)) => return Err(e),
            }
        }
    }

    /// One request with retries on transient failures.
    async fn complete(
        &self,
        messages: Vec<ChatCompletionRequestMessage>,
        structured: bool,
        on_delta: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Answer, CallFailure> {
        let request = self.request(messages, structured);
        let mut attempt: u32 = 1;
        loop {
            let mut emitted = false;
            let result = if self.config.stream {
                self.send_streaming(&request, structured, on_delta, &mut emitted)
                    .await
            } else {
                self.send_once(&request, structured, on_delta, &mut emitted)
                    .await
            };
            match result {
                Ok(answer) => return Ok(answer),
                Err(Attempt::FormatRejected(f)) => return Err(CallFailure::FormatRejected(f)),
                Err(Attempt::Fatal(e)) => return Err(CallFailure::Failed(e)),
                Err(Attempt::Transient {
                    reason,
                    retry_after,
                    source,
                }) => {
                    let unavailable = |reason: String, source: BoxError| {
                        CallFailure::Failed(StoryError::Unavailable {
                            url: self.config.base_url.clone(),
                            attempts: attempt,
                            reason,
                            retry_after,
                            source: Some(source),
                        })
                    };
                    if attempt > self.config.max_retries {
                        return Err(unavailable(reason, source));
                    }
                    let wait = match retry_after {
                        Some(wait) if wait > self.config.max_retry_wait => {
                            return Err(unavailable(
                                format!(
                                    "{reason}; the server asks to retry after {} s, longer than the {} s this client waits",
                                    wait.as_secs_f32().ceil(),
                                    self.config.max_retry_wait.as_secs_f32()
                                ),
                                source,
                            ));
                        }
                        Some(wait) => wait,
                        None => self.backoff(attempt),
                    };
                    tracing::warn!(attempt, %reason, wait_ms = wait.as_millis() as u64,
                        error = %source, "llm request failed; retrying");
                    if emitted {
                        on_delta(&format!("\n\n[{reason}; retrying]\n\n"));
                    }
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }

    /// Exponential backoff for retry `attempt` (1-based) with up to 25% jitter, capped.
    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        let base = self.config.retry_base.saturating_mul(factor);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let jitter = base.mul_f64(f64::from(nanos % 250) / 1000.0);
        (base + jitter).min(self.config.max_retry_wait)
    }

    fn request(
        &self,
        messages: Vec<ChatCompletionRequestMessage>,
        structured: bool,
    ) -> CreateChatCompletionRequest {
        let response_format = structured.then(|| ResponseFormat::JsonSchema {
            json_schema: ResponseFormatJsonSchema {
                description: Some("A story with its title".to_string()),
                name: "story".to_string(),
                schema: prompt::story_schema(),
                strict: Some(true),
            },
        });
        CreateChatCompletionRequest {
            messages,
            model: self.config.model.clone(),
            response_format,
            stream: Some(self.config.stream),
            ..Default::default()
        }
    }

    async fn send_streaming(
        &self,
        request: &CreateChatCompletionRequest,
        structured: bool,
        on_delta: &mut (dyn FnMut(&str) + Send),
        emitted: &mut bool,
    ) -> Result<Answer, Attempt> {
        let mut stream = self
            .client
            .chat()
            .create_stream_byot::<_, ChatAnswer>(request)
            .await
            .map_err(|e| self.classify(e, structured))?;
        let mut answer = Answer::default();
        let mut display = Display::new(structured);
        let mut chunks = 0usize;
        while let Some(item) = stream.next().await {
            let chunk = item.map_err(|e| self.classify(e, structured))?;
            chunks += 1;
            if let Some(error) = chunk.error {
                return Err(Attempt::Transient {
                    reason: "the server reported an error mid-stream".to_string(),
                    retry_after: None,
                    source: error.to_string().into(),
                });
            }
            for choice in chunk.choices.iter().filter(|c| c.index == 0) {
                let Some(delta) = choice.delta.as_ref().or(choice.message.as_ref()) else {
                    continue;
                };
                if let Some(r) = &delta.refusal {
                    push_capped(&mut answer.refusal, r);
                }
                if let Some(text) = delta.text().filter(|t| !t.is_empty()) {
                    if !push_capped(&mut answer.text, &text) {
                        tracing::warn!(bytes = answer.text.len(), "answer too large; cut");
                        break;
                    }
                    display.feed(&text, on_delta, emitted);
                }
            }
            if answer.text.len() >= MAX_ANSWER_BYTES {
                break;
            }
        }
        if chunks == 0 {
            return Err(Attempt::Fatal(StoryError::BadResponse {
                url: self.config.base_url.clone(),
                message:
                    "the stream ended without any chunk (does the server support stream: true?)"
                        .to_string(),
                source: None,
            }));
        }
        answer.streamed = display.parts();
        Ok(answer)
    }

    async fn send_once(
        &self,
        request: &CreateChatCompletionRequest,
        structured: bool,
        on_delta: &mut (dyn FnMut(&str) + Send),
        emitted: &mut bool,
    ) -> Result<Answer, Attempt> {
        let response: ChatAnswer = self
            .client
            .chat()
            .create_byot(request)
            .await
            .map_err(|e| self.classify(e, structured))?;
        if let Some(error) = response.error {
            return Err(Attempt::Transient {
                reason: "the server answered with an error".to_string(),
                retry_after: None,
                source: error.to_string().into(),
            });
        }
        let mut answer = Answer::default();
        if let Some(message) = response
            .choices
            .iter()
            .find(|c| c.index == 0)
            .and_then(|c| c.message.as_ref().or(c.delta.as_ref()))
        {
            if let Some(r) = &message.refusal {
                push_capped(&mut answer.refusal, r);
            }
            if let Some(text) = message.text() {
                push_capped(&mut answer.text, &text);
            }
        }
        let mut display = Display::new(structured);
        display.feed(&answer.text, on_delta, emitted);
        answer.streamed = display.parts();
        Ok(answer)
    }

    fn classify(&self, error: OpenAIError, structured: bool) -> Attempt {
        let url = self.config.base_url.clone();
        match error {
            OpenAIError::Boxed(boxed) => match boxed.downcast::<HttpFailure>() {
                Ok(failure) => self.classify_http(*failure, structured),
                Err(other) => Attempt::Fatal(StoryError::BadResponse {
                    url,
                    message: "transport failure".to_string(),
                    source: Some(other),
                }),
            },
            OpenAIError::ApiError(api) => self.classify_http(
                HttpFailure {
                    status: api.status_code.as_u16(),
                    retry_after: None,
                    message: api.api_error.message.clone(),
                    error_type: api.api_error.r#type.clone(),
                },
                structured,
            ),
            OpenAIError::Reqwest(e) if e.is_builder() => Attempt::Fatal(StoryError::Config {
                message: format!("cannot build a request for {url} (check OPENAI_BASE_URL)"),
                source: Some(Box::new(e)),
            }),
            OpenAIError::Reqwest(e) => {
                let reason = if e.is_connect() {
                    format!("cannot connect to {url}")
                } else if e.is_timeout() {
                    format!("request to {url} timed out")
                } else {
                    format!("network error talking to {url}")
                };
                Attempt::Transient {
                    reason,
                    retry_after: None,
                    source: Box::new(e),
                }
            }
            OpenAIError::StreamError(e) => Attempt::Transient {
                reason: "the stream broke off".to_string(),
                retry_after: None,
                source: e,
            },
            OpenAIError::JSONDeserialize(e, content) => Attempt::Fatal(StoryError::BadResponse {
                message: format!(
                    "not a chat completion: {:?}",
                    content.chars().take(200).collect::<String>()
                ),
                url,
                source: Some(Box::new(e)),
            }),
            other => Attempt::Fatal(StoryError::BadResponse {
                url,
                message: "unexpected client error".to_string(),
                source: Some(Box::new(other)),
            }),
        }
    }

    fn classify_http(&self, failure: HttpFailure, structured: bool) -> Attempt {
        let url = &self.config.base_url;
        let status = failure.status;
        let config = |message: String, failure: HttpFailure| {
            Attempt::Fatal(StoryError::Config {
                message,
                source: Some(Box::new(failure)),
            })
        };
        match status {
            401 | 403 => {
                let message = if self.config.api_key.is_none() {
                    format!(
                        "{url} answered {status} and OPENAI_API_KEY is not set: set OPENAI_API_KEY, or OPENAI_BASE_URL to a server that needs no key"
                    )
                } else {
                    format!(
                        "{url} rejected the api key with {status}: check OPENAI_API_KEY (and OPENAI_BASE_URL if you meant another server)"
                    )
                };
                config(message, failure)
            }
            404 => config(
                format!(
                    "{url} answered 404 for model {:?}: check OPENAI_BASE_URL (it usually ends in /v1) and the model name (STORYREEL_MODEL)",
                    self.config.model
                ),
                failure,
            ),
            429 if failure.error_type.as_deref() == Some("insufficient_quota") => config(
                format!(
                    "the account behind OPENAI_API_KEY has no quota left at {url} (insufficient_quota)"
                ),
                failure,
            ),
            408 | 409 | 429 | 500..=599 => Attempt::Transient {
                reason: if status == 429 {
                    "rate limited (429)".to_string()
                } else {
                    format!("status {status}")
                },
                retry_after: failure.retry_after,
                source: Box::new(failure),
            },
            400 | 422 if structured && mentions_response_format(&failure.message) => {
                Attempt::FormatRejected(failure)
            }
            _ => Attempt::Fatal(StoryError::Rejected {
                url: url.clone(),
                message: format!("status {status}"),
                source: Some(Box::new(failure)),
            }),
        }
    }
}

fn mentions_response_format(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "response_format",
        "response format",
        "json_schema",
        "json schema",
        "structured output",
    ]
    .iter()
    .any(|k| m.contains(k))
}

/// Appends unless that would pass [`MAX_ANSWER_BYTES`]; returns false when it did not fit.
fn push_capped(buf: &mut String, text: &str) -> bool {
    if buf.len() + text.len() > MAX_ANSWER_BYTES {
        let room = MAX_ANSWER_BYTES.saturating_sub(buf.len());
        let mut cut = room.min(text.len());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        buf.push_str(&text[..cut]);
        return false;
    }
    buf.push_str(text);
    true
}

/// Turns streamed answer text into display text.
struct Display {
    decoder: Option<JsonStoryStream>,
    body_started: bool,
}

impl Display {
    fn new(structured: bool) -> Self {
        Display {
            decoder: structured.then(JsonStoryStream::new),
            body_started: false,
        }
    }

    fn feed(&mut self, text: &str, on_delta: &mut (dyn FnMut(&str) + Send), emitted: &mut bool) {
        let Some(decoder) = self.decoder.as_mut() else {
            *emitted = true;
            on_delta(text);
            return;
        };
        let body_started = &mut self.body_started;
        decoder.feed(text, &mut |piece| {
            let shown = match piece {
                Piece::Text(Field::Title, t) if !*body_started => t,
                Piece::End(Field::Title) if !*body_started => "\n\n",
                Piece::Text(Field::Body, t) => {
                    *body_started = true;
                    t
                }
                Piece::Raw(t) => t,
                _ => "",
            };
            if !shown.is_empty() {
                *emitted = true;
                on_delta(shown);
            }
        });
    }

    fn parts(&self) -> Option<(String, String)> {
        let decoder = self.decoder.as_ref()?;
        if decoder.is_raw() {
            return None;
        }
        decoder.parts().map(|(t, b)| (t.to_string(), b.to_string()))
    }
}

fn clean_prompt(prompt: &str) -> Result<String, StoryError> {
    let cleaned: String = prompt
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let n = cleaned.chars().count();
    if n == 0 {
        return Err(StoryError::InvalidPrompt {
            reason: "the prompt is empty".to_string(),
        });
    }
    if n > MAX_PROMPT_CHARS {
        return Err(StoryError::InvalidPrompt {
            reason: format!("the prompt has {n} characters (at most {MAX_PROMPT_CHARS})"),
        });
    }
    Ok(cleaned)
}

fn clean_recent_titles(titles: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in titles {
        if out.len() == MAX_RECENT_TITLES {
            break;
        }
        let t = clean_title_only(t);
        if !t.is_empty() && !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// Parses an answer: JSON `{title, body}` (possibly fenced, or cut short while streaming),
/// else the plain-text format.
fn parse_answer(answer: &Answer) -> Story {
    let trimmed = answer.text.trim();
    let unfenced = trimmed
        .strip_prefix("```json")
        .or_else(|| trimmed.strip_prefix("```"))
        .map(|s| s.trim_end().trim_end_matches('`'))
        .unwrap_or(trimmed);
    let json = serde_json::from_str::<TitleBody>(unfenced.trim())
        .ok()
        .filter(|tb| tb.body.is_some());
    let parts = match json {
        Some(tb) => Some((tb.title.unwrap_or_default(), tb.body.unwrap_or_default())),
        None if unfenced.starts_with('{') => answer.streamed.clone(),
        None => None,
    };
    match parts {
        Some((title, body)) => {
            let title = clean_title_only(&title);
            let mut body = clean_body_only(&body);
            // A body that starts by repeating the title: drop that line.
            let repeated = match body.split_once("\n\n") {
                Some((first, rest)) if !title.is_empty() && same_words(first, &title) => {
                    Some(rest.to_string())
                }
                _ => None,
            };
            if let Some(rest) = repeated {
                body = rest;
            }
            Story {
                title: (!title.is_empty()).then_some(title),
                body,
            }
        }
        None => clean_unchecked(&answer.text),
    }
}

fn same_words(a: &str, b: &str) -> bool {
    let words = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    words(a) == words(b)
}

/// Phrases that open a refusal rather than a story.
const REFUSAL_OPENERS: &[&str] = &[
    "i'm sorry",
    "i am sorry",
    "sorry,",
    "sorry but",
    "i apologize",
    "i apologise",
    "as an ai",
    "i can't help",
    "i cannot help",
    "i can't assist",
    "i cannot assist",
    "i can't create",
    "i cannot create",
    "i can't write",
    "i cannot write",
    "i can't provide",
    "i cannot provide",
    "i can't comply",
    "i cannot comply",
    "i can't fulfill",
    "i cannot fulfill",
    "i can't do that",
    "i won't be able",
    "i'm unable",
    "i am unable",
    "i'm not able to",
    "i am not able to",
    "unfortunately, i can",
    "i must decline",
];

/// Phrases that mark a short answer as a refusal wherever they appear.
const REFUSAL_PHRASES: &[&str] = &[
    "can't help with",
    "cannot help with",
    "can't assist with",
    "cannot assist with",
    "unable to help with",
    "not able to help with",
    "against my guidelines",
    "content policy",
    "i can't comply",
    "i cannot comply",
];

fn looks_like_refusal(story: &Story, budget: &WordBudget) -> bool {
    let words = story.word_count();
    let story_min = MIN_STORY_WORDS.min(budget.min.div_ceil(2)).max(1);
    if words < story_min {
        return true;
    }
    if words >= budget.min {
        return false;
    }
    let lead = |s: &str| -> String {
        s.trim_start_matches(|c: char| !c.is_alphanumeric())
            .chars()
            .take(300)
            .collect::<String>()
            .to_lowercase()
    };
    let body = lead(&story.body);
    let title = story.title.as_deref().map(lead).unwrap_or_default();
    REFUSAL_OPENERS
        .iter()
        .any(|p| body.starts_with(p) || title.starts_with(p))
        || REFUSAL_PHRASES.iter().any(|p| body.contains(p))
}

fn model_words(text: &str) -> String {
    let text = text.trim();
    let mut out: String = text.chars().take(MAX_MODEL_WORDS_CHARS).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    if out.is_empty() {
        out = "(empty answer)".to_string();
    }
    out
}

/// Decides what to do with an answer (see the module docs for the order of checks).
fn judge(
    answer: &Answer,
    budget: &WordBudget,
    recent: &[String],
    attempt: u32,
    attempts: u32,
) -> Verdict {
    if !answer.refusal.trim().is_empty() {
        return Verdict::Refuse(StoryError::Refused {
            model_words: model_words(&answer.refusal),
        });
    }
    let mut story = parse_answer(answer);
    if looks_like_refusal(&story, budget) {
        let said = match &story.title {
            Some(t) if !story.body.is_empty() => format!("{t}\n\n{}", story.body),
            Some(t) => t.clone(),
            None if story.body.is_empty() => answer.text.clone(),
            None => story.body.clone(),
        };
        return Verdict::Refuse(StoryError::Refused {
            model_words: model_words(&said),
        });
    }
    let last = attempt >= attempts;
    let words = story.word_count();
    let Some(title) = story.title.clone() else {
        if last {
            return accept_length(story, budget, attempt, None);
        }
        return Verdict::Retry {
            feedback: prompt::feedback_no_title(),
            notice: "the story has no title".to_string(),
            // Never returned: the last attempt accepts a story without a title.
            failure: StoryError::BadResponse {
                url: String::new(),
                message: "the answer has no title".to_string(),
                source: None,
            },
        };
    };
    if let Some(similar) = find_duplicate(&title, recent) {
        return Verdict::Retry {
            feedback: prompt::feedback_duplicate(&title, similar),
            notice: format!("the title {title:?} is too close to the recent {similar:?}"),
            failure: StoryError::DuplicateTitle {
                title,
                similar_to: similar.to_string(),
                attempts: attempt,
            },
        };
    }
    let mut trimmed_from = None;
    if words > budget.max {
        let trimmed = trim_to_sentences(&story.body, budget.max)
            .filter(|t| count_words(t) >= budget.min)
            .map(str::to_string);
        if let Some(trimmed) = trimmed {
            story.body = trimmed;
            trimmed_from = Some(words);
        }
    }
    accept_length(story, budget, attempt, trimmed_from)
}

fn accept_length(
    story: Story,
    budget: &WordBudget,
    attempt: u32,
    trimmed_from: Option<usize>,
) -> Verdict {
    let words = story.word_count();
    if budget.contains(words) {
        return Verdict::Accept {
            story,
            trimmed_from,
        };
    }
    let (feedback, notice) = if words < budget.min {
        (
            prompt::feedback_too_short(words, budget),
            format!("the story has {words} words, fewer than {}", budget.min),
        )
    } else {
        (
            prompt::feedback_too_long(words, budget),
            format!("the story has {words} words, more than {}", budget.max),
        )
    };
    Verdict::Retry {
        feedback,
        notice,
        failure: StoryError::LengthUnmet {
            words,
            min: budget.min,
            max: budget.max,
            attempts: attempt,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget() -> WordBudget {
        WordBudget {
            target: 100,
            min: 80,
            max: 120,
        }
    }

    fn words(n: usize) -> String {
        (0..n)
            .map(|i| if i % 10 == 9 { "word." } else { "word" })
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn answer(text: &str) -> Answer {
        Answer {
            text: text.to_string(),
            ..Answer::default()
        }
    }

    #[test]
    fn refusals() {
        for text in [
            "I'm sorry, but I can't help with that.",
            "{\"title\":\"Sorry\",\"body\":\"I cannot write that story.\"}",
            "",
            "Here you go:",
        ] {
            assert!(
                matches!(
                    judge(&answer(text), &budget(), &[], 1, 3),
                    Verdict::Refuse(StoryError::Refused { .. })
                ),
                "{text:?}"
            );
        }
        let a = Answer {
            refusal: "No.".into(),
            ..Answer::default()
        };
        match judge(&a, &budget(), &[], 1, 3) {
            Verdict::Refuse(StoryError::Refused { model_words }) => assert_eq!(model_words, "No."),
            _ => panic!("expected a refusal"),
        }
    }

    #[test]
    fn story_that_opens_with_sorry_is_fine_at_length() {
        let text = format!(
            "Title\n\nI'm sorry, but I had to tell someone. {}",
            words(90)
        );
        assert!(matches!(
            judge(&answer(&text), &budget(), &[], 1, 3),
            Verdict::Accept { .. }
        ));
    }

    #[test]
    fn length_verdicts() {
        let short = format!("{{\"title\":\"T\",\"body\":\"{}\"}}", words(40));
        assert!(matches!(
            judge(&answer(&short), &budget(), &[], 1, 3),
            Verdict::Retry {
                failure: StoryError::LengthUnmet { words: 40, .. },
                ..
            }
        ));
        let long = format!("{{\"title\":\"T\",\"body\":\"{}\"}}", words(200));
        match judge(&answer(&long), &budget(), &[], 1, 3) {
            Verdict::Accept {
                story: s,
                trimmed_from: Some(200),
            } => {
                assert_eq!(s.word_count(), 120);
                assert!(s.body.ends_with('.'));
            }
            _ => panic!("expected a trimmed story"),
        }
    }

    #[test]
    fn missing_title_accepted_on_last_attempt() {
        let text = words(100);
        assert!(matches!(
            judge(&answer(&text), &budget(), &[], 1, 2),
            Verdict::Retry { .. }
        ));
        assert!(matches!(
            judge(&answer(&text), &budget(), &[], 2, 2),
            Verdict::Accept {
                story: Story { title: None, .. },
                ..
            }
        ));
    }

    #[test]
    fn body_repeating_title_is_dropped() {
        let a = answer(&format!(
            "{{\"title\":\"The Door\",\"body\":\"The door.\\n\\n{}\"}}",
            words(100)
        ));
        let s = parse_answer(&a);
        assert_eq!(s.title.as_deref(), Some("The Door"));
        assert!(s.body.starts_with("word"));
    }

    #[test]
    fn config_from_lookup() {
        let c = LlmConfig::from_lookup(|k| match k {
            "OPENAI_BASE_URL" => Some("http://localhost:11434/v1/".into()),
            "OPENAI_MODEL" => Some("llama3.2".into()),
            "OPENAI_API_KEY" => Some("  ".into()),
            _ => None,
        });
        assert_eq!(c.model, "llama3.2");
        assert_eq!(c.api_key, None);
        let w = StoryWriter::new(c).unwrap();
        assert_eq!(w.config().base_url, "http://localhost:11434/v1");
        let c = LlmConfig::from_lookup(|k| match k {
            "STORYREEL_MODEL" => Some("a".into()),
            "OPENAI_MODEL" => Some("b".into()),
            _ => None,
        });
        assert_eq!(c.model, "a");
        assert_eq!(c.base_url, DEFAULT_BASE_URL);
        assert!(
            !format!(
                "{:?}",
                LlmConfig {
                    api_key: Some("sk-secret".into()),
                    ..LlmConfig::default()
                }
            )
            .contains("sk-secret")
        );
    }

    #[test]
    fn bad_config_is_a_config_error() {
        for c in [
            LlmConfig {
                base_url: "localhost:8080".into(),
                ..LlmConfig::default()
            },
            LlmConfig {
                api_key: Some("sk-\nbad".into()),
                ..LlmConfig::default()
            },
            LlmConfig {
                model: " ".into(),
                ..LlmConfig::default()
            },
        ] {
            let e = StoryWriter::new(c).unwrap_err();
            assert_eq!(e.error_name(), "LlmConfig", "{e}");
        }
    }

    #[test]
    fn prompt_limits() {
        assert!(clean_prompt(" \n\t ").is_err());
        assert!(clean_prompt(&"x".repeat(MAX_PROMPT_CHARS + 1)).is_err());
        assert_eq!(clean_prompt("a\u{0}b  c\n").unwrap(), "a b c");
    }
}
