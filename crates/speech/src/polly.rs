//! [`PollySpeech`]: narration with Amazon Polly's `SynthesizeSpeech`, split into parts under its
//! per-request limit.
//!
//! Audio and marks are separate calls per part (`OutputFormat` `mp3`, then `json` with
//! `SpeechMarkTypes` `word` and `sentence`), so the `speech` and `marks` steps can run in
//! parallel; [`crate::join_marks`] puts the marks on the joined audio's timeline. Plain text is
//! sent as `TextType` `text`; a speaking rate needs SSML (`<prosody rate="N%">`), and then the
//! text is escaped and Polly's SSML byte offsets are mapped back to the text ([`crate::ssml`]).

use std::time::Duration;

use aws_sdk_polly::Client;
use aws_sdk_polly::config::http::HttpResponse;
use aws_sdk_polly::config::retry::RetryConfig;
use aws_sdk_polly::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_polly::types::{
    Engine as SdkEngine, LanguageCode, OutputFormat, SpeechMarkType, TextType, VoiceId,
};
use futures_util::{StreamExt, TryStreamExt};
use storyreel_audio::{MAX_DURATION_SECS, Pcm};

use crate::error::PartRef;
use crate::join::parse_part;
use crate::marks::{self, MAX_TEXT_CHARS};
use crate::split::{TextPart, split_by_cost, split_text};
use crate::ssml::{SSML_OVERHEAD, Ssml, escaped_len};
use crate::{
    AudioPart, Engine, ErrorKind, MarksPart, PollyEngine, SpeechAudio, SpeechError, SpeechMarks,
    SpokenAudio, SpokenMarks, Voice, VoiceSpec, mp3,
};

/// Most characters in one `SynthesizeSpeech` request: Polly bills at most 3,000 characters per
/// request (of at most 6,000 in all, SSML tags included), for every engine.
pub const POLLY_MAX_PART_CHARS: usize = 3000;
/// The speaking rate Polly's 100 % is taken to be, in words per minute: Polly sets rates as a
/// percentage of each voice's own pace, which is about this for English voices.
pub const POLLY_NOMINAL_RATE_WPM: u32 = 160;
/// Slowest `<prosody rate>` Polly accepts, in percent.
pub const POLLY_MIN_RATE_PERCENT: u32 = 20;
/// Fastest `<prosody rate>` Polly accepts, in percent.
pub const POLLY_MAX_RATE_PERCENT: u32 = 200;
/// Attempts per request (the first plus retries) for throttling, service failures, 5xx,
/// timeouts and lost connections, with exponential backoff and jitter.
pub const POLLY_MAX_ATTEMPTS: u32 = 5;
/// A voice every engine but long-form offers (US English).
pub const POLLY_DEFAULT_VOICE: &str = "Joanna";

/// Requests in flight at once per narration (Polly allows 8 neural requests a second).
const DEFAULT_CONCURRENCY: usize = 4;
/// Most concurrent requests accepted by [`PollySpeech::with_concurrency`].
const MAX_CONCURRENCY: usize = 32;
/// First retry backoff; doubles with each attempt, with jitter, up to 20 s.
const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// How many voice ids an unknown-voice error lists.
const VOICE_EXAMPLES: usize = 30;
/// Most DescribeVoices pages read: a guard against a service that never stops paging.
const MAX_VOICE_PAGES: usize = 100;

/// Amazon Polly narration. Holds a client (the caller decides region, credentials, endpoint and
/// HTTP settings) and caches the voice list after the first request that needs it.
///
/// Each request is retried up to [`POLLY_MAX_ATTEMPTS`] times on throttling, service failures,
/// 5xx answers, timeouts and lost connections (the SDK's standard retry strategy, configured per
/// request so the caller's client config does not change it), then reported as an
/// [`ErrorKind::Retryable`] error.
#[derive(Debug)]
pub struct PollySpeech {
    client: Client,
    concurrency: usize,
    max_part_chars: usize,
    retry: RetryConfig,
    voices: tokio::sync::OnceCell<Vec<Voice>>,
}

/// What every request of one narration shares.
#[derive(Debug, Clone)]
struct Plan {
    engine: PollyEngine,
    voice_id: String,
    language: Option<String>,
    rate_percent: Option<u32>,
    parts: Vec<TextPart>,
}

impl Plan {
    fn sample_rate(&self) -> u32 {
        match self.engine {
            PollyEngine::Standard => 22_050,
            PollyEngine::Neural | PollyEngine::LongForm | PollyEngine::Generative => 24_000,
        }
    }

    fn part_ref(&self, index: usize) -> PartRef {
        let p = self.parts[index];
        PartRef {
            index,
            count: self.parts.len(),
            start: p.start,
            end: p.end,
        }
    }

    /// The request text for a part: the text itself, or SSML with the rate.
    fn request_text(&self, part_text: &str) -> (String, TextType, Option<Ssml>) {
        match self.rate_percent {
            None => (part_text.to_owned(), TextType::Text, None),
            Some(rate) => {
                let ssml = Ssml::with_rate(part_text, rate);
                (ssml.doc.clone(), TextType::Ssml, Some(ssml))
            }
        }
    }
}

impl PollySpeech {
    /// Narration through `client`, with [`POLLY_MAX_ATTEMPTS`] attempts per request, 4 requests
    /// in flight and parts of at most [`POLLY_MAX_PART_CHARS`] characters.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            concurrency: DEFAULT_CONCURRENCY,
            max_part_chars: POLLY_MAX_PART_CHARS,
            retry: RetryConfig::standard()
                .with_max_attempts(POLLY_MAX_ATTEMPTS)
                .with_initial_backoff(INITIAL_BACKOFF),
            voices: tokio::sync::OnceCell::new(),
        }
    }

    /// Sets how many requests of one narration are in flight at once (clamped to 1..=32).
    pub fn with_concurrency(mut self, requests: usize) -> Self {
        self.concurrency = requests.clamp(1, MAX_CONCURRENCY);
        self
    }

    /// Sets the retry policy: `max_attempts` per request (at least 1) and the first backoff.
    pub fn with_retries(mut self, max_attempts: u32, initial_backoff: Duration) -> Self {
        self.retry = RetryConfig::standard()
            .with_max_attempts(max_attempts.max(1))
            .with_initial_backoff(initial_backoff);
        self
    }

    /// Sets the largest part in characters (clamped to 100..=[`POLLY_MAX_PART_CHARS`]); smaller
    /// parts mean more, shorter requests.
    pub fn with_max_part_chars(mut self, chars: usize) -> Self {
        self.max_part_chars = chars.clamp(100, POLLY_MAX_PART_CHARS);
        self
    }

    /// The parts `text` is sent in for `voice`: [`split_text`] at the part size, or, when the
    /// rate needs SSML, at the part size less the SSML wrapper counting escaped characters at
    /// their escaped length.
    pub fn parts(&self, text: &str, voice: &VoiceSpec) -> Vec<TextPart> {
        if voice.rate_wpm.is_some() {
            split_by_cost(
                text,
                self.max_part_chars.saturating_sub(SSML_OVERHEAD),
                escaped_len,
            )
        } else {
            split_text(text, self.max_part_chars)
        }
    }

    /// Polly's voices (DescribeVoices, every page, additional languages included), those that
    /// support `engine` when given. Identifiers are Polly voice ids (`Joanna`); `languages` has
    /// the voice's language first.
    pub async fn voices(&self, engine: Option<PollyEngine>) -> Result<Vec<Voice>, SpeechError> {
        let all = self.all_voices().await?;
        Ok(all
            .iter()
            .filter(|v| engine.is_none_or(|e| v.engines.iter().any(|x| x == e.as_str())))
            .cloned()
            .collect())
    }

    async fn all_voices(&self) -> Result<&Vec<Voice>, SpeechError> {
        self.voices
            .get_or_try_init(|| async {
                let mut voices = Vec::new();
                let mut token: Option<String> = None;
                for _ in 0..MAX_VOICE_PAGES {
                    let page = self
                        .client
                        .describe_voices()
                        .include_additional_language_codes(true)
                        .set_next_token(token.take())
                        .customize()
                        .config_override(self.config_override())
                        .send()
                        .await
                        .map_err(|e| polly_error("describe-voices", None, e))?;
                    voices.extend(page.voices().iter().map(|v| {
                        Voice {
                            name: v.name().unwrap_or_default().to_owned(),
                            identifier: v.id().map(|id| id.as_str().to_owned()).unwrap_or_default(),
                            languages: v
                                .language_code()
                                .into_iter()
                                .chain(v.additional_language_codes())
                                .map(|l| l.as_str().to_owned())
                                .collect(),
                            engines: v
                                .supported_engines()
                                .iter()
                                .map(|e| e.as_str().to_owned())
                                .collect(),
                        }
                    }));
                    token = page
                        .next_token()
                        .filter(|t| !t.is_empty())
                        .map(str::to_owned);
                    if token.is_none() {
                        break;
                    }
                }
                voices.sort_by(|a, b| a.identifier.cmp(&b.identifier));
                Ok(voices)
            })
            .await
    }

    fn config_override(&self) -> aws_sdk_polly::config::Builder {
        aws_sdk_polly::config::Builder::default().retry_config(self.retry.clone())
    }

    /// Checks the text and the voice spec before any synthesis request; splits the text.
    async fn plan(&self, text: &str, spec: &VoiceSpec) -> Result<Plan, SpeechError> {
        let Engine::Polly(engine) = spec.engine else {
            return Err(SpeechError::WrongEngine {
                expected: "polly",
                got: spec.engine.to_string(),
            });
        };
        let words = marks::check_text(text, MAX_TEXT_CHARS)?;
        if !text.chars().any(char::is_alphanumeric) {
            return Err(SpeechError::NothingToSay { words });
        }
        let rate_percent = spec.rate_wpm.map(rate_percent).transpose()?;
        let voice = self.check_voice(spec, engine).await?;
        Ok(Plan {
            engine,
            voice_id: voice.identifier.clone(),
            language: spec.language.clone(),
            rate_percent,
            parts: self.parts(text, spec),
        })
    }

    /// The voice named by `spec` (ASCII case-insensitive id), if it speaks `engine` and the
    /// requested language.
    async fn check_voice(
        &self,
        spec: &VoiceSpec,
        engine: PollyEngine,
    ) -> Result<Voice, SpeechError> {
        let voices = self.all_voices().await?;
        let Some(voice) = voices
            .iter()
            .find(|v| v.identifier.eq_ignore_ascii_case(&spec.voice))
        else {
            let valid: Vec<&str> = voices
                .iter()
                .filter(|v| v.engines.iter().any(|e| e == engine.as_str()))
                .map(|v| v.identifier.as_str())
                .collect();
            return Err(SpeechError::UnknownVoice {
                voice: spec.voice.chars().take(100).collect(),
                count: valid.len(),
                examples: valid
                    .iter()
                    .take(VOICE_EXAMPLES)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", "),
                more: if valid.len() > VOICE_EXAMPLES {
                    ", …"
                } else {
                    ""
                },
            });
        };
        if !voice.engines.iter().any(|e| e == engine.as_str()) {
            return Err(SpeechError::EngineNotSupported {
                voice: voice.identifier.clone(),
                engine: engine.to_string(),
                supported: voice.engines.join(", "),
            });
        }
        if let Some(language) = &spec.language
            && !voice
                .languages
                .iter()
                .any(|l| l.eq_ignore_ascii_case(language))
        {
            return Err(SpeechError::Language {
                voice: voice.identifier.clone(),
                language: language.chars().take(100).collect(),
                supported: voice.languages.join(", "),
            });
        }
        Ok(voice.clone())
    }

    /// Synthesises one part's MP3 and decodes it (MP3 delay removed, see [`mp3::decode_mp3`]).
    async fn audio_part(&self, plan: &Plan, text: &str, index: usize) -> Result<Pcm, SpeechError> {
        let part = plan.part_ref(index);
        let (body, text_type, _) = plan.request_text(&text[part.start..part.end]);
        let rate = plan.sample_rate();
        let out = self
            .client
            .synthesize_speech()
            .engine(sdk_engine(plan.engine))
            .voice_id(VoiceId::from(plan.voice_id.as_str()))
            .set_language_code(plan.language.as_deref().map(LanguageCode::from))
            .output_format(OutputFormat::Mp3)
            .sample_rate(rate.to_string())
            .text_type(text_type)
            .text(body)
            .customize()
            .config_override(self.config_override())
            .send()
            .await
            .map_err(|e| polly_error("synthesize-speech", Some(part), e))?;
        let bytes = out
            .audio_stream
            .collect()
            .await
            .map_err(|e| stream_error(part, e))?
            .into_bytes();
        let pcm = tokio::task::spawn_blocking(move || mp3::decode_mp3(&bytes))
            .await
            .map_err(|source| SpeechError::Task { source })?
            .map_err(|source| SpeechError::Decode { part, source })?;
        if pcm.sample_rate != rate {
            return Err(SpeechError::Engine {
                reason: format!(
                    "polly audio for {part} is at {} Hz (expected {rate} Hz as requested)",
                    pcm.sample_rate
                ),
            });
        }
        Ok(pcm)
    }

    /// Requests one part's word and sentence marks; returns them relative to the part's text.
    async fn marks_part(
        &self,
        plan: &Plan,
        text: &str,
        index: usize,
    ) -> Result<MarksPart, SpeechError> {
        let part = plan.part_ref(index);
        let part_text = &text[part.start..part.end];
        let (body, text_type, ssml) = plan.request_text(part_text);
        let out = self
            .client
            .synthesize_speech()
            .engine(sdk_engine(plan.engine))
            .voice_id(VoiceId::from(plan.voice_id.as_str()))
            .set_language_code(plan.language.as_deref().map(LanguageCode::from))
            .output_format(OutputFormat::Json)
            .speech_mark_types(SpeechMarkType::Word)
            .speech_mark_types(SpeechMarkType::Sentence)
            .text_type(text_type)
            .text(body.clone())
            .customize()
            .config_override(self.config_override())
            .send()
            .await
            .map_err(|e| polly_error("synthesize-speech", Some(part), e))?;
        let bytes = out
            .audio_stream
            .collect()
            .await
            .map_err(|e| stream_error(part, e))?
            .into_bytes();
        let jsonl = std::str::from_utf8(&bytes).map_err(|e| SpeechError::BadMarks {
            part,
            line: 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count(),
            reason: format!("not utf-8 at byte {}", e.valid_up_to()),
            source: None,
        })?;
        let marks = parse_part(jsonl, body.len(), part)?;
        let mut out = String::with_capacity(jsonl.len());
        for m in marks {
            let range = match &ssml {
                Some(ssml) => ssml.to_text_range(m.start, m.end),
                None => Some((m.start, m.end)),
            };
            // A mark on markup only (an SSML tag) has no word of the text.
            let Some((start, end)) = range else { continue };
            let kind = if m.sentence { "sentence" } else { "word" };
            marks::push_mark(&mut out, m.time, kind, part_text, start, end);
        }
        Ok(MarksPart {
            text_start: part.start,
            text_end: part.end,
            marks_jsonl: out,
        })
    }
}

/// Converts words per minute to Polly's `<prosody rate>` percentage, checking Polly's range.
fn rate_percent(wpm: u32) -> Result<u32, SpeechError> {
    let nominal = u64::from(POLLY_NOMINAL_RATE_WPM);
    let percent = (u64::from(wpm) * 100 + nominal / 2) / nominal;
    if (u64::from(POLLY_MIN_RATE_PERCENT)..=u64::from(POLLY_MAX_RATE_PERCENT)).contains(&percent) {
        // In range, so it fits.
        Ok(percent as u32)
    } else {
        Err(SpeechError::Rate {
            rate: wpm,
            min: (POLLY_MIN_RATE_PERCENT * POLLY_NOMINAL_RATE_WPM).div_ceil(100),
            max: POLLY_MAX_RATE_PERCENT * POLLY_NOMINAL_RATE_WPM / 100,
        })
    }
}

fn sdk_engine(engine: PollyEngine) -> SdkEngine {
    match engine {
        PollyEngine::Standard => SdkEngine::Standard,
        PollyEngine::Neural => SdkEngine::Neural,
        PollyEngine::LongForm => SdkEngine::LongForm,
        PollyEngine::Generative => SdkEngine::Generative,
    }
}

/// Polly error codes for a request that can never succeed as it is.
const INVALID_INPUT_CODES: &[&str] = &[
    "TextLengthExceededException",
    "InvalidSsmlException",
    "LexiconNotFoundException",
    "EngineNotSupportedException",
    "InvalidSampleRateException",
    "LanguageNotSupportedException",
    "MarksNotSupportedForFormatException",
    "SsmlMarksNotSupportedForTextTypeException",
    "ValidationException",
    "InvalidNextTokenException",
];

/// Polly error codes for transient conditions (besides any 5xx status).
const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "ServiceFailureException",
    "TooManyRequestsException",
    "RequestTimeout",
    "RequestTimeoutException",
    "ServiceUnavailable",
];

/// Classifies an SDK error (after the SDK's retries) and keeps it as the source.
fn polly_error<E>(
    operation: &'static str,
    part: Option<PartRef>,
    err: SdkError<E, HttpResponse>,
) -> SpeechError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let (code, message, kind) = match &err {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service
                .err()
                .code()
                .map_or_else(|| format!("HTTP {status}"), str::to_owned);
            let message = service.err().message().unwrap_or("no message").to_owned();
            let kind = if RETRYABLE_CODES.contains(&code.as_str()) || status >= 500 || status == 429
            {
                ErrorKind::Retryable
            } else if INVALID_INPUT_CODES.contains(&code.as_str()) {
                ErrorKind::InvalidInput
            } else {
                ErrorKind::Fatal
            };
            (code, message, kind)
        }
        SdkError::TimeoutError(_) => (
            "timeout".to_owned(),
            "the request timed out".to_owned(),
            ErrorKind::Retryable,
        ),
        SdkError::DispatchFailure(failure) => {
            let kind = if failure.is_user() {
                ErrorKind::Fatal
            } else {
                ErrorKind::Retryable
            };
            (
                "dispatch failure".to_owned(),
                "the request could not be sent".to_owned(),
                kind,
            )
        }
        SdkError::ResponseError(response) => (
            format!("HTTP {}", response.raw().status().as_u16()),
            "the response could not be read".to_owned(),
            ErrorKind::Retryable,
        ),
        SdkError::ConstructionFailure(_) => (
            "construction failure".to_owned(),
            "the request could not be built".to_owned(),
            ErrorKind::Fatal,
        ),
        _ => (
            "unknown".to_owned(),
            "unknown sdk error".to_owned(),
            ErrorKind::Fatal,
        ),
    };
    SpeechError::Polly {
        operation,
        part,
        code,
        message,
        kind,
        source: Box::new(err),
    }
}

/// The response body broke off after a successful status: a transient network failure.
fn stream_error(part: PartRef, err: aws_sdk_polly::primitives::ByteStreamError) -> SpeechError {
    SpeechError::Polly {
        operation: "synthesize-speech",
        part: Some(part),
        code: "stream".to_owned(),
        message: "the response body could not be read".to_owned(),
        kind: ErrorKind::Retryable,
        source: Box::new(err),
    }
}

#[async_trait::async_trait]
impl SpeechAudio for PollySpeech {
    /// One MP3 request per part, [`PollySpeech::with_concurrency`] at a time; the decoded parts
    /// are joined in order (22,050 Hz for the standard engine, else 24,000 Hz).
    async fn speak_audio(&self, text: &str, voice: &VoiceSpec) -> Result<SpokenAudio, SpeechError> {
        let plan = self.plan(text, voice).await?;
        let pcms: Vec<Pcm> = futures_util::stream::iter(0..plan.parts.len())
            .map(|i| self.audio_part(&plan, text, i))
            .buffered(self.concurrency)
            .try_collect()
            .await?;
        let rate = plan.sample_rate();
        let total: usize = pcms.iter().map(Pcm::len).sum();
        if total > rate as usize * MAX_DURATION_SECS as usize {
            return Err(SpeechError::AudioTooLong {
                max_secs: MAX_DURATION_SECS,
            });
        }
        let mut samples = Vec::with_capacity(total);
        let mut parts = Vec::with_capacity(pcms.len());
        for (p, pcm) in plan.parts.iter().zip(pcms) {
            parts.push(AudioPart {
                text_start: p.start,
                text_end: p.end,
                samples: pcm.len() as u64,
                sample_rate: rate,
            });
            samples.extend_from_slice(&pcm.samples);
        }
        Ok(SpokenAudio {
            pcm: Pcm::new(rate, samples),
            parts,
        })
    }
}

#[async_trait::async_trait]
impl SpeechMarks for PollySpeech {
    /// One speech-marks request per part, [`PollySpeech::with_concurrency`] at a time.
    async fn speak_marks(&self, text: &str, voice: &VoiceSpec) -> Result<SpokenMarks, SpeechError> {
        let plan = self.plan(text, voice).await?;
        let parts = futures_util::stream::iter(0..plan.parts.len())
            .map(|i| self.marks_part(&plan, text, i))
            .buffered(self.concurrency)
            .try_collect()
            .await?;
        Ok(SpokenMarks { parts })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_map_to_polly_percentages() {
        assert_eq!(rate_percent(160).unwrap(), 100);
        assert_eq!(rate_percent(200).unwrap(), 125);
        assert_eq!(rate_percent(32).unwrap(), 20);
        assert_eq!(rate_percent(320).unwrap(), 200);
        assert_eq!(
            rate_percent(400).unwrap_err().to_string(),
            "invalid speaking rate 400 words per minute (expected 32 ..= 320)"
        );
        assert!(rate_percent(31).is_err());
        assert!(rate_percent(0).is_err());
    }
}
