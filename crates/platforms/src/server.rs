//! The HTTP side: accepting connections, reading requests, routing, building responses.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use crate::Recorded;
use crate::state::Shared;
use crate::{google, tiktok, youtube};

/// Media bodies keep this much in [`Recorded::body`].
pub(crate) const RECORDED_MEDIA: usize = 1024;
/// The most a JSON or form body may hold.
const MAX_SMALL_BODY: usize = 1 << 20;

pub(crate) type Reply = Response<Full<Bytes>>;

/// Returned instead of a response to close the connection without answering (hyper drops it).
#[derive(Debug)]
pub(crate) struct Abort;

impl std::fmt::Display for Abort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection closed by an injected fault")
    }
}

impl std::error::Error for Abort {}

pub(crate) async fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let shared = shared.clone();
                        async move { route(shared, req).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
}

/// A request whose body has been read whole.
pub(crate) struct Req {
    pub method: hyper::Method,
    pub path: String,
    pub query: String,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The query parameters, decoded; the first of repeated names wins.
    pub fn query_param(&self, name: &str) -> Option<String> {
        query_param(&self.query, name)
    }

    /// The bearer token of the `Authorization` header.
    pub fn bearer(&self) -> Option<&str> {
        bearer(&self.headers)
    }

    /// The body as `application/x-www-form-urlencoded` pairs.
    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }
}

pub(crate) fn query_param(query: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

pub(crate) fn bearer(headers: &hyper::HeaderMap) -> Option<&str> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The first value of `name` in form `pairs`.
pub(crate) fn form_value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

async fn route(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Reply, Abort> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    // Upload PUTs stream their body (faults act mid-body) and record themselves.
    if method == hyper::Method::PUT {
        if path == "/upload/youtube/v3/videos" {
            return youtube::upload_put(&shared, req).await;
        }
        if let Some(id) = path.strip_prefix("/tiktok-upload/") {
            let id = id.to_owned();
            return tiktok::upload_put(&shared, req, &id).await;
        }
    }
    let limit = if path == "/upload/youtube/v3/thumbnails/set" {
        youtube::MAX_THUMBNAIL + 1
    } else {
        MAX_SMALL_BODY
    };
    let (parts, body) = req.into_parts();
    let body = read_limited(body, limit).await;
    // The metadata of videos.insert is kept whole; a thumbnail is media.
    let media = path == "/upload/youtube/v3/thumbnails/set";
    record(&shared, &parts, body.as_deref().unwrap_or_default(), media);
    let Some(body) = body else {
        return Ok(too_large(&path));
    };
    let req = Req {
        method: parts.method,
        path,
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: parts.headers,
        body,
    };
    use hyper::Method as M;
    Ok(match (req.method.clone(), req.path.as_str()) {
        (M::GET, "/o/oauth2/v2/auth") => google::auth(&shared, &req),
        (M::POST, "/token") => google::token(&shared, &req),
        (M::POST, "/upload/youtube/v3/videos") => youtube::insert(&shared, &req),
        (M::POST, "/upload/youtube/v3/thumbnails/set") => youtube::thumbnails_set(&shared, &req),
        (M::GET, "/youtube/v3/videos") => youtube::list(&shared, &req),
        (M::GET, "/v2/auth/authorize/") => tiktok::authorize(&shared, &req),
        (M::POST, "/v2/oauth/token/") => tiktok::token(&shared, &req),
        (M::POST, "/v2/post/publish/creator_info/query/") => tiktok::creator_info(&shared, &req),
        (M::POST, "/v2/post/publish/inbox/video/init/") => tiktok::init(&shared, &req, false),
        (M::POST, "/v2/post/publish/video/init/") => tiktok::init(&shared, &req, true),
        (M::POST, "/v2/post/publish/status/fetch/") => tiktok::status_fetch(&shared, &req),
        (_, path) if known_path(path) => text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed"),
        _ => text(StatusCode::NOT_FOUND, "Not Found"),
    })
}

fn known_path(path: &str) -> bool {
    [
        "/o/oauth2/v2/auth",
        "/token",
        "/upload/youtube/v3/videos",
        "/upload/youtube/v3/thumbnails/set",
        "/youtube/v3/videos",
        "/v2/auth/authorize/",
        "/v2/oauth/token/",
        "/v2/post/publish/creator_info/query/",
        "/v2/post/publish/inbox/video/init/",
        "/v2/post/publish/video/init/",
        "/v2/post/publish/status/fetch/",
    ]
    .contains(&path)
        || path.starts_with("/tiktok-upload/")
}

fn too_large(path: &str) -> Reply {
    if path.starts_with("/upload/") {
        youtube::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "global",
            "uploadTooLarge",
            &format!("Media larger than {} bytes", youtube::MAX_THUMBNAIL),
        )
    } else {
        text(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large")
    }
}

/// The whole body, or `None` when it exceeds `limit` bytes or breaks off.
async fn read_limited(mut body: Incoming, limit: usize) -> Option<Bytes> {
    let mut buf = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.ok()?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return None;
            }
            buf.extend_from_slice(&data);
        }
    }
    Some(Bytes::from(buf))
}

/// Appends a request to the record; media bodies keep their first [`RECORDED_MEDIA`] bytes.
pub(crate) fn record(
    shared: &Shared,
    parts: &hyper::http::request::Parts,
    body: &[u8],
    media: bool,
) {
    let keep = if media {
        body.len().min(RECORDED_MEDIA)
    } else {
        body.len()
    };
    let recorded = Recorded {
        method: parts.method.to_string(),
        path_and_query: parts
            .uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_else(|| parts.uri.path().to_owned()),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body[..keep].to_vec(),
    };
    shared.lock().requests.push(recorded);
}

pub(crate) fn json(status: StatusCode, value: &serde_json::Value) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::from(value.to_string())));
    *reply.status_mut() = status;
    set(
        &mut reply,
        "content-type",
        "application/json; charset=UTF-8",
    );
    reply
}

pub(crate) fn text(status: StatusCode, body: &str) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::from(body.to_owned())));
    *reply.status_mut() = status;
    set(&mut reply, "content-type", "text/plain; charset=utf-8");
    reply
}

pub(crate) fn html(status: StatusCode, body: &str) -> Reply {
    let mut reply = text(status, body);
    set(&mut reply, "content-type", "text/html; charset=utf-8");
    reply
}

pub(crate) fn empty(status: StatusCode) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::new()));
    *reply.status_mut() = status;
    reply
}

pub(crate) fn redirect(location: &str) -> Reply {
    let mut reply = empty(StatusCode::FOUND);
    set(&mut reply, "location", location);
    reply
}

/// Sets a header; values that are not valid header text are skipped (never panics).
pub(crate) fn set(reply: &mut Reply, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        reply
            .headers_mut()
            .insert(HeaderName::from_static(name), value);
    }
}

/// A status code from a number, 500 for nonsense.
pub(crate) fn status_code(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// How an upload `PUT` ends.
pub(crate) enum Outcome {
    Reply(Reply),
    /// Close the connection without answering (the drop fault).
    Close,
    /// Never answer (`Fault::HoldCompletion`; already counted in `State::holds_unreported`).
    Hold,
}

pub(crate) async fn deliver(shared: &Shared, outcome: Outcome) -> Result<Reply, Abort> {
    match outcome {
        Outcome::Reply(reply) => Ok(reply),
        Outcome::Close => Err(Abort),
        Outcome::Hold => {
            shared.held.notify_all();
            // Hyper drops this future when the client disconnects; the runtime, when the server stops.
            std::future::pending::<()>().await;
            Err(Abort)
        }
    }
}
