//! The picture under the captions: given footage (decoded, looped, cropped to fill) or the
//! generated default.

pub mod decoder;
pub mod generated;
mod libav;
mod libavformat;
pub mod video;

use std::path::Path;

pub use decoder::DecoderKind;
pub use video::{FootageInfo, VideoBackground};

use crate::frame::Frame;

/// Errors opening or decoding background footage; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum BackgroundError {
    #[error("cannot read background {name}")]
    Read {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("background {name}")]
    Container {
        name: String,
        #[source]
        source: storyreel_mp4::demux::Mp4Error,
    },
    #[error("background {name}: {reason}")]
    Invalid { name: String, reason: String },
    #[error("background {name}")]
    Matroska {
        name: String,
        #[source]
        source: storyreel_mp4::matroska::MatroskaError,
    },
    /// Footage storyreel can name but only FFmpeg's libraries decode, on a machine where they
    /// are not installed (or are turned off with `STORYREEL_FFMPEG=off`).
    #[error(
        "background {name} is {codec} video in {container}, which needs FFmpeg's libraries to \
         decode: {why} (Debian: apt-get install ffmpeg, or libavformat59 libavcodec59 \
         libswscale6); H.264 in MP4/MOV needs nothing"
    )]
    NeedsFfmpeg {
        name: String,
        /// The codec as people know it (`HEVC`, `VP9`, ...) and the container (`WebM`, ...).
        codec: String,
        container: String,
        /// Why the libraries cannot be used.
        why: String,
    },
}

/// Where frames come from, positioned per output frame.
pub enum Background {
    /// The embedded animated gradient (and the last frame drawn, reused for its buffer).
    Generated(Option<Frame>),
    /// Footage, started at `start_ticks` (track timescale) and looped.
    Video {
        video: Box<VideoBackground>,
        start_ticks: i64,
    },
}

impl Background {
    /// Opens a background file; `start_ms` is where in the footage frame 0 is taken from.
    pub fn open_file(path: &Path, start_ms: u64) -> Result<Self, BackgroundError> {
        Ok(Self::from_video(
            VideoBackground::open_file(path)?,
            start_ms,
        ))
    }

    /// Footage already opened; `start_ms` is where in it frame 0 is taken from.
    pub fn from_video(video: VideoBackground, start_ms: u64) -> Self {
        let ts = i64::from(video.timescale());
        let start_ticks = (i128::from(start_ms) * i128::from(ts) / 1000) as i64;
        Background::Video {
            video: Box::new(video),
            start_ticks,
        }
    }

    /// The embedded default.
    pub fn generated() -> Self {
        Background::Generated(None)
    }

    /// The background of output frame `index` (at `fps`), `width x height`.
    pub fn draw(
        &mut self,
        index: u64,
        fps: u32,
        width: usize,
        height: usize,
    ) -> Result<&Frame, BackgroundError> {
        match self {
            Background::Generated(slot) => {
                let frame = match slot.take() {
                    Some(f) if (f.width, f.height) == (width, height) => f,
                    _ => Frame::black(width, height),
                };
                let frame = slot.insert(frame);
                generated::render(index, fps, frame);
                Ok(frame)
            }
            Background::Video { video, start_ticks } => {
                let ts = i128::from(video.timescale());
                let t = *start_ticks as i128 + i128::from(index) * ts / i128::from(fps.max(1));
                video.draw(t as i64, width, height)
            }
        }
    }
}
