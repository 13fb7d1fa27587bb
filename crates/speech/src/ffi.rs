//! Hand-written bindings to the few functions of libespeak-ng's `speak_lib.h` (API revision 12)
//! that [`crate::EspeakSpeech`] uses.
//!
//! Written by hand rather than taken from `espeakng-sys`, whose build script runs bindgen and so
//! needs libclang at build time for eight functions and two structs; and loaded at run time
//! (see [`Api`]) rather than linked.

use std::ffi::{c_char, c_int, c_short, c_uint, c_void};
use std::sync::OnceLock;

/// `espeak_AUDIO_OUTPUT::AUDIO_OUTPUT_SYNCHRONOUS`: samples go to the callback, and
/// `espeak_Synth` returns only when synthesis is complete.
pub const AUDIO_OUTPUT_SYNCHRONOUS: c_int = 2;
/// `espeakINITIALIZE_DONT_EXIT`: fail with -1 instead of calling `exit()` when data is missing.
pub const INITIALIZE_DONT_EXIT: c_int = 0x8000;
/// `espeakCHARS_UTF8`.
pub const CHARS_UTF8: c_uint = 1;
/// `espeakENDPAUSE`: add a sentence pause at the end of the text.
pub const ENDPAUSE: c_uint = 0x1000;
/// `espeak_POSITION_TYPE::POS_CHARACTER`.
pub const POS_CHARACTER: c_int = 1;
/// `espeak_PARAMETER::espeakRATE`, in words per minute.
pub const PARAM_RATE: c_int = 1;
/// `espeak_ERROR::EE_OK`.
pub const EE_OK: c_int = 0;

/// `espeak_EVENT_TYPE` values.
pub const EVENT_LIST_TERMINATED: c_int = 0;
pub const EVENT_WORD: c_int = 1;
pub const EVENT_SENTENCE: c_int = 2;

/// `espeak_EVENT`.
#[repr(C)]
pub struct EspeakEvent {
    pub kind: c_int,
    pub unique_identifier: c_uint,
    /// 1-based character position in the text given to `espeak_Synth`.
    pub text_position: c_int,
    /// Word length in characters (cut at apostrophes, so not used to delimit words).
    pub length: c_int,
    /// Milliseconds from the start of this message's audio.
    pub audio_position: c_int,
    pub sample: c_int,
    pub user_data: *mut c_void,
    /// The `id` union: `int number`, `const char *name`, or `char string[8]`.
    pub id: [u8; 8],
}

/// `espeak_VOICE`.
#[repr(C)]
pub struct EspeakVoice {
    pub name: *const c_char,
    /// Pairs of (priority byte, NUL-terminated language), ended by an extra NUL.
    pub languages: *const c_char,
    pub identifier: *const c_char,
    pub gender: u8,
    pub age: u8,
    pub variant: u8,
    pub xx1: u8,
    pub score: c_int,
    pub spare: *mut c_void,
}

/// `t_espeak_callback`: returns 0 to continue, 1 to abort.
pub type SynthCallback =
    unsafe extern "C" fn(wav: *mut c_short, numsamples: c_int, events: *mut EspeakEvent) -> c_int;

/// The entry points of libespeak-ng, resolved once from the shared library at run time.
///
/// Loaded with `dlopen` rather than linked, so that binaries which never narrate with espeak
/// (the deployed Lambdas, which use Amazon Polly) do not need libespeak-ng, its data or its
/// audio-output dependencies: `readelf -d` of a bootstrap lists glibc's libraries only.
pub struct Api {
    pub initialize: unsafe extern "C" fn(c_int, c_int, *const c_char, c_int) -> c_int,
    pub set_synth_callback: unsafe extern "C" fn(Option<SynthCallback>),
    pub set_voice_by_name: unsafe extern "C" fn(*const c_char) -> c_int,
    pub set_parameter: unsafe extern "C" fn(c_int, c_int, c_int) -> c_int,
    #[allow(clippy::type_complexity)]
    pub synth: unsafe extern "C" fn(
        *const c_void,
        usize,
        c_uint,
        c_int,
        c_uint,
        c_uint,
        *mut c_uint,
        *mut c_void,
    ) -> c_int,
    pub synchronize: unsafe extern "C" fn() -> c_int,
    pub list_voices: unsafe extern "C" fn(*mut EspeakVoice) -> *const *const EspeakVoice,
    /// Keeps the library mapped for as long as the pointers above are used (the process).
    _lib: libloading::Library,
}

/// The shared-library names tried, in order: the runtime package's soname, then the
/// development symlink.
const LIBRARY_NAMES: [&str; 2] = ["libespeak-ng.so.1", "libespeak-ng.so"];

static API: OnceLock<Result<Api, String>> = OnceLock::new();

/// libespeak-ng's entry points, loaded on first call; the failure (library or symbol missing)
/// is remembered and returned as a readable reason.
pub fn api() -> Result<&'static Api, String> {
    API.get_or_init(load).as_ref().map_err(Clone::clone)
}

fn load() -> Result<Api, String> {
    let mut reasons = Vec::new();
    for name in LIBRARY_NAMES {
        // SAFETY: loading libespeak-ng runs only its (trivial) ELF initialisers.
        match unsafe { libloading::Library::new(name) } {
            Ok(lib) => return resolve(lib).map_err(|e| format!("{name}: {e}")),
            Err(e) => reasons.push(e.to_string()),
        }
    }
    Err(format!(
        "libespeak-ng is not installed (Debian: apt-get install libespeak-ng1 espeak-ng-data; \
         in the cloud use a Polly engine): {}",
        reasons.join("; ")
    ))
}

fn resolve(lib: libloading::Library) -> Result<Api, libloading::Error> {
    // SAFETY: each symbol is declared with the signature speak_lib.h (API revision 12) gives it.
    unsafe {
        Ok(Api {
            initialize: *lib.get(b"espeak_Initialize\0")?,
            set_synth_callback: *lib.get(b"espeak_SetSynthCallback\0")?,
            set_voice_by_name: *lib.get(b"espeak_SetVoiceByName\0")?,
            set_parameter: *lib.get(b"espeak_SetParameter\0")?,
            synth: *lib.get(b"espeak_Synth\0")?,
            synchronize: *lib.get(b"espeak_Synchronize\0")?,
            list_voices: *lib.get(b"espeak_ListVoices\0")?,
            _lib: lib,
        })
    }
}
