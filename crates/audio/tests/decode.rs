//! Decoding real files made by espeak-ng and ffmpeg, judged by ffprobe/ffmpeg.

use storyreel_audio::{click_track, decode_file, find_clicks};

use crate::util::{TempDir, assert_clicks, ffmpeg, ffmpeg_decode, ffmpeg_encode, ffprobe, run};

#[test]
fn espeak_wav_matches_ffprobe() {
    let dir = TempDir::new("espeak");
    let wav = dir.path("narration.wav");
    run(
        "espeak-ng",
        &[
            "-w",
            wav.to_str().unwrap(),
            "Once upon a time, a fox found a key in the snow.",
        ],
    );
    let pcm = decode_file(&wav).unwrap();
    let rate: u32 = ffprobe(&wav, "stream", "sample_rate").parse().unwrap();
    let ts: usize = ffprobe(&wav, "stream", "duration_ts").parse().unwrap();
    let dur: f64 = ffprobe(&wav, "stream", "duration").parse().unwrap();
    assert_eq!(pcm.sample_rate, rate);
    assert_eq!(pcm.len(), ts);
    assert!(
        (pcm.duration_ms() - dur * 1000.0).abs() < 1.0,
        "{} vs {dur}",
        pcm.duration_ms()
    );
    assert!(
        pcm.samples.iter().any(|s| s.abs() > 0.1),
        "speech is audible"
    );
}

/// espeak-ng writing to a pipe leaves the RIFF sizes at 0x7ffff000; that is not truncation.
#[test]
fn streamed_espeak_wav_is_accepted() {
    let (bytes, _) = run("espeak-ng", &["--stdout", "Streaming narration."]);
    let pcm = storyreel_audio::decode_bytes(&bytes, None).unwrap();
    assert_eq!(pcm.sample_rate, 22_050);
    assert_eq!(pcm.len(), (bytes.len() - 44) / 2);
}

/// MP3 at Polly's rates: symphonia trims the LAME delay and padding (gapless info), so the
/// length equals the encoded source and the clicks keep their times.
#[test]
fn mp3_at_polly_rates_keeps_timeline() {
    for rate in [22_050u32, 24_000] {
        let dir = TempDir::new("mp3");
        let clicks = [100.0, 1000.0, 2300.0];
        let source = click_track(rate, 2500.0, &clicks);
        let mp3 = ffmpeg_encode(
            &dir,
            &source,
            "narration.mp3",
            &["-c:a", "libmp3lame", "-b:a", "64k"],
        );
        let pcm = decode_file(&mp3).unwrap();
        assert_eq!(pcm.sample_rate, rate);
        // ffmpeg honours the same LAME tag: it is the independent judge of the length.
        let reference = ffmpeg_decode(&mp3);
        assert_eq!(pcm.len(), reference.len(), "rate {rate}: length vs ffmpeg");
        assert_eq!(pcm.len(), source.len(), "rate {rate}: length vs source");
        let dur: f64 = ffprobe(&mp3, "format", "duration").parse().unwrap();
        let start: f64 = ffprobe(&mp3, "stream", "start_time").parse().unwrap();
        // ffprobe's duration counts whole frames from the delayed start: within one frame
        // (576 samples, 26 ms at 22.05 kHz) of the trimmed length.
        let frame_ms = 576_000.0 / f64::from(rate);
        let probed_ms = (dur - start) * 1000.0;
        assert!(
            (pcm.duration_ms() - probed_ms).abs() <= frame_ms,
            "rate {rate}: {} ms vs ffprobe {probed_ms} ms",
            pcm.duration_ms()
        );
        assert_clicks(&find_clicks(&pcm, 0.1, 50.0), &clicks, 1.0);
    }
}

#[test]
fn stereo_44100_wav_downmixes_to_mono() {
    let dir = TempDir::new("stereo");
    let wav = dir.path("stereo.wav");
    ffmpeg(&[
        "-v",
        "error",
        "-f",
        "lavfi",
        "-i",
        "aevalsrc=0.6*sin(2*PI*440*t)|0.2*sin(2*PI*440*t):s=44100:d=1.5",
        "-c:a",
        "pcm_s16le",
        wav.to_str().unwrap(),
    ]);
    assert_eq!(ffprobe(&wav, "stream", "channels"), "2");
    let pcm = decode_file(&wav).unwrap();
    assert_eq!(pcm.sample_rate, 44_100);
    let ts: usize = ffprobe(&wav, "stream", "duration_ts").parse().unwrap();
    assert_eq!(pcm.len(), ts);
    assert_eq!(pcm.len(), 66_150);
    let dur: f64 = ffprobe(&wav, "stream", "duration").parse().unwrap();
    assert!((pcm.duration_ms() - dur * 1000.0).abs() < 1.0);
    let peak = pcm.samples.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    assert!(
        (peak - 0.4).abs() < 0.005,
        "mono = (L + R) / 2, peak {peak}"
    );
}

/// An AAC narration in M4A decodes; symphonia 0.6 does not apply the edit list, so the
/// encoder priming stays at the start (documented in the decode module).
#[test]
fn m4a_narration_decodes() {
    let dir = TempDir::new("m4a");
    let source = click_track(24_000, 2000.0, &[500.0]);
    let m4a = ffmpeg_encode(
        &dir,
        &source,
        "narration.m4a",
        &["-c:a", "aac", "-b:a", "64k"],
    );
    let pcm = decode_file(&m4a).unwrap();
    assert_eq!(pcm.sample_rate, 24_000);
    let extra = pcm.len() as i64 - source.len() as i64;
    assert!((0..=3 * 1024).contains(&extra), "{extra} extra samples");
    let clicks = find_clicks(&pcm, 0.1, 50.0);
    assert_eq!(clicks.len(), 1);
    let late_ms = clicks[0] - 500.0;
    assert!((0.0..=100.0).contains(&late_ms), "late by {late_ms} ms");
}

/// Without a LAME/Xing info tag (streamed MP3s; check Polly's) nothing says how much to trim:
/// symphonia, like ffmpeg, keeps LAME's 576-sample encoder delay plus the 529-sample decoder
/// delay, so the narration starts 1105 samples (50 ms at 22.05 kHz) late. This pins that
/// behaviour so a change in symphonia is noticed.
#[test]
fn mp3_without_info_tag_keeps_codec_delay() {
    let dir = TempDir::new("noxing");
    let source = click_track(22_050, 2000.0, &[500.0]);
    let mp3 = ffmpeg_encode(
        &dir,
        &source,
        "narration.mp3",
        &["-c:a", "libmp3lame", "-write_xing", "0"],
    );
    let pcm = decode_file(&mp3).unwrap();
    assert_eq!(
        pcm.len(),
        ffmpeg_decode(&mp3).len(),
        "same length as ffmpeg"
    );
    let clicks = find_clicks(&pcm, 0.1, 50.0);
    assert_eq!(clicks.len(), 1);
    let late = clicks[0] - find_clicks(&source, 0.1, 50.0)[0];
    let expected = 1105.0 * 1000.0 / 22_050.0;
    assert!((late - expected).abs() < 0.1, "late by {late} ms");
}
