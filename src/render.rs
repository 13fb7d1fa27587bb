//! Rendering one chunk: background + captions per frame, encoded with x264.
//!
//! A chunk is a pure function of the plan, the chunk index and the background file: it
//! opens its own decoder and encoder, so chunks run in any order, on any machine, and a
//! retried chunk produces the same bytes.

use std::io::Write;
use std::time::Duration;

use storyreel_captions::render::{CaptionRenderer, Sprite};

use crate::background::{Background, BackgroundError};
use crate::compose::Overlay;
use crate::encode::{EncodeError, Encoder};
use crate::frame::Frame;
use crate::plan::{OverlayKey, RenderPlan};

/// Errors while rendering a chunk or a still.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Background(#[from] BackgroundError),
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error("chunk {index} does not exist (the plan has {count} chunks)")]
    NoSuchChunk { index: u32, count: u32 },
    #[error("frame {index} does not exist (the plan has {count} frames)")]
    NoSuchFrame { index: u64, count: u64 },
    #[error("cannot write chunk output")]
    Write(#[source] std::io::Error),
}

/// What rendering a chunk cost, for progress and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ChunkStats {
    pub frames: u64,
    pub bytes: u64,
    /// Thread CPU time spent inside x264 calls.
    pub encode_cpu: Duration,
    /// Thread CPU time spent on everything else (decode, scale, captions, I/O).
    pub other_cpu: Duration,
}

/// CPU time consumed by the calling thread.
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// Draws frames of a plan: keeps the scaled background and the current overlay between
/// frames so that repeated pictures and unchanged captions cost nothing.
pub struct FramePainter<'a> {
    plan: &'a RenderPlan,
    captions: &'a CaptionRenderer,
    background: Background,
    bg: Frame,
    out: Frame,
    overlay_key: Option<OverlayKey>,
    overlay: Overlay,
}

impl<'a> FramePainter<'a> {
    pub fn new(
        plan: &'a RenderPlan,
        captions: &'a CaptionRenderer,
        background: Background,
    ) -> Self {
        let (w, h) = (plan.encoder.width as usize, plan.encoder.height as usize);
        FramePainter {
            plan,
            captions,
            background,
            bg: Frame::black(w, h),
            out: Frame::black(w, h),
            overlay_key: None,
            overlay: Overlay::default(),
        }
    }

    /// Paints frame `index` and returns it.
    pub fn paint(&mut self, index: u64) -> Result<&Frame, RenderError> {
        if index >= self.plan.frames {
            return Err(RenderError::NoSuchFrame {
                index,
                count: self.plan.frames,
            });
        }
        self.background
            .draw(index, self.plan.encoder.fps, &mut self.bg)?;
        let key = self.plan.overlay_at(index);
        if self.overlay_key != Some(key) {
            self.overlay = self.build_overlay(key);
            self.overlay_key = Some(key);
        }
        self.out.copy_from(&self.bg);
        self.overlay.blend(&mut self.out);
        Ok(&self.out)
    }

    fn build_overlay(&self, key: OverlayKey) -> Overlay {
        let sprite: Option<Sprite> = match key {
            OverlayKey::None => None,
            OverlayKey::Title => self
                .plan
                .title
                .as_ref()
                .map(|t| self.captions.render_title_card(&t.text, &t.channel)),
            OverlayKey::Caption { page, word } => self
                .plan
                .pages
                .get(page)
                .map(|p| self.captions.render_page(p, word)),
        };
        match sprite {
            Some(s) => Overlay::from_rgba(
                s.x,
                s.y,
                s.width,
                s.height,
                &s.rgba,
                self.out.width,
                self.out.height,
            ),
            None => Overlay::default(),
        }
    }
}

/// Renders chunk `index` of `plan` as an Annex B H.264 stream into `out`.
///
/// `threads` is x264's thread count for this chunk (1 when chunks run in parallel).
/// `progress` is called after each frame with the number of frames done in this chunk.
pub fn render_chunk(
    plan: &RenderPlan,
    index: u32,
    background: Background,
    captions: &CaptionRenderer,
    threads: u32,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<ChunkStats, RenderError> {
    let range = plan.chunk(index).ok_or(RenderError::NoSuchChunk {
        index,
        count: plan.chunk_count(),
    })?;
    let cpu_start = thread_cpu_time();
    let mut encode_cpu = Duration::ZERO;
    let mut encoder = Encoder::new(&plan.encoder, threads)?;
    let mut painter = FramePainter::new(plan, captions, background);
    let mut buf = Vec::with_capacity(1 << 20);
    let mut bytes = 0u64;
    for (done, i) in (range.start..range.end).enumerate() {
        let frame = painter.paint(i)?;
        let t0 = thread_cpu_time();
        encoder.encode(frame, &mut buf)?;
        encode_cpu += thread_cpu_time().saturating_sub(t0);
        if !buf.is_empty() {
            out.write_all(&buf).map_err(RenderError::Write)?;
            bytes += buf.len() as u64;
            buf.clear();
        }
        progress(done as u64 + 1);
    }
    let t0 = thread_cpu_time();
    encoder.finish(&mut buf)?;
    encode_cpu += thread_cpu_time().saturating_sub(t0);
    out.write_all(&buf).map_err(RenderError::Write)?;
    out.flush().map_err(RenderError::Write)?;
    bytes += buf.len() as u64;
    let total = thread_cpu_time().saturating_sub(cpu_start);
    Ok(ChunkStats {
        frames: range.end - range.start,
        bytes,
        encode_cpu,
        other_cpu: total.saturating_sub(encode_cpu),
    })
}

/// Renders one frame as a still picture (the thumbnail is the title-card frame).
pub fn render_still(
    plan: &RenderPlan,
    index: u64,
    background: Background,
    captions: &CaptionRenderer,
) -> Result<Frame, RenderError> {
    let mut painter = FramePainter::new(plan, captions, background);
    painter.paint(index).cloned()
}

/// The frame the thumbnail shows: the title card if there is one, else the first caption.
pub fn thumbnail_frame(plan: &RenderPlan) -> u64 {
    let ms = match (&plan.title, plan.pages.first()) {
        (Some(_), _) => 0,
        (None, Some(p)) => p.start_ms + (p.end_ms.saturating_sub(p.start_ms)) / 2,
        (None, None) => 0,
    };
    (ms * u64::from(plan.encoder.fps) / 1000).min(plan.frames.saturating_sub(1))
}

/// Encodes a frame as a JPEG (quality 90) for the thumbnail sidecar.
pub fn encode_jpeg(frame: &Frame) -> Result<Vec<u8>, jpeg_encoder::EncodingError> {
    let rgb = frame.to_rgb();
    let mut out = Vec::new();
    let enc = jpeg_encoder::Encoder::new(&mut out, 90);
    enc.encode(
        &rgb,
        frame.width as u16,
        frame.height as u16,
        jpeg_encoder::ColorType::Rgb,
    )?;
    Ok(out)
}
