//! Loopback servers that speak the platforms' documented wire protocols (tests only).
//!
//! One HTTP/1.1 server on `127.0.0.1` plays three services, as their public documentation
//! describes them, error bodies included:
//!
//! - **Google OAuth 2.0** for installed apps: the consent page (`o/oauth2/v2/auth`, consent is
//!   automatic, loopback redirect, PKCE `S256` or `plain`) and the token endpoint (`token`:
//!   `authorization_code` and `refresh_token` grants; `invalid_grant`, `invalid_client`).
//! - **YouTube Data API v3**: `videos.insert` over the resumable upload protocol
//!   (`upload/youtube/v3/videos`: session, chunked `PUT`s, `308` with `Range`, the
//!   `Content-Range: bytes */N` status query, `404` for an expired session), `thumbnails.set`
//!   and `videos.list` (`youtube/v3/videos`).
//! - **TikTok** OAuth v2 (`v2/auth/authorize/`, `v2/oauth/token/` with rotating refresh
//!   tokens, desktop PKCE with a *hex* SHA-256 challenge, as TikTok documents) and the Content
//!   Posting API (`creator_info/query`, inbox and direct-post `init`, chunked `PUT`s to the
//!   upload URL, `status/fetch`).
//!
//! Faults ([`Fault`]) are queued with [`Platforms::inject`] and each fires once. What the
//! server remembers (completed videos, every request, every token) is there for assertions.
//!
//! Things the real services do that this one does not: access tokens never expire (a test
//! cannot wait an hour), rate limits fire only when injected, uploads are not transcoded.

// A reply is the natural error of a request handler here; they run once per request.
#![allow(clippy::result_large_err)]

mod google;
mod server;
mod state;
mod tiktok;
mod youtube;

use std::net::TcpListener;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use state::{Shared, State};

/// The OAuth client registered with Google (a "Desktop app" client). Other ids get `invalid_client`.
pub const GOOGLE_CLIENT_ID: &str = "424242424242-storyreeltest.apps.googleusercontent.com";
/// The secret of [`GOOGLE_CLIENT_ID`] (Google issues desktop clients a secret that is not secret).
pub const GOOGLE_CLIENT_SECRET: &str = "GOCSPX-storyreel-test-secret";
/// The client key of the app registered with TikTok for Developers.
pub const TIKTOK_CLIENT_KEY: &str = "awstoryreeltest0001";
/// The client secret of [`TIKTOK_CLIENT_KEY`].
pub const TIKTOK_CLIENT_SECRET: &str = "storyreel-tiktok-test-secret";

/// The scope [`Platforms::grant_refresh_token`] grants on Google (space-separated, as Google
/// reports scopes): uploading, and reading the channel's videos back.
pub const GOOGLE_GRANTED_SCOPE: &str = "https://www.googleapis.com/auth/youtube.upload https://www.googleapis.com/auth/youtube.readonly";
/// The scope [`Platforms::grant_refresh_token`] grants on TikTok (comma-separated, as TikTok reports scopes).
pub const TIKTOK_GRANTED_SCOPE: &str = "user.info.basic,video.upload,video.publish";

/// Which platform a token belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Platform {
    YouTube,
    TikTok,
}

/// A video whose resumable upload the server completed.
#[derive(Clone, Debug)]
pub struct YouTubeVideo {
    /// The video id YouTube assigned (11 characters).
    pub id: String,
    /// Every byte of the video.
    pub bytes: Vec<u8>,
    /// The video resource as the client POSTed it to `videos.insert` (`snippet`, `status`, ...).
    pub resource: serde_json::Value,
    /// The query string of the `videos.insert` POST, e.g. `uploadType=resumable&part=snippet,status&notifySubscribers=false`.
    pub query: String,
    /// The image a `thumbnails.set` stored for this video, the latest if several.
    pub thumbnail: Option<Vec<u8>>,
    /// How many `PUT`s carrying bytes the session received (status queries not counted,
    /// interrupted and refused ones counted).
    pub upload_requests: u32,
}

/// A TikTok video whose upload the server completed (inbox draft or direct post).
#[derive(Clone, Debug)]
pub struct TikTokPost {
    pub publish_id: String,
    pub bytes: Vec<u8>,
    /// Direct post (`/v2/post/publish/video/init/`) rather than an inbox draft.
    pub direct: bool,
    /// The `post_info` of a direct post, as sent.
    pub post_info: Option<serde_json::Value>,
    pub chunk_size: u64,
    pub total_chunk_count: u64,
}

/// One request as the server received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// Path and query, e.g. `/upload/youtube/v3/videos?uploadType=resumable&part=snippet,status`.
    pub path_and_query: String,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body. Media bodies (upload `PUT`s, thumbnails) keep only their first 1 KiB, to save
    /// memory; the whole media is in [`YouTubeVideo::bytes`] / [`TikTokPost::bytes`].
    pub body: Vec<u8>,
}

/// A fault to inject: each fires once, as described, and is then used up.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// The next upload PUT (YouTube session or TikTok upload URL) that carries the session's
    /// byte at `fraction` of the video's total: once the session has received that many bytes,
    /// the server closes the connection without answering. YouTube persists what it received
    /// rounded DOWN to a multiple of 256 KiB (so a client must ask the session what it has, not
    /// assume); TikTok keeps nothing of an interrupted chunk. A PUT that ends before that byte
    /// leaves the fault armed.
    DropUploadAt { fraction: f64 },
    /// The next `times` upload PUTs carrying bytes answer `status` (e.g. 503) with the
    /// platform's error body and persist nothing of that request. Status queries are not affected.
    UploadStatus { status: u16, times: u32 },
    /// Every YouTube upload session created so far answers 404 from now on (expired).
    ExpireSessions,
    /// The next `videos.insert` (initial POST) is refused with Google's error body: reason
    /// `quotaExceeded` (403, domain `youtube.quota`), `uploadLimitExceeded` (400, domain
    /// `youtube.video`), `rateLimitExceeded`/`userRateLimitExceeded` (403, domain `usageLimits`);
    /// any other reason answers 400 in domain `youtube.video`.
    YouTubeInsert { reason: &'static str },
    /// The next `thumbnails.set` answers 403 reason `forbidden` (the channel may not set custom thumbnails).
    ThumbnailForbidden,
    /// The next TikTok call to `endpoint` (`"inbox_init"`, `"direct_init"`, `"creator_info"`,
    /// `"status"`, `"token"`) fails with HTTP `status` and `error.code` = `code` (e.g. 403
    /// `spam_risk_too_many_posts`, 429 `rate_limit_exceeded`). For `"status"` with `status`
    /// 200 the call succeeds and the post is reported `FAILED` with `fail_reason` = `code`
    /// (e.g. `file_format_check_failed`), from then on.
    TikTok {
        endpoint: &'static str,
        status: u16,
        code: &'static str,
    },
    /// The next upload PUT that completes a video: the server stores and counts the video,
    /// then holds the response (does not answer) until the client disconnects or the server
    /// stops; [`Platforms::wait_held`] reports it.
    HoldCompletion,
}

/// The loopback server. It runs on its own thread with its own tokio runtime, so sync and
/// async tests can both use it, and stops when dropped.
pub struct Platforms {
    shared: Arc<Shared>,
    port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Platforms {
    /// Starts the server on `127.0.0.1:<free port>`.
    ///
    /// # Panics
    /// If no loopback port can be bound or the runtime cannot start (test support: fail loudly).
    pub fn start() -> Platforms {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let shared = Arc::new(Shared {
            base_url: format!("http://127.0.0.1:{port}/"),
            state: Mutex::new(State::default()),
            held: Condvar::new(),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let thread = std::thread::Builder::new()
            .name(format!("platforms:{port}"))
            .spawn({
                let shared = shared.clone();
                move || runtime.block_on(server::serve(listener, shared, stopped))
            })
            .expect("spawn the server thread");
        Platforms {
            shared,
            port,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every endpoint variable the clients read, pointed at this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let base = self.base_url();
        vec![
            ("STORYREEL_GOOGLE_TOKEN_URL", format!("{base}token")),
            (
                "STORYREEL_GOOGLE_AUTH_URL",
                format!("{base}o/oauth2/v2/auth"),
            ),
            ("STORYREEL_YOUTUBE_URL", base.clone()),
            ("STORYREEL_TIKTOK_URL", base.clone()),
            (
                "STORYREEL_TIKTOK_AUTH_URL",
                format!("{base}v2/auth/authorize/"),
            ),
        ]
    }

    /// A refresh token valid for the registered client of `platform`, as if a user had
    /// consented ([`GOOGLE_GRANTED_SCOPE`], [`TIKTOK_GRANTED_SCOPE`]).
    pub fn grant_refresh_token(&self, platform: Platform) -> String {
        let mut state = self.shared.lock();
        let scope = match platform {
            Platform::YouTube => GOOGLE_GRANTED_SCOPE,
            Platform::TikTok => TIKTOK_GRANTED_SCOPE,
        };
        let open_id = tiktok::new_open_id();
        state.new_grant(platform, scope, open_id)
    }

    /// From now on this refresh token gets `invalid_grant`, and the access tokens minted from
    /// it are refused too (as when a user removes the app's access).
    pub fn revoke(&self, refresh_token: &str) {
        if let Some(grant) = self.shared.lock().grants.get_mut(refresh_token) {
            grant.revoked = true;
        }
    }

    /// Queues a fault; each fires as described and then is used up.
    pub fn inject(&self, fault: Fault) {
        let mut state = self.shared.lock();
        if fault == Fault::ExpireSessions {
            // Acts at once, on the sessions that exist now.
            for session in state.youtube_sessions.values_mut() {
                session.expired = true;
            }
            return;
        }
        state.faults.push_back(fault);
    }

    /// Completed YouTube uploads, in the order they completed.
    pub fn youtube_videos(&self) -> Vec<YouTubeVideo> {
        self.shared.lock().youtube_videos.clone()
    }

    /// Completed TikTok uploads, in the order they completed.
    pub fn tiktok_posts(&self) -> Vec<TikTokPost> {
        self.shared.lock().tiktok_posts.clone()
    }

    /// Every request received, in order (see [`Recorded::body`] for media bodies).
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().requests.clone()
    }

    /// Every access and refresh token the server ever issued or accepted, so tests can grep
    /// logs, job records and errors for them.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.shared.lock().issued.clone()
    }

    /// Blocks until an upload the server completed is being held ([`Fault::HoldCompletion`]),
    /// or `timeout` passes; returns whether it happened. Each hold is reported once.
    pub fn wait_held(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        loop {
            if state.holds_unreported > 0 {
                state.holds_unreported -= 1;
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = self
                .shared
                .held
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Drop for Platforms {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
