//! The `prepare-background` function: footage uploaded under [`INCOMING_PREFIX`] becomes a
//! background in the library as `storyreel backgrounds add` adds it (prepared by
//! [`backgrounds::add`]), and an upload that cannot be prepared stays where it is with a
//! failure record beside it, `<key>.error.json` ([`FailureRecord`]).
//!
//! It is not a state of the video workflow: the bucket's EventBridge rule starts it with S3's
//! "Object Created" event, and Lambda hands it back its own invocation record when every
//! attempt of an event failed (the function is its own on-failure destination), so a timeout,
//! memory or a store outage also ends in a failure record rather than in silence.
//!
//! - **Tags** come from the upload's user metadata `tags` (`x-amz-meta-tags: lofi,minecraft`),
//!   separated by commas or spaces.
//! - **Idempotent.** The library id is a hash of (key, ETag) ([`background_id`]): a retried or
//!   repeated event finds `backgrounds/<id>.json`, finishes what an earlier run may have left
//!   (the upload still there) and adds nothing; two runs racing on one event write the same two
//!   keys. An event for an upload that is gone or was replaced since does nothing and says so.
//! - **Bad footage is an answer, not an error**: not a video, a codec that cannot be prepared
//!   here, too short, corrupt, empty or too large, malformed tags. The record is written, the
//!   upload stays, and the result is `failed`. Store failures are step errors (`Retryable`,
//!   `Fatal`), which Lambda retries.
//! - **Its own records** under `backgrounds/incoming/` start it again (an EventBridge rule
//!   cannot exclude a suffix under a prefix: two conditions on one field are an "or"); they are
//!   skipped here.
//! - **Scratch.** The upload is downloaded into a directory of its own under the scratch path
//!   and prepared into a scratch library (a local [`FsStore`]); only a prepared, checked result
//!   is uploaded, under the deterministic id. The directory is removed in every case, and
//!   directories left by an earlier process (a timed-out run in a reused Lambda environment)
//!   are swept first.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::{ErrorName, StepError, error_store};
use crate::cloud::backgrounds::{
    self, BackgroundMeta, LibraryError, MAX_BACKGROUND_BYTES, MIN_DURATION_MS,
};
use crate::cloud::triggers::decode_event_key;
use crate::keys;
use crate::store::{BlobStore, FsStore, ObjectInfo, StoreError, UserMetadata, check_key};

const STEP: &str = "prepare-background";

/// Where users upload footage for the library.
pub const INCOMING_PREFIX: &str = "backgrounds/incoming/";
/// What the failure record of `<key>` adds to its key.
pub const FAILURE_SUFFIX: &str = ".error.json";
/// The user metadata naming an upload's tags (`x-amz-meta-tags`).
pub const TAGS_METADATA: &str = "tags";
/// Largest metadata or failure record read.
const MAX_RECORD_BYTES: u64 = 256 << 10;
/// Scratch directories of this function start with this.
const SCRATCH_PREFIX: &str = "prepare-background-";

/// The failure record of the upload `key`.
pub fn failure_key(key: &str) -> String {
    format!("{key}{FAILURE_SUFFIX}")
}

/// The library id of the upload `key` with `etag`: the same for every event about that
/// upload, so a repeated event cannot add it twice.
pub fn background_id(key: &str, etag: &str) -> String {
    keys::hash(&[key.as_bytes(), etag.as_bytes()])
}

/// What starts the function.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum PrepareBackgroundInput {
    /// EventBridge's S3 "Object Created" event for an upload.
    Uploaded(ObjectCreated),
    /// Lambda's record of an event whose every attempt failed (the on-failure destination).
    GaveUp(InvocationRecord),
}

impl<'de> Deserialize<'de> for PrepareBackgroundInput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        if v.get("requestContext").is_some() && v.get("requestPayload").is_some() {
            serde_json::from_value(v)
                .map(PrepareBackgroundInput::GaveUp)
                .map_err(D::Error::custom)
        } else if v.get("detail-type").is_some() {
            serde_json::from_value(v)
                .map(PrepareBackgroundInput::Uploaded)
                .map_err(D::Error::custom)
        } else {
            Err(D::Error::custom(
                "expected an S3 \"Object Created\" event from EventBridge (detail-type, detail) or \
                 Lambda's record of a failed invocation (requestContext, requestPayload)",
            ))
        }
    }
}

/// The fields of EventBridge's S3 "Object Created" event that the function reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectCreated {
    /// EventBridge's event id: the same for a redelivery, new for a new upload.
    #[serde(default)]
    pub id: String,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub detail: ObjectCreatedDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectCreatedDetail {
    pub bucket: EventBucket,
    pub object: EventObject,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventBucket {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventObject {
    /// URL-encoded as S3 events carry keys (see [`crate::cloud::triggers`]).
    pub key: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub etag: String,
}

/// Lambda's invocation record for an on-failure destination (the fields read here).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvocationRecord {
    #[serde(default)]
    pub timestamp: String,
    #[serde(rename = "requestContext")]
    pub request_context: RequestContext,
    /// The event that failed.
    #[serde(rename = "requestPayload")]
    pub request_payload: Value,
    /// The last attempt's error (`errorType`, `errorMessage`).
    #[serde(rename = "responsePayload", default)]
    pub response_payload: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestContext {
    /// `RetriesExhausted` or `EventAgeExceeded`.
    #[serde(default)]
    pub condition: String,
    #[serde(rename = "approximateInvokeCount", default)]
    pub approximate_invoke_count: u32,
}

/// What the function did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrepareStatus {
    /// The upload is in the library now, and removed from `backgrounds/incoming/`.
    Added,
    /// The upload was already added (a retried or repeated event): nothing added.
    Duplicate,
    /// It cannot be prepared: the failure record is written and the upload stays.
    Failed,
    /// Nothing to do (the upload is gone or replaced, the function's own record, the same
    /// event already failed, a folder marker).
    Skipped,
}

impl PrepareStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PrepareStatus::Added => "added",
            PrepareStatus::Duplicate => "duplicate",
            PrepareStatus::Failed => "failed",
            PrepareStatus::Skipped => "skipped",
        }
    }
}

/// The function's answer (Lambda logs it; EventBridge does not read it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrepareBackgroundOutput {
    pub status: PrepareStatus,
    /// The upload's key (empty when the event names none).
    pub key: String,
    /// What happened, in a sentence.
    pub message: String,
    /// The library entry, added now or by an earlier run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<BackgroundMeta>,
    /// The failure record written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_key: Option<String>,
}

impl PrepareBackgroundOutput {
    fn skipped(key: &str, message: String) -> Self {
        PrepareBackgroundOutput {
            status: PrepareStatus::Skipped,
            key: key.to_string(),
            message,
            background: None,
            failure_key: None,
        }
    }
}

/// `<key>.error.json`: why an upload is still under `backgrounds/incoming/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureRecord {
    /// The upload.
    pub key: String,
    pub etag: String,
    pub bytes: u64,
    /// The EventBridge event handled (a redelivery of it is skipped).
    pub event_id: String,
    /// RFC 3339.
    pub failed_at: String,
    /// The stable error name: `InvalidInput` for footage that cannot be prepared; otherwise
    /// the last attempt's error when every attempt failed.
    pub error: String,
    /// The whole error chain on one line.
    pub message: String,
    /// The chain, outermost first.
    pub causes: Vec<String>,
    /// What to do about it.
    pub help: String,
}

const HELP_BAD: &str = "The upload stays here. Fix it and upload it again (a new upload \
    replaces this record): an H.264 video in MP4 or MOV, at least 10 s long and at most 4 GiB, \
    with its tags in the object's metadata `tags`, e.g. `aws s3 cp clip.mp4 \
    s3://BUCKET/backgrounds/incoming/ --metadata '{\"tags\":\"lofi,minecraft\"}'`. Footage in \
    other codecs can be added from a machine with FFmpeg: `storyreel backgrounds add FILE \
    --bucket BUCKET`.";

const HELP_GAVE_UP: &str = "The upload stays here. Preparing it failed on every attempt (see \
    the message): a store outage or missing permission needs fixing first; a clip that takes \
    longer than the function's 15 minutes or its memory should be trimmed, or added from a \
    machine with `storyreel backgrounds add FILE --bucket BUCKET`. Upload it again to retry.";

/// Why an upload cannot be prepared or stored.
#[derive(Debug, thiserror::Error)]
pub enum PrepareBackgroundError {
    /// The upload has no bytes.
    #[error("upload {key:?} is empty")]
    Empty { key: String },
    /// The upload is larger than the library accepts.
    #[error("upload {key:?} is {bytes} bytes (expected <= {max})")]
    TooLarge { key: String, bytes: u64, max: u64 },
    /// The `tags` metadata holds a malformed tag.
    #[error(
        "invalid tags {value:?} in the upload's metadata {TAGS_METADATA:?} (expected tags \
         separated by commas)"
    )]
    Tags {
        value: String,
        #[source]
        source: Box<LibraryError>,
    },
    /// The footage cannot be prepared (not a video, codec, length, corruption).
    #[error("upload {key:?} cannot be prepared")]
    Unusable {
        key: String,
        #[source]
        source: Box<LibraryError>,
    },
    /// The download ended early.
    #[error("download of {key:?} has {got} bytes (expected {expected})")]
    ShortDownload {
        key: String,
        got: u64,
        expected: u64,
    },
    /// The scratch space failed (full, not writable).
    #[error("scratch space {}", path.display())]
    Scratch {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The prepared background could not be written to the scratch library.
    #[error("the prepared background of {key:?} could not be written to scratch space")]
    Library {
        key: String,
        #[source]
        source: Box<LibraryError>,
    },
    /// A stored record is not JSON of its shape.
    #[error("{key:?} is malformed")]
    BadRecord {
        key: String,
        #[source]
        source: serde_json::Error,
    },
}

impl PrepareBackgroundError {
    /// The stable name: the footage's fault is `InvalidInput`.
    pub fn name(&self) -> ErrorName {
        use PrepareBackgroundError as E;
        match self {
            E::Empty { .. } | E::TooLarge { .. } | E::Tags { .. } | E::Unusable { .. } => {
                ErrorName::InvalidInput
            }
            E::ShortDownload { .. } => ErrorName::Retryable,
            E::Scratch { .. } | E::Library { .. } | E::BadRecord { .. } => ErrorName::Fatal,
        }
    }
}

fn step_err(message: &str, e: PrepareBackgroundError) -> StepError {
    StepError::wrap(STEP, e.name(), message, e)
}

fn store_err(e: StoreError) -> StepError {
    error_store(STEP, e)
}

/// Why a key under the incoming prefix is not an upload to prepare, if it is not.
fn not_an_upload(key: &str) -> Option<String> {
    if !key.starts_with(INCOMING_PREFIX) {
        Some(format!(
            "{key:?} is outside {INCOMING_PREFIX} (the rule should not have sent it)"
        ))
    } else if key.ends_with(FAILURE_SUFFIX) {
        Some(format!("{key:?} is a failure record this function wrote"))
    } else if key.ends_with('/') {
        Some(format!("{key:?} is a folder marker"))
    } else {
        None
    }
}

/// Tags from the `tags` metadata: separated by commas or spaces, normalised as the CLI does.
pub fn tags_from_metadata(meta: &UserMetadata) -> Result<Vec<String>, PrepareBackgroundError> {
    let Some(value) = meta.get(TAGS_METADATA) else {
        return Ok(Vec::new());
    };
    let tags: Vec<String> = value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    backgrounds::normalise_tags(&tags).map_err(|source| PrepareBackgroundError::Tags {
        value: value.clone(),
        source: Box::new(source),
    })
}

/// Runs the function on one event.
pub async fn prepare_background(
    input: PrepareBackgroundInput,
    store: &dyn BlobStore,
    scratch: &Path,
) -> Result<PrepareBackgroundOutput, StepError> {
    match input {
        PrepareBackgroundInput::Uploaded(event) => uploaded(&event, store, scratch).await,
        PrepareBackgroundInput::GaveUp(record) => gave_up(&record, store).await,
    }
}

/// The upload's key from an event, or why there is nothing to do.
fn event_key(event: &ObjectCreated) -> Result<Result<String, PrepareBackgroundOutput>, StepError> {
    if event.detail_type != "Object Created" {
        return Err(StepError::invalid(
            STEP,
            format!(
                "unsupported event {:?} (expected an S3 \"Object Created\" event)",
                event.detail_type
            ),
        ));
    }
    let key = decode_event_key(&event.detail.object.key)
        .map_err(|e| StepError::wrap(STEP, ErrorName::InvalidInput, "S3 event", e))?;
    if let Some(why) = not_an_upload(&key) {
        return Ok(Err(PrepareBackgroundOutput::skipped(&key, why)));
    }
    if let Err(e) = check_key(&key).and_then(|_| check_key(&failure_key(&key))) {
        // Nothing can be written beside it, and nothing stored under it could be read back.
        return Ok(Err(PrepareBackgroundOutput::skipped(
            &key,
            format!("{e}: upload it again under a plain name"),
        )));
    }
    Ok(Ok(key))
}

async fn uploaded(
    event: &ObjectCreated,
    store: &dyn BlobStore,
    scratch: &Path,
) -> Result<PrepareBackgroundOutput, StepError> {
    let key = match event_key(event)? {
        Ok(k) => k,
        Err(skipped) => return Ok(skipped),
    };
    let mut upload = None;
    let etag = match event.detail.object.etag.trim_matches('"') {
        // A hand-written event: the upload as it is now.
        "" => match store.head_with_metadata(&key).await.map_err(store_err)? {
            Some(u) => {
                let etag = u.0.etag.clone();
                upload = Some(u);
                etag
            }
            None => return Ok(gone(&key)),
        },
        e => e.to_string(),
    };
    let id = background_id(&key, &etag);
    if let Some(meta) = library_entry(store, &id).await? {
        let removed = finish(store, &key, &etag).await?;
        let message = format!(
            "{key} (ETag {etag}) is already in the library as {id}{}",
            if removed { "; removed the upload" } else { "" }
        );
        return Ok(PrepareBackgroundOutput {
            status: PrepareStatus::Duplicate,
            key,
            message,
            background: Some(meta),
            failure_key: None,
        });
    }
    let (info, metadata) = match upload {
        Some(u) => u,
        None => match store.head_with_metadata(&key).await.map_err(store_err)? {
            Some(u) => u,
            None => return Ok(gone(&key)),
        },
    };
    if info.etag != etag {
        return Ok(replaced(&key, &etag, &info.etag));
    }
    // A redelivery of an event that already failed.
    if let Some(r) = failure_record(store, &key).await?
        && r.etag == etag
        && !event.id.is_empty()
        && r.event_id == event.id
    {
        return Ok(PrepareBackgroundOutput::skipped(
            &key,
            format!(
                "this event already failed for {key}: see {}",
                failure_key(&key)
            ),
        ));
    }

    let dir = ScratchDir::create(scratch, &id).map_err(|e| step_err("scratch space", e))?;
    let local = dir.path.join(local_name(&key));
    match prepare(store, &key, &info, &metadata, &id, &dir, &local).await {
        Ok(meta) => {
            finish(store, &key, &etag).await?;
            Ok(PrepareBackgroundOutput {
                status: PrepareStatus::Added,
                message: format!(
                    "added {key} to the library as {} ({}x{}, {:.1} s, tags: {})",
                    meta.id,
                    meta.width,
                    meta.height,
                    meta.duration_ms as f64 / 1000.0,
                    if meta.tags.is_empty() {
                        "none".to_string()
                    } else {
                        meta.tags.join(", ")
                    }
                ),
                key,
                background: Some(meta),
                failure_key: None,
            })
        }
        Err(Outcome::Gone) => Ok(gone(&key)),
        Err(Outcome::Error(e)) if e.name == ErrorName::InvalidInput => {
            let local_name = local.display().to_string();
            let causes: Vec<String> = causes(&e)
                .into_iter()
                // Messages name the scratch file; the user knows the key.
                .map(|c| c.replace(&local_name, &key))
                .collect();
            let record = FailureRecord {
                key: key.clone(),
                etag,
                bytes: info.bytes,
                event_id: event.id.clone(),
                failed_at: storyreel_publish::time::format_rfc3339(crate::jobs::unix_now()),
                error: e.name.as_str().to_string(),
                message: causes.join(": "),
                causes,
                help: HELP_BAD.to_string(),
            };
            write_record(store, &record).await?;
            Ok(PrepareBackgroundOutput {
                status: PrepareStatus::Failed,
                message: format!("recorded in {}: {}", failure_key(&key), record.message),
                key: key.clone(),
                background: None,
                failure_key: Some(failure_key(&key)),
            })
        }
        Err(Outcome::Error(e)) => Err(e),
    }
}

/// How preparing ended, when it did not add the background.
enum Outcome {
    /// The upload disappeared while it was being read.
    Gone,
    /// `InvalidInput`: the footage's fault (recorded); anything else: a step error.
    Error(StepError),
}

impl From<StepError> for Outcome {
    fn from(e: StepError) -> Self {
        Outcome::Error(e)
    }
}

/// Downloads, prepares and stores the upload under `id`; checks come first, the store is
/// written last.
async fn prepare(
    store: &dyn BlobStore,
    key: &str,
    info: &ObjectInfo,
    metadata: &UserMetadata,
    id: &str,
    dir: &ScratchDir,
    local: &Path,
) -> Result<BackgroundMeta, Outcome> {
    let bad = |e: PrepareBackgroundError| Outcome::Error(step_err("bad upload", e));
    if info.bytes == 0 {
        return Err(bad(PrepareBackgroundError::Empty { key: key.into() }));
    }
    if info.bytes > MAX_BACKGROUND_BYTES {
        return Err(bad(PrepareBackgroundError::TooLarge {
            key: key.into(),
            bytes: info.bytes,
            max: MAX_BACKGROUND_BYTES,
        }));
    }
    let tags = tags_from_metadata(metadata).map_err(bad)?;
    match store.get_file(key, local).await {
        Ok(()) => {}
        Err(StoreError::NotFound { .. }) => return Err(Outcome::Gone),
        Err(e) => return Err(store_err(e).into()),
    }
    let got = std::fs::metadata(local).map_or(0, |m| m.len());
    if got != info.bytes {
        return Err(Outcome::Error(step_err(
            "download",
            PrepareBackgroundError::ShortDownload {
                key: key.into(),
                got,
                expected: info.bytes,
            },
        )));
    }
    let library = FsStore::new(dir.path.join("library"));
    let prepared = backgrounds::add(&library, local, &tags, MIN_DURATION_MS)
        .await
        .map_err(|e| match e {
            LibraryError::Unusable { .. }
            | LibraryError::Undecodable { .. }
            | LibraryError::InvalidTag { .. } => bad(PrepareBackgroundError::Unusable {
                key: key.into(),
                source: Box::new(e),
            }),
            other => Outcome::Error(step_err(
                "prepare",
                PrepareBackgroundError::Library {
                    key: key.into(),
                    source: Box::new(other),
                },
            )),
        })?;
    // Room on the scratch disk before the upload (the prepared copy is all that is needed).
    let _ = std::fs::remove_file(local);
    let video = library.path(&prepared.key).map_err(store_err)?;
    // Named after the upload, not the scratch file.
    let original = key.rsplit('/').next().unwrap_or(key).to_string();
    let mut meta = BackgroundMeta {
        id: id.to_string(),
        key: backgrounds::video_key(id),
        original_name: original.clone(),
        ..prepared
    };
    meta.source.name = original;
    // The video first, then the metadata that lists it (as `backgrounds::add` does).
    store
        .put_file(&meta.key, &video, "video/mp4")
        .await
        .map_err(store_err)?;
    let json = serde_json::to_vec_pretty(&meta)
        .map_err(|e| StepError::fatal(STEP, "encode the background's metadata", e))?;
    store
        .put(&backgrounds::meta_key(id), json, "application/json")
        .await
        .map_err(store_err)?;
    Ok(meta)
}

/// The entry `id` of the library, if it is there.
async fn library_entry(
    store: &dyn BlobStore,
    id: &str,
) -> Result<Option<BackgroundMeta>, StepError> {
    let key = backgrounds::meta_key(id);
    let Some(bytes) = read_small(store, &key).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| step_err("library", PrepareBackgroundError::BadRecord { key, source }))
}

/// The failure record of `key`, if there is one this function can read (one it cannot is
/// replaced, not obeyed).
async fn failure_record(
    store: &dyn BlobStore,
    key: &str,
) -> Result<Option<FailureRecord>, StepError> {
    let bytes = read_small(store, &failure_key(key)).await?;
    Ok(bytes.and_then(|b| serde_json::from_slice(&b).ok()))
}

async fn read_small(store: &dyn BlobStore, key: &str) -> Result<Option<Vec<u8>>, StepError> {
    match store.get(key, MAX_RECORD_BYTES).await {
        Ok(b) => Ok(Some(b)),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(store_err(e)),
    }
}

async fn write_record(store: &dyn BlobStore, record: &FailureRecord) -> Result<(), StepError> {
    let json = serde_json::to_vec_pretty(record)
        .map_err(|e| StepError::fatal(STEP, "encode the failure record", e))?;
    store
        .put(&failure_key(&record.key), json, "application/json")
        .await
        .map_err(store_err)
}

/// After the background is in the library: removes the upload (if it is still the one added)
/// and any failure record of an earlier upload under its name. True if the upload was removed.
async fn finish(store: &dyn BlobStore, key: &str, etag: &str) -> Result<bool, StepError> {
    let removed = match store.head(key).await.map_err(store_err)? {
        Some(now) if now.etag == etag => {
            store.delete_prefix(key).await.map_err(store_err)?;
            true
        }
        _ => false,
    };
    store
        .delete_prefix(&failure_key(key))
        .await
        .map_err(store_err)?;
    Ok(removed)
}

fn gone(key: &str) -> PrepareBackgroundOutput {
    PrepareBackgroundOutput::skipped(
        key,
        format!("{key} is gone (already prepared, or deleted): nothing to do"),
    )
}

fn replaced(key: &str, event_etag: &str, now: &str) -> PrepareBackgroundOutput {
    PrepareBackgroundOutput::skipped(
        key,
        format!(
            "{key} was replaced since this event (ETag {now}, the event's {event_etag}): the \
             newer upload's own event prepares it"
        ),
    )
}

/// Lambda gave up on an event: the failure record says so, unless the upload was added or is
/// gone meanwhile.
async fn gave_up(
    record: &InvocationRecord,
    store: &dyn BlobStore,
) -> Result<PrepareBackgroundOutput, StepError> {
    let event = match serde_json::from_value::<ObjectCreated>(record.request_payload.clone()) {
        Ok(e) => e,
        // A record of a failed record (writing the failure record failed every time): the
        // chain stops here, in the log.
        Err(_) => {
            return Ok(PrepareBackgroundOutput::skipped(
                "",
                format!(
                    "Lambda gave up on an event that is not an upload's; nothing to record: {}",
                    record.request_payload
                ),
            ));
        }
    };
    let key = match event_key(&event) {
        Ok(Ok(k)) => k,
        Ok(Err(skipped)) => return Ok(skipped),
        Err(e) => {
            return Ok(PrepareBackgroundOutput::skipped(
                "",
                format!(
                    "Lambda gave up on an event that names no upload: {}",
                    e.chain()
                ),
            ));
        }
    };
    let Some(info) = store.head(&key).await.map_err(store_err)? else {
        return Ok(gone(&key));
    };
    let etag = match event.detail.object.etag.trim_matches('"') {
        "" => info.etag.clone(),
        e => e.to_string(),
    };
    if info.etag != etag {
        return Ok(replaced(&key, &etag, &info.etag));
    }
    if let Some(meta) = library_entry(store, &background_id(&key, &etag)).await? {
        // Another delivery of the same event succeeded.
        let removed = finish(store, &key, &etag).await?;
        return Ok(PrepareBackgroundOutput {
            status: PrepareStatus::Duplicate,
            message: format!(
                "{key} is in the library as {}{}",
                meta.id,
                if removed { "; removed the upload" } else { "" }
            ),
            key,
            background: Some(meta),
            failure_key: None,
        });
    }
    let last = &record.response_payload;
    let error = last
        .get("errorType")
        .and_then(Value::as_str)
        .unwrap_or("Unhandled")
        .to_string();
    let last_message = last
        .get("errorMessage")
        .and_then(Value::as_str)
        .map_or_else(|| last.to_string(), str::to_string);
    let ctx = &record.request_context;
    let mut causes = vec![format!(
        "preparing {key} failed on every attempt ({} attempts, {})",
        ctx.approximate_invoke_count.max(1),
        if ctx.condition.is_empty() {
            "RetriesExhausted"
        } else {
            &ctx.condition
        }
    )];
    causes.push(format!("{error}: {last_message}"));
    let failed = FailureRecord {
        key: key.clone(),
        etag,
        bytes: info.bytes,
        event_id: event.id.clone(),
        failed_at: storyreel_publish::time::format_rfc3339(crate::jobs::unix_now()),
        error,
        message: causes.join(": "),
        causes,
        help: HELP_GAVE_UP.to_string(),
    };
    write_record(store, &failed).await?;
    Ok(PrepareBackgroundOutput {
        status: PrepareStatus::Failed,
        message: format!("recorded in {}: {}", failure_key(&key), failed.message),
        key: key.clone(),
        background: None,
        failure_key: Some(failure_key(&key)),
    })
}

/// What went wrong, outermost first, each once: the causes of a step error (its own line
/// names the step, which a record beside the upload need not).
fn causes(e: &StepError) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = e.source.as_deref().map(|e| e as _);
    if cur.is_none() {
        out.push(e.message.clone());
    }
    while let Some(c) = cur {
        let text = c.to_string();
        if !text.is_empty() && out.last().is_none_or(|l| !l.ends_with(&text)) {
            out.push(text);
        }
        cur = c.source();
    }
    out
}

/// A file name for the download: the upload's own name, reduced to safe characters.
fn local_name(key: &str) -> String {
    let base = key.rsplit('/').next().unwrap_or(key);
    let mut name: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.len() > 100 {
        name = name.split_off(name.len() - 100);
    }
    if name.trim_matches('.').is_empty() {
        "upload".to_string()
    } else {
        name
    }
}

/// Scratch directories of this process that are in use.
static LIVE: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

/// A directory of one run under the scratch path, removed when dropped.
struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    fn create(scratch: &Path, id: &str) -> Result<ScratchDir, PrepareBackgroundError> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| PrepareBackgroundError::Scratch { path, source }
        };
        std::fs::create_dir_all(scratch).map_err(io(scratch))?;
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        let live = live.get_or_insert_with(HashSet::new);
        // What an earlier process left (Lambda reuses /tmp after a timeout ends a run).
        if let Ok(entries) = std::fs::read_dir(scratch) {
            for entry in entries.flatten() {
                let p = entry.path();
                let ours = entry
                    .file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with(SCRATCH_PREFIX));
                if ours && !live.contains(&p) {
                    let _ = std::fs::remove_dir_all(&p);
                }
            }
        }
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let path = scratch.join(format!("{SCRATCH_PREFIX}{id}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(io(&path))?;
        live.insert(path.clone());
        Ok(ScratchDir { path })
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
        if let Some(live) = LIVE.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            live.remove(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(key: &str, etag: &str) -> Value {
        serde_json::json!({
            "version": "0", "id": "e1", "detail-type": "Object Created", "source": "aws.s3",
            "time": "2026-01-01T00:00:00Z",
            "detail": {"bucket": {"name": "b"}, "object": {"key": key, "size": 5, "etag": etag}}
        })
    }

    #[test]
    fn inputs_are_told_apart_with_named_errors() {
        let up: PrepareBackgroundInput =
            serde_json::from_value(event("backgrounds/incoming/a+b.mp4", "x")).unwrap();
        assert!(
            matches!(up, PrepareBackgroundInput::Uploaded(ref e) if e.detail.object.etag == "x")
        );
        let record = serde_json::json!({
            "version": "1.0", "timestamp": "2026-01-01T00:15:00Z",
            "requestContext": {"requestId": "r", "functionArn": "arn", "condition": "RetriesExhausted",
                "approximateInvokeCount": 2},
            "requestPayload": event("backgrounds/incoming/a.mp4", "x"),
            "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
            "responsePayload": {"errorMessage": "Task timed out after 900.00 seconds"}
        });
        let gave: PrepareBackgroundInput = serde_json::from_value(record).unwrap();
        assert!(
            matches!(gave, PrepareBackgroundInput::GaveUp(ref r) if r.request_context.approximate_invoke_count == 2)
        );
        let e = serde_json::from_value::<PrepareBackgroundInput>(serde_json::json!({"nope": 1}))
            .unwrap_err();
        assert!(e.to_string().contains("Object Created"), "{e}");
        let e = serde_json::from_value::<PrepareBackgroundInput>(
            serde_json::json!({"detail-type": "Object Created"}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("detail"), "{e}");
    }

    #[test]
    fn own_records_folders_and_other_prefixes_are_not_uploads() {
        assert!(not_an_upload("backgrounds/incoming/a.mp4").is_none());
        assert!(not_an_upload("backgrounds/incoming/sub/a.mov").is_none());
        assert!(not_an_upload("backgrounds/incoming/a.mp4.error.json").is_some());
        assert!(not_an_upload("backgrounds/incoming/").is_some());
        assert!(not_an_upload("backgrounds/abc.mp4").is_some());
        assert!(not_an_upload("drop/a.txt").is_some());
    }

    #[test]
    fn tags_come_from_metadata_like_the_cli_takes_them() {
        let meta = |v: &str| UserMetadata::from([(TAGS_METADATA.to_string(), v.to_string())]);
        assert_eq!(
            tags_from_metadata(&meta("lofi,Minecraft, lofi  parkour")).unwrap(),
            ["lofi", "minecraft", "parkour"]
        );
        assert!(tags_from_metadata(&UserMetadata::new()).unwrap().is_empty());
        let e = tags_from_metadata(&meta("ok,no/slashes")).unwrap_err();
        assert_eq!(e.name(), ErrorName::InvalidInput);
        assert!(e.to_string().contains("ok,no/slashes"), "{e}");
    }

    #[test]
    fn ids_follow_key_and_etag_and_are_library_ids() {
        let a = background_id("backgrounds/incoming/a.mp4", "e1");
        assert_eq!(a, background_id("backgrounds/incoming/a.mp4", "e1"));
        assert_ne!(a, background_id("backgrounds/incoming/a.mp4", "e2"));
        assert_ne!(a, background_id("backgrounds/incoming/b.mp4", "e1"));
        backgrounds::check_id(&a).unwrap();
    }

    #[test]
    fn local_names_are_safe() {
        assert_eq!(
            local_name("backgrounds/incoming/My Clip (1).mp4"),
            "My_Clip__1_.mp4"
        );
        assert_eq!(local_name("backgrounds/incoming/.."), "upload");
        let long = format!("backgrounds/incoming/{}.mp4", "x".repeat(300));
        assert_eq!(local_name(&long).len(), 100);
        assert!(local_name(&long).ends_with(".mp4"));
    }
}
