//! The HTTP plumbing the platform clients share: one `reqwest::Client` configuration for
//! uploads, bounded reading of response bodies, `Retry-After`, and transport failures as
//! [`PublishError`]s that never carry a URL or a header.

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::error::PublishError;
use crate::platform::Platform;
use crate::secret::Secret;

/// `storyreel/<version>`, sent with every request.
pub const USER_AGENT: &str = concat!("storyreel/", env!("CARGO_PKG_VERSION"));

/// How long to wait for a TCP (and TLS) connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connection may stay silent, in either direction, before the request fails as
/// [`ErrorKind::Transient`](crate::ErrorKind::Transient). There is no overall timeout: a
/// 64 MB chunk on a slow uplink legitimately takes minutes, a stalled one does not.
pub const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// The most of an error body kept (Google's and TikTok's error bodies are a few hundred
/// bytes; anything longer is not one of them).
pub const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// The most of a success body read (a video resource, a status answer).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// The most characters of a platform's message carried into an error.
const MESSAGE_LIMIT: usize = 300;

/// The client for the platform clients: connect timeout, read timeout, no overall timeout,
/// no redirects followed, the storyreel user agent, rustls. Build it once and share it (it pools connections).
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    client_with_read_timeout(READ_TIMEOUT)
}

/// As [`client`], with another read timeout (tests that hold a response, slow links).
pub fn client_with_read_timeout(read: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(read)
        // Every answer is read as the protocol defines it: YouTube's 308 means "resume
        // incomplete", not a redirect, and an upload body or token never follows a Location.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT)
        .build()
}

/// Now, in Unix seconds.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Reads at most `limit` bytes of a body; the rest is dropped (with the connection). A
/// response is untrusted: its length says nothing about what we allocate.
pub async fn read_limited(
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, reqwest::Error> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = limit - out.len();
        if chunk.len() >= room {
            out.extend_from_slice(&chunk[..room]);
            break;
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// A response taken apart: status, headers, and (at most [`ERROR_BODY_LIMIT`] or
/// [`BODY_LIMIT`] of) the body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    /// Reads a response, keeping up to [`BODY_LIMIT`] bytes of a 2xx body and
    /// [`ERROR_BODY_LIMIT`] of any other. A connection that fails while the body is read is
    /// transient.
    pub async fn read(
        resp: reqwest::Response,
        platform: Platform,
        what: &str,
    ) -> Result<Answer, PublishError> {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let limit = if (200..300).contains(&status) {
            BODY_LIMIT
        } else {
            ERROR_BODY_LIMIT
        };
        let body = read_limited(resp, limit)
            .await
            .map_err(|e| transport(platform, what, e))?;
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// A header as text.
    pub fn header(&self, name: impl reqwest::header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// When `Retry-After` (delay seconds or an HTTP date) allows a retry, in Unix seconds.
pub fn retry_after(headers: &HeaderMap, now: u64) -> Option<u64> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(now.saturating_add(secs));
    }
    crate::time::parse_http_date(v).map(|t| t.max(now))
}

/// A failure to talk to the platform at all (connect, TLS, timeout, a dropped connection),
/// as [`PublishError::Transient`]; a request that could not even be built (a malformed
/// URL) as [`PublishError::Rejected`] with status 0. The URL is stripped from the cause: an
/// upload session URI is a capability.
pub fn transport(platform: Platform, what: &str, e: reqwest::Error) -> PublishError {
    if e.is_builder() {
        return refused(
            platform,
            what,
            "invalid_request",
            "the request could not be built",
        );
    }
    let message = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() {
        "the connection failed while sending the body"
    } else if e.is_decode() {
        "the connection failed while reading the answer"
    } else {
        "the request failed"
    };
    PublishError::Transient {
        platform,
        what: what.to_string(),
        message: message.to_string(),
        source: Some(Box::new(e.without_url())),
    }
}

/// A request refused before it was sent (status 0): an argument outside what the platform
/// documents.
pub fn refused(platform: Platform, what: &str, reason: &str, message: &str) -> PublishError {
    PublishError::Rejected {
        platform,
        what: what.to_string(),
        status: 0,
        reason: reason.to_string(),
        message: message.to_string(),
    }
}

/// A platform's message made fit for an error: the access token (should a platform echo
/// it) replaced, control characters dropped, at most 300 characters.
pub fn clean_message(s: &str, access: Option<&Secret>) -> String {
    let mut s = s.to_string();
    if let Some(a) = access.filter(|a| a.expose().len() >= 8) {
        s = s.replace(a.expose(), "[redacted]");
    }
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MESSAGE_LIMIT)
        .collect();
    if s.chars().count() > MESSAGE_LIMIT {
        out.push('…');
    }
    out.trim().to_string()
}

/// A short description of a body that is not what was expected: its length and the start of
/// its text, never more.
pub fn describe_body(body: &[u8]) -> String {
    if body.is_empty() {
        return "an empty body".to_string();
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(120)]);
    format!(
        "{} bytes: {:?}",
        body.len(),
        clean_message(&text, None)
            .chars()
            .take(120)
            .collect::<String>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h, 1000), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("120"));
        assert_eq!(retry_after(&h, 1000), Some(1120));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert_eq!(retry_after(&h, 784_111_000), Some(784_111_777));
        // A date in the past means now.
        assert_eq!(retry_after(&h, 784_200_000), Some(784_200_000));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, 1000), None);
    }

    #[test]
    fn messages_are_short_and_never_echo_the_token() {
        let token = Secret::new("ya29.a0AfB_secret_token");
        let m = clean_message("bad token ya29.a0AfB_secret_token\nend", Some(&token));
        assert_eq!(m, "bad token [redacted] end");
        let long = "x".repeat(1000);
        assert_eq!(clean_message(&long, None).chars().count(), 301);
        assert_eq!(describe_body(b""), "an empty body");
        assert!(describe_body(&[b'a'; 500]).starts_with("500 bytes: \"aaa"));
    }

    #[test]
    fn the_user_agent_names_storyreel() {
        assert!(USER_AGENT.starts_with("storyreel/"));
        client().unwrap();
    }
}
