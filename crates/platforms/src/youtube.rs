//! YouTube Data API v3: `videos.insert` over the resumable upload protocol, `thumbnails.set`, `videos.list`.
//!
//! As documented (developers.google.com/youtube/v3/guides/using_resumable_upload_protocol):
//! the POST opens a session and answers its URI in `Location`; `PUT`s carry bytes with
//! `Content-Range: bytes a-b/total`; an incomplete upload answers `308` with
//! `Range: bytes=0-<last byte held>` (no `Range` when nothing is held); an empty `PUT` with
//! `Content-Range: bytes */total` asks the session what it holds; the final `PUT` answers
//! `201` with the video resource; an expired session answers `404`. Chunks other than the
//! last should be multiples of 256 KiB: the server persists a chunk rounded down to one, and
//! says so in `Range`. Errors are Google's JSON error bodies.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{Value, json};

use crate::server::{
    Abort, Outcome, RECORDED_MEDIA, Reply, Req, deliver, empty, json, query_param, record, set,
    status_code,
};
use crate::state::{Shared, State, YouTubeSession, random_token};
use crate::{Fault, Platform, YouTubeVideo};

/// The most `thumbnails.set` accepts: 2 MB.
pub(crate) const MAX_THUMBNAIL: usize = 2 * 1024 * 1024;
/// Resumable uploads move in multiples of this.
const GRANULE: u64 = 256 * 1024;
const CHANNEL_ID: &str = "UCstoryreelTestChannel01";
const CHANNEL_TITLE: &str = "storyreel test channel";
/// Scopes that may upload (videos.insert, thumbnails.set).
const UPLOAD_SCOPES: &[&str] = &[
    "https://www.googleapis.com/auth/youtube.upload",
    "https://www.googleapis.com/auth/youtube",
    "https://www.googleapis.com/auth/youtube.force-ssl",
    "https://www.googleapis.com/auth/youtubepartner",
];
/// Scopes that may read (videos.list).
const READ_SCOPES: &[&str] = &[
    "https://www.googleapis.com/auth/youtube.readonly",
    "https://www.googleapis.com/auth/youtube",
    "https://www.googleapis.com/auth/youtube.force-ssl",
    "https://www.googleapis.com/auth/youtubepartner",
];
/// The parts a video resource has.
const PARTS: &[&str] = &[
    "id",
    "snippet",
    "status",
    "contentDetails",
    "fileDetails",
    "liveStreamingDetails",
    "localizations",
    "player",
    "processingDetails",
    "recordingDetails",
    "statistics",
    "suggestions",
    "topicDetails",
];
/// Video categories assignable in the US (videoCategories.list, regionCode=US, assignable).
const CATEGORIES: &[&str] = &[
    "1", "2", "10", "15", "17", "19", "20", "22", "23", "24", "25", "26", "27", "28", "29",
];

/// Google's JSON error body.
pub(crate) fn error(code: StatusCode, domain: &str, reason: &str, message: &str) -> Reply {
    let status_name = match code.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        413 => "OUT_OF_RANGE",
        429 => "RESOURCE_EXHAUSTED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    };
    json(
        code,
        &json!({"error": {
            "code": code.as_u16(),
            "message": message,
            "errors": [{"message": message, "domain": domain, "reason": reason}],
            "status": status_name,
        }}),
    )
}

fn bad_request(reason: &str, message: &str) -> Reply {
    error(StatusCode::BAD_REQUEST, "youtube.video", reason, message)
}

/// Checks the bearer token: 401 `authError` without a live Google access token, 403
/// `insufficientPermissions` without one of `scopes`.
fn authorize(shared: &Shared, headers: &hyper::HeaderMap, scopes: &[&str]) -> Result<(), Reply> {
    let state = shared.lock();
    let token =
        crate::server::bearer(headers).and_then(|t| state.access_token(Platform::YouTube, t));
    let Some(token) = token else {
        let message = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.";
        let mut reply = json(
            StatusCode::UNAUTHORIZED,
            &json!({"error": {
                "code": 401,
                "message": message,
                "errors": [{
                    "message": "Invalid Credentials",
                    "domain": "global",
                    "reason": "authError",
                    "location": "Authorization",
                    "locationType": "header",
                }],
                "status": "UNAUTHENTICATED",
            }}),
        );
        set(
            &mut reply,
            "www-authenticate",
            "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"",
        );
        return Err(reply);
    };
    if !token.scope.split_whitespace().any(|s| scopes.contains(&s)) {
        return Err(error(
            StatusCode::FORBIDDEN,
            "global",
            "insufficientPermissions",
            "Request had insufficient authentication scopes.",
        ));
    }
    Ok(())
}

/// `POST upload/youtube/v3/videos?uploadType=resumable&part=..`: opens an upload session.
pub(crate) fn insert(shared: &Shared, req: &Req) -> Reply {
    if let Err(reply) = authorize(shared, &req.headers, UPLOAD_SCOPES) {
        return reply;
    }
    match req.query_param("uploadType").as_deref() {
        Some("resumable") => {}
        Some("media") | Some("multipart") => {
            return error(
                StatusCode::NOT_IMPLEMENTED,
                "global",
                "notImplemented",
                "This test server implements only uploadType=resumable.",
            );
        }
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "global",
                "badRequest",
                "Upload requests must include an uploadType URL parameter and a URL path beginning with /upload/",
            );
        }
    }
    let Some(part) = req.query_param("part") else {
        return error(
            StatusCode::BAD_REQUEST,
            "global",
            "required",
            "Required parameter: part",
        );
    };
    let parts: Vec<&str> = part.split(',').map(str::trim).collect();
    if let Some(unknown) = parts.iter().find(|p| !PARTS.contains(p)) {
        return error(
            StatusCode::BAD_REQUEST,
            "youtube.part",
            "unknownPart",
            &format!("'{unknown}'"),
        );
    }
    let resource: Value = if req.body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice(&req.body) {
            Ok(value @ Value::Object(_)) => value,
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "global",
                    "parseError",
                    "Parse Error",
                );
            }
        }
    };
    let total = match req.header("x-upload-content-length") {
        None => None,
        Some(v) => match v.trim().parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "global",
                    "badRequest",
                    &format!("Invalid X-Upload-Content-Length: {v}"),
                );
            }
        },
    };
    if let Some(kind) = req.header("x-upload-content-type") {
        let kind = kind
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if !(kind.starts_with("video/") || kind == "application/octet-stream") {
            return error(
                StatusCode::BAD_REQUEST,
                "global",
                "badContent",
                &format!(
                    "Media type '{kind}' is not supported. Valid media types: [video/*, application/octet-stream]"
                ),
            );
        }
    }
    if let Err(reply) = validate(&resource, &parts) {
        return reply;
    }
    let mut state = shared.lock();
    if let Some(Fault::YouTubeInsert { reason }) =
        state.take_fault(|f| matches!(f, Fault::YouTubeInsert { .. }))
    {
        return insert_refused(reason);
    }
    let upload_id = random_token(48);
    state.youtube_sessions.insert(
        upload_id.clone(),
        YouTubeSession {
            query: req.query.clone(),
            resource,
            total,
            bytes: Vec::new(),
            expired: false,
            upload_requests: 0,
            video: None,
        },
    );
    drop(state);
    let mut reply = empty(StatusCode::OK);
    let location = format!(
        "{}upload/youtube/v3/videos?uploadType=resumable&upload_id={upload_id}",
        shared.base_url
    );
    set(&mut reply, "location", &location);
    set(&mut reply, "x-guploader-uploadid", &upload_id);
    reply
}

fn insert_refused(reason: &str) -> Reply {
    match reason {
        "quotaExceeded" => error(
            StatusCode::FORBIDDEN,
            "youtube.quota",
            reason,
            "The request cannot be completed because you have exceeded your <a href=\"/youtube/v3/getting-started#quota\">quota</a>.",
        ),
        "uploadLimitExceeded" => bad_request(
            reason,
            "The user has exceeded the number of videos they may upload.",
        ),
        "rateLimitExceeded" => error(
            StatusCode::FORBIDDEN,
            "usageLimits",
            reason,
            "Rate Limit Exceeded",
        ),
        "userRateLimitExceeded" => error(
            StatusCode::FORBIDDEN,
            "usageLimits",
            reason,
            "User Rate Limit Exceeded",
        ),
        other => bad_request(other, "The request was refused."),
    }
}

/// Validates the metadata of a new video as YouTube does, for the parts being set.
fn validate(resource: &Value, parts: &[&str]) -> Result<(), Reply> {
    if parts.contains(&"snippet") {
        let snippet = &resource["snippet"];
        let title = snippet["title"].as_str().unwrap_or_default();
        if title.trim().is_empty() || title.chars().count() > 100 || title.contains(['<', '>']) {
            return Err(bad_request(
                "invalidTitle",
                "The request metadata specifies an invalid or empty video title.",
            ));
        }
        if let Some(description) = snippet.get("description") {
            let description = description.as_str().unwrap_or("<");
            if description.len() > 5000 || description.contains(['<', '>']) {
                return Err(bad_request(
                    "invalidDescription",
                    "The request metadata specifies an invalid video description.",
                ));
            }
        }
        if let Some(tags) = snippet.get("tags") {
            let Some(tags) = tags.as_array() else {
                return Err(bad_request(
                    "invalidTags",
                    "The request metadata specifies invalid video keywords.",
                ));
            };
            // 500 characters in all: commas between tags, quotes around tags with spaces.
            let mut length = tags.len().saturating_sub(1);
            for tag in tags {
                let Some(tag) = tag.as_str() else {
                    return Err(bad_request(
                        "invalidTags",
                        "The request metadata specifies invalid video keywords.",
                    ));
                };
                length += tag.chars().count() + if tag.contains(' ') { 2 } else { 0 };
            }
            if length > 500 {
                return Err(bad_request(
                    "invalidTags",
                    "The request metadata specifies invalid video keywords.",
                ));
            }
        }
        if let Some(category) = snippet.get("categoryId")
            && !category.as_str().is_some_and(|c| CATEGORIES.contains(&c))
        {
            return Err(bad_request(
                "invalidCategoryId",
                "The snippet.categoryId property specifies an invalid category ID. Use the videoCategories.list method to retrieve supported categories.",
            ));
        }
    }
    if parts.contains(&"status") {
        let status = &resource["status"];
        let privacy = status.get("privacyStatus");
        if let Some(privacy) = privacy
            && !matches!(privacy.as_str(), Some("private" | "unlisted" | "public"))
        {
            return Err(bad_request(
                "invalidVideoMetadata",
                "The request metadata is invalid.",
            ));
        }
        for flag in [
            "selfDeclaredMadeForKids",
            "containsSyntheticMedia",
            "embeddable",
            "publicStatsViewable",
        ] {
            if status.get(flag).is_some_and(|v| !v.is_boolean()) {
                return Err(bad_request(
                    "invalidVideoMetadata",
                    "The request metadata is invalid.",
                ));
            }
        }
        if let Some(publish_at) = status.get("publishAt") {
            let private = privacy.and_then(Value::as_str) == Some("private");
            let future = publish_at
                .as_str()
                .and_then(parse_rfc3339)
                .is_some_and(|t| t > unix_now());
            if !private || !future {
                return Err(bad_request(
                    "invalidPublishAt",
                    "The request metadata specifies an invalid scheduled publishing time.",
                ));
            }
        }
    }
    Ok(())
}

/// What a `Content-Range` header asks.
enum Range {
    /// `bytes */total`: what does the session hold?
    Query { total: Option<u64> },
    /// `bytes first-last/total`.
    Bytes {
        first: u64,
        last: u64,
        total: Option<u64>,
    },
    /// No header: the body is the whole video.
    Whole,
}

fn parse_range(value: Option<&str>) -> Option<Range> {
    let Some(value) = value else {
        return Some(Range::Whole);
    };
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim();
    let (range, total) = rest.split_once('/')?;
    let total = match total.trim() {
        "*" => None,
        n => Some(n.parse().ok()?),
    };
    if range.trim() == "*" {
        return Some(Range::Query { total });
    }
    let (first, last) = range.split_once('-')?;
    let (first, last): (u64, u64) = (first.trim().parse().ok()?, last.trim().parse().ok()?);
    (last >= first).then_some(Range::Bytes { first, last, total })
}

/// `PUT` to a session URI: bytes, or a status query.
pub(crate) async fn upload_put(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Reply, Abort> {
    let (parts, mut body) = req.into_parts();
    let upload_id =
        query_param(parts.uri.query().unwrap_or_default(), "upload_id").unwrap_or_default();
    let range = parse_range(
        parts
            .headers
            .get("content-range")
            .and_then(|v| v.to_str().ok()),
    );
    let declared_length = parts
        .headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());

    // Before reading the body: is the request acceptable, and does a fault act on it?
    let plan = {
        let mut state = shared.lock();
        plan_put(&mut state, &upload_id, range.as_ref(), declared_length)
    };

    // Read the body (a refused request's only for the record); the drop fault cuts it off at its byte.
    let (cap, drop_at, start) = match &plan {
        Ok(plan) => (plan.cap, plan.drop_at, plan.start),
        Err(_) => (RECORDED_MEDIA as u64, None, 0),
    };
    let mut data = Vec::new();
    let mut received = 0u64;
    let mut cut = false;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        received += chunk.len() as u64;
        let room = cap.saturating_sub(data.len() as u64) as usize;
        data.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if let Some(at) = drop_at
            && start + data.len() as u64 >= at
        {
            data.truncate((at - start) as usize);
            cut = true;
            break;
        }
    }
    // A cut-off request is recorded with what arrived before the connection closed.
    record(shared, &parts, &data, true);
    let outcome = match plan {
        Ok(plan) => apply_put(shared, &upload_id, plan, &data, received, cut),
        Err(reply) => Outcome::Reply(reply),
    };
    deliver(shared, outcome).await
}

/// Applies a `PUT` whose body has been read to its session.
fn apply_put(
    shared: &Shared,
    upload_id: &str,
    plan: Plan,
    data: &[u8],
    received: u64,
    cut: bool,
) -> Outcome {
    let mut state = shared.lock();
    let Some(session) = state.youtube_sessions.get_mut(upload_id) else {
        return Outcome::Reply(not_found());
    };
    if plan.counts {
        session.upload_requests += 1;
    }
    if let Some(code) = plan.refuse {
        let reason = status_code(code).canonical_reason().unwrap_or("Error");
        return Outcome::Reply(error(status_code(code), "global", reason_for(code), reason));
    }
    if cut {
        // What arrived is persisted in whole 256 KiB granules.
        let end = plan.start + data.len() as u64;
        append(session, plan.start, data, end - end % GRANULE);
        if session.total == Some(session.bytes.len() as u64) && session.video.is_none() {
            let _ = complete(&mut state, upload_id, false);
        }
        return Outcome::Close;
    }
    if session.video.is_some() {
        // The video is complete: answer it again, make no second one.
        let resource = video_resource(&state, upload_id);
        return Outcome::Reply(with_upload_id(json(StatusCode::OK, &resource), upload_id));
    }
    match plan.kind {
        Kind::Query { total } => {
            if session.total.is_none() {
                session.total = total;
            }
            if session.total == Some(session.bytes.len() as u64) {
                return complete(&mut state, upload_id, true);
            }
            Outcome::Reply(progress(session, upload_id))
        }
        Kind::Bytes { length, total } => {
            if received != length {
                return Outcome::Reply(error(
                    StatusCode::BAD_REQUEST,
                    "global",
                    "badRequest",
                    &format!(
                        "Invalid request. The Content-Range header names {length} byte(s), but the request carried {received} byte(s)."
                    ),
                ));
            }
            if session.total.is_none() {
                session.total = total;
            }
            let end = plan.start + length;
            let is_final = session.total == Some(end);
            let keep = if is_final { end } else { end - end % GRANULE };
            append(session, plan.start, data, keep);
            if is_final {
                return complete(&mut state, upload_id, true);
            }
            Outcome::Reply(progress(session, upload_id))
        }
    }
}

enum Kind {
    Query { total: Option<u64> },
    Bytes { length: u64, total: Option<u64> },
}

struct Plan {
    kind: Kind,
    /// The session offset of the body's first byte.
    start: u64,
    /// Read no more than this many body bytes.
    cap: u64,
    /// The drop fault: close the connection once the session offset reaches this.
    drop_at: Option<u64>,
    /// The status fault: answer this and persist nothing.
    refuse: Option<u16>,
    /// Counts in `upload_requests` (it carries bytes).
    counts: bool,
}

/// Checks a `PUT` against its session before its body is read, and arms any fault for it.
fn plan_put(
    state: &mut State,
    upload_id: &str,
    range: Option<&Range>,
    declared_length: Option<u64>,
) -> Result<Plan, Reply> {
    let Some(session) = state.youtube_sessions.get(upload_id) else {
        return Err(not_found());
    };
    if session.expired {
        return Err(not_found());
    }
    let Some(range) = range else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "global",
            "badRequest",
            "Failed to parse Content-Range header.",
        ));
    };
    let held = session.bytes.len() as u64;
    let (kind, start) = match *range {
        Range::Query { total } => {
            if declared_length.is_some_and(|n| n > 0) {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "global",
                    "badRequest",
                    "A status query (Content-Range: bytes */N) must have an empty body.",
                ));
            }
            if let (Some(a), Some(b)) = (session.total, total)
                && a != b
            {
                return Err(total_mismatch(a, b));
            }
            return Ok(Plan {
                kind: Kind::Query { total },
                start: held,
                cap: 0,
                drop_at: None,
                refuse: None,
                counts: false,
            });
        }
        Range::Bytes { first, last, total } => (
            Kind::Bytes {
                length: last - first + 1,
                total,
            },
            first,
        ),
        Range::Whole => {
            let Some(length) = declared_length.or(session.total) else {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "global",
                    "badRequest",
                    "Failed to parse Content-Range header.",
                ));
            };
            (
                Kind::Bytes {
                    length,
                    total: Some(length),
                },
                0,
            )
        }
    };
    let Kind::Bytes { length, total } = kind else {
        unreachable!()
    };
    if let (Some(a), Some(b)) = (session.total, total)
        && a != b
    {
        return Err(total_mismatch(a, b));
    }
    let total = session.total.or(total);
    if total.is_some_and(|t| start + length > t) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "global",
            "badRequest",
            "Invalid request. The Content-Range header names bytes past the end of the upload.",
        ));
    }
    if start > held {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "global",
            "badRequest",
            &format!(
                "Invalid request. According to the Content-Range header, the upload offset is {start} byte(s), which exceeds already uploaded size of {held} byte(s)."
            ),
        ));
    }
    let mut plan = Plan {
        kind,
        start,
        cap: length,
        drop_at: None,
        refuse: None,
        counts: true,
    };
    if session.video.is_some() {
        return Ok(plan);
    }
    if let Some(code) = take_status_fault(state) {
        plan.refuse = Some(code);
        return Ok(plan);
    }
    if let Some(total) = total {
        let reached = |f: &Fault| match f {
            Fault::DropUploadAt { fraction } => drop_offset(*fraction, total) <= start + length,
            _ => false,
        };
        if let Some(Fault::DropUploadAt { fraction }) = state.take_fault(reached) {
            plan.drop_at = Some(drop_offset(fraction, total).max(start));
        }
    }
    Ok(plan)
}

/// The session offset at which a drop at `fraction` fires.
pub(crate) fn drop_offset(fraction: f64, total: u64) -> u64 {
    let at = (fraction.clamp(0.0, 1.0) * total as f64).ceil() as u64;
    at.min(total)
}

/// Uses up one answer of a queued `UploadStatus` fault.
pub(crate) fn take_status_fault(state: &mut State) -> Option<u16> {
    let i = state
        .faults
        .iter()
        .position(|f| matches!(f, Fault::UploadStatus { times, .. } if *times > 0))?;
    let Fault::UploadStatus { status, times } = &mut state.faults[i] else {
        return None;
    };
    let code = *status;
    *times -= 1;
    if *times == 0 {
        state.faults.remove(i);
    }
    Some(code)
}

fn reason_for(code: u16) -> &'static str {
    match code {
        429 => "rateLimitExceeded",
        500 => "backendError",
        502 => "badGateway",
        503 => "backendError",
        504 => "deadlineExceeded",
        401 => "authError",
        403 => "forbidden",
        404 => "notFound",
        _ => "badRequest",
    }
}

fn total_mismatch(session: u64, request: u64) -> Reply {
    error(
        StatusCode::BAD_REQUEST,
        "global",
        "badRequest",
        &format!(
            "Invalid request. The Content-Range header names a total of {request} byte(s), but the upload is {session} byte(s)."
        ),
    )
}

/// Appends the bytes of `data` (which starts at session offset `start`) that extend the
/// session, up to offset `keep`.
fn append(session: &mut YouTubeSession, start: u64, data: &[u8], keep: u64) {
    let held = session.bytes.len() as u64;
    if keep <= held {
        return;
    }
    let from = (held - start) as usize;
    let to = (keep - start) as usize;
    session.bytes.extend_from_slice(&data[from..to]);
}

/// Turns a full session into a video and answers it `201 Created` (or holds the answer:
/// `Fault::HoldCompletion`).
fn complete(state: &mut State, upload_id: &str, may_hold: bool) -> Outcome {
    let Some(session) = state.youtube_sessions.get_mut(upload_id) else {
        return Outcome::Reply(not_found());
    };
    if session.video.is_none() {
        session.video = Some(state.youtube_videos.len());
        let video = YouTubeVideo {
            id: video_id(),
            bytes: session.bytes.clone(),
            resource: session.resource.clone(),
            query: session.query.clone(),
            thumbnail: None,
            upload_requests: session.upload_requests,
        };
        state.youtube_videos.push(video);
    }
    if may_hold
        && state
            .take_fault(|f| matches!(f, Fault::HoldCompletion))
            .is_some()
    {
        state.holds_unreported += 1;
        return Outcome::Hold;
    }
    let resource = video_resource(state, upload_id);
    Outcome::Reply(with_upload_id(
        json(StatusCode::CREATED, &resource),
        upload_id,
    ))
}

/// `308 Resume Incomplete` with what the session holds.
fn progress(session: &YouTubeSession, upload_id: &str) -> Reply {
    let mut reply = empty(StatusCode::PERMANENT_REDIRECT);
    let held = session.bytes.len();
    if held > 0 {
        set(&mut reply, "range", &format!("bytes=0-{}", held - 1));
    }
    set(&mut reply, "content-length", "0");
    with_upload_id(reply, upload_id)
}

fn with_upload_id(mut reply: Reply, upload_id: &str) -> Reply {
    set(&mut reply, "x-guploader-uploadid", upload_id);
    reply
}

fn not_found() -> Reply {
    error(StatusCode::NOT_FOUND, "global", "notFound", "Not Found")
}

/// The video resource YouTube answers for a completed upload, with the parts the insert asked for.
fn video_resource(state: &State, upload_id: &str) -> Value {
    let Some(session) = state.youtube_sessions.get(upload_id) else {
        return json!({});
    };
    let Some(video) = session.video.and_then(|i| state.youtube_videos.get(i)) else {
        return json!({});
    };
    resource_of(video)
}

fn resource_of(video: &YouTubeVideo) -> Value {
    let part = query_param(&video.query, "part").unwrap_or_default();
    let parts: Vec<&str> = part.split(',').map(str::trim).collect();
    let mut resource = json!({
        "kind": "youtube#video",
        "etag": format!("storyreel-{}", video.id),
        "id": video.id,
    });
    let posted = &video.resource;
    if parts.contains(&"snippet") {
        let s = &posted["snippet"];
        let title = s["title"].clone();
        let description = s.get("description").cloned().unwrap_or(json!(""));
        let thumbnails = json!({
            "default": {"url": format!("https://i.ytimg.com/vi/{}/default.jpg", video.id), "width": 120, "height": 90},
            "medium": {"url": format!("https://i.ytimg.com/vi/{}/mqdefault.jpg", video.id), "width": 320, "height": 180},
            "high": {"url": format!("https://i.ytimg.com/vi/{}/hqdefault.jpg", video.id), "width": 480, "height": 360},
        });
        let mut snippet = json!({
            "publishedAt": rfc3339(unix_now()),
            "channelId": CHANNEL_ID,
            "title": title,
            "description": description,
            "thumbnails": thumbnails,
            "channelTitle": CHANNEL_TITLE,
            "categoryId": s.get("categoryId").cloned().unwrap_or(json!("22")),
            "liveBroadcastContent": "none",
            "localized": {"title": s["title"].clone(), "description": description},
        });
        if let Some(tags) = s.get("tags") {
            snippet["tags"] = tags.clone();
        }
        if let Some(language) = s.get("defaultLanguage") {
            snippet["defaultLanguage"] = language.clone();
        }
        resource["snippet"] = snippet;
    }
    if parts.contains(&"status") {
        let s = &posted["status"];
        let made_for_kids = s
            .get("selfDeclaredMadeForKids")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let mut status = json!({
            "uploadStatus": "uploaded",
            "privacyStatus": s.get("privacyStatus").cloned().unwrap_or(json!("public")),
            "license": s.get("license").cloned().unwrap_or(json!("youtube")),
            "embeddable": s.get("embeddable").cloned().unwrap_or(json!(true)),
            "publicStatsViewable": s.get("publicStatsViewable").cloned().unwrap_or(json!(true)),
            "madeForKids": made_for_kids,
        });
        for copied in [
            "publishAt",
            "selfDeclaredMadeForKids",
            "containsSyntheticMedia",
        ] {
            if let Some(v) = s.get(copied) {
                status[copied] = v.clone();
            }
        }
        resource["status"] = status;
    }
    resource
}

/// `POST upload/youtube/v3/thumbnails/set?videoId=..`: a JPEG or PNG of at most 2 MB.
pub(crate) fn thumbnails_set(shared: &Shared, req: &Req) -> Reply {
    if let Err(reply) = authorize(shared, &req.headers, UPLOAD_SCOPES) {
        return reply;
    }
    if let Some(kind) = req.query_param("uploadType")
        && kind != "media"
    {
        return error(
            StatusCode::NOT_IMPLEMENTED,
            "global",
            "notImplemented",
            "This test server implements thumbnails.set only as a simple upload (uploadType=media).",
        );
    }
    let Some(video_id) = req.query_param("videoId") else {
        return error(
            StatusCode::BAD_REQUEST,
            "global",
            "required",
            "Required parameter: videoId",
        );
    };
    if req.body.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "youtube.thumbnail",
            "mediaBodyRequired",
            "The request does not include the image content.",
        );
    }
    let kind = req
        .header("content-type")
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if !matches!(
        kind.as_str(),
        "image/jpeg" | "image/png" | "application/octet-stream"
    ) {
        return error(
            StatusCode::BAD_REQUEST,
            "global",
            "badContent",
            &format!(
                "Media type '{kind}' is not supported. Valid media types: [image/jpeg, image/png, application/octet-stream]"
            ),
        );
    }
    let is_jpeg = req.body.starts_with(&[0xFF, 0xD8, 0xFF]);
    let is_png = req.body.starts_with(b"\x89PNG\r\n\x1a\n");
    if !(is_jpeg || is_png) {
        return error(
            StatusCode::BAD_REQUEST,
            "youtube.thumbnail",
            "invalidImage",
            "The provided image content is invalid.",
        );
    }
    let mut state = shared.lock();
    let Some(video) = state.youtube_videos.iter().position(|v| v.id == video_id) else {
        return error(
            StatusCode::NOT_FOUND,
            "youtube.thumbnail",
            "videoNotFound",
            "The video that you are trying to update cannot be found. Check the value of the videoId parameter in the request body to ensure that it is correct.",
        );
    };
    if state
        .take_fault(|f| matches!(f, Fault::ThumbnailForbidden))
        .is_some()
    {
        return error(
            StatusCode::FORBIDDEN,
            "youtube.thumbnail",
            "forbidden",
            "The authenticated user doesn't have permissions for uploading and setting custom video thumbnails.",
        );
    }
    state.youtube_videos[video].thumbnail = Some(req.body.to_vec());
    let base = format!("https://i.ytimg.com/vi/{video_id}");
    json(
        StatusCode::OK,
        &json!({
            "kind": "youtube#thumbnailSetResponse",
            "etag": format!("storyreel-thumb-{video_id}"),
            "items": [{
                "default": {"url": format!("{base}/default.jpg"), "width": 120, "height": 90},
                "medium": {"url": format!("{base}/mqdefault.jpg"), "width": 320, "height": 180},
                "high": {"url": format!("{base}/hqdefault.jpg"), "width": 480, "height": 360},
            }],
        }),
    )
}

/// `GET youtube/v3/videos?part=..&id=a,b`: the channel's completed videos by id.
pub(crate) fn list(shared: &Shared, req: &Req) -> Reply {
    if let Err(reply) = authorize(shared, &req.headers, READ_SCOPES) {
        return reply;
    }
    let Some(part) = req.query_param("part") else {
        return error(
            StatusCode::BAD_REQUEST,
            "global",
            "required",
            "Required parameter: part",
        );
    };
    if let Some(unknown) = part.split(',').map(str::trim).find(|p| !PARTS.contains(p)) {
        return error(
            StatusCode::BAD_REQUEST,
            "youtube.part",
            "unknownPart",
            &format!("'{unknown}'"),
        );
    }
    let Some(ids) = req.query_param("id") else {
        return error(
            StatusCode::BAD_REQUEST,
            "youtube.parameter",
            "missingRequiredParameter",
            "No filter selected. Expected one of: myRating, id, chart",
        );
    };
    let state = shared.lock();
    let items: Vec<Value> = ids
        .split(',')
        .filter_map(|id| state.youtube_videos.iter().find(|v| v.id == id.trim()))
        .map(|video| {
            let mut shown = video.clone();
            shown.query = format!("part={part}");
            resource_of(&shown)
        })
        .collect();
    json(
        StatusCode::OK,
        &json!({
            "kind": "youtube#videoListResponse",
            "etag": "storyreel-list",
            "items": items,
            "pageInfo": {"totalResults": items.len(), "resultsPerPage": items.len()},
        }),
    )
}

/// An 11-character video id.
fn video_id() -> String {
    let mut id = random_token(9);
    id.truncate(11);
    id
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn rfc3339(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Seconds since the epoch of an RFC 3339 date-time (`2030-01-02T03:04:05(.sss)(Z|+hh:mm)`).
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (oh, om) = rest[1..].split_once(':')?;
            if oh.len() != 2 || om.len() != 2 {
                return None;
            }
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60)
        }
    };
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        let t = parse_rfc3339("2031-02-28T23:59:58.125+01:00").unwrap();
        assert_eq!(rfc3339(t), "2031-02-28T22:59:58Z");
        assert_eq!(parse_rfc3339("2031-02-28 23:59:58Z"), None);
        assert_eq!(parse_rfc3339("tomorrow"), None);
    }

    #[test]
    fn content_ranges() {
        assert!(matches!(
            parse_range(Some("bytes */100")),
            Some(Range::Query { total: Some(100) })
        ));
        assert!(matches!(
            parse_range(Some("bytes */*")),
            Some(Range::Query { total: None })
        ));
        assert!(matches!(
            parse_range(Some("bytes 0-9/100")),
            Some(Range::Bytes {
                first: 0,
                last: 9,
                total: Some(100)
            })
        ));
        assert!(parse_range(Some("bytes 10-9/100")).is_none());
        assert!(parse_range(Some("bytes x-9/100")).is_none());
        assert!(matches!(parse_range(None), Some(Range::Whole)));
    }
}
