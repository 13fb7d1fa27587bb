//! Writing mono PCM as a 16-bit WAV file, for tests, tools and debugging.

use std::path::Path;

use crate::{AudioError, Pcm};

/// Most samples a WAV data chunk (32-bit byte size) can hold at 16 bits.
const MAX_WAV_SAMPLES: usize = (u32::MAX as usize - 44) / 2;

/// Encodes `pcm` as a canonical 44-byte-header WAV: mono, 16-bit signed PCM, rounded and
/// clipped to `[-1, 1]` (NaN becomes 0).
///
/// Errors when the data would not fit a WAV file's 32-bit size fields.
pub fn wav_bytes(pcm: &Pcm) -> Result<Vec<u8>, AudioError> {
    if pcm.len() > MAX_WAV_SAMPLES {
        return Err(AudioError::WavTooLong {
            samples: pcm.len(),
            max: MAX_WAV_SAMPLES,
        });
    }
    // Cannot overflow: checked against MAX_WAV_SAMPLES above.
    let data_len = (pcm.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + pcm.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&pcm.sample_rate.to_le_bytes());
    out.extend_from_slice(&pcm.sample_rate.wrapping_mul(2).to_le_bytes()); // byte rate
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for &s in &pcm.samples {
        // `as` saturates and maps NaN to 0.
        let v = (s.clamp(-1.0, 1.0) * 32767.0).round() as i16;
        out.extend_from_slice(&v.to_le_bytes());
    }
    Ok(out)
}

/// Writes `pcm` to `path` as [`wav_bytes`] encodes it.
pub fn write_wav(path: &Path, pcm: &Pcm) -> Result<(), AudioError> {
    let bytes = wav_bytes(pcm)?;
    std::fs::write(path, bytes).map_err(|source| AudioError::Write {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_decode() {
        let samples: Vec<f32> = (0..1000)
            .map(|i| ((i % 200) as f32 - 100.0) / 128.0)
            .collect();
        let pcm = Pcm::new(22_050, samples);
        let bytes = wav_bytes(&pcm).unwrap();
        assert_eq!(bytes.len(), 44 + 2000);
        let back = crate::decode_bytes(&bytes, Some("wav")).unwrap();
        assert_eq!(back.sample_rate, 22_050);
        assert_eq!(back.len(), 1000);
        for (a, b) in pcm.samples.iter().zip(&back.samples) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }
}
