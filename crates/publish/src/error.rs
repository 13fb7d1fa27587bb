//! [`PublishError`]: why a platform call failed, sorted by what the caller should do next.
//! Messages name the platform and the cause; they never contain a token.

use crate::platform::Platform;

/// What a failure means for the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Quota, upload limit, rate limit, spam risk: the video is kept and uploaded at `until`.
    Deferred,
    /// The refresh token was revoked or expired (`invalid_grant`): a person must reconnect.
    Reconnect,
    /// 5xx, a dropped connection, a timeout: the same call may succeed soon.
    Transient,
    /// The platform refused the request itself (bad metadata, forbidden, too large).
    Rejected,
    /// The upload session is gone (404/410 on the session URI, an expired TikTok upload URL).
    SessionExpired,
    /// The platform answered something its documentation does not allow.
    Protocol,
}

/// A failed platform call.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Come back later: `reason` is the platform's own code (`quotaExceeded`,
    /// `uploadLimitExceeded`, `rateLimitExceeded`, `spam_risk_too_many_posts`, ...), `until`
    /// Unix seconds when a retry may succeed.
    #[error("{} deferred the upload ({reason}: {message}); retry at unix time {until}", .platform.display_name())]
    Deferred {
        platform: Platform,
        reason: String,
        message: String,
        until: u64,
    },
    /// The refresh token no longer works.
    #[error("{} refused the account's refresh token ({message}): the account must be connected again", .platform.display_name())]
    Reconnect { platform: Platform, message: String },
    /// Worth retrying the same call.
    #[error("{} is unavailable during {what}: {message}", .platform.display_name())]
    Transient {
        platform: Platform,
        what: String,
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The request was refused for what it is: `reason` is the platform's code
    /// (`invalidTitle`, `forbidden`, `privacy_level_option_mismatch`, ...).
    #[error("{} refused {what} with HTTP {status} {reason}: {message}", .platform.display_name())]
    Rejected {
        platform: Platform,
        what: String,
        status: u16,
        reason: String,
        message: String,
    },
    /// The upload session (or TikTok upload URL) expired.
    #[error("{} upload session expired ({message})", .platform.display_name())]
    SessionExpired { platform: Platform, message: String },
    /// An answer outside the documented protocol.
    #[error("{} answered {what} outside its documented protocol: {message}", .platform.display_name())]
    Protocol {
        platform: Platform,
        what: String,
        message: String,
    },
}

impl PublishError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            PublishError::Deferred { .. } => ErrorKind::Deferred,
            PublishError::Reconnect { .. } => ErrorKind::Reconnect,
            PublishError::Transient { .. } => ErrorKind::Transient,
            PublishError::Rejected { .. } => ErrorKind::Rejected,
            PublishError::SessionExpired { .. } => ErrorKind::SessionExpired,
            PublishError::Protocol { .. } => ErrorKind::Protocol,
        }
    }

    pub fn platform(&self) -> Platform {
        match self {
            PublishError::Deferred { platform, .. }
            | PublishError::Reconnect { platform, .. }
            | PublishError::Transient { platform, .. }
            | PublishError::Rejected { platform, .. }
            | PublishError::SessionExpired { platform, .. }
            | PublishError::Protocol { platform, .. } => *platform,
        }
    }
}
