//! Measures render-chunk's work on this machine the way Lambda runs it, for [`super::Measured`].
//!
//! A 60-second plan with the product's defaults (x264 `veryfast`, CRF 23, 300-frame chunks,
//! 1080x1920, captions and title card) over real H.264 footage. Every chunk is rendered as an
//! invocation renders it: the background is opened afresh (index read, seek to the keyframe
//! before the chunk, decode up to its first frame), the chunk is rendered by
//! [`crate::render::render_chunk`] and written to disk. Runs are pinned to one CPU with x264 at
//! one thread (Lambda at 1,769 MB is one vCPU) and to two CPUs with two threads (3,538 MB).
//! The first three 60-frame chunks of the same video are rendered too, so the per-invocation
//! overhead can be told from the per-frame cost by a straight-line fit. Reads of the footage
//! go through a counter that makes the 1 MiB ranged GETs the S3 reader would make.
//!
//! Afterwards the merge of the chunks (AAC of the narration's length, mux) and the thumbnail
//! are timed once.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use storyreel_mp4::demux::ReadAt;

use super::{Fit, Measured, Sample, ThreadRun};
use crate::background::{Background, BackgroundError, DecoderKind, VideoBackground};
use crate::cloud::s3::{READ_BLOCK, READ_CACHE_BLOCKS};
use crate::plan::{BackgroundRef, PlanError, PlanInputs, RenderOptions, RenderPlan, make_plan};
use crate::render::{RenderError, process_cpu_time};

/// Repetitions allowed.
pub const REPEAT_RANGE: std::ops::RangeInclusive<u32> = 1..=20;

/// Chunks of the short plan rendered, and its frames per chunk.
const SHORT_CHUNKS: u32 = 3;
const SHORT_CHUNK_FRAMES: u32 = 60;

/// What to measure.
#[derive(Debug, Clone)]
pub struct MeasureOptions {
    /// H.264 footage (MP4), and how to describe it in the record.
    pub background: PathBuf,
    pub background_label: String,
    /// Where in the footage the video starts.
    pub start_ms: u64,
    /// Seconds of narration of the measured video.
    pub seconds: u32,
    /// Renders of every chunk per thread count (the fastest counts).
    pub repeat: u32,
    /// Where chunk files go while measuring.
    pub scratch: PathBuf,
    /// The command line, recorded with the numbers.
    pub command: String,
}

/// Why the measurement failed.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    #[error("repeat {0} is out of range (expected {min}..={max})", min = REPEAT_RANGE.start(), max = REPEAT_RANGE.end())]
    Repeat(u32),
    #[error("seconds {0} is out of range (expected {min}..={max})", min = super::SECONDS_RANGE.start(), max = super::SECONDS_RANGE.end())]
    Seconds(u32),
    #[error(transparent)]
    Background(#[from] BackgroundError),
    #[error("plan")]
    Plan(#[from] PlanError),
    #[error("render")]
    Render(#[from] RenderError),
    #[error("merge")]
    Merge(#[from] crate::merge::MergeError),
    #[error("{what} {path}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("thumbnail: {0}")]
    Thumbnail(String),
    #[error("the measuring thread stopped")]
    Thread,
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> MeasureError {
    move |source| MeasureError::Io {
        what,
        path: path.display().to_string(),
        source,
    }
}

/// A file read as [`crate::cloud::S3Store`]'s reader reads an object: aligned 1 MiB blocks
/// through an LRU of [`READ_CACHE_BLOCKS`], large reads straight through; counts the GETs.
struct CountingReader {
    file: std::fs::File,
    len: u64,
    state: Arc<Mutex<ReadState>>,
}

#[derive(Default)]
struct ReadState {
    /// Cached block indices, most recently used last.
    cache: Vec<u64>,
    gets: u64,
}

impl ReadAt for CountingReader {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.len)
            .ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "read past the end")
            })?;
        if !buf.is_empty()
            && let Ok(mut s) = self.state.lock()
        {
            if buf.len() as u64 >= 2 * READ_BLOCK {
                s.gets += 1;
            } else {
                for index in offset / READ_BLOCK..=(end - 1) / READ_BLOCK {
                    if let Some(pos) = s.cache.iter().position(|&i| i == index) {
                        s.cache.remove(pos);
                    } else {
                        s.gets += 1;
                        if s.cache.len() >= READ_CACHE_BLOCKS {
                            s.cache.remove(0);
                        }
                    }
                    s.cache.push(index);
                }
            }
        }
        FileExt::read_exact_at(&self.file, buf, offset)
    }

    fn len(&self) -> std::io::Result<u64> {
        Ok(self.len)
    }
}

/// Opens `path` as an invocation would open the object; returns the GET counter with it.
fn open_counted(path: &Path) -> Result<(VideoBackground, Arc<Mutex<ReadState>>), MeasureError> {
    let file = std::fs::File::open(path).map_err(io_err("cannot open background", path))?;
    let len = file
        .metadata()
        .map_err(io_err("cannot read background", path))?
        .len();
    let state = Arc::new(Mutex::new(ReadState::default()));
    let reader = CountingReader {
        file,
        len,
        state: state.clone(),
    };
    let mut video = VideoBackground::open(Box::new(reader), &path.display().to_string())?;
    // A Lambda has no libavcodec: time the decoder it runs, whatever this machine has.
    video.use_decoder(DecoderKind::RustyH264);
    Ok((video, state))
}

fn gets(state: &Mutex<ReadState>) -> u64 {
    state.lock().map_or(0, |s| s.gets)
}

/// Pins the calling thread (and the threads it starts) to the first `cpus` CPUs it may use;
/// returns how many it got.
fn pin_to_cpus(cpus: usize) -> usize {
    // SAFETY: cpu_set_t is a plain bit set; the libc calls read and write the sets we own, for
    // the calling thread (pid 0).
    unsafe {
        let size = std::mem::size_of::<libc::cpu_set_t>();
        let mut allowed: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, size, &mut allowed) != 0 {
            return std::thread::available_parallelism().map_or(1, |n| n.get());
        }
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        let mut got = 0;
        for c in 0..libc::CPU_SETSIZE as usize {
            if got < cpus && libc::CPU_ISSET(c, &allowed) {
                libc::CPU_SET(c, &mut set);
                got += 1;
            }
        }
        if got == 0 || libc::sched_setaffinity(0, size, &set) != 0 {
            return std::thread::available_parallelism().map_or(1, |n| n.get());
        }
        got
    }
}

/// A narration-like text of about 160 words a minute.
fn story_text(seconds: u32) -> String {
    const SENTENCES: [&str; 6] = [
        "Every night at nine the lamp across the street turned on, although nobody lived there.",
        "I asked the landlord twice and he swore the flat had been empty since the spring.",
        "On Friday I finally crossed the road, climbed the stairs and knocked on the door.",
        "Somebody inside laughed quietly, the lamp went out, and the hallway went very cold.",
        "The next morning a note was taped to my own door, written in my own handwriting.",
        "It said that I should stop watching, because the person in the window was watching me.",
    ];
    let words = (u64::from(seconds) * 160).div_ceil(60) as usize;
    let mut out = String::new();
    let mut n = 0;
    for s in SENTENCES.iter().cycle() {
        for w in s.split_whitespace() {
            if n == words {
                return out;
            }
            if n > 0 {
                out.push(' ');
            }
            out.push_str(w);
            n += 1;
        }
    }
    out
}

/// The measured video's plan with `chunk_frames` frames a chunk.
fn plan_for(opts: &MeasureOptions, chunk_frames: u32) -> Result<RenderPlan, MeasureError> {
    let title = "The lamp in the window across the street";
    let body = story_text(opts.seconds);
    let text = format!("{title} {body}");
    let audio_ms = u64::from(opts.seconds) * 1000;
    let marks = crate::sample::even_marks(&text, audio_ms);
    Ok(make_plan(&PlanInputs {
        audio_ms,
        marks_jsonl: &marks,
        title: Some(title),
        channel: "r/storyreel",
        background: Some(BackgroundRef {
            key: opts.background.display().to_string(),
            start_ms: opts.start_ms,
        }),
        options: &RenderOptions {
            chunk_frames,
            ..RenderOptions::default()
        },
    })?)
}

/// Renders chunk `index` of `plan` as one invocation would.
fn render_one(
    opts: &MeasureOptions,
    plan: &RenderPlan,
    index: u32,
    threads: u32,
    cpus: u32,
    out: &Path,
) -> Result<Sample, MeasureError> {
    let started = Instant::now();
    let cpu0 = process_cpu_time();
    let (video, state) = open_counted(&opts.background)?;
    let open_ms = started.elapsed().as_secs_f64() * 1000.0;
    let gets_open = gets(&state);
    let mut background = Background::from_video(video, opts.start_ms);
    let captions = crate::plan::caption_renderer(plan);
    let file = std::fs::File::create(out).map_err(io_err("cannot write", out))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let stats = crate::render::render_chunk(
        plan,
        index,
        &mut background,
        &captions,
        threads,
        &mut w,
        &mut |_| {},
    )?;
    w.flush().map_err(io_err("cannot write", out))?;
    drop(w);
    Ok(Sample {
        threads,
        cpus,
        chunk_frames: plan.chunk_frames,
        index,
        frames: stats.frames,
        wall_ms: started.elapsed().as_secs_f64() * 1000.0,
        cpu_ms: process_cpu_time().saturating_sub(cpu0).as_secs_f64() * 1000.0,
        paint_cpu_ms: stats.paint_cpu.as_secs_f64() * 1000.0,
        open_ms,
        bytes: stats.bytes,
        gets_open,
        gets_render: gets(&state).saturating_sub(gets_open),
    })
}

/// Chunk file of a measured render.
fn chunk_path(scratch: &Path, threads: u32, chunk_frames: u32, index: u32) -> PathBuf {
    scratch.join(format!("t{threads}-c{chunk_frames}-{index:05}.h264"))
}

/// Renders every chunk of the video with 1 and 2 x264 threads (pinned to as many CPUs),
/// `opts.repeat` times, then times a merge and a thumbnail. `progress` gets a line per render.
pub fn measure(
    opts: &MeasureOptions,
    progress: &mut (dyn FnMut(String) + Send),
) -> Result<Measured, MeasureError> {
    if !REPEAT_RANGE.contains(&opts.repeat) {
        return Err(MeasureError::Repeat(opts.repeat));
    }
    if !super::SECONDS_RANGE.contains(&opts.seconds) {
        return Err(MeasureError::Seconds(opts.seconds));
    }
    std::fs::create_dir_all(&opts.scratch).map_err(io_err("cannot create", &opts.scratch))?;
    let load_before = load_average();
    let long = plan_for(opts, crate::plan::DEFAULT_CHUNK_FRAMES)?;
    let short = plan_for(opts, SHORT_CHUNK_FRAMES)?;
    let mut samples = Vec::new();
    for threads in [1u32, 2] {
        // A thread of its own, so pinning it (and the painter and x264 threads it starts)
        // leaves the rest of the process alone.
        let run = std::thread::scope(|s| {
            s.spawn(|| -> Result<Vec<Sample>, MeasureError> {
                let cpus = pin_to_cpus(threads as usize) as u32;
                let mut out = Vec::new();
                for r in 0..opts.repeat {
                    let jobs = long
                        .chunks()
                        .map(|c| (&long, c.index))
                        .chain((0..SHORT_CHUNKS.min(short.chunk_count())).map(|i| (&short, i)));
                    for (plan, index) in jobs {
                        let path = chunk_path(&opts.scratch, threads, plan.chunk_frames, index);
                        let sample = render_one(opts, plan, index, threads, cpus, &path)?;
                        progress(format!(
                            "x264 threads {threads} on {cpus} CPU(s), run {}/{}, chunk {index} of \
                             {}-frame chunks ({} frames): {:.2} s wall, {:.2} s CPU, {} GETs",
                            r + 1,
                            opts.repeat,
                            plan.chunk_frames,
                            sample.frames,
                            sample.wall_ms / 1000.0,
                            sample.cpu_ms / 1000.0,
                            sample.gets_open + sample.gets_render,
                        ));
                        out.push(sample);
                    }
                }
                Ok(out)
            })
            .join()
        });
        samples.extend(run.map_err(|_| MeasureError::Thread)??);
    }

    // Merge: the 2-thread chunks with a narration of the video's length.
    let paths: Vec<PathBuf> = long
        .chunks()
        .map(|c| chunk_path(&opts.scratch, 2, long.chunk_frames, c.index))
        .collect();
    let started = Instant::now();
    let rate = 24_000u32;
    let pcm = storyreel_audio::Pcm::new(
        rate,
        vec![0.0; (long.audio_ms * u64::from(rate) / 1000) as usize],
    );
    let aac = crate::merge::encode_narration(&long, &pcm)?;
    let merged = opts.scratch.join("merged.mp4");
    crate::merge::merge(&long, &paths, &aac, &merged)?;
    let merge_ms = started.elapsed().as_secs_f64() * 1000.0;
    progress(format!(
        "merge of {} frames: {:.2} s",
        long.frames,
        merge_ms / 1000.0
    ));

    // Thumbnail: open the footage, one picture with the title card, JPEG.
    let started = Instant::now();
    let (video, _) = open_counted(&opts.background)?;
    let still = crate::render::render_still(
        &long,
        crate::render::thumbnail_frame(&long),
        Background::from_video(video, opts.start_ms),
        &crate::plan::caption_renderer(&long),
    )?;
    crate::render::encode_jpeg(&still).map_err(|e| MeasureError::Thumbnail(e.to_string()))?;
    let thumbnail_ms = started.elapsed().as_secs_f64() * 1000.0;
    for p in paths.iter().chain([&merged]) {
        let _ = std::fs::remove_file(p);
    }
    for threads in [1, 2] {
        for i in 0..SHORT_CHUNKS {
            let _ = std::fs::remove_file(chunk_path(&opts.scratch, threads, SHORT_CHUNK_FRAMES, i));
        }
    }

    Ok(summarise(
        opts,
        samples,
        long.frames,
        merge_ms,
        thumbnail_ms,
        format!(
            "load average (1, 5, 15 min) before: {load_before}, after: {}; the fastest of the \
             renders of each chunk is used (other work on the machine slows single renders)",
            load_average()
        ),
    ))
}

/// Fits and averages the samples.
fn summarise(
    opts: &MeasureOptions,
    samples: Vec<Sample>,
    frames: u64,
    merge_ms: f64,
    thumbnail_ms: f64,
    note: String,
) -> Measured {
    let runs = [1u32, 2]
        .into_iter()
        .map(|threads| {
            let mine: Vec<&Sample> = samples.iter().filter(|s| s.threads == threads).collect();
            // The fastest render of each chunk: the least disturbed by other work.
            let mut best: std::collections::BTreeMap<(u32, u32), &Sample> = Default::default();
            for s in &mine {
                let e = best.entry((s.chunk_frames, s.index)).or_insert(s);
                if s.wall_ms < e.wall_ms {
                    *e = s;
                }
            }
            let points: Vec<(f64, f64)> = best
                .values()
                .map(|s| (s.frames as f64, s.wall_ms))
                .collect();
            let frames: u64 = best.values().map(|s| s.frames).sum::<u64>().max(1);
            let per =
                |f: fn(&Sample) -> f64| best.values().map(|s| f(s)).sum::<f64>() / frames as f64;
            ThreadRun {
                threads,
                cpus: mine.first().map_or(0, |s| s.cpus),
                wall: Fit::of(&points),
                cpu_ms_per_frame: per(|s| s.cpu_ms),
                paint_cpu_ms_per_frame: per(|s| s.paint_cpu_ms),
                open_ms: mine.iter().map(|s| s.open_ms).sum::<f64>() / mine.len().max(1) as f64,
                chunk_ms: best
                    .values()
                    .filter(|s| {
                        s.chunk_frames == crate::plan::DEFAULT_CHUNK_FRAMES
                            && s.frames == u64::from(s.chunk_frames)
                    })
                    .map(|s| s.wall_ms)
                    .fold(f64::INFINITY, f64::min),
            }
        })
        .collect();
    let one: Vec<&Sample> = samples.iter().filter(|s| s.threads == 1).collect();
    let one_frames = one.iter().map(|s| s.frames).sum::<u64>().max(1) as f64;
    let gets_points: Vec<(f64, f64)> = one
        .iter()
        .map(|s| (s.frames as f64, s.gets_render as f64))
        .collect();
    Measured {
        machine: machine(),
        date: today(),
        command: opts.command.clone(),
        background: opts.background_label.clone(),
        note,
        preset: "veryfast".into(),
        crf: 23.0,
        chunk_frames: crate::plan::DEFAULT_CHUNK_FRAMES,
        runs,
        bytes_per_frame: one.iter().map(|s| s.bytes as f64).sum::<f64>() / one_frames,
        gets_open: one.iter().map(|s| s.gets_open as f64).sum::<f64>() / one.len().max(1) as f64,
        gets_render: Fit::of(&gets_points),
        merge_ms_per_frame: merge_ms / frames.max(1) as f64,
        thumbnail_ms,
        samples,
    }
}

/// The machine: CPUs, model and OS.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown CPU", str::trim)
        .to_string();
    let os = std::fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|s| s.trim_matches('"').to_string())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{cores} vCPU {model}, {os}")
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Today (UTC) as YYYY-MM-DD.
pub fn today() -> String {
    let (y, m, d) = crate::jobs::utc_date(crate::jobs::unix_now());
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_story_has_160_words_a_minute() {
        assert_eq!(story_text(60).split_whitespace().count(), 160);
        assert_eq!(story_text(1).split_whitespace().count(), 3);
    }

    #[test]
    fn reads_are_counted_like_the_s3_reader() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![0u8; (12 * READ_BLOCK) as usize]).unwrap();
        let state = Arc::new(Mutex::new(ReadState::default()));
        let r = CountingReader {
            file: std::fs::File::open(&path).unwrap(),
            len: 12 * READ_BLOCK,
            state: state.clone(),
        };
        let mut small = [0u8; 16];
        r.read_exact_at(0, &mut small).unwrap();
        r.read_exact_at(100, &mut small).unwrap(); // cached
        r.read_exact_at(READ_BLOCK - 8, &mut small).unwrap(); // spans blocks 0 and 1
        assert_eq!(gets(&state), 2);
        let mut big = vec![0u8; (2 * READ_BLOCK) as usize];
        r.read_exact_at(3 * READ_BLOCK, &mut big).unwrap(); // one ranged GET
        assert_eq!(gets(&state), 3);
        for b in 2..11 {
            r.read_exact_at(b * READ_BLOCK, &mut small).unwrap();
        }
        // Blocks 0 and 1 were evicted by nine more.
        r.read_exact_at(0, &mut small).unwrap();
        assert_eq!(gets(&state), 3 + 9 + 1);
        assert!(r.read_exact_at(12 * READ_BLOCK - 4, &mut small).is_err());
    }

    #[test]
    fn dates_are_civil() {
        let d = today();
        assert_eq!(d.len(), 10);
        assert!(d.starts_with("20"), "{d}");
    }
}
