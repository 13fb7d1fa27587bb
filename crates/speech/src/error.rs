//! The error type of every speech synthesiser, and the kind each error has for retries.

/// Boxed cause of an error from an SDK or a decoder, kept whole as the error's `source`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a caller should do about an error: the stable classification a step turns into an error
/// name that the state machine's `Retry`/`Catch` match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ErrorKind {
    /// A transient failure (throttling, a service failure, a lost connection): retrying the same
    /// request later may succeed. Adapters already retried with backoff before reporting it.
    Retryable,
    /// The request itself is wrong (text, voice, engine, rate, SSML): retrying cannot help.
    InvalidInput,
    /// Anything else: a broken installation, a bug, or an engine answer that makes no sense.
    Fatal,
}

impl ErrorKind {
    /// A stable name for the kind: `"Retryable"`, `"InvalidInput"` or `"Fatal"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Retryable => "Retryable",
            Self::InvalidInput => "InvalidInput",
            Self::Fatal => "Fatal",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Retryable => "retryable",
            Self::InvalidInput => "invalid input",
            Self::Fatal => "fatal",
        })
    }
}

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
    /// The text has words but none that can be spoken (no letter or digit in any of them).
    #[error(
        "text has no speakable words ({words} words, none with a letter or digit; expected at least one)"
    )]
    NothingToSay {
        /// Whitespace-delimited words in the text.
        words: usize,
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
    /// No installed (or offered) voice has this name.
    #[error("unknown voice {voice:?} (expected one of {count} voices: {examples}{more})")]
    UnknownVoice {
        /// The voice asked for.
        voice: String,
        /// How many voices are valid.
        count: usize,
        /// The first few valid voice names, comma-separated.
        examples: String,
        /// `", …"` when `examples` does not list them all, else empty.
        more: &'static str,
    },
    /// The voice exists but does not speak with the requested engine.
    #[error("voice {voice:?} does not support the {engine} engine (expected one of: {supported})")]
    EngineNotSupported {
        /// The voice asked for.
        voice: String,
        /// The engine asked for.
        engine: String,
        /// The engines the voice supports, comma-separated.
        supported: String,
    },
    /// The voice does not speak the requested language.
    #[error("voice {voice:?} does not speak language {language:?} (expected one of: {supported})")]
    Language {
        /// The voice asked for.
        voice: String,
        /// The language asked for.
        language: String,
        /// The languages the voice speaks, comma-separated.
        supported: String,
    },
    /// A [`crate::VoiceSpec`] for one engine was given to an adapter of another.
    #[error("voice spec asks for the {got} engine but this adapter is {expected}")]
    WrongEngine {
        /// The adapter's engine.
        expected: &'static str,
        /// The engine in the spec.
        got: String,
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
    /// Amazon Polly answered a request with an error, or the request could not be made.
    ///
    /// Retryable failures (throttling, service failures, 5xx, timeouts, lost connections) were
    /// already retried with backoff before this is reported.
    #[error(
        "polly {operation} failed{}: {code}: {message} ({kind}{})",
        part.as_ref().map(|p| format!(" on {p}")).unwrap_or_default(),
        if *kind == ErrorKind::Retryable { ", retries exhausted" } else { "" }
    )]
    Polly {
        /// The API operation, e.g. `"synthesize-speech"`.
        operation: &'static str,
        /// Which part of the text the request was for, when it was for one.
        part: Option<PartRef>,
        /// Polly's error code (e.g. `ThrottlingException`), or what failed on our side
        /// (`timeout`, `dispatch failure`, `HTTP 503`).
        code: String,
        /// Polly's message, or a description of the failure.
        message: String,
        /// Whether retrying later may help.
        kind: ErrorKind,
        /// The SDK error, whole.
        #[source]
        source: BoxError,
    },
    /// Polly's audio for a part could not be decoded.
    #[error("polly audio for {part} could not be decoded")]
    Decode {
        /// The part.
        part: PartRef,
        /// The decoder's error.
        #[source]
        source: storyreel_audio::AudioError,
    },
    /// Speech marks for a part are not valid Polly speech marks.
    #[error("bad speech marks for {part}, line {line}: {reason}")]
    BadMarks {
        /// The part.
        part: PartRef,
        /// 1-based line in the part's marks.
        line: usize,
        /// What is wrong.
        reason: String,
        /// The JSON error, when the line did not parse.
        #[source]
        source: Option<serde_json::Error>,
    },
    /// The marks and the audio do not describe the same narration: different text parts, or a
    /// mark after the end of its part's audio.
    #[error("speech marks and audio disagree: {reason}")]
    Drift {
        /// What disagrees, with the values.
        reason: String,
    },
    /// The engine reported no spoken word at all for a text that has words.
    #[error(
        "speech engine reported no spoken words for {words} words of text (expected at least one word mark)"
    )]
    NoSpokenWords {
        /// Whitespace-delimited words in the text.
        words: usize,
    },
    /// A blocking synthesis or decoding task panicked or was cancelled.
    #[error("background task failed")]
    Task {
        /// The join error.
        #[source]
        source: tokio::task::JoinError,
    },
}

impl SpeechError {
    /// Whether retrying may help: every variant has exactly one kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NoWords { .. }
            | Self::NothingToSay { .. }
            | Self::TextTooLong { .. }
            | Self::NulInText { .. }
            | Self::Rate { .. }
            | Self::UnknownVoice { .. }
            | Self::EngineNotSupported { .. }
            | Self::Language { .. }
            | Self::AudioTooLong { .. }
            | Self::NoAudio { .. }
            | Self::NoSpokenWords { .. } => ErrorKind::InvalidInput,
            Self::Polly { kind, .. } => *kind,
            Self::WrongEngine { .. }
            | Self::Init { .. }
            | Self::Engine { .. }
            | Self::Decode { .. }
            | Self::BadMarks { .. }
            | Self::Drift { .. }
            | Self::Task { .. } => ErrorKind::Fatal,
        }
    }
}

/// Names one part of a split text in errors: `part 2 of 7 (bytes 2987..5961)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartRef {
    /// 0-based index of the part.
    pub index: usize,
    /// Number of parts.
    pub count: usize,
    /// Byte range of the part in the text.
    pub start: usize,
    /// End of the byte range (exclusive).
    pub end: usize,
}

impl std::fmt::Display for PartRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "part {} of {} (bytes {}..{})",
            self.index + 1,
            self.count,
            self.start,
            self.end
        )
    }
}
