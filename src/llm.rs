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
