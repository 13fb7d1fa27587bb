//! Hand-written bindings to the few functions of libespeak-ng's `speak_lib.h` (API revision 12)
//! that [`crate::EspeakSpeech`] uses.
//!
//! Written by hand rather than taken from `espeakng-sys`, whose build script runs bindgen and so
//! needs libclang at build time for eight functions and two structs.

use std::ffi::{c_char, c_int, c_short, c_uint, c_void};

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

#[link(name = "espeak-ng")]
unsafe extern "C" {
    pub fn espeak_Initialize(
        output: c_int,
        buflength: c_int,
        path: *const c_char,
        options: c_int,
    ) -> c_int;
    pub fn espeak_SetSynthCallback(callback: Option<SynthCallback>);
    pub fn espeak_SetVoiceByName(name: *const c_char) -> c_int;
    pub fn espeak_SetParameter(parameter: c_int, value: c_int, relative: c_int) -> c_int;
    pub fn espeak_Synth(
        text: *const c_void,
        size: usize,
        position: c_uint,
        position_type: c_int,
        end_position: c_uint,
        flags: c_uint,
        unique_identifier: *mut c_uint,
        user_data: *mut c_void,
    ) -> c_int;
    pub fn espeak_Synchronize() -> c_int;
    pub fn espeak_ListVoices(voice_spec: *mut EspeakVoice) -> *const *const EspeakVoice;
}
