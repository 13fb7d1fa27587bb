//! Word-synced captions for storyreel: Polly speech marks in, caption pages, RGBA sprites and
//! SRT/VTT sidecars out.
//!
//! The flow is `marks::parse_marks` → `pages::words_from_marks` → `pages::plan_pages` (measured
//! with `CaptionRenderer::measure`) → per frame `pages::active` picks the page and word, and
//! `CaptionRenderer::render_page` draws it (once per page and highlighted word; callers cache
//! the sprite). Marks, pages and subtitles are pure; rendering is synchronous and CPU-bound, and
//! uses fonts embedded at build time (see `build.rs`), so it does no I/O either.

pub mod marks;
pub mod pages;
pub mod render;
pub mod subtitles;

mod fonts;
mod raster;
mod text;

pub use marks::{Mark, MarkKind, MarksError, parse_marks};
pub use pages::{Page, PageConfig, Word, active, plan_pages, words_from_marks};
pub use render::{CaptionRenderer, CaptionStyle, Rect, Rgba, SafeArea, Shadow, Sprite};
pub use subtitles::{title_split, to_srt, to_vtt};

/// File names of the embedded fonts, as found on the build machine.
pub const EMBEDDED_FONTS: [&str; 2] = [fonts::CAPTION_FONT_FILE, fonts::FALLBACK_FONT_FILE];
