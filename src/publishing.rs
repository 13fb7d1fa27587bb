//! Publishing a finished job's video to its destinations (YouTube, TikTok), each exactly once.
//!
//! Every destination is a small state machine whose state lives on the job record
//! ([`DestinationState`], `publish.<platform:account>`), and every move is a compare-and-set on
//! its revision ([`JobStore::put_destination`]). The rule that makes it exactly-once: **nothing
//! is sent to a platform that could create a video before the way to find that video again is
//! recorded**. YouTube: the resumable session URI is recorded before the first byte; a re-run
//! (after a kill, a retry, or a second run of the whole step) asks the session what it holds,
//! and a finished session answers with the video, so it is recorded instead of uploaded again.
//! A new session is opened only when the recorded one has expired and no video id is recorded.
//! TikTok: the publish id and upload URL are recorded before the first chunk, and its status
//! endpoint tells a re-run whether the upload finished.
//!
//! Quota and rate limits defer a destination until a time (the video stays stored); a
//! revoked token fails it with the command that reconnects the account. Transient failures
//! are retried here a few times, then the step fails `Retryable` with its progress recorded.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use storyreel_publish::accounts::TokenStore;
use storyreel_publish::oauth;
use storyreel_publish::tiktok::{self, ChunkPlan, PostStatus, TikTok};
use storyreel_publish::youtube::{self, SessionState, VideoMetadata, YouTube};
use storyreel_publish::{
    AccountError, Destination, DestinationState, DestinationStatus, Endpoints, ErrorKind, Platform,
    PublishError, Secret,
};

use crate::jobs::{JobError, JobStore, unix_now};
use crate::steps::{ErrorName, StepError};
use crate::store::{BlobStore, StoreError};

const STEP: &str = "publish";

/// Destinations for stories dropped into the drop folder (`youtube:main,tiktok:main`; the
/// template's `DropPublish` parameter, or `storyreel watch --publish`).
pub const DROP_PUBLISH_ENV: &str = "STORYREEL_DROP_PUBLISH";

/// A wait shorter than this (a per-minute rate limit) is waited out inside the step instead of
/// deferring the destination.
pub const WAIT_INLINE_SECS: u64 = 60;

/// The publishing capability: connected accounts, the platforms' endpoints and HTTP client.
#[derive(Clone)]
pub struct Publishers {
    pub accounts: Arc<dyn TokenStore>,
    pub endpoints: Endpoints,
    pub http: reqwest::Client,
    /// The deployed state machine waits for deferred destinations and calls publish again
    /// (`retry_at` in the step's output). On one machine `storyreel publish retry` and
    /// `watch` do that instead, so `make` never sleeps until a quota resets.
    pub come_back: bool,
    /// Destinations of drop-folder stories.
    pub drop_publish: Vec<Destination>,
    /// Transient failures retried inside one run before the step gives up (`Retryable`).
    pub attempts: u32,
    /// First backoff after a transient failure (doubles each time).
    pub backoff: Duration,
    /// Between TikTok status polls.
    pub poll: Duration,
    /// How long to poll TikTok's processing before leaving it for a later run.
    pub poll_for: Duration,
}

impl Publishers {
    /// Publishing with these accounts and the platforms' endpoints from the environment
    /// (`STORYREEL_*_URL`); no drop-folder destinations.
    pub fn new(accounts: Arc<dyn TokenStore>, come_back: bool) -> Publishers {
        Publishers {
            accounts,
            endpoints: Endpoints::from_env(),
            // Building a client fails only when TLS cannot initialise; the plain client is
            // the same stack with default timeouts.
            http: storyreel_publish::http::client().unwrap_or_default(),
            come_back,
            drop_publish: Vec::new(),
            attempts: 6,
            backoff: Duration::from_millis(500),
            poll: Duration::from_secs(2),
            poll_for: Duration::from_secs(300),
        }
    }

    /// One machine: accounts in the user's config directory (`storyreel accounts connect`;
    /// without `STORYREEL_CONFIG_DIR`, `XDG_CONFIG_HOME` or `HOME`, an empty store whose
    /// path the "not connected" error names).
    pub fn local() -> Publishers {
        let accounts = storyreel_publish::accounts::FsTokens::from_env().unwrap_or_else(|_| {
            storyreel_publish::accounts::FsTokens::new(
                std::env::temp_dir().join("storyreel-accounts"),
            )
        });
        Publishers::new(Arc::new(accounts), false)
    }

    /// Drop-folder destinations from `STORYREEL_DROP_PUBLISH` (`youtube:main,tiktok:main`).
    pub fn with_drop_from_env(mut self) -> Result<Publishers, String> {
        if let Ok(v) = std::env::var(DROP_PUBLISH_ENV) {
            self.drop_publish =
                parse_destinations(&v).map_err(|e| format!("{DROP_PUBLISH_ENV}: {e}"))?;
        }
        Ok(self)
    }
}

/// Parses `youtube:main,tiktok:main` (commas or spaces) into destinations with the defaults.
pub fn parse_destinations(s: &str) -> Result<Vec<Destination>, String> {
    s.split([',', ' '])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| Destination::parse(p).map_err(|e| e.to_string()))
        .collect()
}

/// What a job publishes, and where its outputs are.
pub struct PublishJob<'a> {
    pub job_id: &'a str,
    pub title: Option<&'a str>,
    pub destinations: &'a [Destination],
    /// The published video (`out/<job>/video.mp4`).
    pub video_key: &'a str,
    pub thumbnail_key: &'a str,
    /// The cleaned story (title line, blank line, body): the description's source.
    pub story_key: &'a str,
}

/// Drives every destination of a job as far as it can go now, and returns their states. A
/// destination already published or failed is left as it is; one deferred to a time still
/// ahead is left deferred. Transient failures that outlast the retries fail the call as
/// `Retryable` after the other destinations had their turn (their progress is recorded).
pub async fn publish_job(
    p: &Publishers,
    store: &dyn BlobStore,
    jobs: &dyn JobStore,
    job: &PublishJob<'_>,
    retry_failed: bool,
) -> Result<BTreeMap<String, DestinationState>, StepError> {
    let mut out = BTreeMap::new();
    let mut retry: Option<StepError> = None;
    for dest in job.destinations {
        dest.validate()
            .map_err(|e| StepError::wrap(STEP, ErrorName::InvalidInput, "destination", e))?;
        match drive(p, store, jobs, job, dest, retry_failed).await {
            Ok(state) => {
                out.insert(dest.id(), state);
            }
            Err(e) if e.name == ErrorName::Retryable => {
                tracing_line(
                    job.job_id,
                    &dest.id(),
                    &format!("will retry: {}", e.chain()),
                );
                retry.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    match retry {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Records every destination of a job as pending (with what was asked) unless it already has
/// a state, before the job is marked succeeded: a run killed after that point leaves
/// destinations that `publish retry` and a resumed run find.
pub async fn register(
    jobs: &dyn JobStore,
    job_id: &str,
    destinations: &[Destination],
) -> Result<(), StepError> {
    for d in destinations {
        let state = DestinationState {
            rev: 1,
            destination: Some(d.clone()),
            updated_at: unix_now(),
            ..Default::default()
        };
        // False: a state exists already, which is the one to keep.
        jobs.put_destination(job_id, &d.id(), 0, &state)
            .await
            .map_err(|e| crate::steps::error_job(STEP, e))?;
    }
    Ok(())
}

/// The earliest time a deferred destination may be tried again (Unix seconds).
pub fn next_attempt(states: &BTreeMap<String, DestinationState>) -> Option<u64> {
    states
        .values()
        .filter(|s| s.status == DestinationStatus::Deferred)
        .filter_map(|s| s.deferred_until)
        .min()
}

fn tracing_line(job_id: &str, dest: &str, what: &str) {
    eprintln!("publish {job_id} {dest}: {what}");
}

/// Why driving a destination stopped.
enum Stop {
    /// A platform said no, or not now.
    Platform(PublishError),
    /// The account is not connected.
    Account(AccountError),
    /// Another run moved the destination on: it is that run's to drive.
    Moved,
    /// The step fails with this (job table or store trouble, retries exhausted).
    Step(StepError),
}

impl From<PublishError> for Stop {
    fn from(e: PublishError) -> Stop {
        Stop::Platform(e)
    }
}

impl From<JobError> for Stop {
    fn from(e: JobError) -> Stop {
        Stop::Step(crate::steps::error_job(STEP, e))
    }
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Stop {
        Stop::Step(crate::steps::error_store(STEP, e))
    }
}

/// The destination's state as stored, and writes that succeed only from that revision.
struct Tracker<'a> {
    jobs: &'a dyn JobStore,
    job_id: &'a str,
    dest: String,
    asked: Destination,
    state: DestinationState,
}

impl Tracker<'_> {
    async fn save(&mut self, change: impl FnOnce(&mut DestinationState)) -> Result<(), Stop> {
        let mut next = self.state.clone();
        change(&mut next);
        if next.destination.is_none() {
            next.destination = Some(self.asked.clone());
        }
        next.rev = self.state.rev + 1;
        next.updated_at = unix_now();
        if self
            .jobs
            .put_destination(self.job_id, &self.dest, self.state.rev, &next)
            .await?
        {
            self.state = next;
            Ok(())
        } else {
            Err(Stop::Moved)
        }
    }

    async fn reload(&mut self) -> Result<(), Stop> {
        let record = self.jobs.get(self.job_id).await?;
        self.state = record
            .and_then(|r| r.publish.get(&self.dest).cloned())
            .unwrap_or_default();
        Ok(())
    }
}

/// Counts transient failures in one run and sleeps between them.
struct Backoff {
    left: u32,
    delay: Duration,
}

impl Backoff {
    fn of(p: &Publishers) -> Backoff {
        Backoff {
            left: p.attempts,
            delay: p.backoff,
        }
    }

    /// After a transient failure: waits, or says the run should give up.
    async fn wait(&mut self, e: PublishError) -> Result<(), Stop> {
        if self.left == 0 {
            return Err(Stop::Step(StepError::wrap(
                STEP,
                ErrorName::Retryable,
                "platform still unavailable after retries",
                e,
            )));
        }
        self.left -= 1;
        tokio::time::sleep(self.delay).await;
        self.delay = (self.delay * 2).min(Duration::from_secs(30));
        Ok(())
    }
}

async fn drive(
    p: &Publishers,
    store: &dyn BlobStore,
    jobs: &dyn JobStore,
    job: &PublishJob<'_>,
    dest: &Destination,
    retry_failed: bool,
) -> Result<DestinationState, StepError> {
    let mut t = Tracker {
        jobs,
        job_id: job.job_id,
        dest: dest.id(),
        asked: dest.clone(),
        state: DestinationState::default(),
    };
    let step = |s: Stop| match s {
        Stop::Step(e) => e,
        _ => StepError::new(STEP, ErrorName::Fatal, "publishing stopped", None),
    };
    t.reload().await.map_err(step)?;
    let mut waited = 0;
    loop {
        let now = unix_now();
        match t.state.status {
            DestinationStatus::Published => return Ok(t.state),
            DestinationStatus::Failed if !retry_failed => return Ok(t.state),
            DestinationStatus::Deferred if t.state.deferred_until.is_some_and(|u| u > now) => {
                return Ok(t.state);
            }
            _ => {}
        }
        let result = match dest.platform {
            Platform::YouTube => drive_youtube(p, store, job, dest, &mut t).await,
            Platform::TikTok => drive_tiktok(p, store, job, dest, &mut t).await,
        };
        let stop = match result {
            Ok(()) => return Ok(t.state),
            Err(stop) => stop,
        };
        match stop {
            Stop::Moved => {
                // Another run wrote first: report what it recorded and leave it to that run.
                t.reload().await.map_err(step)?;
                return Ok(t.state);
            }
            Stop::Step(e) => return Err(e),
            Stop::Account(e) => {
                let reason = e.to_string();
                fail(&mut t, reason).await.map_err(step)?;
                return Ok(t.state);
            }
            Stop::Platform(e) => match e.kind() {
                ErrorKind::Deferred => {
                    let (reason, until) = match &e {
                        PublishError::Deferred { reason, until, .. } => (reason.clone(), *until),
                        _ => (String::new(), now + 3600),
                    };
                    if until <= now + WAIT_INLINE_SECS && waited < 3 {
                        waited += 1;
                        tokio::time::sleep(Duration::from_secs(until.saturating_sub(now).max(1)))
                            .await;
                        continue;
                    }
                    let message = format!("{reason}: {e}");
                    t.save(|s| {
                        s.status = DestinationStatus::Deferred;
                        s.deferred_until = Some(until);
                        s.reason = Some(message);
                    })
                    .await
                    .map_err(step)?;
                    return Ok(t.state);
                }
                ErrorKind::Reconnect => {
                    let reason = format!(
                        "{e}; reconnect the account with `storyreel accounts connect {} --name {}`",
                        dest.platform, dest.account
                    );
                    fail(&mut t, reason).await.map_err(step)?;
                    return Ok(t.state);
                }
                ErrorKind::Transient => {
                    return Err(StepError::wrap(
                        STEP,
                        ErrorName::Retryable,
                        format!("{} (account {})", dest.id(), dest.account),
                        e,
                    ));
                }
                ErrorKind::Rejected | ErrorKind::SessionExpired | ErrorKind::Protocol => {
                    let reason = format!("{e} (account {})", dest.account);
                    fail(&mut t, reason).await.map_err(step)?;
                    return Ok(t.state);
                }
            },
        }
    }
}

async fn fail(t: &mut Tracker<'_>, reason: String) -> Result<(), Stop> {
    t.save(|s| {
        s.status = DestinationStatus::Failed;
        s.reason = Some(reason);
        s.deferred_until = None;
    })
    .await
}

/// An access token for the destination's account (and the rotated refresh token stored, for
/// TikTok).
async fn access_token(p: &Publishers, dest: &Destination) -> Result<Secret, Stop> {
    let account = p
        .accounts
        .get(dest.platform, &dest.account)
        .await
        .map_err(Stop::Account)?
        .ok_or_else(|| {
            Stop::Account(AccountError::NotConnected {
                platform: dest.platform,
                name: dest.account.clone(),
                store: p.accounts.describe(),
            })
        })?;
    let mut account = account;
    let mut backoff = Backoff::of(p);
    // `refresh_account` folds a rotated TikTok refresh token back into the account.
    let refreshed = loop {
        match oauth::refresh_account(&p.http, &p.endpoints, &mut account).await {
            Ok(r) => break r,
            Err(e) if e.kind() == ErrorKind::Transient => backoff.wait(e).await?,
            Err(e) => return Err(e.into()),
        }
    };
    if refreshed.rotated {
        p.accounts.put(&account).await.map_err(Stop::Account)?;
    }
    Ok(refreshed.access_token)
}

/// Reads `[offset, end)` of the video.
async fn read_range(
    reader: &Arc<Box<dyn storyreel_mp4::ReadAt + Send + Sync>>,
    key: &str,
    offset: u64,
    end: u64,
) -> Result<Vec<u8>, Stop> {
    let r = reader.clone();
    let len = usize::try_from(end - offset).map_err(|_| {
        Stop::Step(StepError::new(
            STEP,
            ErrorName::Fatal,
            "chunk too large",
            None,
        ))
    })?;
    let key = key.to_string();
    let res = tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; len];
        r.read_exact_at(offset, &mut buf).map(|_| buf)
    })
    .await;
    match res {
        Ok(Ok(buf)) => Ok(buf),
        Ok(Err(e)) => Err(Stop::Step(StepError::wrap(
            STEP,
            ErrorName::Retryable,
            format!("read {key} at {offset}"),
            e,
        ))),
        Err(e) => Err(Stop::Step(StepError::fatal(
            STEP,
            "reader thread failed",
            e,
        ))),
    }
}

/// The description: the destination's own, or the story's opening; then the hashtags.
fn description(story: &str, title: Option<&str>, dest: &Destination) -> String {
    let body = match title {
        Some(t) => story
            .strip_prefix(t)
            .map(|rest| rest.trim_start())
            .unwrap_or(story),
        None => story,
    };
    let mut text = match &dest.description {
        Some(d) => d.clone(),
        None => opening(body, 280),
    };
    let mut tags = dest.hashtags.clone();
    if dest.platform == Platform::YouTube && !tags.iter().any(|t| t.eq_ignore_ascii_case("shorts"))
    {
        tags.push("Shorts".into());
    }
    if !tags.is_empty() {
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(&hashtag_line(&tags));
    }
    text
}

/// `#a #b`: hashtags without their own `#` or spaces.
fn hashtag_line(tags: &[String]) -> String {
    tags.iter()
        .map(|t| {
            format!(
                "#{}",
                t.trim_start_matches('#').replace(char::is_whitespace, "")
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The first sentences of `body`, at most about `max` characters, cut at a word.
fn opening(body: &str, max: usize) -> String {
    let body = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if body.chars().count() <= max {
        return body;
    }
    let mut out = String::new();
    for sentence in body.split_inclusive(['.', '!', '?']) {
        if out.chars().count() + sentence.chars().count() > max {
            break;
        }
        out.push_str(sentence);
    }
    if out.is_empty() {
        for word in body.split(' ') {
            if out.chars().count() + word.chars().count() + 1 > max {
                break;
            }
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(word);
        }
        out.push('…');
    }
    out.trim().to_string()
}

/// The published video's size (it must exist: publishing never starts without it).
async fn video_len(store: &dyn BlobStore, key: &str) -> Result<u64, Stop> {
    let info = store.head(key).await?.ok_or_else(|| {
        Stop::Step(StepError::invalid(
            STEP,
            format!("published video {key} is missing"),
        ))
    })?;
    Ok(info.bytes)
}

async fn story_text(store: &dyn BlobStore, key: &str) -> Result<String, Stop> {
    let bytes = store
        .get(key, crate::steps::story::MAX_STORY_BYTES * 2)
        .await?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

async fn drive_youtube(
    p: &Publishers,
    store: &dyn BlobStore,
    job: &PublishJob<'_>,
    dest: &Destination,
    t: &mut Tracker<'_>,
) -> Result<(), Stop> {
    let yt = YouTube::new(p.http.clone(), &p.endpoints);
    let mut token = access_token(p, dest).await?;
    let mut backoff = Backoff::of(p);
    let mut refreshed = false;
    let len = video_len(store, job.video_key).await?;
    while t.state.status != DestinationStatus::Published {
        let session = match &t.state.session {
            Some(s) => s.clone(),
            None if t.state.sessions >= MAX_ROUNDS => {
                return Err(PublishError::Protocol {
                    platform: Platform::YouTube,
                    what: "the upload".into(),
                    message: format!(
                        "{} upload sessions expired before one completed",
                        t.state.sessions
                    ),
                }
                .into());
            }
            None => {
                let story = story_text(store, job.story_key).await?;
                let title = job
                    .title
                    .map(str::to_string)
                    .unwrap_or_else(|| opening(&story, 90));
                let meta = VideoMetadata {
                    title: youtube::youtube_title(&title, "Story"),
                    description: youtube::youtube_description(&description(
                        story.trim(),
                        job.title,
                        dest,
                    )),
                    tags: dest.tags.clone(),
                    category_id: dest.category.clone().unwrap_or_else(|| "24".into()),
                    privacy: dest.privacy,
                    publish_at: dest.publish_at.clone(),
                    made_for_kids: dest.made_for_kids,
                    synthetic_media: dest.synthetic_media,
                    notify_subscribers: dest.notify_subscribers,
                };
                let session = loop {
                    match yt.start_session(&token, &meta, len).await {
                        Ok(s) => break s,
                        Err(e) if e.kind() == ErrorKind::Transient => backoff.wait(e).await?,
                        Err(e) if is_auth(&e) && !refreshed => {
                            refreshed = true;
                            token = access_token(p, dest).await?;
                        }
                        Err(e) => return Err(e.into()),
                    }
                };
                // Recorded before the first byte: a re-run finds the video through it.
                t.save(|s| {
                    s.status = DestinationStatus::Uploading;
                    s.session = Some(session.clone());
                    s.session_at = unix_now();
                    s.sessions += 1;
                    s.bytes_total = len;
                    s.bytes_confirmed = 0;
                    s.deferred_until = None;
                    s.reason = None;
                })
                .await?;
                session
            }
        };
        // Ask the session what it holds: after a crash, a dropped connection or a retry this
        // is the truth, not what we last sent.
        let mut state = query(&yt, &mut token, &session, len, &mut backoff, p, dest).await?;
        let reader = Arc::new(store.reader(job.video_key).await?);
        loop {
            match state {
                SessionState::Complete { video_id } => {
                    let url = format!("https://www.youtube.com/watch?v={video_id}");
                    t.save(|s| {
                        s.status = DestinationStatus::Published;
                        s.bytes_confirmed = len;
                        s.video_id = Some(video_id);
                        s.url = Some(url);
                        s.deferred_until = None;
                        s.reason = None;
                    })
                    .await?;
                    break;
                }
                SessionState::Expired => {
                    // Only here does a second session start: the recorded one is gone and
                    // it never reported a video.
                    t.save(|s| {
                        s.status = DestinationStatus::Pending;
                        s.session = None;
                        s.bytes_confirmed = 0;
                    })
                    .await?;
                    break;
                }
                SessionState::Incomplete { confirmed } => {
                    if confirmed != t.state.bytes_confirmed {
                        t.save(|s| s.bytes_confirmed = confirmed).await?;
                    }
                    let end = (confirmed + youtube::DEFAULT_CHUNK).min(len);
                    let data = read_range(&reader, job.video_key, confirmed, end).await?;
                    state = match yt.put_chunk(&token, &session, confirmed, data, len).await {
                        Ok(s) => s,
                        Err(e) if e.kind() == ErrorKind::Transient => {
                            backoff.wait(e).await?;
                            query(&yt, &mut token, &session, len, &mut backoff, p, dest).await?
                        }
                        Err(e) if is_auth(&e) && !refreshed => {
                            refreshed = true;
                            token = access_token(p, dest).await?;
                            query(&yt, &mut token, &session, len, &mut backoff, p, dest).await?
                        }
                        Err(e) => return Err(e.into()),
                    };
                }
            }
        }
    }
    if !t.state.thumbnail_done {
        let video_id = t.state.video_id.clone().unwrap_or_default();
        let warning = match store.get(job.thumbnail_key, 2 * 1024 * 1024).await {
            Err(e) => Some(format!("thumbnail not set: {e}")),
            Ok(jpeg) => loop {
                match yt.set_thumbnail(&token, &video_id, jpeg.clone()).await {
                    Ok(()) => break None,
                    Err(e) if e.kind() == ErrorKind::Transient && backoff.left > 0 => {
                        backoff.wait(e).await?
                    }
                    // A channel that may not set custom thumbnails (403), or anything else: the
                    // video is published, the thumbnail is a warning.
                    Err(e) => break Some(format!("thumbnail not set: {e}")),
                }
            },
        };
        t.save(|s| {
            s.thumbnail_done = true;
            s.warnings.extend(warning);
        })
        .await?;
    }
    Ok(())
}

fn is_auth(e: &PublishError) -> bool {
    matches!(e, PublishError::Rejected { status: 401, .. })
}

async fn query(
    yt: &YouTube,
    token: &mut Secret,
    session: &str,
    len: u64,
    backoff: &mut Backoff,
    p: &Publishers,
    dest: &Destination,
) -> Result<SessionState, Stop> {
    let mut refreshed = false;
    loop {
        match yt.query(token, session, len).await {
            Ok(s) => return Ok(s),
            Err(e) if e.kind() == ErrorKind::Transient => backoff.wait(e).await?,
            Err(e) if is_auth(&e) && !refreshed => {
                refreshed = true;
                *token = access_token(p, dest).await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Upload sessions (or TikTok upload rounds) one destination may go through before the
/// platform's answers are taken as broken rather than unlucky.
const MAX_ROUNDS: u32 = 5;

/// TikTok upload URLs are valid for an hour after init.
const TIKTOK_URL_SECS: u64 = 3600;

async fn drive_tiktok(
    p: &Publishers,
    store: &dyn BlobStore,
    job: &PublishJob<'_>,
    dest: &Destination,
    t: &mut Tracker<'_>,
) -> Result<(), Stop> {
    let tt = TikTok::new(p.http.clone(), &p.endpoints);
    let token = access_token(p, dest).await?;
    let mut backoff = Backoff::of(p);
    let len = video_len(store, job.video_key).await?;
    let plan = ChunkPlan::new(len)?;
    let mut rounds = 0;
    loop {
        // A recorded post: ask TikTok where it is before sending anything.
        if let Some(publish_id) = t.state.publish_id.clone() {
            let status = loop {
                match tt.status(&token, &publish_id).await {
                    Ok(s) => break s,
                    Err(e) if e.kind() == ErrorKind::Transient => backoff.wait(e).await?,
                    Err(e) => return Err(e.into()),
                }
            };
            match status {
                PostStatus::Complete { post_ids } => {
                    let id = post_ids.first().cloned().unwrap_or(publish_id);
                    t.save(|s| {
                        s.status = DestinationStatus::Published;
                        s.bytes_confirmed = len;
                        s.video_id = Some(id);
                        s.deferred_until = None;
                        s.reason = None;
                    })
                    .await?;
                    return Ok(());
                }
                PostStatus::Failed { reason } => {
                    return Err(PublishError::Rejected {
                        platform: Platform::TikTok,
                        what: "the post".into(),
                        status: 200,
                        reason,
                        message: format!("publish id {publish_id} failed"),
                    }
                    .into());
                }
                PostStatus::Processing => {
                    if t.state.status != DestinationStatus::Processing {
                        t.save(|s| {
                            s.status = DestinationStatus::Processing;
                            s.bytes_confirmed = len;
                        })
                        .await?;
                    }
                    return poll_tiktok(p, &tt, &token, &publish_id, len, t).await;
                }
                PostStatus::Uploading { uploaded_bytes } => {
                    rounds += 1;
                    if rounds > MAX_ROUNDS {
                        return Err(PublishError::Protocol {
                            platform: Platform::TikTok,
                            what: "the upload".into(),
                            message: format!(
                                "publish id {publish_id} still waits for bytes after {MAX_ROUNDS} uploads"
                            ),
                        }
                        .into());
                    }
                    let from = uploaded_bytes.unwrap_or(t.state.bytes_confirmed);
                    if from >= len {
                        // Every byte is there; TikTok has yet to say so.
                        return poll_tiktok(p, &tt, &token, &publish_id, len, t).await;
                    }
                    let fresh = unix_now() < t.state.session_at + TIKTOK_URL_SECS;
                    let url = t.state.session.clone().filter(|_| fresh);
                    if let Some(url) = url {
                        match upload_chunks(&tt, store, job, &plan, &url, from, t).await {
                            Ok(()) => continue,
                            Err(Stop::Platform(e)) if e.kind() == ErrorKind::SessionExpired => {}
                            Err(Stop::Platform(e)) if e.kind() == ErrorKind::Transient => {
                                backoff.wait(e).await?;
                                continue;
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    // The upload URL expired before the upload finished, so this post can
                    // never complete: a new init is the only way on (no second post exists).
                    t.save(|s| {
                        s.status = DestinationStatus::Pending;
                        s.publish_id = None;
                        s.session = None;
                        s.bytes_confirmed = 0;
                    })
                    .await?;
                    continue;
                }
            }
        }
        let init = loop {
            let attempt = if dest.direct {
                let creator = tt.creator_info(&token).await;
                match creator {
                    Ok(c) => {
                        let privacy =
                            tiktok::tiktok_privacy(dest.privacy, &c.privacy_level_options)?;
                        let story = story_text(store, job.story_key).await?;
                        let title = job
                            .title
                            .map(str::to_string)
                            .unwrap_or_else(|| opening(&story, 90));
                        let mut caption = title;
                        if !dest.hashtags.is_empty() {
                            caption.push(' ');
                            caption.push_str(&hashtag_line(&dest.hashtags));
                        }
                        let post = tiktok::PostInfo {
                            title: caption.chars().take(2000).collect(),
                            privacy_level: privacy,
                            disable_comment: c.comment_disabled,
                            disable_duet: c.duet_disabled,
                            disable_stitch: c.stitch_disabled,
                            is_aigc: dest.synthetic_media,
                        };
                        tt.init_direct(&token, &post, &plan).await
                    }
                    Err(e) => Err(e),
                }
            } else {
                tt.init_inbox(&token, &plan).await
            };
            match attempt {
                Ok(i) => break i,
                Err(e) if e.kind() == ErrorKind::Transient => backoff.wait(e).await?,
                Err(e) => return Err(e.into()),
            }
        };
        // Recorded before the first chunk: a re-run asks TikTok about this post.
        t.save(|s| {
            s.status = DestinationStatus::Uploading;
            s.publish_id = Some(init.publish_id.clone());
            s.session = Some(init.upload_url.clone());
            s.session_at = unix_now();
            s.sessions += 1;
            s.bytes_total = len;
            s.bytes_confirmed = 0;
            s.deferred_until = None;
            s.reason = None;
        })
        .await?;
    }
}

/// Sends the chunks from byte `from` (a chunk boundary), recording each one.
async fn upload_chunks(
    tt: &TikTok,
    store: &dyn BlobStore,
    job: &PublishJob<'_>,
    plan: &ChunkPlan,
    url: &str,
    from: u64,
    t: &mut Tracker<'_>,
) -> Result<(), Stop> {
    let reader = Arc::new(store.reader(job.video_key).await?);
    for index in 0..plan.total_chunk_count {
        let (first, end) = plan.range(index);
        if end <= from {
            continue;
        }
        let data = read_range(&reader, job.video_key, first, end).await?;
        tt.put_chunk(url, first, data, plan.video_size).await?;
        let last = index + 1 == plan.total_chunk_count;
        t.save(|s| {
            s.bytes_confirmed = end;
            if last {
                s.status = DestinationStatus::Processing;
            }
        })
        .await?;
    }
    Ok(())
}

/// Polls TikTok until the post is done (or failed), or leaves it processing for a later run.
async fn poll_tiktok(
    p: &Publishers,
    tt: &TikTok,
    token: &Secret,
    publish_id: &str,
    len: u64,
    t: &mut Tracker<'_>,
) -> Result<(), Stop> {
    let started = std::time::Instant::now();
    let mut backoff = Backoff::of(p);
    loop {
        tokio::time::sleep(p.poll).await;
        match tt.status(token, publish_id).await {
            Ok(PostStatus::Complete { post_ids }) => {
                let id = post_ids
                    .first()
                    .cloned()
                    .unwrap_or_else(|| publish_id.to_string());
                return t
                    .save(|s| {
                        s.status = DestinationStatus::Published;
                        s.bytes_confirmed = len;
                        s.video_id = Some(id);
                    })
                    .await;
            }
            Ok(PostStatus::Failed { reason }) => {
                return Err(PublishError::Rejected {
                    platform: Platform::TikTok,
                    what: "the post".into(),
                    status: 200,
                    reason,
                    message: format!("publish id {publish_id} failed"),
                }
                .into());
            }
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Transient => backoff.wait(e).await?,
            Err(e) => return Err(e.into()),
        }
        if started.elapsed() > p.poll_for {
            return Err(Stop::Step(StepError::new(
                STEP,
                ErrorName::Retryable,
                format!("TikTok is still processing publish id {publish_id}"),
                None,
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_open_the_story_and_end_with_hashtags() {
        let mut d = Destination::parse("youtube:main").unwrap();
        d.hashtags = vec!["reddit".into(), "#story".into()];
        let story = "My Title\n\nI found a door. It was locked! Then it opened.";
        assert_eq!(
            description(story, Some("My Title"), &d),
            "I found a door. It was locked! Then it opened.\n\n#reddit #story #Shorts"
        );
        let long = "word ".repeat(200);
        let text = opening(&long, 50);
        assert!(text.chars().count() <= 51 && text.ends_with('…'), "{text}");
        let t = Destination::parse("tiktok:main").unwrap();
        assert_eq!(description("Body.", None, &t), "Body.");
        assert_eq!(
            parse_destinations("youtube:main, tiktok:b").unwrap().len(),
            2
        );
        assert!(parse_destinations("youtube").is_err());
    }
}
