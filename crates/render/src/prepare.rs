//! Preparing footage for the background library: the working form every render decodes.
//!
//! A render only ever shows the centred 9:16 crop of a background, sampled at 30 fps. So the
//! library keeps exactly that: frame *i* of a prepared file is the picture a render of the
//! source would take at `i / 30` s ([`VideoBackground::draw`], rotation applied), cropped to
//! 9:16 at the source's own resolution (never upscaled, never above 1080x1920), encoded as
//! H.264 without B-frames with an IDR every 30 frames (closed GOPs), and muxed as a fast-start
//! MP4 without audio. A 1920x1080 source decodes a third of the pixels afterwards, at 30 fps
//! whatever it was shot at, and a chunk seeks at most 29 pictures.
//!
//! The crop is chosen so that a render of the prepared file takes the same source window as
//! a render of the source ([`prepared_size`]), so it differs from one only by the prepared
//! file's (visually lossless) compression.
//!
//! Streaming: one decoded picture and a few frame buffers are in memory at a time; encoded
//! pictures go to a payload file beside the output (with their sizes kept: 5 bytes a frame),
//! and the MP4's header is written once every size is known, then the payload is copied
//! after it.

use std::fs;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Instant;

use storyreel_mp4::h264::{self, AvcConfig, nal_type};
use storyreel_mp4::mux::{Mp4Plan, MuxError};

use crate::background::{BackgroundError, FootageInfo, VideoBackground};
use crate::encode::{EncodeError, Encoder, EncoderSettings, EncoderTuning};
use crate::frame::Frame;
use crate::merge::{TrackPicture, partial_path, video_track, write_then_rename};
use crate::scale::cover_crop;

/// Frame rate of every prepared file (the render's).
pub const PREPARED_FPS: u32 = 30;

/// Largest prepared picture: the render's own output size.
pub const MAX_PREPARED: (u32, u32) = (1080, 1920);

/// Longest footage prepared (3 hours), so a bogus duration cannot encode without end.
pub const MAX_DURATION_MS: u64 = 3 * 3600 * 1000;

/// Frames in flight between the decoding thread and the encoder.
const FRAMES_IN_FLIGHT: usize = 3;

/// How prepared files are encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct PrepareSettings {
    /// x264 constant rate factor.
    pub crf: f32,
    /// x264 preset.
    pub preset: String,
    /// x264 frame threads. Fixed rather than per machine, so the same source prepares to the
    /// same bytes anywhere (x264's output depends on its thread count).
    pub threads: u32,
}

impl Default for PrepareSettings {
    /// CRF 12 with the `faster` preset: the smallest setting measured whose renders stay
    /// within 0.5 dB (PSNR against ffmpeg's crop and scale of the source) of renders of the
    /// source on the test suite's sharpest footage (0.27 dB; 0.06-0.13 dB on 1080p test
    /// patterns and detailed panning footage). CRF 17 was 0.5-1.5 dB off; `veryfast` needed
    /// CRF 10 and larger files for 0.41 dB; `fast` and slower gain nothing measurable
    /// (ARCHITECTURE.md, "Preparing backgrounds").
    fn default() -> Self {
        PrepareSettings {
            crf: 12.0,
            preset: "faster".into(),
            threads: 4,
        }
    }
}

/// What preparing produced.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PreparedInfo {
    /// The footage as it was given.
    pub source: FootageInfo,
    /// The prepared picture size.
    pub width: u32,
    pub height: u32,
    /// Always [`PREPARED_FPS`].
    pub fps: u32,
    pub frames: u64,
    /// `frames / fps`, in ms (rounded up).
    pub duration_ms: u64,
    /// Size of the prepared file.
    pub bytes: u64,
    pub crf: f32,
    pub preset: String,
    /// Frames per closed GOP.
    pub keyint: u32,
    /// Wall time spent preparing.
    pub elapsed_ms: u64,
}

/// Why footage could not be prepared; each names the file written or the value refused.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The footage could not be decoded (the error names the file).
    #[error("cannot decode the footage")]
    Decode(#[from] BackgroundError),
    /// The 9:16 crop of the footage is too small to encode.
    #[error(
        "picture size {width}x{height} leaves a 9:16 crop of {crop_w}x{crop_h} (expected at least 16x16)"
    )]
    TooSmall {
        width: u32,
        height: u32,
        crop_w: u32,
        crop_h: u32,
    },
    /// The footage is too long.
    #[error("footage lasts {seconds:.1} s (expected at most {max} s)", max = MAX_DURATION_MS / 1000)]
    TooLong { seconds: f64 },
    /// The settings are not usable.
    #[error("invalid prepare settings")]
    Settings(#[source] EncodeError),
    /// x264 failed.
    #[error("cannot encode the prepared video")]
    Encode(#[from] EncodeError),
    /// x264's output broke the prepared file's contract (a bug, not the footage).
    #[error("the encoder broke the prepared format at frame {frame}: {reason}")]
    Contract { frame: u64, reason: String },
    /// The MP4 cannot be laid out.
    #[error("cannot lay out the prepared mp4")]
    Mux(#[from] MuxError),
    /// Writing failed.
    #[error("cannot write {path}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The prepared picture size of a `src_w x src_h` (displayed) source: the 9:16 cover crop at
/// the source's resolution, even, at most [`MAX_PREPARED`] (a larger crop is scaled down to
/// exactly 1080x1920), never larger than the source.
///
/// Where the 9:16 width (or height) is not a whole even number, it is the nearest even size
/// from which a render's own centred crop ([`cover_crop`] to 1080x1920) takes the same
/// source window as it takes from the source itself: so a 1920x1080 source prepares to
/// 608x1080 (a render keeps its centre 606 columns, source columns 656..1262 either way) and
/// 640x360 to 204x360.
pub fn prepared_size(src_w: u32, src_h: u32) -> (u32, u32) {
    let (sw, sh) = (src_w as usize, src_h as usize);
    let (mw, mh) = (MAX_PREPARED.0 as usize, MAX_PREPARED.1 as usize);
    let raw = cover_crop(sw, sh, mw, mh);
    if raw.w >= mw || raw.h >= mh {
        // The crop has at least the output's resolution: scaled down once, here, exactly as
        // a render of the source would; a render of the prepared file then copies it.
        return MAX_PREPARED;
    }
    let wide = sw * mh > mw * sh;
    // The exact 9:16 length along the cut axis, in halves, rounded to the nearest even.
    let (exact2, limit) = if wide {
        (sh * mw * 2 / mh, sw & !1)
    } else {
        (sw * mh * 2 / mw, sh & !1)
    };
    let nearest = ((exact2 + 2) / 4 * 2).max(2);
    // Candidates from the nearest even size outwards; keep the first whose render crop is
    // the source's (odd sizes and sizes beyond the source are skipped).
    let candidates = [0isize, 2, -2, 4, -4, 6];
    let same_window = |len: usize| {
        let (pw, ph) = if wide { (len, sh & !1) } else { (sw & !1, len) };
        let p = cover_crop(sw, sh, pw, ph);
        let r = cover_crop(pw, ph, mw, mh);
        (p.w, p.h) == (pw, ph) && (p.x + r.x, p.y + r.y, r.w, r.h) == (raw.x, raw.y, raw.w, raw.h)
    };
    let len = candidates
        .iter()
        .filter_map(|d| nearest.checked_add_signed(*d))
        .filter(|&l| l >= 2 && l <= limit)
        .find(|&l| same_window(l))
        .unwrap_or(nearest.min(limit));
    if wide {
        (len as u32, (sh & !1) as u32)
    } else {
        ((sw & !1) as u32, len as u32)
    }
}

/// Frames of a prepared file for footage lasting `duration_ms`: every 1/30 s slot that
/// starts inside the footage, so a loop of the prepared file is a loop of the source.
pub fn prepared_frames(duration_ms: u64) -> u64 {
    (duration_ms * u64::from(PREPARED_FPS))
        .div_ceil(1000)
        .max(1)
}

/// Prepares `video` into `out` (see the module docs): frame *i* is
/// `video.draw(i * timescale / 30, w, h)` with `(w, h)` = [`prepared_size`] of its displayed
/// size, for [`prepared_frames`] of its duration. `progress(done, total)` is called after
/// each frame is encoded. The file is written as `<out>.partial` (and its payload as
/// `<out>.partial.mdat`) and renamed when complete; on failure neither is left behind.
/// Blocking and CPU-bound: a decoding thread feeds x264 on the calling thread.
pub fn prepare_background(
    video: &mut VideoBackground,
    out: &Path,
    settings: &PrepareSettings,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<PreparedInfo, PrepareError> {
    let started = Instant::now();
    let source = video.info();
    if source.duration_ms > MAX_DURATION_MS {
        return Err(PrepareError::TooLong {
            seconds: source.duration_ms as f64 / 1000.0,
        });
    }
    let (width, height) = prepared_size(source.width, source.height);
    if width < 16 || height < 16 {
        return Err(PrepareError::TooSmall {
            width: source.width,
            height: source.height,
            crop_w: width,
            crop_h: height,
        });
    }
    let encoder = EncoderSettings {
        width,
        height,
        fps: PREPARED_FPS,
        preset: settings.preset.clone(),
        crf: settings.crf,
        keyint: PREPARED_FPS,
    };
    encoder.validate().map_err(PrepareError::Settings)?;
    let frames = prepared_frames(source.duration_ms);

    let payload = payload_path(out);
    let encoded = encode_payload(
        video,
        &encoder,
        settings.threads,
        frames,
        &payload,
        progress,
    );
    let result = encoded.and_then(|(avc, pictures)| {
        let layout = Mp4Plan::new(
            video_track(width, height, PREPARED_FPS, avc, &pictures),
            None,
        )?;
        write_then_rename(
            out,
            |tmp| write_mp4(&layout, &payload, tmp),
            |e| PrepareError::Write {
                path: out.display().to_string(),
                source: e,
            },
        )?;
        Ok(layout.total_size())
    });
    let _ = fs::remove_file(&payload);
    let bytes = result?;
    Ok(PreparedInfo {
        source,
        width,
        height,
        fps: PREPARED_FPS,
        frames,
        duration_ms: (frames * 1000).div_ceil(u64::from(PREPARED_FPS)),
        bytes,
        crf: settings.crf,
        preset: settings.preset.clone(),
        keyint: PREPARED_FPS,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

/// Where the encoded pictures wait for the MP4 header: `<out>.partial.mdat`.
fn payload_path(out: &Path) -> PathBuf {
    let mut name = partial_path(out).into_os_string();
    name.push(".mdat");
    PathBuf::from(name)
}

/// Decodes on a thread of its own and encodes here, writing AVCC samples to `payload`;
/// returns the avcC record and every picture's size and sync flag.
fn encode_payload(
    video: &mut VideoBackground,
    settings: &EncoderSettings,
    threads: u32,
    frames: u64,
    payload: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(AvcConfig, Vec<TrackPicture>), PrepareError> {
    let tuning = EncoderTuning {
        max_bframes: Some(0),
    };
    let mut encoder = Encoder::with_tuning(settings, threads, tuning)?;
    let werr = |e: std::io::Error| PrepareError::Write {
        path: payload.display().to_string(),
        source: e,
    };
    let file = fs::File::create(payload).map_err(werr)?;
    let mut sink = PayloadSink {
        out: BufWriter::with_capacity(1 << 20, file),
        path: payload,
        pictures: Vec::with_capacity(frames.min(1 << 20) as usize),
        sps: Vec::new(),
        pps: Vec::new(),
        sample: Vec::new(),
    };
    let (w, h) = (settings.width as usize, settings.height as usize);
    let ts = i128::from(video.timescale());
    let (full_tx, full_rx) = sync_channel::<Result<Frame, BackgroundError>>(FRAMES_IN_FLIGHT);
    let (empty_tx, empty_rx) = sync_channel::<Frame>(FRAMES_IN_FLIGHT);
    for _ in 0..FRAMES_IN_FLIGHT {
        // The receiver is alive and the channel has room for exactly these buffers.
        let _ = empty_tx.send(Frame::black(w, h));
    }
    std::thread::scope(|s| {
        s.spawn(move || {
            for i in 0..frames {
                // A closed channel means the encoder side stopped (it reports why).
                let Ok(mut frame) = empty_rx.recv() else {
                    break;
                };
                // The same sampling as a render with the background started at 0.
                let ticks = (i128::from(i) * ts / i128::from(PREPARED_FPS)) as i64;
                let drawn = video.draw(ticks, w, h).map(|f| {
                    frame.copy_from(f);
                    frame
                });
                let failed = drawn.is_err();
                if full_tx.send(drawn).is_err() || failed {
                    break;
                }
            }
        });
        // Owning both channel ends here means an early return closes them, which stops the
        // decoding thread before the scope joins it.
        encode_frames(&mut encoder, frames, full_rx, empty_tx, &mut sink, progress)
    })?;
    let PayloadSink {
        out,
        pictures,
        sps,
        pps,
        ..
    } = sink;
    let file = out.into_inner().map_err(|e| werr(e.into_error()))?;
    file.sync_all().map_err(werr)?;
    if pictures.len() as u64 != frames {
        return Err(PrepareError::Contract {
            frame: pictures.len() as u64,
            reason: format!("{} pictures out for {frames} in", pictures.len()),
        });
    }
    let avc = AvcConfig::from_parameter_sets(sps, pps).map_err(|e| PrepareError::Contract {
        frame: 0,
        reason: format!("unusable parameter sets: {e}"),
    })?;
    Ok((avc, pictures))
}

fn encode_frames(
    encoder: &mut Encoder,
    frames: u64,
    full: Receiver<Result<Frame, BackgroundError>>,
    empty: SyncSender<Frame>,
    sink: &mut PayloadSink,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), PrepareError> {
    let mut au = Vec::with_capacity(1 << 20);
    for done in 1..=frames {
        let frame = full.recv().map_err(|_| PrepareError::Contract {
            frame: done - 1,
            reason: "the decoding thread stopped".into(),
        })??;
        encoder.encode(&frame, &mut au)?;
        // The decoding thread may have finished its last frame already; a closed channel is fine.
        let _ = empty.send(frame);
        sink.picture(&au)?;
        au.clear();
        progress(done, frames);
    }
    while encoder.flush_one(&mut au)? {
        sink.picture(&au)?;
        au.clear();
    }
    Ok(())
}

/// Receives x264's access units one at a time and writes them as MP4 samples.
struct PayloadSink<'a> {
    out: BufWriter<fs::File>,
    path: &'a Path,
    pictures: Vec<TrackPicture>,
    sps: Vec<Vec<u8>>,
    pps: Vec<Vec<u8>>,
    sample: Vec<u8>,
}

impl PayloadSink<'_> {
    /// One access unit in Annex B (nothing when x264 held the picture back).
    fn picture(&mut self, au: &[u8]) -> Result<(), PrepareError> {
        if au.is_empty() {
            return Ok(());
        }
        let index = self.pictures.len() as u64;
        let contract = |reason: String| PrepareError::Contract {
            frame: index,
            reason,
        };
        self.sample.clear();
        let (mut idr, mut slices) = (false, 0);
        let (mut sps, mut pps) = (Vec::new(), Vec::new());
        for nal in h264::split_annexb(au) {
            match h264::nal_unit_type(nal) {
                nal_type::AUD => {}
                nal_type::SPS => sps.push(nal.to_vec()),
                nal_type::PPS => pps.push(nal.to_vec()),
                t => {
                    idr |= t == nal_type::IDR;
                    slices += usize::from(t == nal_type::IDR || t == nal_type::SLICE);
                    h264::write_avcc_nal(nal, &mut self.sample)
                        .map_err(|e| contract(format!("unwritable nal unit: {e}")))?;
                }
            }
        }
        if slices == 0 {
            return Err(contract("an access unit without a slice".into()));
        }
        // Closed GOPs of exactly one second: decoding can start at every 30th frame and
        // nowhere else is an IDR needed.
        if idr != index.is_multiple_of(u64::from(PREPARED_FPS)) {
            return Err(contract(format!(
                "{} (expected an IDR exactly every {PREPARED_FPS} frames)",
                if idr { "an IDR" } else { "no IDR" }
            )));
        }
        if idr {
            if sps.is_empty() || pps.is_empty() {
                return Err(contract("an IDR without SPS and PPS".into()));
            }
            if self.sps.is_empty() {
                (self.sps, self.pps) = (sps, pps);
            } else if (&self.sps, &self.pps) != (&sps, &pps) {
                return Err(contract("parameter sets changed".into()));
            }
        }
        self.out
            .write_all(&self.sample)
            .map_err(|e| PrepareError::Write {
                path: self.path.display().to_string(),
                source: e,
            })?;
        self.pictures.push(TrackPicture {
            size: self.sample.len() as u32,
            sync: idr,
            // No B-frames: decode order is presentation order.
            decode: index,
            present: index,
        });
        Ok(())
    }
}

/// The header, then the payload (one video track: its runs are its samples in order).
fn write_mp4(layout: &Mp4Plan, payload: &Path, tmp: &Path) -> Result<(), PrepareError> {
    let werr = |path: &Path| {
        let path = path.display().to_string();
        move |e: std::io::Error| PrepareError::Write { path, source: e }
    };
    let src = fs::File::open(payload).map_err(werr(payload))?;
    let file = fs::File::create(tmp).map_err(werr(tmp))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    w.write_all(&layout.header()).map_err(werr(tmp))?;
    let copied =
        std::io::copy(&mut BufReader::with_capacity(1 << 20, src), &mut w).map_err(werr(tmp))?;
    let header = layout.header().len() as u64;
    if header + copied != layout.total_size() {
        return Err(PrepareError::Contract {
            frame: 0,
            reason: format!(
                "{copied} payload bytes for a layout of {} after the header",
                layout.total_size() - header
            ),
        });
    }
    let file = w.into_inner().map_err(|e| werr(tmp)(e.into_error()))?;
    file.sync_all().map_err(werr(tmp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepared_sizes_are_9_16_at_source_resolution() {
        assert_eq!(prepared_size(1920, 1080), (608, 1080));
        assert_eq!(prepared_size(1280, 720), (408, 720));
        assert_eq!(prepared_size(640, 360), (204, 360));
        // Already 9:16: kept; smaller is never upscaled; larger is capped.
        assert_eq!(prepared_size(1080, 1920), (1080, 1920));
        assert_eq!(prepared_size(360, 640), (360, 640));
        assert_eq!(prepared_size(3840, 2160), (1080, 1920));
        assert_eq!(prepared_size(2160, 3840), (1080, 1920));
        // Taller than 9:16: the height is cut.
        let (w, h) = prepared_size(720, 1600);
        assert_eq!(w, 720);
        assert!((1278..=1282).contains(&h), "{h}");
    }

    /// A render of the prepared file takes the same source window as a render of the source,
    /// for every size from tiny to 4K (the guarantee the PSNR test of issue 15 measures).
    #[test]
    fn a_render_of_the_prepared_size_crops_the_same_source_window() {
        let mut unmatched = Vec::new();
        for sw in (16..=2200).step_by(2) {
            for sh in [
                16, 90, 120, 144, 180, 240, 270, 288, 360, 480, 540, 576, 720, 1080, 1440, 1920,
                2160, 2400,
            ] {
                for (sw, sh) in [(sw, sh), (sh, sw)] {
                    let (pw, ph) = prepared_size(sw as u32, sh as u32);
                    let (pw, ph) = (pw as usize, ph as usize);
                    assert!(pw % 2 == 0 && ph % 2 == 0 && pw <= 1080 && ph <= 1920);
                    assert!(pw <= sw && ph <= sh, "{sw}x{sh} upscaled to {pw}x{ph}");
                    let raw = cover_crop(sw, sh, 1080, 1920);
                    if (pw, ph) == (1080, 1920) && (raw.w, raw.h) != (1080, 1920) {
                        continue; // scaled down: same crop, scaled by the same scaler
                    }
                    let p = cover_crop(sw, sh, pw, ph);
                    let r = cover_crop(pw, ph, 1080, 1920);
                    let same = (p.w, p.h) == (pw, ph)
                        && (p.x + r.x, p.y + r.y, r.w, r.h) == (raw.x, raw.y, raw.w, raw.h);
                    if !same {
                        unmatched.push(format!("{sw}x{sh} -> {pw}x{ph}"));
                    }
                }
            }
        }
        assert!(
            unmatched.is_empty(),
            "{} sizes take another window: {:?}",
            unmatched.len(),
            &unmatched[..unmatched.len().min(20)]
        );
    }

    #[test]
    fn frames_cover_the_whole_footage() {
        assert_eq!(prepared_frames(10_000), 300);
        assert_eq!(prepared_frames(10_001), 301);
        assert_eq!(prepared_frames(10_033), 301);
        assert_eq!(prepared_frames(0), 1);
    }
}
