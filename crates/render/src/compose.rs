//! Blending caption sprites onto YUV frames.
//!
//! A sprite is converted once (per caption page and highlighted word) from premultiplied
//! RGBA into premultiplied Y/U/V plus alpha, with per-row spans of non-transparent pixels;
//! blending a frame then touches only those spans with integer arithmetic.

use crate::frame::Frame;

/// BT.709 limited-range coefficients applied to premultiplied 0..=255 RGB.
fn premul_yuv(r: f32, g: f32, b: f32, a: f32) -> (f32, f32, f32) {
    let y = 16.0 * a / 255.0 + 219.0 / 255.0 * (0.2126 * r + 0.7152 * g + 0.0722 * b);
    let yl = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    let u = 128.0 * a / 255.0 + 224.0 / 255.0 * ((b - yl) / 1.8556);
    let v = 128.0 * a / 255.0 + 224.0 / 255.0 * ((r - yl) / 1.5748);
    (y, u, v)
}

/// A sprite ready to blend: premultiplied planes over its clipped bounding box.
#[derive(Debug, Clone, Default)]
pub struct Overlay {
    /// Top-left corner in the frame (even).
    x: usize,
    y: usize,
    w: usize,
    h: usize,
    alpha: Vec<u8>,
    luma: Vec<u8>,
    /// Per luma row: `[start, end)` columns with non-zero alpha, relative to `x`.
    spans: Vec<(u16, u16)>,
    calpha: Vec<u8>,
    cu: Vec<u8>,
    cv: Vec<u8>,
}

impl Overlay {
    /// Converts premultiplied RGBA (`width * height * 4` bytes) placed at (`x`, `y`) for a
    /// frame of `frame_w x frame_h`. Parts outside the frame are cut; an odd position is
    /// moved up/left by one pixel so chroma blocks line up.
    pub fn from_rgba(
        x: i32,
        y: i32,
        width: u32,
        height: u32,
        rgba: &[u8],
        frame_w: usize,
        frame_h: usize,
    ) -> Overlay {
        let (sw, sh) = (width as i64, height as i64);
        if rgba.len() < (sw * sh * 4) as usize || sw == 0 || sh == 0 {
            return Overlay::default();
        }
        let x0 = (i64::from(x) & !1).max(0);
        let y0 = (i64::from(y) & !1).max(0);
        let x1 = ((i64::from(x) & !1) + sw).min(frame_w as i64) & !1;
        let y1 = ((i64::from(y) & !1) + sh).min(frame_h as i64) & !1;
        if x1 <= x0 || y1 <= y0 {
            return Overlay::default();
        }
        // Offset of the clipped box inside the sprite.
        let (ox, oy) = (x0 - (i64::from(x) & !1), y0 - (i64::from(y) & !1));
        let (w, h) = ((x1 - x0) as usize, (y1 - y0) as usize);
        let mut ov = Overlay {
            x: x0 as usize,
            y: y0 as usize,
            w,
            h,
            alpha: vec![0; w * h],
            luma: vec![0; w * h],
            spans: vec![(0, 0); h],
            calpha: vec![0; (w / 2) * (h / 2)],
            cu: vec![0; (w / 2) * (h / 2)],
            cv: vec![0; (w / 2) * (h / 2)],
        };
        let px = |cx: usize, cy: usize| -> [f32; 4] {
            let i = (((oy as usize + cy) * sw as usize) + ox as usize + cx) * 4;
            [
                f32::from(rgba[i]),
                f32::from(rgba[i + 1]),
                f32::from(rgba[i + 2]),
                f32::from(rgba[i + 3]),
            ]
        };
        for cy in 0..h {
            let mut first = w;
            let mut last = 0;
            for cx in 0..w {
                let [r, g, b, a] = px(cx, cy);
                if a == 0.0 {
                    continue;
                }
                let (yy, _, _) = premul_yuv(r, g, b, a);
                ov.alpha[cy * w + cx] = a as u8;
                ov.luma[cy * w + cx] = yy.round().clamp(0.0, 255.0) as u8;
                first = first.min(cx);
                last = cx + 1;
            }
            ov.spans[cy] = if first < last {
                (first as u16, last as u16)
            } else {
                (0, 0)
            };
        }
        let cw = w / 2;
        for cy in 0..h / 2 {
            for cx in 0..cw {
                let mut acc = [0f32; 4];
                for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                    let p = px(2 * cx + dx, 2 * cy + dy);
                    for k in 0..4 {
                        acc[k] += p[k] / 4.0;
                    }
                }
                let (_, u, v) = premul_yuv(acc[0], acc[1], acc[2], acc[3]);
                ov.calpha[cy * cw + cx] = acc[3].round() as u8;
                ov.cu[cy * cw + cx] = u.round().clamp(0.0, 255.0) as u8;
                ov.cv[cy * cw + cx] = v.round().clamp(0.0, 255.0) as u8;
            }
        }
        ov
    }

    /// Whether the overlay covers nothing.
    pub fn is_empty(&self) -> bool {
        self.w == 0 || self.h == 0
    }

    /// Blends the overlay over `frame` ("over" operator, premultiplied).
    pub fn blend(&self, frame: &mut Frame) {
        if self.is_empty() || self.x + self.w > frame.width || self.y + self.h > frame.height {
            return;
        }
        let fw = frame.width;
        for (row, &(s, e)) in self.spans.iter().enumerate() {
            let (s, e) = (s as usize, e as usize);
            if s >= e {
                continue;
            }
            let dst =
                &mut frame.y[(self.y + row) * fw + self.x + s..(self.y + row) * fw + self.x + e];
            let a = &self.alpha[row * self.w + s..row * self.w + e];
            let l = &self.luma[row * self.w + s..row * self.w + e];
            blend_row(dst, a, l);
        }
        let (cw, fcw) = (self.w / 2, frame.cw());
        for row in 0..self.h / 2 {
            // A chroma row is needed where either of its two luma rows has coverage.
            let (s, e) = match (self.spans[2 * row], self.spans[2 * row + 1]) {
                ((s0, e0), (s1, e1)) if s0 < e0 && s1 < e1 => (s0.min(s1), e0.max(e1)),
                ((s0, e0), _) if s0 < e0 => (s0, e0),
                (_, span) => span,
            };
            let (s, e) = ((s / 2) as usize, (e as usize).div_ceil(2));
            if s >= e {
                continue;
            }
            let base = (self.y / 2 + row) * fcw + self.x / 2;
            let a = &self.calpha[row * cw + s..row * cw + e];
            blend_row(
                &mut frame.u[base + s..base + e],
                a,
                &self.cu[row * cw + s..row * cw + e],
            );
            blend_row(
                &mut frame.v[base + s..base + e],
                a,
                &self.cv[row * cw + s..row * cw + e],
            );
        }
    }
}

/// `dst = dst * (255 - a) / 255 + src` for premultiplied `src`, rounded.
#[inline]
fn blend_row(dst: &mut [u8], alpha: &[u8], src: &[u8]) {
    for ((d, &a), &s) in dst.iter_mut().zip(alpha).zip(src) {
        let v = u32::from(*d) * (255 - u32::from(a)) + 128;
        let keep = (v + (v >> 8)) >> 8;
        *d = (keep + u32::from(s)).min(255) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(w: u32, h: u32, rgba: [u8; 4]) -> Vec<u8> {
        rgba.iter()
            .copied()
            .cycle()
            .take((w * h * 4) as usize)
            .collect()
    }

    #[test]
    fn opaque_white_becomes_limited_range_white() {
        let mut f = Frame::black(16, 16);
        let ov = Overlay::from_rgba(4, 4, 4, 4, &solid(4, 4, [255, 255, 255, 255]), 16, 16);
        ov.blend(&mut f);
        assert_eq!(f.y[4 * 16 + 4], 235);
        assert_eq!(f.y[0], 16);
        assert_eq!(f.u[2 * 8 + 2], 128);
    }

    #[test]
    fn transparent_pixels_leave_the_frame_alone_and_half_alpha_mixes() {
        let mut f = Frame::black(16, 16);
        f.y.fill(100);
        let before = f.clone();
        Overlay::from_rgba(0, 0, 8, 8, &solid(8, 8, [0, 0, 0, 0]), 16, 16).blend(&mut f);
        assert_eq!(f, before);
        // 50% black over Y=100: (100 - 16... ) the limited-range black contributes 16 * 0.5.
        Overlay::from_rgba(0, 0, 2, 2, &solid(2, 2, [0, 0, 0, 128]), 16, 16).blend(&mut f);
        let got = i32::from(f.y[0]);
        let want = (100.0 * (127.0 / 255.0) + 16.0 * 128.0 / 255.0) as i32;
        assert!((got - want).abs() <= 1, "{got} vs {want}");
    }

    #[test]
    fn sprites_partly_outside_are_clipped_not_panicking() {
        let mut f = Frame::black(16, 16);
        for (x, y) in [(-5, -5), (14, 14), (100, 0), (-100, -100), (15, 3)] {
            Overlay::from_rgba(x, y, 6, 6, &solid(6, 6, [255, 0, 0, 255]), 16, 16).blend(&mut f);
        }
        assert!(Overlay::from_rgba(0, 0, 4, 4, &[1, 2, 3], 16, 16).is_empty());
    }
}
