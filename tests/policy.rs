//! `template.yaml` is safe and cheap by construction, and each function's policy is what its
//! step really does:
//!
//! - no IAM statement grants `Resource: "*"` for an action that AWS lets be scoped;
//! - every bucket blocks public access, encrypts at rest and refuses plain HTTP, and no bucket
//!   policy allows anyone;
//! - no resource type that bills while idle (VPC, NAT gateway, databases, load balancers, ...);
//! - least privilege, measured: the sample workflow runs locally with every store and job-table
//!   call recorded per step; each call, translated to the S3 and DynamoDB actions the cloud
//!   adapters send for it, must be allowed by that step's function policy, and each granted
//!   (action, resource) must be used by at least one call.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Value, json};
use serde_yaml::Value as Yaml;
use storyreel::jobs::{FsJobs, JobError, JobRecord, JobStore, JobUpdate};
use storyreel::narration::Narrators;
use storyreel::store::{BlobStore, FsStore, ObjectInfo, StoreError};
use storyreel::workflow::LocalSteps;
use storyreel_mp4::ReadAt;

use crate::events::{event, prepare_background_event, prepare_background_failure};
use crate::support::*;

fn template() -> Yaml {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("template.yaml");
    let text = std::fs::read_to_string(&p).expect("read template.yaml");
    serde_yaml::from_str(&text).expect("template.yaml is YAML")
}

fn resources(t: &Yaml) -> Vec<(String, &Yaml)> {
    t["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .map(|(k, v)| (k.as_str().expect("logical id").to_owned(), v))
        .collect()
}

/// A CloudFormation value as text, with intrinsics spelled as `${Name}` / `${Name.Attr}`:
/// `!GetAtt B.Arn` → `${B.Arn}`, `!Ref X` → `${X}`, `!Sub "…"` → its template.
fn resolve(v: &Yaml) -> Vec<String> {
    match v {
        Yaml::String(s) => vec![s.clone()],
        Yaml::Sequence(items) => items.iter().flat_map(resolve).collect(),
        Yaml::Tagged(t) => {
            let tag = t.tag.to_string();
            match (tag.trim_start_matches('!'), &t.value) {
                ("GetAtt", Yaml::String(s)) => vec![format!("${{{s}}}")],
                ("Ref", Yaml::String(s)) => vec![format!("${{{s}}}")],
                ("Sub", Yaml::String(s)) => vec![s.clone()],
                (other, value) => vec![format!("!{other} {value:?}")],
            }
        }
        Yaml::Mapping(m) if m.len() == 1 => {
            let (k, v) = m.iter().next().expect("one entry");
            match (k.as_str(), v) {
                (Some("Fn::GetAtt"), Yaml::Sequence(p)) => {
                    let parts: Vec<String> = p.iter().flat_map(resolve).collect();
                    vec![format!("${{{}}}", parts.join("."))]
                }
                (Some("Ref"), Yaml::String(s)) => vec![format!("${{{s}}}")],
                (Some("Fn::Sub"), Yaml::String(s)) => vec![s.clone()],
                _ => vec![format!("{v:?}")],
            }
        }
        other => vec![format!("{other:?}")],
    }
}

/// One Allow statement: its actions and resources.
#[derive(Debug, Clone)]
struct Grant {
    actions: Vec<String>,
    resources: Vec<String>,
}

/// Every IAM statement in the template, with where it is: (owner, effect, statement).
fn statements(t: &Yaml) -> Vec<(String, String, Grant)> {
    let mut out = Vec::new();
    let mut push = |owner: &str, st: &Yaml| {
        let grant = Grant {
            actions: resolve(&st["Action"]),
            resources: resolve(&st["Resource"]),
        };
        let effect = st["Effect"].as_str().unwrap_or("?").to_owned();
        out.push((owner.to_owned(), effect, grant));
    };
    for (id, r) in resources(t) {
        let props = &r["Properties"];
        match r["Type"].as_str() {
            Some("AWS::Serverless::Function") | Some("AWS::Serverless::StateMachine") => {
                for p in props["Policies"].as_sequence().into_iter().flatten() {
                    for st in p["Statement"].as_sequence().into_iter().flatten() {
                        push(&id, st);
                    }
                }
            }
            Some("AWS::IAM::Role") => {
                for p in props["Policies"].as_sequence().into_iter().flatten() {
                    let doc = &p["PolicyDocument"];
                    for st in doc["Statement"].as_sequence().into_iter().flatten() {
                        push(&id, st);
                    }
                }
            }
            Some("AWS::IAM::Policy") | Some("AWS::IAM::ManagedPolicy") => {
                let doc = &props["PolicyDocument"];
                for st in doc["Statement"].as_sequence().into_iter().flatten() {
                    push(&id, st);
                }
            }
            _ => {}
        }
    }
    out
}

/// Actions that AWS authorises on `"*"` only (no resource types in the Service Authorization
/// Reference), or on resource types storyreel never uses (Polly lexicons).
const STAR_ONLY: [&str; 4] = [
    "polly:DescribeVoices",
    "polly:SynthesizeSpeech",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
];

#[test]
fn no_statement_grants_every_resource_where_aws_allows_narrower() {
    let t = template();
    let mut bad = Vec::new();
    for (owner, effect, g) in statements(&t) {
        if effect != "Allow" {
            continue;
        }
        for a in &g.actions {
            assert!(
                !a.contains('*'),
                "{owner}: wildcard action {a:?}: name the actions the function uses"
            );
        }
        if g.resources.iter().any(|r| r == "*") {
            let scoped: Vec<&String> = g
                .actions
                .iter()
                .filter(|a| !STAR_ONLY.contains(&a.as_str()))
                .collect();
            if !scoped.is_empty() {
                bad.push(format!("{owner}: {scoped:?} on \"*\""));
            }
        }
    }
    assert!(bad.is_empty(), "statements with Resource \"*\": {bad:#?}");
}

/// Every function's policy is written out as statements, so the checks here see all of it
/// (a SAM policy template such as `S3CrudPolicy` grants more than a step uses).
#[test]
fn function_policies_are_explicit_statements() {
    let t = template();
    for (id, r) in resources(&t) {
        if r["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        for p in r["Properties"]["Policies"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            assert!(
                p.get("Statement").is_some(),
                "{id}: policy {p:?} is not a list of statements"
            );
        }
    }
}

/// Resource types that bill by the hour (or month) whether or not a video is made.
const BILLS_WHILE_IDLE: [&str; 24] = [
    "AWS::EC2::VPC",
    "AWS::EC2::NatGateway",
    "AWS::EC2::EIP",
    "AWS::EC2::Instance",
    "AWS::EC2::VPCEndpoint",
    "AWS::EC2::TransitGateway",
    "AWS::EC2::ClientVpnEndpoint",
    "AWS::AutoScaling::AutoScalingGroup",
    "AWS::ElasticLoadBalancing::LoadBalancer",
    "AWS::ElasticLoadBalancingV2::LoadBalancer",
    "AWS::ECS::Service",
    "AWS::EKS::Cluster",
    "AWS::AppRunner::Service",
    "AWS::Elasticsearch::Domain",
    "AWS::OpenSearchService::Domain",
    "AWS::MSK::Cluster",
    "AWS::Kinesis::Stream",
    "AWS::SageMaker::Endpoint",
    "AWS::KMS::Key",
    "AWS::SecretsManager::Secret",
    "AWS::CloudWatch::Alarm",
    "AWS::Route53::HostedZone",
    "AWS::DirectoryService::MicrosoftAD",
    "AWS::Lambda::EventSourceMapping",
];

/// Whole services whose every resource bills while idle (database servers and clusters).
const BILLS_WHILE_IDLE_SERVICES: [&str; 6] = [
    "AWS::RDS::",
    "AWS::ElastiCache::",
    "AWS::Redshift::",
    "AWS::DocDB::",
    "AWS::Neptune::",
    "AWS::MemoryDB::",
];

#[test]
fn nothing_bills_while_idle() {
    let t = template();
    for (id, r) in resources(&t) {
        let ty = r["Type"].as_str().expect("Type");
        assert!(
            !BILLS_WHILE_IDLE.contains(&ty)
                && !BILLS_WHILE_IDLE_SERVICES.iter().any(|s| ty.starts_with(s)),
            "{id} is a {ty}, which bills while no video is being made"
        );
        let props = &r["Properties"];
        if ty.ends_with("::Function") {
            assert!(
                props.get("VpcConfig").is_none(),
                "{id}: a VPC function needs a NAT gateway to reach AWS APIs"
            );
            assert!(
                props.get("ProvisionedConcurrencyConfig").is_none(),
                "{id}: provisioned concurrency bills by the hour"
            );
        }
        if ty == "AWS::DynamoDB::Table" {
            assert_eq!(
                props["BillingMode"].as_str(),
                Some("PAY_PER_REQUEST"),
                "{id}: provisioned capacity bills by the hour"
            );
        }
        if ty == "AWS::Logs::LogGroup" {
            let days = &props["RetentionInDays"];
            assert!(
                days.as_u64().is_some() || matches!(days, Yaml::Tagged(_)),
                "{id}: log groups keep (and bill for) logs forever without a retention"
            );
        }
    }
    // The Lambda service creates a never-expiring log group for a function without one, and
    // `sam delete` leaves it behind: each function logs to a group of the stack's own.
    let groups: BTreeSet<String> = resources(&t)
        .into_iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Logs::LogGroup"))
        .map(|(id, _)| id)
        .collect();
    for (id, r) in resources(&t) {
        if r["Type"].as_str() == Some("AWS::Serverless::Function") {
            let group = resolve(&r["Properties"]["LoggingConfig"]["LogGroup"]);
            let group = group
                .first()
                .map(|g| g.trim_matches(['$', '{', '}']).to_owned());
            assert!(
                group.as_ref().is_some_and(|g| groups.contains(g)),
                "{id} logs to {group:?}, not to a log group of the stack"
            );
        }
    }
}

#[test]
fn buckets_are_private_encrypted_and_tls_only() {
    let t = template();
    let all = resources(&t);
    let policies: Vec<&Yaml> = all
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::S3::BucketPolicy"))
        .map(|(_, r)| *r)
        .collect();
    for p in &policies {
        for st in p["Properties"]["PolicyDocument"]["Statement"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            let principal = format!("{:?}", st["Principal"]);
            assert!(
                !(st["Effect"].as_str() == Some("Allow") && principal.contains('*')),
                "a bucket policy allows anyone: {st:?}"
            );
        }
    }
    let mut buckets = 0;
    for (id, r) in &all {
        if r["Type"].as_str() != Some("AWS::S3::Bucket") {
            continue;
        }
        buckets += 1;
        let props = &r["Properties"];
        let block = &props["PublicAccessBlockConfiguration"];
        for k in [
            "BlockPublicAcls",
            "BlockPublicPolicy",
            "IgnorePublicAcls",
            "RestrictPublicBuckets",
        ] {
            assert_eq!(block[k].as_bool(), Some(true), "{id}: {k} is not true");
        }
        assert!(
            props.get("AccessControl").is_none() && props.get("WebsiteConfiguration").is_none(),
            "{id}: a canned ACL or website hosting makes a bucket public"
        );
        let sse = &props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
            ["SSEAlgorithm"];
        assert!(sse.as_str().is_some(), "{id}: no default encryption");
        let tls_only = policies.iter().any(|p| {
            resolve(&p["Properties"]["Bucket"]) == [format!("${{{id}}}")]
                && p["Properties"]["PolicyDocument"]["Statement"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .any(|st| {
                        st["Effect"].as_str() == Some("Deny")
                            && st["Condition"]["Bool"]["aws:SecureTransport"].as_str()
                                == Some("false")
                    })
        });
        assert!(tls_only, "{id}: no policy denies requests without TLS");
    }
    assert!(
        buckets > 0,
        "the template has no bucket: is this template.yaml?"
    );
}

/// What a step needs in AWS terms.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Need {
    /// An object action on a key of the media bucket.
    Object(&'static str, String),
    /// A bucket action on the media bucket (`s3:ListBucket`: listing, and telling a missing
    /// object (404) from a forbidden one (403)).
    Bucket(&'static str),
    /// An action on the job table.
    Table(&'static str),
}

type Log = Arc<Mutex<Vec<Need>>>;

/// A [`BlobStore`] that records each call as the S3 actions `S3Store` sends for it.
struct RecordingStore {
    inner: FsStore,
    log: Log,
}

impl RecordingStore {
    fn read(&self, key: &str) {
        let mut log = self.log.lock().unwrap();
        log.push(Need::Object("s3:GetObject", key.to_owned()));
        log.push(Need::Bucket("s3:ListBucket"));
    }
    fn write(&self, key: &str, multipart: bool) {
        let mut log = self.log.lock().unwrap();
        log.push(Need::Object("s3:PutObject", key.to_owned()));
        if multipart {
            log.push(Need::Object("s3:AbortMultipartUpload", key.to_owned()));
        }
    }
}

#[async_trait]
impl BlobStore for RecordingStore {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn get(&self, key: &str, max_bytes: u64) -> Result<Vec<u8>, StoreError> {
        self.read(key);
        self.inner.get(key, max_bytes).await
    }
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), StoreError> {
        self.write(key, false);
        self.inner.put(key, bytes, content_type).await
    }
    async fn put_file(&self, key: &str, path: &Path, content_type: &str) -> Result<(), StoreError> {
        self.write(key, true);
        self.inner.put_file(key, path, content_type).await
    }
    async fn get_file(&self, key: &str, path: &Path) -> Result<(), StoreError> {
        self.read(key);
        self.inner.get_file(key, path).await
    }
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError> {
        self.read(key);
        self.inner.head(key).await
    }
    async fn copy(&self, from: &str, to: &str) -> Result<(), StoreError> {
        self.read(from);
        self.write(to, true);
        self.inner.copy(from, to).await
    }
    async fn delete_prefix(&self, prefix: &str) -> Result<(), StoreError> {
        {
            let mut log = self.log.lock().unwrap();
            log.push(Need::Bucket("s3:ListBucket"));
            log.push(Need::Object("s3:DeleteObject", format!("{prefix}\u{0}")));
        }
        self.inner.delete_prefix(prefix).await
    }
    async fn reader(&self, key: &str) -> Result<Box<dyn ReadAt + Send + Sync>, StoreError> {
        self.read(key);
        self.inner.reader(key).await
    }
    async fn link(&self, key: &str, expires_secs: u64) -> Result<String, StoreError> {
        // A pre-signed GET is authorised as the signer: the function needs s3:GetObject.
        self.read(key);
        self.inner.link(key, expires_secs).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        self.log.lock().unwrap().push(Need::Bucket("s3:ListBucket"));
        self.inner.list(prefix).await
    }
}

/// A [`JobStore`] that records each call as the DynamoDB actions `DynamoJobs` sends for it.
struct RecordingJobs {
    inner: FsJobs,
    log: Log,
}

impl RecordingJobs {
    fn note(&self, actions: &[&'static str]) {
        let mut log = self.log.lock().unwrap();
        log.extend(actions.iter().map(|a| Need::Table(a)));
    }
}

#[async_trait]
impl JobStore for RecordingJobs {
    async fn create(&self, job: &JobRecord) -> Result<(JobRecord, bool), JobError> {
        // A conditional PutItem, then a GetItem of the existing record when it fails.
        self.note(&["dynamodb:PutItem", "dynamodb:GetItem"]);
        self.inner.create(job).await
    }
    async fn get(&self, job_id: &str) -> Result<Option<JobRecord>, JobError> {
        self.note(&["dynamodb:GetItem"]);
        self.inner.get(job_id).await
    }
    async fn update(&self, job_id: &str, update: JobUpdate) -> Result<(), JobError> {
        self.note(&["dynamodb:UpdateItem"]);
        self.inner.update(job_id, update).await
    }
    async fn list(&self, limit: usize) -> Result<Vec<JobRecord>, JobError> {
        self.note(&["dynamodb:Scan"]);
        self.inner.list(limit).await
    }
    async fn put_destination(
        &self,
        job_id: &str,
        dest: &str,
        expected: u64,
        state: &storyreel_publish::DestinationState,
    ) -> Result<bool, JobError> {
        // A conditional UpdateItem, then a GetItem to tell a moved destination from a
        // missing job when the condition fails.
        self.note(&["dynamodb:UpdateItem", "dynamodb:GetItem"]);
        self.inner
            .put_destination(job_id, dest, expected, state)
            .await
    }
}

/// The template's function for a step.
fn function_of(step: &str) -> &'static str {
    match step {
        "story" => "StoryFunction",
        "speech" => "SpeechFunction",
        "marks" => "MarksFunction",
        "render-chunk" => "RenderChunkFunction",
        "merge" => "MergeFunction",
        "publish" => "PublishFunction",
        "prepare-background" => "PrepareBackgroundFunction",
        other => panic!("no function for step {other}"),
    }
}

/// Runs steps on one local store, recording what each function needed.
struct Recorder {
    dir: PathBuf,
    needs: BTreeMap<&'static str, BTreeSet<Need>>,
}

impl Recorder {
    async fn run(&mut self, step: &str, event: Value) -> Value {
        let log: Log = Arc::default();
        let steps = LocalSteps {
            store: Arc::new(RecordingStore {
                inner: FsStore::new(&self.dir),
                log: log.clone(),
            }),
            jobs: Arc::new(RecordingJobs {
                inner: FsJobs::new(self.dir.join("jobs")),
                log: log.clone(),
            }),
            narrators: Narrators::local(),
            llm: None,
            scratch: self.dir.join(".scratch"),
            threads: 2,
            publishers: storyreel::publishing::Publishers::local(),
        };
        let out = steps.invoke_step(step, event.clone()).await;
        let needs = log.lock().unwrap().clone();
        self.needs
            .entry(function_of(step))
            .or_default()
            .extend(needs);
        match (step, out) {
            (_, Ok(v)) => v,
            ("render-chunk", Err(e)) => json!({"error": e.name.as_str()}),
            (_, Err(e)) => panic!("{step} failed on {event}: {}", e.chain()),
        }
    }
}

impl Recorder {
    /// Runs the prepare-background function (started by the bucket's rule, not a state of the
    /// workflow) on `event`.
    async fn run_prepare(&mut self, event: Value) -> Value {
        let log: Log = Arc::default();
        let store = RecordingStore {
            inner: FsStore::new(&self.dir),
            log: log.clone(),
        };
        let input = serde_json::from_value(event.clone()).expect("a prepare-background event");
        let scratch = self.dir.join(".scratch");
        let out = storyreel::steps::prepare_background(input, &store, &scratch)
            .await
            .unwrap_or_else(|e| panic!("prepare-background failed on {event}: {}", e.chain()));
        let needs = log.lock().unwrap().clone();
        self.needs
            .entry(function_of("prepare-background"))
            .or_default()
            .extend(needs);
        serde_json::to_value(out).expect("encode the output")
    }

    /// Puts `bytes` at `key` of the store and returns the event of that upload.
    fn upload(&self, key: &str, bytes: &[u8]) -> Value {
        let path = self.dir.join(key);
        std::fs::create_dir_all(path.parent().expect("a folder")).expect("create the folder");
        std::fs::write(&path, bytes).expect("write the upload");
        let info = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(FsStore::new(&self.dir).head(key))
        })
        .expect("head")
        .expect("the upload is there");
        prepare_background_event(key, info.bytes, &info.etag)
    }
}

/// The bucket-relative key pattern of an object ARN in the template (`${MediaBucket.Arn}/tmp/*`
/// → `tmp/*`), or `None` for another resource.
fn object_pattern(resource: &str) -> Option<&str> {
    resource.strip_prefix("${MediaBucket.Arn}/")
}

/// IAM's `*` wildcard (any run of characters) against a key.
fn matches(pattern: &str, key: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == key,
        Some((head, tail)) => {
            key.starts_with(head)
                && (0..=key.len() - head.len()).any(|i| {
                    key.is_char_boundary(head.len() + i) && matches(tail, &key[head.len() + i..])
                })
        }
    }
}

fn allows(g: &Grant, need: &Need) -> bool {
    match need {
        Need::Object(action, key) => {
            g.actions.iter().any(|a| a == action)
                && g.resources.iter().any(|r| {
                    object_pattern(r).is_some_and(|p| match key.strip_suffix('\u{0}') {
                        // DeleteObject under a prefix: the pattern must cover any key in it.
                        Some(prefix) => matches(p, &format!("{prefix}any/key.bin")),
                        None => matches(p, key),
                    })
                })
        }
        Need::Bucket(action) => {
            g.actions.iter().any(|a| a == action)
                && g.resources.iter().any(|r| r == "${MediaBucket.Arn}")
        }
        Need::Table(action) => {
            g.actions.iter().any(|a| a == action)
                && g.resources.iter().any(|r| r == "${JobTable.Arn}")
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_function_is_granted_exactly_what_its_step_does() {
    let dir = tempdir();
    let mut rec = Recorder {
        dir: dir.path().to_path_buf(),
        needs: BTreeMap::new(),
    };
    // A background in the library, for a job that picks one.
    let clips = tempdir();
    let clip = counter_video(clips.path(), "clip.mp4", (640, 360), 30, 11.0);
    storyreel::cloud::backgrounds::add(&FsStore::new(dir.path()), &clip, &["city".into()], 10_000)
        .await
        .expect("add a background");
    // The drop folder's story.
    let drop = event("drop.json");
    let key = drop["detail"]["object"]["key"].as_str().expect("drop key");
    let body = event("story.json")["request"]["story"]["text"]
        .as_str()
        .expect("story text")
        .to_owned();
    let key = storyreel::cloud::triggers::decode_event_key(key).expect("a valid event key");
    let path = dir.path().join(&key);
    std::fs::create_dir_all(path.parent().expect("drop folder")).expect("create drop/");
    std::fs::write(&path, body).expect("write the dropped story");

    // Jobs: the sample (given text), a dropped story, and a short one with a library
    // background, each through every step; then a failure record.
    let sample = event("story.json");
    let mut picked = sample.clone();
    picked["request"]["job_id"] = json!("picked");
    picked["request"]["background_selector"] = json!({"tag": "city"});
    picked["request"]["story"] =
        json!({"text": "The clip behind me was chosen by tag. That is all."});
    let dropped = json!({"request": drop, "execution": "drop-1"});
    for start in [sample, picked, dropped] {
        let story = rec.run("story", start.clone()).await;
        // A retried Story state (the same execution, the job not finished) carries on.
        let retried = rec.run("story", start).await;
        assert_eq!(retried["duplicate"], false, "{retried}");
        let job = json!({"job": story["job"]});
        let speech = rec.run("speech", job.clone()).await;
        let marks = rec.run("marks", job.clone()).await;
        let base = json!({"job": story["job"], "speech": speech, "marks": marks});
        let mut chunks = Vec::new();
        for c in speech["chunks"].as_array().expect("chunks") {
            let mut e = base.clone();
            e["chunk"] = c.clone();
            chunks.push(rec.run("render-chunk", e).await);
        }
        let mut merge = base.clone();
        merge["chunks"] = Value::Array(chunks);
        let merged = rec.run("merge", merge).await;
        let mut publish = base.clone();
        publish["merged"] = merged;
        let out = rec.run("publish", publish).await;
        assert_eq!(out["status"], "succeeded", "{out}");
    }
    // The same execution once the job has succeeded stops as a duplicate.
    let again = rec.run("story", event("story.json")).await;
    assert_eq!(again["duplicate"], true, "the sample job has succeeded");
    rec.run("publish", event("publish-failure.json")).await;

    // Footage uploaded under backgrounds/incoming/: added (and removed from there), the same
    // event again, a file that is not a video (a failure record), that record's own event, and
    // Lambda's record of an upload whose every attempt timed out.
    let clip_bytes = std::fs::read(&clip).expect("read the clip");
    let footage = rec.upload("backgrounds/incoming/city night.mp4", &clip_bytes);
    let out = rec.run_prepare(footage.clone()).await;
    assert_eq!(out["status"], "added", "{out}");
    let again = rec.run_prepare(footage).await;
    assert_eq!(again["status"], "duplicate", "{again}");
    let text = rec.upload("backgrounds/incoming/notes.txt", b"not a video");
    let out = rec.run_prepare(text.clone()).await;
    assert_eq!(out["status"], "failed", "{out}");
    let record_key = out["failure_key"].as_str().expect("a failure record");
    let info = FsStore::new(dir.path())
        .head(record_key)
        .await
        .unwrap()
        .expect("the record is there");
    let own = prepare_background_event(record_key, info.bytes, &info.etag);
    assert_eq!(rec.run_prepare(own).await["status"], "skipped");
    let stuck = rec.upload("backgrounds/incoming/long.mp4", &clip_bytes[..1000]);
    let out = rec.run_prepare(prepare_background_failure(&stuck)).await;
    assert_eq!(out["status"], "failed", "{out}");

    let t = template();
    let all = statements(&t);
    let mut problems = Vec::new();
    for (function, needs) in &rec.needs {
        let grants: Vec<&Grant> = all
            .iter()
            .filter(|(owner, effect, _)| owner == function && effect == "Allow")
            .map(|(_, _, g)| g)
            .collect();
        for need in needs {
            if !grants.iter().any(|g| allows(g, need)) {
                problems.push(format!("{function} is not granted {need:?}"));
            }
        }
        // Every S3 and DynamoDB grant is used by some call of the step.
        for g in &grants {
            for a in &g.actions {
                for r in &g.resources {
                    if !(a.starts_with("s3:") || a.starts_with("dynamodb:")) {
                        continue;
                    }
                    let single = Grant {
                        actions: vec![a.clone()],
                        resources: vec![r.clone()],
                    };
                    if !needs.iter().any(|n| allows(&single, n)) {
                        problems.push(format!("{function} is granted {a} on {r}, unused"));
                    }
                }
            }
        }
    }
    // Narration is the only use of Polly; prompts (the OpenAI key) and publishing (connected
    // accounts) are the only uses of SSM parameters.
    for (owner, _, g) in &all {
        for a in &g.actions {
            let allowed_here = match a.split(':').next() {
                Some("polly") => ["SpeechFunction", "MarksFunction"].contains(&owner.as_str()),
                Some("ssm") => ["StoryFunction", "PublishFunction"].contains(&owner.as_str()),
                _ => true,
            };
            if !allowed_here {
                problems.push(format!(
                    "{owner} is granted {a}, which its step never calls"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "policies differ from what the steps do:\n{}\n\nrecorded:\n{:#?}",
        problems.join("\n"),
        rec.needs
    );
}

/// The only function a statement may let anyone invoke is a function whose on-failure
/// destination it is (prepare-background hands itself Lambda's record of a failed event),
/// granted to that function's own role.
#[test]
fn only_on_failure_destinations_are_invoked_by_policy() {
    let t = template();
    let all = resources(&t);
    let mut destinations = BTreeMap::new();
    for (_, r) in &all {
        if r["Type"].as_str() == Some("AWS::Lambda::EventInvokeConfig") {
            let p = &r["Properties"];
            let function = resolve(&p["FunctionName"]);
            let target = resolve(&p["DestinationConfig"]["OnFailure"]["Destination"]);
            assert_eq!(function.len(), 1);
            assert!(
                p["MaximumRetryAttempts"].as_u64().is_some_and(|n| n <= 2),
                "{function:?}: retries must be bounded"
            );
            destinations.insert(target.concat(), function.concat());
        }
    }
    let mut invoked = 0;
    for (owner, effect, g) in statements(&t) {
        if effect != "Allow" || !g.actions.iter().any(|a| a.starts_with("lambda:")) {
            continue;
        }
        invoked += 1;
        assert_eq!(g.actions, ["lambda:InvokeFunction"], "{owner}");
        let policy = all
            .iter()
            .find(|(id, _)| *id == owner)
            .map(|(_, r)| *r)
            .expect("owner");
        let roles = resolve(&policy["Properties"]["Roles"]);
        for r in &g.resources {
            let function = destinations.get(r).unwrap_or_else(|| {
                panic!("{owner} lets a role invoke {r}, not an on-failure destination")
            });
            // `${PrepareBackgroundFunction.Arn}` is invoked by `${PrepareBackgroundFunctionRole}`.
            let own_role = format!("{}Role}}", function.trim_end_matches('}'));
            assert_eq!(roles, [own_role], "{owner}: only the function's own role");
        }
    }
    assert_eq!(invoked, destinations.len(), "every destination is granted");
}

#[test]
fn wildcards_match_as_iam_does() {
    assert!(matches("tmp/*", "tmp/j/chunks/p/0.h264"));
    assert!(matches("jobs/*/story.txt", "jobs/a/story.txt"));
    assert!(!matches("jobs/*/story.txt", "jobs/a/other.txt"));
    assert!(!matches("out/*", "tmp/x"));
    assert!(matches("*", ""));
}
