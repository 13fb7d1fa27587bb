//! Crop-to-fill and bilinear resampling of YUV 4:2:0 pictures, the background's fit to 9:16.
//!
//! All index and weight tables are computed once per (source size, output size); the per-frame
//! work is a vertical blend of two source rows into a scratch row and a table-driven
//! horizontal blend, both in 8.8 fixed point. The result depends only on the input pixels,
//! so a frame scales identically in any chunk.

use crate::frame::Frame;

/// A crop rectangle in luma samples; `x`, `y`, `w`, `h` are even.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: usize,
    pub y: usize,
    pub w: usize,
    pub h: usize,
}

/// The centred crop of a `src_w x src_h` picture with the aspect ratio of `out_w x out_h`
/// ("cover": the output is filled, the excess is cut from both sides).
pub fn cover_crop(src_w: usize, src_h: usize, out_w: usize, out_h: usize) -> Rect {
    let even_down = |v: usize| (v & !1).max(2);
    // Compare src_w/src_h with out_w/out_h without division.
    if src_w * out_h > out_w * src_h {
        let w = even_down(src_h * out_w / out_h).min(src_w & !1);
        let h = src_h & !1;
        Rect {
            x: ((src_w - w) / 2) & !1,
            y: 0,
            w,
            h,
        }
    } else {
        let w = src_w & !1;
        let h = even_down(src_w * out_h / out_w).min(src_h & !1);
        Rect {
            x: 0,
            y: ((src_h - h) / 2) & !1,
            w,
            h,
        }
    }
}

/// For each output position: the first of the two source samples it blends and the weight
/// (0..=256) of the second. The first index is at most `src_len - 2`, so both samples exist.
fn taps(src_len: usize, out_len: usize) -> Vec<(u32, u16)> {
    (0..out_len)
        .map(|o| {
            if src_len < 2 {
                return (0, 0);
            }
            // Centre-aligned mapping, as ffmpeg's bilinear and GPU samplers do.
            let s = ((o as f64 + 0.5) * src_len as f64 / out_len as f64 - 0.5)
                .clamp(0.0, (src_len - 1) as f64);
            let i = (s.floor() as usize).min(src_len - 2);
            let w = ((s - i as f64) * 256.0).round() as u16;
            (i as u32, w.min(256))
        })
        .collect()
}

/// Blends two source samples per output sample: `out[x] = a[i]*(256-w) + a[i+1]*w` (8.8 fixed).
/// `last` is the largest `i + 1` in `xs`, computed once with the table.
#[inline]
fn horizontal(src: &[u8], xs: &[(u32, u16)], last: usize, out: &mut [u16]) {
    // The tables are built for this row width; check once per row, not per sample.
    assert!(
        xs.is_empty() || last < src.len(),
        "scaler taps exceed the source row"
    );
    for (o, &(i, w)) in out.iter_mut().zip(xs) {
        let i = i as usize;
        // SAFETY: `taps` guarantees i + 1 < src_len and the assert above that src holds them.
        let (a, b) = unsafe { (*src.get_unchecked(i), *src.get_unchecked(i + 1)) };
        *o = u16::from(a) * (256 - w) + u16::from(b) * w;
    }
}

/// `out[x] = (a[x]*(256-w) + b[x]*w) / 65536`, rounded: the vertical blend of two rows.
///
/// Written as two 16x16→high-16 multiplies (`pmulhuw` on plain SSE2) so it vectorises
/// without SSE4.1; `w` is 1..=255 here (weight 0 takes the copy path).
#[inline]
fn vertical(a: &[u16], b: &[u16], w: u16, out: &mut [u8]) {
    let w = w.clamp(1, 255);
    let (wa, wb): (u16, u16) = ((256 - w) << 8, w << 8);
    let n = out.len().min(a.len()).min(b.len());
    let (a, b, out) = (&a[..n], &b[..n], &mut out[..n]);
    for i in 0..n {
        let hi =
            ((u32::from(a[i]) * u32::from(wa)) >> 16) + ((u32::from(b[i]) * u32::from(wb)) >> 16);
        out[i] = ((hi + 128) >> 8) as u8;
    }
}

struct PlaneMap {
    crop_x: usize,
    crop_y: usize,
    crop_w: usize,
    xs: Vec<(u32, u16)>,
    /// Largest `i + 1` in `xs`.
    xs_last: usize,
    ys: Vec<(u32, u16)>,
    identity: bool,
}

impl PlaneMap {
    fn new(crop: Rect, out_w: usize, out_h: usize) -> Self {
        let xs = taps(crop.w, out_w);
        PlaneMap {
            crop_x: crop.x,
            crop_y: crop.y,
            crop_w: crop.w,
            xs_last: xs.iter().map(|&(i, _)| i as usize + 1).max().unwrap_or(0),
            xs,
            ys: taps(crop.h, out_h),
            identity: crop.w == out_w && crop.h == out_h,
        }
    }

    /// Horizontal pass on each needed source row (cached across output rows, since
    /// upscaling reuses rows), then a vectorisable vertical pass.
    fn scale(&self, src: &[u8], stride: usize, dst: &mut [u8], out_w: usize, rows: &mut RowCache) {
        if self.identity {
            for (oy, row) in dst.chunks_exact_mut(out_w).enumerate() {
                let start = (self.crop_y + oy) * stride + self.crop_x;
                row.copy_from_slice(&src[start..start + out_w]);
            }
            return;
        }
        rows.reset(out_w);
        for (row, &(iy, wy)) in dst.chunks_exact_mut(out_w).zip(&self.ys) {
            let iy = iy as usize;
            let src_row = |r: usize| {
                let start = (self.crop_y + r) * stride + self.crop_x;
                &src[start..start + self.crop_w]
            };
            rows.ensure(iy, |out| {
                horizontal(src_row(iy), &self.xs, self.xs_last, out)
            });
            if wy == 0 {
                for (o, &x) in row.iter_mut().zip(rows.get(iy)) {
                    *o = ((u32::from(x) + 128) >> 8) as u8;
                }
                continue;
            }
            rows.ensure(iy + 1, |out| {
                horizontal(src_row(iy + 1), &self.xs, self.xs_last, out)
            });
            vertical(rows.get(iy), rows.get(iy + 1), wy, row);
        }
    }
}

/// Two horizontally scaled source rows, keyed by source row index.
#[derive(Default)]
struct RowCache {
    rows: [Vec<u16>; 2],
    keys: [Option<usize>; 2],
}

impl RowCache {
    fn reset(&mut self, width: usize) {
        for r in &mut self.rows {
            r.resize(width, 0);
        }
        self.keys = [None, None];
    }

    fn ensure(&mut self, key: usize, fill: impl FnOnce(&mut [u16])) {
        if self.keys.contains(&Some(key)) {
            return;
        }
        // Replace the slot holding the older (smaller) row: rows are visited top to bottom.
        let slot = match self.keys {
            [None, _] => 0,
            [_, None] => 1,
            [Some(a), Some(b)] => usize::from(b < a),
        };
        fill(&mut self.rows[slot]);
        self.keys[slot] = Some(key);
    }

    fn get(&self, key: usize) -> &[u16] {
        if self.keys[0] == Some(key) {
            &self.rows[0]
        } else {
            &self.rows[1]
        }
    }
}

/// Scales source pictures of one size to the output size through a fixed crop.
pub struct Scaler {
    src_w: usize,
    src_h: usize,
    out_w: usize,
    out_h: usize,
    luma: PlaneMap,
    chroma: PlaneMap,
    rows: RowCache,
}

impl Scaler {
    /// A scaler filling `out_w x out_h` from `src_w x src_h` with a centred cover crop.
    /// All sizes must be even and non-zero.
    pub fn new(src_w: usize, src_h: usize, out_w: usize, out_h: usize) -> Self {
        let crop = cover_crop(src_w, src_h, out_w, out_h);
        let ccrop = Rect {
            x: crop.x / 2,
            y: crop.y / 2,
            w: crop.w / 2,
            h: crop.h / 2,
        };
        Scaler {
            src_w,
            src_h,
            out_w,
            out_h,
            luma: PlaneMap::new(crop, out_w, out_h),
            chroma: PlaneMap::new(ccrop, out_w / 2, out_h / 2),
            rows: RowCache::default(),
        }
    }

    /// The source size this scaler was built for.
    pub fn source_size(&self) -> (usize, usize) {
        (self.src_w, self.src_h)
    }

    /// Scales planes with the given strides into `dst` (which must be `out_w x out_h`).
    pub fn scale(&mut self, planes: [&[u8]; 3], strides: [usize; 3], dst: &mut Frame) {
        debug_assert_eq!((dst.width, dst.height), (self.out_w, self.out_h));
        let (ow, cw) = (self.out_w, self.out_w / 2);
        self.luma
            .scale(planes[0], strides[0], &mut dst.y, ow, &mut self.rows);
        self.chroma
            .scale(planes[1], strides[1], &mut dst.u, cw, &mut self.rows);
        self.chroma
            .scale(planes[2], strides[2], &mut dst.v, cw, &mut self.rows);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cover_crop_fills_9_16() {
        assert_eq!(
            cover_crop(1920, 1080, 1080, 1920),
            Rect {
                x: 656,
                y: 0,
                w: 606,
                h: 1080
            }
        );
        assert_eq!(
            cover_crop(1080, 1920, 1080, 1920),
            Rect {
                x: 0,
                y: 0,
                w: 1080,
                h: 1920
            }
        );
        // Taller than 9:16: cut top and bottom.
        let r = cover_crop(720, 1600, 1080, 1920);
        assert_eq!((r.w, r.h, r.x), (720, 1280, 0));
        assert_eq!(r.y, 160);
        // Tiny or odd inputs never produce zero or odd sizes.
        let r = cover_crop(3, 2, 1080, 1920);
        assert!(r.w >= 2 && r.h >= 2 && r.w.is_multiple_of(2) && r.h.is_multiple_of(2));
    }

    #[test]
    fn identity_scale_copies_the_crop() {
        let (w, h) = (8, 8);
        let mut src = Frame::black(w, h);
        for (i, p) in src.y.iter_mut().enumerate() {
            *p = i as u8;
        }
        let mut s = Scaler::new(w, h, w, h);
        let mut out = Frame::black(w, h);
        s.scale([&src.y, &src.u, &src.v], [w, w / 2, w / 2], &mut out);
        assert_eq!(out, src);
    }

    #[test]
    fn flat_colour_stays_flat_and_gradients_stay_monotonic() {
        let (sw, sh) = (64, 36);
        let mut src = Frame::black(sw, sh);
        for y in 0..sh {
            for x in 0..sw {
                src.y[y * sw + x] = (x * 3) as u8;
            }
        }
        src.u.fill(90);
        let mut s = Scaler::new(sw, sh, 54, 96);
        let mut out = Frame::black(54, 96);
        s.scale([&src.y, &src.u, &src.v], [sw, sw / 2, sw / 2], &mut out);
        assert!(out.u.iter().all(|&v| v == 90));
        for row in out.y.chunks(54) {
            assert!(row.windows(2).all(|p| p[0] <= p[1]), "{row:?}");
        }
        // The crop is centred: the middle output column samples the middle source column.
        let mid = out.y[48 * 54 + 27];
        assert!((i32::from(mid) - 96).abs() <= 3, "{mid}");
    }
}
