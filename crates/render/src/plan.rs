//! The render plan: everything every chunk must agree on, decided once before rendering.
//!
//! Pure: no I/O. A plan is serialised next to the job's other artifacts, so each chunk (a
//! thread here, a Lambda in the cloud) renders from the same decisions: frame count, chunk
//! ranges, encoder settings, background start, caption pages and title-card timing.

use serde::{Deserialize, Serialize};
use storyreel_captions::marks::{Mark, MarkKind, parse_marks};
use storyreel_captions::pages::{Page, plan_pages, words_from_marks};
use storyreel_captions::render::{CaptionRenderer, CaptionStyle};

use crate::encode::EncoderSettings;

/// Plan format version, bumped when a field changes meaning.
pub const PLAN_VERSION: u32 = 1;

/// Output frame rate.
pub const FPS: u32 = 30;

/// How long the video runs past the end of the narration, so the last word isn't cut.
pub const TAIL_MS: u64 = 500;

/// Frames per chunk by default: 10 s of video. Every chunk restarts the background decoder at
/// a keyframe and the encoder at an IDR, which cost about 8% of a 150-frame chunk's time and
/// half that at 300 (BENCHMARKS.md); 300 still splits a 60 s short six ways.
pub const DEFAULT_CHUNK_FRAMES: u32 = 300;

/// Frames per chunk allowed.
pub const CHUNK_FRAMES_RANGE: std::ops::RangeInclusive<u32> = 8..=18_000;

/// Longest narration accepted (Shorts allow 3 minutes; this leaves room for other uses).
pub const MAX_AUDIO_MS: u64 = 30 * 60 * 1000;

/// What the user asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderOptions {
    /// x264 preset.
    pub preset: String,
    /// x264 constant rate factor.
    pub crf: f32,
    /// Frames per chunk (the unit of parallel work).
    pub chunk_frames: u32,
    /// 540x960 preview instead of 1080x1920.
    pub draft: bool,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            preset: "veryfast".into(),
            crf: 23.0,
            chunk_frames: DEFAULT_CHUNK_FRAMES,
            draft: false,
        }
    }
}

/// The background footage and where in it the video starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackgroundRef {
    /// A path (local runs) or storage key (cloud runs) of an H.264 MP4.
    pub key: String,
    /// Offset into the footage of output frame 0, in ms (already resolved: never random here).
    pub start_ms: u64,
}

/// The title card and how long it is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TitleCard {
    pub text: String,
    pub channel: String,
    /// The card is shown for `[0, until_ms)`; captions start after it.
    pub until_ms: u64,
    /// Number of leading narrated words that read the title (not captioned).
    pub title_words: usize,
}

/// One chunk's frame range `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRange {
    pub index: u32,
    pub start: u64,
    pub end: u64,
}

/// Every decision the chunks share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderPlan {
    pub version: u32,
    pub encoder: EncoderSettings,
    /// Total frames of the video.
    pub frames: u64,
    pub chunk_frames: u32,
    /// Narration length in ms.
    pub audio_ms: u64,
    pub background: Option<BackgroundRef>,
    pub title: Option<TitleCard>,
    /// Caption pages, in time order.
    pub pages: Vec<Page>,
}

/// Why a plan could not be made: always the caller's input.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("audio has no samples (expected a narration of at least one frame)")]
    EmptyAudio,
    #[error("audio lasts {0} ms (expected at most {MAX_AUDIO_MS} ms)")]
    AudioTooLong(u64),
    #[error("invalid speech marks")]
    Marks(#[from] storyreel_captions::marks::MarksError),
    #[error(
        "speech marks line {line}: word {word:?} starts at {time_ms} ms, after the audio ends at {audio_ms} ms"
    )]
    MarkPastAudio {
        line: usize,
        word: String,
        time_ms: u64,
        audio_ms: u64,
    },
    #[error("chunk size {0} frames is out of range (expected {min} ..= {max})", min = CHUNK_FRAMES_RANGE.start(), max = CHUNK_FRAMES_RANGE.end())]
    ChunkFrames(u32),
    #[error(transparent)]
    Encoder(#[from] crate::encode::EncodeError),
}

/// Output picture size for the options.
pub fn output_size(draft: bool) -> (u32, u32) {
    if draft { (540, 960) } else { (1080, 1920) }
}

/// The caption renderer for a plan's frame size (the same in every chunk).
pub fn caption_renderer(plan: &RenderPlan) -> CaptionRenderer {
    CaptionRenderer::new(CaptionStyle::for_frame(
        plan.encoder.width,
        plan.encoder.height,
    ))
}

/// Inputs to [`make_plan`], all already read.
pub struct PlanInputs<'a> {
    /// Narration length in ms (from the decoded audio).
    pub audio_ms: u64,
    /// Polly-format speech marks (JSON lines).
    pub marks_jsonl: &'a str,
    pub title: Option<&'a str>,
    /// Name shown on the title card.
    pub channel: &'a str,
    pub background: Option<BackgroundRef>,
    pub options: &'a RenderOptions,
}

/// Decides the whole render. Fails only on bad input, with the reason.
pub fn make_plan(inp: &PlanInputs<'_>) -> Result<RenderPlan, PlanError> {
    if inp.audio_ms == 0 {
        return Err(PlanError::EmptyAudio);
    }
    if inp.audio_ms > MAX_AUDIO_MS {
        return Err(PlanError::AudioTooLong(inp.audio_ms));
    }
    let opts = inp.options;
    if !CHUNK_FRAMES_RANGE.contains(&opts.chunk_frames) {
        return Err(PlanError::ChunkFrames(opts.chunk_frames));
    }
    let encoder = encoder_settings(opts);
    let (width, height) = (encoder.width, encoder.height);
    encoder.validate()?;

    let marks = parse_marks(inp.marks_jsonl)?;
    check_marks_within_audio(&marks, inp.marks_jsonl, inp.audio_ms)?;
    let words = words_from_marks(&marks, inp.audio_ms);

    let renderer = CaptionRenderer::new(CaptionStyle::for_frame(width, height));
    let title = inp.title.map(str::trim).filter(|t| !t.is_empty()).map(|t| {
        let n = storyreel_captions::subtitles::title_split(&words, t);
        // While the title is read aloud the card is up; if the narration doesn't read it,
        // the card still gets a moment on screen before the first caption.
        let until_ms = match words.get(n) {
            Some(w) if n > 0 => w.start_ms,
            _ => words.first().map_or(0, |w| w.start_ms).max(1500),
        };
        TitleCard {
            text: t.to_string(),
            channel: inp.channel.to_string(),
            until_ms,
            title_words: n,
        }
    });
    let skip = title.as_ref().map_or(0, |t| t.title_words);
    let cfg = renderer.page_config();
    let mut pages = plan_pages(&words[skip.min(words.len())..], &cfg, &|s| {
        renderer.measure(s)
    });
    if let Some(t) = &title {
        // Nothing may overlap the card: captions of words spoken under it start after it.
        pages.retain_mut(|p| {
            p.start_ms = p.start_ms.max(t.until_ms);
            p.end_ms > p.start_ms
        });
    }

    let frames = frame_count(inp.audio_ms);
    Ok(RenderPlan {
        version: PLAN_VERSION,
        encoder,
        frames,
        chunk_frames: opts.chunk_frames,
        audio_ms: inp.audio_ms,
        background: inp.background.clone(),
        title,
        pages,
    })
}

/// The encoder settings for the options (not yet validated).
pub fn encoder_settings(opts: &RenderOptions) -> EncoderSettings {
    let (width, height) = output_size(opts.draft);
    EncoderSettings {
        width,
        height,
        fps: FPS,
        preset: if opts.draft {
            "ultrafast".into()
        } else {
            opts.preset.clone()
        },
        crf: if opts.draft {
            opts.crf.max(28.0)
        } else {
            opts.crf
        },
        // Two-second GOPs inside a chunk; a chunk always starts a new one.
        keyint: (2 * FPS).min(opts.chunk_frames),
    }
}

/// Frames of a video whose narration lasts `audio_ms` (the narration plus the tail).
pub fn frame_count(audio_ms: u64) -> u64 {
    (audio_ms + TAIL_MS)
        .saturating_mul(u64::from(FPS))
        .div_ceil(1000)
}

/// The chunks of a video of `frames` frames, `chunk_frames` each (the last may be shorter).
pub fn chunk_ranges(frames: u64, chunk_frames: u32) -> Vec<ChunkRange> {
    let n = u64::from(chunk_frames.max(1));
    (0..frames.div_ceil(n))
        .map(|i| ChunkRange {
            index: i as u32,
            start: i * n,
            end: ((i + 1) * n).min(frames),
        })
        .collect()
}

/// Marks that start after the audio ends mean the marks belong to other audio.
fn check_marks_within_audio(marks: &[Mark], jsonl: &str, audio_ms: u64) -> Result<(), PlanError> {
    let Some((i, m)) = marks
        .iter()
        .enumerate()
        .find(|(_, m)| m.kind == MarkKind::Word && m.time_ms > audio_ms)
    else {
        return Ok(());
    };
    // parse_marks keeps one mark per non-blank line, in order.
    let line = jsonl
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .nth(i)
        .map_or(i + 1, |(n, _)| n + 1);
    Err(PlanError::MarkPastAudio {
        line,
        word: m.value.clone(),
        time_ms: m.time_ms,
        audio_ms,
    })
}

impl RenderPlan {
    /// Number of chunks.
    pub fn chunk_count(&self) -> u32 {
        self.frames.div_ceil(u64::from(self.chunk_frames)) as u32
    }

    /// The frame range of chunk `index`, if it exists.
    pub fn chunk(&self, index: u32) -> Option<ChunkRange> {
        let start = u64::from(index) * u64::from(self.chunk_frames);
        (start < self.frames).then(|| ChunkRange {
            index,
            start,
            end: (start + u64::from(self.chunk_frames)).min(self.frames),
        })
    }

    /// All chunks in order.
    pub fn chunks(&self) -> impl Iterator<Item = ChunkRange> + '_ {
        (0..self.chunk_count()).filter_map(|i| self.chunk(i))
    }

    /// Time of frame `index` in ms (floor).
    pub fn frame_ms(&self, index: u64) -> u64 {
        index * 1000 / u64::from(self.encoder.fps)
    }

    /// Video duration in ms.
    pub fn duration_ms(&self) -> u64 {
        self.frames * 1000 / u64::from(self.encoder.fps)
    }

    /// What is drawn over the background at frame `index`.
    pub fn overlay_at(&self, index: u64) -> OverlayKey {
        let t = self.frame_ms(index);
        if let Some(card) = &self.title
            && t < card.until_ms
        {
            return OverlayKey::Title;
        }
        match storyreel_captions::pages::active(&self.pages, t) {
            Some((page, word)) => OverlayKey::Caption { page, word },
            None => OverlayKey::None,
        }
    }
}

/// Identifies one distinct overlay picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OverlayKey {
    None,
    Title,
    Caption { page: usize, word: usize },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marks(words: &[(&str, u64)]) -> String {
        let mut s = String::new();
        let mut pos = 0;
        for (w, t) in words {
            s.push_str(&format!(
                "{{\"time\":{t},\"type\":\"word\",\"start\":{pos},\"end\":{},\"value\":\"{w}\"}}\n",
                pos + w.len()
            ));
            pos += w.len() + 1;
        }
        s
    }

    fn inputs<'a>(jsonl: &'a str, audio_ms: u64, opts: &'a RenderOptions) -> PlanInputs<'a> {
        PlanInputs {
            audio_ms,
            marks_jsonl: jsonl,
            title: None,
            channel: "storyreel",
            background: None,
            options: opts,
        }
    }

    #[test]
    fn frames_cover_the_narration_plus_tail_and_chunks_tile_them() {
        let opts = RenderOptions {
            chunk_frames: 40,
            ..Default::default()
        };
        let m = marks(&[("Hello", 0), ("there", 400), ("friend.", 900)]);
        let plan = make_plan(&inputs(&m, 3001, &opts)).expect("plan");
        assert_eq!(plan.frames, (3001u64 + TAIL_MS) * 30 / 1000 + 1);
        let chunks: Vec<_> = plan.chunks().collect();
        assert_eq!(chunks.len(), plan.chunk_count() as usize);
        assert_eq!(chunks[0].start, 0);
        assert_eq!(chunks.last().map(|c| c.end), Some(plan.frames));
        assert!(chunks.windows(2).all(|w| w[0].end == w[1].start));
    }

    #[test]
    fn bad_inputs_name_the_problem() {
        let opts = RenderOptions::default();
        let m = marks(&[("Hello", 0), ("late", 5000)]);
        let e = make_plan(&inputs(&m, 0, &opts))
            .err()
            .map(|e| e.to_string());
        assert!(e.unwrap_or_default().contains("no samples"));
        let e = make_plan(&inputs(&m, 4000, &opts))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("line 2") && e.contains("\"late\"") && e.contains("4000 ms"),
            "{e}"
        );
        let bad =
            "{\"time\":0,\"type\":\"word\",\"start\":0,\"end\":1,\"value\":\"a\"}\nnot json\n";
        let e = make_plan(&inputs(bad, 4000, &opts))
            .err()
            .map(|e| format!("{:#}", anyhow::Error::from(e)))
            .unwrap_or_default();
        assert!(e.contains("line 2"), "{e}");
        let o = RenderOptions {
            chunk_frames: 2,
            ..Default::default()
        };
        let e = make_plan(&inputs(&marks(&[("a", 0)]), 1000, &o))
            .err()
            .map(|e| e.to_string());
        assert!(e.unwrap_or_default().contains("8 ..= 18000"));
    }

    #[test]
    fn title_card_covers_the_narrated_title_then_captions_follow() {
        let opts = RenderOptions::default();
        let m = marks(&[
            ("My", 0),
            ("cat", 300),
            ("story", 600),
            ("It", 1500),
            ("began", 1800),
        ]);
        let mut inp = inputs(&m, 3000, &opts);
        inp.title = Some("My cat story");
        let plan = make_plan(&inp).expect("plan");
        let card = plan.title.as_ref().expect("card");
        assert_eq!((card.title_words, card.until_ms), (3, 1500));
        assert_eq!(plan.overlay_at(0), OverlayKey::Title);
        assert_eq!(plan.overlay_at(44), OverlayKey::Title);
        assert_eq!(
            plan.overlay_at(45),
            OverlayKey::Caption { page: 0, word: 0 }
        );
        assert!(plan.pages.iter().all(|p| p.start_ms >= 1500));
    }
}
