//! `marks`: the narration's word and sentence timings, per engine request, as the engine
//! returned them. They are put on the joined audio's timeline where the Parallel's branches
//! meet (see [`super::prepare`]), using the durations `speech` measured.

use serde::{Deserialize, Serialize};

use super::error::store_err;
use super::speech::speech_err;
use super::{Job, StepError};
use crate::keys;
use crate::narration::{Narrators, cache_key, read_text};
use crate::store::BlobStore;

const STEP: &str = "marks";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MarksInput {
    pub job: Job,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarksOutput {
    pub cache: String,
    /// `SpokenMarks` as JSON: each part's marks relative to the part.
    pub marks_key: String,
}

/// Runs the step.
pub async fn marks(
    input: MarksInput,
    store: &dyn BlobStore,
    narrators: &Narrators,
) -> Result<MarksOutput, StepError> {
    let job = &input.job;
    let text = read_text(store, job, STEP).await?;
    let cache = cache_key(&text, &job.voice);
    let marks_key = keys::narration_marks(&cache);
    if store
        .head(&marks_key)
        .await
        .map_err(|e| store_err(STEP, e))?
        .is_none()
    {
        let spec = narrators.spec(&job.voice, STEP)?;
        let engine = narrators.marks(&spec, STEP)?;
        let spoken = engine
            .speak_marks(&text, &spec)
            .await
            .map_err(|e| speech_err(STEP, e))?;
        let json = serde_json::to_vec(&spoken)
            .map_err(|e| StepError::fatal(STEP, "encode speech marks", e))?;
        store
            .put(&marks_key, json, "application/json")
            .await
            .map_err(|e| store_err(STEP, e))?;
    }
    Ok(MarksOutput { cache, marks_key })
}
