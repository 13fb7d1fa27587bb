//! What every storyreel Lambda shares: the capabilities built once per container from the
//! environment, step errors turned into Lambda errors under their stable names, and the
//! Runtime API loop. A function's `main` is one call to [`run`].
//!
//! Environment:
//! - `STORYREEL_BUCKET` and `STORYREEL_TABLE`: S3 bucket and DynamoDB table (the deployed stack);
//! - or `STORYREEL_LOCAL_DIR`: a local directory as the store and job table (offline
//!   `sam local invoke`, tests);
//! - `STORYREEL_ACCOUNTS_SSM_PREFIX`: where connected accounts are (SSM SecureStrings, the
//!   deployed stack; locally the user's accounts file), `STORYREEL_DROP_PUBLISH`: the
//!   destinations of drop-folder stories.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde::Serialize;
use serde::de::DeserializeOwned;
use storyreel::jobs::{FsJobs, JobStore};
use storyreel::narration::Narrators;
use storyreel::publishing::Publishers;
use storyreel::steps::story::StoryLlm;
use storyreel::steps::{ErrorName, StepError};
use storyreel::store::{BlobStore, FsStore};

/// The capabilities a step may ask for, built once per container.
pub struct Env {
    pub store: Arc<dyn BlobStore>,
    pub jobs: Arc<dyn JobStore>,
    pub narrators: Narrators,
    /// Writes stories from prompts (when an OpenAI-compatible endpoint is configured).
    pub llm: Option<Arc<dyn StoryLlm>>,
    /// Lambda's writable disk.
    pub scratch: PathBuf,
    /// x264 threads for a chunk: every core Lambda gave this function.
    pub threads: u32,
    /// Connected accounts and the platforms (publish), drop-folder destinations (story).
    pub publishers: Publishers,
}

impl Env {
    /// Builds the capabilities from the environment.
    pub async fn from_env() -> Result<Env, lambda_runtime::Error> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        let scratch = std::env::temp_dir().join("storyreel");
        if let Ok(dir) = std::env::var("STORYREEL_LOCAL_DIR") {
            let dir = PathBuf::from(dir);
            return Ok(Env {
                store: Arc::new(FsStore::new(&dir)),
                jobs: Arc::new(FsJobs::new(dir.join("jobs"))),
                narrators: Narrators::local(),
                llm: llm_from_env(None).await?,
                scratch,
                threads,
                publishers: publishers(None, false).await?,
            });
        }
        let bucket = std::env::var("STORYREEL_BUCKET").unwrap_or_default();
        let table = std::env::var("STORYREEL_TABLE").unwrap_or_default();
        if !bucket.is_empty() && !table.is_empty() {
            // The deployed stack: one AWS configuration (the function's role and region) for
            // the bucket, the job table and Polly.
            let conf = storyreel::cloud::load_config().await;
            return Ok(Env {
                store: Arc::new(storyreel::cloud::S3Store::new(&conf, &bucket)),
                jobs: Arc::new(storyreel::cloud::DynamoJobs::new(&conf, &table)),
                narrators: Narrators::local().with_polly(storyreel::cloud::polly(&conf)),
                llm: llm_from_env(Some(&conf)).await?,
                scratch,
                threads,
                // The state machine comes back to deferred destinations (Wait, then publish).
                publishers: publishers(Some(&conf), true).await?,
            });
        }
        Err("set STORYREEL_BUCKET and STORYREEL_TABLE (the stack's outputs), or STORYREEL_LOCAL_DIR for a local store".into())
    }
}

/// Publishing: connected accounts from SSM Parameter Store when
/// `STORYREEL_ACCOUNTS_SSM_PREFIX` is set (the deployed stack sets it), else the local accounts
/// file; drop-folder destinations from `STORYREEL_DROP_PUBLISH`.
async fn publishers(
    conf: Option<&storyreel::cloud::SdkConfig>,
    come_back: bool,
) -> Result<Publishers, lambda_runtime::Error> {
    use storyreel::cloud::accounts::{PREFIX_ENV, SsmTokens};
    let p = if std::env::var(PREFIX_ENV).is_ok_and(|v| !v.trim().is_empty()) {
        let conf = match conf {
            Some(c) => c.clone(),
            None => storyreel::cloud::load_config().await,
        };
        Publishers::new(Arc::new(SsmTokens::from_env(&conf)), come_back)
    } else {
        Publishers::local()
    };
    Ok(p.with_drop_from_env()?)
}

/// The story writer: with `OPENAI_API_KEY` or only `OPENAI_BASE_URL` as the environment says
/// (see `storyreel::llm::from_env`); with `OPENAI_API_KEY_PARAMETER` (the deployed stack) the
/// key is read from that SSM SecureString on the first prompt and kept for the container.
async fn llm_from_env(
    conf: Option<&storyreel::cloud::SdkConfig>,
) -> Result<Option<Arc<dyn StoryLlm>>, lambda_runtime::Error> {
    use storyreel::cloud::secrets::{KEY_PARAMETER_ENV, SsmKey};
    let set = |n: &str| std::env::var(n).is_ok_and(|v| !v.trim().is_empty());
    let parameter = std::env::var(KEY_PARAMETER_ENV).unwrap_or_default();
    if set("OPENAI_API_KEY") || parameter.trim().is_empty() {
        return Ok(storyreel::llm::from_env().map_err(|e| e.chain())?);
    }
    let conf = match conf {
        Some(c) => c.clone(),
        None => storyreel::cloud::load_config().await,
    };
    let key = SsmKey::new(&conf, parameter.trim());
    let config = storyreel_story::LlmConfig::from_env();
    Ok(Some(Arc::new(storyreel::llm::KeyedStories::new(
        config,
        Box::new(key),
    ))))
}

/// A step error as a Lambda error: `errorType` is the stable name the state machine matches.
#[derive(Debug)]
pub struct LambdaError(pub StepError);

impl From<LambdaError> for Diagnostic {
    fn from(e: LambdaError) -> Diagnostic {
        Diagnostic {
            error_type: e.0.name.as_str().to_string(),
            error_message: e.0.chain(),
        }
    }
}

/// Parses an event into a step's input; a malformed event is `InvalidInput`, named.
pub fn parse_event<I: DeserializeOwned>(
    step: &'static str,
    event: serde_json::Value,
) -> Result<I, StepError> {
    serde_json::from_value(event)
        .map_err(|e| StepError::wrap(step, ErrorName::InvalidInput, "malformed event", e))
}

/// Runs a step as a Lambda: one invocation per event, until the container is retired.
pub async fn run<I, O, F, Fut>(step: &'static str, handler: F) -> Result<(), lambda_runtime::Error>
where
    I: DeserializeOwned + Send + 'static,
    O: Serialize + Send + 'static,
    F: Fn(Arc<Env>, I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, StepError>> + Send,
{
    lambda_runtime::tracing::init_default_subscriber();
    let env = Arc::new(Env::from_env().await?);
    let handler = Arc::new(handler);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let env = env.clone();
        let handler = handler.clone();
        async move {
            let input: I = parse_event(step, event.payload).map_err(LambdaError)?;
            handler(env, input).await.map_err(|e| {
                lambda_runtime::tracing::error!(step, error = %e.chain(), name = e.name.as_str(), "step failed");
                LambdaError(e)
            })
        }
    }))
    .await
}
