//! Unicode preparation and glyph layout shared by the caption and title-card renderers.
//!
//! There is no shaping engine here (no HarfBuzz: the crate stays pure Rust). What it does do:
//! NFC normalisation, Unicode-aware uppercasing, a per-glyph fallback from the caption font to
//! DejaVu Sans Bold, a visible box ("tofu") for a grapheme neither font covers, and a minimal
//! right-to-left reordering so Hebrew reads correctly. Arabic is drawn unjoined.

use ab_glyph::{Font, FontRef, GlyphId, PxScale, ScaleFont, point};
use unicode_normalization::UnicodeNormalization;
use unicode_segmentation::UnicodeSegmentation;

use crate::fonts::{Fonts, fonts};

/// What replaces cut-off text.
pub(crate) const ELLIPSIS: &str = "…";

/// Normalises `text` for display: NFC, uppercased if asked (`ß` becomes `SS`), control
/// characters dropped, whitespace runs collapsed to one space, and cut to `max_graphemes`
/// grapheme clusters with a trailing ellipsis. Work is bounded by `max_graphemes`, whatever the
/// input's length.
pub(crate) fn prepare(text: &str, uppercase: bool, max_graphemes: usize) -> String {
    // Only a bounded prefix is ever looked at: 8 chars per grapheme leaves room for long
    // combining sequences without letting a 1 MB string through.
    let limit = max_graphemes.saturating_mul(8).saturating_add(8);
    let mut truncated_input = false;
    let mut bounded = String::new();
    for (i, c) in text.chars().enumerate() {
        if i >= limit {
            truncated_input = true;
            break;
        }
        bounded.push(c);
    }

    let mut cleaned = String::with_capacity(bounded.len());
    let mut pending_space = false;
    for c in bounded.nfc() {
        if c.is_whitespace() {
            pending_space = !cleaned.is_empty();
        } else if !c.is_control() {
            if pending_space {
                cleaned.push(' ');
                pending_space = false;
            }
            cleaned.push(c);
        }
    }
    let cased: String = if uppercase {
        cleaned.to_uppercase().nfc().collect()
    } else {
        cleaned
    };

    let mut out = String::with_capacity(cased.len());
    let mut cut = truncated_input;
    for (count, g) in cased.graphemes(true).enumerate() {
        if count == max_graphemes {
            cut = true;
            break;
        }
        out.push_str(g);
    }
    if cut && max_graphemes > 0 {
        // Make room for the ellipsis and drop the space before it.
        let mut gs: Vec<&str> = out.graphemes(true).collect();
        if gs.len() >= max_graphemes {
            gs.pop();
        }
        let mut s = gs.concat().trim_end().to_string();
        s.push_str(ELLIPSIS);
        return s;
    }
    out
}

/// Characters that are invisible by design (joiners, variation selectors, bidi controls, tags):
/// skipped instead of drawn as tofu.
pub(crate) fn is_ignorable(c: char) -> bool {
    c.is_control()
        || matches!(c as u32,
            0x00AD | 0x034F | 0x061C | 0x115F..=0x1160 | 0x17B4..=0x17B5 | 0x180B..=0x180F
            | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F
            | 0xFEFF | 0xFFA0 | 0xFFF0..=0xFFF8 | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF)
}

/// Strong right-to-left letters (Hebrew, Arabic, Syriac, Thaana, N'Ko and their presentation
/// forms).
pub(crate) fn is_rtl(c: char) -> bool {
    matches!(c as u32, 0x0590..=0x08FF | 0xFB1D..=0xFDFF | 0xFE70..=0xFEFF | 0x10800..=0x10FFF | 0x1E800..=0x1EFFF)
}

/// Whether a word reads right to left: it has RTL letters and no other letters.
pub(crate) fn is_rtl_word(word: &str) -> bool {
    let mut rtl = false;
    for c in word.chars() {
        if is_rtl(c) {
            rtl = true;
        } else if c.is_alphabetic() {
            return false;
        }
    }
    rtl
}

/// The word in visual (left-to-right drawing) order: an RTL word's graphemes reversed, so
/// combining marks stay on their letters.
pub(crate) fn visual_word(word: &str) -> String {
    if is_rtl_word(word) {
        word.graphemes(true).rev().collect()
    } else {
        word.to_string()
    }
}

/// Which font a glyph comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Face {
    Main,
    Fallback,
}

/// One positioned item of a laid-out run.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Item {
    Glyph {
        face: Face,
        id: GlyphId,
        x: f32,
    },
    /// A box standing for a grapheme neither font covers.
    Tofu {
        x: f32,
    },
}

/// A single line of text laid out at one size.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    pub items: Vec<Item>,
    /// Advance width in px.
    pub width: f32,
}

/// Vertical metrics at one size, in px (y grows downwards from the baseline).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Metrics {
    /// Distance from the baseline up to the top of accented capitals.
    pub ascent: f32,
    /// Distance from the baseline down to the bottom of descenders (positive).
    pub descent: f32,
    /// Height of a capital `H`.
    pub cap_height: f32,
}

// Tofu box geometry, in em.
const TOFU_ADVANCE: f32 = 0.68;
const TOFU_LEFT: f32 = 0.07;
const TOFU_WIDTH: f32 = 0.54;
const TOFU_STROKE: f32 = 0.075;

fn font(fonts: &Fonts, face: Face) -> &FontRef<'static> {
    match face {
        Face::Main => &fonts.main,
        Face::Fallback => &fonts.fallback,
    }
}

/// The `PxScale` that makes one em of `font` `em` px tall (ab_glyph scales by ascent - descent).
fn px_scale(font: &FontRef<'_>, em: f32) -> PxScale {
    let upem = font.units_per_em().unwrap_or(1000.0);
    PxScale::from(em * font.height_unscaled() / upem)
}

/// Vertical metrics of the caption font at `em` px.
pub(crate) fn metrics(em: f32) -> Metrics {
    let f = &fonts().main;
    let scaled = f.as_scaled(px_scale(f, em));
    let cap_height = f
        .outline_glyph(
            f.glyph_id('H')
                .with_scale_and_position(px_scale(f, em), point(0.0, 0.0)),
        )
        .map_or(0.7 * em, |g| -g.px_bounds().min.y);
    Metrics {
        ascent: scaled.ascent(),
        descent: -scaled.descent(),
        cap_height,
    }
}

/// Lays out `text` (already prepared, in visual order) on one line at `em` px.
pub(crate) fn layout(text: &str, em: f32) -> Run {
    let fonts = fonts();
    let main = fonts.main.as_scaled(px_scale(&fonts.main, em));
    let fallback = fonts.fallback.as_scaled(px_scale(&fonts.fallback, em));
    let mut items = Vec::new();
    let mut x = 0.0f32;
    let mut prev: Option<(Face, GlyphId)> = None;

    for g in text.graphemes(true) {
        let mut drew_base = false;
        let mut missing = false;
        for c in g.chars() {
            if is_ignorable(c) {
                continue;
            }
            let (face, id) = if fonts.main.glyph_id(c).0 != 0 {
                (Face::Main, fonts.main.glyph_id(c))
            } else if fonts.fallback.glyph_id(c).0 != 0 {
                (Face::Fallback, fonts.fallback.glyph_id(c))
            } else {
                missing = true;
                continue;
            };
            let scaled = if face == Face::Main { &main } else { &fallback };
            if let Some((pface, pid)) = prev
                && pface == face
            {
                x += scaled.kern(pid, id);
            }
            items.push(Item::Glyph { face, id, x });
            x += scaled.h_advance(id);
            prev = Some((face, id));
            drew_base = true;
        }
        // A grapheme with nothing drawable (emoji, CJK) becomes one box; a missing combining
        // mark on a drawn letter is dropped instead, since the letter already shows.
        if missing && !drew_base {
            items.push(Item::Tofu { x });
            x += TOFU_ADVANCE * em;
            prev = None;
        }
    }
    Run { items, width: x }
}

/// Width of the gap between two caption words at `em` px.
pub(crate) fn word_gap(em: f32) -> f32 {
    let f = &fonts().main;
    let space = f.as_scaled(px_scale(f, em)).h_advance(f.glyph_id(' '));
    // League Spartan's space is narrow for big all-caps words; a fixed minimum keeps words apart
    // once the outline is added.
    space.max(0.3 * em)
}

/// Rasterises `run` at `em` px with its origin at `(x0, baseline)`, calling `put(x, y, coverage)`
/// for every covered pixel (coordinates may fall outside any buffer: `put` must clip).
pub(crate) fn draw_run(
    run: &Run,
    em: f32,
    x0: f32,
    baseline: f32,
    cap_height: f32,
    put: &mut dyn FnMut(i32, i32, f32),
) {
    let fonts = fonts();
    for item in &run.items {
        match *item {
            Item::Glyph { face, id, x } => {
                let f = font(fonts, face);
                let glyph = id.with_scale_and_position(px_scale(f, em), point(x0 + x, baseline));
                if let Some(outlined) = f.outline_glyph(glyph) {
                    let b = outlined.px_bounds();
                    let (bx, by) = (b.min.x as i32, b.min.y as i32);
                    outlined.draw(|gx, gy, c| put(bx + gx as i32, by + gy as i32, c));
                }
            }
            Item::Tofu { x } => {
                let left = x0 + x + TOFU_LEFT * em;
                let right = left + TOFU_WIDTH * em;
                let top = baseline - cap_height;
                let stroke = (TOFU_STROKE * em).max(1.0);
                crate::raster::rect_frame(left, top, right, baseline, stroke, put);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_normalises_and_uppercases() {
        assert_eq!(prepare("naïve café", true, 100), "NAÏVE CAFÉ");
        assert_eq!(prepare("Straße", true, 100), "STRASSE");
        assert_eq!(prepare("e\u{301}", false, 100), "é");
        assert_eq!(prepare("  a \t\n b\u{7}  ", false, 100), "a b");
        assert_eq!(prepare("", true, 100), "");
        assert_eq!(prepare("abcdef", false, 4), "abc…");
        assert_eq!(prepare("ab cdef", false, 3), "ab…");
        // Bounded whatever the input's size.
        let huge = "x".repeat(10_000_000);
        assert_eq!(prepare(&huge, false, 5).chars().count(), 5);
    }

    #[test]
    fn rtl_words_are_reversed() {
        assert_eq!(visual_word("שלום"), "םולש");
        assert_eq!(visual_word("hello"), "hello");
        assert!(!is_rtl_word("abcש"));
    }

    #[test]
    fn layout_falls_back_and_boxes() {
        let run = layout("A", 100.0);
        assert!(matches!(
            run.items[..],
            [Item::Glyph {
                face: Face::Main,
                ..
            }]
        ));
        let run = layout("ש", 100.0);
        assert!(matches!(
            run.items[..],
            [Item::Glyph {
                face: Face::Fallback,
                ..
            }]
        ));
        // One box per grapheme, even for a multi-codepoint emoji.
        let run = layout("👨\u{200d}👩\u{200d}👧", 100.0);
        assert_eq!(run.items.len(), 1);
        assert!(matches!(run.items[0], Item::Tofu { .. }));
        assert_eq!(layout("日本語", 100.0).items.len(), 3);
        assert!(layout("\u{200b}", 100.0).items.is_empty());
    }
}
