//! AAC encoding judged by ffmpeg/ffprobe: stream validity, priming, timing and fidelity.

use storyreel_audio::{
    AacTrack, DEFAULT_BITRATE, OUTPUT_RATE, Pcm, click_track, decode_file, encode_aac, find_clicks,
    resample,
};

use crate::util::{
    TempDir, assert_clicks, best_lag, ffmpeg, ffmpeg_decode, ffprobe, run, sine, snr_db,
};

/// Writes `track` as ADTS, checks ffmpeg decodes it without a word and ffprobe sees mono
/// AAC-LC at the track's rate, and returns ffmpeg's decoded samples (priming included).
fn judge(track: &AacTrack, dir: &TempDir) -> Vec<f32> {
    let path = dir.path("track.aac");
    std::fs::write(&path, track.to_adts()).unwrap();
    let (_, stderr) = ffmpeg(&[
        "-v",
        "error",
        "-i",
        path.to_str().unwrap(),
        "-f",
        "null",
        "-",
    ]);
    assert!(stderr.trim().is_empty(), "ffmpeg complained: {stderr}");
    assert_eq!(ffprobe(&path, "stream", "codec_name"), "aac");
    assert_eq!(ffprobe(&path, "stream", "profile"), "LC");
    assert_eq!(
        ffprobe(&path, "stream", "sample_rate"),
        track.sample_rate.to_string()
    );
    assert_eq!(ffprobe(&path, "stream", "channels"), "1");
    let decoded = ffmpeg_decode(&path);
    assert_eq!(
        decoded.len() as u64,
        track.coded_samples(),
        "ffmpeg decodes every frame"
    );
    decoded
}

/// Trims the priming and the padding tail from ffmpeg's output, as the MP4 edit list will.
fn playable(track: &AacTrack, decoded: &[f32]) -> Vec<f32> {
    let start = track.priming as usize;
    decoded[start..start + track.playable_samples as usize].to_vec()
}

#[test]
fn track_is_valid_mono_lc_at_48k() {
    let dir = TempDir::new("valid");
    let pcm = sine(OUTPUT_RATE, 440.0, 0.5, 48_000);
    let track = encode_aac(&pcm, DEFAULT_BITRATE).unwrap();
    assert_eq!(track.asc, [0x11, 0x88], "AAC-LC, 48 kHz, mono");
    assert_eq!(track.frames.len(), 48_000 / 1024 + 1 + 1);
    judge(&track, &dir);
}

/// The priming syom reports (1024) is the delay a real decoder shows: the cross-correlation
/// peak between input and ffmpeg's output sits at exactly that lag, and clicks land within
/// 1 ms after trimming it.
#[test]
fn priming_is_exact_and_clicks_keep_time() {
    let dir = TempDir::new("clicks");
    let clicks = [100.0, 517.3, 1000.0, 1733.35, 2400.0];
    let pcm = click_track(OUTPUT_RATE, 2500.0, &clicks);
    let track = encode_aac(&pcm, DEFAULT_BITRATE).unwrap();
    assert_eq!(track.priming, 1024);
    assert_eq!(track.playable_samples, pcm.len() as u64);
    let decoded = judge(&track, &dir);
    assert_eq!(
        best_lag(&pcm.samples, &decoded, 4096),
        i64::from(track.priming)
    );
    let out = Pcm::new(OUTPUT_RATE, playable(&track, &decoded));
    assert_eq!(best_lag(&pcm.samples, &out.samples, 256), 0);
    assert_clicks(&find_clicks(&out, 0.1, 50.0), &clicks, 1.0);
    assert_clicks(&find_clicks(&pcm, 0.1, 50.0), &clicks, 0.1);
}

#[test]
fn sine_snr_is_reasonable() {
    let dir = TempDir::new("snr");
    let pcm = sine(OUTPUT_RATE, 440.0, 0.5, 2 * 48_000);
    for bitrate in [96_000, 128_000] {
        let track = encode_aac(&pcm, bitrate).unwrap();
        let out = playable(&track, &judge(&track, &dir));
        let snr = snr_db(&pcm.samples, &out);
        assert!(snr > 20.0, "{bitrate} bps: SNR {snr:.1} dB");
        let actual = track.actual_bitrate();
        assert!(
            actual <= bitrate * 11 / 10,
            "{bitrate} bps target, {actual} produced"
        );
    }
}

/// The whole narration path: espeak-ng WAV (22.05 kHz) → 48 kHz → AAC, still in sync.
#[test]
fn espeak_narration_round_trip() {
    let dir = TempDir::new("narration");
    let wav = dir.path("narration.wav");
    run(
        "espeak-ng",
        &[
            "-w",
            wav.to_str().unwrap(),
            "The quick brown fox jumps over the lazy dog.",
        ],
    );
    let pcm = decode_file(&wav).unwrap();
    let at48 = resample(&pcm, OUTPUT_RATE).unwrap();
    assert!((at48.duration_ms() - pcm.duration_ms()).abs() < 1.0 / 48.0);
    let track = encode_aac(&at48, 96_000).unwrap();
    let out = playable(&track, &judge(&track, &dir));
    assert_eq!(best_lag(&at48.samples, &out, 256), 0);
    let snr = snr_db(&at48.samples, &out);
    assert!(snr > 10.0, "speech SNR {snr:.1} dB");
}
