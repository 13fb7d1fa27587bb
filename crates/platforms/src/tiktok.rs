//! TikTok: OAuth v2 (Login Kit for Desktop) and the Content Posting API.
//!
//! As documented on developers.tiktok.com:
//! - Login Kit for Desktop: the authorize page takes `client_key`, comma-separated `scope`,
//!   `response_type=code`, a loopback `redirect_uri`, `state`, `code_challenge` and
//!   `code_challenge_method=S256`, and redirects with `code`, `scopes` and `state`. TikTok
//!   documents the desktop challenge as the **hex** encoding of SHA-256 of the verifier (not
//!   RFC 7636's base64url); a base64url challenge fails at the token endpoint with
//!   `invalid_request` "Code verifier or code challenge is invalid.".
//! - `/v2/oauth/token/` (form body): access tokens live 2 hours (`expires_in` 7200), refresh
//!   tokens 180 days (`refresh_expires_in` 15552000). Refresh tokens rotate: each refresh
//!   returns a new one, and the one sent stops working (`invalid_grant`).
//! - Content Posting API: JSON bodies, `Authorization: Bearer`, answers
//!   `{"data": {..}, "error": {"code": "ok", "message": "", "log_id": ..}}`; the media
//!   transfer guide's chunk rules; `PUT`s to the upload URL answer 206 until the last chunk,
//!   then 201; `status/fetch` reports PROCESSING_UPLOAD, PROCESSING_DOWNLOAD, then
//!   SEND_TO_USER_INBOX (inbox) or PUBLISH_COMPLETE (direct post), or FAILED.

use std::sync::Arc;

use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::google::{is_form, loopback_redirect};
use crate::server::{
    Abort, Outcome, RECORDED_MEDIA, Reply, Req, deliver, empty, form_value, html, json, record,
    redirect, status_code,
};
use crate::state::{AuthCode, Shared, State, TikTokUpload, random_digits, random_token};
use crate::youtube::{drop_offset, take_status_fault};
use crate::{Fault, Platform, TIKTOK_CLIENT_KEY, TIKTOK_CLIENT_SECRET, TikTokPost};

/// Access tokens live 2 hours.
const EXPIRES_IN: u64 = 7200;
/// Refresh tokens live 180 days.
const REFRESH_EXPIRES_IN: u64 = 180 * 86_400;
/// The smallest chunk: 5 MB, read as MiB (the stricter reading).
const MIN_CHUNK: u64 = 5 * 1024 * 1024;
/// The largest chunk: 64 MB, read as 10^6 bytes (the stricter reading).
const MAX_CHUNK: u64 = 64_000_000;
/// The largest final chunk: 128 MB.
const MAX_FINAL_CHUNK: u64 = 128_000_000;
const MAX_CHUNKS: u64 = 1000;
/// What the creator may choose, as `creator_info/query` answers.
const PRIVACY_LEVELS: &[&str] = &["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"];
const VIDEO_TYPES: &[&str] = &["video/mp4", "video/quicktime", "video/webm"];

/// A TikTok user id for a new grant.
pub(crate) fn new_open_id() -> String {
    format!("-000storyreel{}", random_token(12))
}

fn log_id() -> String {
    format!("2030{}", random_digits(26))
}

/// The Content Posting API's envelope.
fn api_ok(data: Value) -> Reply {
    json(
        StatusCode::OK,
        &json!({"data": data, "error": {"code": "ok", "message": "", "log_id": log_id()}}),
    )
}

fn api_error(code: StatusCode, error: &str, message: &str) -> Reply {
    json(
        code,
        &json!({"data": {}, "error": {"code": error, "message": message, "log_id": log_id()}}),
    )
}

fn invalid_params(message: &str) -> Reply {
    api_error(StatusCode::BAD_REQUEST, "invalid_params", message)
}

/// The messages TikTok's error codes come with.
fn message_for(code: &str) -> &'static str {
    match code {
        "spam_risk_too_many_posts" => {
            "The daily post cap from the API is reached for the current user."
        }
        "spam_risk_too_many_pending_share" => {
            "The number of pending shares for the user has reached the limit."
        }
        "spam_risk_user_banned_from_posting" => "The user is banned from making new posts.",
        "rate_limit_exceeded" => "API rate limit was exceeded, please try again later.",
        "access_token_invalid" => "The access token is invalid or not found in the request.",
        "scope_not_authorized" => {
            "The user did not authorize the scope required for completing this request."
        }
        "privacy_level_option_mismatch" => {
            "The privacy level is not one of the creator's privacy_level_options."
        }
        "reached_active_user_cap" => {
            "The daily quota for active publishing users from your client is reached."
        }
        "unaudited_client_can_only_post_to_private_accounts" => {
            "Unaudited clients can only post to a private account."
        }
        "url_ownership_unverified" => "Please review our URL ownership verification rules.",
        "internal_error" => "Something went wrong. Please try again later.",
        _ => "The request failed.",
    }
}

fn oauth_error(code: StatusCode, error: &str, description: &str) -> Reply {
    json(
        code,
        &json!({"error": error, "error_description": description, "log_id": log_id()}),
    )
}

/// TikTok shows errors of the authorize page to the user rather than redirecting.
fn error_page(field: &str) -> Reply {
    html(
        StatusCode::BAD_REQUEST,
        &format!(
            "<!doctype html><title>TikTok</title><h1>Something went wrong</h1>\
             <p>We couldn't log in with TikTok. This may be due to specific app settings.</p>\
             <p>If you're a developer, correct the following and try again:</p><p>{field}</p>"
        ),
    )
}

/// `GET v2/auth/authorize/`: the user consents at once; redirects with a code.
pub(crate) fn authorize(shared: &Shared, req: &Req) -> Reply {
    let q = |name| req.query_param(name);
    if q("client_key").as_deref() != Some(TIKTOK_CLIENT_KEY) {
        return error_page("client_key");
    }
    let scope = q("scope").unwrap_or_default();
    let scopes: Vec<&str> = scope
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if scopes.is_empty() {
        return error_page("scope");
    }
    if q("response_type").as_deref() != Some("code") {
        return error_page("response_type");
    }
    let redirect_uri = q("redirect_uri").unwrap_or_default();
    let Ok(mut location) = loopback_redirect(&redirect_uri, true) else {
        return error_page("redirect_uri");
    };
    if location.query().is_some() {
        // "URIs must be static. Parameters or fragment CANNOT be appended to the URI."
        return error_page("redirect_uri");
    }
    let Some(challenge) = q("code_challenge").filter(|c| !c.is_empty()) else {
        return error_page("code_challenge");
    };
    if q("code_challenge_method").as_deref() != Some("S256") {
        return error_page("code_challenge_method");
    }
    let scope = scopes.join(",");
    let code = format!("storyreel{}*0!{}", random_token(24), random_digits(4));
    shared.lock().codes.insert(
        code.clone(),
        AuthCode {
            platform: Platform::TikTok,
            redirect_uri: redirect_uri.clone(),
            scope: scope.clone(),
            challenge: Some((challenge, "S256".to_owned())),
        },
    );
    {
        let mut pairs = location.query_pairs_mut();
        pairs.append_pair("code", &code);
        pairs.append_pair("scopes", &scope);
        if let Some(state) = q("state") {
            pairs.append_pair("state", &state);
        }
    }
    redirect(location.as_str())
}

/// `POST v2/oauth/token/`: the `authorization_code` and `refresh_token` grants.
pub(crate) fn token(shared: &Shared, req: &Req) -> Reply {
    if !is_form(req) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded.",
        );
    }
    let form = req.form();
    let value = |name| form_value(&form, name);
    if value("client_key") != Some(TIKTOK_CLIENT_KEY)
        || value("client_secret") != Some(TIKTOK_CLIENT_SECRET)
    {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client key or secret is invalid.",
        );
    }
    if let Some(reply) = tiktok_fault(&mut shared.lock(), "token") {
        return reply;
    }
    match value("grant_type") {
        Some("authorization_code") => exchange_code(shared, &form),
        Some("refresh_token") => refresh(shared, &form),
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The grant_type is not supported.",
        ),
    }
}

fn exchange_code(shared: &Shared, form: &[(String, String)]) -> Reply {
    let value = |name| form_value(form, name);
    let (Some(code), Some(redirect_uri)) = (value("code"), value("redirect_uri")) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required parameters are missing: code, redirect_uri.",
        );
    };
    let mut state = shared.lock();
    let auth = match state.codes.remove(code) {
        Some(auth) if auth.platform == Platform::TikTok => auth,
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "Authorization code is expired.",
            );
        }
    };
    if auth.redirect_uri != redirect_uri {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The redirect_uri does not match the one of the authorization request.",
        );
    }
    if let Some((challenge, _)) = &auth.challenge {
        let hex = value("code_verifier").map(|v| {
            Sha256::digest(v.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        });
        if hex.as_deref() != Some(challenge.to_ascii_lowercase().as_str()) {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Code verifier or code challenge is invalid.",
            );
        }
    }
    let refresh_token = state.new_grant(Platform::TikTok, &auth.scope, new_open_id());
    token_response(&mut state, &refresh_token)
}

fn refresh(shared: &Shared, form: &[(String, String)]) -> Reply {
    let Some(old) = form_value(form, "refresh_token") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required parameter is missing: refresh_token.",
        );
    };
    let mut state = shared.lock();
    let grant = match state.grants.get_mut(old) {
        Some(grant) if grant.platform == Platform::TikTok && !grant.revoked && !grant.rotated => {
            grant
        }
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "Refresh token is invalid or expired.",
            );
        }
    };
    // Rotation: the refresh token sent stops working once a new one is issued.
    grant.rotated = true;
    let (scope, open_id) = (grant.scope.clone(), grant.open_id.clone());
    let refresh_token = state.new_grant(Platform::TikTok, &scope, open_id);
    token_response(&mut state, &refresh_token)
}

fn token_response(state: &mut State, refresh_token: &str) -> Reply {
    let Some(access_token) = state.new_access_token(refresh_token) else {
        return oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "");
    };
    let grant = &state.grants[refresh_token];
    json(
        StatusCode::OK,
        &json!({
            "access_token": access_token,
            "expires_in": EXPIRES_IN,
            "open_id": grant.open_id,
            "refresh_expires_in": REFRESH_EXPIRES_IN,
            "refresh_token": refresh_token,
            "scope": grant.scope,
            "token_type": "Bearer",
        }),
    )
}

/// Checks the bearer token and that it carries one of `scopes`.
fn authorize_api(state: &State, req: &Req, scopes: &[&str]) -> Result<(), Reply> {
    let Some(token) = req
        .bearer()
        .and_then(|t| state.access_token(Platform::TikTok, t))
    else {
        return Err(api_error(
            StatusCode::UNAUTHORIZED,
            "access_token_invalid",
            message_for("access_token_invalid"),
        ));
    };
    if !token.scope.split(',').any(|s| scopes.contains(&s.trim())) {
        return Err(api_error(
            StatusCode::UNAUTHORIZED,
            "scope_not_authorized",
            message_for("scope_not_authorized"),
        ));
    }
    Ok(())
}

/// A queued `Fault::TikTok` for `endpoint`, as its reply (a status fault with HTTP 200 is
/// handled by `status` instead).
fn tiktok_fault(state: &mut State, endpoint: &str) -> Option<Reply> {
    let fault = state.take_fault(|f| {
        matches!(f, Fault::TikTok { endpoint: e, status, .. } if *e == endpoint && !(endpoint == "status" && *status == 200))
    })?;
    let Fault::TikTok {
        status: code,
        code: error,
        ..
    } = fault
    else {
        return None;
    };
    Some(if endpoint == "token" {
        oauth_error(status_code(code), error, message_for(error))
    } else {
        api_error(status_code(code), error, message_for(error))
    })
}

fn body_json(req: &Req) -> Result<Value, Reply> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    match serde_json::from_slice(&req.body) {
        Ok(value @ Value::Object(_)) => Ok(value),
        _ => Err(invalid_params(
            "The request body is not a valid JSON object.",
        )),
    }
}

/// `POST v2/post/publish/creator_info/query/`.
pub(crate) fn creator_info(shared: &Shared, req: &Req) -> Reply {
    let mut state = shared.lock();
    if let Err(reply) = authorize_api(&state, req, &["video.publish"]) {
        return reply;
    }
    if let Some(reply) = tiktok_fault(&mut state, "creator_info") {
        return reply;
    }
    api_ok(json!({
        "creator_avatar_url": "https://p16-sign.tiktokcdn.com/storyreel-avatar.jpeg",
        "creator_username": "storyreel.test",
        "creator_nickname": "Storyreel Test",
        "privacy_level_options": PRIVACY_LEVELS,
        "comment_disabled": false,
        "duet_disabled": false,
        "stitch_disabled": false,
        "max_video_post_duration_sec": 600,
    }))
}

/// `POST v2/post/publish/inbox/video/init/` (`direct` false) and `v2/post/publish/video/init/` (`direct` true).
pub(crate) fn init(shared: &Shared, req: &Req, direct: bool) -> Reply {
    let (scope, endpoint) = if direct {
        ("video.publish", "direct_init")
    } else {
        ("video.upload", "inbox_init")
    };
    let mut state = shared.lock();
    if let Err(reply) = authorize_api(&state, req, &[scope]) {
        return reply;
    }
    if let Some(reply) = tiktok_fault(&mut state, endpoint) {
        return reply;
    }
    let body = match body_json(req) {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    let post_info = if direct {
        match validate_post_info(&body["post_info"]) {
            Ok(()) => Some(body["post_info"].clone()),
            Err(reply) => return reply,
        }
    } else {
        None
    };
    let source = &body["source_info"];
    match source["source"].as_str() {
        Some("FILE_UPLOAD") => {}
        Some("PULL_FROM_URL") => {
            return api_error(
                StatusCode::FORBIDDEN,
                "url_ownership_unverified",
                message_for("url_ownership_unverified"),
            );
        }
        _ => return invalid_params("source_info.source must be FILE_UPLOAD or PULL_FROM_URL."),
    }
    let field = |name: &str| source[name].as_u64().filter(|n| *n > 0);
    let (Some(video_size), Some(chunk_size), Some(total_chunk_count)) = (
        field("video_size"),
        field("chunk_size"),
        field("total_chunk_count"),
    ) else {
        return invalid_params(
            "source_info needs positive video_size, chunk_size and total_chunk_count.",
        );
    };
    if let Err(message) = check_chunks(video_size, chunk_size, total_chunk_count) {
        return invalid_params(&message);
    }
    let publish_id = if direct {
        format!("v_pub_file~v2.{}", random_digits(19))
    } else {
        format!("v_inbox_file~v2.{}", random_digits(19))
    };
    let upload_id = random_token(24);
    state
        .tiktok_upload_ids
        .insert(upload_id.clone(), publish_id.clone());
    state.tiktok_uploads.insert(
        publish_id.clone(),
        TikTokUpload {
            publish_id: publish_id.clone(),
            direct,
            post_info,
            video_size,
            chunk_size,
            total_chunk_count,
            bytes: Vec::new(),
            chunks: 0,
            fetches_after_complete: 0,
            fail_reason: None,
        },
    );
    api_ok(json!({
        "publish_id": publish_id,
        "upload_url": format!("{}tiktok-upload/{upload_id}", shared.base_url),
    }))
}

/// The media transfer guide's chunk restrictions.
fn check_chunks(video_size: u64, chunk_size: u64, count: u64) -> Result<(), String> {
    if video_size < MIN_CHUNK {
        if chunk_size != video_size || count != 1 {
            return Err(format!(
                "A video under 5 MB ({video_size} bytes) must be uploaded whole: chunk_size {video_size}, total_chunk_count 1."
            ));
        }
        return Ok(());
    }
    if !(MIN_CHUNK..=MAX_CHUNK).contains(&chunk_size) || chunk_size > video_size {
        return Err(format!(
            "The chunk_size {chunk_size} is invalid (expected >= {MIN_CHUNK}, <= {MAX_CHUNK}, <= video_size {video_size})."
        ));
    }
    let expected = video_size / chunk_size;
    if count != expected {
        return Err(format!(
            "The total_chunk_count {count} is invalid (expected video_size / chunk_size rounded down: {expected})."
        ));
    }
    if !(1..=MAX_CHUNKS).contains(&count) {
        return Err(format!(
            "The total_chunk_count {count} is invalid (expected >= 1, <= {MAX_CHUNKS})."
        ));
    }
    if video_size > MAX_CHUNK && count < 2 {
        return Err("A video over 64 MB must be uploaded in several chunks.".to_owned());
    }
    let last = video_size - (count - 1) * chunk_size;
    if last > MAX_FINAL_CHUNK {
        return Err(format!("The final chunk of {last} bytes is over 128 MB."));
    }
    Ok(())
}

fn validate_post_info(post_info: &Value) -> Result<(), Reply> {
    let Value::Object(info) = post_info else {
        return Err(invalid_params("post_info is required for a direct post."));
    };
    if let Some(title) = info.get("title") {
        let Some(title) = title.as_str() else {
            return Err(invalid_params("post_info.title must be a string."));
        };
        if title.encode_utf16().count() > 2200 {
            return Err(invalid_params(
                "post_info.title is longer than 2200 UTF-16 runes.",
            ));
        }
    }
    let Some(privacy) = info.get("privacy_level").and_then(Value::as_str) else {
        return Err(invalid_params("post_info.privacy_level is required."));
    };
    if !PRIVACY_LEVELS.contains(&privacy) {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            "privacy_level_option_mismatch",
            message_for("privacy_level_option_mismatch"),
        ));
    }
    for flag in [
        "disable_duet",
        "disable_stitch",
        "disable_comment",
        "brand_content_toggle",
        "brand_organic_toggle",
        "is_aigc",
    ] {
        if info.get(flag).is_some_and(|v| !v.is_boolean()) {
            return Err(invalid_params(&format!(
                "post_info.{flag} must be a boolean."
            )));
        }
    }
    if info
        .get("video_cover_timestamp_ms")
        .is_some_and(|v| !v.is_u64())
    {
        return Err(invalid_params(
            "post_info.video_cover_timestamp_ms must be a non-negative integer.",
        ));
    }
    Ok(())
}

/// `POST v2/post/publish/status/fetch/`.
pub(crate) fn status_fetch(shared: &Shared, req: &Req) -> Reply {
    let mut state = shared.lock();
    if let Err(reply) = authorize_api(&state, req, &["video.upload", "video.publish"]) {
        return reply;
    }
    if let Some(reply) = tiktok_fault(&mut state, "status") {
        return reply;
    }
    let body = match body_json(req) {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    let Some(publish_id) = body["publish_id"].as_str() else {
        return invalid_params("publish_id is required.");
    };
    let failure = state.take_fault(|f| {
        matches!(
            f,
            Fault::TikTok {
                endpoint: "status",
                status: 200,
                ..
            }
        )
    });
    let Some(upload) = state.tiktok_uploads.get_mut(publish_id) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "invalid_publish_id",
            "The publish_id does not exist.",
        );
    };
    if let Some(Fault::TikTok { code, .. }) = failure {
        upload.fail_reason = Some(code.to_owned());
    }
    let uploaded = upload.bytes.len() as u64;
    if let Some(reason) = &upload.fail_reason {
        return api_ok(
            json!({"status": "FAILED", "fail_reason": reason, "uploaded_bytes": uploaded}),
        );
    }
    if !upload.complete() {
        return api_ok(json!({"status": "PROCESSING_UPLOAD", "uploaded_bytes": uploaded}));
    }
    upload.fetches_after_complete += 1;
    if upload.fetches_after_complete == 1 {
        return api_ok(json!({"status": "PROCESSING_DOWNLOAD", "uploaded_bytes": uploaded}));
    }
    if !upload.direct {
        return api_ok(json!({"status": "SEND_TO_USER_INBOX", "uploaded_bytes": uploaded}));
    }
    // The post id comes only for public posts, once moderation is done (at once, here).
    let public = upload
        .post_info
        .as_ref()
        .and_then(|p| p["privacy_level"].as_str())
        == Some("PUBLIC_TO_EVERYONE");
    let post_ids: Vec<String> = if public {
        vec![publish_id.rsplit('.').next().unwrap_or_default().to_owned()]
    } else {
        Vec::new()
    };
    // "publicaly" is TikTok's spelling of the field.
    api_ok(json!({
        "status": "PUBLISH_COMPLETE",
        "publicaly_available_post_id": post_ids,
        "uploaded_bytes": uploaded,
    }))
}

/// What a chunk `PUT` may do, decided before its body is read.
struct Plan {
    publish_id: String,
    first: u64,
    length: u64,
    /// The chunk index it carries.
    index: u64,
    drop_at: Option<u64>,
    refuse: Option<u16>,
}

/// `PUT` of one chunk to an upload URL.
pub(crate) async fn upload_put(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
    upload_id: &str,
) -> Result<Reply, Abort> {
    let (parts, mut body) = req.into_parts();
    let plan = {
        let mut state = shared.lock();
        plan_chunk(&mut state, upload_id, &parts.headers)
    };
    let (cap, drop_at, first) = match &plan {
        Ok(plan) => (plan.length, plan.drop_at, plan.first),
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
        if drop_at.is_some_and(|at| first + data.len() as u64 >= at) {
            cut = true;
            break;
        }
    }
    record(shared, &parts, &data, true);
    let outcome = match plan {
        Err(reply) => Outcome::Reply(reply),
        // TikTok keeps nothing of an interrupted chunk.
        Ok(_) if cut => Outcome::Close,
        Ok(Plan {
            refuse: Some(code), ..
        }) => Outcome::Reply(api_error(
            status_code(code),
            if code == 429 {
                "rate_limit_exceeded"
            } else {
                "internal_error"
            },
            message_for(if code == 429 {
                "rate_limit_exceeded"
            } else {
                "internal_error"
            }),
        )),
        Ok(plan) if received != plan.length => Outcome::Reply(invalid_params(&format!(
            "The Content-Range header names {} byte(s), but the request carried {received} byte(s).",
            plan.length
        ))),
        Ok(plan) => apply_chunk(shared, plan, data),
    };
    deliver(shared, outcome).await
}

fn plan_chunk(
    state: &mut State,
    upload_id: &str,
    headers: &hyper::HeaderMap,
) -> Result<Plan, Reply> {
    let Some(publish_id) = state.tiktok_upload_ids.get(upload_id).cloned() else {
        return Err(api_error(
            StatusCode::NOT_FOUND,
            "invalid_params",
            "The upload URL is invalid.",
        ));
    };
    let Some(upload) = state.tiktok_uploads.get(&publish_id) else {
        return Err(api_error(
            StatusCode::NOT_FOUND,
            "invalid_params",
            "The upload URL is invalid.",
        ));
    };
    let kind = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
    if !kind.as_deref().is_some_and(|k| VIDEO_TYPES.contains(&k)) {
        return Err(invalid_params(
            "Content-Type must be video/mp4, video/quicktime or video/webm.",
        ));
    }
    let range = headers
        .get("content-range")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_content_range);
    let Some((first, last, total)) = range else {
        return Err(invalid_params(
            "Content-Range must be bytes {FIRST_BYTE}-{LAST_BYTE}/{TOTAL_BYTE_LENGTH}.",
        ));
    };
    if total != upload.video_size {
        return Err(invalid_params(&format!(
            "The Content-Range total {total} is not the video_size {}.",
            upload.video_size
        )));
    }
    // Chunks go in order; a chunk already received may be sent again (its answer was lost).
    let index = (0..=upload.chunks.min(upload.total_chunk_count - 1))
        .rev()
        .find(|&i| upload.chunk_range(i) == (first, last));
    let Some(index) = index else {
        let (want_first, want_last) =
            upload.chunk_range(upload.chunks.min(upload.total_chunk_count - 1));
        return Err(api_error(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "invalid_params",
            &format!(
                "The chunk must cover bytes {want_first}-{want_last}/{}.",
                upload.video_size
            ),
        ));
    };
    let mut plan = Plan {
        publish_id,
        first,
        length: last - first + 1,
        index,
        drop_at: None,
        refuse: None,
    };
    if index < upload.chunks {
        return Ok(plan);
    }
    let total = upload.video_size;
    if let Some(code) = take_status_fault(state) {
        plan.refuse = Some(code);
        return Ok(plan);
    }
    let reached = |f: &Fault| matches!(f, Fault::DropUploadAt { fraction } if drop_offset(*fraction, total) <= last + 1);
    if let Some(Fault::DropUploadAt { fraction }) = state.take_fault(reached) {
        plan.drop_at = Some(drop_offset(fraction, total).max(first));
    }
    Ok(plan)
}

/// `bytes first-last/total`.
fn parse_content_range(value: &str) -> Option<(u64, u64, u64)> {
    let rest = value.trim().strip_prefix("bytes")?.trim();
    let (range, total) = rest.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let (first, last, total) = (
        first.trim().parse().ok()?,
        last.trim().parse().ok()?,
        total.trim().parse().ok()?,
    );
    (first <= last && last < total).then_some((first, last, total))
}

fn apply_chunk(shared: &Shared, plan: Plan, data: Vec<u8>) -> Outcome {
    let mut state = shared.lock();
    let Some(upload) = state.tiktok_uploads.get_mut(&plan.publish_id) else {
        return Outcome::Reply(api_error(
            StatusCode::NOT_FOUND,
            "invalid_params",
            "The upload URL is invalid.",
        ));
    };
    if plan.index == upload.chunks {
        upload.bytes.extend_from_slice(&data);
        upload.chunks += 1;
        if upload.complete() {
            let post = TikTokPost {
                publish_id: upload.publish_id.clone(),
                bytes: upload.bytes.clone(),
                direct: upload.direct,
                post_info: upload.post_info.clone(),
                chunk_size: upload.chunk_size,
                total_chunk_count: upload.total_chunk_count,
            };
            state.tiktok_posts.push(post);
            if state
                .take_fault(|f| matches!(f, Fault::HoldCompletion))
                .is_some()
            {
                state.holds_unreported += 1;
                return Outcome::Hold;
            }
            return Outcome::Reply(empty(StatusCode::CREATED));
        }
        return Outcome::Reply(empty(StatusCode::PARTIAL_CONTENT));
    }
    // A chunk sent again: answer as the first time, change nothing.
    let last = plan.index + 1 == upload.total_chunk_count;
    Outcome::Reply(empty(if last {
        StatusCode::CREATED
    } else {
        StatusCode::PARTIAL_CONTENT
    }))
}
