//! [`Secret`]: a token or client secret that never shows itself in logs, errors or `Debug`.

use serde::{Deserialize, Serialize};

/// A secret string (refresh token, access token, client secret, PKCE verifier). It serialises
/// as the plain string, because token stores must keep it, but `Debug` and `Display` print
/// `[redacted]`, so it cannot leak through a log line or an error message by accident.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints_itself() {
        let s = Secret::new("1//refresh-token-value");
        assert_eq!(format!("{s} {s:?}"), "[redacted] [redacted]");
        assert_eq!(s.expose(), "1//refresh-token-value");
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            "\"1//refresh-token-value\""
        );
    }
}
