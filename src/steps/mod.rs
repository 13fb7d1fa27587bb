//! The workflow's steps: plain async functions over typed inputs and outputs, the contract
//! with Step Functions. Payloads carry the job, storage keys and small numbers, never media.
//!
//! Each step has one name everywhere: `render-chunk` is the binary, `functions/render-chunk/`,
//! `events/render-chunk.json`, `RenderChunkFunction`, the state `Render chunk`, and here
//! [`render_chunk`] with [`RenderChunkInput`] / [`RenderChunkOutput`].
//!
//! Media work is synchronous and CPU-bound and runs under `spawn_blocking`.

mod error;
pub mod marks;
pub mod merge;
pub mod prepare;
pub mod prepare_background;
pub mod publish;
pub mod render_chunk;
pub mod speech;
pub mod story;

use serde::{Deserialize, Serialize};

pub(crate) use error::job_err as error_job;
pub(crate) use error::store_err as error_store;
pub use error::{ErrorName, StepError};
pub use marks::{MarksInput, MarksOutput, marks};
pub use merge::{MergeInput, MergeOutput, merge};
pub use prepare_background::{PrepareBackgroundInput, PrepareBackgroundOutput, prepare_background};
pub use publish::{FailureInput, PublishInput, PublishOutput, publish};
pub use render_chunk::{RenderChunkInput, RenderChunkOutput, render_chunk};
pub use speech::{SpeechInput, SpeechOutput, speech};
pub use story::{StoryInput, StoryOutput, story};

/// Names of the steps, as binaries, folders and event files use them.
pub const STEP_NAMES: [&str; 6] = [
    "story",
    "speech",
    "marks",
    "render-chunk",
    "merge",
    "publish",
];

/// Every Lambda function: the workflow's steps, and `prepare-background`, which the bucket's
/// EventBridge rule starts for footage uploaded under `backgrounds/incoming/`.
pub const FUNCTION_NAMES: [&str; 7] = [
    "story",
    "speech",
    "marks",
    "render-chunk",
    "merge",
    "publish",
    "prepare-background",
];

/// Which engine speaks, with which voice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoiceOptions {
    /// `espeak` (local, the default) or `polly` with a Polly engine: `polly-standard`,
    /// `polly-neural`, `polly-long-form`, `polly-generative` (`polly` means neural).
    #[serde(default = "default_engine")]
    pub engine: String,
    /// An espeak-ng voice or language (`en-us`), or a Polly voice id (`Joanna`).
    #[serde(default = "default_voice")]
    pub voice: String,
    /// Words per minute (espeak-ng only; Polly speaks at its natural rate).
    #[serde(default)]
    pub rate: Option<u32>,
}

fn default_engine() -> String {
    "espeak".into()
}
fn default_voice() -> String {
    storyreel_speech::ESPEAK_DEFAULT_VOICE.into()
}

impl Default for VoiceOptions {
    fn default() -> Self {
        VoiceOptions {
            engine: default_engine(),
            voice: default_voice(),
            rate: None,
        }
    }
}

/// How the video is encoded and split into chunks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenderSettings {
    #[serde(default = "default_chunk_frames")]
    pub chunk_frames: u32,
    #[serde(default = "default_preset")]
    pub preset: String,
    #[serde(default = "default_crf")]
    pub crf: f32,
    /// 540x960 preview.
    #[serde(default)]
    pub draft: bool,
    /// Chunks rendered at once (the Map state's MaxConcurrency; 0 = as many as the runner allows).
    #[serde(default)]
    pub max_concurrency: u32,
}

fn default_chunk_frames() -> u32 {
    crate::plan::DEFAULT_CHUNK_FRAMES
}
fn default_preset() -> String {
    "veryfast".into()
}
fn default_crf() -> f32 {
    23.0
}

impl Default for RenderSettings {
    fn default() -> Self {
        RenderSettings {
            chunk_frames: default_chunk_frames(),
            preset: default_preset(),
            crf: default_crf(),
            draft: false,
            max_concurrency: 0,
        }
    }
}

impl RenderSettings {
    pub fn options(&self) -> crate::plan::RenderOptions {
        crate::plan::RenderOptions {
            preset: self.preset.clone(),
            crf: self.crf,
            chunk_frames: self.chunk_frames,
            draft: self.draft,
        }
    }
}

/// The background a job uses: a storage key, and where in it to start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackgroundChoice {
    pub key: String,
    /// Offset in ms; absent: chosen from the job id (random per job, the same on every retry).
    #[serde(default)]
    pub start_ms: Option<u64>,
}

/// A job, as every step after `story` sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub job_id: String,
    pub title: Option<String>,
    /// The cleaned story (title line, blank line, body): what is narrated.
    pub story_key: String,
    pub voice: VoiceOptions,
    pub background: Option<BackgroundChoice>,
    pub render: RenderSettings,
    /// Name shown on the title card.
    pub channel: String,
    /// Where the finished video is published (none: it stays in the store).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub publish: Vec<storyreel_publish::Destination>,
}

/// One Map item: a chunk's frame range `[start, end)`.
pub type ChunkItem = crate::plan::ChunkRange;

/// Runs blocking media work off the async runtime.
pub(crate) async fn blocking<T: Send + 'static>(
    step: &'static str,
    f: impl FnOnce() -> Result<T, StepError> + Send + 'static,
) -> Result<T, StepError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(StepError::fatal(step, "worker thread failed", e)),
    }
}
