//! Helpers: external tools, temp dirs, signal measurements.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use storyreel_audio::Pcm;

/// A fresh, empty directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("storyreel-audio-{}-{n}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `tool` with `args`; panics with a clear message when it is missing or fails. Returns
/// (stdout, stderr).
pub fn run(tool: &str, args: &[&str]) -> (Vec<u8>, String) {
    let out = Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!("cannot run `{tool}` ({e}): these tests need ffmpeg, ffprobe and espeak-ng on PATH (apt-get install ffmpeg espeak-ng)")
    });
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "`{tool} {}` failed: {stderr}",
        args.join(" ")
    );
    (out.stdout, stderr)
}

pub fn ffmpeg(args: &[&str]) -> (Vec<u8>, String) {
    let mut all = vec!["-nostdin", "-hide_banner", "-y"];
    all.extend_from_slice(args);
    run("ffmpeg", &all)
}

/// Writes `source` as a WAV in `dir`, then has ffmpeg encode it to `name` with `codec_args`
/// (e.g. `["-c:a", "libmp3lame"]`): fixtures made by a real encoder, not by us.
pub fn ffmpeg_encode(dir: &TempDir, source: &Pcm, name: &str, codec_args: &[&str]) -> PathBuf {
    let wav = dir.path("source.wav");
    storyreel_audio::write_wav(&wav, source).unwrap();
    let out = dir.path(name);
    let mut args = vec!["-v", "error", "-i", wav.to_str().unwrap()];
    args.extend_from_slice(codec_args);
    args.push(out.to_str().unwrap());
    ffmpeg(&args);
    out
}

/// One ffprobe stream/format entry, e.g. `("stream", "sample_rate")`.
pub fn ffprobe(path: &Path, section: &str, key: &str) -> String {
    let entries = format!("{section}={key}");
    let (out, _) = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            "a:0",
            "-show_entries",
            &entries,
            "-of",
            "default=nw=1:nk=1",
            path.to_str().unwrap(),
        ],
    );
    String::from_utf8_lossy(&out).trim().to_owned()
}

/// Decodes `path` with ffmpeg to mono f32 at its own rate (no resampling, no trimming beyond
/// what the container signals).
pub fn ffmpeg_decode(path: &Path) -> Vec<f32> {
    let (out, _) = ffmpeg(&[
        "-v",
        "error",
        "-i",
        path.to_str().unwrap(),
        "-ac",
        "1",
        "-f",
        "f32le",
        "-c:a",
        "pcm_f32le",
        "-",
    ]);
    out.chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// A sine of `freq` Hz, amplitude `amp`, `len` samples at `rate`.
pub fn sine(rate: u32, freq: f64, amp: f64, len: usize) -> Pcm {
    let samples = (0..len)
        .map(|i| {
            (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin()) as f32
        })
        .collect();
    Pcm::new(rate, samples)
}

/// Sign changes in `x`.
pub fn zero_crossings(x: &[f32]) -> usize {
    x.windows(2)
        .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
        .count()
}

/// Lag (in samples, `-max..=max`) that best aligns `y` with `x`: `y[i + lag] ≈ x[i]`.
pub fn best_lag(x: &[f32], y: &[f32], max: i64) -> i64 {
    let mut best = (f64::MIN, 0);
    for lag in -max..=max {
        let mut acc = 0.0f64;
        for (i, &a) in x.iter().enumerate() {
            let j = i as i64 + lag;
            if j >= 0 && (j as usize) < y.len() {
                acc += f64::from(a) * f64::from(y[j as usize]);
            }
        }
        if acc > best.0 {
            best = (acc, lag);
        }
    }
    best.1
}

/// SNR in dB of `y` against reference `x` (same length).
pub fn snr_db(x: &[f32], y: &[f32]) -> f64 {
    let (mut sig, mut err) = (0.0f64, 0.0f64);
    for (&a, &b) in x.iter().zip(y) {
        sig += f64::from(a) * f64::from(a);
        err += f64::from(a - b) * f64::from(a - b);
    }
    10.0 * (sig / err.max(1e-30)).log10()
}

/// Asserts that each detected onset in `got` is within `tol_ms` of the matching `want` time.
pub fn assert_clicks(got: &[f64], want: &[f64], tol_ms: f64) {
    assert_eq!(
        got.len(),
        want.len(),
        "clicks found {got:?}, expected {want:?}"
    );
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= tol_ms,
            "click at {g:.3} ms, expected {w:.3} ms ± {tol_ms} (all: {got:?})"
        );
    }
}
