//! The error type of every speech synthesiser.

/// Why a narration could not be synthesised.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpeechError {
    /// The text holds no word (it is empty or only whitespace).
    #[error("text has no words to speak ({bytes} bytes, all whitespace)")]
    NoWords {
        /// Length of the text in bytes.
        bytes: usize,
    },
    /// The text is longer than [`crate::MAX_TEXT_CHARS`].
    #[error("text too long: {chars} characters (expected <= {max})")]
    TextTooLong {
        /// Characters in the text (counted up to `max + 1`).
        chars: usize,
        /// The cap.
        max: usize,
    },
    /// The text holds a NUL character, which the engine would take as the end of the text.
    #[error("text contains a nul character at byte {offset} (expected none)")]
    NulInText {
        /// Byte offset of the first NUL.
        offset: usize,
    },
    /// The speaking rate is outside what the engine supports.
    #[error("invalid speaking rate {rate} words per minute (expected {min} ..= {max})")]
    Rate {
        /// The rate asked for.
        rate: u32,
        /// Slowest supported rate.
        min: u32,
        /// Fastest supported rate.
        max: u32,
    },
    /// No installed voice has this name.
    #[error("unknown voice {voice:?} (expected one of {count} voices: {examples}{more})")]
    UnknownVoice {
        /// The voice asked for.
        voice: String,
        /// How many voices are installed.
        count: usize,
        /// The first few valid voice names, comma-separated.
        examples: String,
        /// `", …"` when `examples` does not list them all, else empty.
        more: &'static str,
    },
    /// The engine could not start (missing library data, or an earlier failure).
    #[error("speech engine failed to initialise: {reason}")]
    Init {
        /// What the engine reported.
        reason: String,
    },
    /// The engine failed while synthesising.
    #[error("speech engine failed: {reason}")]
    Engine {
        /// What went wrong.
        reason: String,
    },
    /// The synthesised audio would exceed [`storyreel_audio::MAX_DURATION_SECS`].
    #[error("narration too long: over {max_secs} s of audio (expected <= {max_secs} s)")]
    AudioTooLong {
        /// The cap in seconds.
        max_secs: u32,
    },
    /// The engine produced no audio for a text that has words.
    #[error("speech engine produced no audio for {words} words")]
    NoAudio {
        /// Words in the text.
        words: usize,
    },
}
