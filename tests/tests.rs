//! Integration tests of the `storyreel` CLI: one test binary with a module per concern (as in
//! ripgrep's `tests/tests.rs`), judging every output by decoding it with ffmpeg/ffprobe.
//!
//! Fixtures (narration, speech marks, background clips) are generated at test time into a
//! temporary directory; ffmpeg, ffprobe and espeak-ng must be on PATH.

mod support;

mod accounts;
mod background;
mod bad_input;
mod cloud;
mod codecs;
mod cost;
mod events;
mod lambda;
#[path = "support/moto.rs"]
mod moto;
mod policy;
mod prepare;
mod prepare_background;
mod publish;
mod render;
mod story_cli;
mod sync;
mod workflow;
