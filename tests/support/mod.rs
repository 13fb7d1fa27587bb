//! Shared helpers: run the `storyreel` CLI and the independent judges (ffmpeg, ffprobe), and
//! generate tiny fixtures (narration, speech marks, background clips) into a temporary
//! directory at test time, so no binary file is ever committed.

pub mod runtime_api;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use storyreel_audio::Pcm;

/// Output frame rate of every storyreel video.
pub const FPS: u64 = 30;

/// Output size of a full render and of a `--draft` render.
pub const FULL: (u64, u64) = (1080, 1920);
pub const DRAFT: (u64, u64) = (540, 960);

/// A fresh scratch directory, removed when dropped.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("storyreel-test-")
        .tempdir()
        .expect("create a temporary directory")
}

/// Finds the external tool `name` on PATH, or fails the test saying what to install.
pub fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed (not found on PATH): the integration tests use \
                 ffmpeg/ffprobe as the independent judge of storyreel's output and espeak-ng to \
                 make narration; install them (Debian: apt-get install ffmpeg espeak-ng)"
            )
        })
}

/// Runs `cmd`, failing the test with its stderr unless it succeeds.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `ffmpeg` that only speaks up on errors and overwrites its output.
pub fn ffmpeg() -> Command {
    let mut c = Command::new(tool("ffmpeg"));
    c.args(["-hide_banner", "-nostdin", "-y", "-v", "error"]);
    c
}

/// `ffprobe <args> <path>` as JSON.
pub fn ffprobe(path: &Path, args: &[&str]) -> Value {
    let out = run(Command::new(tool("ffprobe"))
        .args(["-v", "error", "-of", "json"])
        .args(args)
        .arg(path));
    serde_json::from_slice(&out.stdout).expect("ffprobe prints JSON")
}

/// The streams of `path` (with `nb_read_frames`: every frame decoded and counted).
pub fn streams(path: &Path) -> Vec<Value> {
    let v = ffprobe(path, &["-count_frames", "-show_streams"]);
    v["streams"].as_array().cloned().unwrap_or_default()
}

/// A number that ffprobe prints either as a JSON number or as a string.
pub fn num(v: &Value, key: &str) -> f64 {
    match &v[key] {
        Value::Number(n) => n.as_f64().expect("finite number"),
        Value::String(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("{key} = {s:?} is not a number in {v}")),
        other => panic!("{key} missing ({other}) in {v}"),
    }
}

/// A string field of an ffprobe object.
pub fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

/// The only stream of `kind` ("video" or "audio") in `streams`.
pub fn only_stream<'a>(streams: &'a [Value], kind: &str) -> &'a Value {
    let of_kind: Vec<&Value> = streams.iter().filter(|s| s["codec_type"] == kind).collect();
    assert_eq!(
        of_kind.len(),
        1,
        "expected exactly one {kind} stream in {streams:#?}"
    );
    of_kind[0]
}

/// Frames of a video for `audio_ms` of narration: the narration plus a 500 ms tail, rounded up.
pub fn expected_frames(audio_ms: u64) -> u64 {
    ((audio_ms + 500) * FPS).div_ceil(1000)
}

/// Length of an audio file in whole ms (rounded up), measured by ffprobe.
pub fn audio_ms(path: &Path) -> u64 {
    let (samples, rate) = audio_samples(path);
    (samples * 1000).div_ceil(rate)
}

/// (sample count, sample rate) of the first audio stream of a PCM file, from ffprobe.
pub fn audio_samples(path: &Path) -> (u64, u64) {
    let v = ffprobe(path, &["-show_streams", "-select_streams", "a:0"]);
    let s = &v["streams"][0];
    (num(s, "duration_ts") as u64, num(s, "sample_rate") as u64)
}

/// Writes `contents` to `dir/name`.
pub fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, contents).expect("write fixture");
    p
}

/// Narration of `text` spoken by espeak-ng, as a WAV file.
pub fn espeak(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    run(Command::new(tool("espeak-ng")).arg("-w").arg(&p).arg(text));
    p
}

/// A 48 kHz WAV of silence with a click at each time in `clicks_ms`.
pub fn click_wav(dir: &Path, name: &str, duration_ms: f64, clicks_ms: &[f64]) -> PathBuf {
    let p = dir.join(name);
    let pcm = storyreel_audio::click_track(48_000, duration_ms, clicks_ms);
    storyreel_audio::write_wav(&p, &pcm).expect("write click track");
    p
}

/// Polly speech marks (JSON lines) for `words` at their times, as if they were the words of a
/// story separated by single spaces; a sentence mark opens the story.
pub fn marks_jsonl(words: &[(&str, u64)]) -> String {
    let story_len: usize = words.iter().map(|(w, _)| w.len() + 1).sum();
    let first = words.first().map_or(0, |w| w.1);
    let mut s = format!(
        "{{\"time\":{first},\"type\":\"sentence\",\"start\":0,\"end\":{},\"value\":\"{}\"}}\n",
        story_len.saturating_sub(1),
        words.iter().map(|w| w.0).collect::<Vec<_>>().join(" ")
    );
    let mut pos = 0;
    for (w, t) in words {
        s.push_str(&format!(
            "{{\"time\":{t},\"type\":\"word\",\"start\":{pos},\"end\":{},\"value\":\"{w}\"}}\n",
            pos + w.len()
        ));
        pos += w.len() + 1;
    }
    s
}

/// The words of `text` spread evenly over `[from_ms, to_ms)`.
pub fn spread_words(text: &str, from_ms: u64, to_ms: u64) -> Vec<(&str, u64)> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let n = words.len() as u64;
    words
        .into_iter()
        .enumerate()
        .map(|(i, w)| (w, from_ms + (to_ms - from_ms) * i as u64 / n))
        .collect()
}

/// One `storyreel render` invocation.
pub struct Job {
    pub audio: PathBuf,
    pub marks: PathBuf,
    pub out: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl Job {
    pub fn new(audio: &Path, marks: &Path, out: &Path) -> Self {
        Job {
            audio: audio.to_path_buf(),
            marks: marks.to_path_buf(),
            out: out.to_path_buf(),
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// Sets an environment variable for the render.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Adds CLI arguments.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Uses `path` as the background footage.
    pub fn background(mut self, path: &Path) -> Self {
        self.args.push("--background".into());
        self.args.push(path.to_str().expect("utf-8 path").into());
        self
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_storyreel"));
        c.arg("render")
            .arg("--audio")
            .arg(&self.audio)
            .arg("--marks")
            .arg(&self.marks)
            .arg("--out")
            .arg(&self.out)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    /// Runs the render, whatever its outcome.
    pub fn run(&self) -> Output {
        let mut c = self.command();
        c.output()
            .unwrap_or_else(|e| panic!("cannot run {c:?}: {e}"))
    }

    /// Runs the render and fails the test unless it succeeds and writes the video.
    pub fn run_ok(&self) -> &Path {
        run(&mut self.command());
        assert!(self.out.is_file(), "{} was not written", self.out.display());
        &self.out
    }
}

/// Everything ffmpeg reports at level `error` while decoding every stream of `path`.
pub fn decode_errors(path: &Path) -> String {
    let out = ffmpeg()
        .arg("-i")
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("run ffmpeg");
    let mut s = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        s.push_str(&format!("\n(ffmpeg exited with {})", out.status));
    }
    s
}

/// MD5 of every decoded video frame of `path`, in presentation order.
pub fn frame_md5s(path: &Path) -> Vec<String> {
    filtered_frame_md5s(path, "null")
}

/// ffmpeg's output for every video frame of `path` (none dropped or duplicated), after the
/// filter chain `vf`, with `output` options (format etc.) written to stdout.
fn decode_frames(path: &Path, vf: &str, output: &[&str]) -> Output {
    run(ffmpeg()
        .arg("-i")
        .arg(path)
        .args(["-map", "0:v:0", "-vsync", "passthrough", "-vf", vf])
        .args(output)
        .arg("-"))
}

/// MD5 of every video frame of `path` after the filter chain `vf`, in presentation order.
pub fn filtered_frame_md5s(path: &Path, vf: &str) -> Vec<String> {
    let out = decode_frames(path, vf, &["-f", "framemd5"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.rsplit(',').next().unwrap_or_default().trim().to_string())
        .collect()
}

/// Every video frame of `path`, in presentation order, after the filter chain `vf`, as raw
/// pixels of `bytes_per_frame` bytes each (no frame dropped or duplicated).
pub fn raw_frames(path: &Path, vf: &str, pix_fmt: &str, bytes_per_frame: usize) -> Vec<Vec<u8>> {
    let out = decode_frames(path, vf, &["-pix_fmt", pix_fmt, "-f", "rawvideo"]);
    assert_eq!(
        out.stdout.len() % bytes_per_frame,
        0,
        "raw output is not whole frames"
    );
    out.stdout
        .chunks_exact(bytes_per_frame)
        .map(<[u8]>::to_vec)
        .collect()
}

/// Presentation time in seconds of every decoded video frame, as ffprobe reports it.
pub fn video_frame_times(path: &Path) -> Vec<f64> {
    let v = ffprobe(
        path,
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=best_effort_timestamp_time",
        ],
    );
    v["frames"]
        .as_array()
        .expect("frames")
        .iter()
        .map(|f| num(f, "best_effort_timestamp_time"))
        .collect()
}

/// The audio of `path` as ffmpeg decodes it (edit list applied): mono, 48 kHz.
pub fn decode_audio(path: &Path) -> Pcm {
    let out = run(ffmpeg().arg("-i").arg(path).args([
        "-map", "0:a:0", "-ac", "1", "-ar", "48000", "-f", "f32le", "-",
    ]));
    let samples = out
        .stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Pcm {
        sample_rate: 48_000,
        samples,
    }
}

/// Top-level boxes of an MP4 file: (type, offset, size).
pub fn top_level_boxes(path: &Path) -> Vec<(String, u64, u64)> {
    let bytes = std::fs::read(path).expect("read mp4");
    let mut boxes = Vec::new();
    let mut at = 0usize;
    while at + 8 <= bytes.len() {
        let size32 = u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let kind = String::from_utf8_lossy(&bytes[at + 4..at + 8]).into_owned();
        let size = match size32 {
            0 => (bytes.len() - at) as u64,
            1 => {
                assert!(at + 16 <= bytes.len(), "truncated largesize of `{kind}`");
                u64::from_be_bytes(bytes[at + 8..at + 16].try_into().expect("8 bytes"))
            }
            n => u64::from(n),
        };
        assert!(size >= 8, "box `{kind}` at {at} has size {size}");
        boxes.push((kind, at as u64, size));
        at += size as usize;
    }
    assert_eq!(
        at,
        bytes.len(),
        "top-level boxes do not tile the file: {boxes:?}"
    );
    boxes
}

/// Peak signal-to-noise ratio in dB between two 8-bit planes (infinite when equal).
pub fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let se: u64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = i64::from(x) - i64::from(y);
            (d * d) as u64
        })
        .sum();
    if se == 0 {
        return f64::INFINITY;
    }
    let mse = se as f64 / a.len() as f64;
    10.0 * (255.0 * 255.0 / mse).log10()
}

/// A background clip: `testsrc2` (a moving pattern) at `w`x`h` and `fps`, lasting `secs`, with
/// its frame counter and timecode enlarged into the top centre, where the part of the picture
/// that storyreel keeps (the centred 9:16 crop) shows them above any caption. Encoded with
/// x264 with B-frames (High profile), a keyframe every two seconds.
pub fn counter_video(dir: &Path, name: &str, (w, h): (u32, u32), fps: u32, secs: f64) -> PathBuf {
    let crop_w = w.min(h * 9 / 16);
    let crop_h = h.min(w * 16 / 9);
    let (cw, ch) = ((crop_w - 16) & !1, (crop_h * 85 / 1000) & !1);
    let graph = format!(
        "testsrc2=size={w}x{h}:rate={fps},split[a][b];\
         [b]crop=100:36:1:1,scale={cw}:{ch}:flags=neighbor[c];\
         [a][c]overlay=(W-w)/2:0,format=yuv420p"
    );
    let p = dir.join(name);
    run(ffmpeg()
        .args(["-f", "lavfi", "-i", &graph, "-t", &secs.to_string()])
        .args(["-c:v", "libx264", "-preset", "veryfast", "-crf", "12"])
        .args(["-bf", "3", "-g", &(2 * fps).to_string()])
        .arg(&p));
    p
}

/// A plain `testsrc2` clip encoded with `codec_args` (e.g. `["-c:v", "libx265"]`).
pub fn testsrc_video(
    dir: &Path,
    name: &str,
    (w, h): (u32, u32),
    fps: u32,
    secs: f64,
    codec_args: &[&str],
) -> PathBuf {
    let p = dir.join(name);
    run(ffmpeg()
        .args(["-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={w}x{h}:rate={fps}"))
        .args(["-t", &secs.to_string(), "-pix_fmt", "yuv420p"])
        .args(codec_args)
        .arg(&p));
    p
}

/// SRT cues as (start ms, end ms, text).
pub fn parse_srt(srt: &str) -> Vec<(u64, u64, String)> {
    let srt = srt.replace("\r\n", "\n");
    srt.split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .enumerate()
        .map(|(i, block)| {
            let mut lines = block.lines();
            let n: usize = lines
                .next()
                .and_then(|l| l.trim().parse().ok())
                .unwrap_or_else(|| panic!("cue {} has no number: {block:?}", i + 1));
            assert_eq!(n, i + 1, "cues are numbered 1, 2, …: {block:?}");
            let timing = lines.next().unwrap_or_default();
            let (a, b) = timing
                .split_once(" --> ")
                .unwrap_or_else(|| panic!("bad timing line in {block:?}"));
            let body = lines.collect::<Vec<_>>().join(" ");
            assert!(!body.trim().is_empty(), "cue {n} has no text");
            (srt_time(a, ','), srt_time(b, ','), body)
        })
        .collect()
}

/// Parses `HH:MM:SS<sep>mmm` into ms.
pub fn srt_time(s: &str, sep: char) -> u64 {
    fn bad<T>(s: &str) -> T {
        panic!("bad timestamp {s:?}")
    }
    let (hms, ms) = s.trim().split_once(sep).unwrap_or_else(|| bad(s));
    let parts: Vec<u64> = hms
        .split(':')
        .map(|p| p.parse().unwrap_or_else(|_| bad(s)))
        .collect();
    assert!(parts.len() == 3 && ms.len() == 3, "bad timestamp {s:?}");
    let ms: u64 = ms.parse().unwrap_or_else(|_| bad(s));
    ((parts[0] * 60 + parts[1]) * 60 + parts[2]) * 1000 + ms
}

/// `len` bytes of xorshift noise from `seed`, the same every run.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
