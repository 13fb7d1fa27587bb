//! The job record: one per video, what a user (or `storyreel cloud status`) reads to see how a
//! job is going and why it failed. DynamoDB in the cloud, JSON files on one machine.
//!
//! Every update is idempotent, so a retried step never double-counts: chunks done are a set of
//! chunk indices, not a counter, and creation is conditional (a repeated trigger finds the job).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use storyreel_publish::DestinationState;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Running,
    Succeeded,
    Failed,
}

/// Why a job failed: the state that failed and the error Step Functions saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFailure {
    /// The state's name, e.g. `Render chunks`.
    pub step: String,
    /// The stable error name, e.g. `InvalidInput` or `States.Timeout`.
    pub error: String,
    /// The cause, as readable text.
    pub cause: String,
}

/// Where a finished job's outputs are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct JobOutputs {
    pub video: String,
    pub srt: String,
    pub vtt: String,
    pub thumbnail: String,
    /// A download link for the video (pre-signed in the cloud, a path locally).
    pub link: String,
}

/// One job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub job_id: String,
    /// The execution that created the job (a repeated trigger runs under another name).
    #[serde(default)]
    pub execution: String,
    /// What started it: `text`, `prompt`, `drop`, `channel`.
    pub source: String,
    /// Details of the source: the drop object key, the channel name, the prompt.
    pub source_detail: String,
    pub title: Option<String>,
    pub status: JobStatus,
    /// The state running now (or the last one that ran).
    pub step: String,
    pub chunks_total: u32,
    /// Indices of chunks rendered (a set, so retries do not double-count).
    #[serde(default)]
    pub chunks_done: BTreeSet<u32>,
    /// Milliseconds each rendered chunk's render-chunk run took (the longest, if it ran more
    /// than once); chunks found already rendered add nothing.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub chunk_ms: BTreeMap<u32, u64>,
    /// Unix seconds.
    pub created_at: u64,
    pub updated_at: u64,
    pub error: Option<JobFailure>,
    pub outputs: Option<JobOutputs>,
    /// What the job cost in the cloud, estimated by publish from its own chunk times,
    /// narration and chunk count (absent on records older than the estimate and on failures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<crate::cost::CostEstimate>,
    /// Each destination's publishing progress, by `platform:account` (absent when the job
    /// publishes nowhere). Written only through [`JobStore::put_destination`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub publish: BTreeMap<String, DestinationState>,
}

impl JobRecord {
    /// A new running job.
    pub fn new(
        job_id: &str,
        execution: &str,
        source: &str,
        source_detail: &str,
        title: Option<String>,
    ) -> Self {
        let now = unix_now();
        JobRecord {
            job_id: job_id.to_string(),
            execution: execution.to_string(),
            source: source.to_string(),
            source_detail: source_detail.to_string(),
            title,
            status: JobStatus::Running,
            step: "Story".into(),
            chunks_total: 0,
            chunks_done: BTreeSet::new(),
            chunk_ms: BTreeMap::new(),
            created_at: now,
            updated_at: now,
            error: None,
            outputs: None,
            cost: None,
            publish: BTreeMap::new(),
        }
    }
}

/// The UTC calendar date (year, month, day) of Unix time `secs`.
pub fn utc_date(secs: u64) -> (i64, i64, i64) {
    storyreel_asl::civil_from_days((secs / 86_400) as i64)
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A change to a job.
#[derive(Debug, Clone, PartialEq)]
pub enum JobUpdate {
    /// The job entered a state.
    Step(String),
    /// The chunk plan is known.
    ChunksTotal(u32),
    /// A chunk is rendered (idempotent): found already rendered.
    ChunkDone(u32),
    /// A chunk was rendered by this run in `millis` ms (idempotent: done is a set, and a
    /// chunk's time is the longest recorded).
    ChunkRendered {
        index: u32,
        millis: u64,
    },
    /// The job's cost estimate (replaces any earlier one).
    Estimated(Box<crate::cost::CostEstimate>),
    Failed(JobFailure),
    Succeeded(JobOutputs),
}

/// Why the job table could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("job {0:?} not found")]
    NotFound(String),
    #[error("job table {table} is throttling or unavailable")]
    Unavailable {
        table: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("job table {table}: {op} failed")]
    Io {
        op: &'static str,
        table: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl JobError {
    /// True when retrying the same call may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, JobError::Unavailable { .. })
    }
}

/// The job table capability.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Creates `job` unless a job with its id exists; returns the job as stored and whether
    /// this call created it.
    async fn create(&self, job: &JobRecord) -> Result<(JobRecord, bool), JobError>;
    async fn get(&self, job_id: &str) -> Result<Option<JobRecord>, JobError>;
    async fn update(&self, job_id: &str, update: JobUpdate) -> Result<(), JobError>;
    /// The most recent jobs first, at most `limit`.
    async fn list(&self, limit: usize) -> Result<Vec<JobRecord>, JobError>;
    /// Writes destination `dest`'s state if the stored one is at revision `expected` (0: none
    /// stored yet): a compare-and-set, so of two runs moving the same destination only one
    /// succeeds. Returns false when the condition failed (re-read and decide again).
    async fn put_destination(
        &self,
        job_id: &str,
        dest: &str,
        expected: u64,
        state: &DestinationState,
    ) -> Result<bool, JobError>;
}

/// The compare-and-set of [`JobStore::put_destination`] on a record in memory.
pub fn apply_destination(
    job: &mut JobRecord,
    dest: &str,
    expected: u64,
    state: &DestinationState,
) -> bool {
    let current = job.publish.get(dest).map_or(0, |s| s.rev);
    if current != expected {
        return false;
    }
    job.publish.insert(dest.to_string(), state.clone());
    job.updated_at = unix_now();
    true
}

/// Applies an update to a record (the semantics both adapters share).
pub fn apply(job: &mut JobRecord, update: JobUpdate) {
    match update {
        JobUpdate::Step(s) => job.step = s,
        JobUpdate::ChunksTotal(n) => job.chunks_total = n,
        JobUpdate::ChunkDone(i) => {
            job.chunks_done.insert(i);
        }
        JobUpdate::ChunkRendered { index, millis } => {
            job.chunks_done.insert(index);
            let ms = job.chunk_ms.entry(index).or_insert(millis);
            *ms = (*ms).max(millis);
        }
        JobUpdate::Estimated(e) => job.cost = Some(*e),
        JobUpdate::Failed(f) => {
            job.status = JobStatus::Failed;
            job.step = f.step.clone();
            job.error = Some(f);
        }
        JobUpdate::Succeeded(o) => {
            job.status = JobStatus::Succeeded;
            job.step = "Done".into();
            job.error = None;
            job.outputs = Some(o);
        }
    }
    job.updated_at = unix_now();
}

/// Job records as JSON files, `dir/<job_id>.json`, for local runs.
pub struct FsJobs {
    dir: PathBuf,
    lock: tokio::sync::Mutex<()>,
}

impl FsJobs {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FsJobs {
            dir: dir.into(),
            lock: tokio::sync::Mutex::new(()),
        }
    }

    fn path(&self, job_id: &str) -> Result<PathBuf, JobError> {
        crate::store::check_key(job_id).map_err(|e| self.err("open", e))?;
        if job_id.contains('/') {
            return Err(self.err(
                "open",
                std::io::Error::other(format!("invalid job id {job_id:?} (expected no '/')")),
            ));
        }
        Ok(self.dir.join(format!("{job_id}.json")))
    }

    fn err(&self, op: &'static str, e: impl std::error::Error + Send + Sync + 'static) -> JobError {
        JobError::Io {
            op,
            table: self.dir.display().to_string(),
            source: Box::new(e),
        }
    }

    fn read(&self, job_id: &str) -> Result<Option<JobRecord>, JobError> {
        let path = self.path(job_id)?;
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| self.err("parse", e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err("read", e)),
        }
    }

    /// An exclusive lock on the directory's job records across processes (a `watch` and a
    /// `publish retry` may run at once), held until the returned file is dropped. The
    /// in-process mutex orders this process's tasks; `flock` orders processes.
    fn lock_dir(&self) -> Result<std::fs::File, JobError> {
        use std::os::fd::AsRawFd;
        std::fs::create_dir_all(&self.dir).map_err(|e| self.err("lock", e))?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join(".lock"))
            .map_err(|e| self.err("lock", e))?;
        // SAFETY: flock on a descriptor this function owns; no memory is shared.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(self.err("lock", std::io::Error::last_os_error()));
        }
        Ok(file)
    }

    fn write(&self, job: &JobRecord) -> Result<(), JobError> {
        let path = self.path(&job.job_id)?;
        let bytes = serde_json::to_vec_pretty(job).map_err(|e| self.err("encode", e))?;
        std::fs::create_dir_all(&self.dir).map_err(|e| self.err("write", e))?;
        let tmp = path.with_extension("json.partial");
        std::fs::write(&tmp, bytes)
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|e| self.err("write", e))
    }
}

#[async_trait]
impl JobStore for FsJobs {
    async fn create(&self, job: &JobRecord) -> Result<(JobRecord, bool), JobError> {
        let _g = self.lock.lock().await;
        let _f = self.lock_dir()?;
        if let Some(existing) = self.read(&job.job_id)? {
            return Ok((existing, false));
        }
        self.write(job)?;
        Ok((job.clone(), true))
    }

    async fn get(&self, job_id: &str) -> Result<Option<JobRecord>, JobError> {
        let _g = self.lock.lock().await;
        self.read(job_id)
    }

    async fn update(&self, job_id: &str, update: JobUpdate) -> Result<(), JobError> {
        let _g = self.lock.lock().await;
        let _f = self.lock_dir()?;
        let mut job = self
            .read(job_id)?
            .ok_or_else(|| JobError::NotFound(job_id.to_string()))?;
        apply(&mut job, update);
        self.write(&job)
    }

    async fn list(&self, limit: usize) -> Result<Vec<JobRecord>, JobError> {
        let _g = self.lock.lock().await;
        let mut jobs = Vec::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(jobs),
            Err(e) => return Err(self.err("list", e)),
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if let Some(id) = name.strip_suffix(".json")
                && let Ok(Some(job)) = self.read(id)
            {
                jobs.push(job);
            }
        }
        jobs.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then(a.job_id.cmp(&b.job_id))
        });
        jobs.truncate(limit);
        Ok(jobs)
    }

    async fn put_destination(
        &self,
        job_id: &str,
        dest: &str,
        expected: u64,
        state: &DestinationState,
    ) -> Result<bool, JobError> {
        let _g = self.lock.lock().await;
        let _f = self.lock_dir()?;
        let mut job = self
            .read(job_id)?
            .ok_or_else(|| JobError::NotFound(job_id.to_string()))?;
        if !apply_destination(&mut job, dest, expected, state) {
            return Ok(false);
        }
        self.write(&job)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn utc_dates_follow_the_calendar() {
        assert_eq!(utc_date(0), (1970, 1, 1));
        assert_eq!(utc_date(951_782_400), (2000, 2, 29));
        assert_eq!(utc_date(1_795_737_599), (2026, 11, 26));
    }

    use super::*;

    #[tokio::test]
    async fn create_is_conditional_and_chunks_are_a_set() {
        let dir = tempfile::tempdir().unwrap();
        let jobs = FsJobs::new(dir.path());
        let job = JobRecord::new("j1", "e1", "text", "story.txt", None);
        assert!(jobs.create(&job).await.unwrap().1);
        let (again, created) = jobs.create(&job).await.unwrap();
        assert!(!created);
        assert_eq!(again.job_id, "j1");
        jobs.update("j1", JobUpdate::ChunksTotal(3)).await.unwrap();
        for i in [0, 1, 1, 2, 0] {
            jobs.update("j1", JobUpdate::ChunkDone(i)).await.unwrap();
        }
        let j = jobs.get("j1").await.unwrap().unwrap();
        assert_eq!(j.chunks_done.len(), 3);
        assert!(j.chunk_ms.is_empty());
        // Rendered chunks record their time; a repeated update changes nothing, the longest
        // of two runs stays.
        for (index, millis) in [(3, 900), (3, 900), (4, 700), (4, 650)] {
            jobs.update("j1", JobUpdate::ChunkRendered { index, millis })
                .await
                .unwrap();
        }
        let j = jobs.get("j1").await.unwrap().unwrap();
        assert_eq!(j.chunks_done, [0, 1, 2, 3, 4].into());
        assert_eq!(j.chunk_ms, [(3, 900), (4, 700)].into());
        assert!(matches!(
            jobs.update("nope", JobUpdate::ChunkDone(0)).await,
            Err(JobError::NotFound(_))
        ));
        assert!(jobs.get("../x").await.is_err());
    }

    #[test]
    fn records_without_the_newer_fields_parse() {
        let old = r#"{"job_id":"j","execution":"e","source":"text","source_detail":"",
            "title":null,"status":"succeeded","step":"Done","chunks_total":2,
            "chunks_done":[0,1],"created_at":1,"updated_at":2,"error":null,"outputs":null}"#;
        let job: JobRecord = serde_json::from_str(old).unwrap();
        assert!(job.chunk_ms.is_empty());
        assert_eq!(job.cost, None);
        // And the fields stay out of records that do not have them.
        let again = serde_json::to_string(&job).unwrap();
        assert!(
            !again.contains("chunk_ms") && !again.contains("cost"),
            "{again}"
        );
    }
}
