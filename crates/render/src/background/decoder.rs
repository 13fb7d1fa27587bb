//! The H.264 decoder behind [`super::VideoBackground`]: the system's libavcodec when it can be
//! loaded (fastest), otherwise `rusty_h264` (pure Rust, always built in; the Lambdas use it).
//! Both are bit-exact, so which one ran never changes a frame.
//!
//! `STORYREEL_H264_DECODER` chooses: `auto` (the default), `libavcodec` (fail if it cannot be
//! loaded) or `rusty_h264`. `STORYREEL_FFMPEG=off` makes FFmpeg's libraries count as absent
//! everywhere (H.264 then decodes with `rusty_h264`, other codecs not at all); `auto`, the
//! default, uses them where they load.

use rusty_h264_common::YuvFrame;

use super::libav;

/// The variable that chooses the decoder.
pub const DECODER_VAR: &str = "STORYREEL_H264_DECODER";

/// The variable that lets FFmpeg's libraries be used (`auto`, the default) or not (`off`).
pub use super::libav::FFMPEG_VAR;

pub use super::libav::available as libavcodec_available;
pub use super::libav::ffmpeg_allowed;
pub use super::libavformat::available as libavformat_available;

/// A decoder implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecoderKind {
    /// The system's libavcodec (FFmpeg 4 to 7), loaded at run time. Footage read by
    /// libavformat (any codec but H.264 in MP4/MOV) always decodes with it.
    Libavcodec,
    /// The built-in pure-Rust decoder.
    RustyH264,
}

impl DecoderKind {
    /// The kind `STORYREEL_H264_DECODER` asks for (`auto` when unset): libavcodec when it can be
    /// loaded, else `rusty_h264`. An explicit `libavcodec` that cannot be loaded is an error
    /// with the reason; an unknown value is an error listing the accepted ones.
    pub fn from_env() -> Result<Self, String> {
        // A mistyped STORYREEL_FFMPEG is an error here too, not a silent `rusty_h264`.
        libav::ffmpeg_allowed()?;
        let value = std::env::var(DECODER_VAR).unwrap_or_default();
        match value.trim() {
            "" | "auto" => Ok(if libav::available().is_ok() {
                DecoderKind::Libavcodec
            } else {
                DecoderKind::RustyH264
            }),
            "libavcodec" => libav::available().map(|_| DecoderKind::Libavcodec),
            "rusty_h264" => Ok(DecoderKind::RustyH264),
            other => Err(format!(
                "{DECODER_VAR}={other:?} is not a decoder (expected auto, libavcodec or rusty_h264)"
            )),
        }
    }

    /// A name for reports: the libavcodec soname, or `rusty_h264`.
    pub fn name(self) -> &'static str {
        match self {
            DecoderKind::Libavcodec => libav::available().unwrap_or("libavcodec"),
            DecoderKind::RustyH264 => "rusty_h264",
        }
    }
}

/// One decoded picture and the presentation time of the access unit it came from.
pub enum Picture {
    Rusty { pts: i64, frame: YuvFrame },
    Libav(libav::Picture),
}

impl Picture {
    pub fn pts(&self) -> i64 {
        match self {
            Picture::Rusty { pts, .. } => *pts,
            Picture::Libav(p) => p.pts(),
        }
    }

    /// Width and height of the picture.
    pub fn size(&self) -> (usize, usize) {
        match self {
            Picture::Rusty { frame, .. } => (frame.width, frame.height),
            Picture::Libav(p) => p.size(),
        }
    }

    /// The Y, U and V planes and their row strides.
    pub fn planes(&self) -> ([&[u8]; 3], [usize; 3]) {
        match self {
            Picture::Rusty { frame, .. } => {
                let cw = frame.width.div_ceil(2);
                ([&frame.y, &frame.u, &frame.v], [frame.width, cw, cw])
            }
            Picture::Libav(p) => p.planes(),
        }
    }
}

/// A decoder started at a sync sample, fed access units in decode order.
pub enum Decoder {
    Rusty(Box<rusty_h264_decoder::Decoder>),
    Libav(libav::Decoder),
}

impl Decoder {
    pub fn new(kind: DecoderKind) -> Result<Self, String> {
        Ok(match kind {
            DecoderKind::Libavcodec => Decoder::Libav(libav::Decoder::new()?),
            DecoderKind::RustyH264 => Decoder::Rusty(Box::new(rusty_h264_decoder::Decoder::new())),
        })
    }

    /// Decodes one access unit (Annex B) presented at `pts`; appends the pictures that are
    /// ready (`rusty_h264` gives each picture as it is decoded, libavcodec in display order
    /// after its reorder delay).
    pub fn decode(
        &mut self,
        annexb: &[u8],
        pts: i64,
        out: &mut Vec<Picture>,
    ) -> Result<(), String> {
        match self {
            Decoder::Rusty(d) => {
                if let Some(frame) = d.decode(annexb).map_err(|e| e.to_string())? {
                    out.push(Picture::Rusty { pts, frame });
                }
                Ok(())
            }
            Decoder::Libav(d) => d.decode(annexb, pts, &mut |p| out.push(Picture::Libav(p))),
        }
    }

    /// Ends the stream: appends the pictures still held back.
    pub fn finish(&mut self, out: &mut Vec<Picture>) -> Result<(), String> {
        match self {
            Decoder::Rusty(_) => Ok(()),
            Decoder::Libav(d) => d.finish(&mut |p| out.push(Picture::Libav(p))),
        }
    }
}
