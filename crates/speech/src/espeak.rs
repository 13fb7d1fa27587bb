//! [`EspeakSpeech`]: the local narration engine, libespeak-ng driven through its C API.
//!
//! libespeak-ng is one process-global engine (global voice, parameters and callback), so every
//! call goes through [`ENGINE`], a mutex that also initialises it once. Synthesis runs in
//! `AUDIO_OUTPUT_SYNCHRONOUS` mode: `espeak_Synth` calls [`on_synth`] on the calling thread with
//! blocks of 16-bit samples and event lists, which it appends to [`COLLECTOR`], and returns when
//! the text has been spoken.

use std::ffi::{CStr, CString, c_char, c_int, c_short};
use std::ptr;
use std::sync::{Mutex, MutexGuard, PoisonError};

use storyreel_audio::{MAX_DURATION_SECS, Pcm};

use crate::ffi;
use crate::marks::{self, EngineEvent};
use crate::{
    AudioPart, MAX_TEXT_CHARS, MarksPart, Narration, SpeechAudio, SpeechError, SpeechMarks,
    SpeechSynth, SpokenAudio, SpokenMarks, Voice, VoiceSpec,
};

/// Slowest rate libespeak-ng accepts (`espeakRATE_MINIMUM`), in words per minute.
pub const ESPEAK_MIN_RATE_WPM: u32 = 80;
/// Fastest rate libespeak-ng accepts (`espeakRATE_MAXIMUM`), in words per minute.
pub const ESPEAK_MAX_RATE_WPM: u32 = 450;
/// libespeak-ng's default rate (`espeakRATE_NORMAL`), in words per minute.
pub const ESPEAK_DEFAULT_RATE_WPM: u32 = 175;
/// libespeak-ng's default English voice.
pub const ESPEAK_DEFAULT_VOICE: &str = "en-us";

/// How many voice names an unknown-voice error lists.
const VOICE_EXAMPLES: usize = 20;
/// Most events read from one callback's list: a guard against a list that is never terminated.
const MAX_EVENTS_PER_CALLBACK: usize = 100_000;

/// The initialised engine, or why initialisation failed (kept so later calls fail the same way
/// instead of retrying a half-initialised library).
static ENGINE: Mutex<Option<Result<Engine, String>>> = Mutex::new(None);

/// The last narration synthesised through [`SpeechAudio`] or [`SpeechMarks`], kept for the
/// other half: the `speech` and `marks` steps of one run ask for the same text, and espeak is
/// CPU-bound, so the second one takes it instead of synthesising again (see [`speak_once`]).
static LAST: Mutex<Option<LastNarration>> = Mutex::new(None);

struct LastNarration {
    text: String,
    voice: String,
    rate_wpm: u32,
    narration: Narration,
}

/// What the callback has received for the synthesis in progress.
static COLLECTOR: Mutex<Collector> = Mutex::new(Collector::idle());

struct Engine {
    /// libespeak-ng's entry points (loaded at run time).
    api: &'static ffi::Api,
    sample_rate: u32,
    voices: Vec<Voice>,
    /// Per voice, the priority of each of its languages (lower is preferred).
    priorities: Vec<Vec<u8>>,
}

struct Collector {
    /// False outside a synthesis: a stray callback then aborts instead of collecting.
    active: bool,
    samples: Vec<i16>,
    events: Vec<EngineEvent>,
    max_samples: usize,
    overflow: bool,
}

impl Collector {
    const fn idle() -> Self {
        Self {
            active: false,
            samples: Vec::new(),
            events: Vec::new(),
            max_samples: 0,
            overflow: false,
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded state is rebuilt at the start of every synthesis, so a poisoned lock (a panic
    // elsewhere while holding it) leaves nothing inconsistent behind.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The libespeak-ng speech synthesiser: 22,050 Hz mono narration with word timings taken from
/// the engine's own word events.
///
/// Stateless: all instances share the one process-wide engine, and calls from several threads
/// are serialised.
#[derive(Debug, Clone, Copy, Default)]
pub struct EspeakSpeech;

impl EspeakSpeech {
    /// A handle to the shared engine; the engine itself starts on first use.
    pub fn new() -> Self {
        Self
    }

    /// Sample rate of the engine's audio in Hz (22,050 for libespeak-ng's own voices).
    pub fn sample_rate(&self) -> Result<u32, SpeechError> {
        let mut guard = lock(&ENGINE);
        Ok(engine(&mut guard)?.sample_rate)
    }
}

/// Initialises libespeak-ng on first call; returns the engine or the remembered failure.
fn engine(slot: &mut Option<Result<Engine, String>>) -> Result<&Engine, SpeechError> {
    let state = slot.get_or_insert_with(init_engine);
    state.as_ref().map_err(|reason| SpeechError::Init {
        reason: reason.clone(),
    })
}

fn init_engine() -> Result<Engine, String> {
    let api = ffi::api()?;
    // SAFETY: called once, under ENGINE's lock; a null path selects the installed data, and
    // DONT_EXIT makes missing data an error return instead of a process exit.
    let rate = unsafe {
        (api.initialize)(
            ffi::AUDIO_OUTPUT_SYNCHRONOUS,
            0,
            ptr::null(),
            ffi::INITIALIZE_DONT_EXIT,
        )
    };
    let sample_rate = u32::try_from(rate)
        .ok()
        .filter(|r| *r > 0)
        .ok_or_else(|| format!("espeak_Initialize returned {rate} (expected a sample rate > 0; is espeak-ng-data installed?)"))?;
    // SAFETY: on_synth matches t_espeak_callback and never unwinds.
    unsafe { (api.set_synth_callback)(Some(on_synth)) };
    let (voices, priorities) = list_voices(api);
    if voices.is_empty() {
        return Err("no voices installed (expected espeak-ng-data)".to_owned());
    }
    Ok(Engine {
        api,
        sample_rate,
        voices,
        priorities,
    })
}

/// Copies libespeak-ng's voice table (which the next `espeak_ListVoices` call overwrites), with
/// the priority of each voice's languages.
fn list_voices(api: &ffi::Api) -> (Vec<Voice>, Vec<Vec<u8>>) {
    let mut voices = Vec::new();
    let mut priorities = Vec::new();
    // SAFETY: called under ENGINE's lock after initialisation; the result is a null-terminated
    // array of pointers to voices whose strings are NUL-terminated, and `languages` is a list of
    // (priority byte, NUL-terminated string) pairs ended by a zero priority byte.
    unsafe {
        let list = (api.list_voices)(ptr::null_mut());
        if list.is_null() {
            return (voices, priorities);
        }
        let mut i = 0;
        while !(*list.add(i)).is_null() {
            let v = &**list.add(i);
            i += 1;
            let mut languages = Vec::new();
            let mut priority = Vec::new();
            let mut p = v.languages;
            while !p.is_null() && *p != 0 {
                priority.push(*p as u8);
                p = p.add(1);
                let lang = CStr::from_ptr(p);
                languages.push(lang.to_string_lossy().into_owned());
                p = p.add(lang.to_bytes().len() + 1);
            }
            voices.push(Voice {
                name: c_string(v.name),
                identifier: c_string(v.identifier),
                languages,
                engines: vec!["espeak".to_owned()],
            });
            priorities.push(priority);
        }
    }
    (voices, priorities)
}

/// # Safety
/// `p` is null or points to a NUL-terminated string.
unsafe fn c_string(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        // SAFETY: per the contract above.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

/// libespeak-ng's synthesis callback: stores samples and word/sentence events in [`COLLECTOR`].
/// Returns 1 (abort) when no synthesis is in progress or the audio reaches its cap.
unsafe extern "C" fn on_synth(
    wav: *mut c_short,
    numsamples: c_int,
    events: *mut ffi::EspeakEvent,
) -> c_int {
    let mut c = lock(&COLLECTOR);
    if !c.active {
        return 1;
    }
    if !events.is_null() {
        for i in 0..MAX_EVENTS_PER_CALLBACK {
            // SAFETY: the list is terminated by an event of type LIST_TERMINATED.
            let ev = unsafe { &*events.add(i) };
            match ev.kind {
                ffi::EVENT_LIST_TERMINATED => break,
                ffi::EVENT_WORD | ffi::EVENT_SENTENCE => c.events.push(EngineEvent {
                    sentence: ev.kind == ffi::EVENT_SENTENCE,
                    char_position: ev.text_position,
                    time_ms: ev.audio_position,
                }),
                _ => {}
            }
        }
    }
    if let Ok(n) = usize::try_from(numsamples)
        && n > 0
        && !wav.is_null()
    {
        if c.samples.len().saturating_add(n) > c.max_samples {
            c.overflow = true;
            return 1;
        }
        // SAFETY: libespeak-ng passes `numsamples` valid samples at `wav`.
        let block = unsafe { std::slice::from_raw_parts(wav, n) };
        c.samples.extend_from_slice(block);
    }
    0
}

impl SpeechSynth for EspeakSpeech {
    fn synthesize(&self, text: &str, voice: &str, rate_wpm: u32) -> Result<Narration, SpeechError> {
        let words = marks::check_text(text, MAX_TEXT_CHARS)?;
        if !(ESPEAK_MIN_RATE_WPM..=ESPEAK_MAX_RATE_WPM).contains(&rate_wpm) {
            return Err(SpeechError::Rate {
                rate: rate_wpm,
                min: ESPEAK_MIN_RATE_WPM,
                max: ESPEAK_MAX_RATE_WPM,
            });
        }
        let c_text = CString::new(text).map_err(|e| SpeechError::NulInText {
            offset: e.nul_position(),
        })?;

        let mut guard = lock(&ENGINE);
        let engine = engine(&mut guard)?;
        select_voice(engine, voice)?;
        // In range, checked above.
        let rate = rate_wpm as c_int;
        // SAFETY: engine initialised; ENGINE's lock is held.
        let status = unsafe { (engine.api.set_parameter)(ffi::PARAM_RATE, rate, 0) };
        if status != ffi::EE_OK {
            return Err(SpeechError::Engine {
                reason: format!("espeak_SetParameter(rate, {rate_wpm}) returned {status}"),
            });
        }

        let sample_rate = engine.sample_rate;
        let api = engine.api;
        let max_samples = (engine.sample_rate as usize).saturating_mul(MAX_DURATION_SECS as usize);
        {
            let mut c = lock(&COLLECTOR);
            *c = Collector::idle();
            c.active = true;
            c.max_samples = max_samples;
        }
        // SAFETY: c_text is NUL-terminated and outlives the (synchronous) call; the callback is
        // installed; ENGINE's lock serialises all use of the engine.
        let status = unsafe {
            let status = (api.synth)(
                c_text.as_ptr().cast(),
                c_text.as_bytes_with_nul().len(),
                0,
                ffi::POS_CHARACTER,
                0,
                ffi::CHARS_UTF8 | ffi::ENDPAUSE,
                ptr::null_mut(),
                ptr::null_mut(),
            );
            (api.synchronize)();
            status
        };
        let collected = std::mem::replace(&mut *lock(&COLLECTOR), Collector::idle());
        drop(guard);

        if collected.overflow {
            return Err(SpeechError::AudioTooLong {
                max_secs: MAX_DURATION_SECS,
            });
        }
        if status != ffi::EE_OK {
            return Err(SpeechError::Engine {
                reason: format!("espeak_Synth returned {status}"),
            });
        }
        if collected.samples.is_empty() {
            return Err(SpeechError::NoAudio { words });
        }
        let pcm = Pcm::new(
            sample_rate,
            collected
                .samples
                .iter()
                .map(|&s| f32::from(s) / 32768.0)
                .collect(),
        );
        let duration_ms = pcm.duration_ms();
        let marks_jsonl = marks::speech_marks(text, &collected.events, duration_ms)?;
        Ok(Narration { pcm, marks_jsonl })
    }

    fn voices(&self) -> Result<Vec<Voice>, SpeechError> {
        let mut guard = lock(&ENGINE);
        Ok(engine(&mut guard)?.voices.clone())
    }
}

/// Resolves `voice` among the installed voices, then makes it the engine's voice.
///
/// Accepted, ASCII case-insensitively: a voice's name, identifier (or its last path component)
/// or one of its languages (the voice that prefers the language most wins, as in `espeak-ng -v`),
/// optionally followed by `+variant` (e.g. `en-gb+f3`). `espeak_SetVoiceByName` alone matches
/// only names and files, so it is given the resolved identifier.
fn select_voice(engine: &Engine, voice: &str) -> Result<(), SpeechError> {
    let (base, variant) = voice.split_at(voice.find('+').unwrap_or(voice.len()));
    let best = engine
        .voices
        .iter()
        .zip(&engine.priorities)
        .filter_map(|(v, priority)| {
            let file = v.identifier.rsplit('/').next().unwrap_or(&v.identifier);
            if [v.name.as_str(), v.identifier.as_str(), file]
                .iter()
                .any(|n| n.eq_ignore_ascii_case(base))
            {
                return Some((0, v));
            }
            v.languages
                .iter()
                .zip(priority)
                .filter(|(l, _)| l.eq_ignore_ascii_case(base))
                .map(|(_, p)| (1 + u32::from(*p), v))
                .min_by_key(|(score, _)| *score)
        })
        .min_by_key(|(score, _)| *score);
    let status = match best.map(|(_, v)| CString::new(format!("{}{variant}", v.identifier))) {
        // SAFETY: engine initialised; ENGINE's lock is held by the caller.
        Some(Ok(name)) if !base.is_empty() => unsafe {
            (engine.api.set_voice_by_name)(name.as_ptr())
        },
        _ => -1,
    };
    if status == ffi::EE_OK {
        return Ok(());
    }
    let mut names: Vec<&str> = engine
        .voices
        .iter()
        .filter_map(|v| v.languages.first().map(String::as_str))
        .collect();
    names.sort_unstable();
    names.dedup();
    let examples = names
        .iter()
        .take(VOICE_EXAMPLES)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    Err(SpeechError::UnknownVoice {
        voice: voice.chars().take(100).collect(),
        count: names.len(),
        examples,
        more: if names.len() > VOICE_EXAMPLES {
            ", …"
        } else {
            ""
        },
    })
}

/// Synthesises `text` for one half of a narration (audio or marks), reusing the other half's
/// synthesis when it just happened.
///
/// A narration is computed once per pair of calls with the same text, voice and rate: the first
/// call synthesises and keeps a copy in [`LAST`], the second takes the copy (and frees it). Both
/// halves then come from the same synthesis, so the marks fit the audio exactly. The lock is
/// held during synthesis, which the engine serialises anyway.
fn speak_once(text: &str, voice: &str, rate_wpm: u32) -> Result<Narration, SpeechError> {
    let mut last = lock(&LAST);
    if let Some(hit) =
        last.take_if(|l| l.text == text && l.voice == voice && l.rate_wpm == rate_wpm)
    {
        return Ok(hit.narration);
    }
    let narration = EspeakSpeech.synthesize(text, voice, rate_wpm)?;
    *last = Some(LastNarration {
        text: text.to_owned(),
        voice: voice.to_owned(),
        rate_wpm,
        narration: narration.clone(),
    });
    Ok(narration)
}

/// Runs [`speak_once`] on the blocking pool for a voice spec.
async fn speak_blocking(text: &str, spec: &VoiceSpec) -> Result<Narration, SpeechError> {
    if spec.engine != crate::Engine::Espeak {
        return Err(SpeechError::WrongEngine {
            expected: "espeak",
            got: spec.engine.to_string(),
        });
    }
    let text = text.to_owned();
    let voice = spec.voice.clone();
    let rate = spec.rate_wpm.unwrap_or(ESPEAK_DEFAULT_RATE_WPM);
    tokio::task::spawn_blocking(move || speak_once(&text, &voice, rate))
        .await
        .map_err(|source| SpeechError::Task { source })?
}

#[async_trait::async_trait]
impl SpeechAudio for EspeakSpeech {
    /// The whole text as one part, synthesised on the blocking pool (22,050 Hz).
    async fn speak_audio(&self, text: &str, voice: &VoiceSpec) -> Result<SpokenAudio, SpeechError> {
        let narration = speak_blocking(text, voice).await?;
        let part = AudioPart {
            text_start: 0,
            text_end: text.len(),
            samples: narration.pcm.len() as u64,
            sample_rate: narration.pcm.sample_rate,
        };
        Ok(SpokenAudio {
            pcm: narration.pcm,
            parts: vec![part],
        })
    }
}

#[async_trait::async_trait]
impl SpeechMarks for EspeakSpeech {
    /// The whole text as one part: the marks of [`SpeechSynth::synthesize`] (already in the
    /// normal form, which [`crate::join_marks`] keeps).
    async fn speak_marks(&self, text: &str, voice: &VoiceSpec) -> Result<SpokenMarks, SpeechError> {
        let narration = speak_blocking(text, voice).await?;
        Ok(SpokenMarks {
            parts: vec![MarksPart {
                text_start: 0,
                text_end: text.len(),
                marks_jsonl: narration.marks_jsonl,
            }],
        })
    }
}
