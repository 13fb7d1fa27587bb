//! Which platform, and where its endpoints are (overridable by environment, as
//! `AWS_ENDPOINT_URL` is for AWS, so tests and proxies can stand in for the real hosts).

use serde::{Deserialize, Serialize};

/// A platform storyreel publishes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    #[serde(rename = "youtube")]
    YouTube,
    #[serde(rename = "tiktok")]
    TikTok,
}

impl Platform {
    pub const ALL: [Platform; 2] = [Platform::YouTube, Platform::TikTok];

    /// `youtube` or `tiktok`, as destinations and commands spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::YouTube => "youtube",
            Platform::TikTok => "tiktok",
        }
    }

    /// The name people know it by, for messages.
    pub fn display_name(self) -> &'static str {
        match self {
            Platform::YouTube => "YouTube",
            Platform::TikTok => "TikTok",
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown platform name.
#[derive(Debug, thiserror::Error)]
#[error("unknown platform {0:?} (expected youtube or tiktok)")]
pub struct UnknownPlatform(pub String);

impl std::str::FromStr for Platform {
    type Err = UnknownPlatform;
    fn from_str(s: &str) -> Result<Platform, UnknownPlatform> {
        match s.trim().to_ascii_lowercase().as_str() {
            "youtube" => Ok(Platform::YouTube),
            "tiktok" => Ok(Platform::TikTok),
            _ => Err(UnknownPlatform(s.to_string())),
        }
    }
}

/// Google's token endpoint (`STORYREEL_GOOGLE_TOKEN_URL`).
pub const GOOGLE_TOKEN_URL_ENV: &str = "STORYREEL_GOOGLE_TOKEN_URL";
/// Google's consent page (`STORYREEL_GOOGLE_AUTH_URL`).
pub const GOOGLE_AUTH_URL_ENV: &str = "STORYREEL_GOOGLE_AUTH_URL";
/// The root under which `upload/youtube/v3/...` and `youtube/v3/...` live.
pub const YOUTUBE_URL_ENV: &str = "STORYREEL_YOUTUBE_URL";
/// The root of TikTok's Open API (`v2/oauth/token/`, `v2/post/publish/...`).
pub const TIKTOK_URL_ENV: &str = "STORYREEL_TIKTOK_URL";
/// TikTok's consent page (`STORYREEL_TIKTOK_AUTH_URL`).
pub const TIKTOK_AUTH_URL_ENV: &str = "STORYREEL_TIKTOK_AUTH_URL";

/// Where each platform's endpoints are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Google's OAuth 2.0 token endpoint (a full URL).
    pub google_token: String,
    /// Google's authorization (consent) endpoint (a full URL).
    pub google_auth: String,
    /// The YouTube Data API root, ending in `/`.
    pub youtube: String,
    /// TikTok's Open API root, ending in `/`.
    pub tiktok: String,
    /// TikTok's authorization (consent) page (a full URL).
    pub tiktok_auth: String,
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints {
            google_token: "https://oauth2.googleapis.com/token".into(),
            google_auth: "https://accounts.google.com/o/oauth2/v2/auth".into(),
            youtube: "https://www.googleapis.com/".into(),
            tiktok: "https://open.tiktokapis.com/".into(),
            tiktok_auth: "https://www.tiktok.com/v2/auth/authorize/".into(),
        }
    }
}

impl Endpoints {
    /// The defaults, each replaced by its environment variable when set.
    pub fn from_env() -> Endpoints {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// As [`Endpoints::from_env`], over any lookup (tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Endpoints {
        let d = Endpoints::default();
        let pick = |k: &str, default: String| {
            get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .unwrap_or(default)
        };
        let root = |s: String| if s.ends_with('/') { s } else { s + "/" };
        Endpoints {
            google_token: pick(GOOGLE_TOKEN_URL_ENV, d.google_token),
            google_auth: pick(GOOGLE_AUTH_URL_ENV, d.google_auth),
            youtube: root(pick(YOUTUBE_URL_ENV, d.youtube)),
            tiktok: root(pick(TIKTOK_URL_ENV, d.tiktok)),
            tiktok_auth: pick(TIKTOK_AUTH_URL_ENV, d.tiktok_auth),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse_and_endpoints_follow_the_environment() {
        assert_eq!("YouTube".parse::<Platform>().unwrap(), Platform::YouTube);
        assert_eq!("tiktok".parse::<Platform>().unwrap(), Platform::TikTok);
        assert!("vimeo".parse::<Platform>().is_err());
        let e = Endpoints::from_lookup(|k| {
            (k == YOUTUBE_URL_ENV).then(|| "http://127.0.0.1:9/".to_string())
        });
        assert_eq!(e.youtube, "http://127.0.0.1:9/");
        assert_eq!(e.tiktok, "https://open.tiktokapis.com/");
        let e = Endpoints::from_lookup(|k| (k == TIKTOK_URL_ENV).then(|| "http://h:1".into()));
        assert_eq!(e.tiktok, "http://h:1/");
    }
}
