//! Background footage: an H.264 MP4 decoded with OpenH264, resampled to the output frame
//! rate by timestamp, looped, and cropped/scaled to fill the output.
//!
//! Random access is by sync sample: to show source time `s`, the decoder restarts at the last
//! sync sample whose presentation time is at or before `s` and decodes forward. Every output
//! frame is therefore a function of the file and `s` alone, which is what lets any chunk
//! render on its own and still match a whole render.

use std::ptr::null_mut;

use openh264::OpenH264API;
use openh264::decoder::{Decoder, DecoderConfig, Flush};
use openh264_sys2 as h264sys;
use storyreel_mp4::demux::{ReadAt, VideoTrack, read_video_track};
use storyreel_mp4::h264::{Sps, avcc_to_annexb};

use super::BackgroundError;
use crate::frame::Frame;
use crate::scale::Scaler;

/// Longest background accepted, so a bogus duration can't stall a render.
const MAX_SAMPLES: usize = 2_000_000;

/// An opened background video, positioned by source timestamps.
pub struct VideoBackground {
    src: Box<dyn ReadAt + Send + Sync>,
    track: VideoTrack,
    /// Presentation times of all samples, sorted, with the sample index.
    by_pts: Vec<(i64, u32)>,
    /// Sync samples in decode order.
    syncs: Vec<u32>,
    decoder: Option<Decoder>,
    next_feed: usize,
    /// Presentation time of the picture last scaled into the caller's frame.
    current_pts: Option<i64>,
    scaler: Option<Scaler>,
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
        Ok(VideoBackground {
            src,
            track,
            by_pts,
            syncs,
            decoder: None,
            next_feed: 0,
            current_pts: None,
            scaler: None,
            annexb: Vec::new(),
            sample: Vec::new(),
            name: name.to_string(),
        })
    }

    /// The parsed track (size, timescale, duration, samples).
    pub fn track(&self) -> &VideoTrack {
        &self.track
    }

    /// Duration in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        (self.track.duration as u128 * 1000 / u128::from(self.track.timescale)) as u64
    }

    /// Average frame rate (frames per second), for metadata.
    pub fn fps(&self) -> f64 {
        self.track.samples.len() as f64 * f64::from(self.track.timescale)
            / self.track.duration as f64
    }

    /// Draws the picture shown at source time `ticks` (track timescale, taken modulo the
    /// duration, so the footage loops) into `out`. Returns false when `out` already holds
    /// exactly that picture (the caller may skip work).
    pub fn draw(&mut self, ticks: i64, out: &mut Frame) -> Result<bool, BackgroundError> {
        let s = ticks.rem_euclid(self.track.duration);
        // The picture on screen at `s`: the last one presented at or before it.
        let pos = self.by_pts.partition_point(|&(p, _)| p <= s);
        let (target, _) = self.by_pts[pos.saturating_sub(1)];
        if self.current_pts == Some(target) {
            return Ok(false);
        }
        let seek_needed = match self.current_pts {
            None => true,
            Some(cur) => target < cur || self.sync_for(target) > self.next_feed,
        };
        if seek_needed {
            self.next_feed = self.sync_for(target);
            self.decoder = None;
        }
        self.decode_until(target, out)?;
        Ok(true)
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

    fn new_decoder(&mut self) -> Result<(), BackgroundError> {
        let cfg = DecoderConfig::new().flush_after_decode(Flush::NoFlush);
        let dec = Decoder::with_api_config(OpenH264API::from_source(), cfg).map_err(|e| {
            BackgroundError::Invalid {
                name: self.name.clone(),
                reason: format!("cannot start the h.264 decoder: {e}"),
            }
        })?;
        self.decoder = Some(dec);
        // Parameter sets first, as a decoder joining mid-stream needs them.
        self.annexb.clear();
        for ps in self.track.avc.sps.iter().chain(&self.track.avc.pps) {
            self.annexb.extend_from_slice(&[0, 0, 0, 1]);
            self.annexb.extend_from_slice(ps);
        }
        let buf = std::mem::take(&mut self.annexb);
        let r = self.feed(&buf, u64::MAX);
        self.annexb = buf;
        r.map(|_| ())
    }

    /// Feeds one access unit; returns a decoded picture's (timestamp tag, planes) if any.
    fn feed(&mut self, data: &[u8], tag: u64) -> Result<Option<Decoded>, BackgroundError> {
        let Some(dec) = self.decoder.as_mut() else {
            return Ok(None);
        };
        let mut dst = [null_mut::<u8>(); 3];
        let mut info = h264sys::SBufferInfo {
            uiInBsTimeStamp: tag,
            ..Default::default()
        };
        // SAFETY: pointers are valid for the call; the output planes stay valid until the
        // next decoder call, and `Decoded` is consumed before that.
        let state = unsafe {
            dec.raw_api().decode_frame_no_delay(
                data.as_ptr(),
                data.len() as i32,
                dst.as_mut_ptr(),
                &mut info,
            )
        };
        let fatal = h264sys::dsBitstreamError | h264sys::dsNoParamSets | h264sys::dsInvalidArgument;
        if state & fatal != 0 && tag != u64::MAX {
            return Err(self.corrupt(tag as usize, &format!("decoder state {state:#x}")));
        }
        Ok(Decoded::from_raw(dst, &info))
    }

    fn flush_one(&mut self) -> Option<Decoded> {
        let dec = self.decoder.as_mut()?;
        let mut dst = [null_mut::<u8>(); 3];
        let mut info = h264sys::SBufferInfo::default();
        // SAFETY: as in `feed`.
        unsafe {
            dec.raw_api().flush_frame(dst.as_mut_ptr(), &mut info);
        }
        Decoded::from_raw(dst, &info)
    }

    fn decode_until(&mut self, target: i64, out: &mut Frame) -> Result<(), BackgroundError> {
        if self.decoder.is_none() {
            self.new_decoder()?;
        }
        let n = self.track.samples.len();
        // Bound the work: reaching any picture takes at most one pass over the file plus
        // the decoder's reorder delay.
        for _ in 0..(2 * n + 64) {
            let got = if self.next_feed < n {
                let i = self.next_feed;
                self.next_feed += 1;
                self.load_sample(i)?;
                // A non-reference picture shown before the target is never on screen and
                // nothing predicts from it: skip its decode (halves the work for 60 fps).
                if self.track.samples[i].pts < target && !self.is_reference() {
                    continue;
                }
                let buf = std::mem::take(&mut self.annexb);
                let r = self.feed(&buf, i as u64);
                self.annexb = buf;
                r?
            } else {
                match self.flush_one() {
                    Some(d) => Some(d),
                    None => break,
                }
            };
            let Some(pic) = got else { continue };
            let Some(sample) = self.track.samples.get(pic.tag as usize) else {
                continue;
            };
            let pts = sample.pts;
            if pts < target {
                continue;
            }
            self.scale_into(&pic, out);
            self.current_pts = Some(pts);
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

    /// Whether the loaded sample's first slice has nal_ref_idc != 0.
    fn is_reference(&self) -> bool {
        let nls = self.track.avc.nal_length_size;
        for nal in storyreel_mp4::h264::avcc_nals(&self.sample, nls).flatten() {
            if let Some(&b) = nal.first() {
                if matches!(b & 0x1f, 1 | 5) {
                    return b & 0x60 != 0;
                }
            }
        }
        true
    }

    fn load_sample(&mut self, i: usize) -> Result<(), BackgroundError> {
        let s = &self.track.samples[i];
        self.sample.resize(s.size as usize, 0);
        self.src
            .read_exact_at(s.offset, &mut self.sample)
            .map_err(|e| BackgroundError::Read {
                name: self.name.clone(),
                source: e,
            })?;
        self.annexb.clear();
        avcc_to_annexb(
            &self.sample,
            self.track.avc.nal_length_size,
            &mut self.annexb,
        )
        .map_err(|e| self.corrupt(i, &e.to_string()))
    }

    fn scale_into(&mut self, pic: &Decoded, out: &mut Frame) {
        let (w, h) = (pic.width & !1, pic.height & !1);
        let rebuild = match &self.scaler {
            Some(s) => s.source_size() != (w, h),
            None => true,
        };
        if rebuild {
            self.scaler = Some(Scaler::new(w, h, out.width, out.height));
        }
        if let Some(s) = self.scaler.as_mut() {
            // SAFETY: OpenH264 guarantees these planes hold `height` rows of `stride` bytes
            // (half for chroma) until the next decoder call, which happens after this.
            let planes = unsafe {
                [
                    std::slice::from_raw_parts(pic.planes[0], pic.strides[0] * pic.height),
                    std::slice::from_raw_parts(pic.planes[1], pic.strides[1] * pic.height / 2),
                    std::slice::from_raw_parts(pic.planes[2], pic.strides[1] * pic.height / 2),
                ]
            };
            s.scale(
                planes,
                [pic.strides[0], pic.strides[1], pic.strides[1]],
                out,
            );
        }
    }
}

/// A picture borrowed from the decoder until its next call.
struct Decoded {
    tag: u64,
    planes: [*const u8; 3],
    strides: [usize; 2],
    width: usize,
    height: usize,
}

impl Decoded {
    fn from_raw(dst: [*mut u8; 3], info: &h264sys::SBufferInfo) -> Option<Self> {
        if info.iBufferStatus != 1 || dst.iter().any(|p| p.is_null()) {
            return None;
        }
        // SAFETY: with iBufferStatus == 1 the union holds the system buffer description.
        let sb = unsafe { info.UsrData.sSystemBuffer };
        if sb.iWidth < 2
            || sb.iHeight < 2
            || sb.iStride[0] < sb.iWidth
            || sb.iStride[1] < sb.iWidth / 2
        {
            return None;
        }
        Some(Decoded {
            tag: info.uiOutYuvTimeStamp,
            planes: [dst[0], dst[1], dst[2]],
            strides: [sb.iStride[0] as usize, sb.iStride[1] as usize],
            width: sb.iWidth as usize,
            height: sb.iHeight as usize,
        })
    }
}
