//! The TikTok Content Posting API client: the creator's posting options, initialising an
//! upload to the creator's inbox or a direct post, sending the file in chunks (the media
//! transfer guide's rules, planned by [`ChunkPlan`]), and polling the post's status, with
//! TikTok's error bodies sorted into [`PublishError`]s by what the caller does next.
//!
//! Stateless: the publish id, upload URL and chunk plan are returned, never kept; the caller
//! records them before sending bytes.

use serde::{Deserialize, Serialize};

use crate::error::PublishError;
use crate::http::{self, Answer};
use crate::platform::{Endpoints, Platform};
use crate::secret::Secret;
use crate::youtube::Privacy;

const P: Platform = Platform::TikTok;

/// The smallest chunk but the last, and the size under which a video goes whole: the guide
/// says 5 MB; 5 MiB satisfies either reading of "MB".
pub const MIN_CHUNK: u64 = 5 * 1024 * 1024;
/// The largest chunk but the last (64 MB, read as decimal: the stricter reading).
pub const MAX_CHUNK: u64 = 64_000_000;
/// The largest final chunk, which absorbs the trailing bytes (128 MB, decimal).
pub const MAX_FINAL_CHUNK: u64 = 128_000_000;
/// At most this many chunks.
pub const MAX_CHUNKS: u64 = 1000;
/// The chunk size [`ChunkPlan::new`] uses while 1000 chunks of it suffice.
pub const DEFAULT_CHUNK: u64 = 10 * 1024 * 1024;

/// How a video is cut for `FILE_UPLOAD`, as sent in `source_info`: every chunk is
/// `chunk_size` bytes except the last, which also takes the remainder, and
/// `total_chunk_count` is `video_size / chunk_size` rounded down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkPlan {
    pub video_size: u64,
    pub chunk_size: u64,
    pub total_chunk_count: u64,
}

impl ChunkPlan {
    /// The plan for a video: whole when it is at most [`DEFAULT_CHUNK`], else chunks of
    /// [`DEFAULT_CHUNK`], or larger ones when more than 1000 would be needed. Refuses 0 bytes
    /// and more than 1000 chunks of [`MAX_CHUNK`] allow.
    pub fn new(video_size: u64) -> Result<ChunkPlan, PublishError> {
        let chunk = if video_size / DEFAULT_CHUNK > MAX_CHUNKS {
            video_size.div_ceil(MAX_CHUNKS)
        } else {
            DEFAULT_CHUNK
        };
        ChunkPlan::with_chunk_size(video_size, chunk)
    }

    /// A plan with a chosen chunk size, checked against the guide's rules. A video no larger
    /// than `chunk_size` goes whole (`chunk_size` becomes its size).
    pub fn with_chunk_size(video_size: u64, chunk_size: u64) -> Result<ChunkPlan, PublishError> {
        let max_video = MAX_CHUNKS * MAX_CHUNK;
        if video_size == 0 || video_size > max_video {
            return Err(bad_plan(format!(
                "video size {video_size} bytes (expected 1 to {max_video}: at most {MAX_CHUNKS} chunks of at most {MAX_CHUNK} bytes)"
            )));
        }
        if video_size <= chunk_size {
            if video_size > MAX_CHUNK {
                return Err(bad_plan(format!(
                    "a {video_size}-byte video in one chunk (expected at most {MAX_CHUNK} bytes per chunk)"
                )));
            }
            return Ok(ChunkPlan {
                video_size,
                chunk_size: video_size,
                total_chunk_count: 1,
            });
        }
        if !(MIN_CHUNK..=MAX_CHUNK).contains(&chunk_size) {
            return Err(bad_plan(format!(
                "chunk size {chunk_size} bytes (expected {MIN_CHUNK} to {MAX_CHUNK})"
            )));
        }
        let count = video_size / chunk_size;
        let last = video_size - (count - 1) * chunk_size;
        if count > MAX_CHUNKS || last > MAX_FINAL_CHUNK {
            return Err(bad_plan(format!(
                "{count} chunks of {chunk_size} bytes with a final chunk of {last} for a {video_size}-byte video (expected at most {MAX_CHUNKS} chunks and a final chunk of at most {MAX_FINAL_CHUNK} bytes)"
            )));
        }
        Ok(ChunkPlan {
            video_size,
            chunk_size,
            total_chunk_count: count,
        })
    }

    /// Bytes `[first, end)` of chunk `index` (from 0); the last chunk ends at the video's
    /// end. An index past the last gives an empty range at the end.
    pub fn range(&self, index: u64) -> (u64, u64) {
        if index >= self.total_chunk_count {
            return (self.video_size, self.video_size);
        }
        let first = index * self.chunk_size;
        let end = if index + 1 == self.total_chunk_count {
            self.video_size
        } else {
            first + self.chunk_size
        };
        (first, end)
    }

    fn source_info(&self) -> serde_json::Value {
        serde_json::json!({
            "source": "FILE_UPLOAD",
            "video_size": self.video_size,
            "chunk_size": self.chunk_size,
            "total_chunk_count": self.total_chunk_count,
        })
    }
}

fn bad_plan(message: String) -> PublishError {
    http::refused(P, "a chunk plan", "invalid_video_size", &message)
}

/// An initialised upload: record both before sending a byte. The upload URL is valid for
/// an hour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Init {
    pub publish_id: String,
    pub upload_url: String,
}

/// What the creator may post now (`creator_info/query`); the direct post's options must be
/// among these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatorInfo {
    pub username: String,
    /// `PUBLIC_TO_EVERYONE`, `MUTUAL_FOLLOW_FRIENDS`, `FOLLOWER_OF_CREATOR`, `SELF_ONLY`.
    pub privacy_level_options: Vec<String>,
    pub comment_disabled: bool,
    pub duet_disabled: bool,
    pub stitch_disabled: bool,
    pub max_video_post_duration_sec: u64,
}

/// A direct post's `post_info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostInfo {
    /// The caption (at most 2200 UTF-16 units).
    pub title: String,
    /// One of the creator's `privacy_level_options` (see [`tiktok_privacy`]).
    pub privacy_level: String,
    pub disable_comment: bool,
    pub disable_duet: bool,
    pub disable_stitch: bool,
    /// Labels the video as AI-generated content.
    pub is_aigc: bool,
}

/// Where a post stands (`status/fetch`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PostStatus {
    /// `PROCESSING_UPLOAD`: bytes are arriving or being processed.
    Uploading { uploaded_bytes: Option<u64> },
    /// `PROCESSING_DOWNLOAD`: TikTok is fetching the video (`PULL_FROM_URL`).
    Processing,
    /// `PUBLISH_COMPLETE` (the public post ids, which may come only after moderation) or
    /// `SEND_TO_USER_INBOX` (an inbox upload reached the creator; no post id: the creator
    /// finishes the post in the app).
    Complete { post_ids: Vec<String> },
    /// `FAILED`, with TikTok's `fail_reason`.
    Failed { reason: String },
}

/// The creator's privacy level for ours: private → `SELF_ONLY`; unlisted →
/// `MUTUAL_FOLLOW_FRIENDS`, else `FOLLOWER_OF_CREATOR`, else `SELF_ONLY` (never wider than
/// asked); public → `PUBLIC_TO_EVERYONE`. Rejected, naming the allowed levels, when the
/// creator allows none of them.
pub fn tiktok_privacy(p: Privacy, allowed: &[String]) -> Result<String, PublishError> {
    let wanted: &[&str] = match p {
        Privacy::Private => &["SELF_ONLY"],
        Privacy::Unlisted => &["MUTUAL_FOLLOW_FRIENDS", "FOLLOWER_OF_CREATOR", "SELF_ONLY"],
        Privacy::Public => &["PUBLIC_TO_EVERYONE"],
    };
    wanted
        .iter()
        .find(|w| allowed.iter().any(|a| a == *w))
        .map(|w| w.to_string())
        .ok_or_else(|| {
            http::refused(
                P,
                "the privacy level",
                "privacy_level_option_mismatch",
                &format!(
                    "privacy {p} needs {} (the creator allows {})",
                    wanted.join(" or "),
                    if allowed.is_empty() {
                        "none".to_string()
                    } else {
                        allowed.join(", ")
                    }
                ),
            )
        })
}

/// The TikTok Content Posting API client.
#[derive(Debug, Clone)]
pub struct TikTok {
    http: reqwest::Client,
    root: String,
}

impl TikTok {
    /// A client of `endpoints.tiktok` (build `http` with [`crate::http::client`]).
    pub fn new(http: reqwest::Client, endpoints: &Endpoints) -> TikTok {
        TikTok {
            http,
            root: endpoints.tiktok.clone(),
        }
    }

    /// One Open API call: `POST {root}{path}` with a JSON body (or none), answering `data`
    /// when `error.code` is `ok`.
    async fn call(
        &self,
        what: &str,
        path: &str,
        access: &Secret,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, PublishError> {
        let body = body
            .map(|b| serde_json::to_vec(&b).unwrap_or_default())
            .unwrap_or_default();
        let resp = self
            .http
            .post(format!("{}{path}", self.root))
            .bearer_auth(access.expose())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/json; charset=UTF-8",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| http::transport(P, what, e))?;
        let a = Answer::read(resp, P, what).await?;
        let v = a.json();
        let code = v
            .as_ref()
            .and_then(|v| v.get("error")?.get("code")?.as_str());
        if a.status == 200 && code == Some("ok") {
            if let Some(data) = v.as_ref().and_then(|v| v.get("data")) {
                return Ok(data.clone());
            }
            return Err(protocol(what, "code ok without data".to_string()));
        }
        Err(classify(what, &a, Some(access), http::now_unix()))
    }

    /// `creator_info/query`: the creator's name, allowed privacy levels, disabled
    /// interactions and longest post. Also where TikTok says the creator cannot post now
    /// (`spam_risk_too_many_posts`, ...).
    pub async fn creator_info(&self, access: &Secret) -> Result<CreatorInfo, PublishError> {
        const WHAT: &str = "creator_info/query";
        let d = self
            .call(WHAT, "v2/post/publish/creator_info/query/", access, None)
            .await?;
        let levels = d
            .get("privacy_level_options")
            .and_then(|x| x.as_array())
            .ok_or_else(|| protocol(WHAT, "no privacy_level_options".to_string()))?;
        let flag = |k: &str| d.get(k).and_then(|x| x.as_bool()).unwrap_or(false);
        Ok(CreatorInfo {
            username: d
                .get("creator_username")
                .and_then(|x| x.as_str())
                .unwrap_or_default()
                .to_string(),
            privacy_level_options: levels
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            comment_disabled: flag("comment_disabled"),
            duet_disabled: flag("duet_disabled"),
            stitch_disabled: flag("stitch_disabled"),
            max_video_post_duration_sec: d
                .get("max_video_post_duration_sec")
                .and_then(|x| x.as_u64())
                .unwrap_or(0),
        })
    }

    /// Initialises an upload to the creator's inbox (`inbox/video/init`, scope
    /// `video.upload`): the creator finishes the post in the app.
    pub async fn init_inbox(
        &self,
        access: &Secret,
        plan: &ChunkPlan,
    ) -> Result<Init, PublishError> {
        const WHAT: &str = "inbox/video/init";
        let body = serde_json::json!({ "source_info": plan.source_info() });
        let d = self
            .call(
                WHAT,
                "v2/post/publish/inbox/video/init/",
                access,
                Some(body),
            )
            .await?;
        init_from(WHAT, &d)
    }

    /// Initialises a direct post (`video/init`, scope `video.publish`) with the post's
    /// caption, privacy and interactions.
    pub async fn init_direct(
        &self,
        access: &Secret,
        post: &PostInfo,
        plan: &ChunkPlan,
    ) -> Result<Init, PublishError> {
        const WHAT: &str = "video/init";
        let body = serde_json::json!({
            "post_info": post,
            "source_info": plan.source_info(),
        });
        let d = self
            .call(WHAT, "v2/post/publish/video/init/", access, Some(body))
            .await?;
        init_from(WHAT, &d)
    }

    /// Sends bytes `[first, first + data.len())` of a `total`-byte video to the upload URL
    /// (no token: the URL is the capability). Chunks go in order, as the plan cuts them.
    /// TikTok answers 206 for a chunk and 201 when the file is complete; 403 or 404 mean the
    /// upload URL expired ([`SessionExpired`](crate::ErrorKind::SessionExpired): initialise
    /// again).
    pub async fn put_chunk(
        &self,
        upload_url: &str,
        first: u64,
        data: Vec<u8>,
        total: u64,
    ) -> Result<(), PublishError> {
        const WHAT: &str = "a chunk upload";
        let n = data.len() as u64;
        let Some(end) = first.checked_add(n).filter(|&e| n > 0 && e <= total) else {
            return Err(http::refused(
                P,
                WHAT,
                "invalid_range",
                &format!(
                    "chunk of {n} bytes at offset {first} (expected 1 or more bytes within the video's {total})"
                ),
            ));
        };
        let resp = self
            .http
            .put(upload_url)
            .header(reqwest::header::CONTENT_TYPE, "video/mp4")
            .header(
                reqwest::header::CONTENT_RANGE,
                format!("bytes {first}-{}/{total}", end - 1),
            )
            .body(data)
            .send()
            .await
            .map_err(|e| http::transport(P, WHAT, e))?;
        let a = Answer::read(resp, P, WHAT).await?;
        match a.status {
            201 | 206 => Ok(()),
            403 | 404 => Err(PublishError::SessionExpired {
                platform: P,
                message: format!("HTTP {} on the upload URL", a.status),
            }),
            _ => Err(classify(WHAT, &a, None, http::now_unix())),
        }
    }

    /// `status/fetch`: where the post stands.
    pub async fn status(
        &self,
        access: &Secret,
        publish_id: &str,
    ) -> Result<PostStatus, PublishError> {
        const WHAT: &str = "status/fetch";
        let body = serde_json::json!({ "publish_id": publish_id });
        let d = self
            .call(WHAT, "v2/post/publish/status/fetch/", access, Some(body))
            .await?;
        post_status(WHAT, &d)
    }
}

fn protocol(what: &str, message: String) -> PublishError {
    PublishError::Protocol {
        platform: P,
        what: what.to_string(),
        message,
    }
}

fn init_from(what: &str, d: &serde_json::Value) -> Result<Init, PublishError> {
    let field = |k: &str| {
        d.get(k)
            .and_then(|x| x.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| protocol(what, format!("no {k} in data")))
    };
    Ok(Init {
        publish_id: field("publish_id")?,
        upload_url: field("upload_url")?,
    })
}

fn post_status(what: &str, d: &serde_json::Value) -> Result<PostStatus, PublishError> {
    let status = d
        .get("status")
        .and_then(|x| x.as_str())
        .ok_or_else(|| protocol(what, "no status in data".to_string()))?;
    Ok(match status {
        "PROCESSING_UPLOAD" => PostStatus::Uploading {
            uploaded_bytes: d.get("uploaded_bytes").and_then(|x| x.as_u64()),
        },
        "PROCESSING_DOWNLOAD" => PostStatus::Processing,
        "SEND_TO_USER_INBOX" | "PUBLISH_COMPLETE" => PostStatus::Complete {
            // TikTok spells it `publicaly_available_post_id`: a list of int64.
            post_ids: d
                .get("publicaly_available_post_id")
                .and_then(|x| x.as_array())
                .into_iter()
                .flatten()
                .filter_map(|x| match x {
                    serde_json::Value::Number(n) => Some(n.to_string()),
                    serde_json::Value::String(s) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
        },
        "FAILED" => PostStatus::Failed {
            reason: d
                .get("fail_reason")
                .and_then(|x| x.as_str())
                .map(|s| http::clean_message(s, None))
                .unwrap_or_default(),
        },
        other => {
            return Err(protocol(
                what,
                format!("unknown status {:?}", http::clean_message(other, None)),
            ));
        }
    })
}

/// TikTok's error object: `{"error":{"code","message","log_id"}}`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TikTokError {
    pub code: String,
    pub message: String,
    pub log_id: String,
}

impl TikTokError {
    /// Reads TikTok's error object; `None` if the body has none.
    pub fn parse(body: &[u8]) -> Option<TikTokError> {
        let v: serde_json::Value = serde_json::from_slice(body).ok()?;
        let e = v.get("error")?;
        let s = |k: &str| {
            e.get(k)
                .and_then(|x| x.as_str())
                .unwrap_or_default()
                .to_string()
        };
        Some(TikTokError {
            code: s("code"),
            message: s("message"),
            log_id: s("log_id"),
        })
    }
}

/// Sorts a failed TikTok answer by what the caller does next:
///
/// - `spam_risk_too_many_posts` (the creator's daily post cap) and `reached_active_user_cap`
///   (the app's daily cap of posting users): deferred 24 hours;
/// - `rate_limit_exceeded` or HTTP 429: deferred to `Retry-After`, else 60 seconds;
/// - 5xx: transient;
/// - `access_token_invalid` or a bare 401: rejected with reason `access_token_invalid` (the
///   caller refreshes the token once);
/// - any other code (`spam_risk_user_banned_from_posting`, which waiting does not cure,
///   `privacy_level_option_mismatch`, `scope_not_authorized`, ...) on a 4xx or a 200:
///   rejected with TikTok's code and message;
/// - anything else: outside the protocol.
pub fn classify(what: &str, a: &Answer, access: Option<&Secret>, now: u64) -> PublishError {
    let e = TikTokError::parse(&a.body).filter(|e| !e.code.is_empty() && e.code != "ok");
    let message = match &e {
        Some(e) if e.log_id.is_empty() => http::clean_message(&e.message, access),
        Some(e) => format!(
            "{} (log_id {})",
            http::clean_message(&e.message, access),
            http::clean_message(&e.log_id, None)
        ),
        None => format!("HTTP {} ({})", a.status, http::describe_body(&a.body)),
    };
    let code = e.as_ref().map(|e| e.code.as_str()).unwrap_or_default();
    let deferred = |reason: &str, until: u64| PublishError::Deferred {
        platform: P,
        reason: reason.to_string(),
        message: message.clone(),
        until,
    };
    match code {
        "spam_risk_too_many_posts" | "reached_active_user_cap" => {
            return deferred(code, now + crate::time::DAY);
        }
        "rate_limit_exceeded" => {
            return deferred(code, http::retry_after(&a.headers, now).unwrap_or(now + 60));
        }
        _ => {}
    }
    if a.status == 429 {
        let reason = if code.is_empty() {
            "rate_limit_exceeded"
        } else {
            code
        };
        return deferred(
            reason,
            http::retry_after(&a.headers, now).unwrap_or(now + 60),
        );
    }
    if (500..=599).contains(&a.status) {
        return PublishError::Transient {
            platform: P,
            what: what.to_string(),
            message,
            source: None,
        };
    }
    let rejected = |reason: &str| PublishError::Rejected {
        platform: P,
        what: what.to_string(),
        status: a.status,
        reason: reason.to_string(),
        message: message.clone(),
    };
    if a.status == 401 && code.is_empty() {
        return rejected("access_token_invalid");
    }
    match (a.status, code) {
        (400..=499, "") => rejected(&format!("http_{}", a.status)),
        (200 | 400..=499, code) if !code.is_empty() => rejected(code),
        _ => protocol(what, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn answer(status: u16, code: &str, message: &str) -> Answer {
        Answer {
            status,
            headers: HeaderMap::new(),
            body: serde_json::json!({"data": {}, "error": {"code": code, "message": message, "log_id": "202612071234"}})
                .to_string()
                .into_bytes(),
        }
    }

    const NOW: u64 = 1_780_000_000;

    #[test]
    fn chunk_plans_follow_the_media_transfer_guide() {
        let p = ChunkPlan::new(3_000_000).unwrap();
        assert_eq!((p.chunk_size, p.total_chunk_count), (3_000_000, 1));
        assert_eq!(p.range(0), (0, 3_000_000));
        let p = ChunkPlan::new(DEFAULT_CHUNK).unwrap();
        assert_eq!((p.chunk_size, p.total_chunk_count), (DEFAULT_CHUNK, 1));
        // 15 MiB: floor(15/10) = 1 chunk, which takes everything.
        let p = ChunkPlan::new(15 * 1024 * 1024).unwrap();
        assert_eq!((p.chunk_size, p.total_chunk_count), (DEFAULT_CHUNK, 1));
        assert_eq!(p.range(0), (0, 15 * 1024 * 1024));
        // 35 MB: 3 chunks, the last with the remainder.
        let p = ChunkPlan::new(35_000_000).unwrap();
        assert_eq!(p.total_chunk_count, 3);
        assert_eq!(p.range(0), (0, DEFAULT_CHUNK));
        assert_eq!(p.range(1), (DEFAULT_CHUNK, 2 * DEFAULT_CHUNK));
        assert_eq!(p.range(2), (2 * DEFAULT_CHUNK, 35_000_000));
        assert_eq!(p.range(3), (35_000_000, 35_000_000));
        // Large: chunks grow so that at most 1000 are needed.
        let p = ChunkPlan::new(20_000_000_000).unwrap();
        assert_eq!((p.chunk_size, p.total_chunk_count), (20_000_000, 1000));
        let p = ChunkPlan::new(MAX_CHUNKS * MAX_CHUNK).unwrap();
        assert_eq!((p.chunk_size, p.total_chunk_count), (MAX_CHUNK, 1000));
        assert_eq!(p.range(999).1, MAX_CHUNKS * MAX_CHUNK);
    }

    #[test]
    fn every_plan_covers_the_video_within_the_limits() {
        for size in [
            1,
            MIN_CHUNK - 1,
            MIN_CHUNK,
            DEFAULT_CHUNK + 1,
            2 * DEFAULT_CHUNK - 1,
            2 * DEFAULT_CHUNK,
            64_000_001,
            1000 * DEFAULT_CHUNK + 12_345,
            1001 * DEFAULT_CHUNK,
            4_000_000_000,
            MAX_CHUNKS * MAX_CHUNK - 1,
        ] {
            let p = ChunkPlan::new(size).unwrap();
            assert_eq!(p.total_chunk_count, size / p.chunk_size, "{size}");
            assert!((1..=MAX_CHUNKS).contains(&p.total_chunk_count), "{size}");
            let mut next = 0;
            for i in 0..p.total_chunk_count {
                let (first, end) = p.range(i);
                assert_eq!(first, next);
                let n = end - first;
                if i + 1 < p.total_chunk_count {
                    assert!((MIN_CHUNK..=MAX_CHUNK).contains(&n), "{size} {i} {n}");
                } else {
                    assert!(n <= MAX_FINAL_CHUNK, "{size}");
                    assert!(n >= MIN_CHUNK || p.total_chunk_count == 1, "{size}");
                }
                next = end;
            }
            assert_eq!(next, size);
        }
    }

    #[test]
    fn chunk_plans_refuse_what_the_guide_forbids() {
        let e = ChunkPlan::new(0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "TikTok refused a chunk plan with HTTP 0 invalid_video_size: video size 0 bytes (expected 1 to 64000000000: at most 1000 chunks of at most 64000000 bytes)"
        );
        assert!(ChunkPlan::new(MAX_CHUNKS * MAX_CHUNK + 1).is_err());
        // Chosen sizes are checked too.
        assert!(ChunkPlan::with_chunk_size(20_000_000, 1_000_000).is_err());
        assert!(ChunkPlan::with_chunk_size(200_000_000, 100_000_000).is_err());
        assert!(ChunkPlan::with_chunk_size(100_000_000, 100_000_000).is_err());
        assert!(ChunkPlan::with_chunk_size(20_000_000_000, 10_000_000).is_err());
        let p = ChunkPlan::with_chunk_size(11_000_000, MIN_CHUNK).unwrap();
        assert_eq!(p.total_chunk_count, 2);
        assert_eq!(p.range(1), (MIN_CHUNK, 11_000_000));
    }

    #[test]
    fn privacy_maps_to_the_creators_levels() {
        let all: Vec<String> = [
            "PUBLIC_TO_EVERYONE",
            "MUTUAL_FOLLOW_FRIENDS",
            "FOLLOWER_OF_CREATOR",
            "SELF_ONLY",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(tiktok_privacy(Privacy::Private, &all).unwrap(), "SELF_ONLY");
        assert_eq!(
            tiktok_privacy(Privacy::Unlisted, &all).unwrap(),
            "MUTUAL_FOLLOW_FRIENDS"
        );
        assert_eq!(
            tiktok_privacy(Privacy::Public, &all).unwrap(),
            "PUBLIC_TO_EVERYONE"
        );
        let some = vec!["FOLLOWER_OF_CREATOR".to_string(), "SELF_ONLY".to_string()];
        assert_eq!(
            tiktok_privacy(Privacy::Unlisted, &some).unwrap(),
            "FOLLOWER_OF_CREATOR"
        );
        let private_only = vec!["SELF_ONLY".to_string()];
        assert_eq!(
            tiktok_privacy(Privacy::Unlisted, &private_only).unwrap(),
            "SELF_ONLY"
        );
        let e = tiktok_privacy(Privacy::Public, &private_only).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Rejected);
        assert!(
            e.to_string().ends_with(
                "privacy public needs PUBLIC_TO_EVERYONE (the creator allows SELF_ONLY)"
            ),
            "{e}"
        );
        assert!(tiktok_privacy(Privacy::Private, &[]).is_err());
    }

    #[test]
    fn errors_sorted_by_what_to_do_next() {
        let e = classify(
            "inbox/video/init",
            &answer(403, "spam_risk_too_many_posts", "too many"),
            None,
            NOW,
        );
        assert!(matches!(&e, PublishError::Deferred { reason, until, .. }
            if reason == "spam_risk_too_many_posts" && *until == NOW + 86_400));
        assert!(e.to_string().contains("log_id 202612071234"), "{e}");
        let e = classify(
            "x",
            &answer(403, "reached_active_user_cap", "cap"),
            None,
            NOW,
        );
        assert!(matches!(&e, PublishError::Deferred { until, .. } if *until == NOW + 86_400));
        let e = classify(
            "x",
            &answer(403, "spam_risk_user_banned_from_posting", "banned"),
            None,
            NOW,
        );
        assert!(
            matches!(&e, PublishError::Rejected { reason, .. } if reason == "spam_risk_user_banned_from_posting")
        );
        let e = classify("x", &answer(429, "rate_limit_exceeded", "slow"), None, NOW);
        assert!(matches!(&e, PublishError::Deferred { until, .. } if *until == NOW + 60));
        let mut a = answer(429, "", "");
        a.body.clear();
        a.headers
            .insert("retry-after", HeaderValue::from_static("5"));
        let e = classify("x", &a, None, NOW);
        assert!(
            matches!(&e, PublishError::Deferred { until, reason, .. } if *until == NOW + 5 && reason == "rate_limit_exceeded")
        );
        let e = classify(
            "x",
            &answer(401, "access_token_invalid", "expired"),
            None,
            NOW,
        );
        assert!(
            matches!(&e, PublishError::Rejected { reason, status: 401, .. } if reason == "access_token_invalid")
        );
        let mut a = answer(401, "", "");
        a.body = b"Unauthorized".to_vec();
        let e = classify("x", &a, None, NOW);
        assert!(
            matches!(&e, PublishError::Rejected { reason, .. } if reason == "access_token_invalid")
        );
        let e = classify("x", &answer(500, "internal_error", "oops"), None, NOW);
        assert_eq!(e.kind(), crate::ErrorKind::Transient);
        let e = classify(
            "x",
            &answer(400, "privacy_level_option_mismatch", "no"),
            None,
            NOW,
        );
        assert!(
            matches!(&e, PublishError::Rejected { reason, status: 400, .. } if reason == "privacy_level_option_mismatch")
        );
        let e = classify("x", &answer(200, "invalid_params", "bad"), None, NOW);
        assert!(matches!(&e, PublishError::Rejected { reason, .. } if reason == "invalid_params"));
        let mut a = answer(200, "", "");
        a.body = b"{}".to_vec();
        assert_eq!(
            classify("x", &a, None, NOW).kind(),
            crate::ErrorKind::Protocol
        );
        assert_eq!(
            classify("x", &answer(302, "", ""), None, NOW).kind(),
            crate::ErrorKind::Protocol
        );
        let token = Secret::new("act.secret-tiktok-token");
        let e = classify(
            "x",
            &answer(
                401,
                "access_token_invalid",
                "act.secret-tiktok-token expired",
            ),
            Some(&token),
            NOW,
        );
        assert!(!format!("{e} {e:?}").contains("act.secret-tiktok-token"));
    }

    #[test]
    fn post_statuses() {
        let s = |v: serde_json::Value| post_status("x", &v);
        assert_eq!(
            s(serde_json::json!({"status": "PROCESSING_UPLOAD", "uploaded_bytes": 10})).unwrap(),
            PostStatus::Uploading {
                uploaded_bytes: Some(10)
            }
        );
        assert_eq!(
            s(serde_json::json!({"status": "PROCESSING_DOWNLOAD"})).unwrap(),
            PostStatus::Processing
        );
        assert_eq!(
            s(serde_json::json!({"status": "PUBLISH_COMPLETE", "publicaly_available_post_id": [7_300_000_000_000_000_001_u64]})).unwrap(),
            PostStatus::Complete { post_ids: vec!["7300000000000000001".into()] }
        );
        assert_eq!(
            s(serde_json::json!({"status": "SEND_TO_USER_INBOX"})).unwrap(),
            PostStatus::Complete { post_ids: vec![] }
        );
        assert_eq!(
            s(serde_json::json!({"status": "FAILED", "fail_reason": "file_format_check_failed"}))
                .unwrap(),
            PostStatus::Failed {
                reason: "file_format_check_failed".into()
            }
        );
        assert_eq!(
            s(serde_json::json!({"status": "DANCING"}))
                .unwrap_err()
                .kind(),
            crate::ErrorKind::Protocol
        );
        assert_eq!(
            s(serde_json::json!({})).unwrap_err().kind(),
            crate::ErrorKind::Protocol
        );
    }
}
