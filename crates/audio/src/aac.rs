//! AAC-LC encoding with the pure-Rust `syom` encoder: raw access units plus the
//! AudioSpecificConfig and timing facts an MP4 muxer needs.
//!
//! Timeline of the coded stream (ISO/IEC 14496-3 with syom's causal encoder): decoding all
//! [`AacTrack::frames`] yields `frames.len() × 1024` samples; the first [`AacTrack::priming`]
//! (1024) are encoder delay, then come the [`AacTrack::playable_samples`] input samples, then
//! silence padding. The muxer writes an edit list starting at `priming` lasting
//! `playable_samples` so players present exactly the input. The tests verify the delay by
//! decoding with ffmpeg and locating clicks.

use crate::{AudioError, Pcm, check_len};

/// Samples per AAC-LC access unit.
pub const FRAME_SAMPLES: usize = 1024;

/// Default bitrate for narration: mono speech at 48 kHz is clean at 96–128 kbps with syom,
/// which still trails FDK on speech, so take the top of that range.
pub const DEFAULT_BITRATE: u32 = 128_000;

/// Lowest accepted bitrate in bits per second.
pub const MIN_BITRATE: u32 = 16_000;

/// Highest accepted bitrate: 256 kbps, well under AAC's mono cap of 6144 bits per frame
/// (288 kbps at 48 kHz).
pub const MAX_BITRATE: u32 = 256_000;

/// The sampling frequencies an AAC AudioSpecificConfig can index (above 96 kHz excluded as
/// unsupported by most decoders).
const AAC_RATES: [u32; 12] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
];

/// A mono AAC-LC elementary stream ready to mux into MP4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AacTrack {
    /// Sample rate of the coded audio (the input's rate).
    pub sample_rate: u32,
    /// Always 1: storyreel narration is mono.
    pub channels: u16,
    /// AudioSpecificConfig for the MP4 `esds` DecoderSpecificInfo (2 bytes for LC;
    /// `[0x11, 0x88]` at 48 kHz mono).
    pub asc: Vec<u8>,
    /// Raw AAC access units (`raw_data_block`, no ADTS header), each decoding to
    /// [`FRAME_SAMPLES`] samples; every MP4 sample has duration 1024.
    pub frames: Vec<Vec<u8>>,
    /// Leading decoded samples that are encoder delay: the edit list's `media_time`.
    pub priming: u32,
    /// Input samples, i.e. the edit list's duration in samples; always
    /// `≤ frames.len() × 1024 − priming`.
    pub playable_samples: u64,
    /// Target (average) bitrate in bits per second.
    pub bitrate: u32,
}

impl AacTrack {
    /// Decoded length before trimming: `frames.len() × 1024` samples.
    pub fn coded_samples(&self) -> u64 {
        self.frames.len() as u64 * FRAME_SAMPLES as u64
    }

    /// Largest access unit in bytes (for the `esds` bufferSizeDB).
    pub fn max_frame_bytes(&self) -> usize {
        self.frames.iter().map(Vec::len).max().unwrap_or(0)
    }

    /// Average bitrate actually produced, over the coded duration, in bits per second.
    pub fn actual_bitrate(&self) -> u32 {
        let bytes: u64 = self.frames.iter().map(|f| f.len() as u64).sum();
        let coded = self.coded_samples();
        if coded == 0 {
            return 0;
        }
        (bytes * 8 * u64::from(self.sample_rate) / coded) as u32
    }

    /// The stream as ADTS (a 7-byte header without CRC before each access unit), which
    /// ffmpeg and most players read directly; priming is not trimmed in this form. A
    /// `sample_rate` outside the AAC table (only possible by building the struct by hand) is
    /// signalled as 48 kHz.
    pub fn to_adts(&self) -> Vec<u8> {
        let rate_index = AAC_RATES
            .iter()
            .position(|&r| r == self.sample_rate)
            .unwrap_or(3) as u8;
        let channels = (self.channels & 0x7) as u8;
        let total: usize = self.frames.iter().map(|f| f.len() + 7).sum();
        let mut out = Vec::with_capacity(total);
        for frame in &self.frames {
            // 13-bit frame length including the header; an AU is at most 6144 bits/channel, so
            // it always fits.
            let len = (frame.len() + 7) as u32;
            let profile = 1u8; // AAC LC (object type 2) minus one
            out.extend_from_slice(&[
                0xFF,
                0xF1, // sync, MPEG-4, layer 0, no CRC
                (profile << 6) | (rate_index << 2) | (channels >> 2),
                ((channels & 3) << 6) | ((len >> 11) & 0x3) as u8,
                ((len >> 3) & 0xFF) as u8,
                (((len & 0x7) << 5) as u8) | 0x1F, // buffer fullness 0x7FF (VBR)
                0xFC,                              // fullness low bits, one raw block
            ]);
            out.extend_from_slice(frame);
        }
        out
    }
}

/// Encodes mono `pcm` to AAC-LC at its own sample rate and `bitrate` bits per second.
///
/// Resample to [`crate::OUTPUT_RATE`] first for a storyreel video. The tail is padded with
/// silence so every input sample is covered: `frames.len() = ceil(len / 1024) + 1` (the last
/// frame flushes the transform overlap). Samples outside `[-1, 1]` are clipped and non-finite
/// samples become silence, because AAC cannot represent them either. Errors: empty input, a rate
/// AAC cannot signal, a bitrate outside [`MIN_BITRATE`]`..=`[`MAX_BITRATE`], or input longer
/// than [`crate::MAX_DURATION_SECS`].
pub fn encode_aac(pcm: &Pcm, bitrate: u32) -> Result<AacTrack, AudioError> {
    if !AAC_RATES.contains(&pcm.sample_rate) {
        return Err(AudioError::AacSampleRate {
            rate: pcm.sample_rate,
        });
    }
    if !(MIN_BITRATE..=MAX_BITRATE).contains(&bitrate) {
        return Err(AudioError::Bitrate {
            bitrate,
            min: MIN_BITRATE,
            max: MAX_BITRATE,
        });
    }
    if pcm.is_empty() {
        return Err(AudioError::Empty("nothing to encode"));
    }
    check_len(pcm.len() as u64, pcm.sample_rate)?;

    let opts = syom::EncodeOptions::raw().with_bitrate_bps(bitrate);
    let mut encoder = syom::Encoder::new(pcm.sample_rate, 1, &opts).map_err(AudioError::Encode)?;
    let asc = encoder.asc().to_vec();
    let mut frames: Vec<Vec<u8>> = Vec::with_capacity(pcm.len() / FRAME_SAMPLES + 2);
    let mut collect = |f: syom::EncodedFrame<'_>| {
        frames.push(f.payload.to_vec());
        Ok(())
    };
    let mut chunk = [0.0f32; FRAME_SAMPLES];
    for input in pcm.samples.chunks(FRAME_SAMPLES) {
        for (c, &s) in chunk.iter_mut().zip(input) {
            *c = if s.is_finite() {
                s.clamp(-1.0, 1.0)
            } else {
                0.0
            };
        }
        encoder
            .feed(&[&chunk[..input.len()]], &mut collect)
            .map_err(AudioError::Encode)?;
    }
    let info = encoder.finish(&mut collect).map_err(AudioError::Encode)?;
    let priming = u32::try_from(info.priming).unwrap_or(u32::MAX);
    debug_assert_eq!(info.aac_frames as usize, frames.len());
    debug_assert_eq!(info.samples, pcm.len() as u64);
    Ok(AacTrack {
        sample_rate: pcm.sample_rate,
        channels: 1,
        asc,
        frames,
        priming,
        playable_samples: pcm.len() as u64,
        bitrate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_count_and_asc() {
        for (len, want_frames) in [
            (1usize, 2usize),
            (1024, 2),
            (1025, 3),
            (3000, 4),
            (48_000, 48),
        ] {
            let pcm = Pcm::new(48_000, vec![0.1; len]);
            let track = encode_aac(&pcm, DEFAULT_BITRATE).unwrap();
            assert_eq!(track.frames.len(), want_frames, "len {len}");
            assert_eq!(track.priming, 1024);
            assert_eq!(track.playable_samples, len as u64);
            assert_eq!(track.asc, [0x11, 0x88]);
            assert!(track.coded_samples() >= u64::from(track.priming) + len as u64);
        }
    }

    #[test]
    fn clips_out_of_range_samples() {
        let pcm = Pcm::new(48_000, vec![2.0, f32::NAN, -3.0, f32::INFINITY]);
        assert!(encode_aac(&pcm, DEFAULT_BITRATE).is_ok());
    }

    #[test]
    fn rejects_bad_input() {
        let pcm = Pcm::new(48_000, vec![]);
        assert!(matches!(
            encode_aac(&pcm, 96_000),
            Err(AudioError::Empty(_))
        ));
        let pcm = Pcm::new(44_000, vec![0.0; 10]);
        assert!(matches!(
            encode_aac(&pcm, 96_000),
            Err(AudioError::AacSampleRate { rate: 44_000 })
        ));
        let pcm = Pcm::new(48_000, vec![0.0; 10]);
        let err = encode_aac(&pcm, 1_000_000).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid aac bitrate 1000000 bps (expected 16000..=256000)"
        );
    }
}
