//! Narration audio for storyreel: decode any input to mono PCM, resample it, and encode the
//! AAC-LC track that the MP4 muxer stores.
//!
//! The pipeline is `decode_*` → [`resample`] to [`OUTPUT_RATE`] → [`encode_aac`]. Everything here
//! is synchronous, CPU-bound and deterministic (the same input gives the same bytes); async
//! callers use `spawn_blocking`. Untrusted bytes never panic and never allocate beyond
//! [`MAX_DURATION_SECS`] of audio.
//!
//! Timeline contract: a [`Pcm`] of `n` samples at rate `r` lasts exactly `n / r` seconds;
//! [`resample`] keeps that duration (rounded to the nearest output sample) and time zero;
//! [`encode_aac`] reports the encoder delay as [`AacTrack::priming`] so the muxer's edit list
//! starts playback on the first input sample.

mod aac;
mod clicks;
mod decode;
mod error;
mod resample;
mod wav;

pub use aac::{AacTrack, DEFAULT_BITRATE, FRAME_SAMPLES, MAX_BITRATE, MIN_BITRATE, encode_aac};
pub use clicks::{click_track, find_clicks};
pub use decode::{decode_bytes, decode_file, decode_s16le};
pub use error::AudioError;
pub use resample::resample;
pub use wav::{wav_bytes, write_wav};

/// Sample rate of the AAC track in every storyreel video: what every platform ingests without
/// resampling.
pub const OUTPUT_RATE: u32 = 48_000;

/// Lowest accepted sample rate in Hz (telephone-band speech).
pub const MIN_SAMPLE_RATE: u32 = 8_000;

/// Highest accepted sample rate in Hz.
pub const MAX_SAMPLE_RATE: u32 = 192_000;

/// Longest accepted audio, in seconds (30 minutes). A short's narration is a few minutes; the
/// cap bounds memory on hostile input (at most 30 min × 192 kHz × 4 bytes ≈ 1.4 GB of mono f32,
/// 346 MB at 48 kHz).
pub const MAX_DURATION_SECS: u32 = 30 * 60;

/// Most channels accepted in an input file (7.1); everything is downmixed to mono.
pub const MAX_CHANNELS: usize = 8;

/// Mono PCM audio: `samples` are nominally in `[-1, 1]`, at `sample_rate` Hz.
#[derive(Debug, Clone, PartialEq)]
pub struct Pcm {
    /// Samples per second.
    pub sample_rate: u32,
    /// One channel of samples; sample `i` plays at time `i / sample_rate` seconds.
    pub samples: Vec<f32>,
}

impl Pcm {
    /// Wraps mono samples at `sample_rate` Hz.
    pub fn new(sample_rate: u32, samples: Vec<f32>) -> Self {
        Self {
            sample_rate,
            samples,
        }
    }

    /// Duration in milliseconds (`len / sample_rate`); 0 when the rate is 0.
    pub fn duration_ms(&self) -> f64 {
        if self.sample_rate == 0 {
            return 0.0;
        }
        self.samples.len() as f64 * 1000.0 / f64::from(self.sample_rate)
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

/// Checks `rate` against [`MIN_SAMPLE_RATE`]`..=`[`MAX_SAMPLE_RATE`].
pub(crate) fn check_rate(rate: u32) -> Result<(), AudioError> {
    if (MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&rate) {
        Ok(())
    } else {
        Err(AudioError::SampleRate { rate })
    }
}

/// Most samples a clip at `rate` may hold under [`MAX_DURATION_SECS`].
pub(crate) fn max_samples(rate: u32) -> u64 {
    u64::from(MAX_DURATION_SECS) * u64::from(rate)
}

/// Checks a clip of `len` samples at a valid `rate` against [`MAX_DURATION_SECS`].
pub(crate) fn check_len(len: u64, rate: u32) -> Result<(), AudioError> {
    if len > max_samples(rate) {
        return Err(AudioError::TooLong {
            seconds: len as f64 / f64::from(rate.max(1)),
            max_seconds: MAX_DURATION_SECS,
        });
    }
    Ok(())
}
