//! `render-chunk`: one frame range of the video, encoded as a closed-GOP H.264 stream that
//! joins the others by concatenation. Idempotent: a chunk already stored under its plan's key
//! is not rendered again (a retried or resumed job skips finished chunks).
//!
//! A chunk it renders records on the job how long this run took, from its start to the
//! uploaded chunk (what Lambda bills, but for the job update after it); publish turns those
//! times into the job's cost estimate. The step's output does not carry it.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::{job_err, store_err};
use super::prepare::prepare;
use super::{ChunkItem, ErrorName, Job, MarksOutput, SpeechOutput, StepError, blocking};
use crate::background::Background;
use crate::jobs::{JobStore, JobUpdate};
use crate::keys;
use crate::store::BlobStore;

const STEP: &str = "render-chunk";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RenderChunkInput {
    pub job: Job,
    pub speech: SpeechOutput,
    pub marks: MarksOutput,
    pub chunk: ChunkItem,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderChunkOutput {
    pub index: u32,
    pub key: String,
    pub frames: u64,
    pub bytes: u64,
    /// True when the chunk was already stored and not rendered again.
    pub reused: bool,
}

/// Runs the step. `threads` is x264's thread count (0: x264 decides); `scratch` a directory
/// for the chunk file before upload.
pub async fn render_chunk(
    input: RenderChunkInput,
    store: &dyn BlobStore,
    jobs: &dyn JobStore,
    threads: u32,
    scratch: &Path,
) -> Result<RenderChunkOutput, StepError> {
    let started = std::time::Instant::now();
    let RenderChunkInput {
        job,
        speech,
        marks,
        chunk,
    } = input;
    let prepared = prepare(STEP, store, &job, &speech, &marks).await?;
    let plan = prepared.plan;
    if plan.chunk(chunk.index) != Some(chunk) {
        return Err(StepError::invalid(
            STEP,
            format!(
                "chunk {:?} is not in the plan (expected index < {} with its planned frame range)",
                chunk,
                plan.chunk_count()
            ),
        ));
    }
    let key = keys::chunk(&job.job_id, &prepared.plan_id, chunk.index);
    let frames = chunk.end - chunk.start;
    if let Some(info) = store.head(&key).await.map_err(|e| store_err(STEP, e))? {
        jobs.update(&job.job_id, JobUpdate::ChunkDone(chunk.index))
            .await
            .map_err(|e| job_err(STEP, e))?;
        return Ok(RenderChunkOutput {
            index: chunk.index,
            key,
            frames,
            bytes: info.bytes,
            reused: true,
        });
    }
    std::fs::create_dir_all(scratch)
        .map_err(|e| StepError::fatal(STEP, format!("cannot create {}", scratch.display()), e))?;
    let file = scratch.join(format!(
        "{}-{}-{:05}.h264",
        job.job_id, prepared.plan_id, chunk.index
    ));
    let path = file.clone();
    let video = prepared.video;
    let index = chunk.index;
    let bytes = blocking(STEP, move || {
        let mut background = match video {
            Some(v) => {
                Background::from_video(v, plan.background.as_ref().map_or(0, |b| b.start_ms))
            }
            None => Background::generated(),
        };
        let captions = crate::plan::caption_renderer(&plan);
        let werr = |e: std::io::Error| {
            StepError::fatal(STEP, format!("cannot write {}", path.display()), e)
        };
        let f = std::fs::File::create(&path).map_err(werr)?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        let stats = crate::render::render_chunk(
            &plan,
            index,
            &mut background,
            &captions,
            threads,
            &mut w,
            &mut |_| {},
        )
        .map_err(|e| {
            let name = match e {
                crate::render::RenderError::Background(_) => ErrorName::InvalidInput,
                _ => ErrorName::Fatal,
            };
            StepError::wrap(STEP, name, format!("chunk {index}"), e)
        })?;
        w.flush().map_err(werr)?;
        Ok(stats.bytes)
    })
    .await;
    let uploaded = match bytes {
        Ok(bytes) => store
            .put_file(&key, &file, "video/h264")
            .await
            .map(|_| bytes)
            .map_err(|e| store_err(STEP, e)),
        Err(e) => Err(e),
    };
    let _ = std::fs::remove_file(&file);
    let bytes = uploaded?;
    let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    jobs.update(
        &job.job_id,
        JobUpdate::ChunkRendered {
            index: chunk.index,
            millis,
        },
    )
    .await
    .map_err(|e| job_err(STEP, e))?;
    Ok(RenderChunkOutput {
        index: chunk.index,
        key,
        frames,
        bytes,
        reused: false,
    })
}
