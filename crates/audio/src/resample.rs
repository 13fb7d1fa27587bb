//! Band-limited sample-rate conversion (windowed sinc) that keeps the timeline exact.
//!
//! Output sample `n` is the band-limited input evaluated at time `n / out_rate`, so time zero
//! and every event stay where they were (the kernel is symmetric: no delay to compensate), and
//! the output has `round(len × out_rate / in_rate)` samples. Positions are computed in exact
//! integer arithmetic and the kernel is a fixed table, so the result is deterministic.
//!
//! Kernel: sinc with a Kaiser window (β = 9.0, about 90 dB stopband), 32 zero crossings each
//! side, cut off at 94 % of the lower Nyquist frequency, tabulated at 512 points per zero
//! crossing and interpolated linearly (interpolation error below −100 dB).

use std::sync::OnceLock;

use crate::{AudioError, Pcm, check_len, check_rate};

/// Zero crossings of the sinc on each side of the centre.
const ZERO_CROSSINGS: usize = 32;
/// Table points per zero crossing.
const OVERSAMPLE: usize = 512;
/// Cut-off as a fraction of the lower of the two Nyquist frequencies.
const ROLLOFF: f64 = 0.94;
const KAISER_BETA: f64 = 9.0;

/// Resamples `pcm` to `rate` Hz; returns a copy when the rates are equal.
///
/// Output length is `round(pcm.len() × rate / pcm.sample_rate)` (halves round up), and
/// output sample `n` represents time `n / rate`. Both rates must lie in 8000..=192000 Hz and
/// the input within [`crate::MAX_DURATION_SECS`]; empty input gives empty output.
pub fn resample(pcm: &Pcm, rate: u32) -> Result<Pcm, AudioError> {
    check_rate(pcm.sample_rate)?;
    check_rate(rate)?;
    check_len(pcm.len() as u64, pcm.sample_rate)?;
    if rate == pcm.sample_rate {
        return Ok(pcm.clone());
    }
    let in_rate = u64::from(pcm.sample_rate);
    let out_rate = u64::from(rate);
    let len = pcm.len() as u64;
    // Bounded: len ≤ 30 min × 192 kHz and out/in ≤ 24, so this fits u64 and the allocation
    // stays under 30 min at the output rate.
    let out_len = (2 * len * out_rate + in_rate) / (2 * in_rate);
    let kernel = Kernel::new(in_rate, out_rate);
    let phases = out_rate / gcd(in_rate, out_rate);
    let samples = if phases * kernel.taps() as u64 <= MAX_TABLE_ENTRIES {
        resample_polyphase(&pcm.samples, in_rate, out_rate, out_len, &kernel)
    } else {
        resample_interpolated(&pcm.samples, in_rate, out_rate, out_len, &kernel)
    };
    Ok(Pcm::new(rate, samples))
}

/// Largest polyphase table (f32 entries, 4 MiB) before falling back to interpolating the
/// kernel per sample; every pair of common rates (8 k … 192 k multiples of 1 kHz, 11.025 kHz)
/// fits.
const MAX_TABLE_ENTRIES: u64 = 1 << 20;

/// The low-pass kernel for one rate pair, in units of input samples.
struct Kernel {
    /// Kernel bandwidth relative to the input's Nyquist frequency.
    scale: f64,
    /// Input samples reached on each side of the centre.
    reach: usize,
}

impl Kernel {
    fn new(in_rate: u64, out_rate: u64) -> Self {
        let scale = ROLLOFF * (out_rate as f64 / in_rate as f64).min(1.0);
        let reach = (ZERO_CROSSINGS as f64 / scale).ceil() as usize;
        Self { scale, reach }
    }

    /// Input samples that contribute to one output sample.
    fn taps(&self) -> usize {
        2 * self.reach + 2
    }

    /// Weight of an input sample `t` input samples away from the output instant, evaluated
    /// directly (exact up to rounding).
    fn weight(&self, t: f64) -> f64 {
        let u = t.abs() * self.scale;
        if u >= ZERO_CROSSINGS as f64 {
            return 0.0;
        }
        let r = u / ZERO_CROSSINGS as f64;
        let window = bessel_i0(KAISER_BETA * (1.0 - r * r).sqrt()) / bessel_i0(KAISER_BETA);
        let sinc = if u == 0.0 {
            1.0
        } else {
            (std::f64::consts::PI * u).sin() / (std::f64::consts::PI * u)
        };
        self.scale * sinc * window
    }
}

/// Rational rates with few phases: one precomputed row of weights per phase, and each output
/// sample is a dot product over contiguous (zero-padded) input.
fn resample_polyphase(
    input: &[f32],
    in_rate: u64,
    out_rate: u64,
    out_len: u64,
    kernel: &Kernel,
) -> Vec<f32> {
    let g = gcd(in_rate, out_rate);
    let phases = (out_rate / g) as usize;
    let taps = kernel.taps();
    let reach = kernel.reach;
    // Row p, tap k: input sample (ipart - reach + k) for an output at ipart + p / phases.
    let mut table = vec![0.0f32; phases * taps];
    for (p, row) in table.chunks_exact_mut(taps).enumerate() {
        let frac = p as f64 / phases as f64;
        for (k, w) in row.iter_mut().enumerate() {
            *w = kernel.weight(k as f64 - reach as f64 - frac) as f32;
        }
    }
    let mut padded = vec![0.0f32; reach + input.len() + reach + 2];
    padded[reach..reach + input.len()].copy_from_slice(input);

    let mut out = Vec::with_capacity(out_len as usize);
    for n in 0..out_len {
        let num = n * in_rate;
        let ipart = (num / out_rate) as usize;
        let phase = ((num % out_rate) / g) as usize;
        let row = &table[phase * taps..(phase + 1) * taps];
        // padded[ipart + k] is input[ipart - reach + k].
        out.push(dot(row, &padded[ipart..ipart + taps]));
    }
    out
}

/// Dot product with eight independent partial sums (so it vectorises) in a fixed order (so it
/// is deterministic).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (a8, a_rest) = a.split_at(a.len() / 8 * 8);
    let (b8, b_rest) = b.split_at(a8.len());
    for (x, y) in a8.chunks_exact(8).zip(b8.chunks_exact(8)) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    let mut sum = lanes.iter().sum::<f32>();
    for (x, y) in a_rest.iter().zip(b_rest) {
        sum += x * y;
    }
    sum
}

/// Any rate pair: the kernel is read from a finely tabulated copy with linear interpolation.
fn resample_interpolated(
    input: &[f32],
    in_rate: u64,
    out_rate: u64,
    out_len: u64,
    kernel: &Kernel,
) -> Vec<f32> {
    let len = input.len() as i64;
    let reach = kernel.reach as i64;
    let table = kernel_table();
    let step = kernel.scale * OVERSAMPLE as f64; // table positions per input sample
    let table_end = (ZERO_CROSSINGS * OVERSAMPLE) as f64;
    let mut out = Vec::with_capacity(out_len as usize);
    for n in 0..out_len {
        // Exact centre: n × in / out = ipart + rem / out.
        let num = n * in_rate;
        let ipart = (num / out_rate) as i64;
        let frac = (num % out_rate) as f64 / out_rate as f64;
        let first = (ipart - reach).max(0);
        let last = (ipart + reach + 1).min(len - 1);
        let mut acc = 0.0f64;
        for j in first..=last {
            let dist = ((j - ipart) as f64 - frac).abs() * step;
            if dist >= table_end {
                continue;
            }
            let idx = dist as usize;
            let t = dist - idx as f64;
            let k = table[idx] + (table[idx + 1] - table[idx]) * t;
            acc += k * f64::from(input[j as usize]);
        }
        out.push((acc * kernel.scale) as f32);
    }
    out
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `sinc(u) · kaiser(u / ZERO_CROSSINGS)` for `u = i / OVERSAMPLE`, plus one trailing zero so
/// interpolation may read `idx + 1`.
fn kernel_table() -> &'static [f64] {
    static TABLE: OnceLock<Vec<f64>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let n = ZERO_CROSSINGS * OVERSAMPLE;
        let norm = bessel_i0(KAISER_BETA);
        let mut table: Vec<f64> = (0..=n)
            .map(|i| {
                let u = i as f64 / OVERSAMPLE as f64;
                let r = u / ZERO_CROSSINGS as f64;
                let window = bessel_i0(KAISER_BETA * (1.0 - r * r).max(0.0).sqrt()) / norm;
                let sinc = if i == 0 {
                    1.0
                } else {
                    (std::f64::consts::PI * u).sin() / (std::f64::consts::PI * u)
                };
                sinc * window
            })
            .collect();
        table.push(0.0);
        table
    })
}

/// Modified Bessel function of the first kind, order 0 (power series; converges fast for the
/// arguments a Kaiser window uses).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let q = x * x / 4.0;
    for k in 1..64 {
        term *= q / (k * k) as f64;
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_is_rounded_ratio() {
        for (in_rate, len, out_rate, want) in [
            (22_050u32, 22_050usize, 48_000u32, 48_000usize),
            (24_000, 1, 48_000, 2),
            (44_100, 147, 48_000, 160),
            (44_100, 1, 48_000, 1),
            (48_000, 3, 16_000, 1),
            (48_000, 2, 32_000, 1), // 1.333 rounds down
            (8_000, 3, 12_000, 5),  // 4.5 rounds up
        ] {
            let pcm = Pcm::new(in_rate, vec![0.0; len]);
            let out = resample(&pcm, out_rate).unwrap();
            assert_eq!(out.len(), want, "{in_rate}->{out_rate} len {len}");
        }
    }

    #[test]
    fn dc_gain_is_one() {
        let pcm = Pcm::new(24_000, vec![0.5; 24_000]);
        let out = resample(&pcm, 48_000).unwrap();
        for &s in &out.samples[1000..47_000] {
            assert!((s - 0.5).abs() < 1e-4, "{s}");
        }
        let pcm = Pcm::new(96_000, vec![0.5; 96_000]);
        let out = resample(&pcm, 48_000).unwrap();
        for &s in &out.samples[1000..47_000] {
            assert!((s - 0.5).abs() < 1e-4, "{s}");
        }
    }

    /// The fallback path (odd rate pairs) and the polyphase path agree.
    #[test]
    fn both_paths_agree() {
        let input: Vec<f32> = (0..5000)
            .map(|i| ((i * 7919 % 1000) as f32 / 1000.0) - 0.5)
            .collect();
        for (in_rate, out_rate) in [(22_050u64, 48_000u64), (48_000, 22_050), (44_100, 48_000)] {
            let kernel = Kernel::new(in_rate, out_rate);
            let out_len = (2 * 5000 * out_rate + in_rate) / (2 * in_rate);
            let a = resample_polyphase(&input, in_rate, out_rate, out_len, &kernel);
            let b = resample_interpolated(&input, in_rate, out_rate, out_len, &kernel);
            assert_eq!(a.len(), b.len());
            let worst = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max);
            assert!(worst < 2e-5, "{in_rate}->{out_rate}: differ by {worst}");
        }
        // 44101 Hz is coprime with 48 kHz: 48000 phases, too many for a table.
        let kernel = Kernel::new(44_101, 48_000);
        assert!(48_000 * kernel.taps() as u64 > MAX_TABLE_ENTRIES);
        let out = resample(&Pcm::new(44_101, vec![0.25; 44_101]), 48_000).unwrap();
        assert_eq!(out.len(), 48_000);
        assert!((out.samples[24_000] - 0.25).abs() < 1e-4);
    }

    #[test]
    fn rejects_bad_rates() {
        let pcm = Pcm::new(24_000, vec![0.0; 10]);
        assert!(matches!(
            resample(&pcm, 7_999),
            Err(AudioError::SampleRate { rate: 7_999 })
        ));
        let pcm = Pcm::new(0, vec![0.0; 10]);
        assert!(matches!(
            resample(&pcm, 48_000),
            Err(AudioError::SampleRate { rate: 0 })
        ));
    }
}
