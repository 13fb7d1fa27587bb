//! `storyreel backgrounds`, `storyreel channel` and `storyreel cloud`: the deployed stack from
//! the command line. Glue over [`storyreel::cloud`].
//!
//! Resource names come from flags or the environment, as the stack's Outputs print them:
//! `--bucket`/`STORYREEL_BUCKET` (BucketName), `--table`/`STORYREEL_TABLE` (JobTableName),
//! `--state-machine-arn`/`STORYREEL_STATE_MACHINE_ARN` (StateMachineArn),
//! `--role-arn`/`STORYREEL_EVENTS_ROLE_ARN` (ChannelRoleArn). AWS credentials, region and
//! endpoint come from the standard configuration (profile, `AWS_REGION`, `AWS_ENDPOINT_URL`).
//! `backgrounds` and `cloud jobs`/`status` also work on a local directory (`--dir`), with no
//! AWS configuration at all.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use storyreel::cloud::backgrounds::{self, BackgroundMeta, BackgroundSelector};
use storyreel::cloud::channels::{ChannelSpec, Channels};
use storyreel::cloud::sfn::{self, CloudRuns};
use storyreel::cloud::{self as cloud, DynamoJobs, S3Store};
use storyreel::jobs::{FsJobs, JobRecord, JobStatus, JobStore};
use storyreel::steps::story::JobRequest;
use storyreel::steps::{RenderSettings, VoiceOptions};
use storyreel::store::{BlobStore, FsStore};

/// The cloud subcommands, flattened into the top-level command list.
#[derive(clap::Subcommand)]
pub enum CloudCommands {
    /// The background library: footage jobs pick by id, by tag or at random.
    #[command(subcommand)]
    Backgrounds(BackgroundsCommand),
    /// Scheduled channels: a prompt turned into a video on a schedule.
    #[command(subcommand)]
    Channel(ChannelCommand),
    /// Videos made by the deployed stack.
    #[command(subcommand)]
    Cloud(CloudCommand),
}

/// Where the media lives: the bucket, or a local directory.
#[derive(clap::Args, Clone)]
pub struct StoreArgs {
    /// The media bucket (default: $STORYREEL_BUCKET, the stack output BucketName).
    #[arg(long)]
    pub bucket: Option<String>,
    /// A local store instead of the bucket (the --out directory of `storyreel make`).
    #[arg(long, conflicts_with = "bucket")]
    pub dir: Option<PathBuf>,
}

/// `storyreel backgrounds ...`
#[derive(clap::Subcommand)]
pub enum BackgroundsCommand {
    /// Check a video (decodable, long enough), prepare it (the 9:16 crop at its own
    /// resolution, 30 fps, H.264 with a keyframe every second, no audio) and add that to the
    /// library. The original is not kept.
    Add {
        /// The footage (an MP4 with an H.264 video track).
        file: PathBuf,
        /// A tag jobs and channels can pick it by (repeatable).
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Shortest accepted length, in seconds.
        #[arg(long, default_value_t = backgrounds::MIN_DURATION_MS as f64 / 1000.0)]
        min_seconds: f64,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List the library.
    List {
        /// Only backgrounds with this tag.
        #[arg(long)]
        tag: Option<String>,
        /// Print JSON (one array).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Remove a background.
    Rm {
        id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// How a job or channel chooses its background.
#[derive(clap::Args, Clone, Default)]
pub struct BackgroundArgs {
    /// A background from the library, by id.
    #[arg(long, conflicts_with_all = ["background_tag", "random_background"])]
    pub background: Option<String>,
    /// Any background with this tag.
    #[arg(long, conflicts_with = "random_background")]
    pub background_tag: Option<String>,
    /// Any background of the library.
    #[arg(long)]
    pub random_background: bool,
}

impl BackgroundArgs {
    fn selector(&self) -> anyhow::Result<Option<BackgroundSelector>> {
        Ok(if let Some(id) = &self.background {
            backgrounds::check_id(id)?;
            Some(BackgroundSelector::Id(id.clone()))
        } else if let Some(t) = &self.background_tag {
            let t = t.trim().to_lowercase();
            backgrounds::check_tag(&t)?;
            Some(BackgroundSelector::Tag(t))
        } else if self.random_background {
            Some(BackgroundSelector::Random)
        } else {
            None
        })
    }
}

/// Options of `storyreel channel create`.
#[derive(clap::Args)]
pub struct ChannelCreateArgs {
    /// 1-46 characters of A-Z, a-z, 0-9, '.', '_', '-'.
    pub name: String,
    /// `rate(6 hours)` or `cron(0 12 * * ? *)` (UTC).
    #[arg(long)]
    pub schedule: String,
    /// What each story is about.
    #[arg(long)]
    pub prompt: String,
    /// Target narration length in seconds.
    #[arg(long)]
    pub seconds: Option<u32>,
    /// Story style: post or replies.
    #[arg(long)]
    pub style: Option<String>,
    /// Voice (a Polly voice id with a polly engine).
    #[arg(long, default_value = "Joanna")]
    pub voice: String,
    /// Speech engine: polly-neural, polly-standard, polly-long-form, polly-generative, espeak.
    #[arg(long, default_value = "polly-neural")]
    pub engine: String,
    /// Name on the title card (default: the channel's name).
    #[arg(long)]
    pub card: Option<String>,
    #[command(flatten)]
    pub background: BackgroundArgs,
    /// Where every video of the channel is published.
    #[command(flatten)]
    pub publish: crate::cli::publish::PublishArgs,
    /// Default: $STORYREEL_STATE_MACHINE_ARN (stack output StateMachineArn).
    #[arg(long)]
    pub state_machine_arn: Option<String>,
    /// The role EventBridge assumes to start executions (default:
    /// $STORYREEL_EVENTS_ROLE_ARN, stack output ChannelRoleArn).
    #[arg(long)]
    pub role_arn: Option<String>,
}

/// `storyreel channel ...`
#[derive(clap::Subcommand)]
pub enum ChannelCommand {
    /// Create (or replace) a channel: a rule that starts a video on a schedule.
    Create(Box<ChannelCreateArgs>),
    /// List channels.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Stop a channel's schedule.
    Pause { name: String },
    /// Restart a channel's schedule.
    Resume { name: String },
    /// Remove a channel.
    Rm { name: String },
}

/// Options of `storyreel cloud make`.
#[derive(clap::Args)]
pub struct CloudMakeArgs {
    /// The story: UTF-8 text, optionally starting with a title line and a blank line.
    #[arg(long, conflicts_with = "prompt", required_unless_present = "prompt")]
    pub story: Option<PathBuf>,
    /// Write the story from this prompt (the stack's LLM).
    #[arg(long)]
    pub prompt: Option<String>,
    /// Target narration length for --prompt, in seconds.
    #[arg(long, default_value_t = 60)]
    pub seconds: u32,
    #[arg(long)]
    pub title: Option<String>,
    #[command(flatten)]
    pub background: BackgroundArgs,
    /// Where in the background to start, in seconds (default: random per job).
    #[arg(long)]
    pub start: Option<f64>,
    #[arg(long, default_value = "Joanna")]
    pub voice: String,
    #[arg(long, default_value = "polly-neural")]
    pub engine: String,
    #[arg(long)]
    pub rate: Option<u32>,
    /// Name on the title card.
    #[arg(long, default_value = "r/storyreel")]
    pub channel: String,
    #[arg(long, default_value_t = storyreel::plan::DEFAULT_CHUNK_FRAMES)]
    pub chunk_frames: u32,
    #[arg(long, default_value = "veryfast")]
    pub preset: String,
    #[arg(long, default_value_t = 23.0)]
    pub crf: f32,
    #[arg(long)]
    pub draft: bool,
    /// Chunks rendered at once (0: as many as Step Functions allows).
    #[arg(long, default_value_t = 0)]
    pub max_concurrency: u32,
    /// Make the same story again as a new job (by default the same request follows its job).
    #[arg(long)]
    pub again: bool,
    /// Start and print the job id without following it.
    #[arg(long)]
    pub no_follow: bool,
    #[command(flatten)]
    pub publish: crate::cli::publish::PublishArgs,
    #[command(flatten)]
    pub resources: Resources,
}

/// The stack's resources, from flags or the environment.
#[derive(clap::Args, Clone, Default)]
pub struct Resources {
    /// Default: $STORYREEL_STATE_MACHINE_ARN (stack output StateMachineArn).
    #[arg(long)]
    pub state_machine_arn: Option<String>,
    /// Default: $STORYREEL_TABLE (stack output JobTableName).
    #[arg(long)]
    pub table: Option<String>,
    /// Default: $STORYREEL_BUCKET (stack output BucketName).
    #[arg(long)]
    pub bucket: Option<String>,
}

/// `storyreel cloud ...`
#[derive(clap::Subcommand)]
pub enum CloudCommand {
    /// Make a video on the deployed stack and follow it until the link is ready.
    Make(Box<CloudMakeArgs>),
    /// One job: state, chunks done, error or outputs (with a fresh link when the bucket is known).
    Status {
        job: String,
        /// A local store (`storyreel make --out`) instead of the table.
        #[arg(long, conflicts_with_all = ["table", "bucket", "state_machine_arn"])]
        dir: Option<PathBuf>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        resources: Resources,
    },
    /// Recent jobs, newest first.
    Jobs {
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// A local store (`storyreel make --out`) instead of the table.
        #[arg(long, conflicts_with = "table")]
        dir: Option<PathBuf>,
        #[arg(long)]
        json: bool,
        /// Default: $STORYREEL_TABLE (stack output JobTableName).
        #[arg(long)]
        table: Option<String>,
    },
}

/// Runs a cloud subcommand.
pub async fn run(command: CloudCommands) -> anyhow::Result<()> {
    match command {
        CloudCommands::Backgrounds(c) => backgrounds_command(c).await,
        CloudCommands::Channel(c) => channel_command(c).await,
        CloudCommands::Cloud(c) => cloud_command(c).await,
    }
}

fn bucket_name(flag: Option<&str>) -> anyhow::Result<String> {
    Ok(cloud::resource_name(
        flag,
        "bucket",
        "--bucket",
        cloud::BUCKET_ENV,
        "BucketName",
    )?)
}

fn table_name(flag: Option<&str>) -> anyhow::Result<String> {
    Ok(cloud::resource_name(
        flag,
        "job table",
        "--table",
        cloud::TABLE_ENV,
        "JobTableName",
    )?)
}

fn state_machine(flag: Option<&str>) -> anyhow::Result<String> {
    Ok(cloud::resource_name(
        flag,
        "state machine",
        "--state-machine-arn",
        cloud::STATE_MACHINE_ENV,
        "StateMachineArn",
    )?)
}

/// The store: `--dir` locally (no AWS configuration read), else the bucket.
async fn open_store(args: &StoreArgs) -> anyhow::Result<Arc<dyn BlobStore>> {
    if let Some(dir) = &args.dir {
        return Ok(Arc::new(FsStore::new(dir)));
    }
    let bucket =
        bucket_name(args.bucket.as_deref()).context("or pass --dir DIR for a local store")?;
    let conf = cloud::load_config().await;
    Ok(Arc::new(S3Store::new(&conf, &bucket)))
}

async fn backgrounds_command(c: BackgroundsCommand) -> anyhow::Result<()> {
    match c {
        BackgroundsCommand::Add {
            file,
            tags,
            min_seconds,
            store,
        } => {
            anyhow::ensure!(
                min_seconds.is_finite() && min_seconds >= 0.0,
                "invalid --min-seconds {min_seconds} (expected >= 0)"
            );
            let store = open_store(&store).await?;
            let bar = prepare_bar();
            let ticker = bar.clone();
            let meta = backgrounds::add_with_progress(
                store.as_ref(),
                &file,
                &tags,
                (min_seconds * 1000.0).round() as u64,
                Box::new(move |done, total| {
                    ticker.set_length(total);
                    ticker.set_position(done);
                }),
            )
            .await;
            bar.finish_and_clear();
            let meta =
                meta.with_context(|| format!("add {} to {}", file.display(), store.describe()))?;
            eprintln!("{}", added_line(&meta));
            println!("{}", meta.id);
            Ok(())
        }
        BackgroundsCommand::List { tag, json, store } => {
            let store = open_store(&store).await?;
            let tag = tag.map(|t| t.trim().to_lowercase());
            let list = backgrounds::list(store.as_ref(), tag.as_deref())
                .await
                .with_context(|| format!("list backgrounds in {}", store.describe()))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print_backgrounds(&list);
            }
            Ok(())
        }
        BackgroundsCommand::Rm { id, store } => {
            let store = open_store(&store).await?;
            let meta = backgrounds::remove(store.as_ref(), &id)
                .await
                .with_context(|| format!("remove background {id}"))?;
            eprintln!("removed {} ({})", meta.id, meta.original_name);
            Ok(())
        }
    }
}

/// The progress bar of `backgrounds add` (hidden unless stderr is a terminal).
fn prepare_bar() -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(0)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "preparing [{bar:40}] {pos}/{len} frames {per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}

/// `added 1a2b...: 608x1080 30 fps 62.0 s h264 (from 1920x1080 60 fps hevc, prepared in 41.3 s)`.
fn added_line(m: &BackgroundMeta) -> String {
    let s = &m.source;
    format!(
        "added {}: {}x{} {} fps {:.1} s {} (from {}x{} {} fps {}, prepared in {:.1} s)",
        m.id,
        m.width,
        m.height,
        m.fps,
        m.duration_ms as f64 / 1000.0,
        m.codec,
        s.width,
        s.height,
        s.fps,
        s.codec,
        m.prepare_ms as f64 / 1000.0
    )
}

fn print_backgrounds(list: &[BackgroundMeta]) {
    if list.is_empty() {
        eprintln!("no backgrounds (add one with `storyreel backgrounds add FILE --tag T`)");
        return;
    }
    println!(
        "{:<16}  {:>9}  {:>9}  {:>6}  {:>8}  tags",
        "id", "size", "length", "fps", "MB"
    );
    for m in list {
        println!(
            "{:<16}  {:>9}  {:>8.1}s  {:>6.2}  {:>8.1}  {}",
            m.id,
            format!("{}x{}", m.width, m.height),
            m.duration_ms as f64 / 1000.0,
            m.fps,
            m.bytes as f64 / 1e6,
            m.tags.join(",")
        );
    }
}

async fn channel_command(c: ChannelCommand) -> anyhow::Result<()> {
    let channels = || async { Channels::new(&cloud::load_config().await) };
    match c {
        ChannelCommand::Create(args) => {
            let ChannelCreateArgs {
                name,
                schedule,
                prompt,
                seconds,
                style,
                voice,
                engine,
                card,
                background,
                publish,
                state_machine_arn,
                role_arn,
            } = *args;
            let spec = ChannelSpec {
                name: name.clone(),
                schedule,
                prompt,
                seconds,
                style,
                voice: VoiceOptions {
                    engine,
                    voice,
                    rate: None,
                },
                background: background.selector()?,
                card,
                publish: publish.destinations()?,
            };
            // Checked before any AWS call or configuration is needed.
            storyreel::cloud::channels::input_template(&spec)
                .with_context(|| format!("channel {name}"))?;
            let sm = state_machine(state_machine_arn.as_deref())?;
            let role = cloud::resource_name(
                role_arn.as_deref(),
                "events role",
                "--role-arn",
                cloud::EVENTS_ROLE_ENV,
                "ChannelRoleArn",
            )?;
            let created = channels()
                .await
                .create(&spec, &sm, &role)
                .await
                .with_context(|| format!("create channel {name}"))?;
            eprintln!(
                "{} channel {name}: {} starts {sm}",
                if created { "created" } else { "updated" },
                spec.schedule
            );
            Ok(())
        }
        ChannelCommand::List { json } => {
            let list = channels().await.list().await.context("list channels")?;
            if json {
                let v: Vec<_> = list
                    .iter()
                    .map(|c| {
                        serde_json::json!({"name": c.name, "rule": c.rule, "schedule": c.schedule,
                            "enabled": c.enabled, "target": c.target, "request": c.request})
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            if list.is_empty() {
                eprintln!("no channels (create one with `storyreel channel create`)");
            }
            for c in list {
                let prompt = c
                    .request
                    .as_ref()
                    .and_then(|r| r.pointer("/story/prompt"))
                    .and_then(|p| p.as_str())
                    .unwrap_or("?");
                println!(
                    "{:<24} {:<8} {:<24} {}",
                    c.name,
                    if c.enabled { "active" } else { "paused" },
                    c.schedule,
                    prompt
                );
            }
            Ok(())
        }
        ChannelCommand::Pause { name } => {
            channels()
                .await
                .pause(&name)
                .await
                .with_context(|| format!("pause channel {name}"))?;
            eprintln!("paused channel {name}");
            Ok(())
        }
        ChannelCommand::Resume { name } => {
            channels()
                .await
                .resume(&name)
                .await
                .with_context(|| format!("resume channel {name}"))?;
            eprintln!("resumed channel {name}");
            Ok(())
        }
        ChannelCommand::Rm { name } => {
            channels()
                .await
                .remove(&name)
                .await
                .with_context(|| format!("remove channel {name}"))?;
            eprintln!("removed channel {name}");
            Ok(())
        }
    }
}

async fn cloud_command(c: CloudCommand) -> anyhow::Result<()> {
    match c {
        CloudCommand::Make(args) => cloud_make(*args).await,
        CloudCommand::Status {
            job,
            dir,
            json,
            resources,
        } => cloud_status(&job, dir.as_deref(), json, &resources).await,
        CloudCommand::Jobs {
            limit,
            dir,
            json,
            table,
        } => {
            let jobs: Arc<dyn JobStore> = match &dir {
                Some(d) => Arc::new(FsJobs::new(d.join("jobs"))),
                None => {
                    let table = table_name(table.as_deref())?;
                    Arc::new(DynamoJobs::new(&cloud::load_config().await, &table))
                }
            };
            let list = jobs.list(limit).await.context("list jobs")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(());
            }
            if list.is_empty() {
                eprintln!("no jobs");
            }
            for j in list {
                println!(
                    "{:<48} {:<9} {:<14} {:>7}  {}  {}",
                    j.job_id,
                    status_word(j.status),
                    j.step,
                    format!("{}/{}", j.chunks_done.len(), j.chunks_total),
                    utc(j.created_at),
                    j.title.as_deref().unwrap_or("")
                );
            }
            Ok(())
        }
    }
}

fn status_word(s: JobStatus) -> &'static str {
    match s {
        JobStatus::Running => "running",
        JobStatus::Succeeded => "succeeded",
        JobStatus::Failed => "failed",
    }
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SSZ` (UTC).
fn utc(secs: u64) -> String {
    let rem = secs % 86_400;
    let (y, m, d) = storyreel::jobs::utc_date(secs);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Builds the request, starts (or finds) its execution and follows it.
async fn cloud_make(args: CloudMakeArgs) -> anyhow::Result<()> {
    let story = crate::cli::story_and_start(
        args.story.as_deref(),
        args.prompt.as_deref(),
        args.seconds,
        args.start,
    )?;
    let mut request = JobRequest {
        job_id: None,
        story,
        title: args.title.clone(),
        voice: VoiceOptions {
            engine: args.engine.clone(),
            voice: args.voice.clone(),
            rate: args.rate,
        },
        background: None,
        render: RenderSettings {
            chunk_frames: args.chunk_frames,
            preset: args.preset.clone(),
            crf: args.crf,
            draft: args.draft,
            max_concurrency: args.max_concurrency,
        },
        channel: Some(args.channel.clone()),
        trigger: None,
        background_selector: None,
        publish: args.publish.destinations()?,
    };
    // A prompt writes a new story every time; --again makes a new job of the same request.
    let nonce = if request.story.prompt.is_some() || args.again {
        sfn::nonce()
    } else {
        String::new()
    };
    let conf = cloud::load_config().await;
    if let Some(selector) = args.background.selector()? {
        let bucket = bucket_name(args.resources.bucket.as_deref())
            .context("the background library is in the bucket")?;
        let store = S3Store::new(&conf, &bucket);
        let catalog = backgrounds::list(&store, None)
            .await
            .context("read the background library")?;
        // Seeded by the job, so the same request picks the same footage.
        let seed_id = sfn::job_id_for(&request, &nonce);
        let seed =
            u64::from_str_radix(&storyreel::keys::hash(&[seed_id.as_bytes()]), 16).unwrap_or(0);
        let picked = backgrounds::pick_background(&catalog, &selector, seed)?;
        eprintln!(
            "background {} ({})",
            picked.id,
            if picked.tags.is_empty() {
                "untagged".to_string()
            } else {
                picked.tags.join(",")
            }
        );
        request.background = Some(backgrounds::choice(
            picked,
            args.start.map(|s| (s * 1000.0).round() as u64),
        ));
    }
    let job_id = sfn::job_id_for(&request, &nonce);
    request.job_id = Some(job_id.clone());
    sfn::check_request(&request)?;
    let sm = state_machine(args.resources.state_machine_arn.as_deref())?;
    let runs = CloudRuns::new(&conf, &sm);
    let input = serde_json::to_value(&request)?;
    let started = runs
        .start(&job_id, &input)
        .await
        .with_context(|| format!("start job {job_id}"))?;
    eprintln!(
        "{} job {job_id} ({})",
        if started.existed {
            "following"
        } else {
            "started"
        },
        started.execution_arn
    );
    if args.no_follow {
        println!("{job_id}");
        return Ok(());
    }
    let jobs = match table_name(args.resources.table.as_deref()) {
        Ok(t) => Some(DynamoJobs::new(&conf, &t)),
        Err(e) => {
            eprintln!("({e}: progress shows the execution only)");
            None
        }
    };
    follow_and_report(&runs, &started.execution_arn, &job_id, jobs.as_ref()).await
}

/// Follows an execution, printing progress, then prints the link or fails with the cause.
pub async fn follow_and_report(
    runs: &CloudRuns,
    execution_arn: &str,
    job_id: &str,
    jobs: Option<&DynamoJobs>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut on_progress = move |p: &sfn::Progress| {
        let t = started.elapsed().as_secs_f64();
        let chunks = if p.chunks_total > 0 {
            format!(" {}/{} chunks", p.chunks_done, p.chunks_total)
        } else {
            String::new()
        };
        let step = p.step.as_deref().unwrap_or("starting");
        eprintln!("[{t:6.1}s] {} {step}{chunks}", p.status.to_lowercase());
    };
    let (exec, record) = runs
        .follow(
            execution_arn,
            Some(job_id),
            jobs.map(|j| j as &dyn JobStore),
            Duration::from_secs(2),
            &mut on_progress,
        )
        .await
        .with_context(|| format!("follow job {job_id}"))?;
    if exec.running()
        && let Some(r) = record.as_ref().filter(|r| r.status == JobStatus::Succeeded)
    {
        // The video is made; the execution waits to publish a deferred destination.
        eprintln!(
            "job {job_id} made in {:.1}s; the run publishes deferred destinations by itself",
            started.elapsed().as_secs_f64()
        );
        for (dest, state) in &r.publish {
            eprintln!("{}", crate::cli::publish::describe(dest, state));
        }
        if let Some(o) = &r.outputs {
            println!("{}", o.link);
        }
        return Ok(());
    }
    let outcome = sfn::outcome(&exec, record);
    if outcome.succeeded {
        if let Some(r) = &outcome.record {
            for (dest, state) in &r.publish {
                eprintln!("{}", crate::cli::publish::describe(dest, state));
            }
        }
        eprintln!(
            "job {} done in {:.1}s",
            outcome.job_id.as_deref().unwrap_or(job_id),
            started.elapsed().as_secs_f64()
        );
        if let Some(link) = &outcome.link {
            println!("{link}");
        }
        return Ok(());
    }
    if outcome.duplicate {
        let r = outcome.record.as_ref();
        bail!(
            "job {job_id} belongs to another run ({}, at {}); see `storyreel cloud status {job_id}`",
            r.map_or("unknown", |r| status_word(r.status)),
            r.map_or("?", |r| r.step.as_str())
        );
    }
    bail!(
        "job {job_id} failed: {}",
        outcome
            .failure
            .unwrap_or_else(|| format!("execution {}", exec.status))
    )
}

async fn cloud_status(
    job: &str,
    dir: Option<&Path>,
    json: bool,
    resources: &Resources,
) -> anyhow::Result<()> {
    let (record, link, execution) = if let Some(dir) = dir {
        let record = FsJobs::new(dir.join("jobs")).get(job).await?;
        (record, None, None)
    } else {
        let conf = cloud::load_config().await;
        let table = table_name(resources.table.as_deref())?;
        let record = DynamoJobs::new(&conf, &table)
            .get(job)
            .await
            .with_context(|| format!("read job {job}"))?;
        // A fresh link (the record's may have expired), when the bucket is known.
        let link = match (&record, bucket_name(resources.bucket.as_deref())) {
            (Some(r), Ok(bucket)) if r.status == JobStatus::Succeeded => match &r.outputs {
                Some(o) if !o.video.is_empty() => Some(
                    S3Store::new(&conf, &bucket)
                        .link(&o.video, storyreel::steps::publish::LINK_EXPIRY_SECS)
                        .await?,
                ),
                _ => None,
            },
            _ => None,
        };
        // The execution of the same name, when the job was started by `cloud make`.
        let execution = match state_machine(resources.state_machine_arn.as_deref()) {
            Ok(sm) => {
                let runs = CloudRuns::new(&conf, &sm);
                match sfn::execution_arn(&sm, job) {
                    Ok(arn) => runs.describe(&arn).await.ok(),
                    Err(_) => None,
                }
            }
            Err(_) => None,
        };
        (record, link, execution)
    };
    let Some(record) = record else {
        if let Some(e) = execution {
            println!("job {job}: no record yet; execution {}", e.status);
            return Ok(());
        }
        bail!("no job {job:?} (see `storyreel cloud jobs`)");
    };
    if json {
        let mut v = serde_json::to_value(&record)?;
        if let Some(l) = &link {
            v["fresh_link"] = serde_json::json!(l);
        }
        if let Some(e) = &execution {
            v["execution"] = serde_json::json!({"arn": e.arn, "status": e.status});
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    print_record(&record);
    if let Some(e) = execution {
        println!("execution: {} ({})", e.status.to_lowercase(), e.arn);
    }
    if let Some(l) = link {
        println!("link:      {l}");
    }
    Ok(())
}

fn print_record(r: &JobRecord) {
    println!("job:       {}", r.job_id);
    if let Some(t) = &r.title {
        println!("title:     {t}");
    }
    println!("status:    {} at {}", status_word(r.status), r.step);
    if r.chunks_total > 0 {
        println!("chunks:    {}/{}", r.chunks_done.len(), r.chunks_total);
    }
    let detail = if r.source_detail.is_empty() {
        String::new()
    } else {
        format!(" ({})", r.source_detail)
    };
    println!("source:    {}{detail}", r.source);
    println!(
        "created:   {}, updated {}",
        utc(r.created_at),
        utc(r.updated_at)
    );
    if let Some(e) = &r.error {
        println!("error:     {} failed: {}: {}", e.step, e.error, e.cause);
    }
    if let Some(o) = &r.outputs {
        println!("video:     {}", o.video);
        println!("captions:  {} {}", o.srt, o.vtt);
        println!("thumbnail: {}", o.thumbnail);
    }
    for (dest, state) in &r.publish {
        println!("publish:   {}", crate::cli::publish::describe(dest, state));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00Z");
        assert_eq!(utc(1_767_225_599), "2025-12-31 23:59:59Z");
    }
}
