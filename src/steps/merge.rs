//! `merge`: joins the chunks without re-encoding and muxes the narration into one fast-start
//! MP4 (under `tmp/`, until `publish` makes it an output).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{job_err, store_err};
use super::prepare::prepare;
use super::{ErrorName, Job, MarksOutput, RenderChunkOutput, SpeechOutput, StepError, blocking};
use crate::jobs::{JobStore, JobUpdate};
use crate::keys;
use crate::store::BlobStore;

const STEP: &str = "merge";

/// Largest narration WAV read (30 minutes of 48 kHz 16-bit mono is 173 MB).
const MAX_AUDIO_BYTES: u64 = 400 << 20;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MergeInput {
    pub job: Job,
    pub speech: SpeechOutput,
    pub marks: MarksOutput,
    pub chunks: Vec<RenderChunkOutput>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeOutput {
    pub video_key: String,
    pub frames: u64,
    pub duration_ms: u64,
    pub bytes: u64,
}

/// Runs the step.
pub async fn merge(
    input: MergeInput,
    store: &dyn BlobStore,
    jobs: &dyn JobStore,
    scratch: &Path,
) -> Result<MergeOutput, StepError> {
    let MergeInput {
        job,
        speech,
        marks,
        chunks,
    } = input;
    jobs.update(&job.job_id, JobUpdate::Step("Merge".into()))
        .await
        .map_err(|e| job_err(STEP, e))?;
    let prepared = prepare(STEP, store, &job, &speech, &marks).await?;
    let plan = prepared.plan;
    let want = plan.chunk_count() as usize;
    if chunks.len() != want {
        return Err(StepError::invalid(
            STEP,
            format!("got {} chunks (expected {want})", chunks.len()),
        ));
    }
    for (i, c) in chunks.iter().enumerate() {
        let key = keys::chunk(&job.job_id, &prepared.plan_id, i as u32);
        if c.index as usize != i || c.key != key {
            return Err(StepError::invalid(
                STEP,
                format!(
                    "chunk {i} is {:?} at {:?} (expected {key:?})",
                    c.index, c.key
                ),
            ));
        }
    }
    let video_key = keys::merged(&job.job_id);
    let duration_ms = plan.duration_ms();
    if let Some(info) = store
        .head(&video_key)
        .await
        .map_err(|e| store_err(STEP, e))?
    {
        return Ok(MergeOutput {
            video_key,
            frames: plan.frames,
            duration_ms,
            bytes: info.bytes,
        });
    }
    let dir = scratch.join(format!("{}-merge-{}", job.job_id, prepared.plan_id));
    std::fs::create_dir_all(&dir)
        .map_err(|e| StepError::fatal(STEP, format!("cannot create {}", dir.display()), e))?;
    let result = async {
        let mut paths: Vec<PathBuf> = Vec::with_capacity(chunks.len());
        for c in &chunks {
            let p = dir.join(format!("{:05}.h264", c.index));
            store
                .get_file(&c.key, &p)
                .await
                .map_err(|e| store_err(STEP, e))?;
            paths.push(p);
        }
        let wav = store
            .get(&speech.audio_key, MAX_AUDIO_BYTES)
            .await
            .map_err(|e| store_err(STEP, e))?;
        let out = dir.join("video.mp4");
        let out2 = out.clone();
        let frames = plan.frames;
        blocking(STEP, move || {
            let pcm = storyreel_audio::decode_bytes(&wav, Some("wav")).map_err(|e| {
                StepError::wrap(STEP, ErrorName::InvalidInput, "narration audio", e)
            })?;
            let aac = crate::merge::encode_narration(&plan, &pcm)
                .map_err(|e| StepError::wrap(STEP, ErrorName::Fatal, "narration audio", e))?;
            crate::merge::merge(&plan, &paths, &aac, &out2)
                .map_err(|e| StepError::wrap(STEP, ErrorName::Fatal, "merge", e))?;
            Ok(())
        })
        .await?;
        let bytes = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
        store
            .put_file(&video_key, &out, "video/mp4")
            .await
            .map_err(|e| store_err(STEP, e))?;
        Ok(MergeOutput {
            video_key: video_key.clone(),
            frames,
            duration_ms,
            bytes,
        })
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}
