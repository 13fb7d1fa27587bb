//! The `story` step's LLM capability over `storyreel-story`'s OpenAI-compatible writer.

use std::sync::Arc;

use async_trait::async_trait;
use storyreel_story::{LlmConfig, StoryRequest, StoryStyle, StoryWriter};

use crate::steps::story::{StoryLlm, WrittenStory, story_err};
use crate::steps::{ErrorName, StepError};

/// An OpenAI-compatible endpoint writing stories.
pub struct OpenAiStories {
    writer: StoryWriter,
}

impl OpenAiStories {
    pub fn new(config: LlmConfig) -> Result<Self, storyreel_story::StoryError> {
        Ok(OpenAiStories {
            writer: StoryWriter::new(config)?,
        })
    }
}

#[async_trait]
impl StoryLlm for OpenAiStories {
    async fn write(
        &self,
        prompt: &str,
        seconds: u32,
        style: &str,
        recent_titles: &[String],
    ) -> Result<WrittenStory, StepError> {
        let style: StoryStyle = style.parse().map_err(|_| {
            StepError::invalid(
                "story",
                format!("unknown story style {style:?} (expected post or replies)"),
            )
        })?;
        let req = StoryRequest {
            prompt: prompt.to_string(),
            seconds,
            style,
            recent_titles: recent_titles.to_vec(),
        };
        let story = self
            .writer
            .write(&req, &mut |_| {})
            .await
            .map_err(story_err)?;
        Ok(WrittenStory {
            title: story.title,
            body: story.body,
        })
    }
}

/// Where an API key comes from when it is not in the environment: a secret store, read when
/// first needed (see [`KeyedStories`]).
#[async_trait]
pub trait ApiKeySource: Send + Sync {
    /// What the key is (for messages); never the key itself.
    fn describe(&self) -> String;
    async fn api_key(&self) -> Result<String, StepError>;
}

/// A writer whose API key is fetched from an [`ApiKeySource`] on the first story, then kept:
/// one read per container, none for given texts. A failed read is not kept, so the next
/// story tries again.
pub struct KeyedStories {
    config: LlmConfig,
    key: Box<dyn ApiKeySource>,
    writer: tokio::sync::OnceCell<OpenAiStories>,
}

impl KeyedStories {
    pub fn new(config: LlmConfig, key: Box<dyn ApiKeySource>) -> Self {
        KeyedStories {
            config,
            key,
            writer: tokio::sync::OnceCell::new(),
        }
    }
}

#[async_trait]
impl StoryLlm for KeyedStories {
    async fn write(
        &self,
        prompt: &str,
        seconds: u32,
        style: &str,
        recent_titles: &[String],
    ) -> Result<WrittenStory, StepError> {
        let writer = self
            .writer
            .get_or_try_init(|| async {
                let api_key = self.key.api_key().await?;
                let config = LlmConfig {
                    api_key: Some(api_key),
                    ..self.config.clone()
                };
                OpenAiStories::new(config).map_err(|e| {
                    StepError::wrap("story", ErrorName::InvalidInput, "LLM configuration", e)
                })
            })
            .await?;
        writer.write(prompt, seconds, style, recent_titles).await
    }
}

/// The writer configured by the environment (`OPENAI_API_KEY`, `OPENAI_BASE_URL`, ...), or
/// `None` when neither the key nor a base URL is set.
pub fn from_env() -> Result<Option<Arc<dyn StoryLlm>>, StepError> {
    let set = |n: &str| {
        std::env::var(n)
            .map(|v| !v.trim().is_empty())
            .unwrap_or(false)
    };
    if !set("OPENAI_API_KEY") && !set("OPENAI_BASE_URL") {
        return Ok(None);
    }
    let llm = OpenAiStories::new(LlmConfig::from_env())
        .map_err(|e| StepError::wrap("story", ErrorName::InvalidInput, "LLM configuration", e))?;
    Ok(Some(Arc::new(llm)))
}
