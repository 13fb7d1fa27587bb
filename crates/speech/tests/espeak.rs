//! EspeakSpeech end to end: marks contract, audio decoded by ffmpeg, timings checked against
//! onsets found in the audio itself, and input errors.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use storyreel_audio::{Pcm, write_wav};
use storyreel_speech::{
    ESPEAK_DEFAULT_RATE_WPM, ESPEAK_DEFAULT_VOICE, EspeakSpeech, MAX_TEXT_CHARS, Narration,
    SpeechError, SpeechSynth,
};

const STORY: &str = "“I wasn’t going to say it,” she said. Renée paid 1,250 € at the Straße café 🙂!\n\
    Read https://example.com/aita?id=42 — then floccinaucinihilipilifications, \"obviously\". \
    It's 3.5 km away; don't panic.";

#[derive(Debug)]
struct Mark {
    kind: String,
    time: u64,
    start: usize,
    end: usize,
    value: String,
}

fn parse(jsonl: &str) -> Vec<Mark> {
    assert!(jsonl.ends_with('\n'));
    jsonl
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            let obj = v.as_object().unwrap();
            assert_eq!(obj.len(), 5, "{line}");
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

/// Checks the crate's marks contract for `text`; returns the word marks.
fn check_contract(text: &str, n: &Narration) -> Vec<Mark> {
    let marks = parse(&n.marks_jsonl);
    for m in &marks {
        assert_eq!(text.get(m.start..m.end), Some(m.value.as_str()), "{m:?}");
    }
    // Expected words and their byte offsets, found independently of the crate.
    let mut expected = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                expected.push((s, i));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    let words: Vec<Mark> = marks.into_iter().filter(|m| m.kind == "word").collect();
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
        (last.time as f64) < n.pcm.duration_ms(),
        "{last:?} vs {} ms",
        n.pcm.duration_ms()
    );
    words
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("storyreel-speech-{}-{name}", std::process::id()))
}

fn rms(samples: &[f32]) -> f32 {
    (samples.iter().map(|s| s * s).sum::<f32>() / samples.len().max(1) as f32).sqrt()
}

#[test]
fn story_marks_cover_every_word_and_audio_decodes() {
    assert_eq!(
        "floccinaucinihilipilifications".chars().count(),
        30,
        "the long word must have 30 letters"
    );
    let n = EspeakSpeech::new()
        .synthesize(STORY, ESPEAK_DEFAULT_VOICE, ESPEAK_DEFAULT_RATE_WPM)
        .unwrap();
    assert_eq!(n.pcm.sample_rate, 22_050);
    assert!(n.pcm.duration_ms() > 5_000.0, "{} ms", n.pcm.duration_ms());
    assert!(rms(&n.pcm.samples) > 0.01, "audio is silent");
    let words = check_contract(STORY, &n);
    assert!(
        words
            .iter()
            .any(|m| m.value == "floccinaucinihilipilifications,")
    );
    assert!(
        words
            .iter()
            .any(|m| m.value == "https://example.com/aita?id=42")
    );
    assert!(words.iter().any(|m| m.value == "café"));
    // The words espeak speaks are timed by its own events, not by +1 ms interpolation: only
    // the dash (not spoken) may sit 1 ms after its predecessor.
    for pair in words.windows(2) {
        if pair[1].time == pair[0].time + 1 {
            assert_eq!(pair[1].value, "—", "{pair:?}");
        }
    }
    // The 30-letter word takes time: the next word starts well after it.
    let long = words
        .iter()
        .position(|m| m.value.starts_with("flocc"))
        .unwrap();
    assert!(
        words[long + 1].time - words[long].time > 1_000,
        "{:?}",
        &words[long..=long + 1]
    );

    // Sentence marks: each starts where a word mark starts, at the same time, and the first
    // word starts one.
    let marks = parse(&n.marks_jsonl);
    assert_eq!(marks[0].kind, "sentence");
    let sentences: Vec<&Mark> = marks.iter().filter(|m| m.kind == "sentence").collect();
    assert!(sentences.len() >= 3, "{sentences:?}");
    for s in sentences {
        let w = words.iter().find(|w| w.start == s.start).unwrap();
        assert_eq!(w.time, s.time, "{s:?}");
    }

    // ffmpeg is the independent judge of the audio.
    let path = temp_path("story.wav");
    write_wav(&path, &n.pcm).unwrap();
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg is installed");
    assert!(out.status.success());
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=sample_rate,channels,duration",
            "-of",
            "csv=p=0",
        ])
        .arg(&path)
        .output()
        .expect("ffprobe is installed");
    let probe = String::from_utf8_lossy(&probe.stdout).trim().to_owned();
    let fields: Vec<&str> = probe.split(',').collect();
    assert_eq!(&fields[..2], ["22050", "1"], "{probe}");
    let secs: f64 = fields[2].parse().unwrap();
    assert!((secs * 1000.0 - n.pcm.duration_ms()).abs() < 1.0, "{probe}");
    let _ = std::fs::remove_file(&path);
}

/// Onsets: starts of sound after at least `min_gap_ms` of quiet, from 5 ms RMS windows, with
/// the threshold relative to the loudest window. Independent of espeak's events.
fn onsets(pcm: &Pcm, min_gap_ms: f64) -> Vec<f64> {
    let win = pcm.sample_rate as usize / 200;
    let levels: Vec<f32> = pcm.samples.chunks(win).map(rms).collect();
    let threshold = levels.iter().cloned().fold(0.0, f32::max) * 0.01;
    let gap_windows = (min_gap_ms / 5.0).ceil() as usize;
    let mut found = Vec::new();
    let mut quiet = gap_windows; // the start of the audio counts as after a silence
    for (i, &l) in levels.iter().enumerate() {
        if l > threshold {
            if quiet >= gap_windows {
                found.push(i as f64 * 5.0);
            }
            quiet = 0;
        } else {
            quiet += 1;
        }
    }
    found
}

#[test]
fn word_times_match_onsets_in_the_audio() {
    let text = "One. Two. Three. Four. Five.";
    let n = EspeakSpeech::new().synthesize(text, "en-us", 120).unwrap();
    let words = check_contract(text, &n);
    let found = onsets(&n.pcm, 150.0);
    assert_eq!(
        found.len(),
        words.len(),
        "onsets {found:?} vs marks {words:?}"
    );
    for (w, o) in words.iter().zip(&found) {
        assert!(
            (w.time as f64 - o).abs() <= 80.0,
            "{} at {} ms, onset at {o} ms",
            w.value,
            w.time
        );
    }
}

#[test]
fn long_prose_keeps_positions_in_step() {
    // ~4,000 characters: positions must stay aligned far into the text, across many clauses.
    let sentence = "The quick brown fox jumps over the lazy dog, and then it naps. ";
    let text = sentence.repeat(64);
    let n = EspeakSpeech::new().synthesize(&text, "en-us", 300).unwrap();
    let words = check_contract(&text, &n);
    assert_eq!(words.len(), 13 * 64);
    for pair in words.windows(2) {
        assert!(
            pair[1].time - pair[0].time > 20,
            "interpolated or misaligned: {pair:?}"
        );
    }
    let sentences = parse(&n.marks_jsonl)
        .into_iter()
        .filter(|m| m.kind == "sentence")
        .count();
    assert_eq!(sentences, 64);
}

#[test]
fn concurrent_calls_are_serialised_and_deterministic() {
    let text = "Threads take turns with the one engine.";
    let alone = EspeakSpeech::new().synthesize(text, "en-us", 200).unwrap();
    let handles: Vec<_> = (0..3)
        .map(|i| {
            std::thread::spawn(move || {
                let voice = if i == 1 { "en-gb" } else { "en-us" };
                (i, EspeakSpeech::new().synthesize(text, voice, 200).unwrap())
            })
        })
        .collect();
    // libespeak-ng keeps a little state between messages, so repeated calls are not
    // bit-identical; interleaved calls would garble the audio and the event lists.
    let alone_words = check_contract(text, &alone);
    for h in handles {
        let (i, n) = h.join().unwrap();
        let words = check_contract(text, &n);
        if i != 1 {
            let (a, b) = (alone.pcm.len() as f64, n.pcm.len() as f64);
            assert!((a - b).abs() < a * 0.01, "thread {i}: {b} samples vs {a}");
            for (x, y) in alone_words.iter().zip(&words) {
                assert!(x.time.abs_diff(y.time) <= 5, "thread {i}: {x:?} vs {y:?}");
            }
        }
    }
}

#[test]
fn voices_are_listed_and_checked() {
    let speech = EspeakSpeech::new();
    let voices = speech.voices().unwrap();
    assert!(voices.len() > 50, "{}", voices.len());
    assert!(
        voices
            .iter()
            .any(|v| v.languages.iter().any(|l| l == "en-us"))
    );
    for ok in ["en-us", "EN-US", "en", "en-gb+f3", "gmw/en-US"] {
        speech
            .synthesize("Hello.", ok, 175)
            .unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for bad in [
        "no-such-voice",
        "xx-yy",
        "",
        "+f3",
        "en-us\0",
        "../../etc/passwd",
    ] {
        let err = match speech.synthesize("Hello.", bad, 175) {
            Ok(_) => panic!("voice {bad:?} accepted"),
            Err(e) => e,
        };
        let msg = err.to_string();
        assert!(
            matches!(err, SpeechError::UnknownVoice { .. }),
            "{bad:?}: {msg}"
        );
        assert!(
            msg.starts_with(&format!("unknown voice {bad:?} (expected one of")),
            "{msg}"
        );
        assert!(msg.contains("en-us") || msg.contains(", …)"), "{msg}");
    }
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let speech = EspeakSpeech::new();
    for text in ["", "   \n\t "] {
        let err = speech.synthesize(text, "en-us", 175).unwrap_err();
        assert!(matches!(err, SpeechError::NoWords { .. }), "{err}");
        assert!(err.to_string().starts_with("text has no words"), "{err}");
    }
    let err = speech.synthesize("hello", "en-us", 79).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid speaking rate 79 words per minute (expected 80 ..= 450)"
    );
    assert!(speech.synthesize("hello", "en-us", 451).is_err());
    let err = speech.synthesize("a\0b", "en-us", 175).unwrap_err();
    assert_eq!(
        err.to_string(),
        "text contains a nul character at byte 1 (expected none)"
    );
    let long = "a ".repeat(MAX_TEXT_CHARS / 2 + 1);
    let err = speech.synthesize(&long, "en-us", 175).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "text too long: {} characters (expected <= {MAX_TEXT_CHARS})",
            MAX_TEXT_CHARS + 1
        )
    );
    // Unspoken tokens still get marks, and text of only symbols still speaks or errors cleanly.
    for text in ["— … —", "🙂", "<b>&amp;</b>", "[[h@l'oU]]"] {
        match speech.synthesize(text, "en-us", 175) {
            Ok(n) => {
                check_contract(text, &n);
            }
            Err(e) => assert!(
                matches!(e, SpeechError::NoAudio { .. } | SpeechError::Engine { .. }),
                "{text}: {e}"
            ),
        }
    }
}
