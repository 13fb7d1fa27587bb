//! Connected accounts: a platform account's OAuth client and refresh token, kept by a
//! [`TokenStore`] (a 0600 file on one machine, an SSM SecureString in the cloud). A token is
//! never printed, logged, or written into a job record, an event or an error message.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::platform::Platform;
use crate::secret::Secret;

/// One connected account: everything needed to get an access token without a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub platform: Platform,
    /// The user's name for it (`main`), unique per platform.
    pub name: String,
    /// The OAuth client (Google: client id; TikTok: client key).
    pub client_id: String,
    pub client_secret: Secret,
    pub refresh_token: Secret,
    /// Scopes granted, space-separated.
    #[serde(default)]
    pub scope: String,
    /// TikTok's user id for this app (absent for YouTube).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_id: Option<String>,
    /// Unix seconds when it was connected.
    #[serde(default)]
    pub connected_at: u64,
}

/// Why the token store could not be read or written. Messages name the store and the
/// account, never a token.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("no {platform} account named {name:?} in {store} (connect it with `storyreel accounts connect {platform} --name {name}`)")]
    NotConnected {
        platform: Platform,
        name: String,
        store: String,
    },
    #[error("invalid account name {0:?} (expected 1 to 64 letters, digits, '-' or '_')")]
    InvalidName(String),
    #[error("{op} {store} failed")]
    Io {
        op: &'static str,
        store: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Checks an account name: 1 to 64 of `[A-Za-z0-9_-]` (it becomes part of a file key or an
/// SSM parameter name).
pub fn check_name(name: &str) -> Result<(), AccountError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(AccountError::InvalidName(name.to_string()))
    }
}

/// Where connected accounts live.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// A name for messages: a file path or `SSM /storyreel/accounts/`.
    fn describe(&self) -> String;
    async fn get(&self, platform: Platform, name: &str) -> Result<Option<Account>, AccountError>;
    /// Creates or replaces the account (TikTok rotates refresh tokens: publishing stores the
    /// new one).
    async fn put(&self, account: &Account) -> Result<(), AccountError>;
    /// Forgets the account; false when there was none.
    async fn remove(&self, platform: Platform, name: &str) -> Result<bool, AccountError>;
    async fn list(&self) -> Result<Vec<Account>, AccountError>;
}
