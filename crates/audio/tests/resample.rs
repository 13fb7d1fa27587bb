//! Resampling: exact lengths, pitch, timing and band limiting.

use storyreel_audio::{OUTPUT_RATE, Pcm, click_track, find_clicks, resample};

use crate::util::{assert_clicks, sine, zero_crossings};

fn rms(x: &[f32]) -> f64 {
    (x.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / x.len().max(1) as f64).sqrt()
}

#[test]
fn length_is_exact() {
    for (rate, len) in [
        (22_050u32, 55_125usize),
        (24_000, 60_001),
        (44_100, 44_101),
        (16_000, 7),
    ] {
        let out = resample(&Pcm::new(rate, vec![0.0; len]), OUTPUT_RATE).unwrap();
        let want = (len as f64 * 48_000.0 / f64::from(rate)).round() as usize;
        assert_eq!(out.len(), want, "{rate} Hz, {len} samples");
        assert_eq!(out.sample_rate, OUTPUT_RATE);
    }
}

#[test]
fn sine_keeps_its_pitch() {
    for rate in [22_050u32, 24_000, 44_100, 16_000] {
        let out = resample(&sine(rate, 1000.0, 0.5, rate as usize * 2), OUTPUT_RATE).unwrap();
        // 2 s of 1 kHz: 4000 sign changes (edges may add or lose one).
        let zc = zero_crossings(&out.samples);
        assert!(
            (3998..=4001).contains(&zc),
            "{rate} Hz: {zc} zero crossings"
        );
        let level = rms(&out.samples[1000..95_000]);
        assert!(
            (level - 0.5 / 2f64.sqrt()).abs() < 0.005,
            "{rate} Hz: rms {level}"
        );
    }
    let down = resample(&sine(48_000, 1000.0, 0.5, 96_000), 22_050).unwrap();
    assert!((3998..=4001).contains(&zero_crossings(&down.samples)));
}

#[test]
fn clicks_keep_their_times() {
    let clicks = [50.0, 333.3, 1000.0, 1499.9];
    for (from, to) in [
        (24_000u32, 48_000u32),
        (22_050, 48_000),
        (44_100, 48_000),
        (48_000, 22_050),
    ] {
        let input = click_track(from, 1600.0, &clicks);
        let before = find_clicks(&input, 0.1, 50.0);
        // Generated onsets: start rounded to a sample plus the fade-in (see `click_track`).
        assert_clicks(&before, &clicks, 0.15);
        let after = find_clicks(&resample(&input, to).unwrap(), 0.1, 50.0);
        // One output sample is 0.02-0.045 ms: the detected onset may move by that quantum
        // (measured: at most 0.042 ms).
        assert_clicks(&after, &before, 0.1);
    }
}

#[test]
fn band_limited() {
    // Downsampling: a 20 kHz tone is above the new Nyquist (11.025 kHz) and must vanish.
    let out = resample(&sine(48_000, 20_000.0, 0.5, 48_000), 22_050).unwrap();
    let ratio = rms(&out.samples[500..21_000]) / (0.5 / 2f64.sqrt());
    assert!(ratio < 1e-3, "alias at {:.1} dB", 20.0 * ratio.log10());
    // Upsampling: no image of a 10 kHz tone at 24 kHz - 10 kHz = 14 kHz; the tone itself passes.
    let out = resample(&sine(24_000, 10_000.0, 0.5, 24_000), 48_000).unwrap();
    let level = rms(&out.samples[1000..47_000]) / (0.5 / 2f64.sqrt());
    assert!((level - 1.0).abs() < 0.01, "10 kHz passband gain {level}");
}

#[test]
fn deterministic() {
    let pcm = click_track(22_050, 300.0, &[10.0, 200.0]);
    assert_eq!(
        resample(&pcm, 48_000).unwrap(),
        resample(&pcm, 48_000).unwrap()
    );
}
