//! Integration tests for storyreel-audio: media is checked by decoding it, with ffmpeg/ffprobe
//! and espeak-ng as independent judges (fixtures are generated into a temp dir at test time).

mod util;

mod decode;
mod encode;
mod errors;
mod resample;
