//! The error type of storyreel-audio.

use std::path::PathBuf;

/// Why audio could not be decoded, resampled, encoded or written.
///
/// Every variant except [`AudioError::Read`], [`AudioError::Write`] and [`AudioError::Encode`]
/// means the input itself is unusable (invalid input, not worth a retry).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AudioError {
    /// The file could not be opened or read.
    #[error("cannot read audio file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The file could not be written.
    #[error("cannot write audio file {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a supported container/codec, or are corrupt; `stage` says where
    /// decoding stopped and `source` what symphonia reported.
    #[error("unsupported or corrupt audio ({stage})")]
    Format {
        /// Where it failed: probing the container, opening the codec, reading or decoding packets.
        stage: &'static str,
        /// Symphonia's error.
        #[source]
        source: symphonia::core::errors::Error,
    },
    /// The container holds no audio track, or the track lacks a required parameter.
    #[error("unsupported audio: {0}")]
    Unsupported(&'static str),
    /// The audio decoded to zero samples.
    #[error("audio has no samples: {0}")]
    Empty(&'static str),
    /// The stream ended before the length its header declares.
    #[error("audio is truncated: decoded {decoded} of {declared} declared samples")]
    Truncated {
        /// Samples per channel actually decoded.
        decoded: u64,
        /// Samples per channel the container declares.
        declared: u64,
    },
    /// A sample rate outside what storyreel accepts.
    #[error("invalid sample rate {rate} Hz (expected 8000..=192000)")]
    SampleRate {
        /// The rejected rate.
        rate: u32,
    },
    /// A sample rate that AAC cannot signal (resample to [`crate::OUTPUT_RATE`] first).
    #[error(
        "sample rate {rate} Hz cannot be coded as aac (expected one of 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)"
    )]
    AacSampleRate {
        /// The rejected rate.
        rate: u32,
    },
    /// Longer than [`crate::MAX_DURATION_SECS`].
    #[error("audio too long: {seconds:.1} s (max {max_seconds} s)")]
    TooLong {
        /// Length of the input, as far as it was read.
        seconds: f64,
        /// The cap.
        max_seconds: u32,
    },
    /// More channels than [`crate::MAX_CHANNELS`].
    #[error("too many audio channels: {channels} (max {max})")]
    TooManyChannels {
        /// Channels in the input.
        channels: usize,
        /// The cap.
        max: usize,
    },
    /// An AAC bitrate outside [`crate::MIN_BITRATE`]`..=`[`crate::MAX_BITRATE`].
    #[error("invalid aac bitrate {bitrate} bps (expected {min}..={max})")]
    Bitrate {
        /// The rejected bitrate.
        bitrate: u32,
        /// Lowest accepted.
        min: u32,
        /// Highest accepted.
        max: u32,
    },
    /// Raw s16le PCM whose byte length is odd.
    #[error("raw s16le pcm has an odd length of {len} bytes (expected a multiple of 2)")]
    OddPcmLength {
        /// The byte length.
        len: usize,
    },
    /// The AAC encoder refused the input (a bug here: the input is validated first).
    #[error("aac encoder failed")]
    Encode(#[source] syom::AacError),
    /// The PCM is too long for a 16-bit WAV file (4 GiB of data).
    #[error("pcm too long for a wav file: {samples} samples (max {max})")]
    WavTooLong {
        /// Samples in the PCM.
        samples: usize,
        /// The cap.
        max: usize,
    },
}
