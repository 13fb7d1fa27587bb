//! Connected accounts in SSM Parameter Store ([`SsmTokens`]): one SecureString parameter per
//! account, `{prefix}{platform}/{name}`, holding the account's JSON. This is the token store of
//! the deployed publish function; `storyreel accounts ... --ssm` writes it from a laptop.
//!
//! Errors name the parameter and the service's error code, never a parameter's value.

use async_trait::async_trait;
use aws_sdk_ssm::Client;
use aws_sdk_ssm::error::ProvideErrorMetadata;
use aws_sdk_ssm::types::ParameterType;
use storyreel_publish::accounts::{
    Account, AccountError, TokenStore, account_from_json, check_name,
};
use storyreel_publish::platform::Platform;

/// Environment variable with the parameters' prefix.
pub const PREFIX_ENV: &str = "STORYREEL_ACCOUNTS_SSM_PREFIX";
/// The prefix when [`PREFIX_ENV`] is unset.
pub const DEFAULT_PREFIX: &str = "/storyreel/accounts/";

/// Most parameters asked for per `GetParametersByPath` page (the API's maximum).
const PAGE: i32 = 10;

/// An SSM call failed: the operation, the service's code and HTTP status, no message (a
/// validation message may quote the value sent).
#[derive(Debug, thiserror::Error)]
#[error("{code}{}", .status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
pub struct SsmFailure {
    pub code: String,
    pub status: Option<u16>,
}

impl SsmFailure {
    fn of<E: ProvideErrorMetadata>(
        e: &aws_sdk_ssm::error::SdkError<E, aws_sdk_ssm::config::http::HttpResponse>,
    ) -> SsmFailure {
        use aws_sdk_ssm::error::SdkError;
        let code = match e {
            SdkError::TimeoutError(_) => "timeout".to_string(),
            SdkError::DispatchFailure(_) => "connection failed".to_string(),
            _ => e.code().unwrap_or("unknown error").to_string(),
        };
        SsmFailure {
            code,
            status: e.raw_response().map(|r| r.status().as_u16()),
        }
    }
}

/// Accounts as SecureString parameters under a prefix.
pub struct SsmTokens {
    client: Client,
    prefix: String,
}

impl SsmTokens {
    /// Parameters under `prefix` (made to start and end with `/`).
    pub fn new(conf: &aws_config::SdkConfig, prefix: &str) -> SsmTokens {
        let config = aws_sdk_ssm::config::Builder::from(conf)
            .retry_config(super::retry_config())
            .build();
        let trimmed = prefix.trim().trim_matches('/');
        let prefix = if trimmed.is_empty() {
            "/".to_string()
        } else {
            format!("/{trimmed}/")
        };
        SsmTokens {
            client: Client::from_conf(config),
            prefix,
        }
    }

    /// Parameters under `$STORYREEL_ACCOUNTS_SSM_PREFIX`, else [`DEFAULT_PREFIX`].
    pub fn from_env(conf: &aws_config::SdkConfig) -> SsmTokens {
        let prefix = std::env::var(PREFIX_ENV)
            .ok()
            .filter(|p| !p.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_PREFIX.to_string());
        SsmTokens::new(conf, &prefix)
    }

    /// `{prefix}{platform}/{name}`.
    pub fn parameter(&self, platform: Platform, name: &str) -> String {
        format!("{}{platform}/{name}", self.prefix)
    }

    fn error(
        op: &'static str,
        parameter: &str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> AccountError {
        AccountError::Io {
            op,
            store: format!("SSM parameter {parameter}"),
            source: Box::new(source),
        }
    }

    /// An account from a parameter's value, checked against the parameter's name.
    fn parse(&self, parameter: &str, value: &str) -> Result<Account, AccountError> {
        let account =
            account_from_json(value.as_bytes()).map_err(|e| Self::error("parse", parameter, e))?;
        let expected = self.parameter(account.platform, &account.name);
        if expected != parameter {
            return Err(AccountError::Io {
                op: "parse",
                store: format!("SSM parameter {parameter}"),
                source: format!(
                    "it holds the account {}:{} (expected at {expected})",
                    account.platform, account.name
                )
                .into(),
            });
        }
        Ok(account)
    }
}

#[async_trait]
impl TokenStore for SsmTokens {
    fn describe(&self) -> String {
        format!("SSM {}", self.prefix)
    }

    async fn get(&self, platform: Platform, name: &str) -> Result<Option<Account>, AccountError> {
        check_name(name)?;
        let parameter = self.parameter(platform, name);
        let out = match self
            .client
            .get_parameter()
            .name(&parameter)
            .with_decryption(true)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.code() == Some("ParameterNotFound") => return Ok(None),
            Err(e) => return Err(Self::error("read", &parameter, SsmFailure::of(&e))),
        };
        let value = out.parameter.and_then(|p| p.value).unwrap_or_default();
        self.parse(&parameter, &value).map(Some)
    }

    async fn put(&self, account: &Account) -> Result<(), AccountError> {
        check_name(&account.name)?;
        let parameter = self.parameter(account.platform, &account.name);
        let value =
            serde_json::to_string(account).map_err(|e| Self::error("serialise", &parameter, e))?;
        self.client
            .put_parameter()
            .name(&parameter)
            .r#type(ParameterType::SecureString)
            .value(value)
            .overwrite(true)
            .description(format!(
                "storyreel {} account {} (refresh token)",
                account.platform.display_name(),
                account.name
            ))
            .send()
            .await
            .map_err(|e| Self::error("write", &parameter, SsmFailure::of(&e)))?;
        Ok(())
    }

    async fn remove(&self, platform: Platform, name: &str) -> Result<bool, AccountError> {
        check_name(name)?;
        let parameter = self.parameter(platform, name);
        match self.client.delete_parameter().name(&parameter).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("ParameterNotFound") => Ok(false),
            Err(e) => Err(Self::error("delete", &parameter, SsmFailure::of(&e))),
        }
    }

    async fn list(&self) -> Result<Vec<Account>, AccountError> {
        // GetParametersByPath takes the path without its trailing slash.
        let path = match self.prefix.trim_end_matches('/') {
            "" => "/",
            p => p,
        };
        let mut accounts = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let out = self
                .client
                .get_parameters_by_path()
                .path(path)
                .recursive(true)
                .with_decryption(true)
                .max_results(PAGE)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| Self::error("list", path, SsmFailure::of(&e)))?;
            for p in out.parameters.unwrap_or_default() {
                let name = p.name.unwrap_or_default();
                // Only `{prefix}{platform}/{name}`: anything else under the prefix is not ours.
                let Some(rest) = name.strip_prefix(&self.prefix) else {
                    continue;
                };
                let Some((platform, account)) = rest.split_once('/') else {
                    continue;
                };
                if platform.parse::<Platform>().is_err() || check_name(account).is_err() {
                    continue;
                }
                accounts.push(self.parse(&name, p.value.as_deref().unwrap_or_default())?);
            }
            match out.next_token.filter(|t| !t.is_empty()) {
                Some(t) => next = Some(t),
                None => break,
            }
        }
        accounts.sort_by(|a, b| (a.platform, &a.name).cmp(&(b.platform, &b.name)));
        Ok(accounts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn parameter_names_follow_the_prefix() {
        let conf = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        for prefix in [
            "/storyreel/accounts/",
            "storyreel/accounts",
            " /storyreel/accounts ",
        ] {
            let s = SsmTokens::new(&conf, prefix);
            assert_eq!(
                s.parameter(Platform::YouTube, "main"),
                "/storyreel/accounts/youtube/main"
            );
            assert_eq!(s.describe(), "SSM /storyreel/accounts/");
        }
        let s = SsmTokens::new(&conf, "/");
        assert_eq!(s.parameter(Platform::TikTok, "b"), "/tiktok/b");
    }

    #[test]
    fn failures_never_carry_a_message() {
        let f = SsmFailure {
            code: "ValidationException".into(),
            status: Some(400),
        };
        assert_eq!(f.to_string(), "ValidationException (HTTP 400)");
    }
}
