//! Narration for storyreel: turns a story's text into mono PCM plus word and sentence timings in
//! Amazon Polly's speech-marks format, so local narration and Polly narration feed the same
//! caption pipeline.
//!
//! Two adapters: [`EspeakSpeech`] (libespeak-ng, local) and [`PollySpeech`] (Amazon Polly).
//! The workflow runs audio and word timings as two parallel steps that cannot wait on each
//! other, so the capabilities are split:
//! - [`SpeechAudio`] speaks the text, part by part, and returns the joined PCM with each part's
//!   decoded length ([`AudioPart`], serialisable: it travels in the step's output);
//! - [`SpeechMarks`] returns each part's speech marks as the engine timed them, relative to the
//!   part ([`MarksPart`]);
//! - [`join_marks`] (pure) meets the two where the branches join: it offsets each part's marks by
//!   the decoded duration of the audio before it and by the text before it, checks they agree
//!   with the audio, and normalises them. Both sides cut the text the same way ([`split_text`],
//!   deterministic), and [`join_marks`] checks the parts match.
//!
//! [`SpeechSynth`] is the older one-call local interface; [`narrate`] does both halves and the
//! join in one call for any adapter.
//!
//! Contract of every marks output (of [`join_marks`] and [`SpeechSynth::synthesize`]; checked by
//! the tests):
//! - every whitespace-delimited word of the text has exactly one `"word"` mark, in text order,
//!   whose `value` is exactly `text[start..end]` (byte offsets; a word runs to the next
//!   whitespace, punctuation included; a number or URL the engine speaks as several words is
//!   one mark, at the time of the first);
//! - word mark times are strictly increasing and the last one is before the end of the audio;
//! - a `"sentence"` mark precedes the first word mark of each sentence, with the same time.
//!
//! Synthesis and decoding are CPU-bound: the async adapters run them with `spawn_blocking`.
//! Untrusted text never panics: it is capped at [`MAX_TEXT_CHARS`] and its audio at
//! [`storyreel_audio::MAX_DURATION_SECS`].

mod error;
mod espeak;
mod ffi;
mod join;
mod marks;
mod mp3;
mod polly;
mod split;
mod ssml;

use serde::{Deserialize, Serialize};

pub use error::{BoxError, ErrorKind, PartRef, SpeechError};
pub use espeak::{
    ESPEAK_DEFAULT_RATE_WPM, ESPEAK_DEFAULT_VOICE, ESPEAK_MAX_RATE_WPM, ESPEAK_MIN_RATE_WPM,
    EspeakSpeech,
};
pub use join::join_marks;
pub use marks::MAX_TEXT_CHARS;
pub use mp3::{MP3_UNTAGGED_DELAY_SAMPLES, decode_mp3};
pub use polly::{
    POLLY_DEFAULT_VOICE, POLLY_MAX_ATTEMPTS, POLLY_MAX_PART_CHARS, POLLY_MAX_RATE_PERCENT,
    POLLY_MIN_RATE_PERCENT, POLLY_NOMINAL_RATE_WPM, PollySpeech,
};
pub use split::{TextPart, split_text};

/// Synthesised narration: the audio and its speech marks.
#[derive(Clone, PartialEq)]
pub struct Narration {
    /// Mono audio at the engine's rate (22,050 Hz for [`EspeakSpeech`]; 22,050 or 24,000 Hz for
    /// [`PollySpeech`]).
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

/// One voice an engine offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voice {
    /// Human-readable name, e.g. `English_(America)` or `Joanna`.
    pub name: String,
    /// The engine's identifier, e.g. `gmw/en-US` or `Joanna`.
    pub identifier: String,
    /// Languages the voice speaks, most preferred first, e.g. `["en-us", "en"]` or `["en-US"]`.
    pub languages: Vec<String>,
    /// Engines that can speak with the voice: `["espeak"]`, or Polly's (`standard`, `neural`,
    /// `long-form`, `generative`).
    pub engines: Vec<String>,
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

/// An Amazon Polly engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PollyEngine {
    /// Concatenative voices, 22,050 Hz MP3.
    Standard,
    /// Neural voices, 24,000 Hz MP3.
    Neural,
    /// Long-form voices, 24,000 Hz MP3.
    LongForm,
    /// Generative voices, 24,000 Hz MP3.
    Generative,
}

impl PollyEngine {
    /// Polly's name for the engine: `standard`, `neural`, `long-form`, `generative`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Neural => "neural",
            Self::LongForm => "long-form",
            Self::Generative => "generative",
        }
    }

    /// Every engine, in Polly's order.
    pub const ALL: [PollyEngine; 4] = [
        Self::Standard,
        Self::Neural,
        Self::LongForm,
        Self::Generative,
    ];
}

impl std::fmt::Display for PollyEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for PollyEngine {
    type Err = String;

    /// Parses Polly's engine names (ASCII case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|e| e.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!(
                    "unknown polly engine {s:?} (expected standard, neural, long-form or generative)"
                )
            })
    }
}

/// Which engine speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Engine {
    /// libespeak-ng, locally ([`EspeakSpeech`]).
    Espeak,
    /// Amazon Polly with one of its engines ([`PollySpeech`]).
    Polly(PollyEngine),
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Espeak => f.write_str("espeak"),
            Self::Polly(e) => write!(f, "polly {e}"),
        }
    }
}

/// Who speaks and how: everything besides the text that decides the narration (with the text,
/// the narration cache key).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VoiceSpec {
    /// The engine.
    pub engine: Engine,
    /// The voice: an espeak name, identifier or language (`en-us`, `en-gb+f3`), or a Polly voice
    /// id (`Joanna`, matched ASCII case-insensitively).
    pub voice: String,
    /// Speaking rate in words per minute; `None` for the engine's default. Polly takes it as a
    /// percentage of [`POLLY_NOMINAL_RATE_WPM`] through SSML `<prosody rate>`.
    pub rate_wpm: Option<u32>,
    /// Language for bilingual Polly voices (Polly's `LanguageCode`, e.g. `en-IN`); espeak
    /// ignores it (its voice names a language).
    pub language: Option<String>,
}

impl VoiceSpec {
    /// espeak-ng with `voice` at its default rate.
    pub fn espeak(voice: impl Into<String>) -> Self {
        Self {
            engine: Engine::Espeak,
            voice: voice.into(),
            rate_wpm: None,
            language: None,
        }
    }

    /// Polly's `engine` with voice id `voice` at its default rate.
    pub fn polly(engine: PollyEngine, voice: impl Into<String>) -> Self {
        Self {
            engine: Engine::Polly(engine),
            voice: voice.into(),
            rate_wpm: None,
            language: None,
        }
    }
}

/// One part's audio: which text it speaks and how long it decoded to.
///
/// Serialisable: the `speech` step returns these so the `marks` branch can be placed on the
/// joined audio's timeline ([`join_marks`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AudioPart {
    /// Byte offset of the part in the text.
    pub text_start: usize,
    /// End of the part in the text (exclusive).
    pub text_end: usize,
    /// Decoded samples of the part, as joined into [`SpokenAudio::pcm`] (after removing MP3
    /// delay, see [`decode_mp3`]).
    pub samples: u64,
    /// Sample rate of those samples in Hz.
    pub sample_rate: u32,
}

impl AudioPart {
    /// Duration of the part in milliseconds.
    pub fn duration_ms(&self) -> f64 {
        if self.sample_rate == 0 {
            return 0.0;
        }
        self.samples as f64 * 1000.0 / f64::from(self.sample_rate)
    }
}

/// The narration audio: all parts joined, and where each part lies.
#[derive(Clone, PartialEq)]
pub struct SpokenAudio {
    /// The parts' decoded audio, concatenated in text order.
    pub pcm: storyreel_audio::Pcm,
    /// One entry per part, in order; their `samples` add up to `pcm.len()`.
    pub parts: Vec<AudioPart>,
}

impl std::fmt::Debug for SpokenAudio {
    // Summarises the samples: a derived Debug would print every one of them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpokenAudio")
            .field("sample_rate", &self.pcm.sample_rate)
            .field("samples", &self.pcm.len())
            .field("parts", &self.parts)
            .finish()
    }
}

/// One part's speech marks, as the engine timed them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarksPart {
    /// Byte offset of the part in the text.
    pub text_start: usize,
    /// End of the part in the text (exclusive).
    pub text_end: usize,
    /// Polly-format `word` and `sentence` marks (JSON lines), with times in ms from the start of
    /// the part's audio and byte offsets into the part's text (SSML offsets already mapped back).
    /// Not yet normalised: an engine may give one word several marks, or none.
    pub marks_jsonl: String,
}

/// The speech marks of every part of a text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpokenMarks {
    /// One entry per part, in order.
    pub parts: Vec<MarksPart>,
}

/// Speaks a text to audio: one half of a narration (the `speech` step).
#[async_trait::async_trait]
pub trait SpeechAudio: Send + Sync {
    /// Speaks `text` with `voice`; the audio of every part, joined, with each part's length.
    ///
    /// Errors as [`SpeechError`] says, each with its [`ErrorKind`]; transient failures were
    /// retried with backoff first.
    async fn speak_audio(&self, text: &str, voice: &VoiceSpec) -> Result<SpokenAudio, SpeechError>;
}

/// Times the words of a text: the other half of a narration (the `marks` step).
#[async_trait::async_trait]
pub trait SpeechMarks: Send + Sync {
    /// The speech marks of every part of `text` spoken with `voice`, relative to the part.
    /// Pass them with the audio's [`AudioPart`]s to [`join_marks`].
    async fn speak_marks(&self, text: &str, voice: &VoiceSpec) -> Result<SpokenMarks, SpeechError>;
}

/// Speaks `text` for audio and marks concurrently and joins them: the whole narration in one
/// call (the local CLI). Steps call the halves separately and [`join_marks`] where they meet.
pub async fn narrate(
    audio: &dyn SpeechAudio,
    marks: &dyn SpeechMarks,
    text: &str,
    voice: &VoiceSpec,
) -> Result<Narration, SpeechError> {
    let (spoken, timed) = futures_util::future::try_join(
        audio.speak_audio(text, voice),
        marks.speak_marks(text, voice),
    )
    .await?;
    let marks_jsonl = join_marks(text, &timed, &spoken.parts)?;
    Ok(Narration {
        pcm: spoken.pcm,
        marks_jsonl,
    })
}
