//! Click tracks and click detection, for measuring audio timing (A/V sync tests, encoder delay).

use crate::{MAX_DURATION_SECS, Pcm};

/// Length of one click in milliseconds.
const CLICK_MS: f64 = 5.0;
/// Frequency of the tone burst inside a click, in Hz.
const CLICK_HZ: f64 = 1000.0;
/// Peak amplitude: loud but below full scale so a codec's overshoot does not clip.
const CLICK_AMPLITUDE: f64 = 0.8;
/// Raised-cosine fade at each end of a click, in milliseconds: keeps the burst's spectrum
/// compact (a codec reproduces it faithfully) while the onset stays sharp.
const CLICK_FADE_MS: f64 = 0.25;

/// Generates `duration_ms` of silence at `rate` Hz with a click starting at each time in
/// `clicks_ms`.
///
/// A click is a 5 ms, 1 kHz cosine burst (starting at its peak) of amplitude 0.8 starting on
/// sample `round(t × rate / 1000)`, with 0.25 ms raised-cosine fades; its first sample above
/// 0.1 comes within 0.1 ms of that sample. Clicks outside the duration (or past its end) are cut. The
/// duration is capped at [`MAX_DURATION_SECS`]; a rate of 0 or a non-positive duration gives
/// empty audio.
pub fn click_track(rate: u32, duration_ms: f64, clicks_ms: &[f64]) -> Pcm {
    let max_ms = f64::from(MAX_DURATION_SECS) * 1000.0;
    let duration_ms = if duration_ms.is_finite() {
        duration_ms.clamp(0.0, max_ms)
    } else {
        0.0
    };
    let fs = f64::from(rate);
    let len = (duration_ms * fs / 1000.0).round() as usize;
    let mut samples = vec![0.0f32; len];
    let click_len = (CLICK_MS * fs / 1000.0).round() as usize;
    let fade_len = (CLICK_FADE_MS * fs / 1000.0).round().max(1.0);
    for &t in clicks_ms {
        if !t.is_finite() || t < 0.0 || t >= duration_ms {
            continue;
        }
        let start = (t * fs / 1000.0).round() as usize;
        for k in 0..click_len {
            let Some(s) = samples.get_mut(start + k) else {
                break;
            };
            let kf = k as f64;
            let from_end = (click_len - 1 - k) as f64;
            let edge = kf.min(from_end);
            let gain = if edge < fade_len {
                0.5 - 0.5 * (std::f64::consts::PI * edge / fade_len).cos()
            } else {
                1.0
            };
            let tone = (2.0 * std::f64::consts::PI * CLICK_HZ * kf / fs).cos();
            *s += (CLICK_AMPLITUDE * gain * tone) as f32;
        }
    }
    Pcm::new(rate, samples)
}

/// Finds click onsets: times in ms of each sample whose |amplitude| exceeds `threshold` after
/// at least `min_gap_ms` with every sample at or below it (the first loud sample counts too).
///
/// Sample-accurate: an onset at sample `i` is reported as `i × 1000 / rate`. Loud samples within
/// `min_gap_ms` of the previous loud sample belong to the same click. Returns nothing for a
/// rate of 0.
pub fn find_clicks(pcm: &Pcm, threshold: f32, min_gap_ms: f64) -> Vec<f64> {
    if pcm.sample_rate == 0 {
        return Vec::new();
    }
    let fs = f64::from(pcm.sample_rate);
    let gap = if min_gap_ms.is_finite() {
        (min_gap_ms.max(0.0) * fs / 1000.0).ceil() as usize
    } else {
        usize::MAX
    };
    let mut onsets = Vec::new();
    let mut last_loud: Option<usize> = None;
    for (i, s) in pcm.samples.iter().enumerate() {
        if s.abs() <= threshold {
            continue;
        }
        let quiet_before = last_loud.is_none_or(|l| i - l > gap);
        if quiet_before {
            onsets.push(i as f64 * 1000.0 / fs);
        }
        last_loud = Some(i);
    }
    onsets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_generated_clicks() {
        let times = [10.0, 250.0, 251.0, 999.0];
        let pcm = click_track(48_000, 1000.0, &times);
        assert_eq!(pcm.len(), 48_000);
        let found = find_clicks(&pcm, 0.1, 20.0);
        // 251 ms lies inside the 250 ms click, so it merges; 999 ms is cut but still detected.
        assert_eq!(found.len(), 3, "{found:?}");
        for (f, t) in found.iter().zip([10.0, 250.0, 999.0]) {
            assert!((f - t).abs() < 0.1, "{f} vs {t}");
        }
    }

    #[test]
    fn silence_and_hostile_arguments() {
        assert!(find_clicks(&Pcm::new(48_000, vec![0.0; 100]), 0.1, 10.0).is_empty());
        assert!(find_clicks(&Pcm::new(0, vec![1.0; 100]), 0.1, 10.0).is_empty());
        assert_eq!(click_track(48_000, f64::NAN, &[0.0]).len(), 0);
        assert_eq!(
            click_track(48_000, 10.0, &[f64::NAN, -5.0, 1e300]).samples,
            vec![0.0; 480]
        );
        assert_eq!(
            click_track(48_000, f64::INFINITY, &[]).len(),
            0,
            "infinite duration is treated as invalid"
        );
    }
}
