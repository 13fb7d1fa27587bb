//! `speech`: the narration audio. Runs beside `marks` (a Parallel state); both speak the same
//! text the same way, and neither waits for the other. The audio's parts (one per engine
//! request) and their measured durations travel in the output, so the marks can be put on the
//! joined audio's timeline where the branches meet (see [`super::prepare`]).

use serde::{Deserialize, Serialize};

use super::error::{job_err, store_err};
use super::{ChunkItem, ErrorName, Job, StepError, blocking};
use crate::jobs::{JobStore, JobUpdate};
use crate::keys;
use crate::narration::{Narrators, cache_key, read_text};
use crate::store::BlobStore;

const STEP: &str = "speech";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpeechInput {
    pub job: Job,
}

/// What was spoken and how it divides into chunks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeechOutput {
    /// The narration cache entry: hash of text, engine, voice and rate.
    pub cache: String,
    pub audio_key: String,
    pub duration_ms: u64,
    /// One per engine request, in order, with measured durations.
    pub parts: Vec<storyreel_speech::AudioPart>,
    /// Frames of the video.
    pub frames: u64,
    /// The Map state's items.
    pub chunks: Vec<ChunkItem>,
}

/// Stored beside the audio, so a cache hit answers without decoding it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct AudioMeta {
    duration_ms: u64,
    parts: Vec<storyreel_speech::AudioPart>,
}

/// Runs the step.
pub async fn speech(
    input: SpeechInput,
    store: &dyn BlobStore,
    jobs: &dyn JobStore,
    narrators: &Narrators,
) -> Result<SpeechOutput, StepError> {
    let job = &input.job;
    jobs.update(&job.job_id, JobUpdate::Step("Narrate".into()))
        .await
        .map_err(|e| job_err(STEP, e))?;
    let text = read_text(store, job, STEP).await?;
    let cache = cache_key(&text, &job.voice);
    let audio_key = keys::narration_audio(&cache);
    let meta_key = format!("{}/audio.json", keys::NARRATION_PREFIX.to_string() + &cache);
    let have_audio = store
        .head(&audio_key)
        .await
        .map_err(|e| store_err(STEP, e))?
        .is_some();
    let cached = if have_audio {
        match store.get(&meta_key, 1 << 20).await {
            Ok(bytes) => serde_json::from_slice::<AudioMeta>(&bytes).ok(),
            Err(_) => None,
        }
    } else {
        None
    };
    let meta = match cached {
        Some(m) => m,
        None => {
            let spec = narrators.spec(&job.voice, STEP)?;
            let engine = narrators.audio(&spec, STEP)?;
            let spoken = engine
                .speak_audio(&text, &spec)
                .await
                .map_err(|e| speech_err(STEP, e))?;
            let duration_ms = spoken.pcm.duration_ms().round() as u64;
            let pcm = spoken.pcm;
            let wav = blocking(STEP, move || {
                storyreel_audio::wav_bytes(&pcm)
                    .map_err(|e| StepError::wrap(STEP, ErrorName::Fatal, "encode wav", e))
            })
            .await?;
            let meta = AudioMeta {
                duration_ms,
                parts: spoken.parts,
            };
            store
                .put(&audio_key, wav, "audio/wav")
                .await
                .map_err(|e| store_err(STEP, e))?;
            let json = serde_json::to_vec(&meta)
                .map_err(|e| StepError::fatal(STEP, "encode audio metadata", e))?;
            store
                .put(&meta_key, json, "application/json")
                .await
                .map_err(|e| store_err(STEP, e))?;
            meta
        }
    };
    if meta.duration_ms == 0 {
        return Err(StepError::invalid(
            STEP,
            "the narration has no audio (expected > 0 ms)",
        ));
    }
    if meta.duration_ms > crate::plan::MAX_AUDIO_MS {
        return Err(StepError::invalid(
            STEP,
            format!(
                "the narration lasts {} ms (expected <= {} ms)",
                meta.duration_ms,
                crate::plan::MAX_AUDIO_MS
            ),
        ));
    }
    let frames = crate::plan::frame_count(meta.duration_ms);
    let chunks = crate::plan::chunk_ranges(frames, job.render.chunk_frames);
    jobs.update(&job.job_id, JobUpdate::ChunksTotal(chunks.len() as u32))
        .await
        .map_err(|e| job_err(STEP, e))?;
    Ok(SpeechOutput {
        cache,
        audio_key,
        duration_ms: meta.duration_ms,
        parts: meta.parts,
        frames,
        chunks,
    })
}

/// Speech errors keep their kind: throttling retries, a bad voice does not.
pub(crate) fn speech_err(step: &'static str, e: storyreel_speech::SpeechError) -> StepError {
    use storyreel_speech::ErrorKind;
    let name = match e.kind() {
        ErrorKind::Retryable => ErrorName::Retryable,
        ErrorKind::InvalidInput => ErrorName::InvalidInput,
        ErrorKind::Fatal => ErrorName::Fatal,
    };
    StepError::wrap(step, name, "narration", e)
}
