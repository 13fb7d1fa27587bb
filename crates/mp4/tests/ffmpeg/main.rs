//! Integration tests that judge storyreel-mp4 against ffmpeg/ffprobe: fixtures are generated
//! at test time with ffmpeg (nothing binary is committed) and ffprobe is the reference.
//! These tests fail, not skip, when ffmpeg is missing.

mod common;
mod demux;
mod h264;
mod mux;
