//! The HTTP transport under async-openai: one attempt per call, failures kept whole.
//!
//! async-openai's default transport retries 429/5xx itself and sleeps for whatever
//! `Retry-After` says, uncapped, and it drops the status and headers of error bodies that
//! are not OpenAI JSON. This service replaces it (`Client::with_http_service`): it makes
//! exactly one request and turns any non-2xx response into an [`HttpFailure`] carrying the
//! status, `Retry-After` and the error message, so the writer decides about retries.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;

/// Error bodies are read up to this size; the rest is not needed for a message.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Messages quoted from error bodies are cut to this many characters.
const MAX_MESSAGE_CHARS: usize = 500;

/// A non-2xx answer from the server.
#[derive(Debug, Clone, thiserror::Error)]
#[error("http status {status}: {message}")]
pub struct HttpFailure {
    /// HTTP status code.
    pub status: u16,
    /// `Retry-After` in seconds, if the server sent one.
    pub retry_after: Option<Duration>,
    /// `error.message` of an OpenAI-style body, or the body text (truncated).
    pub message: String,
    /// `error.type` or `error.code` of an OpenAI-style body (e.g. `insufficient_quota`).
    pub error_type: Option<String>,
}

impl HttpFailure {
    fn from_body(status: u16, retry_after: Option<Duration>, body: &[u8]) -> Self {
        let text = String::from_utf8_lossy(body);
        let json: Option<serde_json::Value> = serde_json::from_str(&text).ok();
        let error = json.as_ref().and_then(|v| v.get("error"));
        let message = error
            .and_then(|e| e.get("message").and_then(|m| m.as_str()))
            .or_else(|| error.and_then(|e| e.as_str()))
            .map(str::to_string)
            .unwrap_or_else(|| text.trim().to_string());
        let error_type = error.and_then(|e| {
            ["type", "code"]
                .iter()
                .find_map(|k| e.get(*k).and_then(|v| v.as_str()))
                .map(str::to_string)
        });
        let mut message: String = message.chars().take(MAX_MESSAGE_CHARS).collect();
        if message.is_empty() {
            message = "(no message)".to_string();
        }
        HttpFailure {
            status,
            retry_after,
            message,
            error_type,
        }
    }
}

/// One-attempt tower service over `reqwest`.
#[derive(Clone, Debug)]
pub(crate) struct Transport {
    client: reqwest::Client,
}

impl Transport {
    pub(crate) fn new(client: reqwest::Client) -> Self {
        Transport { client }
    }
}

type TransportFuture =
    Pin<Box<dyn Future<Output = Result<reqwest::Response, OpenAIError>> + Send + 'static>>;

impl tower::Service<HttpRequestFactory> for Transport {
    type Response = reqwest::Response;
    type Error = OpenAIError;
    type Future = TransportFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, factory: HttpRequestFactory) -> Self::Future {
        let client = self.client.clone();
        Box::pin(async move {
            let request = factory.build().await?;
            let mut response = client.execute(request).await?;
            if response.status().is_success() {
                return Ok(response);
            }
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            let mut body = Vec::new();
            while body.len() < MAX_ERROR_BODY {
                match response.chunk().await {
                    Ok(Some(bytes)) => body.extend_from_slice(&bytes),
                    // A broken error body still has a status worth reporting.
                    Ok(None) | Err(_) => break,
                }
            }
            body.truncate(MAX_ERROR_BODY);
            Err(OpenAIError::Boxed(Box::new(HttpFailure::from_body(
                status,
                retry_after,
                &body,
            ))))
        })
    }
}

/// `Retry-After` as delay-seconds (the form OpenAI-compatible servers send); an HTTP date
/// is ignored and the caller's own backoff applies.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    value
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e9)
        .map(Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("1"), Some(Duration::from_secs(1)));
        assert_eq!(parse_retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-3"), None);
        assert_eq!(parse_retry_after("NaN"), None);
    }

    #[test]
    fn failure_messages() {
        let f = HttpFailure::from_body(
            429,
            None,
            br#"{"error":{"message":"slow down","type":"rate_limit_error"}}"#,
        );
        assert_eq!(f.message, "slow down");
        assert_eq!(f.error_type.as_deref(), Some("rate_limit_error"));
        let f = HttpFailure::from_body(502, None, b"<html>bad gateway</html>");
        assert_eq!(f.message, "<html>bad gateway</html>");
        let f = HttpFailure::from_body(500, None, b"");
        assert_eq!(f.to_string(), "http status 500: (no message)");
    }
}
