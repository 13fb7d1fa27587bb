//! `publish`: the job's outcome. On success it writes the outputs (video, SRT and WebVTT
//! captions, thumbnail), records them on the job with a download link, uploads the video to
//! the job's destinations (each exactly once: [`crate::publishing`]), removes the job's
//! intermediate objects, and records the job's cost estimate (from its own chunk render
//! times, narration characters, engine and chunk count: [`crate::cost`]). On failure (the state
//! machine's Catch) it records which state failed and why.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::{job_err, store_err};
use super::prepare::prepare;
use super::{ErrorName, Job, MarksOutput, MergeOutput, SpeechOutput, StepError, blocking};
use crate::background::Background;
use crate::jobs::{JobFailure, JobOutputs, JobRecord, JobStatus, JobStore, JobUpdate};
use crate::keys;
use crate::publishing::{self, PublishJob, Publishers};
use crate::store::BlobStore;

const STEP: &str = "publish";

/// How long a download link lasts (seconds).
pub const LINK_EXPIRY_SECS: u64 = 24 * 3600;

/// render-chunk's memory (MB) for the job's estimate, when the deployment sets it (the
/// `RenderChunkMemory` parameter); otherwise [`crate::cost::DEFAULT_RENDER_MEMORY_MB`].
pub const RENDER_MEMORY_ENV: &str = "STORYREEL_RENDER_CHUNK_MEMORY_MB";

/// What the state machine's Catch hands over: `{"Error": ..., "Cause": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaughtError {
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: String,
}

/// A failure to record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureInput {
    pub job_id: String,
    /// The state that failed.
    pub step: String,
    pub error: CaughtError,
}

/// Either a finished job to publish or a failure to record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishInput {
    #[serde(default)]
    pub job: Option<Job>,
    #[serde(default)]
    pub speech: Option<SpeechOutput>,
    #[serde(default)]
    pub marks: Option<MarksOutput>,
    #[serde(default)]
    pub merged: Option<MergeOutput>,
    #[serde(default)]
    pub failure: Option<FailureInput>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishOutput {
    pub job_id: String,
    pub status: JobStatus,
    pub outputs: Option<JobOutputs>,
    pub error: Option<JobFailure>,
    /// Each destination's state after this run (absent when the job publishes nowhere).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub destinations: BTreeMap<String, storyreel_publish::DestinationState>,
    /// When a deferred destination may be tried again (RFC 3339): the deployed state machine
    /// waits until then and runs publish again. Absent on one machine, where `storyreel
    /// publish retry` and `watch` come back instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<String>,
}

/// The readable part of a Lambda error's cause (`{"errorType":..,"errorMessage":..}`).
pub fn readable_cause(cause: &str) -> String {
    serde_json::from_str::<serde_json::Value>(cause)
        .ok()
        .and_then(|v| {
            v.get("errorMessage")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| cause.to_string())
}

/// Runs the step.
pub async fn publish(
    input: PublishInput,
    store: &dyn BlobStore,
    jobs: &dyn JobStore,
    publishers: &Publishers,
) -> Result<PublishOutput, StepError> {
    if let Some(f) = input.failure {
        let failure = JobFailure {
            step: f.step.clone(),
            error: f.error.error.clone(),
            cause: readable_cause(&f.error.cause),
        };
        // The job may not exist yet (the story step failed before creating it).
        let record = JobRecord::new(&f.job_id, &f.job_id, "unknown", "", None);
        jobs.create(&record).await.map_err(|e| job_err(STEP, e))?;
        jobs.update(&f.job_id, JobUpdate::Failed(failure.clone()))
            .await
            .map_err(|e| job_err(STEP, e))?;
        return Ok(PublishOutput {
            job_id: f.job_id,
            status: JobStatus::Failed,
            outputs: None,
            error: Some(failure),
            destinations: BTreeMap::new(),
            retry_at: None,
        });
    }
    let (Some(job), Some(speech), Some(marks), Some(merged)) =
        (input.job, input.speech, input.marks, input.merged)
    else {
        return Err(StepError::invalid(
            STEP,
            "publish needs job, speech, marks and merged (or a failure to record)",
        ));
    };
    let record = jobs.get(&job.job_id).await.map_err(|e| job_err(STEP, e))?;
    let (video, _, _, thumbnail) = keys::outputs(&job.job_id);
    // A second run (a retry, a resumed `make`, the state machine coming back to a deferred
    // destination) finds the outputs written and the job succeeded: only destinations remain.
    let written = match record.as_ref().and_then(|r| {
        (r.status == JobStatus::Succeeded)
            .then(|| r.outputs.clone())
            .flatten()
    }) {
        Some(o)
            if store
                .head(&o.video)
                .await
                .map_err(|e| store_err(STEP, e))?
                .is_some() =>
        {
            Some(o)
        }
        _ => None,
    };
    let outputs = match written {
        Some(o) => o,
        None => {
            jobs.update(&job.job_id, JobUpdate::Step("Publish".into()))
                .await
                .map_err(|e| job_err(STEP, e))?;
            let outputs = write_outputs(&job, &speech, &marks, &merged, store, jobs).await?;
            publishing::register(jobs, &job.job_id, &job.publish).await?;
            // The video is made: the job has succeeded whatever the platforms say; each
            // destination's progress is its own state on the record.
            jobs.update(&job.job_id, JobUpdate::Succeeded(outputs.clone()))
                .await
                .map_err(|e| job_err(STEP, e))?;
            outputs
        }
    };
    let destinations = if job.publish.is_empty() {
        BTreeMap::new()
    } else {
        let target = PublishJob {
            job_id: &job.job_id,
            title: job.title.as_deref(),
            destinations: &job.publish,
            video_key: &video,
            thumbnail_key: &thumbnail,
            story_key: &job.story_key,
        };
        publishing::publish_job(publishers, store, jobs, &target, false).await?
    };
    // Intermediate objects are done with once no destination needs this run again (a
    // lifecycle rule expires any that a crash leaves).
    store
        .delete_prefix(&keys::job_tmp(&job.job_id))
        .await
        .map_err(|e| store_err(STEP, e))?;
    let retry_at = publishers
        .come_back
        .then(|| publishing::next_attempt(&destinations))
        .flatten()
        .map(storyreel_publish::time::format_rfc3339);
    Ok(PublishOutput {
        job_id: job.job_id,
        status: JobStatus::Succeeded,
        outputs: Some(outputs),
        error: None,
        destinations,
        retry_at,
    })
}

/// Writes the outputs (captions, thumbnail, then the video last) and the cost estimate.
async fn write_outputs(
    job: &Job,
    speech: &SpeechOutput,
    marks: &MarksOutput,
    merged: &MergeOutput,
    store: &dyn BlobStore,
    jobs: &dyn JobStore,
) -> Result<JobOutputs, StepError> {
    let prepared = prepare(STEP, store, job, speech, marks).await?;
    let chunk_frames: Vec<u64> = prepared.plan.chunks().map(|c| c.end - c.start).collect();
    let estimate = job_estimate(job, speech, merged, &prepared.text, &chunk_frames, jobs).await?;
    let (video, srt, vtt, thumbnail) = keys::outputs(&job.job_id);
    let pages = &prepared.plan.pages;
    let srt_text = storyreel_captions::subtitles::to_srt(pages);
    let vtt_text = storyreel_captions::subtitles::to_vtt(pages);
    let plan = prepared.plan;
    let bg = prepared.video;
    let jpeg = blocking(STEP, move || {
        let background = match bg {
            Some(v) => {
                Background::from_video(v, plan.background.as_ref().map_or(0, |b| b.start_ms))
            }
            None => Background::generated(),
        };
        let captions = crate::plan::caption_renderer(&plan);
        let still = crate::render::render_still(
            &plan,
            crate::render::thumbnail_frame(&plan),
            background,
            &captions,
        )
        .map_err(|e| StepError::wrap(STEP, ErrorName::Fatal, "thumbnail", e))?;
        crate::render::encode_jpeg(&still)
            .map_err(|e| StepError::new(STEP, ErrorName::Fatal, format!("thumbnail: {e}"), None))
    })
    .await?;
    let put = |key: String, bytes: Vec<u8>, ct: &'static str| async move {
        store
            .put(&key, bytes, ct)
            .await
            .map_err(|e| store_err(STEP, e))
    };
    put(srt.clone(), srt_text.into_bytes(), "application/x-subrip").await?;
    put(vtt.clone(), vtt_text.into_bytes(), "text/vtt").await?;
    put(thumbnail.clone(), jpeg, "image/jpeg").await?;
    // The video last: its presence means the outputs are complete.
    store
        .copy(&merged.video_key, &video)
        .await
        .map_err(|e| store_err(STEP, e))?;
    let link = store
        .link(&video, LINK_EXPIRY_SECS)
        .await
        .map_err(|e| store_err(STEP, e))?;
    // Before success, so a succeeded job always carries its estimate.
    jobs.update(&job.job_id, JobUpdate::Estimated(Box::new(estimate)))
        .await
        .map_err(|e| job_err(STEP, e))?;
    Ok(JobOutputs {
        video,
        srt,
        vtt,
        thumbnail,
        link,
    })
}

/// The job's cost: its own chunk times (recorded by render-chunk), narration and chunk count.
async fn job_estimate(
    job: &Job,
    speech: &SpeechOutput,
    merged: &MergeOutput,
    text: &str,
    chunk_frames: &[u64],
    jobs: &dyn JobStore,
) -> Result<crate::cost::CostEstimate, StepError> {
    use crate::cost;
    let record = jobs.get(&job.job_id).await.map_err(|e| job_err(STEP, e))?;
    let (chunk_ms, prompt) = match &record {
        Some(r) => (
            r.chunk_ms.clone(),
            matches!(r.source.as_str(), "prompt" | "channel"),
        ),
        None => Default::default(),
    };
    let memory = std::env::var(RENDER_MEMORY_ENV)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(cost::DEFAULT_RENDER_MEMORY_MB);
    let parts: Vec<(usize, usize)> = speech
        .parts
        .iter()
        .map(|p| (p.text_start, p.text_end))
        .collect();
    let facts = cost::JobFacts {
        engine: &job.voice.engine,
        text,
        parts: &parts,
        audio_ms: speech.duration_ms,
        chunk_frames,
        chunk_ms: &chunk_ms,
        render_memory_mb: memory,
        prompt,
        video_bytes: merged.bytes,
        background: job.background.is_some(),
    };
    let estimate = cost::Measured::embedded()
        .and_then(|m| {
            let f = cost::VideoFacts::for_job(
                &facts,
                &m,
                crate::definition::DEFINITION,
                &cost::STATED,
            )?;
            Ok(cost::estimate(&cost::US_EAST_1, &cost::STATED, &m, &f))
        })
        .map_err(|e| StepError::wrap(STEP, ErrorName::Fatal, "cost estimate", e))?;
    Ok(estimate)
}
