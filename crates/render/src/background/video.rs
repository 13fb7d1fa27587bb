//! Background footage: an H.264 MP4 decoded (by libavcodec when the system has it, else by
//! `rusty_h264`; see [`super::decoder`]), resampled to the output frame rate by timestamp,
//! looped, and cropped/scaled to fill the output.
//!
//! Random access is by sync sample: to show source time `s`, the decoder restarts at the last
//! sync sample whose presentation time is at or before `s` and decodes forward. Every output
//! frame is therefore a function of the file and `s` alone, which is what lets any chunk
//! render on its own and still match a whole render.

use storyreel_mp4::demux::{ReadAt, VideoTrack, read_video_track};
use storyreel_mp4::h264::{Sps, avcc_to_annexb};

use super::BackgroundError;
use super::decoder::{Decoder, DecoderKind, Picture};
use crate::frame::Frame;
use crate::scale::Scaler;

/// Longest background accepted, so a bogus duration can't stall a render.
const MAX_SAMPLES: usize = 2_000_000;

/// Decoded pictures waiting for their turn on screen (B-frame reordering needs a few; the
/// H.264 DPB holds at most 16).
const MAX_PENDING: usize = 32;

/// What an opened background is, as a library records it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FootageInfo {
    /// The codec's short name (`h264`, `hevc`, `vp9`, `av1`, ...).
    pub codec: String,
    /// The container's short name (`mp4`, `matroska`, ...).
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

/// An opened background video, positioned by source timestamps.
pub struct VideoBackground {
    src: Box<dyn ReadAt + Send + Sync>,
    track: VideoTrack,
    /// Presentation times of all samples, sorted, with the sample index.
    by_pts: Vec<(i64, u32)>,
    /// Sync samples in decode order.
    syncs: Vec<u32>,
    kind: DecoderKind,
    decoder: Option<Decoder>,
    /// Decoded pictures presented after the last target.
    pending: Vec<Picture>,
    next_feed: usize,
    /// libavcodec refused a picture since the last seek: `rusty_h264` decodes until the next.
    fallback: bool,
    /// Presentation time of the picture last scaled into the caller's frame.
    current_pts: Option<i64>,
    scaler: Option<Scaler>,
    /// The decoded picture turned upright, for tracks with a rotation matrix.
    upright: Option<Frame>,
    /// The picture at `current_pts`, fitted to the output size.
    picture: Option<Frame>,
    annexb: Vec<u8>,
    sample: Vec<u8>,
    name: String,
}

impl VideoBackground {
    /// Opens `src` (named `name` in errors): reads the sample tables and checks the codec.
    pub fn open(src: Box<dyn ReadAt + Send + Sync>, name: &str) -> Result<Self, BackgroundError> {
        let err = |reason: String| BackgroundError::Invalid {
            name: name.to_string(),
            reason,
        };
        let track = read_video_track(src.as_ref()).map_err(|e| BackgroundError::Container {
            name: name.to_string(),
            source: e,
        })?;
        if track.width < 16 || track.height < 16 {
            return Err(err(format!(
                "picture size {}x{} is too small (expected at least 16x16)",
                track.width, track.height
            )));
        }
        if track.samples.is_empty() {
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
        let sps_nal = track
            .avc
            .sps
            .first()
            .ok_or_else(|| err("avcC holds no sequence parameter set".into()))?;
        let sps =
            Sps::parse(sps_nal).map_err(|e| err(format!("bad sequence parameter set: {e}")))?;
        if sps.chroma_format_idc != 1 || sps.bit_depth_luma != 8 || sps.bit_depth_chroma != 8 {
            return Err(err(format!(
                "unsupported h.264 format: profile {}, chroma format {}, {}-bit (expected 8-bit 4:2:0)",
                sps.profile_idc, sps.chroma_format_idc, sps.bit_depth_luma
            )));
        }
        if !sps.frame_mbs_only {
            return Err(err(
                "interlaced h.264 is not supported (expected progressive)".into(),
            ));
        }
        let mut by_pts: Vec<(i64, u32)> = track
            .samples
            .iter()
            .enumerate()
            .map(|(i, s)| (s.pts, i as u32))
            .collect();
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
        let kind = DecoderKind::from_env().map_err(err)?;
        Ok(VideoBackground {
            src,
            track,
            by_pts,
            syncs,
            kind,
            decoder: None,
            pending: Vec::new(),
            next_feed: 0,
            fallback: false,
            current_pts: None,
            scaler: None,
            upright: None,
            picture: None,
            annexb: Vec::new(),
            sample: Vec::new(),
            name: name.to_string(),
        })
    }

    /// Opens a background file on local disk (named by its path in errors).
    pub fn open_file(path: &std::path::Path) -> Result<Self, BackgroundError> {
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| BackgroundError::Read {
            name: name.clone(),
            source: e,
        })?;
        Self::open(Box::new(file), &name)
    }

    /// What the footage is: codec, container, displayed size, rate, length, rotation.
    pub fn info(&self) -> FootageInfo {
        let t = &self.track;
        let (mut width, mut height) = (t.width, t.height);
        if t.rotation % 180 == 90 {
            std::mem::swap(&mut width, &mut height);
        }
        let duration_ms = self.duration_ms();
        let frames = t.samples.len() as u64;
        let fps = frames as f64 * 1000.0 / duration_ms.max(1) as f64;
        FootageInfo {
            codec: "h264".into(),
            container: "mp4".into(),
            width,
            height,
            fps: (fps * 1000.0).round() / 1000.0,
            frames,
            duration_ms,
            rotation: t.rotation,
        }
    }

    /// Ticks per second of the times [`Self::draw`] takes.
    pub fn timescale(&self) -> u32 {
        self.track.timescale
    }

    /// The parsed track (size, timescale, duration, samples).
    pub fn track(&self) -> &VideoTrack {
        &self.track
    }

    /// The decoder this background uses.
    pub fn decoder(&self) -> DecoderKind {
        self.kind
    }

    /// Decodes with `kind` from the next picture drawn on (instead of the one
    /// `STORYREEL_H264_DECODER` chose when the file was opened).
    pub fn use_decoder(&mut self, kind: DecoderKind) {
        self.kind = kind;
        self.fallback = false;
        self.decoder = None;
        self.pending.clear();
        self.current_pts = None;
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
        let pos = self.by_pts.partition_point(|&(p, _)| p <= s);
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
            self.fallback = false;
            self.decoder = None;
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
        BackgroundError::Invalid {
            name: self.name.clone(),
            reason: format!("corrupt h.264 data at frame {sample}: {what}"),
        }
    }

    fn decode_until(&mut self, target: i64, out: &mut Frame) -> Result<(), BackgroundError> {
        // Pictures shown before the target are never needed again.
        self.pending.retain(|p| p.pts() >= target);
        if let Some(pos) = self.pending.iter().position(|p| p.pts() == target) {
            let pic = self.pending.swap_remove(pos);
            self.scale_into(&pic, out);
            self.current_pts = Some(target);
            return Ok(());
        }
        let first_after_seek = self.decoder.is_none();
        if first_after_seek {
            self.start_decoder()?;
        }
        let n = self.track.samples.len();
        let mut with_parameter_sets = first_after_seek;
        // Pictures the decoder just gave out, before they are sorted into `pending`.
        let mut ready = Vec::new();
        let shown = loop {
            let i = self.next_feed;
            let decoded = if i < n {
                self.next_feed += 1;
                self.load_sample(i, with_parameter_sets)?;
                with_parameter_sets = false;
                let pts = self.track.samples[i].pts;
                // A non-reference picture shown before the target is never on screen and
                // nothing predicts from it: skip its decode (halves the work for 60 fps).
                if pts < target && !self.is_reference() {
                    continue;
                }
                match self.decoder.as_mut() {
                    Some(d) => d.decode(&self.annexb, pts, &mut ready),
                    None => Ok(()),
                }
            } else {
                // End of the track: take the pictures held back for reordering.
                match self.decoder.as_mut() {
                    Some(d) => d.finish(&mut ready),
                    None => Ok(()),
                }
            };
            if let Err(e) = decoded {
                if self.active_kind() == DecoderKind::Libavcodec {
                    // libavcodec, told to fail rather than conceal, also refuses what is not
                    // corruption: the leading pictures of an open GOP entered at its I picture
                    // (they predict from pictures before it), and the memory management
                    // commands that then name pictures it never saw. Decode from the sync
                    // sample again with rusty_h264, which gives the same pictures for
                    // everything shown and is the judge of real corruption.
                    self.fallback = true;
                    self.next_feed = self.sync_for(target);
                    self.pending.clear();
                    ready.clear();
                    self.start_decoder()?;
                    with_parameter_sets = true;
                    continue;
                }
                return Err(self.corrupt(i.min(n - 1), &e));
            }
            let shown = self.sort_ready(&mut ready, target, out);
            if shown.is_err() || shown == Ok(true) || i >= n {
                break shown.map_err(|what| self.corrupt(i.min(n - 1), what));
            }
        };
        if shown? {
            return Ok(());
        }
        // The target's own sample never produced a picture: show the next one, if any.
        if let Some(pos) = (0..self.pending.len()).min_by_key(|&k| self.pending[k].pts()) {
            let pic = self.pending.swap_remove(pos);
            self.scale_into(&pic, out);
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

    /// The decoder used until the next seek.
    fn active_kind(&self) -> DecoderKind {
        if self.fallback {
            DecoderKind::RustyH264
        } else {
            self.kind
        }
    }

    fn start_decoder(&mut self) -> Result<(), BackgroundError> {
        let kind = self.active_kind();
        let decoder = Decoder::new(kind).map_err(|e| BackgroundError::Invalid {
            name: self.name.clone(),
            reason: format!("cannot start the {} decoder: {e}", kind.name()),
        })?;
        self.decoder = Some(decoder);
        Ok(())
    }

    /// Sorts the pictures the decoder gave out: the target's is scaled into `out` (true),
    /// later ones wait in `pending`, earlier ones are dropped.
    fn sort_ready(
        &mut self,
        ready: &mut Vec<Picture>,
        target: i64,
        out: &mut Frame,
    ) -> Result<bool, &'static str> {
        let mut shown = false;
        for pic in ready.drain(..) {
            let pts = pic.pts();
            if pts == target && !shown {
                self.scale_into(&pic, out);
                self.current_pts = Some(target);
                shown = true;
            } else if pts > target {
                if self.pending.len() >= MAX_PENDING {
                    return Err("more reordered pictures than h.264 allows");
                }
                self.pending.push(pic);
            }
        }
        Ok(shown)
    }

    /// Whether the loaded sample's first slice has nal_ref_idc != 0.
    fn is_reference(&self) -> bool {
        let nls = self.track.avc.nal_length_size;
        for nal in storyreel_mp4::h264::avcc_nals(&self.sample, nls).flatten() {
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
        let s = &self.track.samples[i];
        self.sample.resize(s.size as usize, 0);
        self.src
            .read_exact_at(s.offset, &mut self.sample)
            .map_err(|e| BackgroundError::Read {
                name: self.name.clone(),
                source: e,
            })?;
        self.annexb.clear();
        if with_parameter_sets {
            for ps in self.track.avc.sps.iter().chain(&self.track.avc.pps) {
                self.annexb.extend_from_slice(&[0, 0, 0, 1]);
                self.annexb.extend_from_slice(ps);
            }
        }
        avcc_to_annexb(
            &self.sample,
            self.track.avc.nal_length_size,
            &mut self.annexb,
        )
        .map_err(|e| self.corrupt(i, &e.to_string()))
    }

    fn scale_into(&mut self, pic: &Picture, out: &mut Frame) {
        let (planes, strides) = pic.planes();
        let (w, h) = (pic.size().0 & !1, pic.size().1 & !1);
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
