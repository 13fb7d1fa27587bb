//! The cloud tests' moto server (`storyreel-moto`) and the AWS configuration that points
//! storyreel's real `aws-sdk-*` clients at it: fixed credentials, us-east-1.

use aws_sdk_s3::config::{Credentials, Region};
use storyreel::cloud::SdkConfig;
pub use storyreel_moto::Moto;

/// The region the tests use.
pub const REGION: &str = "us-east-1";
/// moto's default account.
pub const ACCOUNT: &str = "123456789012";

/// The AWS configuration for a server: see [`config_for`].
pub trait MotoConfig {
    async fn config(&self) -> SdkConfig;
}

impl MotoConfig for Moto {
    async fn config(&self) -> SdkConfig {
        config_for(&self.endpoint()).await
    }
}

/// storyreel's AWS configuration (retry policy included) pointed at `endpoint` (moto, or a
/// scripted server), with the region and fixed credentials.
pub async fn config_for(endpoint: &str) -> SdkConfig {
    storyreel::cloud::config_loader()
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
        .load()
        .await
}
