//! The render path on one machine: plan, render chunks on a bounded pool of threads, merge,
//! and write the sidecars (SRT, WebVTT, thumbnail).
//!
//! This is the same sequence the cloud runs as `render-chunk` Lambdas in a Map state followed
//! by `merge`; here the chunks are threads and the store is the local disk.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::background::{Background, BackgroundError, VideoBackground};
use crate::merge::{MergeError, encode_narration, merge};
use crate::plan::{BackgroundRef, PlanError, PlanInputs, RenderOptions, RenderPlan, make_plan};
use std::time::Duration;

use crate::render::{
    ChunkStats, RenderError, encode_jpeg, process_cpu_time, render_chunk, render_still,
    thumbnail_frame,
};

/// A render request from the CLI.
#[derive(Debug, Clone)]
pub struct RenderRequest {
    pub audio: PathBuf,
    pub marks: PathBuf,
    pub background: Option<PathBuf>,
    pub title: Option<String>,
    pub channel: String,
    /// Offset into the background in ms; `None` picks one at random.
    pub start_ms: Option<u64>,
    pub options: RenderOptions,
    /// Chunks rendered at once.
    pub jobs: usize,
    pub out: PathBuf,
}

/// Everything that can go wrong in a local render, each naming its input.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("audio {path}")]
    Audio {
        path: String,
        #[source]
        source: storyreel_audio::AudioError,
    },
    #[error("{path}")]
    Plan {
        path: String,
        #[source]
        source: PlanError,
    },
    #[error(transparent)]
    Background(#[from] BackgroundError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Merge(#[from] MergeError),
    #[error("cannot write {path}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("thumbnail: {0}")]
    Thumbnail(String),
}

/// Progress events, for a progress bar.
#[derive(Debug, Clone, Copy)]
pub enum Progress {
    Planned { frames: u64, chunks: u32 },
    Frames { done: u64 },
    Merging,
}

/// Where a render's CPU time went.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuSplit {
    /// x264: the chunk phase's process CPU time minus the painting threads'.
    pub x264: Duration,
    /// Painting threads: background decode and scaling, caption rendering and blending.
    pub paint: Duration,
    /// Everything else: reading inputs, planning, audio, merge, sidecars.
    pub other: Duration,
}

impl CpuSplit {
    /// Everything that is not x264.
    pub fn non_x264(&self) -> Duration {
        self.paint + self.other
    }
}

/// What a render produced and what it cost.
#[derive(Debug, Clone)]
pub struct RenderReport {
    pub plan: RenderPlan,
    pub video: PathBuf,
    pub srt: PathBuf,
    pub vtt: PathBuf,
    pub thumbnail: PathBuf,
    /// Sum over chunks.
    pub chunk_stats: ChunkStats,
    pub cpu: CpuSplit,
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), PipelineError> {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| PipelineError::Write {
            path: path.display().to_string(),
            source: e,
        })
}

fn open_background(plan: &RenderPlan) -> Result<Background, BackgroundError> {
    match &plan.background {
        None => Ok(Background::generated()),
        Some(b) => Background::open_file(Path::new(&b.key), b.start_ms),
    }
}

/// A start offset that avoids looping when the footage is long enough.
pub fn random_start_ms(background_ms: u64, video_ms: u64, seed: u64) -> u64 {
    let room = background_ms.saturating_sub(video_ms);
    if room == 0 {
        return 0;
    }
    // splitmix64: a good spread from a clock-derived seed.
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) % room
}

/// Renders a whole video on this machine.
pub fn render_video(
    req: &RenderRequest,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<RenderReport, PipelineError> {
    let cpu_start = process_cpu_time();
    let audio_path = req.audio.display().to_string();
    let pcm = storyreel_audio::decode_file(&req.audio).map_err(|e| PipelineError::Audio {
        path: audio_path.clone(),
        source: e,
    })?;
    let marks = std::fs::read_to_string(&req.marks).map_err(|e| PipelineError::Read {
        path: req.marks.display().to_string(),
        source: e,
    })?;
    let audio_ms =
        (pcm.samples.len() as u128 * 1000).div_ceil(u128::from(pcm.sample_rate.max(1))) as u64;
    let background = match &req.background {
        None => None,
        Some(path) => {
            let video = VideoBackground::open_file(path)?;
            let start_ms = match req.start_ms {
                Some(s) => s % video.duration_ms().max(1),
                None => {
                    let seed = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos() as u64);
                    random_start_ms(video.duration_ms(), audio_ms + crate::plan::TAIL_MS, seed)
                }
            };
            Some(BackgroundRef {
                key: path.display().to_string(),
                start_ms,
            })
        }
    };
    let plan = make_plan(&PlanInputs {
        audio_ms,
        marks_jsonl: &marks,
        title: req.title.as_deref(),
        channel: &req.channel,
        background,
        options: &req.options,
    })
    .map_err(|e| match e {
        PlanError::EmptyAudio | PlanError::AudioTooLong(_) => PipelineError::Plan {
            path: audio_path.clone(),
            source: e,
        },
        other => PipelineError::Plan {
            path: req.marks.display().to_string(),
            source: other,
        },
    })?;
    progress(Progress::Planned {
        frames: plan.frames,
        chunks: plan.chunk_count(),
    });

    let work = req.out.with_extension("chunks");
    std::fs::create_dir_all(&work).map_err(|e| PipelineError::Write {
        path: work.display().to_string(),
        source: e,
    })?;
    let chunk_paths: Vec<PathBuf> = plan
        .chunks()
        .map(|c| work.join(format!("chunk-{:05}.h264", c.index)))
        .collect();
    let chunk_cpu_start = process_cpu_time();
    let rendered = render_chunks(&plan, &chunk_paths, req.jobs.max(1), progress);
    let chunk_cpu = process_cpu_time().saturating_sub(chunk_cpu_start);
    let rendered = rendered.and_then(|stats| {
        progress(Progress::Merging);
        let aac = encode_narration(&plan, &pcm)?;
        merge(&plan, &chunk_paths, &aac, &req.out)?;
        Ok(stats)
    });
    // Chunks are intermediate: whether the render finished or failed, none is left behind.
    let _ = std::fs::remove_dir_all(&work);
    let stats = rendered?;

    let srt = req.out.with_extension("srt");
    let vtt = req.out.with_extension("vtt");
    let thumbnail = req.out.with_extension("jpg");
    write(
        &srt,
        storyreel_captions::subtitles::to_srt(&plan.pages).as_bytes(),
    )?;
    write(
        &vtt,
        storyreel_captions::subtitles::to_vtt(&plan.pages).as_bytes(),
    )?;
    let captions = crate::plan::caption_renderer(&plan);
    let still = render_still(
        &plan,
        thumbnail_frame(&plan),
        open_background(&plan)?,
        &captions,
    )?;
    let jpeg = encode_jpeg(&still).map_err(|e| PipelineError::Thumbnail(e.to_string()))?;
    write(&thumbnail, &jpeg)?;

    Ok(RenderReport {
        plan,
        video: req.out.clone(),
        srt,
        vtt,
        thumbnail,
        chunk_stats: stats,
        cpu: CpuSplit {
            x264: chunk_cpu.saturating_sub(stats.paint_cpu),
            paint: stats.paint_cpu,
            other: process_cpu_time()
                .saturating_sub(cpu_start)
                .saturating_sub(chunk_cpu),
        },
    })
}

/// Chunks rendered at once by default: one per two cores, as each chunk keeps about two
/// cores busy (painting beside x264) and every chunk in flight holds an encoder's memory.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get() / 2)
        .max(1)
}

/// Renders every chunk of `plan` into `paths` with `jobs` worker threads.
pub fn render_chunks(
    plan: &RenderPlan,
    paths: &[PathBuf],
    jobs: usize,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<ChunkStats, PipelineError> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = jobs.min(plan.chunk_count() as usize).max(1);
    // The cores are shared out between the chunks in flight, at x264's own rule of 1.5
    // threads per core (frame threads wait on each other; the painting thread takes a share).
    let threads = ((3 * cores) / (2 * jobs)).max(1) as u32;
    let next = AtomicU32::new(0);
    let total = Mutex::new(ChunkStats::default());
    let first_error: Mutex<Option<PipelineError>> = Mutex::new(None);
    let shared = Shared {
        plan,
        captions: crate::plan::caption_renderer(plan),
        threads,
        done: AtomicU64::new(0),
        progress,
    };
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                // One background per worker: its decoder carries on from one chunk into the
                // next without seeking back to a keyframe.
                let mut background: Option<Background> = None;
                loop {
                    if first_error.lock().map(|e| e.is_some()).unwrap_or(true) {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= plan.chunk_count() {
                        return;
                    }
                    match render_one(&shared, i, &mut background, &paths[i as usize]) {
                        Ok(st) => {
                            if let Ok(mut t) = total.lock() {
                                t.frames += st.frames;
                                t.bytes += st.bytes;
                                t.paint_cpu += st.paint_cpu;
                            }
                        }
                        Err(e) => {
                            if let Ok(mut slot) = first_error.lock() {
                                slot.get_or_insert(e);
                            }
                            return;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().ok().flatten() {
        return Err(e);
    }
    Ok(total.into_inner().unwrap_or_default())
}

/// What every chunk worker of one render shares.
struct Shared<'a> {
    plan: &'a RenderPlan,
    captions: storyreel_captions::render::CaptionRenderer,
    /// x264 threads per chunk.
    threads: u32,
    /// Frames done over all chunks, for progress.
    done: AtomicU64,
    progress: &'a (dyn Fn(Progress) + Sync),
}

fn render_one(
    shared: &Shared<'_>,
    index: u32,
    background: &mut Option<Background>,
    path: &Path,
) -> Result<ChunkStats, PipelineError> {
    let Shared {
        plan,
        captions,
        threads,
        done,
        progress,
    } = shared;
    let tmp = path.with_extension("partial");
    let werr = |e: std::io::Error| PipelineError::Write {
        path: tmp.display().to_string(),
        source: e,
    };
    let file = std::fs::File::create(&tmp).map_err(werr)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut last = 0u64;
    let mut tick = |n: u64| {
        let d = done.fetch_add(n - last, Ordering::Relaxed) + (n - last);
        last = n;
        progress(Progress::Frames { done: d });
    };
    let background = match background {
        Some(b) => b,
        None => background.insert(open_background(plan)?),
    };
    let stats = render_chunk(
        plan, index, background, captions, *threads, &mut w, &mut tick,
    )?;
    drop(w);
    std::fs::rename(&tmp, path).map_err(werr)?;
    Ok(stats)
}
