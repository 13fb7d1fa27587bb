//! Where the narration branches meet: every step after them rebuilds the same [`RenderPlan`]
//! from the job, the speech output and the marks, deterministically, so chunk k rendered by any
//! Lambda, on any retry, agrees with every other chunk and with the merge.

use std::sync::Arc;

use super::error::store_err;
use super::speech::speech_err;
use super::{ErrorName, Job, MarksOutput, SpeechOutput, StepError, blocking};
use crate::background::VideoBackground;
use crate::narration::read_text;
use crate::plan::{BackgroundRef, PlanInputs, RenderPlan, TAIL_MS, make_plan};
use crate::store::BlobStore;

/// Largest marks object read (a 30-minute narration has ~5,000 words of ~100 bytes).
const MAX_MARKS_BYTES: u64 = 16 << 20;

/// A job's plan, and the background footage if it was opened to make it.
pub struct Prepared {
    pub plan: RenderPlan,
    /// A hash of the plan: chunk keys carry it, so a changed plan never reuses a chunk.
    pub plan_id: String,
    /// The joined, normalised speech marks (Polly JSON lines on the audio's timeline).
    pub marks_jsonl: String,
    /// The narrated text (the cleaned story).
    pub text: String,
    pub video: Option<VideoBackground>,
}

/// The marks on the joined audio's timeline.
pub async fn joined_marks(
    step: &'static str,
    store: &dyn BlobStore,
    job: &Job,
    speech: &SpeechOutput,
    marks: &MarksOutput,
) -> Result<String, StepError> {
    Ok(text_and_marks(step, store, job, speech, marks).await?.1)
}

/// The narrated text, and the marks on the joined audio's timeline.
async fn text_and_marks(
    step: &'static str,
    store: &dyn BlobStore,
    job: &Job,
    speech: &SpeechOutput,
    marks: &MarksOutput,
) -> Result<(String, String), StepError> {
    if speech.cache != marks.cache {
        return Err(StepError::invalid(
            step,
            format!(
                "speech and marks come from different narrations ({} and {})",
                speech.cache, marks.cache
            ),
        ));
    }
    let text = read_text(store, job, step).await?;
    let bytes = store
        .get(&marks.marks_key, MAX_MARKS_BYTES)
        .await
        .map_err(|e| store_err(step, e))?;
    let spoken: storyreel_speech::SpokenMarks = serde_json::from_slice(&bytes).map_err(|e| {
        StepError::wrap(
            step,
            ErrorName::InvalidInput,
            format!("malformed marks {:?}", marks.marks_key),
            e,
        )
    })?;
    let joined = storyreel_speech::join_marks(&text, &spoken, &speech.parts)
        .map_err(|e| speech_err(step, e))?;
    Ok((text, joined))
}

/// A start offset per job: random across jobs, the same on every retry of one job.
fn seed(job_id: &str) -> u64 {
    let h = crate::keys::hash(&[job_id.as_bytes()]);
    u64::from_str_radix(&h, 16).unwrap_or(0)
}

/// Builds the plan.
pub async fn prepare(
    step: &'static str,
    store: &dyn BlobStore,
    job: &Job,
    speech: &SpeechOutput,
    marks: &MarksOutput,
) -> Result<Prepared, StepError> {
    let (text, marks_jsonl) = text_and_marks(step, store, job, speech, marks).await?;
    let (background, video) = match &job.background {
        None => (None, None),
        Some(choice) => {
            let reader = store
                .reader(&choice.key)
                .await
                .map_err(|e| store_err(step, e))?;
            let name = choice.key.clone();
            let video = blocking(step, move || {
                VideoBackground::open(reader, &name)
                    .map_err(|e| StepError::wrap(step, ErrorName::InvalidInput, "background", e))
            })
            .await?;
            let dur = video.duration_ms().max(1);
            let start_ms = match choice.start_ms {
                Some(s) => s % dur,
                None => crate::pipeline::random_start_ms(
                    dur,
                    speech.duration_ms + TAIL_MS,
                    seed(&job.job_id),
                ),
            };
            (
                Some(BackgroundRef {
                    key: choice.key.clone(),
                    start_ms,
                }),
                Some(video),
            )
        }
    };
    let options = job.render.options();
    let plan = make_plan(&PlanInputs {
        audio_ms: speech.duration_ms,
        marks_jsonl: &marks_jsonl,
        title: job.title.as_deref(),
        channel: &job.channel,
        background,
        options: &options,
    })
    .map_err(|e| StepError::wrap(step, ErrorName::InvalidInput, "plan", e))?;
    if plan.frames != speech.frames {
        return Err(StepError::invalid(
            step,
            format!(
                "plan has {} frames but speech planned {} (expected equal)",
                plan.frames, speech.frames
            ),
        ));
    }
    let json = serde_json::to_vec(&plan).map_err(|e| StepError::fatal(step, "encode plan", e))?;
    let plan_id = crate::keys::hash(&[&json]);
    Ok(Prepared {
        plan,
        plan_id,
        marks_jsonl,
        text,
        video,
    })
}

/// Shared, so chunk workers of one local run can reuse one plan.
pub type SharedPrepared = Arc<Prepared>;
