//! Rendering one chunk: background + captions per frame, encoded with x264.
//!
//! A chunk is a pure function of the plan, the chunk index and the background file: it
//! opens its own decoder and encoder, so chunks run in any order, on any machine, and a
//! retried chunk produces the same bytes.

use std::io::Write;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
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
    #[error("the painting thread stopped before the chunk was complete")]
    PainterStopped,
    #[error("cannot write chunk output")]
    Write(#[source] std::io::Error),
}

/// What rendering a chunk cost, for progress and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ChunkStats {
    pub frames: u64,
    pub bytes: u64,
    /// CPU time of the painting thread: background decode and scaling, captions, blending.
    /// Everything else a chunk spends is x264 (in the calling thread and x264's own threads).
    pub paint_cpu: Duration,
}

/// CPU time consumed by the calling thread.
pub fn thread_cpu_time() -> Duration {
    clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU time consumed by the whole process, all threads.
pub fn process_cpu_time() -> Duration {
    clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn clock(id: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    let rc = unsafe { libc::clock_gettime(id, &mut ts) };
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
    background: &'a mut Background,
    overlay_key: Option<OverlayKey>,
    overlay: Overlay,
}

impl<'a> FramePainter<'a> {
    pub fn new(
        plan: &'a RenderPlan,
        captions: &'a CaptionRenderer,
        background: &'a mut Background,
    ) -> Self {
        FramePainter {
            plan,
            captions,
            background,
            overlay_key: None,
            overlay: Overlay::default(),
        }
    }

    /// Paints frame `index` into `dst` (which must have the plan's size).
    pub fn paint_into(&mut self, index: u64, dst: &mut Frame) -> Result<(), RenderError> {
        if index >= self.plan.frames {
            return Err(RenderError::NoSuchFrame {
                index,
                count: self.plan.frames,
            });
        }
        let key = self.plan.overlay_at(index);
        if self.overlay_key != Some(key) {
            self.overlay = self.build_overlay(key);
            self.overlay_key = Some(key);
        }
        let enc = &self.plan.encoder;
        let bg = self
            .background
            .draw(index, enc.fps, enc.width as usize, enc.height as usize)?;
        dst.copy_from(bg);
        self.overlay.blend(dst);
        Ok(())
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
                self.plan.encoder.width as usize,
                self.plan.encoder.height as usize,
            ),
            None => Overlay::default(),
        }
    }
}

/// Frames in flight between the painting thread and the encoder.
const FRAMES_IN_FLIGHT: usize = 3;

/// Renders chunk `index` of `plan` as an Annex B H.264 stream into `out`.
///
/// Painting (decode, scale, captions) runs on its own thread, feeding the encoder through a
/// small ring of reused frame buffers, so the two overlap; `threads` is x264's thread count
/// (0 = x264 decides). `progress` is called after each frame with the frames done so far.
///
/// `background` may be reused for the next chunk: a decoder left at the end of chunk k
/// continues into chunk k + 1 without seeking (the frames are the same either way).
pub fn render_chunk(
    plan: &RenderPlan,
    index: u32,
    background: &mut Background,
    captions: &CaptionRenderer,
    threads: u32,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<ChunkStats, RenderError> {
    let range = plan.chunk(index).ok_or(RenderError::NoSuchChunk {
        index,
        count: plan.chunk_count(),
    })?;
    let mut encoder = Encoder::new(&plan.encoder, threads)?;
    let (w, h) = (plan.encoder.width as usize, plan.encoder.height as usize);
    let (full_tx, full_rx) = sync_channel::<Result<Frame, RenderError>>(FRAMES_IN_FLIGHT);
    let (empty_tx, empty_rx) = sync_channel::<Frame>(FRAMES_IN_FLIGHT);
    for _ in 0..FRAMES_IN_FLIGHT {
        // The receiver is alive and the channel has room for exactly these buffers.
        let _ = empty_tx.send(Frame::black(w, h));
    }
    std::thread::scope(|s| {
        let painter = s.spawn(move || {
            let t0 = thread_cpu_time();
            let mut painter = FramePainter::new(plan, captions, background);
            for i in range.start..range.end {
                // A closed channel means the encoder side stopped (it reports why).
                let Ok(mut frame) = empty_rx.recv() else {
                    break;
                };
                let painted = painter.paint_into(i, &mut frame).map(|_| frame);
                let failed = painted.is_err();
                if full_tx.send(painted).is_err() || failed {
                    break;
                }
            }
            thread_cpu_time().saturating_sub(t0)
        });
        // Owning both channel ends here means an early return closes them, which stops the
        // painter before the scope joins it.
        let encoded = encode_frames(
            &mut encoder,
            range.end - range.start,
            full_rx,
            empty_tx,
            out,
            progress,
        );
        let paint_cpu = painter.join().unwrap_or_default();
        encoded.map(|bytes| ChunkStats {
            frames: range.end - range.start,
            bytes,
            paint_cpu,
        })
    })
}

/// The encoder side of [`render_chunk`]: returns the bytes written.
fn encode_frames(
    encoder: &mut Encoder,
    count: u64,
    full: Receiver<Result<Frame, RenderError>>,
    empty: SyncSender<Frame>,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, RenderError> {
    let mut buf = Vec::with_capacity(1 << 20);
    let mut bytes = 0u64;
    for done in 1..=count {
        let frame = full.recv().map_err(|_| RenderError::PainterStopped)??;
        encoder.encode(&frame, &mut buf)?;
        // The painter may have finished its last frame already; a closed channel is fine.
        let _ = empty.send(frame);
        if !buf.is_empty() {
            out.write_all(&buf).map_err(RenderError::Write)?;
            bytes += buf.len() as u64;
            buf.clear();
        }
        progress(done);
    }
    encoder.finish(&mut buf)?;
    out.write_all(&buf).map_err(RenderError::Write)?;
    out.flush().map_err(RenderError::Write)?;
    Ok(bytes + buf.len() as u64)
}

/// Renders one frame as a still picture (the thumbnail is the title-card frame).
pub fn render_still(
    plan: &RenderPlan,
    index: u64,
    mut background: Background,
    captions: &CaptionRenderer,
) -> Result<Frame, RenderError> {
    let mut painter = FramePainter::new(plan, captions, &mut background);
    let mut frame = Frame::black(plan.encoder.width as usize, plan.encoder.height as usize);
    painter.paint_into(index, &mut frame)?;
    Ok(frame)
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
