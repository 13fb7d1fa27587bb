//! The YouTube Data API v3 upload client: `videos.insert` over the resumable upload protocol
//! (start a session, ask it what it holds, send a chunk) and `thumbnails.set`, with Google's
//! error bodies sorted into [`PublishError`]s by what the caller does next.
//!
//! Stateless: the session URI and the bytes YouTube confirmed are returned, never kept. The
//! caller records them before the next call, so a publish survives a crash at any point.

use serde::{Deserialize, Serialize};
use unicode_segmentation::UnicodeSegmentation;

use crate::error::PublishError;
use crate::http::{self, Answer};
use crate::platform::{Endpoints, Platform};
use crate::secret::Secret;

const P: Platform = Platform::YouTube;

/// Chunks other than the last must be a multiple of this (256 KiB), as the resumable upload
/// protocol requires.
pub const CHUNK_GRANULE: u64 = 256 * 1024;

/// A chunk size that is a multiple of [`CHUNK_GRANULE`] and small enough that a lost chunk
/// costs little.
pub const DEFAULT_CHUNK: u64 = 8 * 1024 * 1024;

/// The most characters YouTube takes in a title.
pub const TITLE_MAX_CHARS: usize = 100;

/// The most bytes YouTube takes in a description.
pub const DESCRIPTION_MAX_BYTES: usize = 5000;

/// Who may watch a video. TikTok's levels are mapped from it
/// ([`tiktok_privacy`](crate::tiktok::tiktok_privacy)).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "lowercase")]
pub enum Privacy {
    #[default]
    Private,
    Unlisted,
    Public,
}

impl Privacy {
    /// `private`, `unlisted` or `public`: YouTube's `privacyStatus`, and how requests spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Privacy::Private => "private",
            Privacy::Unlisted => "unlisted",
            Privacy::Public => "public",
        }
    }
}

impl std::fmt::Display for Privacy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown privacy name.
#[derive(Debug, thiserror::Error)]
#[error("unknown privacy {0:?} (expected private, unlisted or public)")]
pub struct UnknownPrivacy(pub String);

impl std::str::FromStr for Privacy {
    type Err = UnknownPrivacy;
    fn from_str(s: &str) -> Result<Privacy, UnknownPrivacy> {
        match s.trim().to_ascii_lowercase().as_str() {
            "private" => Ok(Privacy::Private),
            "unlisted" => Ok(Privacy::Unlisted),
            "public" => Ok(Privacy::Public),
            _ => Err(UnknownPrivacy(s.to_string())),
        }
    }
}

/// What `videos.insert` sets on the video.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoMetadata {
    /// Pass it through [`youtube_title`] first.
    pub title: String,
    /// Pass it through [`youtube_description`] first.
    pub description: String,
    pub tags: Vec<String>,
    /// `24` is Entertainment.
    pub category_id: String,
    pub privacy: Privacy,
    /// RFC 3339; YouTube accepts it only with [`Privacy::Private`] and publishes then.
    pub publish_at: Option<String>,
    pub made_for_kids: bool,
    /// `containsSyntheticMedia`: realistic altered or synthetic content (the narration).
    pub synthetic_media: bool,
    /// Sent as the `notifySubscribers` query parameter, not in the resource.
    pub notify_subscribers: bool,
}

impl VideoMetadata {
    /// The `video` resource sent when the session starts (parts `snippet` and `status`).
    /// Privacy, made-for-kids and synthetic media are always sent, so no YouTube or channel
    /// default decides them.
    pub fn to_json(&self) -> serde_json::Value {
        let mut status = serde_json::json!({
            "privacyStatus": self.privacy.as_str(),
            "selfDeclaredMadeForKids": self.made_for_kids,
            "containsSyntheticMedia": self.synthetic_media,
        });
        if let Some(at) = &self.publish_at {
            status["publishAt"] = serde_json::Value::String(at.clone());
        }
        serde_json::json!({
            "snippet": {
                "title": self.title,
                "description": self.description,
                "tags": self.tags,
                "categoryId": self.category_id,
            },
            "status": status,
        })
    }
}

/// A title YouTube accepts: trimmed, without `<` and `>` (YouTube refuses them), whitespace
/// runs (newlines included) made one space, at most 100 characters — cut at a grapheme
/// boundary and ended with `…` when too long. Never empty: an empty result becomes the
/// (equally cleaned) `fallback`, or `Untitled`.
pub fn youtube_title(s: &str, fallback: &str) -> String {
    let clean = |s: &str| -> String {
        let s: String = s.chars().filter(|c| *c != '<' && *c != '>').collect();
        s.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    let mut t = clean(s);
    if t.is_empty() {
        t = clean(fallback);
    }
    if t.is_empty() {
        t = "Untitled".to_string();
    }
    if t.chars().count() <= TITLE_MAX_CHARS {
        return t;
    }
    let mut out = String::new();
    let mut chars = 0;
    for g in t.graphemes(true) {
        let n = g.chars().count();
        if chars + n > TITLE_MAX_CHARS - 1 {
            break;
        }
        out.push_str(g);
        chars += n;
    }
    let mut out = out.trim_end().to_string();
    out.push('…');
    out
}

/// A description YouTube accepts: without `<` and `>`, at most 5000 bytes of UTF-8, cut at a
/// character boundary.
pub fn youtube_description(s: &str) -> String {
    let d: String = s.chars().filter(|c| *c != '<' && *c != '>').collect();
    if d.len() <= DESCRIPTION_MAX_BYTES {
        return d;
    }
    let mut end = DESCRIPTION_MAX_BYTES;
    while !d.is_char_boundary(end) {
        end -= 1;
    }
    d[..end].to_string()
}

/// What an upload session holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionState {
    /// Bytes `[0, confirmed)` are stored; continue from `confirmed` (which may be less than
    /// what was sent).
    Incomplete { confirmed: u64 },
    /// All bytes arrived and the video exists.
    Complete { video_id: String },
    /// The session is gone (404/410): start a new one from byte 0.
    Expired,
}

/// The YouTube Data API v3 client.
#[derive(Debug, Clone)]
pub struct YouTube {
    http: reqwest::Client,
    root: String,
}

impl YouTube {
    /// A client of `endpoints.youtube` (build `http` with [`crate::http::client`]).
    pub fn new(http: reqwest::Client, endpoints: &Endpoints) -> YouTube {
        YouTube {
            http,
            root: endpoints.youtube.clone(),
        }
    }

    fn url(&self, path: &str, query: &[(&str, &str)]) -> Result<reqwest::Url, PublishError> {
        let mut url = reqwest::Url::parse(&format!("{}{path}", self.root)).map_err(|_| {
            http::refused(
                P,
                path,
                "invalid_url",
                "the YouTube endpoint is not a valid URL",
            )
        })?;
        url.query_pairs_mut().extend_pairs(query);
        Ok(url)
    }

    /// `videos.insert` with `uploadType=resumable`: sends the metadata and the video's length
    /// and type, and returns the session URI (the `Location` header) to which the bytes go.
    /// The session lasts about a week; record it before sending anything.
    pub async fn start_session(
        &self,
        access: &Secret,
        meta: &VideoMetadata,
        len: u64,
    ) -> Result<String, PublishError> {
        const WHAT: &str = "videos.insert";
        if len == 0 {
            return Err(http::refused(
                P,
                WHAT,
                "invalid_length",
                "video length 0 bytes (expected at least 1)",
            ));
        }
        let notify = if meta.notify_subscribers {
            "true"
        } else {
            "false"
        };
        let url = self.url(
            "upload/youtube/v3/videos",
            &[
                ("uploadType", "resumable"),
                ("part", "snippet,status"),
                ("notifySubscribers", notify),
            ],
        )?;
        let body = serde_json::to_vec(&meta.to_json()).unwrap_or_default();
        let resp = self
            .http
            .post(url)
            .bearer_auth(access.expose())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/json; charset=UTF-8",
            )
            .header("X-Upload-Content-Length", len.to_string())
            .header("X-Upload-Content-Type", "video/mp4")
            .body(body)
            .send()
            .await
            .map_err(|e| http::transport(P, WHAT, e))?;
        let request_url = resp.url().clone();
        let a = Answer::read(resp, P, WHAT).await?;
        if a.status != 200 && a.status != 201 {
            return Err(classify(WHAT, &a, access, http::now_unix()));
        }
        let location = a.header(reqwest::header::LOCATION).ok_or_else(|| {
            protocol(WHAT, format!("HTTP {} without a Location header", a.status))
        })?;
        // Google sends an absolute URI; a relative one is resolved as HTTP says.
        request_url
            .join(location)
            .map(String::from)
            .map_err(|_| protocol(WHAT, "a Location header that is not a URI".to_string()))
    }

    /// Asks the session what it holds: an empty `PUT` with `Content-Range: bytes */len`.
    pub async fn query(
        &self,
        access: &Secret,
        session: &str,
        len: u64,
    ) -> Result<SessionState, PublishError> {
        const WHAT: &str = "an upload status query";
        let resp = self
            .http
            .put(session)
            .bearer_auth(access.expose())
            .header(reqwest::header::CONTENT_RANGE, format!("bytes */{len}"))
            .body(Vec::new())
            .send()
            .await
            .map_err(|e| http::transport(P, WHAT, e))?;
        let a = Answer::read(resp, P, WHAT).await?;
        session_state(WHAT, &a, access, http::now_unix())
    }

    /// Sends bytes `[offset, offset + data.len())` of a `len`-byte video. Every chunk but the
    /// last must be a multiple of [`CHUNK_GRANULE`]. YouTube answers with what it now holds,
    /// which may be less than was sent: continue from `confirmed`, not from what was sent.
    /// A dropped connection is [`Transient`](crate::ErrorKind::Transient): [`YouTube::query`]
    /// then says where to continue.
    pub async fn put_chunk(
        &self,
        access: &Secret,
        session: &str,
        offset: u64,
        data: Vec<u8>,
        len: u64,
    ) -> Result<SessionState, PublishError> {
        const WHAT: &str = "an upload chunk";
        let n = data.len() as u64;
        let end = offset.checked_add(n).filter(|&e| n > 0 && e <= len);
        let Some(end) = end else {
            return Err(http::refused(
                P,
                WHAT,
                "invalid_range",
                &format!(
                    "chunk of {n} bytes at offset {offset} (expected 1 or more bytes within the video's {len})"
                ),
            ));
        };
        let resp = self
            .http
            .put(session)
            .bearer_auth(access.expose())
            .header(
                reqwest::header::CONTENT_RANGE,
                format!("bytes {offset}-{}/{len}", end - 1),
            )
            .header(reqwest::header::CONTENT_TYPE, "video/mp4")
            .body(data)
            .send()
            .await
            .map_err(|e| http::transport(P, WHAT, e))?;
        let a = Answer::read(resp, P, WHAT).await?;
        session_state(WHAT, &a, access, http::now_unix())
    }

    /// `thumbnails.set`: a JPEG (at most 2 MB) for a video. YouTube answers 403 `forbidden`
    /// when the channel may not set custom thumbnails (it is not verified): that is
    /// [`Rejected`](crate::ErrorKind::Rejected) with reason `forbidden`, for the caller to
    /// turn into a warning.
    pub async fn set_thumbnail(
        &self,
        access: &Secret,
        video_id: &str,
        jpeg: Vec<u8>,
    ) -> Result<(), PublishError> {
        const WHAT: &str = "thumbnails.set";
        let url = self.url(
            "upload/youtube/v3/thumbnails/set",
            &[("videoId", video_id), ("uploadType", "media")],
        )?;
        let resp = self
            .http
            .post(url)
            .bearer_auth(access.expose())
            .header(reqwest::header::CONTENT_TYPE, "image/jpeg")
            .body(jpeg)
            .send()
            .await
            .map_err(|e| http::transport(P, WHAT, e))?;
        let a = Answer::read(resp, P, WHAT).await?;
        if a.status == 200 {
            Ok(())
        } else {
            Err(classify(WHAT, &a, access, http::now_unix()))
        }
    }
}

fn protocol(what: &str, message: String) -> PublishError {
    PublishError::Protocol {
        platform: P,
        what: what.to_string(),
        message,
    }
}

/// The answer to a `PUT` on a session URI: 308 with the `Range` held, 200/201 with the
/// video resource, 404/410 for an expired session, or an error.
fn session_state(
    what: &str,
    a: &Answer,
    access: &Secret,
    now: u64,
) -> Result<SessionState, PublishError> {
    match a.status {
        308 => {
            let confirmed = match a.header(reqwest::header::RANGE) {
                None => 0,
                Some(r) => parse_range(r).ok_or_else(|| {
                    protocol(what, format!("308 with an unreadable Range header {r:?}"))
                })?,
            };
            Ok(SessionState::Incomplete { confirmed })
        }
        200 | 201 => {
            let id = a
                .json()
                .and_then(|v| v.get("id")?.as_str().map(str::to_string))
                .filter(|id| !id.is_empty());
            match id {
                Some(video_id) => Ok(SessionState::Complete { video_id }),
                None => Err(protocol(
                    what,
                    format!(
                        "HTTP {} without a video id ({})",
                        a.status,
                        http::describe_body(&a.body)
                    ),
                )),
            }
        }
        404 | 410 => Ok(SessionState::Expired),
        _ => Err(classify(what, a, access, now)),
    }
}

/// The byte count a `Range: bytes=0-N` header confirms (N + 1).
fn parse_range(r: &str) -> Option<u64> {
    let (first, last) = r.trim().strip_prefix("bytes=")?.split_once('-')?;
    if first.trim() != "0" {
        return None;
    }
    last.trim().parse::<u64>().ok()?.checked_add(1)
}

/// Google's error body: `{"error":{"code","message","errors":[{"domain","reason","message"}]}}`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct GoogleError {
    /// Every `errors[].reason`, in order.
    pub reasons: Vec<String>,
    /// `error.message`, or the first `errors[].message`.
    pub message: String,
}

impl GoogleError {
    /// Reads a Google error body; `None` if it is not one.
    pub fn parse(body: &[u8]) -> Option<GoogleError> {
        let v: serde_json::Value = serde_json::from_slice(body).ok()?;
        let e = v.get("error")?.as_object()?;
        let errors = e.get("errors").and_then(|x| x.as_array());
        let reasons = errors
            .into_iter()
            .flatten()
            .filter_map(|x| x.get("reason")?.as_str().map(str::to_string))
            .collect();
        let first_message = errors
            .and_then(|x| x.first()?.get("message")?.as_str())
            .unwrap_or_default();
        let message = e
            .get("message")
            .and_then(|m| m.as_str())
            .unwrap_or(first_message)
            .to_string();
        Some(GoogleError { reasons, message })
    }
}

/// Sorts a failed YouTube answer by what the caller does next:
///
/// - `quotaExceeded` (the project's daily quota): deferred to the next Pacific midnight;
/// - `uploadLimitExceeded` (the channel's daily uploads): deferred 24 hours;
/// - `rateLimitExceeded`, `userRateLimitExceeded`, HTTP 429: deferred to `Retry-After`, else
///   15 minutes;
/// - 500, 502, 503, 504: transient;
/// - any other 4xx (401 `authError` included, for the caller to refresh the token once):
///   rejected with Google's reason (`http_<status>` without a Google body);
/// - anything else: outside the protocol.
pub fn classify(what: &str, a: &Answer, access: &Secret, now: u64) -> PublishError {
    let g = GoogleError::parse(&a.body);
    let message = match &g {
        Some(g) => http::clean_message(&g.message, Some(access)),
        None => String::new(),
    };
    let has = |r: &str| g.as_ref().is_some_and(|g| g.reasons.iter().any(|x| x == r));
    let deferred = |reason: &str, until: u64| PublishError::Deferred {
        platform: P,
        reason: reason.to_string(),
        message: message.clone(),
        until,
    };
    if has("quotaExceeded") {
        return deferred("quotaExceeded", crate::time::next_pacific_midnight(now));
    }
    if has("uploadLimitExceeded") {
        return deferred("uploadLimitExceeded", now + crate::time::DAY);
    }
    let rate = ["rateLimitExceeded", "userRateLimitExceeded"]
        .into_iter()
        .find(|r| has(r));
    if rate.is_some() || a.status == 429 {
        let until = http::retry_after(&a.headers, now).unwrap_or(now + 15 * 60);
        let reason = rate.map(str::to_string).unwrap_or_else(|| {
            g.as_ref()
                .and_then(|g| g.reasons.first().cloned())
                .unwrap_or_else(|| "http_429".to_string())
        });
        return deferred(&reason, until);
    }
    match a.status {
        500 | 502 | 503 | 504 => PublishError::Transient {
            platform: P,
            what: what.to_string(),
            message: if message.is_empty() {
                format!("HTTP {}", a.status)
            } else {
                format!("HTTP {}: {message}", a.status)
            },
            source: None,
        },
        400..=499 => PublishError::Rejected {
            platform: P,
            what: what.to_string(),
            status: a.status,
            reason: g
                .as_ref()
                .and_then(|g| g.reasons.first().cloned())
                .unwrap_or_else(|| format!("http_{}", a.status)),
            message: if g.is_some() {
                message
            } else {
                format!("no Google error body ({})", http::describe_body(&a.body))
            },
        },
        s => protocol(what, format!("HTTP {s} ({})", http::describe_body(&a.body))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status,
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn google(code: u16, reason: &str, message: &str) -> String {
        serde_json::json!({"error": {"code": code, "message": message,
            "errors": [{"domain": "youtube.quota", "reason": reason, "message": message}]}})
        .to_string()
    }

    const NOW: u64 = 1_780_000_000; // 2026-05-28T20:26:40Z, PDT

    fn token() -> Secret {
        Secret::new("ya29.test-access-token")
    }

    #[test]
    fn quota_waits_for_pacific_midnight() {
        let a = answer(
            403,
            &google(
                403,
                "quotaExceeded",
                "The request cannot be completed because you have exceeded your quota.",
            ),
        );
        let e = classify("videos.insert", &a, &token(), NOW);
        match e {
            PublishError::Deferred { reason, until, .. } => {
                assert_eq!(reason, "quotaExceeded");
                assert_eq!(crate::time::format_rfc3339(until), "2026-05-29T07:00:00Z");
            }
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn upload_limit_waits_a_day_and_rate_limits_follow_retry_after() {
        let a = answer(400, &google(400, "uploadLimitExceeded", "limit"));
        assert!(matches!(classify("x", &a, &token(), NOW),
            PublishError::Deferred { until, reason, .. } if until == NOW + 86_400 && reason == "uploadLimitExceeded"));
        let a = answer(403, &google(403, "rateLimitExceeded", "slow down"));
        assert!(matches!(classify("x", &a, &token(), NOW),
            PublishError::Deferred { until, reason, .. } if until == NOW + 900 && reason == "rateLimitExceeded"));
        let mut a = answer(403, &google(403, "userRateLimitExceeded", "slow down"));
        a.headers
            .insert("retry-after", HeaderValue::from_static("30"));
        assert!(matches!(classify("x", &a, &token(), NOW),
            PublishError::Deferred { until, reason, .. } if until == NOW + 30 && reason == "userRateLimitExceeded"));
        let mut a = answer(429, "");
        a.headers.insert(
            "retry-after",
            HeaderValue::from_static("Thu, 28 May 2026 21:00:00 GMT"),
        );
        assert!(matches!(classify("x", &a, &token(), NOW),
            PublishError::Deferred { until, reason, .. } if until == 1_780_002_000 && reason == "http_429"));
    }

    #[test]
    fn server_errors_are_transient_and_refusals_keep_their_reason() {
        for s in [500, 502, 503, 504] {
            let e = classify(
                "x",
                &answer(s, &google(s, "backendError", "oops")),
                &token(),
                NOW,
            );
            assert_eq!(e.kind(), crate::ErrorKind::Transient, "{s}");
        }
        let e = classify(
            "x",
            &answer(400, &google(400, "invalidTitle", "bad title")),
            &token(),
            NOW,
        );
        assert!(
            matches!(&e, PublishError::Rejected { reason, status: 400, .. } if reason == "invalidTitle")
        );
        assert_eq!(
            e.to_string(),
            "YouTube refused x with HTTP 400 invalidTitle: bad title"
        );
        let e = classify(
            "x",
            &answer(401, &google(401, "authError", "Invalid Credentials")),
            &token(),
            NOW,
        );
        assert!(
            matches!(&e, PublishError::Rejected { reason, status: 401, .. } if reason == "authError")
        );
        let e = classify(
            "x",
            &answer(403, &google(403, "forbidden", "no")),
            &token(),
            NOW,
        );
        assert!(matches!(&e, PublishError::Rejected { reason, .. } if reason == "forbidden"));
        let e = classify("x", &answer(400, "<html>"), &token(), NOW);
        assert!(matches!(&e, PublishError::Rejected { reason, .. } if reason == "http_400"));
        for s in [302, 501, 200] {
            assert_eq!(
                classify("x", &answer(s, ""), &token(), NOW).kind(),
                crate::ErrorKind::Protocol
            );
        }
    }

    #[test]
    fn an_echoed_token_is_redacted() {
        let body = google(401, "authError", "token ya29.test-access-token is invalid");
        let e = classify("x", &answer(401, &body), &token(), NOW);
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("ya29.test-access-token"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn session_answers() {
        let mut a = answer(308, "");
        assert_eq!(
            session_state("x", &a, &token(), NOW).unwrap(),
            SessionState::Incomplete { confirmed: 0 }
        );
        a.headers
            .insert("range", HeaderValue::from_static("bytes=0-262143"));
        assert_eq!(
            session_state("x", &a, &token(), NOW).unwrap(),
            SessionState::Incomplete { confirmed: 262_144 }
        );
        a.headers
            .insert("range", HeaderValue::from_static("bytes=5-9"));
        assert_eq!(
            session_state("x", &a, &token(), NOW).unwrap_err().kind(),
            crate::ErrorKind::Protocol
        );
        let a = answer(200, r#"{"kind":"youtube#video","id":"dQw4w9WgXcQ"}"#);
        assert_eq!(
            session_state("x", &a, &token(), NOW).unwrap(),
            SessionState::Complete {
                video_id: "dQw4w9WgXcQ".into()
            }
        );
        assert_eq!(
            session_state("x", &answer(201, "{}"), &token(), NOW)
                .unwrap_err()
                .kind(),
            crate::ErrorKind::Protocol
        );
        assert_eq!(
            session_state("x", &answer(404, ""), &token(), NOW).unwrap(),
            SessionState::Expired
        );
        assert_eq!(
            session_state("x", &answer(410, ""), &token(), NOW).unwrap(),
            SessionState::Expired
        );
        assert_eq!(
            session_state("x", &answer(503, ""), &token(), NOW)
                .unwrap_err()
                .kind(),
            crate::ErrorKind::Transient
        );
    }

    #[test]
    fn titles() {
        assert_eq!(
            youtube_title("  A <b>bold</b>\n\ttale  ", "x"),
            "A bbold/b tale"
        );
        assert_eq!(youtube_title(" <> \n", "Fallback  title"), "Fallback title");
        assert_eq!(youtube_title("", ""), "Untitled");
        let long = "word ".repeat(40);
        let t = youtube_title(&long, "x");
        assert!(t.ends_with('…') && t.chars().count() <= 100, "{t}");
        assert!(!t.contains(" …"));
        let exactly = "é".repeat(100);
        assert_eq!(youtube_title(&exactly, "x"), exactly);
        // A family emoji is one grapheme of 7 characters: never split.
        let family = "👨‍👩‍👧‍👦";
        let t = youtube_title(&format!("{}{}", "a".repeat(95), family), "x");
        assert_eq!(t, format!("{}…", "a".repeat(95)));
        let t = youtube_title(&format!("{}{family}bcdef", "a".repeat(90)), "x");
        assert_eq!(t, format!("{}{family}bc…", "a".repeat(90)));
    }

    #[test]
    fn descriptions() {
        assert_eq!(youtube_description("a <tag> b"), "a tag b");
        let long = "ü".repeat(3000); // 6000 bytes
        let d = youtube_description(&long);
        assert_eq!(d.len(), 5000);
        assert_eq!(youtube_description(&format!("a{long}")).len(), 4999);
    }

    #[test]
    fn metadata_json_always_says_privacy_kids_and_synthetic_media() {
        let mut m = VideoMetadata {
            title: "T".into(),
            description: "D".into(),
            tags: vec!["story".into()],
            category_id: "24".into(),
            privacy: Privacy::default(),
            publish_at: None,
            made_for_kids: false,
            synthetic_media: true,
            notify_subscribers: false,
        };
        assert_eq!(
            m.to_json(),
            serde_json::json!({
                "snippet": {"title": "T", "description": "D", "tags": ["story"], "categoryId": "24"},
                "status": {"privacyStatus": "private", "selfDeclaredMadeForKids": false, "containsSyntheticMedia": true}
            })
        );
        m.publish_at = Some("2026-12-24T18:00:00Z".into());
        assert_eq!(m.to_json()["status"]["publishAt"], "2026-12-24T18:00:00Z");
    }

    #[test]
    fn privacy_names() {
        for p in [Privacy::Private, Privacy::Unlisted, Privacy::Public] {
            assert_eq!(p.to_string().parse::<Privacy>().unwrap(), p);
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
        assert_eq!(" Public ".parse::<Privacy>().unwrap(), Privacy::Public);
        assert!("friends".parse::<Privacy>().is_err());
    }
}
