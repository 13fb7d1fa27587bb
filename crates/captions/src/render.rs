//! Renders caption pages and the title card into positioned RGBA sprites for compositing.
//!
//! Every size is a fraction of the frame width, so a 540x960 draft looks like the 1080x1920
//! render, only smaller. Sprites are placed inside the area that TikTok, Shorts and Reels leave
//! uncovered by their UI (see [`SafeArea`]). Input text is untrusted: any string renders or
//! degrades visibly (fallback font, then a box per unknown glyph), is cut to a bounded length,
//! and never panics.

use ab_glyph_rasterizer::point;

use crate::pages::{Page, PageConfig};
use crate::raster::{Canvas, PathSeg, box_blur, distance_to_ink, premul, rounded_rect_sdf};
use crate::text::{self, ELLIPSIS, Metrics, Run};

/// Longest caption word drawn, in grapheme clusters; longer words end in an ellipsis.
pub const MAX_WORD_GRAPHEMES: usize = 32;
/// Most words drawn on one caption page; further words are replaced by an ellipsis.
pub const MAX_PAGE_WORDS: usize = 12;
/// Longest title drawn on the title card, in grapheme clusters.
pub const MAX_TITLE_GRAPHEMES: usize = 300;
/// Longest channel name drawn on the title card, in grapheme clusters.
pub const MAX_CHANNEL_GRAPHEMES: usize = 40;
/// Most lines of a caption page (used only when a page is wider than the safe area).
const MAX_CAPTION_LINES: usize = 3;
/// Most lines of title text on the title card.
const MAX_TITLE_LINES: usize = 6;

/// A colour as straight-alpha RGBA bytes.
pub type Rgba = [u8; 4];

/// An image to composite onto the frame at `(x, y)`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sprite {
    /// Left edge in frame pixels; `0 <= x` and `x + width <= frame_width`.
    pub x: i32,
    /// Top edge in frame pixels; `0 <= y` and `y + height <= frame_height`.
    pub y: i32,
    /// Width in pixels (0 for an empty sprite).
    pub width: u32,
    /// Height in pixels (0 for an empty sprite).
    pub height: u32,
    /// `width * height * 4` bytes of premultiplied RGBA, row-major. Fully transparent pixels are
    /// `(0, 0, 0, 0)` and no colour channel exceeds its alpha.
    pub rgba: Vec<u8>,
}

impl Sprite {
    /// Whether there is nothing to draw.
    pub fn is_empty(&self) -> bool {
        self.width == 0 || self.height == 0
    }

    /// The premultiplied RGBA of the sprite pixel `(x, y)` (sprite coordinates), if inside.
    pub fn pixel(&self, x: u32, y: u32) -> Option<[u8; 4]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = (y as usize * self.width as usize + x as usize) * 4;
        self.rgba.get(i..i + 4).and_then(|p| p.try_into().ok())
    }

    /// Composites the sprite ("over") onto an opaque or transparent RGBA8 frame of
    /// `frame_width x frame_height` pixels (straight alpha, row-major), clipping to the frame.
    /// Does nothing if `frame` is shorter than the stated size or `rgba` shorter than the sprite.
    pub fn draw_over(&self, frame: &mut [u8], frame_width: u32, frame_height: u32) {
        let (fw, fh) = (frame_width as usize, frame_height as usize);
        let sprite_len = (self.width as usize)
            .saturating_mul(self.height as usize)
            .saturating_mul(4);
        if frame.len() < fw.saturating_mul(fh).saturating_mul(4) || self.rgba.len() < sprite_len {
            return;
        }
        for sy in 0..self.height as usize {
            let fy = self.y as i64 + sy as i64;
            if fy < 0 || fy >= fh as i64 {
                continue;
            }
            for sx in 0..self.width as usize {
                let fx = self.x as i64 + sx as i64;
                if fx < 0 || fx >= fw as i64 {
                    continue;
                }
                let s = (sy * self.width as usize + sx) * 4;
                let a = u32::from(self.rgba[s + 3]);
                if a == 0 {
                    continue;
                }
                let d = (fy as usize * fw + fx as usize) * 4;
                for c in 0..3 {
                    let dst = u32::from(frame[d + c]);
                    frame[d + c] = (u32::from(self.rgba[s + c]) + (dst * (255 - a) + 127) / 255)
                        .min(255) as u8;
                }
                let da = u32::from(frame[d + 3]);
                frame[d + 3] = (a + (da * (255 - a) + 127) / 255).min(255) as u8;
            }
        }
    }
}

/// The part of the frame that the platforms' UI leaves visible, as fractions of the frame's
/// width (`left`, `right`) and height (`top`, `bottom`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SafeArea {
    /// Default 0.06: a little margin from the left edge.
    pub left: f32,
    /// Default 0.85: the like/comment/share column covers the right ~15%.
    pub right: f32,
    /// Default 0.10: the tabs and search bar cover the top ~10%.
    pub top: f32,
    /// Default 0.80: the caption, music ticker and nav bar cover the bottom ~20%.
    pub bottom: f32,
}

impl Default for SafeArea {
    fn default() -> Self {
        Self {
            left: 0.06,
            right: 0.85,
            top: 0.10,
            bottom: 0.80,
        }
    }
}

/// A soft drop shadow under the outlined caption text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shadow {
    /// Shadow colour; its alpha is the shadow's opacity. Default black at 55%.
    pub color: Rgba,
    /// Downward offset, as a fraction of the font size. Default 0.04.
    pub offset: f32,
    /// Blur radius, as a fraction of the font size. Default 0.06.
    pub blur: f32,
}

impl Default for Shadow {
    fn default() -> Self {
        Self {
            color: [0, 0, 0, 140],
            offset: 0.04,
            blur: 0.06,
        }
    }
}

/// How captions look. Sizes are relative, so one style serves every frame size.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptionStyle {
    /// Frame width in pixels (16..=8192; out-of-range values are clamped). Default 1080.
    pub frame_width: u32,
    /// Frame height in pixels (16..=8192; out-of-range values are clamped). Default 1920.
    pub frame_height: u32,
    /// Font size (em) as a fraction of the frame width: 0.092 gives ~99 px at 1080 wide.
    pub font_size: f32,
    /// Colour of the words not being spoken. Default white.
    pub fill: Rgba,
    /// Colour of the word being spoken. Default `#FFE600`.
    pub highlight: Rgba,
    /// Outline colour. Default black.
    pub outline: Rgba,
    /// Outline thickness as a fraction of the font size. Default 0.09 (~9 px at 1080 wide).
    pub outline_width: f32,
    /// Optional drop shadow. Default `Some(Shadow::default())`.
    pub shadow: Option<Shadow>,
    /// Whether captions are drawn in capitals (Unicode-aware: `ß` becomes `SS`). Default true.
    pub uppercase: bool,
    /// Where captions and the title card may go.
    pub safe_area: SafeArea,
    /// Vertical centre of the caption block as a fraction of the frame height. Default 0.58: a
    /// bit below the middle, where the eye rests, above the bottom UI.
    pub center_y: f32,
}

impl Default for CaptionStyle {
    fn default() -> Self {
        Self::for_frame(1080, 1920)
    }
}

impl CaptionStyle {
    /// The default style for a frame of the given size.
    pub fn for_frame(frame_width: u32, frame_height: u32) -> Self {
        Self {
            frame_width,
            frame_height,
            font_size: 0.092,
            fill: [255, 255, 255, 255],
            highlight: [255, 230, 0, 255],
            outline: [0, 0, 0, 255],
            outline_width: 0.09,
            shadow: Some(Shadow::default()),
            uppercase: true,
            safe_area: SafeArea::default(),
            center_y: 0.58,
        }
    }

    /// The style with every field forced into a range the renderer can draw (NaN and
    /// out-of-range values replaced by the nearest sane value), so rendering cannot blow up on
    /// a bad configuration.
    fn sanitised(mut self) -> Self {
        let d = Self::for_frame(self.frame_width, self.frame_height);
        fn clamp(v: f32, lo: f32, hi: f32, default: f32) -> f32 {
            if v.is_finite() {
                v.clamp(lo, hi)
            } else {
                default
            }
        }
        self.frame_width = self.frame_width.clamp(16, 8192);
        self.frame_height = self.frame_height.clamp(16, 8192);
        self.font_size = clamp(self.font_size, 0.01, 0.3, d.font_size);
        self.outline_width = clamp(self.outline_width, 0.0, 0.3, d.outline_width);
        if let Some(s) = &mut self.shadow {
            s.offset = clamp(s.offset, -0.5, 0.5, 0.04);
            s.blur = clamp(s.blur, 0.0, 0.5, 0.06);
        }
        let sa = &mut self.safe_area;
        sa.left = clamp(sa.left, 0.0, 0.45, 0.06);
        sa.right = clamp(sa.right, sa.left + 0.1, 1.0, 0.85f32.max(sa.left + 0.1));
        sa.top = clamp(sa.top, 0.0, 0.45, 0.10);
        sa.bottom = clamp(sa.bottom, sa.top + 0.1, 1.0, 0.80f32.max(sa.top + 0.1));
        self.center_y = clamp(self.center_y, sa.top, sa.bottom, 0.58);
        self
    }
}

/// A rectangle in frame pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    /// Left edge.
    pub x0: f32,
    /// Top edge.
    pub y0: f32,
    /// Right edge (exclusive).
    pub x1: f32,
    /// Bottom edge (exclusive).
    pub y1: f32,
}

impl Rect {
    /// `x1 - x0`.
    pub fn width(&self) -> f32 {
        self.x1 - self.x0
    }
    /// `y1 - y0`.
    pub fn height(&self) -> f32 {
        self.y1 - self.y0
    }
}

/// Draws caption pages and title cards in one style. Holds no per-page state: it is cheap to
/// clone and can be shared between threads (`Send + Sync`); the fonts are embedded and parsed
/// once per process.
#[derive(Debug, Clone)]
pub struct CaptionRenderer {
    style: CaptionStyle,
    /// Nominal font size in px.
    em: f32,
    safe: Rect,
}

/// One word of a page, prepared for drawing.
struct PageWord {
    text: String,
    highlighted: bool,
}

impl CaptionRenderer {
    /// A renderer for `style` (out-of-range fields are clamped, see [`CaptionStyle`]).
    pub fn new(style: CaptionStyle) -> Self {
        let style = style.sanitised();
        let (w, h) = (style.frame_width as f32, style.frame_height as f32);
        let sa = style.safe_area;
        let safe = Rect {
            x0: sa.left * w,
            y0: sa.top * h,
            x1: sa.right * w,
            y1: sa.bottom * h,
        };
        let em = style.font_size * w;
        Self { style, em, safe }
    }

    /// The style in use (after clamping).
    pub fn style(&self) -> &CaptionStyle {
        &self.style
    }

    /// The safe area in frame pixels; every sprite lies inside it.
    pub fn safe_rect(&self) -> Rect {
        self.safe
    }

    /// Page planning settings matching this renderer: `max_width_px` is the widest text (as
    /// [`CaptionRenderer::measure`] counts it) that fits the safe area with its outline.
    pub fn page_config(&self) -> PageConfig {
        PageConfig {
            max_width_px: self.safe.width() - 2.0 * self.padding(self.em) - 1.0,
            ..PageConfig::default()
        }
    }

    /// Width in px of `text` drawn as one caption line at the nominal size, without the outline:
    /// the words (split on whitespace, prepared as [`CaptionRenderer::render_page`] prepares
    /// them) plus the gaps between them. Bounded work for any input.
    pub fn measure(&self, text: &str) -> f32 {
        let mut width = 0.0;
        let mut n = 0;
        for word in text.split_whitespace().take(MAX_PAGE_WORDS) {
            let prepared = self.prepare_word(word);
            if prepared.is_empty() {
                continue;
            }
            width += text::layout(&prepared, self.em).width;
            n += 1;
        }
        if n > 1 {
            width += (n - 1) as f32 * text::word_gap(self.em);
        }
        width
    }

    fn prepare_word(&self, word: &str) -> String {
        text::visual_word(&text::prepare(
            word,
            self.style.uppercase,
            MAX_WORD_GRAPHEMES,
        ))
    }

    /// Space around the text for the outline and the shadow, at font size `em`.
    fn padding(&self, em: f32) -> f32 {
        let shadow = self
            .style
            .shadow
            .map_or(0.0, |s| s.offset.abs() + 2.0 * s.blur);
        (self.style.outline_width + shadow) * em + 2.0
    }

    /// Renders `page` with word `highlighted` (an index into `page.words`; out of range means
    /// none) in the highlight colour and the others in the fill colour, outlined.
    ///
    /// The words go on one line, centred in the safe area at `center_y`; a page wider than the
    /// safe area wraps to 2 or 3 balanced lines, and a word that is too wide on its own shrinks
    /// the font until it fits. The sprite is cropped to its visible pixels and lies inside the
    /// safe area; a page with nothing drawable gives an empty sprite.
    pub fn render_page(&self, page: &Page, highlighted: usize) -> Sprite {
        let mut words: Vec<PageWord> = page
            .words
            .iter()
            .take(MAX_PAGE_WORDS)
            .enumerate()
            .map(|(i, w)| PageWord {
                text: self.prepare_word(&w.text),
                highlighted: i == highlighted,
            })
            .filter(|w| !w.text.is_empty())
            .collect();
        if page.words.len() > MAX_PAGE_WORDS {
            words.push(PageWord {
                text: ELLIPSIS.to_string(),
                highlighted: false,
            });
        }
        // Minimal bidi: a page of right-to-left words reads from the right.
        if !words.is_empty()
            && words
                .iter()
                .all(|w| text::is_rtl_word(&w.text) || w.text == ELLIPSIS)
        {
            words.reverse();
        }
        let runs: Vec<Run> = words
            .iter()
            .map(|w| text::layout(&w.text, self.em))
            .collect();
        if runs.iter().all(|r| r.items.is_empty()) {
            return Sprite::default();
        }

        // Fit at the nominal size, then scale everything (text, outline, padding) by `scale`.
        let widths: Vec<f32> = runs.iter().map(|r| r.width).collect();
        let gap = text::word_gap(self.em);
        let pad = self.padding(self.em);
        let (lines, scale) = fit_lines(
            &widths,
            gap,
            self.safe.width() - 2.0 * pad - 1.0,
            pad,
            MAX_CAPTION_LINES,
        );
        let em = self.em * scale;
        let runs: Vec<Run> = if scale < 1.0 {
            words.iter().map(|w| text::layout(&w.text, em)).collect()
        } else {
            runs
        };
        let gap = gap * scale;
        let pad = self.padding(em);
        let m = text::metrics(em);
        let line_height = self.line_height(&m, em);

        let line_widths: Vec<f32> = lines
            .iter()
            .map(|r| {
                runs[r.clone()].iter().map(|run| run.width).sum::<f32>()
                    + gap * r.len().saturating_sub(1) as f32
            })
            .collect();
        let text_w = line_widths.iter().copied().fold(0.0, f32::max);
        let cw = (text_w + 2.0 * pad).ceil() as usize;
        let ch = (m.ascent + m.descent + line_height * (lines.len() - 1) as f32 + 2.0 * pad).ceil()
            as usize;
        let baseline0 = pad + m.ascent;

        // Coverage of plain and highlighted text, kept apart to colour them differently.
        let mut plain = vec![0.0f32; cw * ch];
        let mut hi = vec![0.0f32; cw * ch];
        for (li, range) in lines.iter().enumerate() {
            let baseline = baseline0 + li as f32 * line_height;
            let mut x = pad + (text_w - line_widths[li]) / 2.0;
            for wi in range.clone() {
                let buf = if words[wi].highlighted {
                    &mut hi
                } else {
                    &mut plain
                };
                text::draw_run(
                    &runs[wi],
                    em,
                    x,
                    baseline,
                    m.cap_height,
                    &mut |px, py, c| {
                        if px >= 0 && py >= 0 && (px as usize) < cw && (py as usize) < ch {
                            let v = &mut buf[py as usize * cw + px as usize];
                            *v = (*v + c).min(1.0);
                        }
                    },
                );
                x += runs[wi].width + gap;
            }
        }

        // Centre of the text block: from the top of the first line's capitals to the last
        // baseline, so pages with and without descenders sit at the same height.
        let block_mid =
            (baseline0 - m.cap_height + baseline0 + line_height * (lines.len() - 1) as f32) / 2.0;
        let cx = (self.safe.x0 + self.safe.x1) / 2.0;
        let cy = self.style.center_y * self.style.frame_height as f32;
        let x = (cx - cw as f32 / 2.0).round();
        let y = (cy - block_mid).round();
        self.compose_outlined(&plain, &hi, cw, ch, em, x as i64, y as i64)
    }

    /// Baseline-to-baseline distance for wrapped caption lines.
    fn line_height(&self, m: &Metrics, em: f32) -> f32 {
        if self.style.uppercase {
            // Capitals need no room for descenders: tight lines read as one block.
            m.cap_height + 0.28 * em
        } else {
            m.ascent + m.descent
        }
    }

    /// Composites shadow, outline and coloured text from the two coverage buffers and places
    /// the result with its top-left corner at frame position `(x, y)`.
    #[allow(clippy::too_many_arguments)]
    fn compose_outlined(
        &self,
        plain: &[f32],
        hi: &[f32],
        w: usize,
        h: usize,
        em: f32,
        x: i64,
        y: i64,
    ) -> Sprite {
        let ink: Vec<f32> = plain
            .iter()
            .zip(hi)
            .map(|(a, b)| (a + b).min(1.0))
            .collect();
        let radius = self.style.outline_width * em;
        let outline: Vec<f32> = if radius > 0.0 {
            // Distances are measured to pixel centres with at least half coverage, which sit
            // about half a pixel inside the glyph edge: hence `radius + 0.5` before the
            // one-pixel anti-aliasing ramp.
            distance_to_ink(&ink, w, h, radius + 1.0)
                .into_iter()
                .map(|d| (radius + 0.5 - d).clamp(0.0, 1.0))
                .collect()
        } else {
            ink
        };

        let shadow = self.style.shadow.map(|shadow| {
            let dy = (shadow.offset * em).round() as isize;
            let mut s = vec![0.0f32; w * h];
            for y in 0..h {
                let sy = y as isize - dy;
                if sy >= 0 && sy < h as isize {
                    s[y * w..][..w].copy_from_slice(&outline[sy as usize * w..][..w]);
                }
            }
            box_blur(&mut s, w, h, ((shadow.blur * em) / 2.0).round() as usize, 2);
            (premul(shadow.color), s)
        });
        let (oc, fc, hc) = (
            premul(self.style.outline),
            premul(self.style.fill),
            premul(self.style.highlight),
        );
        let alpha = |i: usize| {
            let o = outline[i];
            match &shadow {
                Some((sc, s)) => o + sc[3] * s[i] * (1.0 - o),
                None => o,
            }
        };
        let color = |i: usize| {
            let mut p = match &shadow {
                Some((sc, s)) => sc.map(|c| c * s[i].min(1.0)),
                None => [0.0; 4],
            };
            let o = outline[i];
            if o > 0.0 {
                p = over(oc, o, p);
            }
            if plain[i] > 0.0 {
                p = over(fc, plain[i], p);
            }
            if hi[i] > 0.0 {
                p = over(hc, hi[i], p);
            }
            p
        };
        self.place(w, h, x, y, alpha, color)
    }

    /// Makes a sprite of a `w x h` image whose top-left corner goes at frame position `(x, y)`:
    /// moved inside the safe area (then the frame) if it sticks out, and cropped to its visible
    /// pixels. `alpha(i)` and `color(i)` give pixel `i` (row-major) as alpha and premultiplied
    /// colour; `alpha` is only used to find the visible pixels.
    fn place(
        &self,
        w: usize,
        h: usize,
        x: i64,
        y: i64,
        alpha: impl Fn(usize) -> f32,
        color: impl Fn(usize) -> [f32; 4],
    ) -> Sprite {
        let safe = self.safe;
        let fit = |pos: i64, size: i64, lo: f32, hi: f32| -> i64 {
            let (lo, hi) = (lo.ceil() as i64, hi.floor() as i64);
            if size <= hi - lo {
                pos.clamp(lo, hi - size)
            } else {
                lo + (hi - lo - size) / 2
            }
        };
        let x = fit(x, w as i64, safe.x0, safe.x1);
        let y = fit(y, h as i64, safe.y0, safe.y1);

        // Visible pixels, limited to the frame in case the image is bigger than the safe area
        // (only possible for absurd styles).
        let (fw, fh) = (
            i64::from(self.style.frame_width),
            i64::from(self.style.frame_height),
        );
        let cx0 = (-x).clamp(0, w as i64) as usize;
        let cx1 = (fw - x).clamp(0, w as i64) as usize;
        let cy0 = (-y).clamp(0, h as i64) as usize;
        let cy1 = (fh - y).clamp(0, h as i64) as usize;
        let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
        for cy in cy0..cy1 {
            let row = cy * w;
            let Some(first) = (cx0..cx1).find(|&cx| alpha(row + cx) >= 0.5 / 255.0) else {
                continue;
            };
            let last = (first..cx1)
                .rev()
                .find(|&cx| alpha(row + cx) >= 0.5 / 255.0)
                .unwrap_or(first);
            x0 = x0.min(first);
            x1 = x1.max(last + 1);
            y0 = y0.min(cy);
            y1 = cy + 1;
        }
        if x0 >= x1 || y0 >= y1 {
            return Sprite::default();
        }
        let (sw, sh) = (x1 - x0, y1 - y0);
        let mut rgba = Vec::with_capacity(sw * sh * 4);
        for cy in y0..y1 {
            for cx in x0..x1 {
                rgba.extend_from_slice(&to_rgba8(color(cy * w + cx)));
            }
        }
        Sprite {
            x: (x + x0 as i64) as i32,
            y: (y + y0 as i64) as i32,
            width: sw as u32,
            height: sh as u32,
            rgba,
        }
    }

    /// Renders a Reddit-post-style title card: a white rounded panel with the channel's avatar
    /// and name, the title in bold dark text (up to 6 lines, shrunk then ellipsised if longer),
    /// and a footer of like and comment counts. Centred in the safe area. Any text renders
    /// (fallback font, boxes for unknown glyphs); the title is cut to [`MAX_TITLE_GRAPHEMES`].
    pub fn render_title_card(&self, title: &str, channel_name: &str) -> Sprite {
        let fw = self.style.frame_width as f32;
        let u = |f: f32| f * fw; // sizes as fractions of the frame width
        let panel_w = 0.88 * self.safe.width();
        let pad = u(0.045);
        let radius = u(0.04);
        let inner_w = panel_w - 2.0 * pad;

        let title = text::prepare(title, false, MAX_TITLE_GRAPHEMES);
        let channel = text::prepare(channel_name, false, MAX_CHANNEL_GRAPHEMES);

        // Title: the largest size from 0.064 down to 0.044 of the width that fits in 6 lines,
        // else the smallest size with the 6th line ellipsised.
        let mut title_em = u(0.064);
        let mut title_lines = wrap_text(&title, title_em, inner_w);
        while title_lines.len() > MAX_TITLE_LINES && title_em > u(0.045) {
            title_em *= 0.92;
            title_lines = wrap_text(&title, title_em, inner_w);
        }
        if title_lines.len() > MAX_TITLE_LINES {
            title_lines.truncate(MAX_TITLE_LINES);
            if let Some(last) = title_lines.last_mut() {
                *last = ellipsise(last, title_em, inner_w);
            }
        }
        let tm = text::metrics(title_em);
        let title_line_h = 1.16 * title_em;

        let avatar = u(0.078);
        let name_em = u(0.042);
        let foot_em = u(0.04);
        let icon = u(0.046);
        let pill_h = u(0.075);
        let gap_after_header = u(0.032);
        let gap_after_title = u(0.034);

        let title_h = if title_lines.is_empty() {
            0.0
        } else {
            tm.cap_height + title_line_h * (title_lines.len() - 1) as f32 + tm.descent
        };
        let panel_h = pad + avatar + gap_after_header + title_h + gap_after_title + pill_h + pad;

        // The canvas holds the panel plus room for its soft shadow.
        let margin = u(0.03);
        let cw = (panel_w + 2.0 * margin).ceil() as usize;
        let ch = (panel_h + 2.0 * margin).ceil() as usize;
        let mut c = Canvas::new(cw, ch);
        let panel = (margin, margin, margin + panel_w, margin + panel_h);

        // Soft shadow, slightly lower than the panel: lifts it off busy gameplay footage.
        let blur = u(0.022);
        let drop = u(0.008);
        let shadow_rect = (panel.0, panel.1 + drop, panel.2, panel.3 + drop);
        let shadow_color = premul([0, 0, 0, 110]);
        for y in 0..ch {
            for x in 0..cw {
                let d = rounded_rect_sdf(x as f32 + 0.5, y as f32 + 0.5, shadow_rect, radius);
                let a = (0.5 - d / (2.0 * blur)).clamp(0.0, 1.0);
                if a > 0.0 {
                    c.blend(x as i32, y as i32, shadow_color, a * a * (3.0 - 2.0 * a));
                }
            }
        }
        c.fill_sdf(panel, premul([255, 255, 255, 255]), |x, y| {
            rounded_rect_sdf(x, y, panel, radius)
        });

        // Header: avatar, channel name, verified badge.
        let ax = panel.0 + pad;
        let ay = panel.1 + pad;
        let (acx, acy, ar) = (ax + avatar / 2.0, ay + avatar / 2.0, avatar / 2.0);
        draw_avatar(&mut c, acx, acy, ar);
        let nm = text::metrics(name_em);
        let name_x = ax + avatar + u(0.022);
        let name_baseline = acy + nm.cap_height / 2.0;
        let name_run = text::layout(&channel, name_em);
        let name_max = panel.2 - pad - name_x - u(0.05);
        let name_run = if name_run.width > name_max {
            text::layout(&ellipsise(&channel, name_em, name_max), name_em)
        } else {
            name_run
        };
        draw_text(
            &mut c,
            &name_run,
            name_em,
            name_x,
            name_baseline,
            nm.cap_height,
            [26, 26, 27, 255],
        );
        if !name_run.items.is_empty() {
            let br = u(0.016);
            draw_badge(&mut c, name_x + name_run.width + u(0.012) + br, acy, br);
        }

        // Title.
        let mut baseline = ay + avatar + gap_after_header + tm.cap_height;
        for line in &title_lines {
            let run = text::layout(line, title_em);
            draw_text(
                &mut c,
                &run,
                title_em,
                panel.0 + pad,
                baseline,
                tm.cap_height,
                [26, 26, 27, 255],
            );
            baseline += title_line_h;
        }

        // Footer: pills with a heart and a speech bubble, each with a count.
        let fm = text::metrics(foot_em);
        let pill_y = panel.3 - pad - pill_h;
        let pill_mid = pill_y + pill_h / 2.0;
        let count = text::layout("99+", foot_em);
        let pill_pad = u(0.026);
        let pill_w = pill_pad + icon + u(0.016) + count.width + pill_pad;
        let grey = [120, 124, 126, 255];
        let mut px = panel.0 + pad;
        for kind in [Icon::Heart, Icon::Comment] {
            let pill = (px, pill_y, px + pill_w, pill_y + pill_h);
            c.fill_sdf(pill, premul([237, 239, 241, 255]), |x, y| {
                rounded_rect_sdf(x, y, pill, pill_h / 2.0)
            });
            let (ix, iy) = (px + pill_pad, pill_mid - icon / 2.0);
            match kind {
                Icon::Heart => draw_heart(&mut c, ix, iy, icon, premul([255, 59, 92, 255])),
                Icon::Comment => draw_bubble(&mut c, ix, iy, icon, premul(grey)),
            }
            draw_text(
                &mut c,
                &count,
                foot_em,
                ix + icon + u(0.016),
                pill_mid + fm.cap_height / 2.0,
                fm.cap_height,
                grey,
            );
            px += pill_w + u(0.022);
        }

        let cx = (self.safe.x0 + self.safe.x1) / 2.0;
        let cy = (self.safe.y0 + self.safe.y1) / 2.0;
        let (x, y) = (
            (cx - cw as f32 / 2.0).round() as i64,
            (cy - ch as f32 / 2.0).round() as i64,
        );
        self.place(cw, ch, x, y, |i| c.px[i][3], |i| c.px[i])
    }
}

/// Chooses how to break words of the given widths into at most `max_lines` lines and the scale
/// factor (<= 1) at which the widest line plus `2 * pad` fits in `avail + 2 * pad`. Prefers the
/// fewest lines at full size; if no split fits at full size, the split allowing the largest
/// scale. Lines minimise the widest line, so two lines come out balanced.
// A list of line ranges that happens to hold one line, not a range to expand.
#[allow(clippy::single_range_in_vec_init)]
fn fit_lines(
    widths: &[f32],
    gap: f32,
    avail: f32,
    pad: f32,
    max_lines: usize,
) -> (Vec<std::ops::Range<usize>>, f32) {
    let n = widths.len();
    if n == 0 {
        return (vec![0..0], 1.0);
    }
    let line_w = |r: std::ops::Range<usize>| {
        widths[r.clone()].iter().sum::<f32>() + gap * r.len().saturating_sub(1) as f32
    };
    let scale_for = |max_w: f32| ((avail + 2.0 * pad) / (max_w + 2.0 * pad)).min(1.0);

    let mut best: Option<(Vec<std::ops::Range<usize>>, f32)> = None;
    for k in 1..=max_lines.min(n) {
        // Balanced split into k lines by brute force: pages are short (<= MAX_PAGE_WORDS + 1).
        let mut best_k: Option<(Vec<std::ops::Range<usize>>, f32)> = None;
        let mut consider = |cuts: Vec<usize>| {
            let mut ranges = Vec::with_capacity(cuts.len() + 1);
            let mut start = 0;
            for &c in cuts.iter().chain(std::iter::once(&n)) {
                ranges.push(start..c);
                start = c;
            }
            let m = ranges.iter().map(|r| line_w(r.clone())).fold(0.0, f32::max);
            if best_k.as_ref().is_none_or(|(_, bm)| m < *bm) {
                best_k = Some((ranges, m));
            }
        };
        match k {
            1 => consider(vec![]),
            2 => (1..n).for_each(|a| consider(vec![a])),
            _ => {
                for a in 1..n {
                    for b in a + 1..n {
                        consider(vec![a, b]);
                    }
                }
            }
        }
        let Some((ranges, m)) = best_k else { continue };
        let s = scale_for(m);
        if s >= 1.0 {
            return (ranges, 1.0);
        }
        if best.as_ref().is_none_or(|(_, bs)| s > *bs + 1e-3) {
            best = Some((ranges, s));
        }
    }
    best.map_or((vec![0..n], 1.0), |(r, s)| (r, s.max(0.01)))
}

/// Wraps `text` into lines no wider than `max_w` at `em` px, breaking at spaces and, inside a
/// word too long for a line, between grapheme clusters.
fn wrap_text(text: &str, em: f32, max_w: f32) -> Vec<String> {
    use unicode_segmentation::UnicodeSegmentation;
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let word = text::visual_word(word);
        let candidate = if line.is_empty() {
            word.clone()
        } else {
            format!("{line} {word}")
        };
        if text::layout(&candidate, em).width <= max_w {
            line = candidate;
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        if text::layout(&word, em).width <= max_w {
            line = word;
            continue;
        }
        for g in word.graphemes(true) {
            let candidate = format!("{line}{g}");
            if !line.is_empty() && text::layout(&candidate, em).width > max_w {
                lines.push(std::mem::replace(&mut line, g.to_string()));
            } else {
                line = candidate;
            }
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// `line` with an ellipsis appended, dropping graphemes from the end until it fits `max_w`.
fn ellipsise(line: &str, em: f32, max_w: f32) -> String {
    use unicode_segmentation::UnicodeSegmentation;
    let mut gs: Vec<&str> = line.graphemes(true).collect();
    loop {
        let s = format!("{}{ELLIPSIS}", gs.concat().trim_end());
        if gs.is_empty() || text::layout(&s, em).width <= max_w {
            return s;
        }
        gs.pop();
    }
}

fn draw_text(
    c: &mut Canvas,
    run: &Run,
    em: f32,
    x: f32,
    baseline: f32,
    cap_height: f32,
    color: Rgba,
) {
    let color = premul(color);
    text::draw_run(run, em, x, baseline, cap_height, &mut |px, py, cov| {
        c.blend(px, py, color, cov)
    });
}

enum Icon {
    Heart,
    Comment,
}

/// The avatar: an orange disc with a white face and two eyes, a nod to Reddit's mascot.
fn draw_avatar(c: &mut Canvas, cx: f32, cy: f32, r: f32) {
    let disc = |rr: f32, ox: f32, oy: f32| {
        move |x: f32, y: f32| ((x - cx - ox).powi(2) + (y - cy - oy).powi(2)).sqrt() - rr
    };
    let b = (cx - r - 1.0, cy - r - 1.0, cx + r + 1.0, cy + r + 1.0);
    c.fill_sdf(b, premul([255, 69, 0, 255]), disc(r, 0.0, 0.0));
    // Head: a wide ellipse, approximated by scaling the distance.
    let (hw, hh) = (0.62 * r, 0.44 * r);
    let head = move |x: f32, y: f32| {
        let (dx, dy) = ((x - cx) / hw, (y - cy - 0.18 * r) / hh);
        ((dx * dx + dy * dy).sqrt() - 1.0) * hh
    };
    c.fill_sdf(b, premul([255, 255, 255, 255]), head);
    for ox in [-0.24 * r, 0.24 * r] {
        c.fill_sdf(b, premul([255, 69, 0, 255]), disc(0.1 * r, ox, 0.12 * r));
    }
    // Antenna ball.
    c.fill_sdf(
        b,
        premul([255, 255, 255, 255]),
        disc(0.12 * r, 0.3 * r, -0.55 * r),
    );
}

/// A blue verified badge with a white check mark.
fn draw_badge(c: &mut Canvas, cx: f32, cy: f32, r: f32) {
    let b = (cx - r - 1.0, cy - r - 1.0, cx + r + 1.0, cy + r + 1.0);
    c.fill_sdf(b, premul([0, 121, 211, 255]), move |x, y| {
        ((x - cx).powi(2) + (y - cy).powi(2)).sqrt() - r
    });
    let p = |x: f32, y: f32| point(cx + x * r, cy + y * r);
    let t = 0.2;
    let pts = [
        p(-0.5, -0.05),
        p(-0.18, 0.27),
        p(0.45, -0.36),
        p(0.45 + t, -0.36 + t),
        p(-0.18, 0.27 + 2.0 * t * 0.7),
        p(-0.5 - t * 0.7, -0.05 + t * 0.7),
    ];
    let path: Vec<PathSeg> = (0..pts.len())
        .map(|i| PathSeg::Line(pts[i], pts[(i + 1) % pts.len()]))
        .collect();
    c.fill_path(premul([255, 255, 255, 255]), &path);
}

/// A filled heart in the `size` square at `(x, y)`.
fn draw_heart(c: &mut Canvas, x: f32, y: f32, size: f32, color: [f32; 4]) {
    let p = |u: f32, v: f32| point(x + u * size, y + (0.06 + v * 0.9) * size);
    let path = [
        PathSeg::Cubic(p(0.5, 0.98), p(0.14, 0.72), p(0.0, 0.52), p(0.0, 0.32)),
        PathSeg::Cubic(p(0.0, 0.32), p(0.0, 0.12), p(0.14, 0.0), p(0.29, 0.0)),
        PathSeg::Cubic(p(0.29, 0.0), p(0.4, 0.0), p(0.47, 0.07), p(0.5, 0.16)),
        PathSeg::Cubic(p(0.5, 0.16), p(0.53, 0.07), p(0.6, 0.0), p(0.71, 0.0)),
        PathSeg::Cubic(p(0.71, 0.0), p(0.86, 0.0), p(1.0, 0.12), p(1.0, 0.32)),
        PathSeg::Cubic(p(1.0, 0.32), p(1.0, 0.52), p(0.86, 0.72), p(0.5, 0.98)),
    ];
    c.fill_path(color, &path);
}

/// A speech bubble (rounded rectangle with a tail) in the `size` square at `(x, y)`.
fn draw_bubble(c: &mut Canvas, x: f32, y: f32, size: f32, color: [f32; 4]) {
    let body = (x, y + 0.06 * size, x + size, y + 0.8 * size);
    c.fill_sdf(body, color, |px, py| {
        rounded_rect_sdf(px, py, body, 0.24 * size)
    });
    let p = |u: f32, v: f32| point(x + u * size, y + v * size);
    let tail = [p(0.18, 0.7), p(0.46, 0.7), p(0.16, 0.98)];
    let path: Vec<PathSeg> = (0..3)
        .map(|i| PathSeg::Line(tail[i], tail[(i + 1) % 3]))
        .collect();
    c.fill_path(color, &path);
    // Three dots, punched out in white.
    for k in 0..3 {
        let (dx, dy, r) = (
            x + (0.28 + 0.22 * k as f32) * size,
            y + 0.43 * size,
            0.07 * size,
        );
        c.fill_sdf(
            (dx - r - 1.0, dy - r - 1.0, dx + r + 1.0, dy + r + 1.0),
            premul([237, 239, 241, 255]),
            move |px, py| ((px - dx).powi(2) + (py - dy).powi(2)).sqrt() - r,
        );
    }
}

/// Premultiplied `src` with coverage `a` over premultiplied `dst`.
#[inline]
fn over(src: [f32; 4], a: f32, dst: [f32; 4]) -> [f32; 4] {
    let a = a.clamp(0.0, 1.0);
    let k = 1.0 - src[3] * a;
    [
        src[0] * a + dst[0] * k,
        src[1] * a + dst[1] * k,
        src[2] * a + dst[2] * k,
        src[3] * a + dst[3] * k,
    ]
}

/// Premultiplied float to premultiplied bytes, keeping every channel <= alpha and fully
/// transparent pixels at zero.
fn to_rgba8(p: [f32; 4]) -> [u8; 4] {
    // `+ 0.5` then truncation rounds the non-negative values; `f32::round` is a libm call and
    // showed up at 10% of a page's render time.
    let a = (p[3].clamp(0.0, 1.0) * 255.0 + 0.5) as u8;
    if a == 0 {
        return [0; 4];
    }
    let ch = |v: f32| ((v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8).min(a);
    [ch(p[0]), ch(p[1]), ch(p[2]), a]
}

#[cfg(test)]
mod tests;
