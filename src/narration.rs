//! Narration glue for the steps: which engine speaks a job, the cache key, and the text.

use std::sync::Arc;

use storyreel_speech::{SpeechAudio, SpeechMarks, VoiceSpec};

use crate::steps::{ErrorName, Job, StepError, VoiceOptions};
use crate::store::BlobStore;

/// The engines a runner has: espeak-ng always, Polly when AWS is configured.
#[derive(Clone)]
pub struct Narrators {
    espeak: Arc<storyreel_speech::EspeakSpeech>,
    polly: Option<Arc<storyreel_speech::PollySpeech>>,
}

impl Default for Narrators {
    fn default() -> Self {
        Self::local()
    }
}

impl Narrators {
    /// espeak-ng only.
    pub fn local() -> Self {
        Narrators {
            espeak: Arc::new(storyreel_speech::EspeakSpeech::new()),
            polly: None,
        }
    }

    /// Adds Amazon Polly.
    pub fn with_polly(mut self, polly: storyreel_speech::PollySpeech) -> Self {
        self.polly = Some(Arc::new(polly));
        self
    }

    /// The engine-level voice for a job's options: `engine` is `espeak`, `polly` (neural) or
    /// `polly-standard`, `polly-neural`, `polly-long-form`, `polly-generative`.
    pub fn spec(&self, v: &VoiceOptions, step: &'static str) -> Result<VoiceSpec, StepError> {
        use storyreel_speech::PollyEngine as P;
        let mut spec = match v.engine.as_str() {
            "espeak" => VoiceSpec::espeak(&v.voice),
            "polly" | "polly-neural" => VoiceSpec::polly(P::Neural, &v.voice),
            "polly-standard" => VoiceSpec::polly(P::Standard, &v.voice),
            "polly-long-form" => VoiceSpec::polly(P::LongForm, &v.voice),
            "polly-generative" => VoiceSpec::polly(P::Generative, &v.voice),
            other => {
                return Err(StepError::invalid(
                    step,
                    format!(
                        "unknown speech engine {other:?} (expected espeak, polly, polly-standard, polly-neural, polly-long-form or polly-generative)"
                    ),
                ));
            }
        };
        spec.rate_wpm = v.rate;
        Ok(spec)
    }

    fn polly(&self, step: &'static str) -> Result<&storyreel_speech::PollySpeech, StepError> {
        self.polly.as_deref().ok_or_else(|| {
            StepError::new(
                step,
                ErrorName::Fatal,
                "Amazon Polly is not configured on this runner (local runs speak with --engine espeak; set AWS credentials and region for Polly)",
                None,
            )
        })
    }

    fn is_polly(spec: &VoiceSpec) -> bool {
        matches!(spec.engine, storyreel_speech::Engine::Polly(_))
    }

    /// The engine that speaks `spec`'s audio.
    pub fn audio(
        &self,
        spec: &VoiceSpec,
        step: &'static str,
    ) -> Result<&dyn SpeechAudio, StepError> {
        if Self::is_polly(spec) {
            Ok(self.polly(step)?)
        } else {
            Ok(self.espeak.as_ref())
        }
    }

    /// The engine that times `spec`'s words.
    pub fn marks(
        &self,
        spec: &VoiceSpec,
        step: &'static str,
    ) -> Result<&dyn SpeechMarks, StepError> {
        if Self::is_polly(spec) {
            Ok(self.polly(step)?)
        } else {
            Ok(self.espeak.as_ref())
        }
    }
}

/// The narration cache key: a hash of (text, engine, voice, rate). A re-render with another
/// caption style or background finds the narration and does not pay for it again.
pub fn cache_key(text: &str, voice: &VoiceOptions) -> String {
    let rate = voice.rate.map(|r| r.to_string()).unwrap_or_default();
    crate::keys::hash(&[
        text.as_bytes(),
        voice.engine.as_bytes(),
        voice.voice.as_bytes(),
        rate.as_bytes(),
    ])
}

/// The job's cleaned story: what is narrated.
pub async fn read_text(
    store: &dyn BlobStore,
    job: &Job,
    step: &'static str,
) -> Result<String, StepError> {
    let bytes = store
        .get(&job.story_key, crate::steps::story::MAX_STORY_BYTES * 2)
        .await
        .map_err(|e| crate::steps::error_store(step, e))?;
    String::from_utf8(bytes).map_err(|e| {
        StepError::wrap(
            step,
            ErrorName::InvalidInput,
            format!("story {:?}", job.story_key),
            e,
        )
    })
}
