//! Narration for storyreel: turns a story's text into mono PCM plus word and sentence timings in
//! Amazon Polly's speech-marks format, so local narration and Polly narration feed the same
//! caption pipeline.
//!
//! [`SpeechSynth`] is the capability a step asks for; [`EspeakSpeech`] is the local adapter
//! (libespeak-ng). Contract of every [`Narration`] (checked by the tests):
//! - every whitespace-delimited word of the text has exactly one `"word"` mark, in text order,
//!   whose `value` is exactly `text[start..end]` (byte offsets; a word runs to the next
//!   whitespace, punctuation included, as Polly reports it);
//! - word mark times are strictly increasing and the last one is before the end of the audio;
//! - a `"sentence"` mark precedes the first word mark of each sentence, with the same time.
//!
//! Synthesis is synchronous and CPU-bound (async callers use `spawn_blocking`). Untrusted text
//! never panics: it is capped at [`MAX_TEXT_CHARS`] and its audio at
//! [`storyreel_audio::MAX_DURATION_SECS`].

mod error;
mod espeak;
mod ffi;
mod marks;

pub use error::SpeechError;
pub use espeak::{
    ESPEAK_DEFAULT_RATE_WPM, ESPEAK_DEFAULT_VOICE, ESPEAK_MAX_RATE_WPM, ESPEAK_MIN_RATE_WPM,
    EspeakSpeech,
};
pub use marks::MAX_TEXT_CHARS;

/// Synthesised narration: the audio and its speech marks.
#[derive(Clone, PartialEq)]
pub struct Narration {
    /// Mono audio at the engine's rate (22,050 Hz for [`EspeakSpeech`]).
    pub pcm: storyreel_audio::Pcm,
    /// Polly-format speech marks, one JSON object per line (each line ends with `\n`):
    /// `{"time":ms,"type":"word","start":byte,"end":byte,"value":"..."}` and `"sentence"` marks.
    pub marks_jsonl: String,
}

impl std::fmt::Debug for Narration {
    // Summarises the samples: a derived Debug would print every one of them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Narration")
            .field("sample_rate", &self.pcm.sample_rate)
            .field("samples", &self.pcm.len())
            .field("marks_jsonl", &self.marks_jsonl)
            .finish()
    }
}

/// One installed voice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voice {
    /// Human-readable name, e.g. `English_(America)`.
    pub name: String,
    /// The engine's identifier, e.g. `gmw/en-US`.
    pub identifier: String,
    /// Languages the voice speaks, most preferred first, e.g. `["en-us", "en"]`.
    pub languages: Vec<String>,
}

/// A text-to-speech engine: the capability a narration step asks for.
pub trait SpeechSynth {
    /// Speaks `text` with `voice` at `rate_wpm` words per minute.
    ///
    /// Errors on text with no words, text over [`MAX_TEXT_CHARS`], an unknown voice, a rate the
    /// engine does not support, or an engine failure. See the crate docs for the marks contract.
    fn synthesize(&self, text: &str, voice: &str, rate_wpm: u32) -> Result<Narration, SpeechError>;

    /// The voices this engine can speak with.
    fn voices(&self) -> Result<Vec<Voice>, SpeechError>;
}
