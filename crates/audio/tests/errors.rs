//! Hostile and broken input: clear errors, never panics.

use storyreel_audio::{AudioError, Pcm, click_track, decode_bytes, decode_file, wav_bytes};

use crate::util::{TempDir, ffmpeg_encode};

/// Deterministic pseudo-random bytes (xorshift64*).
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.max(1);
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

fn mp3_fixture(dir: &TempDir) -> Vec<u8> {
    let source = click_track(22_050, 3000.0, &[100.0, 2900.0]);
    let mp3 = ffmpeg_encode(dir, &source, "n.mp3", &["-c:a", "libmp3lame"]);
    std::fs::read(&mp3).unwrap()
}

#[test]
fn zero_length_wav_is_empty_error() {
    let bytes = wav_bytes(&Pcm::new(22_050, Vec::new())).unwrap();
    let err = decode_bytes(&bytes, Some("wav")).unwrap_err();
    assert!(matches!(err, AudioError::Empty(_)), "{err:?}");
    assert!(
        err.to_string().starts_with("audio has no samples: "),
        "{err}"
    );
}

#[test]
fn empty_and_missing_files() {
    let err = decode_bytes(&[], None).unwrap_err();
    assert!(matches!(err, AudioError::Format { .. }), "{err:?}");
    let err = decode_file(std::path::Path::new("/nonexistent/narration.mp3")).unwrap_err();
    assert!(matches!(err, AudioError::Read { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "cannot read audio file /nonexistent/narration.mp3"
    );
}

#[test]
fn garbage_bytes_error_without_panic() {
    for seed in 1..200u64 {
        let bytes = noise(seed, (seed as usize * 37) % 5000);
        for hint in [None, Some("mp3"), Some("wav"), Some("m4a"), Some("ogg")] {
            assert!(
                decode_bytes(&bytes, hint).is_err(),
                "seed {seed} hint {hint:?}"
            );
        }
    }
}

#[test]
fn truncated_mp3_is_clear_error() {
    let dir = TempDir::new("trunc");
    let mp3 = mp3_fixture(&dir);
    let err = decode_bytes(&mp3[..mp3.len() / 2], Some("mp3"))
        .map(|p| p.len())
        .unwrap_err();
    assert!(
        matches!(err, AudioError::Truncated { .. }),
        "{err:?}: {err}"
    );
    // Every cut point: an error or (cut inside the last frames' padding) a decode, never a panic.
    for cut in (0..mp3.len()).step_by(97) {
        let _ = decode_bytes(&mp3[..cut], Some("mp3"));
    }
}

#[test]
fn corrupted_files_never_panic() {
    let dir = TempDir::new("corrupt");
    let mp3 = mp3_fixture(&dir);
    let wav = wav_bytes(&click_track(44_100, 500.0, &[100.0])).unwrap();
    for (name, file) in [("mp3", &mp3), ("wav", &wav)] {
        for seed in 1..100u64 {
            let mut bytes = file.clone();
            let flips = noise(seed, 24);
            for pair in flips.chunks_exact(3) {
                let at = (usize::from(pair[0]) << 8 | usize::from(pair[1])) * bytes.len() / 65_536;
                bytes[at] ^= pair[2];
            }
            let _ = decode_bytes(&bytes, Some(name));
        }
    }
}

#[test]
fn hostile_headers_are_rejected() {
    // A WAV header claiming 1 Hz.
    let mut bytes = wav_bytes(&Pcm::new(22_050, vec![0.0; 100])).unwrap();
    bytes[24..28].copy_from_slice(&1u32.to_le_bytes());
    bytes[28..32].copy_from_slice(&2u32.to_le_bytes());
    let err = decode_bytes(&bytes, Some("wav")).unwrap_err();
    assert!(
        matches!(
            err,
            AudioError::SampleRate { rate: 1 } | AudioError::Format { .. }
        ),
        "{err:?}"
    );
    // Raw PCM helpers.
    assert!(matches!(
        storyreel_audio::decode_s16le(&[0, 1, 2], 16_000),
        Err(AudioError::OddPcmLength { len: 3 })
    ));
    assert!(matches!(
        storyreel_audio::decode_s16le(&[], 16_000),
        Err(AudioError::Empty(_))
    ));
    let pcm = storyreel_audio::decode_s16le(&[0x00, 0x40, 0x00, 0xC0], 16_000).unwrap();
    assert_eq!(pcm.samples, [0.5, -0.5]);
}
