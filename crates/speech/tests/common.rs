//! Checks shared by the engine tests: the marks contract and an independent sync measurement.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use storyreel_audio::{Pcm, write_wav};

/// The story of the acceptance test: curly quotes, accents, an emoji, numbers, a URL and
/// a 30-letter word.
pub const UNICODE_STORY: &str = "“I wasn’t going to say it,” she said. Renée paid 1,250 € at the Straße café 🙂!\n\
    Read https://example.com/aita?id=42 — then floccinaucinihilipilifications, \"obviously\". \
    It's 3.5 km away; don't panic. She owed $5 in 1990 & <never> paid.";

/// One parsed speech mark.
#[derive(Debug, Clone)]
pub struct Mark {
    pub kind: String,
    pub time: u64,
    pub start: usize,
    pub end: usize,
    pub value: String,
}

pub fn parse(jsonl: &str) -> Vec<Mark> {
    assert!(jsonl.ends_with('\n'));
    jsonl
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(v.as_object().unwrap().len(), 5, "{line}");
            Mark {
                kind: v["type"].as_str().unwrap().to_owned(),
                time: v["time"].as_u64().unwrap(),
                start: v["start"].as_u64().unwrap() as usize,
                end: v["end"].as_u64().unwrap() as usize,
                value: v["value"].as_str().unwrap().to_owned(),
            }
        })
        .collect()
}

/// Checks the crate's marks contract for `text` and audio of `duration_ms`: every word once, in
/// order, slicing exactly that word; strictly increasing times; last word inside the audio;
/// sentence marks on word starts with their time. Returns the word marks.
pub fn check_contract(text: &str, marks_jsonl: &str, duration_ms: f64) -> Vec<Mark> {
    let marks = parse(marks_jsonl);
    for m in &marks {
        assert_eq!(&text[m.start..m.end], m.value, "{m:?}");
    }
    let expected: Vec<(usize, usize)> = text
        .split_whitespace()
        .map(|w| {
            let start = w.as_ptr() as usize - text.as_ptr() as usize;
            (start, start + w.len())
        })
        .collect();
    let words: Vec<Mark> = marks.iter().filter(|m| m.kind == "word").cloned().collect();
    let got: Vec<(usize, usize)> = words.iter().map(|m| (m.start, m.end)).collect();
    assert_eq!(got, expected, "every word once, in order");
    for pair in words.windows(2) {
        assert!(
            pair[0].time < pair[1].time,
            "times not strictly increasing: {pair:?}"
        );
    }
    let last = words.last().unwrap();
    assert!(
        (last.time as f64) < duration_ms,
        "{last:?} vs {duration_ms} ms"
    );
    assert_eq!(marks[0].kind, "sentence");
    for s in marks.iter().filter(|m| m.kind == "sentence") {
        let w = words
            .iter()
            .find(|w| w.start == s.start)
            .unwrap_or_else(|| panic!("sentence {s:?} does not start on a word"));
        assert_eq!(w.time, s.time, "{s:?}");
    }
    words
}

pub fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("storyreel-speech-{}-{name}", std::process::id()))
}

/// ffmpeg, the independent judge, decodes the audio without a word of complaint and finds the
/// same duration.
pub fn ffmpeg_accepts(pcm: &Pcm, name: &str) {
    let path = temp_path(name);
    write_wav(&path, pcm).unwrap();
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg is installed");
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(&path)
        .output()
        .expect("ffprobe is installed");
    let secs: f64 = String::from_utf8_lossy(&probe.stdout)
        .trim()
        .parse()
        .unwrap();
    assert!((secs * 1000.0 - pcm.duration_ms()).abs() < 1.0, "{secs} s");
    let _ = std::fs::remove_file(&path);
}

/// The loudness envelope of `samples` at `rate`: RMS over 4 ms windows, one value per ms. Unlike
/// the waveform it survives a lossy codec's phase changes, so it finds a sound again after MP3.
pub fn envelope(samples: &[f32], rate: u32) -> Vec<f64> {
    let win = rate as usize * 4 / 1000;
    // Window starts at exact milliseconds (22.05 samples apart at 22,050 Hz): rounding the hop
    // to whole samples would drift by 2 ms a second.
    let ms = samples.len().saturating_sub(win) as u64 * 1000 / u64::from(rate);
    (0..ms)
        .map(|i| {
            let start = (i * u64::from(rate) / 1000) as usize;
            let w = &samples[start..start + win];
            (w.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>() / win as f64).sqrt()
        })
        .collect()
}

/// Where the envelope `snippet` best matches the envelope `audio` (both one value per ms),
/// searching start positions `lo..hi` (ms): (position, Pearson correlation).
pub fn find_snippet(audio: &[f64], snippet: &[f64], lo: usize, hi: usize) -> (usize, f64) {
    let n = snippet.len() as f64;
    let centred = |s: &[f64]| {
        let mean = s.iter().sum::<f64>() / n;
        s.iter().map(|x| x - mean).collect::<Vec<f64>>()
    };
    let b = centred(snippet);
    let b_norm = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    let mut best = (lo, f64::MIN);
    for pos in lo..hi.min(audio.len().saturating_sub(snippet.len())) {
        let a = centred(&audio[pos..pos + snippet.len()]);
        let a_norm = a.iter().map(|x| x * x).sum::<f64>().sqrt();
        let dot: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        let c = if a_norm * b_norm > 0.0 {
            dot / (a_norm * b_norm)
        } else {
            0.0
        };
        if c > best.1 {
            best = (pos, c);
        }
    }
    best
}
