//! Decoding narration files (WAV, MP3, Ogg Vorbis, FLAC, AAC in ADTS or M4A) to mono f32 with
//! symphonia, plus raw s16le PCM as Amazon Polly's `pcm` output format delivers it.
//!
//! Timing: MP3 files with a LAME/Xing (or Lavf) info tag are trimmed of encoder delay and padding
//! by symphonia, so their length equals the length of the audio that was encoded (tested against
//! ffmpeg). Without that tag (streamed MP3s) nothing says what to trim: LAME's 576-sample encoder
//! delay plus the decoder's 529 samples stay at the start, so the audio starts 1105 samples late
//! (50 ms at 22.05 kHz), exactly as ffmpeg decodes it. Symphonia 0.6 does not apply M4A edit
//! lists, so an AAC narration keeps its priming (typically 1024 or 2112 samples) at the start.
//! Everything else (WAV, FLAC, raw PCM) is sample-exact.

use std::fs::File;
use std::io::{Cursor, ErrorKind};
use std::path::Path;

use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;

use crate::{AudioError, MAX_CHANNELS, Pcm, check_len, check_rate, max_samples};

/// Decodes the audio file at `path` to mono (channels averaged) at its own sample rate.
///
/// The file's extension, if any, is used as a format hint; the content decides. Errors: the
/// file cannot be read ([`AudioError::Read`]), is not a supported format or is corrupt
/// ([`AudioError::Format`], [`AudioError::Unsupported`]), is truncated below the length its
/// header declares, decodes to no samples, has a rate outside 8000..=192000 Hz, more than
/// [`MAX_CHANNELS`] channels, or lasts longer than [`crate::MAX_DURATION_SECS`].
pub fn decode_file(path: &Path) -> Result<Pcm, AudioError> {
    let file = File::open(path).map_err(|source| AudioError::Read {
        path: path.to_owned(),
        source,
    })?;
    let ext = path.extension().and_then(|e| e.to_str());
    decode_source(Box::new(file), ext)
}

/// Decodes an in-memory audio file, as [`decode_file`] does; `hint_ext` is an optional
/// extension hint such as `"mp3"` (without the dot).
pub fn decode_bytes(bytes: &[u8], hint_ext: Option<&str>) -> Result<Pcm, AudioError> {
    decode_source(Box::new(Cursor::new(bytes)), hint_ext)
}

/// Reads headerless signed 16-bit little-endian mono PCM at `sample_rate` Hz, the format Amazon
/// Polly's `pcm` output delivers (16000 or 8000 Hz).
///
/// Errors on an odd byte length, an invalid rate, no samples, or more than
/// [`crate::MAX_DURATION_SECS`] of audio.
pub fn decode_s16le(bytes: &[u8], sample_rate: u32) -> Result<Pcm, AudioError> {
    check_rate(sample_rate)?;
    if !bytes.len().is_multiple_of(2) {
        return Err(AudioError::OddPcmLength { len: bytes.len() });
    }
    if bytes.is_empty() {
        return Err(AudioError::Empty("raw pcm input is empty"));
    }
    check_len((bytes.len() / 2) as u64, sample_rate)?;
    let samples = bytes
        .chunks_exact(2)
        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
        .collect();
    Ok(Pcm::new(sample_rate, samples))
}

fn format_err(stage: &'static str) -> impl FnOnce(SymError) -> AudioError {
    move |source| AudioError::Format { stage, source }
}

fn decode_source<'s>(
    source: Box<dyn MediaSource + 's>,
    hint_ext: Option<&str>,
) -> Result<Pcm, AudioError> {
    let mss = MediaSourceStream::new(source, Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = hint_ext {
        hint.with_extension(ext);
    }
    let mut format = symphonia::default::get_probe()
        .probe(
            &hint,
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(format_err("probing the container"))?;

    let track = format
        .default_track(TrackType::Audio)
        .ok_or(AudioError::Unsupported("no audio track"))?;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or(AudioError::Unsupported(
            "the audio track has no codec parameters",
        ))?
        .clone();
    let track_id = track.id;
    let declared = track.num_frames;

    // Reject what the header already shows to be out of bounds before decoding anything. The
    // declared length is not checked against the cap: a WAV written to a pipe declares ~13 h;
    // the running length check in the loop bounds memory instead.
    if let Some(rate) = params.sample_rate {
        check_rate(rate)?;
    }
    if let Some(channels) = &params.channels {
        check_channels(channels.count())?;
    }

    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(format_err("opening the codec"))?;

    let mut rate = params.sample_rate;
    let mut mono: Vec<f32> = Vec::new();
    let mut planes: Vec<Vec<f32>> = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            // A file cut mid-packet: keep what decoded, the length check below decides.
            Err(SymError::IoError(e)) if e.kind() == ErrorKind::UnexpectedEof => break,
            // A chained Ogg stream starts a new logical stream: the narration is the first one.
            Err(SymError::ResetRequired) => break,
            Err(source) => return Err(format_err("reading packets")(source)),
        };
        if packet.track_id != track_id {
            continue;
        }
        let buf = decoder
            .decode(&packet)
            .map_err(format_err("decoding a packet"))?;
        if buf.frames() == 0 {
            continue;
        }
        let buf_rate = buf.spec().rate();
        check_rate(buf_rate)?;
        match rate {
            None => rate = Some(buf_rate),
            Some(r) if r != buf_rate => {
                return Err(AudioError::Unsupported(
                    "the sample rate changes mid-stream",
                ));
            }
            Some(_) => {}
        }
        let channels = buf.num_planes();
        check_channels(channels)?;
        check_len((mono.len() + buf.frames()) as u64, buf_rate)?;
        buf.copy_to_vecs_planar::<f32>(&mut planes);
        downmix_into(&planes, &mut mono);
    }

    if mono.is_empty() {
        return Err(AudioError::Empty("the stream decoded to zero samples"));
    }
    let rate = rate.ok_or(AudioError::Unsupported("the sample rate is unknown"))?;
    if let Some(declared) = declared {
        let decoded = mono.len() as u64;
        // A declared length beyond the cap is a placeholder, not a promise: a WAV written to a
        // pipe (espeak-ng --stdout) declares 0x7ffff000 bytes and ends early by design.
        if decoded < declared && declared <= max_samples(rate) {
            return Err(AudioError::Truncated { decoded, declared });
        }
    }
    Ok(Pcm::new(rate, mono))
}

fn check_channels(channels: usize) -> Result<(), AudioError> {
    if channels > MAX_CHANNELS {
        return Err(AudioError::TooManyChannels {
            channels,
            max: MAX_CHANNELS,
        });
    }
    Ok(())
}

/// Appends the average of `planes` (equal lengths) to `mono`.
fn downmix_into(planes: &[Vec<f32>], mono: &mut Vec<f32>) {
    let Some(first) = planes.first() else {
        return;
    };
    if planes.len() == 1 {
        mono.extend_from_slice(first);
        return;
    }
    let start = mono.len();
    mono.extend_from_slice(first);
    for plane in &planes[1..] {
        for (m, s) in mono[start..].iter_mut().zip(plane) {
            *m += *s;
        }
    }
    let scale = 1.0 / planes.len() as f32;
    for m in &mut mono[start..] {
        *m *= scale;
    }
}
