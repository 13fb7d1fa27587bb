//! `storyreel make`, `invoke` and `watch`: the workflow on this machine.

use std::collections::HashSet;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use storyreel::cloud::backgrounds::{self, BackgroundSelector};
use storyreel::jobs::{JobRecord, JobStatus};
use storyreel::steps::story::JobRequest;
use storyreel::steps::{BackgroundChoice, RenderSettings, VoiceOptions};
use storyreel::workflow::{LocalSteps, execute};
use storyreel_asl::Event;

/// Options of `storyreel make`.
#[derive(clap::Args)]
pub struct MakeArgs {
    /// The story: UTF-8 text, optionally starting with a title line and a blank line.
    #[arg(long, conflicts_with = "prompt", required_unless_present = "prompt")]
    pub story: Option<PathBuf>,
    /// Write the story from this prompt with an OpenAI-compatible LLM.
    #[arg(long)]
    pub prompt: Option<String>,
    /// Target narration length for --prompt, in seconds.
    #[arg(long, default_value_t = 60)]
    pub seconds: u32,
    /// Title on the post card (default: the story's title line).
    #[arg(long)]
    pub title: Option<String>,
    /// Background: a video file, a library id, `tag:NAME` or `random` (from the library in
    /// the --out directory, see `storyreel backgrounds add --dir`); default: a generated one.
    #[arg(long, value_name = "FILE|ID|tag:NAME|random")]
    pub background: Option<String>,
    /// Where in the background to start, in seconds (default: random per job).
    #[arg(long)]
    pub start: Option<f64>,
    /// Voice: an espeak-ng voice or language (see `storyreel voices`).
    #[arg(long, default_value = storyreel_speech::ESPEAK_DEFAULT_VOICE)]
    pub voice: String,
    /// Speech engine: espeak (local) or polly-neural, polly-standard, ... (needs AWS).
    #[arg(long, default_value = "espeak")]
    pub engine: String,
    /// Speaking rate in words per minute (espeak).
    #[arg(long)]
    pub rate: Option<u32>,
    /// Name on the title card.
    #[arg(long, default_value = "r/storyreel")]
    pub channel: String,
    /// Output directory: mirrors the bucket (out/<job>/video.mp4, ...), holds job records.
    #[arg(long, default_value = "storyreel-out")]
    pub out: PathBuf,
    /// Frames per chunk, the unit of parallel work.
    #[arg(long, default_value_t = storyreel::plan::DEFAULT_CHUNK_FRAMES)]
    pub chunk_frames: u32,
    /// Chunks rendered at once (default: one per two cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    #[arg(long, default_value = "veryfast")]
    pub preset: String,
    #[arg(long, default_value_t = 23.0)]
    pub crf: f32,
    /// Quick preview: 540x960.
    #[arg(long)]
    pub draft: bool,
    #[command(flatten)]
    pub publish: crate::cli::publish::PublishArgs,
}

/// What `--background` names.
#[derive(Debug, PartialEq)]
pub enum BackgroundArg {
    /// A video file, rendered as it is.
    File(PathBuf),
    /// A background of the library, picked as jobs in the cloud pick theirs.
    Library(BackgroundSelector),
}

/// Reads `--background`: `random` and `tag:NAME` pick from the library; otherwise an existing
/// file; otherwise a library id (write `./random` for a file of that name).
pub fn parse_background(value: &str) -> anyhow::Result<BackgroundArg> {
    if value == "random" {
        return Ok(BackgroundArg::Library(BackgroundSelector::Random));
    }
    if let Some(tag) = value.strip_prefix("tag:") {
        let tag = tag.trim().to_lowercase();
        backgrounds::check_tag(&tag)?;
        return Ok(BackgroundArg::Library(BackgroundSelector::Tag(tag)));
    }
    let path = Path::new(value);
    if path.exists() {
        return Ok(BackgroundArg::File(path.to_path_buf()));
    }
    if backgrounds::check_id(value).is_ok() {
        return Ok(BackgroundArg::Library(BackgroundSelector::Id(
            value.to_string(),
        )));
    }
    bail!(
        "background {value:?} is neither a file nor a library id (expected FILE, ID, tag:NAME or random)"
    )
}

/// Resolves `--background` against the library in `out`: a file is staged as it is, a
/// selector picks with `seed` (from the request, so a re-run picks the same footage).
async fn resolve_background(
    out: &Path,
    value: &str,
    start_ms: Option<u64>,
    seed: u64,
) -> anyhow::Result<BackgroundChoice> {
    match parse_background(value)? {
        BackgroundArg::File(p) => Ok(BackgroundChoice {
            key: stage_background(out, &p)?,
            start_ms,
        }),
        BackgroundArg::Library(selector) => {
            let store = storyreel::store::FsStore::new(out);
            let catalog = backgrounds::list(&store, None)
                .await
                .with_context(|| format!("read the background library in {}", out.display()))?;
            let picked = backgrounds::pick_background(&catalog, &selector, seed).map_err(|e| {
                anyhow::anyhow!(e).context(format!("background library in {}", out.display()))
            })?;
            eprintln!(
                "background {} ({}x{}, {})",
                picked.id,
                picked.width,
                picked.height,
                if picked.tags.is_empty() {
                    "untagged".to_string()
                } else {
                    picked.tags.join(",")
                }
            );
            Ok(backgrounds::choice(picked, start_ms))
        }
    }
}

/// Puts a local background file into the store (hard-linked when possible) under a key
/// derived from its path, size and modification time.
fn stage_background(out: &Path, path: &Path) -> anyhow::Result<String> {
    let meta = std::fs::metadata(path).with_context(|| format!("background {}", path.display()))?;
    let abs = std::path::absolute(path)?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let id = storyreel::keys::hash(&[
        abs.to_string_lossy().as_bytes(),
        &meta.len().to_le_bytes(),
        &mtime.to_le_bytes(),
    ]);
    // The file's own extension (`.webm`, `.mkv`, ...), so the staged copy says what it is.
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .filter(|e| !e.is_empty() && e.len() <= 8 && e.chars().all(|c| c.is_ascii_alphanumeric()))
        .map_or_else(|| "mp4".to_string(), str::to_ascii_lowercase);
    let key = format!("{}local-{id}.{ext}", storyreel::keys::BACKGROUNDS_PREFIX);
    let dest = out.join(&key);
    if !dest.exists() {
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = dest.with_extension("partial");
        if std::fs::hard_link(path, &tmp).is_err() {
            std::fs::copy(path, &tmp).with_context(|| format!("copy {}", path.display()))?;
        }
        std::fs::rename(&tmp, &dest)?;
    }
    Ok(key)
}

/// Shows progress per state and per chunk.
struct Progress {
    started: Instant,
    bar: indicatif::ProgressBar,
    chunks_done: std::sync::atomic::AtomicUsize,
    last_error: Mutex<Option<String>>,
}

impl Progress {
    fn new() -> Progress {
        let tty = std::io::stderr().is_terminal();
        let bar = if tty {
            indicatif::ProgressBar::new_spinner()
        } else {
            indicatif::ProgressBar::hidden()
        };
        Progress {
            started: Instant::now(),
            bar,
            chunks_done: std::sync::atomic::AtomicUsize::new(0),
            last_error: Mutex::new(None),
        }
    }

    fn line(&self, s: String) {
        let t = self.started.elapsed().as_secs_f64();
        self.bar.suspend(|| eprintln!("[{t:6.1}s] {s}"));
    }

    fn on(&self, e: &Event) {
        match e {
            Event::StateEntered { name, path, .. } if !path.contains('/') => {
                self.line(name.clone());
            }
            Event::StateExited { name, output, .. }
                if name == "Render chunk" && output.get("reused") == Some(&Value::Bool(true)) =>
            {
                let index = output
                    .get("index")
                    .and_then(Value::as_u64)
                    .unwrap_or_default();
                self.line(format!(
                    "Render chunks: chunk {index} already rendered, reused"
                ));
            }
            Event::MapItemDone {
                state,
                index,
                total,
                ..
            } => {
                let n = self
                    .chunks_done
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    + 1;
                self.line(format!("{state}: chunk {index} done ({n} of {total})"));
            }
            Event::TaskRetry {
                path,
                attempt,
                error,
                delay,
                ..
            } => self.line(format!(
                "{path}: retry {attempt} after {} in {:.1}s",
                error.as_deref().unwrap_or("error"),
                delay.as_secs_f64()
            )),
            Event::StateFailed {
                path, error, cause, ..
            } => {
                if let Ok(mut slot) = self.last_error.lock() {
                    *slot = Some(format!(
                        "{path}: {} {}",
                        error.as_deref().unwrap_or(""),
                        cause
                            .as_deref()
                            .map(storyreel::steps::publish::readable_cause)
                            .unwrap_or_default()
                    ));
                }
            }
            _ => {}
        }
    }
}

/// Builds the request and runs the workflow.
pub async fn make(args: MakeArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out).with_context(|| format!("create {}", args.out.display()))?;
    let story = crate::cli::story_and_start(
        args.story.as_deref(),
        args.prompt.as_deref(),
        args.seconds,
        args.start,
    )?;
    let start_ms = args.start.map(|s| (s * 1000.0).round() as u64);
    let background = match &args.background {
        Some(value) => {
            // Seeded by what the job is, so the same request picks the same library footage.
            let seed_text = serde_json::to_string(&(&story, &args.title, &args.voice, value))?;
            let seed = u64::from_str_radix(
                &storyreel::keys::hash(&[b"background", seed_text.as_bytes()]),
                16,
            )
            .unwrap_or(0);
            Some(resolve_background(&args.out, value, start_ms, seed).await?)
        }
        None => None,
    };
    let chunks_at_once = args
        .jobs
        .unwrap_or_else(storyreel::pipeline::default_jobs)
        .max(1);
    let request = JobRequest {
        job_id: None,
        story,
        title: args.title.clone(),
        voice: VoiceOptions {
            engine: args.engine.clone(),
            voice: args.voice.clone(),
            rate: args.rate,
        },
        background,
        render: RenderSettings {
            chunk_frames: args.chunk_frames,
            preset: args.preset.clone(),
            crf: args.crf,
            draft: args.draft,
            max_concurrency: chunks_at_once as u32,
        },
        channel: Some(args.channel.clone()),
        trigger: None,
        background_selector: None,
        publish: args.publish.destinations()?,
    };
    let input = serde_json::to_value(&request)?;
    // The same request runs under the same execution name, so a re-run resumes its job.
    let execution = match &request.story.prompt {
        Some(_) => format!("make-{}", uuid_like()),
        None => format!(
            "make-{}",
            storyreel::keys::hash(&[input.to_string().as_bytes()])
        ),
    };
    let mut steps = LocalSteps::in_dir(&args.out, chunks_at_once);
    steps.llm = crate::cli::llm_from_env()?;
    run_and_report(Arc::new(steps), &execution, input, chunks_at_once).await
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    storyreel::keys::hash(&[&nanos.to_le_bytes(), &std::process::id().to_le_bytes()])
}

/// Runs one execution, prints its outcome from the job record, and fails with the job's error.
async fn run_and_report(
    steps: Arc<LocalSteps>,
    execution: &str,
    input: Value,
    chunks_at_once: usize,
) -> anyhow::Result<()> {
    let progress = Arc::new(Progress::new());
    let p = progress.clone();
    let observer: Arc<dyn storyreel_asl::Observer> = Arc::new(move |e: &Event| p.on(e));
    let jobs = steps.jobs.clone();
    let result = execute(steps, execution, input, chunks_at_once, Some(observer)).await;
    progress.bar.finish_and_clear();
    let output = match result {
        Ok(v) => v,
        Err(e) => {
            let job_id = e
                .cause
                .as_deref()
                .and_then(|c| serde_json::from_str::<Value>(c).ok())
                .and_then(|v| v.get("job_id").and_then(Value::as_str).map(str::to_string));
            let detail = progress.last_error.lock().ok().and_then(|s| s.clone());
            bail!(
                "the job failed: {}: {}{}",
                e.error.as_deref().unwrap_or("error"),
                e.cause
                    .as_deref()
                    .map(storyreel::steps::publish::readable_cause)
                    .unwrap_or_default(),
                job_id
                    .map(|j| format!(" (job {j})"))
                    .or(detail.map(|d| format!(" [{d}]")))
                    .unwrap_or_default()
            );
        }
    };
    // The output is publish's, or the story step's for a job another execution owns.
    let job_id = output
        .get("job_id")
        .or_else(|| output.pointer("/job/job_id"))
        .and_then(Value::as_str)
        .context("the workflow finished without a job id")?
        .to_string();
    let record = jobs
        .get(&job_id)
        .await?
        .with_context(|| format!("job {job_id} has no record"))?;
    report(&record, progress.started.elapsed())
}

fn report(job: &JobRecord, took: Duration) -> anyhow::Result<()> {
    match (&job.status, &job.outputs) {
        (JobStatus::Succeeded, Some(o)) => {
            eprintln!("job {} done in {:.1}s", job.job_id, took.as_secs_f64());
            println!("{}", o.link);
            eprintln!("captions: {} {}\nthumbnail: {}", o.srt, o.vtt, o.thumbnail);
            let mut failed = Vec::new();
            for (dest, state) in &job.publish {
                eprintln!("{}", crate::cli::publish::describe(dest, state));
                if state.status == storyreel_publish::DestinationStatus::Failed {
                    failed.push(dest.as_str());
                }
            }
            if job
                .publish
                .values()
                .any(|s| s.status == storyreel_publish::DestinationStatus::Deferred)
            {
                eprintln!(
                    "deferred uploads happen with `storyreel publish retry --out DIR` (or `storyreel watch` running)"
                );
            }
            if !failed.is_empty() {
                bail!(
                    "job {}: the video is made ({}) but publishing to {} failed",
                    job.job_id,
                    o.video,
                    failed.join(", ")
                );
            }
            Ok(())
        }
        (JobStatus::Failed, _) => {
            let e = job
                .error
                .clone()
                .unwrap_or_else(|| storyreel::jobs::JobFailure {
                    step: job.step.clone(),
                    error: "unknown".into(),
                    cause: String::new(),
                });
            bail!(
                "job {} failed in {}: {}: {}",
                job.job_id,
                e.step,
                e.error,
                e.cause
            )
        }
        _ => bail!(
            "job {} is {:?} at {} (another run owns it)",
            job.job_id,
            job.status,
            job.step
        ),
    }
}

/// `storyreel invoke STEP --event FILE`.
pub async fn invoke(step: &str, event: &Path, dir: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(event)
        .with_context(|| format!("read event {}", event.display()))?;
    let event: Value =
        serde_json::from_str(&text).with_context(|| format!("parse event {}", event.display()))?;
    let steps = LocalSteps::in_dir(dir, 1);
    match steps.invoke_step(step, event).await {
        Ok(out) => {
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        Err(e) => {
            println!(
                "{}",
                json!({"errorType": e.name.as_str(), "errorMessage": e.chain()})
            );
            bail!("{}", e.chain())
        }
    }
}

/// `storyreel watch DIR`: each story file dropped into DIR becomes a video.
pub async fn watch(
    dir: &Path,
    out: &Path,
    once: bool,
    publish: &crate::cli::publish::PublishArgs,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::create_dir_all(out)?;
    let chunks_at_once = storyreel::pipeline::default_jobs();
    let mut steps = LocalSteps::in_dir(out, chunks_at_once);
    steps.llm = crate::cli::llm_from_env()?;
    steps.publishers = steps
        .publishers
        .with_drop_from_env()
        .map_err(anyhow::Error::msg)?;
    let flags = publish.destinations()?;
    if !flags.is_empty() {
        steps.publishers.drop_publish = flags;
    }
    let steps = Arc::new(steps);
    // Deferred uploads are picked up while watching, once a minute.
    let mut next_retry = Instant::now();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    eprintln!(
        "watching {} for stories (.txt, .md); outputs in {}",
        dir.display(),
        out.display()
    );
    loop {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        for path in entries {
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_string)
            else {
                continue;
            };
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if !meta.is_file() || name.starts_with('.') {
                continue;
            }
            // Wait until a file stops growing before taking it.
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.elapsed().ok())
                .unwrap_or_default();
            if mtime < Duration::from_millis(500) && !once {
                continue;
            }
            let etag = storyreel::keys::hash(&[&std::fs::read(&path).unwrap_or_default()]);
            if !seen.insert((name.clone(), etag.clone())) {
                continue;
            }
            let key = format!("{}{name}", storyreel::keys::DROP_PREFIX);
            let bytes = std::fs::read(&path)?;
            let size = bytes.len();
            steps.store.put(&key, bytes, "text/plain").await?;
            // The event an S3 upload under the drop prefix sends through EventBridge.
            let event = json!({
                "version": "0",
                "id": etag,
                "detail-type": "Object Created",
                "source": "aws.s3",
                "account": "000000000000",
                "time": "1970-01-01T00:00:00Z",
                "region": "local",
                "resources": ["arn:aws:s3:::local"],
                "detail": {
                    "version": "0",
                    "bucket": {"name": "local"},
                    "object": {"key": storyreel::cloud::triggers::encode_event_key(&key), "size": size, "etag": etag},
                    "reason": "PutObject"
                }
            });
            let execution = format!("drop-{}", uuid_like());
            eprintln!("{name}: starting");
            if let Err(e) = run_and_report(steps.clone(), &execution, event, chunks_at_once).await {
                eprintln!("{name}: {e:#}");
            }
        }
        if Instant::now() >= next_retry {
            next_retry = Instant::now() + Duration::from_secs(60);
            if let Err(e) = crate::cli::publish::retry(out, None, false, &steps.publishers).await {
                eprintln!("publish retry: {e:#}");
            }
        }
        if once {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn background_names_a_file_a_library_id_a_tag_or_random() {
        let dir = std::env::temp_dir();
        let file = dir.join(format!("storyreel-bg-{}.mp4", std::process::id()));
        std::fs::write(&file, b"x").unwrap();
        assert_eq!(
            parse_background(file.to_str().unwrap()).unwrap(),
            BackgroundArg::File(file.clone())
        );
        std::fs::remove_file(&file).unwrap();
        assert_eq!(
            parse_background("random").unwrap(),
            BackgroundArg::Library(BackgroundSelector::Random)
        );
        assert_eq!(
            parse_background("tag:LoFi").unwrap(),
            BackgroundArg::Library(BackgroundSelector::Tag("lofi".into()))
        );
        assert_eq!(
            parse_background("0123abcd").unwrap(),
            BackgroundArg::Library(BackgroundSelector::Id("0123abcd".into()))
        );
        assert!(parse_background("tag:not a tag").is_err());
        let e = parse_background("missing.mp4").unwrap_err().to_string();
        assert!(e.contains("neither a file nor a library id"), "{e}");
    }
}
