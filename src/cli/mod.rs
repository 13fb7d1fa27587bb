//! Subcommands that run the workflow or talk to services.

pub mod accounts;
pub mod cloud;
pub mod cost;
pub mod make;
pub mod publish;
pub mod speak;

use std::sync::Arc;

use storyreel::steps::story::StoryLlm;

/// The story writer configured by `OPENAI_API_KEY` / `OPENAI_BASE_URL`, if any.
pub fn llm_from_env() -> anyhow::Result<Option<Arc<dyn StoryLlm>>> {
    Ok(storyreel::llm::from_env()?)
}

/// A job's story from `--story FILE` (read now) or `--prompt TEXT` (written by the LLM, about
/// `seconds` long), and `--start` checked: the part `make` and `cloud make` share.
pub fn story_and_start(
    story: Option<&std::path::Path>,
    prompt: Option<&str>,
    seconds: u32,
    start: Option<f64>,
) -> anyhow::Result<storyreel::steps::story::StorySource> {
    use anyhow::Context;
    let source = match (story, prompt) {
        (Some(path), _) => storyreel::steps::story::StorySource {
            text: Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("read story {}", path.display()))?,
            ),
            ..Default::default()
        },
        (None, Some(p)) => storyreel::steps::story::StorySource {
            prompt: Some(p.to_string()),
            seconds: Some(seconds),
            ..Default::default()
        },
        (None, None) => anyhow::bail!("give --story FILE or --prompt TEXT"),
    };
    if let Some(s) = start {
        anyhow::ensure!(
            s.is_finite() && s >= 0.0,
            "invalid --start {s} (expected seconds >= 0)"
        );
    }
    Ok(source)
}
