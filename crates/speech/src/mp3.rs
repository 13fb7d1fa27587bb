//! Decoding one MP3 part of a narration so that its samples line up with the engine's marks.
//!
//! An MP3 decoder's output starts late: the encoder delays the signal (LAME: 576 samples) and
//! the MDCT synthesis filterbank adds 529 more. A file with a LAME/Xing "Info" tag says how much
//! to drop, and symphonia drops it. Polly streams MP3 without such a tag (as does any encoder
//! writing to a pipe), so nothing says what to trim; left alone, every part would start about
//! 46 ms late (24 kHz) and marks would drift by that much **per part** once parts are joined.
//!
//! Decision: [`decode_mp3`] removes [`MP3_UNTAGGED_DELAY_SAMPLES`] (576 + 529) from the start
//! of an untagged MP3, and nothing from a tagged one (already trimmed). The encoder's padding at
//! the end (up to a frame of silence) stays: it is part of the audio that is joined, and each
//! part's measured length includes it, so it shifts the following parts' marks exactly as much as
//! it shifts their audio. Because every part is trimmed the same way, an encoder whose delay is
//! not exactly 576 samples costs a constant offset of the difference (not one that grows with
//! the number of parts). The tests measure the delay with clicks encoded by ffmpeg's libmp3lame,
//! with and without the tag.

use storyreel_audio::{AudioError, Pcm, decode_bytes};

/// Samples removed from the start of an MP3 without a LAME/Xing tag: LAME's encoder delay
/// (576) plus the MP3 decoder's filterbank delay (529).
pub const MP3_UNTAGGED_DELAY_SAMPLES: usize = 576 + 529;

/// Decodes an MP3 to mono PCM whose sample 0 is the first sample the encoder was given (see the
/// module docs): an untagged stream loses its first [`MP3_UNTAGGED_DELAY_SAMPLES`] samples.
///
/// Errors as [`storyreel_audio::decode_bytes`] does, and with [`AudioError::Empty`] when nothing
/// is left after the delay.
pub fn decode_mp3(bytes: &[u8]) -> Result<Pcm, AudioError> {
    let mut pcm = decode_bytes(bytes, Some("mp3"))?;
    if !has_gapless_tag(bytes) {
        let cut = MP3_UNTAGGED_DELAY_SAMPLES.min(pcm.samples.len());
        pcm.samples.drain(..cut);
    }
    if pcm.samples.is_empty() {
        return Err(AudioError::Empty(
            "the mp3 holds no audio after its encoder delay",
        ));
    }
    Ok(pcm)
}

/// True when the first MP3 frame is a Xing/Info frame with a LAME-style extension (written by
/// LAME and by ffmpeg as `LAME`/`Lavc`/`Lavf`), from which symphonia takes the delay and padding.
fn has_gapless_tag(bytes: &[u8]) -> bool {
    let mut pos = 0usize;
    // Skip an ID3v2 tag: "ID3", version (2), flags (1), syncsafe size (4).
    if bytes.len() >= 10 && &bytes[..3] == b"ID3" {
        let size = bytes[6..10]
            .iter()
            .fold(0usize, |acc, &b| (acc << 7) | usize::from(b & 0x7f));
        let footer = if bytes[5] & 0x10 != 0 { 10 } else { 0 };
        pos = 10 + size + footer;
    }
    // The first frame sync within a few KiB.
    let search_end = bytes.len().min(pos.saturating_add(4096));
    let Some(frame) = (pos..search_end.saturating_sub(1))
        .find(|&i| bytes[i] == 0xff && bytes[i + 1] & 0xe0 == 0xe0)
    else {
        return false;
    };
    // The Xing/Info tag sits after the header and side information (at most 4 + 2 + 32 bytes);
    // the LAME extension follows it within ~120 bytes.
    let head = &bytes[frame..bytes.len().min(frame + 200)];
    let Some(tag) = head
        .windows(4)
        .take(48)
        .position(|w| w == b"Xing" || w == b"Info")
    else {
        return false;
    };
    head[tag..]
        .windows(4)
        .any(|w| w == b"LAME" || w == b"Lavc" || w == b"Lavf")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_detection_skips_id3_and_needs_the_extension() {
        let mut frame = vec![0xff, 0xf3, 0x64, 0xc4];
        frame.extend_from_slice(&[0; 13]);
        frame.extend_from_slice(b"Info");
        frame.extend_from_slice(&[0; 116]);
        frame.extend_from_slice(b"Lavc61.1");
        assert!(has_gapless_tag(&frame));
        let mut with_id3 = b"ID3\x04\x00\x00\x00\x00\x00\x05hello".to_vec();
        with_id3.extend_from_slice(&frame);
        assert!(has_gapless_tag(&with_id3));
        let no_ext = &frame[..frame.len() - 8];
        assert!(!has_gapless_tag(no_ext));
        assert!(!has_gapless_tag(&[0xff, 0xf3, 0x64, 0xc4, 0, 0, 0]));
        assert!(!has_gapless_tag(b""));
        assert!(!has_gapless_tag(b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f"));
    }
}
