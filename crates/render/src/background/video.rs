//! Background footage, decoded, resampled to the output frame rate by timestamp, looped, and
//! cropped/scaled to fill the output. Two sources feed the same sampling:
//!
//! - **H.264 in MP4/MOV** is demuxed by `storyreel-mp4` through [`ReadAt`] (a file, or ranged
//!   reads of an S3 object) and decoded by libavcodec when the system has it, else by
//!   `rusty_h264` (see [`super::decoder`]). This needs nothing installed.
//! - **Anything else FFmpeg reads** (HEVC, VP9, AV1, MPEG-4, 10-bit or 4:2:2 H.264, in MP4,
//!   MOV, Matroska or WebM) is demuxed and decoded by the system's FFmpeg libraries
//!   ([`super::libavformat`]), from a local file. Without them, such a file is refused naming
//!   its codec and container, which storyreel's own readers find.
//!
//! Random access is by sync sample: to show source time `s`, the decoder restarts at the last
//! sync sample whose presentation time is at or before `s` and decodes forward. Every output
//! frame is therefore a function of the file and `s` alone, which is what lets any chunk
//! render on its own and still match a whole render.

use std::path::Path;

use storyreel_mp4::demux::{
    Mp4Error, ReadAt, VideoCodec, VideoTrack, major_brand, read_video_track,
    read_video_track_of_any_codec,
};
use storyreel_mp4::h264::{AvcConfig, Sps, avcc_to_annexb};
use storyreel_mp4::matroska;

use super::BackgroundError;
use super::decoder::{Decoder, DecoderKind, Picture};
use super::libavformat::{self, Container, Converted, FeedError, Footage};
use crate::frame::Frame;
use crate::scale::Scaler;

/// Longest background accepted, so a bogus duration can't stall a render.
const MAX_SAMPLES: usize = 2_000_000;

/// Decoded pictures waiting for their turn on screen (B-frame reordering needs a few; the
/// H.264 DPB holds at most 16).
const MAX_PENDING: usize = 32;

/// How many times decoding through FFmpeg restarts one keyframe earlier when pictures after a
/// seek fail to decode (they may refer to pictures before the keyframe), before the failure
/// counts as corruption.
const MAX_RETRIES: usize = 2;

/// What an opened background is, as a library records it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FootageInfo {
    /// The codec's short name (`h264`, `hevc`, `vp9`, `av1`, ...).
    pub codec: String,
    /// The container's short name (`mp4`, `mov`, `matroska`, `webm`).
    pub container: String,
    /// Displayed size, after the rotation.
    pub width: u32,
    pub height: u32,
    /// Average frame rate (frames over duration).
    pub fps: f64,
    pub frames: u64,
    pub duration_ms: u64,
    /// Clockwise degrees applied before display (0, 90, 180, 270).
    pub rotation: u16,
}

/// Where coded pictures come from and what decodes them.
enum Source {
    /// H.264 in MP4/MOV through storyreel-mp4.
    H264 {
        src: Box<dyn ReadAt + Send + Sync>,
        kind: DecoderKind,
        decoder: Option<Decoder>,
        /// libavcodec refused a picture since the last seek: `rusty_h264` decodes until the
        /// next.
        fallback: bool,
        annexb: Vec<u8>,
        sample: Vec<u8>,
    },
    /// Any codec and container, through FFmpeg's libraries.
    Ffmpeg {
        footage: Box<Footage>,
        /// The footage has been positioned since the last seek.
        started: bool,
        /// Samples decoded but never shown.
        hidden: Vec<bool>,
        /// Scratch for pictures that are not 8-bit 4:2:0.
        converted: Converted,
        /// libavcodec's name for the codec.
        codec: String,
    },
}

/// What feeding one sample did.
enum Fed {
    Decoded(Result<(), String>),
    /// Not decoded: a non-reference picture never shown.
    Skipped,
}

/// An opened background video, positioned by source timestamps.
pub struct VideoBackground {
    source: Source,
    track: VideoTrack,
    /// Presentation times of the samples shown, sorted, with the sample index.
    by_pts: Vec<(i64, u32)>,
    /// Sync samples in decode order.
    syncs: Vec<u32>,
    /// A picture counts as presented this many ticks before its timestamp (half a tick of a
    /// container that rounds timestamps, such as Matroska's milliseconds; 0 for MP4).
    tolerance: i64,
    /// `mp4`, `mov`, `matroska` or `webm`.
    container: &'static str,
    /// Decoded pictures presented after the last target.
    pending: Vec<Picture>,
    next_feed: usize,
    /// The sync sample decoding last started at, and restarts since the last seek.
    seek_start: usize,
    retries: usize,
    /// Presentation time of the picture last scaled into the caller's frame.
    current_pts: Option<i64>,
    scaler: Option<Scaler>,
    /// The decoded picture turned upright, for tracks with a rotation matrix.
    upright: Option<Frame>,
    /// The picture at `current_pts`, fitted to the output size.
    picture: Option<Frame>,
    name: String,
}

/// An `avcC` with nothing in it, for tracks FFmpeg reads.
fn no_avc() -> AvcConfig {
    AvcConfig {
        profile: 0,
        compat: 0,
        level: 0,
        nal_length_size: 4,
        sps: Vec::new(),
        pps: Vec::new(),
    }
}

/// The container of an MP4-family file, by its major brand.
fn mp4_container(src: &dyn ReadAt) -> (&'static str, &'static str) {
    match major_brand(src) {
        Some(brand) if &brand.0 == b"qt  " => ("mov", "MOV"),
        _ => ("mp4", "MP4"),
    }
}

/// How a local file is to be read.
enum Plan {
    /// H.264 in MP4/MOV through storyreel-mp4.
    H264(VideoTrack),
    /// Through FFmpeg: what storyreel's own readers found.
    Ffmpeg {
        container: Container,
        /// The container's short name and the name people know it by.
        names: (&'static str, &'static str),
        codec: VideoCodec,
        /// The `tkhd` rotation of an MP4, used when FFmpeg reports no display matrix.
        rotation: u16,
    },
}

impl VideoBackground {
    /// Opens H.264 footage in MP4/MOV from `src` (named `name` in errors): reads the sample
    /// tables and checks the codec. This is the path for footage read through ranged reads;
    /// other codecs are refused (see [`Self::open_file`]).
    pub fn open(src: Box<dyn ReadAt + Send + Sync>, name: &str) -> Result<Self, BackgroundError> {
        let track = read_video_track(src.as_ref()).map_err(|e| BackgroundError::Container {
            name: name.to_string(),
            source: e,
        })?;
        Self::from_h264(src, track, name)
    }

    /// Opens a background file on local disk (named by its path in errors). H.264 in MP4/MOV
    /// is read as [`Self::open`] reads it; any other codec or container (Matroska, WebM) is
    /// read by FFmpeg's libraries where they are installed, and refused naming the codec and
    /// what to install where they are not (or `STORYREEL_FFMPEG=off`).
    pub fn open_file(path: &Path) -> Result<Self, BackgroundError> {
        let name = path.display().to_string();
        let (file, plan) = Self::identify(path, &name)?;
        match plan {
            // 10-bit or 4:2:2 H.264: only libavcodec decodes it (else refused as before).
            Plan::H264(track) if needs_libavcodec(&track) && libavformat::available().is_ok() => {
                let (short, long) = mp4_container(&file);
                drop(file);
                Self::with_ffmpeg(
                    path,
                    &name,
                    Container::Mp4,
                    (short, long),
                    VideoCodec::Avc,
                    track.rotation,
                )
            }
            Plan::H264(track) => Self::from_h264(Box::new(file), track, &name),
            Plan::Ffmpeg {
                container,
                names,
                codec,
                rotation,
            } => {
                drop(file);
                Self::with_ffmpeg(path, &name, container, names, codec, rotation)
            }
        }
    }

    /// Opens a local file through FFmpeg's libraries whatever its codec, H.264 in MP4/MOV
    /// included; an error if they cannot be used. For comparing the two ways of reading H.264
    /// footage, which must give the same pictures.
    pub fn open_file_with_ffmpeg(path: &Path) -> Result<Self, BackgroundError> {
        let name = path.display().to_string();
        let (file, plan) = Self::identify(path, &name)?;
        match plan {
            Plan::H264(track) => {
                let names = mp4_container(&file);
                drop(file);
                Self::with_ffmpeg(
                    path,
                    &name,
                    Container::Mp4,
                    names,
                    VideoCodec::Avc,
                    track.rotation,
                )
            }
            Plan::Ffmpeg {
                container,
                names,
                codec,
                rotation,
            } => {
                drop(file);
                Self::with_ffmpeg(path, &name, container, names, codec, rotation)
            }
        }
    }

    /// Finds what a local file is with storyreel's own readers: H.264 in MP4/MOV, another
    /// codec in MP4/MOV, or Matroska/WebM; anything else, and broken files, are errors here.
    fn identify(path: &Path, name: &str) -> Result<(std::fs::File, Plan), BackgroundError> {
        let file = std::fs::File::open(path).map_err(|e| BackgroundError::Read {
            name: name.to_string(),
            source: e,
        })?;
        let container_err = |e| BackgroundError::Container {
            name: name.to_string(),
            source: e,
        };
        let plan = match read_video_track_of_any_codec(&file) {
            Ok(track) if track.codec == VideoCodec::Avc => Plan::H264(track),
            Ok(track) => Plan::Ffmpeg {
                container: Container::Mp4,
                names: mp4_container(&file),
                codec: track.codec,
                rotation: track.rotation,
            },
            // Movie fragments: storyreel-mp4 does not follow them, FFmpeg does (and names the
            // codec, which is not known until then).
            Err(Mp4Error::Fragmented) if libavformat::available().is_ok() => Plan::Ffmpeg {
                container: Container::Mp4,
                names: mp4_container(&file),
                codec: FRAGMENTED,
                rotation: 0,
            },
            Err(Mp4Error::NotMp4(_)) if matroska::is_ebml(&file) => {
                let mkv = matroska::read_matroska_video(&file).map_err(|e| {
                    BackgroundError::Matroska {
                        name: name.to_string(),
                        source: e,
                    }
                })?;
                // Matroska writers often leave FlagInterlaced unset or say progressive: for
                // H.264 the sequence parameter set decides.
                let h264_interlaced = mkv.codec == VideoCodec::Avc
                    && AvcConfig::parse(&mkv.codec_private)
                        .ok()
                        .and_then(|avc| avc.sps.first().and_then(|nal| Sps::parse(nal).ok()))
                        .is_some_and(|sps| !sps.frame_mbs_only);
                if mkv.interlaced || h264_interlaced {
                    return Err(BackgroundError::Invalid {
                        name: name.to_string(),
                        reason: format!(
                            "interlaced {} is not supported (expected progressive)",
                            mkv.codec.display_name()
                        ),
                    });
                }
                let names = if mkv.doc_type == "webm" {
                    ("webm", "WebM")
                } else {
                    ("matroska", "Matroska")
                };
                Plan::Ffmpeg {
                    container: Container::Matroska,
                    names,
                    codec: mkv.codec,
                    rotation: 0,
                }
            }
            Err(e) => return Err(container_err(e)),
        };
        Ok((file, plan))
    }

    /// Footage FFmpeg's libraries read: refused naming the codec if they cannot be used.
    fn with_ffmpeg(
        path: &Path,
        name: &str,
        container: Container,
        (short, long): (&'static str, &'static str),
        codec: VideoCodec,
        rotation: u16,
    ) -> Result<Self, BackgroundError> {
        if let Err(why) = libavformat::available() {
            let codec = match codec {
                FRAGMENTED => "fragmented".to_string(),
                other => other.display_name(),
            };
            return Err(BackgroundError::NeedsFfmpeg {
                name: name.to_string(),
                codec,
                container: long.to_string(),
                why,
            });
        }
        let err = |reason: String| BackgroundError::Invalid {
            name: name.to_string(),
            reason,
        };
        let opened = Footage::open(path, container).map_err(err)?;
        let codec = match codec {
            FRAGMENTED => codec_named(&opened.codec),
            known => known,
        };
        let track = VideoTrack {
            codec,
            width: opened.width,
            height: opened.height,
            timescale: opened.timescale,
            duration: opened.duration,
            avc: no_avc(),
            samples: opened.samples,
            rotation: opened.rotation.unwrap_or(rotation),
        };
        let by_pts: Vec<(i64, u32)> = track
            .samples
            .iter()
            .zip(&opened.hidden)
            .enumerate()
            .filter(|(_, (_, hidden))| !**hidden)
            .map(|(i, (s, _))| (s.pts, i as u32))
            .collect();
        let source = Source::Ffmpeg {
            footage: Box::new(opened.footage),
            started: false,
            hidden: opened.hidden,
            converted: Converted::default(),
            codec: opened.codec,
        };
        Self::build(source, track, by_pts, opened.tolerance, short, name)
    }

    /// H.264 footage: checks its parameter sets (8-bit 4:2:0, progressive).
    fn from_h264(
        src: Box<dyn ReadAt + Send + Sync>,
        track: VideoTrack,
        name: &str,
    ) -> Result<Self, BackgroundError> {
        let err = |reason: String| BackgroundError::Invalid {
            name: name.to_string(),
            reason,
        };
        let sps_nal = track
            .avc
            .sps
            .first()
            .ok_or_else(|| err("avcC holds no sequence parameter set".into()))?;
        let sps =
            Sps::parse(sps_nal).map_err(|e| err(format!("bad sequence parameter set: {e}")))?;
        if sps.chroma_format_idc != 1 || sps.bit_depth_luma != 8 || sps.bit_depth_chroma != 8 {
            return Err(err(format!(
                "unsupported h.264 format: profile {}, chroma format {}, {}-bit (expected 8-bit 4:2:0, or FFmpeg's libraries for others)",
                sps.profile_idc, sps.chroma_format_idc, sps.bit_depth_luma
            )));
        }
        if !sps.frame_mbs_only {
            return Err(err(
                "interlaced h.264 is not supported (expected progressive)".into(),
            ));
        }
        let kind = DecoderKind::from_env().map_err(err)?;
        let (short, _) = mp4_container(src.as_ref());
        let by_pts: Vec<(i64, u32)> = track
            .samples
            .iter()
            .enumerate()
            .map(|(i, s)| (s.pts, i as u32))
            .collect();
        let source = Source::H264 {
            src,
            kind,
            decoder: None,
            fallback: false,
            annexb: Vec::new(),
            sample: Vec::new(),
        };
        Self::build(source, track, by_pts, 0, short, name)
    }

    /// Checks what every source must satisfy and sets up the sampling.
    fn build(
        source: Source,
        track: VideoTrack,
        mut by_pts: Vec<(i64, u32)>,
        tolerance: i64,
        container: &'static str,
        name: &str,
    ) -> Result<Self, BackgroundError> {
        let err = |reason: String| BackgroundError::Invalid {
            name: name.to_string(),
            reason,
        };
        if track.width < 16 || track.height < 16 {
            return Err(err(format!(
                "picture size {}x{} is too small (expected at least 16x16)",
                track.width, track.height
            )));
        }
        if track.samples.is_empty() || by_pts.is_empty() {
            return Err(err("the video track has no frames".into()));
        }
        if track.samples.len() > MAX_SAMPLES {
            return Err(err(format!(
                "{} frames is too many (at most {MAX_SAMPLES})",
                track.samples.len()
            )));
        }
        if track.duration <= 0 || track.timescale == 0 {
            return Err(err(format!(
                "duration {} in timescale {} is not positive",
                track.duration, track.timescale
            )));
        }
        by_pts.sort_unstable();
        let syncs: Vec<u32> = track
            .samples
            .iter()
            .enumerate()
            .filter(|(_, s)| s.sync)
            .map(|(i, _)| i as u32)
            .collect();
        if syncs.is_empty() {
            return Err(err("no sync (key) frame in the video track".into()));
        }
        Ok(VideoBackground {
            source,
            track,
            by_pts,
            syncs,
            tolerance,
            container,
            pending: Vec::new(),
            next_feed: 0,
            seek_start: 0,
            retries: 0,
            current_pts: None,
            scaler: None,
            upright: None,
            picture: None,
            name: name.to_string(),
        })
    }

    /// What the footage is: codec, container, displayed size, rate, length, rotation.
    pub fn info(&self) -> FootageInfo {
        let t = &self.track;
        let (mut width, mut height) = (t.width, t.height);
        if t.rotation % 180 == 90 {
            std::mem::swap(&mut width, &mut height);
        }
        let duration_ms = self.duration_ms();
        let frames = self.by_pts.len() as u64;
        let fps = frames as f64 * 1000.0 / duration_ms.max(1) as f64;
        FootageInfo {
            codec: self.codec_name().to_string(),
            container: self.container.into(),
            width,
            height,
            fps: (fps * 1000.0).round() / 1000.0,
            frames,
            duration_ms,
            rotation: t.rotation,
        }
    }

    fn codec_name(&self) -> &str {
        match &self.source {
            Source::H264 { .. } => "h264",
            Source::Ffmpeg { codec, .. } => codec,
        }
    }

    /// Ticks per second of the times [`Self::draw`] takes.
    pub fn timescale(&self) -> u32 {
        self.track.timescale
    }

    /// The track: size, timescale, duration and every sample in decode order. For footage
    /// FFmpeg reads, the samples are its packets (`offset` is the byte position), timed in
    /// [`Self::timescale`] ticks, and `avc` is empty.
    pub fn track(&self) -> &VideoTrack {
        &self.track
    }

    /// The decoder this background uses.
    pub fn decoder(&self) -> DecoderKind {
        match &self.source {
            Source::H264 { kind, .. } => *kind,
            Source::Ffmpeg { .. } => DecoderKind::Libavcodec,
        }
    }

    /// Decodes with `kind` from the next picture drawn on (instead of the one
    /// `STORYREEL_H264_DECODER` chose when the file was opened). Footage FFmpeg reads always
    /// decodes with libavcodec, so this changes nothing for it.
    pub fn use_decoder(&mut self, kind: DecoderKind) {
        if let Source::H264 {
            kind: k,
            fallback,
            decoder,
            ..
        } = &mut self.source
        {
            *k = kind;
            *fallback = false;
            *decoder = None;
            self.pending.clear();
            self.current_pts = None;
        }
    }

    /// Duration in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        (self.track.duration as u128 * 1000 / u128::from(self.track.timescale)) as u64
    }

    /// The picture shown at source time `ticks` (track timescale, taken modulo the duration,
    /// so the footage loops), fitted to `width x height`. A picture that repeats (a 25 fps
    /// source under 30 fps output) is neither decoded nor scaled again.
    pub fn draw(
        &mut self,
        ticks: i64,
        width: usize,
        height: usize,
    ) -> Result<&Frame, BackgroundError> {
        let s = ticks.rem_euclid(self.track.duration);
        // The picture on screen at `s`: the last one presented at or before it.
        let pos = self
            .by_pts
            .partition_point(|&(p, _)| p <= s.saturating_add(self.tolerance));
        let (target, _) = self.by_pts[pos.saturating_sub(1)];
        let mut out = match self.picture.take() {
            Some(f) if (f.width, f.height) == (width, height) => f,
            _ => {
                self.current_pts = None;
                Frame::black(width, height)
            }
        };
        if self.current_pts != Some(target)
            && let Err(e) = self.seek_and_decode(target, &mut out)
        {
            self.current_pts = None;
            self.picture = Some(out);
            return Err(e);
        }
        Ok(self.picture.insert(out))
    }

    fn seek_and_decode(&mut self, target: i64, out: &mut Frame) -> Result<(), BackgroundError> {
        let seek_needed = match self.current_pts {
            None => true,
            Some(cur) => target < cur || self.sync_for(target) > self.next_feed,
        };
        if seek_needed {
            self.next_feed = self.sync_for(target);
            self.seek_start = self.next_feed;
            self.retries = 0;
            self.stop_source();
            self.pending.clear();
        }
        self.decode_until(target, out)
    }

    /// Decode index of the last sync sample presented at or before `pts`.
    fn sync_for(&self, pts: i64) -> usize {
        let samples = &self.track.samples;
        let mut best = self.syncs[0] as usize;
        for &i in &self.syncs {
            if samples[i as usize].pts <= pts {
                best = i as usize;
            } else if samples[i as usize].dts > pts {
                break;
            }
        }
        best
    }

    fn corrupt(&self, sample: usize, what: &str) -> BackgroundError {
        let codec = match &self.source {
            Source::H264 { .. } => "h.264",
            Source::Ffmpeg { codec, .. } => codec,
        };
        BackgroundError::Invalid {
            name: self.name.clone(),
            reason: format!("corrupt {codec} data at frame {sample}: {what}"),
        }
    }

    fn invalid(&self, reason: String) -> BackgroundError {
        BackgroundError::Invalid {
            name: self.name.clone(),
            reason,
        }
    }

    fn decode_until(&mut self, target: i64, out: &mut Frame) -> Result<(), BackgroundError> {
        // Pictures shown before the target are never needed again.
        self.pending.retain(|p| p.pts() >= target);
        if let Some(pos) = self.pending.iter().position(|p| p.pts() == target) {
            let pic = self.pending.swap_remove(pos);
            self.scale_into(&pic, out)?;
            self.current_pts = Some(target);
            return Ok(());
        }
        let first_after_seek = !self.source_started();
        if first_after_seek {
            self.start_source()?;
        }
        let n = self.track.samples.len();
        let mut with_parameter_sets = first_after_seek;
        // Pictures the decoder just gave out, before they are sorted into `pending`.
        let mut ready = Vec::new();
        let shown = loop {
            let i = self.next_feed;
            let decoded = if i < n {
                self.next_feed += 1;
                let fed = self.feed(i, target, with_parameter_sets, &mut ready)?;
                with_parameter_sets = false;
                match fed {
                    Fed::Skipped => continue,
                    Fed::Decoded(r) => r,
                }
            } else {
                // End of the track: take the pictures held back for reordering.
                self.finish_source(&mut ready)
            };
            if let Err(e) = decoded {
                if self.recover(i, target)? {
                    ready.clear();
                    with_parameter_sets = true;
                    continue;
                }
                if let Source::Ffmpeg { .. } = self.source
                    && i < n
                    && self.track.samples[i].pts < self.track.samples[self.seek_start].pts
                {
                    // A leading picture of the keyframe decoding started at: it refers to
                    // pictures before that keyframe, and it is never shown from here.
                    continue;
                }
                return Err(self.corrupt(i.min(n - 1), &e));
            }
            let shown = self.sort_ready(&mut ready, target, out);
            if shown.is_err() || matches!(shown, Ok(true)) || i >= n {
                break shown.map_err(|what| self.corrupt(i.min(n - 1), &what));
            }
        };
        if shown? {
            return Ok(());
        }
        // The target's own sample never produced a picture: show the next one, if any.
        if let Some(pos) = (0..self.pending.len()).min_by_key(|&k| self.pending[k].pts()) {
            let pic = self.pending.swap_remove(pos);
            self.scale_into(&pic, out)?;
            self.current_pts = Some(pic.pts());
            return Ok(());
        }
        Err(BackgroundError::Invalid {
            name: self.name.clone(),
            reason: format!(
                "the decoder produced no picture for time {:.3} s",
                target as f64 / f64::from(self.track.timescale)
            ),
        })
    }

    /// After a decoding error at sample `i`: restarts decoding where it may succeed (true),
    /// or leaves the error to the caller (false).
    fn recover(&mut self, i: usize, target: i64) -> Result<bool, BackgroundError> {
        let n = self.track.samples.len();
        match &mut self.source {
            Source::H264 { kind, fallback, .. } => {
                if *fallback || *kind != DecoderKind::Libavcodec {
                    return Ok(false);
                }
                // libavcodec, told to fail rather than conceal, also refuses what is not
                // corruption: the leading pictures of an open GOP entered at its I picture
                // (they predict from pictures before it), and the memory management commands
                // that then name pictures it never saw. Decode from the sync sample again
                // with rusty_h264, which gives the same pictures for everything shown and is
                // the judge of real corruption.
                *fallback = true;
                self.next_feed = self.sync_for(target);
                self.pending.clear();
                self.start_source()?;
                Ok(true)
            }
            Source::Ffmpeg { .. } => {
                let leading =
                    i < n && self.track.samples[i].pts < self.track.samples[self.seek_start].pts;
                if leading || self.retries >= MAX_RETRIES {
                    return Ok(false);
                }
                // Pictures after a seek may refer to pictures before the keyframe (an open
                // GOP's leading pictures, long-term references): decode from the keyframe
                // before it, through this one, which gives the same pictures as decoding the
                // whole file.
                let at = self
                    .syncs
                    .partition_point(|&s| (s as usize) < self.seek_start);
                let Some(&earlier) = at.checked_sub(1).and_then(|k| self.syncs.get(k)) else {
                    return Ok(false);
                };
                self.retries += 1;
                self.seek_start = earlier as usize;
                self.next_feed = self.seek_start;
                self.pending.clear();
                self.stop_source();
                self.start_source()?;
                Ok(true)
            }
        }
    }

    fn source_started(&self) -> bool {
        match &self.source {
            Source::H264 { decoder, .. } => decoder.is_some(),
            Source::Ffmpeg { started, .. } => *started,
        }
    }

    fn stop_source(&mut self) {
        match &mut self.source {
            Source::H264 {
                decoder, fallback, ..
            } => {
                *fallback = false;
                *decoder = None;
            }
            Source::Ffmpeg { started, .. } => *started = false,
        }
    }

    /// A new decoder at `next_feed` (a sync sample).
    fn start_source(&mut self) -> Result<(), BackgroundError> {
        let at = self.next_feed;
        match &mut self.source {
            Source::H264 {
                kind,
                fallback,
                decoder,
                ..
            } => {
                let kind = if *fallback {
                    DecoderKind::RustyH264
                } else {
                    *kind
                };
                match Decoder::new(kind) {
                    Ok(d) => *decoder = Some(d),
                    Err(e) => {
                        return Err(
                            self.invalid(format!("cannot start the {} decoder: {e}", kind.name()))
                        );
                    }
                }
            }
            Source::Ffmpeg {
                footage, started, ..
            } => {
                if let Err(e) = footage.restart(at, &self.track.samples, &self.syncs) {
                    return Err(self.invalid(e));
                }
                *started = true;
            }
        }
        Ok(())
    }

    /// Feeds sample `i` to the decoder (the next in decode order). Errors reading the file
    /// are returned; a decoding error is in [`Fed::Decoded`] for the caller to judge.
    fn feed(
        &mut self,
        i: usize,
        target: i64,
        with_parameter_sets: bool,
        ready: &mut Vec<Picture>,
    ) -> Result<Fed, BackgroundError> {
        let pts = self.track.samples[i].pts;
        if let Source::Ffmpeg {
            footage, hidden, ..
        } = &mut self.source
        {
            // Hidden pictures are never shown either: skip them if nothing refers to them.
            let unseen = pts < target || hidden.get(i).copied().unwrap_or(false);
            return match footage.feed(i, &self.track.samples, unseen, ready) {
                Ok(()) => Ok(Fed::Decoded(Ok(()))),
                Err(FeedError::Decode(e)) => Ok(Fed::Decoded(Err(e))),
                Err(FeedError::Demux(e)) => Err(self.corrupt(i, &e)),
            };
        }
        self.load_sample(i, with_parameter_sets)?;
        // A non-reference picture shown before the target is never on screen and nothing
        // predicts from it: skip its decode (halves the work for 60 fps).
        if pts < target && !self.is_reference() {
            return Ok(Fed::Skipped);
        }
        let Source::H264 {
            decoder, annexb, ..
        } = &mut self.source
        else {
            return Ok(Fed::Skipped);
        };
        Ok(Fed::Decoded(match decoder.as_mut() {
            Some(d) => d.decode(annexb, pts, ready),
            None => Ok(()),
        }))
    }

    fn finish_source(&mut self, ready: &mut Vec<Picture>) -> Result<(), String> {
        match &mut self.source {
            Source::H264 { decoder, .. } => match decoder.as_mut() {
                Some(d) => d.finish(ready),
                None => Ok(()),
            },
            Source::Ffmpeg { footage, .. } => footage.finish(ready),
        }
    }

    /// Sorts the pictures the decoder gave out: the target's is scaled into `out` (true),
    /// later ones wait in `pending`, earlier ones are dropped.
    fn sort_ready(
        &mut self,
        ready: &mut Vec<Picture>,
        target: i64,
        out: &mut Frame,
    ) -> Result<bool, String> {
        let mut shown = false;
        for pic in ready.drain(..) {
            let pts = pic.pts();
            if pts == target && !shown {
                self.scale_into(&pic, out).map_err(|e| e.to_string())?;
                self.current_pts = Some(target);
                shown = true;
            } else if pts > target {
                if self.pending.len() >= MAX_PENDING {
                    return Err(format!(
                        "more than {MAX_PENDING} pictures held back for reordering"
                    ));
                }
                self.pending.push(pic);
            }
        }
        Ok(shown)
    }

    /// Whether the loaded sample's first slice has nal_ref_idc != 0.
    fn is_reference(&self) -> bool {
        let Source::H264 { sample, .. } = &self.source else {
            return true;
        };
        let nls = self.track.avc.nal_length_size;
        for nal in storyreel_mp4::h264::avcc_nals(sample, nls).flatten() {
            if let Some(&b) = nal.first()
                && matches!(b & 0x1f, 1 | 5)
            {
                return b & 0x60 != 0;
            }
        }
        true
    }

    /// Reads sample `i` and converts it to Annex B, after the avcC parameter sets when a
    /// decoder starts mid-stream.
    fn load_sample(&mut self, i: usize, with_parameter_sets: bool) -> Result<(), BackgroundError> {
        let Source::H264 {
            src,
            annexb,
            sample,
            ..
        } = &mut self.source
        else {
            return Ok(());
        };
        let s = &self.track.samples[i];
        sample.resize(s.size as usize, 0);
        if let Err(e) = src.read_exact_at(s.offset, sample) {
            return Err(BackgroundError::Read {
                name: self.name.clone(),
                source: e,
            });
        }
        annexb.clear();
        if with_parameter_sets {
            for ps in self.track.avc.sps.iter().chain(&self.track.avc.pps) {
                annexb.extend_from_slice(&[0, 0, 0, 1]);
                annexb.extend_from_slice(ps);
            }
        }
        let converted = avcc_to_annexb(sample, self.track.avc.nal_length_size, annexb);
        converted.map_err(|e| self.corrupt(i, &e.to_string()))
    }

    /// Turns the picture upright and fits it into `out`; pictures that are not 8-bit 4:2:0
    /// are converted first.
    fn scale_into(&mut self, pic: &Picture, out: &mut Frame) -> Result<(), BackgroundError> {
        let Picture::Libav(p) = pic else {
            let (planes, strides) = pic.planes();
            self.fit(planes, strides, pic.size(), out);
            return Ok(());
        };
        if p.is_yuv420() {
            let (planes, strides) = pic.planes();
            self.fit(planes, strides, pic.size(), out);
            return Ok(());
        }
        let Source::Ffmpeg {
            footage, converted, ..
        } = &mut self.source
        else {
            return Err(self.invalid(format!(
                "decoded picture format {} is not 8-bit 4:2:0",
                p.format()
            )));
        };
        let mut buf = std::mem::take(converted);
        let result = footage.convert(p, &mut buf);
        if let Err(e) = result {
            if let Source::Ffmpeg { converted, .. } = &mut self.source {
                *converted = buf;
            }
            return Err(self.invalid(e));
        }
        let (planes, strides) = buf.planes();
        self.fit(planes, strides, (buf.width, buf.height), out);
        if let Source::Ffmpeg { converted, .. } = &mut self.source {
            *converted = buf;
        }
        Ok(())
    }

    fn fit(
        &mut self,
        planes: [&[u8]; 3],
        strides: [usize; 3],
        size: (usize, usize),
        out: &mut Frame,
    ) {
        let (w, h) = (size.0 & !1, size.1 & !1);
        let rotation = self.track.rotation;
        if rotation == 0 {
            self.scale_planes(planes, strides, (w, h), out);
            return;
        }
        // Phones store portrait video as landscape pictures plus a rotation: turn the picture
        // upright first, as players do.
        let (uw, uh) = if rotation == 180 { (w, h) } else { (h, w) };
        let mut upright = match self.upright.take() {
            Some(f) if (f.width, f.height) == (uw, uh) => f,
            _ => Frame::black(uw, uh),
        };
        rotate(planes[0], strides[0], (w, h), rotation, &mut upright.y);
        rotate(
            planes[1],
            strides[1],
            (w / 2, h / 2),
            rotation,
            &mut upright.u,
        );
        rotate(
            planes[2],
            strides[2],
            (w / 2, h / 2),
            rotation,
            &mut upright.v,
        );
        let (ucw, uw2) = (upright.cw(), upright.width);
        self.scale_planes(
            [&upright.y, &upright.u, &upright.v],
            [uw2, ucw, ucw],
            (uw, uh),
            out,
        );
        self.upright = Some(upright);
    }

    fn scale_planes(
        &mut self,
        planes: [&[u8]; 3],
        strides: [usize; 3],
        size: (usize, usize),
        out: &mut Frame,
    ) {
        let rebuild = match &self.scaler {
            Some(s) => s.source_size() != size,
            None => true,
        };
        if rebuild {
            self.scaler = Some(Scaler::new(size.0, size.1, out.width, out.height));
        }
        if let Some(s) = self.scaler.as_mut() {
            s.scale(planes, strides, out);
        }
    }
}

/// The codec of fragmented MP4 footage until libavformat has read it.
const FRAGMENTED: VideoCodec = VideoCodec::Other(storyreel_mp4::FourCc::new(b"frag"));

/// The codec libavcodec calls `name`.
fn codec_named(name: &str) -> VideoCodec {
    match name {
        "h264" => VideoCodec::Avc,
        "hevc" => VideoCodec::Hevc,
        "vp8" => VideoCodec::Vp8,
        "vp9" => VideoCodec::Vp9,
        "av1" => VideoCodec::Av1,
        "mpeg4" => VideoCodec::Mpeg4,
        "mpeg1video" | "mpeg2video" => VideoCodec::Mpeg2,
        "prores" => VideoCodec::ProRes,
        "mjpeg" => VideoCodec::Mjpeg,
        other => {
            let mut code = [b' '; 4];
            for (c, b) in code.iter_mut().zip(other.bytes()) {
                *c = b;
            }
            VideoCodec::Other(storyreel_mp4::FourCc(code))
        }
    }
}

/// H.264 whose format only libavcodec decodes (not 8-bit 4:2:0: High 10, High 4:2:2, ...).
fn needs_libavcodec(track: &VideoTrack) -> bool {
    track
        .avc
        .sps
        .first()
        .and_then(|nal| Sps::parse(nal).ok())
        .is_some_and(|sps| {
            sps.frame_mbs_only
                && (sps.chroma_format_idc != 1
                    || sps.bit_depth_luma != 8
                    || sps.bit_depth_chroma != 8)
        })
}

/// Rotates the `w x h` plane `src` (row stride `stride`) clockwise by `degrees` (90, 180 or
/// 270) into `dst`, which is packed (`h x w` for 90 and 270, `w x h` for 180).
fn rotate(src: &[u8], stride: usize, (w, h): (usize, usize), degrees: u16, dst: &mut [u8]) {
    let at = |x: usize, y: usize| src.get(y * stride + x).copied().unwrap_or(16);
    match degrees {
        90 => {
            // Destination is h wide: dst(r, c) = src(x = r, y = h - 1 - c).
            for (r, row) in dst.chunks_exact_mut(h).enumerate().take(w) {
                for (c, d) in row.iter_mut().enumerate() {
                    *d = at(r, h - 1 - c);
                }
            }
        }
        270 => {
            for (r, row) in dst.chunks_exact_mut(h).enumerate().take(w) {
                for (c, d) in row.iter_mut().enumerate() {
                    *d = at(w - 1 - r, c);
                }
            }
        }
        _ => {
            for (r, row) in dst.chunks_exact_mut(w).enumerate().take(h) {
                for (c, d) in row.iter_mut().enumerate() {
                    *d = at(w - 1 - c, h - 1 - r);
                }
            }
        }
    }
}
