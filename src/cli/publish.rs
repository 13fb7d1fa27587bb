//! Where videos go: the `--publish` flags `make`, `cloud make`, `watch` and `channel create`
//! share, and `storyreel publish retry` (deferred and interrupted uploads on one machine).

use std::path::PathBuf;

use anyhow::{Context, bail};
use storyreel::jobs::{FsJobs, JobRecord, JobStore, unix_now};
use storyreel::publishing::{PublishJob, Publishers};
use storyreel::store::FsStore;
use storyreel_publish::youtube::Privacy;
use storyreel_publish::{Destination, DestinationState, DestinationStatus};

/// `--publish youtube:main --privacy private ...`
#[derive(clap::Args, Clone, Debug, Default)]
pub struct PublishArgs {
    /// Publish the video to a connected account, PLATFORM:ACCOUNT (`youtube:main`,
    /// `tiktok:main`); repeat for several (see `storyreel accounts`).
    #[arg(long = "publish", value_name = "PLATFORM:ACCOUNT")]
    pub publish: Vec<String>,
    /// Who sees it: private (the default: nothing goes public by surprise), unlisted, public.
    /// TikTok maps it to the creator's allowed levels (private: only me).
    #[arg(long, default_value = "private")]
    pub privacy: Privacy,
    /// YouTube: publish at this time (RFC 3339, e.g. 2026-12-24T18:00:00Z); needs --privacy
    /// private, which YouTube turns public then.
    #[arg(long)]
    pub publish_at: Option<String>,
    /// Hashtags for the description (comma-separated, without '#'); YouTube also gets #Shorts.
    #[arg(long, value_delimiter = ',')]
    pub hashtags: Vec<String>,
    /// YouTube tags (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub tags: Vec<String>,
    /// YouTube category id (default 24, Entertainment).
    #[arg(long)]
    pub category: Option<String>,
    /// Replaces the description made from the story's opening.
    #[arg(long)]
    pub description: Option<String>,
    /// YouTube: do not notify subscribers.
    #[arg(long)]
    pub no_notify: bool,
    /// Do not declare the video as synthetic media (it is declared by default: the narration
    /// is synthetic).
    #[arg(long)]
    pub not_synthetic: bool,
    /// YouTube: declare the video made for kids.
    #[arg(long)]
    pub made_for_kids: bool,
    /// TikTok: post directly (an audited app with video.publish) instead of sending a draft to
    /// the creator's inbox.
    #[arg(long)]
    pub tiktok_direct: bool,
}

impl PublishArgs {
    /// The destinations the flags name, checked.
    pub fn destinations(&self) -> anyhow::Result<Vec<Destination>> {
        let mut out: Vec<Destination> = Vec::new();
        for spec in &self.publish {
            let mut d = Destination::parse(spec)?;
            d.privacy = self.privacy;
            d.publish_at = self.publish_at.clone();
            d.hashtags = self
                .hashtags
                .iter()
                .map(|h| h.trim().trim_start_matches('#').to_string())
                .filter(|h| !h.is_empty())
                .collect();
            d.tags = self
                .tags
                .iter()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect();
            d.category = self.category.clone();
            d.description = self.description.clone();
            d.notify_subscribers = !self.no_notify;
            d.synthetic_media = !self.not_synthetic;
            d.made_for_kids = self.made_for_kids;
            d.direct = self.tiktok_direct;
            if d.platform == storyreel_publish::Platform::TikTok {
                // Scheduling is YouTube's; a TikTok destination beside it posts when made.
                d.publish_at = None;
            }
            d.validate()?;
            if out.iter().any(|o| o.id() == d.id()) {
                bail!("--publish {spec} is given twice");
            }
            out.push(d);
        }
        if out.is_empty() && self.publish_at.is_some() {
            bail!("--publish-at needs --publish youtube:ACCOUNT");
        }
        Ok(out)
    }
}

/// One line per destination, for people.
pub fn describe(dest: &str, s: &DestinationState) -> String {
    let what = match s.status {
        DestinationStatus::Published => match (&s.url, &s.video_id) {
            (Some(u), _) => format!("published {u}"),
            (None, Some(id)) => format!("published (id {id})"),
            _ => "published".into(),
        },
        DestinationStatus::Deferred => format!(
            "deferred until {} ({})",
            s.deferred_until
                .map(storyreel_publish::time::format_rfc3339)
                .unwrap_or_else(|| "later".into()),
            s.reason.as_deref().unwrap_or("")
        ),
        DestinationStatus::Failed => format!("failed: {}", s.reason.as_deref().unwrap_or("")),
        DestinationStatus::Uploading => format!(
            "uploading ({} of {} bytes confirmed)",
            s.bytes_confirmed, s.bytes_total
        ),
        DestinationStatus::Processing => "processing on the platform".into(),
        DestinationStatus::Pending => "pending".into(),
    };
    let mut line = format!("{dest}: {what}");
    for w in &s.warnings {
        line.push_str(&format!("\n{dest}: warning: {w}"));
    }
    line
}

/// True when a job has a destination `publish retry` should drive now.
pub fn wants_retry(job: &JobRecord, now: u64, failed_too: bool) -> bool {
    job.outputs.is_some()
        && job.publish.values().any(|s| match s.status {
            DestinationStatus::Published => false,
            DestinationStatus::Failed => failed_too,
            DestinationStatus::Deferred => s.deferred_until.is_none_or(|u| u <= now),
            _ => true,
        })
}

/// `storyreel publish ...`
#[derive(clap::Subcommand)]
pub enum PublishCommand {
    /// Upload what is waiting: deferred destinations whose time has come and uploads that
    /// were interrupted (a killed run). With --failed, also failed ones (after `accounts
    /// connect` fixed the account).
    Retry {
        /// Only this job.
        #[arg(long)]
        job: Option<String>,
        /// Also retry destinations that failed.
        #[arg(long)]
        failed: bool,
        /// The local store (`make --out`).
        #[arg(long, default_value = "storyreel-out")]
        out: PathBuf,
    },
    /// Show each destination of a job (or of the recent jobs).
    Status {
        #[arg(long)]
        job: Option<String>,
        #[arg(long, default_value = "storyreel-out")]
        out: PathBuf,
    },
}

pub async fn run(c: PublishCommand) -> anyhow::Result<()> {
    match c {
        PublishCommand::Retry { job, failed, out } => {
            let n = retry(&out, job.as_deref(), failed, &Publishers::local()).await?;
            if n == 0 {
                eprintln!("nothing to publish now");
            }
            Ok(())
        }
        PublishCommand::Status { job, out } => {
            let jobs = FsJobs::new(out.join("jobs"));
            let records = match job {
                Some(id) => vec![
                    jobs.get(&id)
                        .await?
                        .with_context(|| format!("no job {id:?} in {}", out.display()))?,
                ],
                None => jobs.list(50).await?,
            };
            for r in records.iter().filter(|r| !r.publish.is_empty()) {
                println!("job {}", r.job_id);
                for (d, s) in &r.publish {
                    println!("  {}", describe(d, s).replace('\n', "\n  "));
                }
            }
            Ok(())
        }
    }
}

/// Drives the destinations of local jobs that have something to publish now; returns how
/// many jobs it tried. Fails when any destination failed or could not be reached.
pub async fn retry(
    out: &std::path::Path,
    only: Option<&str>,
    failed_too: bool,
    publishers: &Publishers,
) -> anyhow::Result<usize> {
    let jobs = FsJobs::new(out.join("jobs"));
    let store = FsStore::new(out);
    let now = unix_now();
    let records = match only {
        Some(id) => vec![
            jobs.get(id)
                .await?
                .with_context(|| format!("no job {id:?} in {}", out.display()))?,
        ],
        None => jobs.list(usize::MAX).await?,
    };
    let mut tried = 0;
    let mut problems = Vec::new();
    for record in records {
        if !wants_retry(&record, now, failed_too) {
            continue;
        }
        tried += 1;
        let story_key = storyreel::keys::story(&record.job_id);
        let (video, _, _, thumbnail) = storyreel::keys::outputs(&record.job_id);
        let destinations = destinations_of(&record);
        let target = PublishJob {
            job_id: &record.job_id,
            title: record.title.as_deref(),
            destinations: &destinations,
            video_key: &video,
            thumbnail_key: &thumbnail,
            story_key: &story_key,
        };
        match storyreel::publishing::publish_job(publishers, &store, &jobs, &target, failed_too)
            .await
        {
            Ok(states) => {
                for (d, s) in &states {
                    eprintln!("job {}: {}", record.job_id, describe(d, s));
                    if s.status == DestinationStatus::Failed {
                        problems.push(format!("{} {d}", record.job_id));
                    }
                }
            }
            Err(e) => {
                eprintln!("job {}: {}", record.job_id, e.chain());
                problems.push(record.job_id.clone());
            }
        }
    }
    if !problems.is_empty() {
        bail!("publishing failed for {}", problems.join(", "));
    }
    Ok(tried)
}

/// The destinations a job asked for, as its record keeps them (each state carries its
/// request, so a retry publishes with the same privacy and metadata).
fn destinations_of(record: &JobRecord) -> Vec<Destination> {
    record
        .publish
        .iter()
        .filter_map(|(id, s)| {
            s.destination
                .clone()
                .or_else(|| Destination::parse(id).ok())
        })
        .collect()
}
