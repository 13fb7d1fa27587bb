//! Subcommands that run the workflow or talk to services.

pub mod cloud;
pub mod cost;
pub mod make;
pub mod speak;

use std::sync::Arc;

use storyreel::steps::story::StoryLlm;

/// The story writer configured by `OPENAI_API_KEY` / `OPENAI_BASE_URL`, if any.
pub fn llm_from_env() -> anyhow::Result<Option<Arc<dyn StoryLlm>>> {
    Ok(storyreel::llm::from_env()?)
}
