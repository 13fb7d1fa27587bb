//! MP4 (ISO BMFF) reading and writing and H.264 bitstream helpers for storyreel's video
//! pipeline: [`demux`] reads the video track of background footage through random access,
//! [`matroska`] names the video codec of a Matroska/WebM file, [`h264`] frames and orders
//! H.264 access units, and [`mux`] plans and writes fast-start MP4s.

#![warn(missing_docs)]

pub mod demux;
pub mod h264;
pub mod matroska;
pub mod mux;

use std::fmt;

pub use demux::{
    Mp4Error, ReadAt, Sample, VideoCodec, VideoTrack, read_video_track,
    read_video_track_of_any_codec,
};
pub use h264::{AccessUnit, AvcConfig, H264Error, Pps, SliceHeader, Sps};
pub use matroska::{MatroskaError, MatroskaVideo, read_matroska_video};
pub use mux::{
    AudioCodec, AudioTrackSpec, Mp4Plan, MuxError, MuxSample, Run, TrackKind, VideoTrackSpec,
};

/// A four-character code (box type or sample entry type).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FourCc(pub [u8; 4]);

impl FourCc {
    /// Builds a code from a 4-byte literal such as `b"moov"`.
    pub const fn new(code: &[u8; 4]) -> Self {
        Self(*code)
    }
}

impl fmt::Display for FourCc {
    /// Printable ASCII as is; other bytes as `\xNN`, so garbage input shows what was found.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in &self.0 {
            if b.is_ascii_graphic() || b == b' ' {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for FourCc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FourCc({self})")
    }
}
