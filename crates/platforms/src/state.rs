//! What the platforms remember between requests: clients, grants, tokens, upload sessions, queued faults.

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::{Fault, Platform, Recorded, TikTokPost, YouTubeVideo};

/// The state shared by the server thread and the test's handle.
pub(crate) struct Shared {
    pub base_url: String,
    pub state: Mutex<State>,
    /// Signalled whenever a completed upload starts being held (`Fault::HoldCompletion`).
    pub held: Condvar,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panic in a test thread must not poison the platforms for the others.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A grant a user gave a client: what a refresh token stands for.
#[derive(Clone)]
pub(crate) struct Grant {
    pub platform: Platform,
    pub scope: String,
    /// TikTok's user id for the grant (TikTok returns it with every token).
    pub open_id: String,
    /// Revoked by the user (the test): its access tokens stop working too.
    pub revoked: bool,
    /// (TikTok) replaced by a newer refresh token: it refreshes no more, its access tokens live on.
    pub rotated: bool,
}

pub(crate) struct AccessToken {
    pub platform: Platform,
    pub scope: String,
    /// The refresh token it was minted from: revoking the grant ends its access tokens too.
    pub refresh_token: String,
}

/// An authorization code from a consent page, waiting for the token endpoint.
pub(crate) struct AuthCode {
    pub platform: Platform,
    pub redirect_uri: String,
    pub scope: String,
    /// `(challenge, method)` as sent to the consent page.
    pub challenge: Option<(String, String)>,
}

pub(crate) struct YouTubeSession {
    pub query: String,
    pub resource: serde_json::Value,
    /// `X-Upload-Content-Length`, or the total a `Content-Range` first named.
    pub total: Option<u64>,
    pub bytes: Vec<u8>,
    pub expired: bool,
    pub upload_requests: u32,
    /// Index into `State::youtube_videos` once complete.
    pub video: Option<usize>,
}

pub(crate) struct TikTokUpload {
    pub publish_id: String,
    pub direct: bool,
    pub post_info: Option<serde_json::Value>,
    pub video_size: u64,
    pub chunk_size: u64,
    pub total_chunk_count: u64,
    pub bytes: Vec<u8>,
    /// Chunks received so far.
    pub chunks: u64,
    /// Status fetches answered since the upload completed (the first says PROCESSING_DOWNLOAD).
    pub fetches_after_complete: u32,
    /// Set by a status fault with HTTP 200: the post ends FAILED with this reason.
    pub fail_reason: Option<String>,
}

impl TikTokUpload {
    pub fn complete(&self) -> bool {
        self.chunks == self.total_chunk_count
    }

    /// The byte range `[first, last]` chunk `index` must cover: the last chunk takes the trailing bytes.
    pub fn chunk_range(&self, index: u64) -> (u64, u64) {
        let first = index * self.chunk_size;
        let last = if index + 1 == self.total_chunk_count {
            self.video_size - 1
        } else {
            first + self.chunk_size - 1
        };
        (first, last)
    }
}

#[derive(Default)]
pub(crate) struct State {
    pub grants: HashMap<String, Grant>,
    pub access: HashMap<String, AccessToken>,
    pub codes: HashMap<String, AuthCode>,
    pub issued: Vec<String>,
    pub faults: VecDeque<Fault>,
    pub requests: Vec<Recorded>,
    pub youtube_sessions: HashMap<String, YouTubeSession>,
    pub youtube_videos: Vec<YouTubeVideo>,
    /// publish_id → upload; `tiktok_upload_ids` maps the upload URL's id to the publish_id.
    pub tiktok_uploads: HashMap<String, TikTokUpload>,
    pub tiktok_upload_ids: HashMap<String, String>,
    pub tiktok_posts: Vec<TikTokPost>,
    /// Holds started and not yet reported by `wait_held`.
    pub holds_unreported: u32,
}

impl State {
    /// Removes and returns the first queued fault `pick` accepts.
    pub fn take_fault(&mut self, pick: impl Fn(&Fault) -> bool) -> Option<Fault> {
        let i = self.faults.iter().position(pick)?;
        self.faults.remove(i)
    }

    /// A new refresh token for a grant of `scope`.
    pub fn new_grant(&mut self, platform: Platform, scope: &str, open_id: String) -> String {
        let token = match platform {
            Platform::YouTube => format!("1//storyreel-rt-{}", random_token(24)),
            Platform::TikTok => format!("rft.storyreel{}", random_token(24)),
        };
        self.grants.insert(
            token.clone(),
            Grant {
                platform,
                scope: scope.to_owned(),
                open_id,
                revoked: false,
                rotated: false,
            },
        );
        self.issued.push(token.clone());
        token
    }

    /// A new access token for the grant behind `refresh_token`.
    pub fn new_access_token(&mut self, refresh_token: &str) -> Option<String> {
        let grant = self.grants.get(refresh_token)?.clone();
        let token = match grant.platform {
            Platform::YouTube => format!("ya29.storyreel-at-{}", random_token(24)),
            Platform::TikTok => format!("act.storyreel{}", random_token(24)),
        };
        self.access.insert(
            token.clone(),
            AccessToken {
                platform: grant.platform,
                scope: grant.scope,
                refresh_token: refresh_token.to_owned(),
            },
        );
        self.issued.push(token.clone());
        Some(token)
    }

    /// The live access token `token` of `platform`, if it is one.
    pub fn access_token(&self, platform: Platform, token: &str) -> Option<&AccessToken> {
        let access = self.access.get(token)?;
        let grant = self.grants.get(&access.refresh_token)?;
        (access.platform == platform && !grant.revoked).then_some(access)
    }
}

/// `n` random bytes, base64url without padding: unguessable ids and tokens.
pub(crate) fn random_token(n: usize) -> String {
    let mut buf = vec![0u8; n];
    fill_random(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// Random decimal digits (TikTok's ids and log ids are numeric-looking).
pub(crate) fn random_digits(n: usize) -> String {
    let mut buf = vec![0u8; n];
    fill_random(&mut buf);
    buf.iter().map(|b| char::from(b'0' + b % 10)).collect()
}

fn fill_random(buf: &mut [u8]) {
    if getrandom::fill(buf).is_err() {
        // No OS randomness is no reason to fail a test: fall back to the clock.
        let mut x = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15);
        for b in buf {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
    }
}
