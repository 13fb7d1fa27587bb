//! Where a video goes ([`Destination`], part of a job request) and how far it got there
//! ([`DestinationState`], on the job record). Pure data: the driver that moves a destination
//! through its states lives with the publish step, which owns the job record.
//!
//! ```text
//!  pending ──► uploading (session recorded before the first byte; bytes confirmed grow)
//!     │             │
//!     │             ├──► processing (TikTok: all bytes sent, status polled) ──► published
//!     │             └──► published (platform id and URL recorded)
//!     ├──► deferred until T (quota, upload limit, rate limit, spam risk) ──► pending at T
//!     └──► failed (revoked token, refused metadata): the video is kept; a person acts
//! ```

use serde::{Deserialize, Serialize};

use crate::platform::Platform;
use crate::youtube::Privacy;

/// One place to publish a job's video, as a job request, a channel or the CLI names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    pub platform: Platform,
    /// The connected account's name (`storyreel accounts connect youtube --name main`).
    pub account: String,
    /// Always sent explicitly; `private` unless the request says otherwise, so an autonomous
    /// channel never goes public by surprise.
    #[serde(default)]
    pub privacy: Privacy,
    /// YouTube: publish at this RFC 3339 time (the video is private until then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_at: Option<String>,
    /// YouTube: notify subscribers (YouTube's default is to notify).
    #[serde(default = "yes")]
    pub notify_subscribers: bool,
    /// Declares AI-generated or synthetic content (YouTube `containsSyntheticMedia`, TikTok
    /// `is_aigc`): the narration is synthetic, so true unless the request says otherwise.
    #[serde(default = "yes")]
    pub synthetic_media: bool,
    /// YouTube `selfDeclaredMadeForKids`, always sent.
    #[serde(default)]
    pub made_for_kids: bool,
    /// Hashtags appended to the description (and the TikTok caption), without `#`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hashtags: Vec<String>,
    /// YouTube tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// YouTube category id (default 24, Entertainment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Replaces the description made from the story's opening.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// TikTok: post directly (needs an audited app and the `video.publish` scope) instead of
    /// uploading to the creator's inbox as a draft.
    #[serde(default)]
    pub direct: bool,
}

fn yes() -> bool {
    true
}

impl Destination {
    /// A destination with the defaults.
    pub fn new(platform: Platform, account: &str) -> Destination {
        Destination {
            platform,
            account: account.to_string(),
            privacy: Privacy::Private,
            publish_at: None,
            notify_subscribers: true,
            synthetic_media: true,
            made_for_kids: false,
            hashtags: Vec::new(),
            tags: Vec::new(),
            category: None,
            description: None,
            direct: false,
        }
    }

    /// `youtube:main`: the key of its state on the job record.
    pub fn id(&self) -> String {
        format!("{}:{}", self.platform, self.account)
    }

    /// Parses `PLATFORM:ACCOUNT` (`youtube:main`, `tiktok:brand`).
    pub fn parse(spec: &str) -> Result<Destination, DestinationError> {
        let bad = |why: &str| DestinationError(format!("invalid destination {spec:?} ({why})"));
        let (platform, account) = spec
            .split_once(':')
            .ok_or_else(|| bad("expected PLATFORM:ACCOUNT, e.g. youtube:main"))?;
        let platform: Platform = platform
            .parse()
            .map_err(|_| bad("expected platform youtube or tiktok"))?;
        crate::accounts::check_name(account)
            .map_err(|_| bad("expected an account name of 1 to 64 letters, digits, '-' or '_'"))?;
        Ok(Destination::new(platform, account))
    }

    /// Checks what can be checked before any upload: the account name, `publish_at` (RFC
    /// 3339, YouTube only, private only), hashtags and tags.
    pub fn validate(&self) -> Result<(), DestinationError> {
        let id = self.id();
        crate::accounts::check_name(&self.account)
            .map_err(|e| DestinationError(format!("destination {id}: {e}")))?;
        if let Some(at) = &self.publish_at {
            if self.platform != Platform::YouTube {
                return Err(DestinationError(format!(
                    "destination {id}: publish_at is YouTube's scheduling (expected no publish_at for {})",
                    self.platform
                )));
            }
            if crate::time::parse_rfc3339(at).is_none() {
                return Err(DestinationError(format!(
                    "destination {id}: invalid publish_at {at:?} (expected an RFC 3339 time such as 2026-12-24T18:00:00Z)"
                )));
            }
            if self.privacy != Privacy::Private {
                return Err(DestinationError(format!(
                    "destination {id}: publish_at needs privacy private (YouTube makes the video public at that time; got {})",
                    self.privacy
                )));
            }
        }
        for t in self.hashtags.iter().chain(&self.tags) {
            if t.is_empty() || t.len() > 100 || t.contains(['<', '>', '\n']) {
                return Err(DestinationError(format!(
                    "destination {id}: invalid tag {t:?} (expected 1 to 100 bytes without '<', '>' or line breaks)"
                )));
            }
        }
        if self.hashtags.len() + self.tags.len() > 60 {
            return Err(DestinationError(format!(
                "destination {id}: {} tags and hashtags (expected at most 60)",
                self.hashtags.len() + self.tags.len()
            )));
        }
        Ok(())
    }
}

/// A destination that cannot be used as given.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DestinationError(pub String);

/// Where a destination is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DestinationStatus {
    /// Nothing sent yet.
    #[default]
    Pending,
    /// A session exists; `bytes_confirmed` of `bytes_total` are on the platform.
    Uploading,
    /// TikTok: every byte sent, the platform is processing; its status is polled.
    Processing,
    /// Done: the platform id (and URL) are recorded.
    Published,
    /// Quota or limits: tried again at `deferred_until` by itself.
    Deferred,
    /// Needs a person (reconnect the account, fix the metadata); the video is kept.
    Failed,
}

/// A destination's progress, on the job record (`publish.<platform:account>`). Every write
/// is conditional on `rev` (see `JobStore::put_destination`), so two runs never both move it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DestinationState {
    /// The number of writes so far; a write says which revision it replaces.
    pub rev: u64,
    pub status: DestinationStatus,
    /// What was asked (privacy, scheduling, tags), so a later retry publishes the same way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<Destination>,
    /// YouTube's resumable session URI, or TikTok's upload URL: recorded before the first byte.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// TikTok's publish id (from init).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_id: Option<String>,
    /// When the session was opened (Unix seconds): TikTok upload URLs last an hour.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub session_at: u64,
    #[serde(default)]
    pub bytes_total: u64,
    /// Bytes the platform said it holds.
    #[serde(default)]
    pub bytes_confirmed: u64,
    /// The platform's id: YouTube's video id; TikTok's post id once public (else the
    /// publish id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Unix seconds: a deferred destination is tried again from then on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deferred_until: Option<u64>,
    /// Why it is deferred or failed, readable (never a token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Non-fatal problems, e.g. a thumbnail the channel may not set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Upload sessions opened so far (a second one only after an expired first).
    #[serde(default, skip_serializing_if = "is_zero32")]
    pub sessions: u32,
    /// YouTube: the thumbnail step is behind us (set, or warned about).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub thumbnail_done: bool,
    #[serde(default)]
    pub updated_at: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
fn is_zero32(n: &u32) -> bool {
    *n == 0
}

impl DestinationState {
    /// True when nothing is left to do here without a person or a later time.
    pub fn is_settled(&self) -> bool {
        matches!(
            self.status,
            DestinationStatus::Published | DestinationStatus::Failed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_parse_and_validate() {
        let d = Destination::parse("youtube:main").unwrap();
        assert_eq!(d.id(), "youtube:main");
        assert_eq!(d.privacy, Privacy::Private);
        assert!(d.synthetic_media && !d.made_for_kids && d.notify_subscribers);
        assert!(Destination::parse("tiktok:brand-2").is_ok());
        for bad in [
            "youtube",
            "vimeo:main",
            "youtube:",
            "youtube:a/b",
            "tiktok:a b",
        ] {
            assert!(Destination::parse(bad).is_err(), "{bad}");
        }
        let mut d = Destination::parse("youtube:main").unwrap();
        d.publish_at = Some("2026-12-24T18:00:00Z".into());
        assert!(d.validate().is_ok());
        d.privacy = Privacy::Public;
        assert!(
            d.validate()
                .unwrap_err()
                .to_string()
                .contains("needs privacy private")
        );
        d.privacy = Privacy::Private;
        d.publish_at = Some("tomorrow".into());
        assert!(d.validate().unwrap_err().to_string().contains("RFC 3339"));
        let mut t = Destination::parse("tiktok:main").unwrap();
        t.publish_at = Some("2026-12-24T18:00:00Z".into());
        assert!(t.validate().is_err());
    }

    #[test]
    fn request_json_fills_the_defaults_and_refuses_unknown_fields() {
        let d: Destination =
            serde_json::from_str(r#"{"platform":"youtube","account":"main"}"#).unwrap();
        assert_eq!(d, Destination::new(Platform::YouTube, "main"));
        assert!(
            serde_json::from_str::<Destination>(
                r#"{"platform":"youtube","account":"main","privcy":"public"}"#
            )
            .is_err()
        );
        let state = DestinationState::default();
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(
            serde_json::from_str::<DestinationState>(&json).unwrap(),
            state
        );
    }
}
