//! Pixel-level helpers for the renderer: a premultiplied float canvas, anti-aliased shapes,
//! the Euclidean distance transform behind the text outline, and a box blur for shadows.

use ab_glyph_rasterizer::{Point, Rasterizer};

/// Values at or above this are "no seed" in the distance transform.
const FAR: f32 = 1.0e20;

/// A straight-alpha colour in 0..=255 as premultiplied floats in 0..=1.
pub(crate) fn premul(c: [u8; 4]) -> [f32; 4] {
    let a = f32::from(c[3]) / 255.0;
    [f32::from(c[0]) / 255.0 * a, f32::from(c[1]) / 255.0 * a, f32::from(c[2]) / 255.0 * a, a]
}

/// An RGBA image with premultiplied float channels, for compositing shapes and text.
pub(crate) struct Canvas {
    pub width: usize,
    pub height: usize,
    pub px: Vec<[f32; 4]>,
}

impl Canvas {
    pub fn new(width: usize, height: usize) -> Self {
        Self { width, height, px: vec![[0.0; 4]; width * height] }
    }

    /// Paints `color` (premultiplied) over the pixel with the given coverage; clips.
    #[inline]
    pub fn blend(&mut self, x: i32, y: i32, color: [f32; 4], coverage: f32) {
        if x < 0 || y < 0 || x as usize >= self.width || y as usize >= self.height {
            return;
        }
        let cov = coverage.clamp(0.0, 1.0);
        let p = &mut self.px[y as usize * self.width + x as usize];
        let k = 1.0 - color[3] * cov;
        for i in 0..4 {
            p[i] = color[i] * cov + p[i] * k;
        }
    }

    /// Fills a shape given by its signed distance (px, negative inside) over the bounding box
    /// `[x0, x1) x [y0, y1)`, anti-aliased over one pixel.
    pub fn fill_sdf(&mut self, bounds: (f32, f32, f32, f32), color: [f32; 4], sdf: impl Fn(f32, f32) -> f32) {
        let (x0, y0, x1, y1) = bounds;
        let xs = (x0.floor().max(0.0) as i32)..(x1.ceil().min(self.width as f32) as i32);
        for y in (y0.floor().max(0.0) as i32)..(y1.ceil().min(self.height as f32) as i32) {
            for x in xs.clone() {
                let d = sdf(x as f32 + 0.5, y as f32 + 0.5);
                let cov = (0.5 - d).clamp(0.0, 1.0);
                if cov > 0.0 {
                    self.blend(x, y, color, cov);
                }
            }
        }
    }

    /// Fills a closed path of lines and cubic curves (points in canvas px), anti-aliased.
    pub fn fill_path(&mut self, color: [f32; 4], path: &[PathSeg]) {
        let mut min = (f32::MAX, f32::MAX);
        let mut max = (f32::MIN, f32::MIN);
        for seg in path {
            for p in seg.points() {
                min = (min.0.min(p.x), min.1.min(p.y));
                max = (max.0.max(p.x), max.1.max(p.y));
            }
        }
        if path.is_empty() || !(min.0.is_finite() && max.0.is_finite() && min.1.is_finite() && max.1.is_finite()) {
            return;
        }
        let ox = min.0.floor();
        let oy = min.1.floor();
        let w = (max.0.ceil() - ox) as usize + 1;
        let h = (max.1.ceil() - oy) as usize + 1;
        if w > 4 * self.width + 4 || h > 4 * self.height + 4 {
            return;
        }
        let mut r = Rasterizer::new(w, h);
        let at = |p: Point| ab_glyph_rasterizer::point(p.x - ox, p.y - oy);
        for seg in path {
            match *seg {
                PathSeg::Line(a, b) => r.draw_line(at(a), at(b)),
                PathSeg::Cubic(a, b, c, d) => r.draw_cubic(at(a), at(b), at(c), at(d)),
            }
        }
        r.for_each_pixel_2d(|x, y, a| {
            if a > 0.0 {
                self.blend(ox as i32 + x as i32, oy as i32 + y as i32, color, a);
            }
        });
    }
}

/// One segment of a path for [`Canvas::fill_path`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum PathSeg {
    Line(Point, Point),
    Cubic(Point, Point, Point, Point),
}

impl PathSeg {
    fn points(&self) -> Vec<Point> {
        match *self {
            PathSeg::Line(a, b) => vec![a, b],
            PathSeg::Cubic(a, b, c, d) => vec![a, b, c, d],
        }
    }
}

/// Signed distance to a rounded rectangle `[x0, x1] x [y0, y1]` with corner radius `r`.
pub(crate) fn rounded_rect_sdf(px: f32, py: f32, rect: (f32, f32, f32, f32), r: f32) -> f32 {
    let (x0, y0, x1, y1) = rect;
    let cx = (x0 + x1) / 2.0;
    let cy = (y0 + y1) / 2.0;
    let hx = (x1 - x0) / 2.0 - r;
    let hy = (y1 - y0) / 2.0 - r;
    let qx = (px - cx).abs() - hx;
    let qy = (py - cy).abs() - hy;
    let outside = (qx.max(0.0).powi(2) + qy.max(0.0).powi(2)).sqrt();
    outside + qx.max(qy).min(0.0) - r
}

/// Calls `put` with the coverage of the frame of a rectangle (outer edge `[l, r] x [t, b]`,
/// `stroke` px thick), anti-aliased on fractional edges.
pub(crate) fn rect_frame(l: f32, t: f32, r: f32, b: f32, stroke: f32, put: &mut dyn FnMut(i32, i32, f32)) {
    let span = |lo: f32, hi: f32, p: f32| -> f32 { (hi.min(p + 1.0) - lo.max(p)).clamp(0.0, 1.0) };
    let (il, it, ir, ib) = (l + stroke, t + stroke, r - stroke, b - stroke);
    for y in (t.floor() as i32)..(b.ceil() as i32) {
        let fy = y as f32;
        let outer_y = span(t, b, fy);
        let inner_y = if ib > it { span(it, ib, fy) } else { 0.0 };
        for x in (l.floor() as i32)..(r.ceil() as i32) {
            let fx = x as f32;
            let outer = span(l, r, fx) * outer_y;
            let inner = if ir > il { span(il, ir, fx) * inner_y } else { 0.0 };
            let c = outer - inner;
            if c > 0.0 {
                put(x, y, c);
            }
        }
    }
}

/// Euclidean distance (px, between pixel centres) from every pixel to the nearest pixel whose
/// `coverage >= 0.5`, or a huge value if there is none. Exact, in linear time (Felzenszwalb and
/// Huttenlocher's lower envelope of parabolas, run on columns and then rows).
pub(crate) fn distance_to_ink(coverage: &[f32], width: usize, height: usize) -> Vec<f32> {
    let mut grid: Vec<f32> = coverage.iter().map(|&c| if c >= 0.5 { 0.0 } else { FAR }).collect();
    let n = width.max(height);
    let mut f = vec![0.0f32; n];
    let mut d = vec![0.0f32; n];
    let mut v = Vec::with_capacity(n);
    let mut z = Vec::with_capacity(n);
    for x in 0..width {
        for y in 0..height {
            f[y] = grid[y * width + x];
        }
        squared_dt_1d(&f[..height], &mut d[..height], &mut v, &mut z);
        for y in 0..height {
            grid[y * width + x] = d[y];
        }
    }
    for y in 0..height {
        let row = &mut grid[y * width..(y + 1) * width];
        f[..width].copy_from_slice(row);
        squared_dt_1d(&f[..width], &mut d[..width], &mut v, &mut z);
        for (out, &sq) in row.iter_mut().zip(&d[..width]) {
            *out = if sq >= FAR { FAR } else { sq.sqrt() };
        }
    }
    grid
}

/// `out[q] = min_p ((q - p)^2 + f[p])` over the finite `f[p]`; `FAR` everywhere if none is.
fn squared_dt_1d(f: &[f32], out: &mut [f32], v: &mut Vec<usize>, z: &mut Vec<f32>) {
    v.clear();
    z.clear();
    for (q, &fq) in f.iter().enumerate() {
        if fq >= FAR {
            continue;
        }
        let hq = fq + (q * q) as f32;
        loop {
            match v.last() {
                None => {
                    v.push(q);
                    z.push(f32::NEG_INFINITY);
                    break;
                }
                Some(&p) => {
                    let s = (hq - (f[p] + (p * p) as f32)) / (2.0 * (q - p) as f32);
                    // `z` always has as many entries as `v`.
                    if z.last().is_some_and(|&zl| s <= zl) {
                        v.pop();
                        z.pop();
                    } else {
                        v.push(q);
                        z.push(s);
                        break;
                    }
                }
            }
        }
    }
    if v.is_empty() {
        out.fill(FAR);
        return;
    }
    let mut k = 0;
    for (q, o) in out.iter_mut().enumerate() {
        while k + 1 < v.len() && z[k + 1] < q as f32 {
            k += 1;
        }
        let p = v[k];
        let dq = q as f32 - p as f32;
        *o = dq * dq + f[p];
    }
}

/// Blurs `buf` in place with `passes` box blurs of `radius` px (three approach a Gaussian).
pub(crate) fn box_blur(buf: &mut [f32], width: usize, height: usize, radius: usize, passes: usize) {
    if radius == 0 || width == 0 || height == 0 {
        return;
    }
    let mut line = vec![0.0f32; width.max(height)];
    let norm = 1.0 / (2 * radius + 1) as f32;
    for _ in 0..passes {
        for y in 0..height {
            let row = &mut buf[y * width..(y + 1) * width];
            line[..width].copy_from_slice(row);
            blur_line(&line[..width], row.iter_mut(), radius, norm);
        }
        for x in 0..width {
            for y in 0..height {
                line[y] = buf[y * width + x];
            }
            blur_line(&line[..height], buf[x..].iter_mut().step_by(width), radius, norm);
        }
    }
}

/// Running-sum box filter of `src` into `dst` (same length), treating outside values as 0.
fn blur_line<'a>(src: &[f32], dst: impl Iterator<Item = &'a mut f32>, radius: usize, norm: f32) {
    let n = src.len();
    let mut sum: f32 = src.iter().take(radius + 1).sum();
    for (i, out) in dst.enumerate() {
        *out = sum * norm;
        if i + radius + 1 < n {
            sum += src[i + radius + 1];
        }
        if i >= radius {
            sum -= src[i - radius];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_transform_is_euclidean() {
        let (w, h) = (9, 7);
        let mut cov = vec![0.0; w * h];
        cov[3 * w + 4] = 1.0;
        let d = distance_to_ink(&cov, w, h);
        for y in 0..h {
            for x in 0..w {
                let expect = ((x as f32 - 4.0).powi(2) + (y as f32 - 3.0).powi(2)).sqrt();
                assert!((d[y * w + x] - expect).abs() < 1e-4, "({x},{y}) {} vs {expect}", d[y * w + x]);
            }
        }
        assert!(distance_to_ink(&[0.0; 4], 2, 2).iter().all(|&v| v >= FAR));
    }

    #[test]
    fn blur_keeps_mass() {
        let (w, h) = (21, 21);
        let mut buf = vec![0.0; w * h];
        buf[10 * w + 10] = 1.0;
        box_blur(&mut buf, w, h, 2, 3);
        let sum: f32 = buf.iter().sum();
        assert!((sum - 1.0).abs() < 1e-4, "{sum}");
    }

    #[test]
    fn rounded_rect_distance() {
        let rect = (0.0, 0.0, 10.0, 10.0);
        assert!((rounded_rect_sdf(5.0, 5.0, rect, 2.0) + 5.0).abs() < 1e-5);
        assert!((rounded_rect_sdf(12.0, 5.0, rect, 2.0) - 2.0).abs() < 1e-5);
    }
}
