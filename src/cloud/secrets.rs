//! The OpenAI API key from SSM Parameter Store (a SecureString), for the deployed `story`
//! function: read on the first prompt a container writes, then kept for the container's life.
//! The key is never logged: errors name the parameter, not its value.

use async_trait::async_trait;
use aws_sdk_ssm::Client;
use aws_sdk_ssm::error::ProvideErrorMetadata;

use crate::llm::ApiKeySource;
use crate::steps::{ErrorName, StepError};

/// Environment variable naming the parameter (the template sets it from `OpenAiKeyParameter`).
pub const KEY_PARAMETER_ENV: &str = "OPENAI_API_KEY_PARAMETER";

/// A SecureString parameter holding an API key.
pub struct SsmKey {
    client: Client,
    name: String,
}

impl SsmKey {
    pub fn new(conf: &aws_config::SdkConfig, name: &str) -> SsmKey {
        SsmKey {
            client: Client::new(conf),
            name: name.to_owned(),
        }
    }
}

#[async_trait]
impl ApiKeySource for SsmKey {
    fn describe(&self) -> String {
        format!("SSM parameter {}", self.name)
    }

    async fn api_key(&self) -> Result<String, StepError> {
        let out = self
            .client
            .get_parameter()
            .name(&self.name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| {
                let code = e.code().unwrap_or("").to_owned();
                let (name, hint) = match code.as_str() {
                    "ParameterNotFound" => (
                        ErrorName::InvalidInput,
                        format!(
                            "SSM parameter {} does not exist: create it with `aws ssm \
                             put-parameter --name {} --type SecureString --value <key>`",
                            self.name, self.name
                        ),
                    ),
                    "AccessDeniedException" | "ParameterVersionNotFound" => (
                        ErrorName::InvalidInput,
                        format!("cannot read SSM parameter {} ({code})", self.name),
                    ),
                    _ => (
                        ErrorName::Retryable,
                        format!("cannot read SSM parameter {}", self.name),
                    ),
                };
                StepError::wrap("story", name, hint, e)
            })?;
        out.parameter
            .and_then(|p| p.value)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                StepError::invalid("story", format!("SSM parameter {} is empty", self.name))
            })
    }
}
