//! [`DynamoJobs`]: the job table in DynamoDB, with the real `aws-sdk-dynamodb` client.
//!
//! One item per job, partition key `job_id` (S), as `template.yaml` declares the table. Every
//! write mirrors [`crate::jobs::apply`] as an `UpdateItem` expression, so both adapters mean the
//! same thing and each update is idempotent:
//!
//! | update          | expression                                                          |
//! |-----------------|---------------------------------------------------------------------|
//! | create          | `PutItem` if `attribute_not_exists(job_id)`; else the stored job    |
//! | `Step`          | `SET step, updated_at`                                              |
//! | `ChunksTotal`   | `SET chunks_total, updated_at`                                      |
//! | `ChunkDone(i)`  | `ADD chunks_done {i}` (a number set: a retried chunk counts once)   |
//! | `ChunkRendered` | `ADD chunks_done {i}, chunk_ms {"i:ms"}` (a string set; the longest time of a chunk counts) |
//! | `Estimated`     | `SET cost = <the estimate as JSON text>, updated_at`               |
//! | `Failed`        | `SET status = failed, step = <failed state>, error, updated_at`     |
//! | `Succeeded`     | `SET status = succeeded, step = Done, outputs, updated_at REMOVE error` |
//! | `put_destination` | `SET publish:<dest> = {rev, state}` if `publish:<dest>.rev = expected` (or absent when 0) |
//!
//! Each destination's state is its own top-level attribute `publish:<platform>:<account>` (a
//! map of `rev` and the state as JSON text), so a compare-and-set touches one destination and
//! needs no parent map to exist.
//!
//! Updates carry `attribute_exists(job_id)`, so updating a missing job is
//! [`JobError::NotFound`], as with [`crate::jobs::FsJobs`]. Items carry `expires_at` (Unix
//! seconds, [`DEFAULT_TTL_SECS`] after creation), the table's TTL attribute.
//!
//! Errors name the table: a missing table is [`NoSuchTable`], permissions [`TableAccessDenied`];
//! throttling (`ProvisionedThroughputExceededException`, `ThrottlingException`,
//! `RequestLimitExceeded`) and 5xx are [`JobError::Unavailable`], after the SDK's own retries.

use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

use super::{AnySdkError, Failure, SdkConfig, classify};
use crate::jobs::{
    JobError, JobFailure, JobOutputs, JobRecord, JobStatus, JobStore, JobUpdate, unix_now,
};
use storyreel_publish::DestinationState;

/// How long a job record lives: 30 days after creation (DynamoDB deletes it within a few days
/// after `expires_at`).
pub const DEFAULT_TTL_SECS: u64 = 30 * 24 * 3600;

/// Most items [`JobStore::list`] reads. The list is a Scan sorted here: fine for the hundreds
/// of jobs a channel makes in a month (records expire), and it needs no index.
pub const MAX_SCAN_ITEMS: usize = 10_000;

/// The job table does not exist.
#[derive(Debug, thiserror::Error)]
#[error(
    "job table {table:?} does not exist (check --table or STORYREEL_TABLE, the stack output JobTableName)"
)]
pub struct NoSuchTable {
    pub table: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// The caller may not use the job table.
#[derive(Debug, thiserror::Error)]
#[error("access denied to job table {table:?}")]
pub struct TableAccessDenied {
    pub table: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// A stored item is not a job record.
#[derive(Debug, thiserror::Error)]
#[error("item {job_id:?} is not a job record: {reason}")]
pub struct BadItem {
    pub job_id: String,
    pub reason: String,
}

/// Job records in a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoJobs {
    client: Client,
    table: String,
    ttl_secs: u64,
}

impl DynamoJobs {
    /// The table `table` with a client built from `conf` (storyreel's retry policy).
    pub fn new(conf: &SdkConfig, table: &str) -> Self {
        let config = aws_sdk_dynamodb::config::Builder::from(conf)
            .retry_config(super::retry_config())
            .build();
        Self::from_client(Client::from_conf(config), table)
    }

    /// The table `table` with a client configured by the caller.
    pub fn from_client(client: Client, table: &str) -> Self {
        DynamoJobs {
            client,
            table: table.to_string(),
            ttl_secs: DEFAULT_TTL_SECS,
        }
    }

    /// Replaces how long records live after creation.
    pub fn with_ttl(mut self, secs: u64) -> Self {
        self.ttl_secs = secs;
        self
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The DynamoDB client (its configuration shows the retry policy).
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn err<E>(&self, op: &'static str, e: AnySdkError<E>) -> JobError
    where
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata
            + std::error::Error
            + Send
            + Sync
            + 'static,
    {
        map_error(op, &self.table, e)
    }

    fn key(job_id: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([("job_id".to_string(), AttributeValue::S(job_id.to_string()))])
    }
}

/// Maps an SDK error of `op` on `table` to a [`JobError`], keeping it as the source.
pub fn map_error<E>(op: &'static str, table: &str, e: AnySdkError<E>) -> JobError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let failure = classify(&e, &[], &["ResourceNotFoundException"]);
    let table = table.to_string();
    let source: Box<dyn std::error::Error + Send + Sync> = Box::new(e);
    match failure {
        Failure::Unavailable => JobError::Unavailable { table, source },
        Failure::NoContainer => JobError::Io {
            op,
            table: table.clone(),
            source: Box::new(NoSuchTable { table, source }),
        },
        Failure::Denied => JobError::Io {
            op,
            table: table.clone(),
            source: Box::new(TableAccessDenied { table, source }),
        },
        Failure::NotFound | Failure::Other => JobError::Io { op, table, source },
    }
}

fn is_condition_failed<E: aws_sdk_dynamodb::error::ProvideErrorMetadata>(
    e: &AnySdkError<E>,
) -> bool {
    use aws_sdk_dynamodb::error::ProvideErrorMetadata;
    e.code() == Some("ConditionalCheckFailedException")
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn status_str(s: JobStatus) -> &'static str {
    match s {
        JobStatus::Running => "running",
        JobStatus::Succeeded => "succeeded",
        JobStatus::Failed => "failed",
    }
}

fn failure_value(f: &JobFailure) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        ("step".to_string(), s(&f.step)),
        ("error".to_string(), s(&f.error)),
        ("cause".to_string(), s(&f.cause)),
    ]))
}

fn outputs_value(o: &JobOutputs) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        ("video".to_string(), s(&o.video)),
        ("srt".to_string(), s(&o.srt)),
        ("vtt".to_string(), s(&o.vtt)),
        ("thumbnail".to_string(), s(&o.thumbnail)),
        ("link".to_string(), s(&o.link)),
    ]))
}

/// A chunk's render time as a `chunk_ms` string-set element: `"<index>:<millis>"`.
fn chunk_ms_entry(index: u32, millis: u64) -> String {
    format!("{index}:{millis}")
}

/// A job record as an item, with its expiry.
pub fn to_item(job: &JobRecord, expires_at: u64) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        ("job_id".to_string(), s(&job.job_id)),
        ("execution".to_string(), s(&job.execution)),
        ("source".to_string(), s(&job.source)),
        ("source_detail".to_string(), s(&job.source_detail)),
        ("status".to_string(), s(status_str(job.status))),
        ("step".to_string(), s(&job.step)),
        ("chunks_total".to_string(), n(job.chunks_total)),
        ("created_at".to_string(), n(job.created_at)),
        ("updated_at".to_string(), n(job.updated_at)),
        ("expires_at".to_string(), n(expires_at)),
    ]);
    if let Some(t) = &job.title {
        item.insert("title".into(), s(t));
    }
    // DynamoDB sets cannot be empty: no chunk done is no attribute.
    if !job.chunks_done.is_empty() {
        item.insert(
            "chunks_done".into(),
            AttributeValue::Ns(job.chunks_done.iter().map(|i| i.to_string()).collect()),
        );
    }
    if !job.chunk_ms.is_empty() {
        item.insert(
            "chunk_ms".into(),
            AttributeValue::Ss(
                job.chunk_ms
                    .iter()
                    .map(|(i, ms)| chunk_ms_entry(*i, *ms))
                    .collect(),
            ),
        );
    }
    if let Some(e) = &job.error {
        item.insert("error".into(), failure_value(e));
    }
    if let Some(o) = &job.outputs {
        item.insert("outputs".into(), outputs_value(o));
    }
    if let Some(c) = &job.cost {
        // Text, so the estimate's terms can change without a new item mapping.
        item.insert(
            "cost".into(),
            s(&serde_json::to_string(c).unwrap_or_default()),
        );
    }
    for (dest, state) in &job.publish {
        item.insert(destination_attr(dest), destination_value(state));
    }
    item
}

/// The attribute holding a destination's state.
pub fn destination_attr(dest: &str) -> String {
    format!("{DESTINATION_PREFIX}{dest}")
}

const DESTINATION_PREFIX: &str = "publish:";

fn destination_value(state: &DestinationState) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        ("rev".to_string(), n(state.rev)),
        (
            "state".to_string(),
            s(&serde_json::to_string(state).unwrap_or_default()),
        ),
    ]))
}

/// An item as a job record; optional attributes may be missing.
pub fn from_item(item: &HashMap<String, AttributeValue>) -> Result<JobRecord, BadItem> {
    let job_id = item
        .get("job_id")
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default();
    let bad = |reason: String| BadItem {
        job_id: job_id.clone(),
        reason,
    };
    if job_id.is_empty() {
        return Err(bad("no job_id string".into()));
    }
    let text = |name: &str| -> String {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    let number = |name: &str| -> Result<u64, BadItem> {
        match item.get(name) {
            None => Ok(0),
            Some(v) => v
                .as_n()
                .ok()
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or_else(|| bad(format!("{name} is not a non-negative integer: {v:?}"))),
        }
    };
    let text_in = |m: &HashMap<String, AttributeValue>, name: &str| -> String {
        m.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    let status = match text("status").as_str() {
        "running" => JobStatus::Running,
        "succeeded" => JobStatus::Succeeded,
        "failed" => JobStatus::Failed,
        other => return Err(bad(format!("unknown status {other:?}"))),
    };
    let mut chunks_done = BTreeSet::new();
    if let Some(v) = item.get("chunks_done") {
        let set = v
            .as_ns()
            .map_err(|_| bad(format!("chunks_done is not a number set: {v:?}")))?;
        for i in set {
            chunks_done.insert(
                i.parse::<u32>()
                    .map_err(|_| bad(format!("chunk index {i:?} is not a u32")))?,
            );
        }
    }
    let mut chunk_ms = std::collections::BTreeMap::new();
    if let Some(v) = item.get("chunk_ms") {
        let set = v
            .as_ss()
            .map_err(|_| bad(format!("chunk_ms is not a string set: {v:?}")))?;
        for entry in set {
            let parsed = entry
                .split_once(':')
                .and_then(|(i, ms)| Some((i.parse::<u32>().ok()?, ms.parse::<u64>().ok()?)));
            let (i, ms) = parsed.ok_or_else(|| {
                bad(format!(
                    "chunk_ms entry {entry:?} is not <chunk index>:<milliseconds>"
                ))
            })?;
            let slot = chunk_ms.entry(i).or_insert(ms);
            *slot = (*slot).max(ms);
        }
    }
    let cost = match item.get("cost") {
        None => None,
        Some(v) => {
            let text = v
                .as_s()
                .map_err(|_| bad(format!("cost is not a string: {v:?}")))?;
            Some(
                serde_json::from_str(text)
                    .map_err(|e| bad(format!("cost is not a cost estimate: {e}")))?,
            )
        }
    };
    let chunks_total = u32::try_from(number("chunks_total")?)
        .map_err(|_| bad("chunks_total is out of range".into()))?;
    let error = item
        .get("error")
        .and_then(|v| v.as_m().ok())
        .map(|m| JobFailure {
            step: text_in(m, "step"),
            error: text_in(m, "error"),
            cause: text_in(m, "cause"),
        });
    let outputs = item
        .get("outputs")
        .and_then(|v| v.as_m().ok())
        .map(|m| JobOutputs {
            video: text_in(m, "video"),
            srt: text_in(m, "srt"),
            vtt: text_in(m, "vtt"),
            thumbnail: text_in(m, "thumbnail"),
            link: text_in(m, "link"),
        });
    let mut publish = std::collections::BTreeMap::new();
    for (name, v) in item {
        let Some(dest) = name.strip_prefix(DESTINATION_PREFIX) else {
            continue;
        };
        let state = v
            .as_m()
            .ok()
            .and_then(|m| m.get("state"))
            .and_then(|t| t.as_s().ok())
            .ok_or_else(|| bad(format!("{name} is not a destination state: {v:?}")))?;
        let state: DestinationState = serde_json::from_str(state)
            .map_err(|e| bad(format!("{name} is not a destination state: {e}")))?;
        publish.insert(dest.to_string(), state);
    }
    Ok(JobRecord {
        job_id: job_id.clone(),
        execution: text("execution"),
        source: text("source"),
        source_detail: text("source_detail"),
        title: item.get("title").and_then(|v| v.as_s().ok()).cloned(),
        status,
        step: text("step"),
        chunks_total,
        chunks_done,
        chunk_ms,
        created_at: number("created_at")?,
        updated_at: number("updated_at")?,
        error,
        outputs,
        cost,
        publish,
    })
}

/// The `UpdateItem` expression for an update: `(expression, names, values)`.
pub fn update_expression(
    update: &JobUpdate,
    now: u64,
) -> (
    String,
    HashMap<String, String>,
    HashMap<String, AttributeValue>,
) {
    let mut names = HashMap::from([("#updated".to_string(), "updated_at".to_string())]);
    let mut values = HashMap::from([(":now".to_string(), n(now))]);
    let mut name = |k: &str, v: &str| {
        names.insert(k.to_string(), v.to_string());
    };
    let expression = match update {
        JobUpdate::Step(step) => {
            name("#step", "step");
            values.insert(":step".into(), s(step));
            "SET #step = :step, #updated = :now"
        }
        JobUpdate::ChunksTotal(total) => {
            name("#total", "chunks_total");
            values.insert(":total".into(), n(total));
            "SET #total = :total, #updated = :now"
        }
        JobUpdate::ChunkDone(i) => {
            name("#done", "chunks_done");
            values.insert(":chunk".into(), AttributeValue::Ns(vec![i.to_string()]));
            "ADD #done :chunk SET #updated = :now"
        }
        JobUpdate::ChunkRendered { index, millis } => {
            name("#done", "chunks_done");
            name("#ms", "chunk_ms");
            values.insert(":chunk".into(), AttributeValue::Ns(vec![index.to_string()]));
            values.insert(
                ":ms".into(),
                AttributeValue::Ss(vec![chunk_ms_entry(*index, *millis)]),
            );
            "ADD #done :chunk, #ms :ms SET #updated = :now"
        }
        JobUpdate::Estimated(c) => {
            name("#cost", "cost");
            values.insert(
                ":cost".into(),
                s(&serde_json::to_string(c).unwrap_or_default()),
            );
            "SET #cost = :cost, #updated = :now"
        }
        JobUpdate::Failed(f) => {
            name("#status", "status");
            name("#step", "step");
            name("#error", "error");
            values.insert(":status".into(), s(status_str(JobStatus::Failed)));
            values.insert(":step".into(), s(&f.step));
            values.insert(":error".into(), failure_value(f));
            "SET #status = :status, #step = :step, #error = :error, #updated = :now"
        }
        JobUpdate::Succeeded(o) => {
            name("#status", "status");
            name("#step", "step");
            name("#error", "error");
            name("#outputs", "outputs");
            values.insert(":status".into(), s(status_str(JobStatus::Succeeded)));
            values.insert(":step".into(), s("Done"));
            values.insert(":outputs".into(), outputs_value(o));
            "SET #status = :status, #step = :step, #outputs = :outputs, #updated = :now \
             REMOVE #error"
        }
    };
    (expression.to_string(), names, values)
}

#[async_trait]
impl JobStore for DynamoJobs {
    async fn create(&self, job: &JobRecord) -> Result<(JobRecord, bool), JobError> {
        let item = to_item(job, job.created_at.saturating_add(self.ttl_secs));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(job_id)")
            .send()
            .await;
        match put {
            Ok(_) => Ok((job.clone(), true)),
            Err(e) if is_condition_failed(&e) => match self.get(&job.job_id).await? {
                Some(existing) => Ok((existing, false)),
                // Deleted (by TTL) between the two calls: the job is gone, say so.
                None => Err(JobError::NotFound(job.job_id.clone())),
            },
            Err(e) => Err(self.err("create", e)),
        }
    }

    async fn get(&self, job_id: &str) -> Result<Option<JobRecord>, JobError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(job_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.err("read", e))?;
        match out.item() {
            None => Ok(None),
            Some(item) => from_item(item).map(Some).map_err(|e| JobError::Io {
                op: "parse",
                table: self.table.clone(),
                source: Box::new(e),
            }),
        }
    }

    async fn update(&self, job_id: &str, update: JobUpdate) -> Result<(), JobError> {
        let (expression, names, values) = update_expression(&update, unix_now());
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(job_id)))
            .update_expression(expression)
            .condition_expression("attribute_exists(job_id)")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Err(JobError::NotFound(job_id.to_string())),
            Err(e) => Err(self.err("update", e)),
        }
    }

    async fn list(&self, limit: usize) -> Result<Vec<JobRecord>, JobError> {
        let mut jobs = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        let mut seen = 0usize;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.err("list", e))?;
            for item in page.items() {
                seen += 1;
                // An unreadable item is skipped rather than hiding every other job.
                if let Ok(job) = from_item(item) {
                    jobs.push(job);
                }
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() && seen < MAX_SCAN_ITEMS => start = Some(k.clone()),
                _ => break,
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
        let condition = if expected == 0 {
            "attribute_exists(job_id) AND attribute_not_exists(#dest)"
        } else {
            "attribute_exists(job_id) AND #dest.#rev = :expected"
        };
        let mut names = HashMap::from([
            ("#dest".to_string(), destination_attr(dest)),
            ("#updated".to_string(), "updated_at".to_string()),
        ]);
        let mut values = HashMap::from([
            (":state".to_string(), destination_value(state)),
            (":now".to_string(), n(unix_now())),
        ]);
        if expected != 0 {
            names.insert("#rev".into(), "rev".into());
            values.insert(":expected".into(), n(expected));
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(job_id)))
            .update_expression("SET #dest = :state, #updated = :now")
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            // Either another run moved the destination on, or the job is gone: tell which.
            Err(e) if is_condition_failed(&e) => match self.get(job_id).await? {
                Some(_) => Ok(false),
                None => Err(JobError::NotFound(job_id.to_string())),
            },
            Err(e) => Err(self.err("update", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_items() {
        let mut job = JobRecord::new("j1", "e1", "drop", "drop/a.txt", Some("Title".into()));
        assert_eq!(from_item(&to_item(&job, 9)).unwrap(), job);
        job.chunks_total = 3;
        job.chunks_done = [0, 2].into();
        job.status = JobStatus::Failed;
        job.error = Some(JobFailure {
            step: "Merge".into(),
            error: "Fatal".into(),
            cause: "disk".into(),
        });
        job.outputs = Some(JobOutputs {
            video: "out/j1/video.mp4".into(),
            link: "https://x".into(),
            ..Default::default()
        });
        let item = to_item(&job, 99);
        assert_eq!(item["expires_at"], AttributeValue::N("99".into()));
        assert_eq!(from_item(&item).unwrap(), job);
        job.chunk_ms = [(0, 9100), (2, 8800)].into();
        job.cost = Some(crate::cost::CostEstimate {
            total_usd: 0.0421,
            region: "us-east-1 x86_64".into(),
            prices_as_of: "2026-11-26".into(),
            terms: vec![crate::cost::CostTerm {
                service: "Polly".into(),
                item: "speech characters (polly-neural)".into(),
                quantity: 928.0,
                unit: "characters".into(),
                price_usd: 16.0,
                per: 1_000_000,
                usd: 0.014848,
                basis: String::new(),
            }],
            basis: "measured".into(),
        });
        let item = to_item(&job, 99);
        assert_eq!(
            item["chunk_ms"],
            AttributeValue::Ss(vec!["0:9100".into(), "2:8800".into()])
        );
        assert_eq!(from_item(&item).unwrap(), job);
    }

    #[test]
    fn chunk_times_and_estimates_are_idempotent_updates() {
        let (expr, names, values) = update_expression(
            &JobUpdate::ChunkRendered {
                index: 3,
                millis: 9100,
            },
            5,
        );
        assert_eq!(expr, "ADD #done :chunk, #ms :ms SET #updated = :now");
        assert_eq!(names["#ms"], "chunk_ms");
        assert_eq!(values[":ms"], AttributeValue::Ss(vec!["3:9100".into()]));
        // The same chunk recorded twice (a retried run) keeps its longest time.
        let mut item = to_item(&JobRecord::new("j3", "e", "text", "", None), 1);
        item.insert(
            "chunk_ms".into(),
            AttributeValue::Ss(vec!["3:9100".into(), "3:9400".into(), "1:50".into()]),
        );
        assert_eq!(
            from_item(&item).unwrap().chunk_ms,
            [(1, 50), (3, 9400)].into()
        );
        item.insert("chunk_ms".into(), AttributeValue::Ss(vec!["3-9100".into()]));
        assert!(from_item(&item).unwrap_err().reason.contains("3-9100"));
    }

    #[test]
    fn bad_items_are_named() {
        let mut item = to_item(&JobRecord::new("j2", "e", "text", "", None), 1);
        item.insert("status".into(), s("paused"));
        let e = from_item(&item).unwrap_err();
        assert_eq!(
            e.to_string(),
            "item \"j2\" is not a job record: unknown status \"paused\""
        );
    }

    #[test]
    fn chunk_done_is_a_set_addition() {
        let (expr, names, values) = update_expression(&JobUpdate::ChunkDone(4), 5);
        assert!(expr.starts_with("ADD #done :chunk"));
        assert_eq!(names["#done"], "chunks_done");
        assert_eq!(values[":chunk"], AttributeValue::Ns(vec!["4".into()]));
    }
}
