//! `story`: turns the execution input (a job request, a drop-folder upload event, or a
//! scheduled channel's tick) into a [`Job`] with a cleaned story in the store, and creates the
//! job record. A repeated trigger finds its job and stops (`duplicate`).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{job_err, store_err};
use super::{BackgroundChoice, ErrorName, Job, RenderSettings, StepError, VoiceOptions};
use crate::jobs::{JobRecord, JobStatus, JobStore, JobUpdate};
use crate::keys;
use crate::store::BlobStore;

const STEP: &str = "story";

/// Largest story object accepted from the drop folder or a key.
pub const MAX_STORY_BYTES: u64 = 200_000;

/// The `story` step's input: the execution input as it arrived, and the execution's name.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoryInput {
    pub request: Value,
    pub execution: String,
}

/// Where the story comes from: exactly one of `text`, `key` and `prompt`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorySource {
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub prompt: Option<String>,
    /// Target length for a prompt, in seconds of narration.
    #[serde(default)]
    pub seconds: Option<u32>,
    /// `post` (default) or `replies`.
    #[serde(default)]
    pub style: Option<String>,
}

/// A scheduled channel's tick: the same tick starts one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    pub channel: String,
    /// The schedule event's time (`<aws.events.event.time>` or the event's `time`).
    pub time: String,
}

/// A job request: the execution input of `storyreel make`, `cloud make` and channels.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    /// Fixes the job id (a re-run with the same id resumes the job).
    #[serde(default)]
    pub job_id: Option<String>,
    pub story: StorySource,
    /// Overrides the story's own title.
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub voice: VoiceOptions,
    #[serde(default)]
    pub background: Option<BackgroundChoice>,
    #[serde(default)]
    pub render: RenderSettings,
    /// Name on the title card.
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub trigger: Option<Trigger>,
    /// Picks a background from the library when `background` is not given: by id, by tag, or
    /// at random (the same pick on every retry of a job).
    #[serde(default)]
    pub background_selector: Option<crate::cloud::backgrounds::BackgroundSelector>,
    /// Where to publish the video (`[{"platform":"youtube","account":"main","privacy":"private"}]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub publish: Vec<storyreel_publish::Destination>,
}

/// The `story` step's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoryOutput {
    pub job: Job,
    /// True when another execution already owns this job (a repeated trigger): stop here.
    pub duplicate: bool,
}

/// A story as written or cleaned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenStory {
    pub title: Option<String>,
    pub body: String,
}

/// The capability of writing a story from a prompt (an OpenAI-compatible LLM).
#[async_trait]
pub trait StoryLlm: Send + Sync {
    async fn write(
        &self,
        prompt: &str,
        seconds: u32,
        style: &str,
        recent_titles: &[String],
    ) -> Result<WrittenStory, StepError>;
}

/// Cleans a given text for narration.
pub fn clean(raw: &str, seconds: u32) -> Result<WrittenStory, StepError> {
    let target = storyreel_story::LengthTarget {
        seconds,
        ..Default::default()
    };
    match storyreel_story::clean_story(raw, &target) {
        Ok(s) => Ok(WrittenStory {
            title: s.title,
            body: s.body,
        }),
        Err(e) => Err(story_err(e)),
    }
}

pub(crate) fn story_err(e: storyreel_story::StoryError) -> StepError {
    use storyreel_story::ErrorKind;
    let name = match e.kind() {
        ErrorKind::Retryable => ErrorName::Retryable,
        ErrorKind::InvalidInput if e.error_name() == "StoryRefused" => ErrorName::StoryRefused,
        ErrorKind::InvalidInput => ErrorName::InvalidInput,
        ErrorKind::Fatal => ErrorName::Fatal,
    };
    StepError::wrap(STEP, name, "story", e)
}

/// The parsed execution input.
enum Request {
    Job(Box<JobRequest>),
    /// An S3 "Object Created" event under the drop prefix.
    Drop {
        key: String,
        etag: String,
        size: u64,
    },
}

fn parse_request(v: &Value) -> Result<Request, StepError> {
    if let Some(kind) = v.get("detail-type") {
        let kind = kind.as_str().unwrap_or_default();
        if kind != "Object Created" {
            return Err(StepError::invalid(
                STEP,
                format!(
                    "unsupported event {kind:?} (expected an S3 \"Object Created\" event or a job request)"
                ),
            ));
        }
        let obj = v.pointer("/detail/object").ok_or_else(|| {
            StepError::invalid(
                STEP,
                "S3 event has no detail.object (expected key, size, etag)",
            )
        })?;
        let raw_key = obj
            .get("key")
            .and_then(Value::as_str)
            .ok_or_else(|| StepError::invalid(STEP, "S3 event has no detail.object.key"))?;
        // S3 event notifications URL-encode keys (a space is `+`).
        let key = crate::cloud::triggers::decode_event_key(raw_key)
            .map_err(|e| StepError::wrap(STEP, ErrorName::InvalidInput, "S3 event", e))?;
        let key = key.as_str();
        let size = obj.get("size").and_then(Value::as_u64).unwrap_or(0);
        let etag = obj.get("etag").and_then(Value::as_str).unwrap_or_default();
        return Ok(Request::Drop {
            key: key.to_string(),
            etag: etag.to_string(),
            size,
        });
    }
    serde_json::from_value::<JobRequest>(v.clone())
        .map(|r| Request::Job(Box::new(r)))
        .map_err(|e| StepError::wrap(STEP, ErrorName::InvalidInput, "malformed job request", e))
}

async fn read_story(store: &dyn BlobStore, key: &str) -> Result<String, StepError> {
    let bytes = store
        .get(key, MAX_STORY_BYTES)
        .await
        .map_err(|e| store_err(STEP, e))?;
    String::from_utf8(bytes).map_err(|e| {
        StepError::invalid(
            STEP,
            format!(
                "story {key:?} is not UTF-8 text (invalid byte at {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// Runs the step.
pub async fn story(
    input: StoryInput,
    store: &dyn BlobStore,
    jobs: &dyn JobStore,
    llm: Option<&dyn StoryLlm>,
    drop_publish: &[storyreel_publish::Destination],
) -> Result<StoryOutput, StepError> {
    let request = parse_request(&input.request)?;
    let (req, source, detail, raw, drop_id) = match request {
        Request::Drop { key, etag, size } => {
            if !key.starts_with(keys::DROP_PREFIX) {
                return Err(StepError::invalid(
                    STEP,
                    format!(
                        "object {key:?} is outside the drop folder (expected a key under {:?})",
                        keys::DROP_PREFIX
                    ),
                ));
            }
            let lower = key.to_ascii_lowercase();
            if !(lower.ends_with(".txt") || lower.ends_with(".md")) {
                return Err(StepError::invalid(
                    STEP,
                    format!("unsupported drop object {key:?} (expected a .txt or .md story)"),
                ));
            }
            if size > MAX_STORY_BYTES {
                return Err(StepError::invalid(
                    STEP,
                    format!("drop object {key:?} is {size} bytes (expected <= {MAX_STORY_BYTES})"),
                ));
            }
            let raw = read_story(store, &key).await?;
            let stem = key
                .rsplit('/')
                .next()
                .unwrap_or(&key)
                .trim_end_matches(".txt")
                .trim_end_matches(".md")
                .to_string();
            let id = keys::job_id(&stem, &keys::hash(&[key.as_bytes(), etag.as_bytes()]));
            let req = JobRequest {
                publish: drop_publish.to_vec(),
                ..Default::default()
            };
            (req, "drop", key, Some(raw), Some(id))
        }
        Request::Job(req) => {
            let req = *req;
            let s = &req.story;
            let given = [s.text.is_some(), s.key.is_some(), s.prompt.is_some()];
            if given.iter().filter(|g| **g).count() != 1 {
                return Err(StepError::invalid(
                    STEP,
                    "job request needs exactly one of story.text, story.key and story.prompt",
                ));
            }
            if let Some(text) = &s.text {
                let text = text.clone();
                (req, "text", String::new(), Some(text), None)
            } else if let Some(key) = s.key.clone() {
                let raw = read_story(store, &key).await?;
                (req, "key", key, Some(raw), None)
            } else {
                let prompt = s.prompt.clone().unwrap_or_default();
                let source = if req.trigger.is_some() {
                    "channel"
                } else {
                    "prompt"
                };
                (req, source, prompt, None, None)
            }
        }
    };
    // A prompt aims at 60 s; a given text is checked against Shorts' 3-minute limit unless told.
    let seconds = req
        .story
        .seconds
        .unwrap_or(if raw.is_some() { 180 } else { 60 });
    let written = match raw {
        Some(raw) => clean(&raw, seconds)?,
        None => {
            let llm = llm.ok_or_else(|| {
                StepError::invalid(
                    STEP,
                    "story.prompt needs an LLM (set OPENAI_API_KEY or OPENAI_BASE_URL)",
                )
            })?;
            let recent: Vec<String> = jobs
                .list(20)
                .await
                .map_err(|e| job_err(STEP, e))?
                .into_iter()
                .filter_map(|j| j.title)
                .collect();
            let style = req.story.style.as_deref().unwrap_or("post");
            llm.write(&detail, seconds, style, &recent).await?
        }
    };
    let title = req
        .title
        .clone()
        .or(written.title)
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    let file = match &title {
        Some(t) => format!("{t}\n\n{}\n", written.body.trim()),
        None => format!("{}\n", written.body.trim()),
    };
    // The job id: given, or from what makes the job (so a repeated trigger finds it).
    let job_id = if let Some(id) = &req.job_id {
        crate::store::check_key(id)
            .map_err(|e| StepError::wrap(STEP, ErrorName::InvalidInput, "job id", e))?;
        if id.contains('/') || id.len() > 80 {
            return Err(StepError::invalid(
                STEP,
                format!("invalid job id {id:?} (expected <= 80 characters, no '/')"),
            ));
        }
        id.clone()
    } else if let Some(id) = drop_id {
        id
    } else if let Some(t) = &req.trigger {
        keys::job_id(
            &t.channel,
            &keys::hash(&[t.channel.as_bytes(), t.time.as_bytes()]),
        )
    } else if source == "text" || source == "key" {
        let mut settings =
            serde_json::to_string(&(&req.voice, &req.background, &req.render, &req.channel))
                .unwrap_or_default();
        // Destinations are part of what was asked: the same story published elsewhere is
        // another job (jobs without destinations keep the ids they always had).
        if !req.publish.is_empty() {
            settings.push_str(&serde_json::to_string(&req.publish).unwrap_or_default());
        }
        keys::job_id(
            title.as_deref().unwrap_or(&written.body),
            &keys::hash(&[file.as_bytes(), settings.as_bytes()]),
        )
    } else {
        keys::job_id(
            title.as_deref().unwrap_or("story"),
            &keys::hash(&[input.execution.as_bytes()]),
        )
    };
    let channel = req
        .channel
        .clone()
        .or_else(|| req.trigger.as_ref().map(|t| t.channel.clone()))
        .unwrap_or_else(|| "r/storyreel".into());
    let background = match (&req.background, &req.background_selector) {
        (Some(b), _) => Some(b.clone()),
        (None, Some(sel)) => Some(pick_background(store, sel, &job_id).await?),
        (None, None) => None,
    };
    let job = Job {
        job_id: job_id.clone(),
        title: title.clone(),
        story_key: keys::story(&job_id),
        voice: req.voice.clone(),
        background,
        render: req.render.clone(),
        channel,
        publish: req.publish.clone(),
    };
    validate_job(&job)?;
    let record = JobRecord::new(&job_id, &input.execution, source, &detail, title);
    let (existing, created) = jobs.create(&record).await.map_err(|e| job_err(STEP, e))?;
    // A repeated trigger (another execution) stops here, and so does a finished job; a re-run
    // of the same execution (a resumed `storyreel make`) carries on and reuses what is done.
    // A succeeded job whose publishing was interrupted (a killed `make`) is carried on by the
    // same execution: publish finds its outputs and resumes the destinations.
    let interrupted = job.publish.iter().any(|d| {
        existing.publish.get(&d.id()).is_none_or(|s| {
            !s.is_settled() && s.status != storyreel_publish::DestinationStatus::Deferred
        })
    });
    let duplicate = !created
        && (existing.execution != input.execution
            || (existing.status == JobStatus::Succeeded && !interrupted));
    if !duplicate {
        store
            .put(
                &job.story_key,
                file.into_bytes(),
                "text/plain; charset=utf-8",
            )
            .await
            .map_err(|e| store_err(STEP, e))?;
        if !created {
            jobs.update(&job_id, JobUpdate::Step("Story".into()))
                .await
                .map_err(|e| job_err(STEP, e))?;
        }
    }
    Ok(StoryOutput { job, duplicate })
}

/// Resolves a library selector to a background, the same one on every retry of the job.
async fn pick_background(
    store: &dyn BlobStore,
    selector: &crate::cloud::backgrounds::BackgroundSelector,
    job_id: &str,
) -> Result<BackgroundChoice, StepError> {
    use crate::cloud::backgrounds as lib;
    let catalog = lib::list(store, None)
        .await
        .map_err(|e| StepError::wrap(STEP, ErrorName::Retryable, "background library", e))?;
    let seed =
        u64::from_str_radix(&keys::hash(&[b"background", job_id.as_bytes()]), 16).unwrap_or(0);
    let meta = lib::pick_background(&catalog, selector, seed)
        .map_err(|e| StepError::wrap(STEP, ErrorName::InvalidInput, "background library", e))?;
    Ok(lib::choice(meta, None))
}

/// Checks the options every later step relies on, so a bad value fails here, named.
fn validate_job(job: &Job) -> Result<(), StepError> {
    let r = &job.render;
    if !crate::plan::CHUNK_FRAMES_RANGE.contains(&r.chunk_frames) {
        return Err(StepError::invalid(
            STEP,
            format!(
                "chunk size {} frames is out of range (expected {} ..= {})",
                r.chunk_frames,
                crate::plan::CHUNK_FRAMES_RANGE.start(),
                crate::plan::CHUNK_FRAMES_RANGE.end()
            ),
        ));
    }
    let settings = crate::plan::encoder_settings(&r.options());
    settings
        .validate()
        .map_err(|e| StepError::wrap(STEP, ErrorName::InvalidInput, "render settings", e))?;
    if let Some(b) = &job.background {
        crate::store::check_key(&b.key)
            .map_err(|e| StepError::wrap(STEP, ErrorName::InvalidInput, "background", e))?;
    }
    let mut seen = std::collections::BTreeSet::new();
    for d in &job.publish {
        d.validate()
            .map_err(|e| StepError::wrap(STEP, ErrorName::InvalidInput, "publish", e))?;
        if !seen.insert(d.id()) {
            return Err(StepError::invalid(
                STEP,
                format!(
                    "destination {} is named twice (expected each account once)",
                    d.id()
                ),
            ));
        }
    }
    Ok(())
}
