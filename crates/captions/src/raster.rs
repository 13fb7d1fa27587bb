//! Pixel-level helpers for the renderer: a premultiplied float canvas, anti-aliased shapes,
//! the Euclidean distance transform behind the text outline, and a box blur for shadows.

use ab_glyph_rasterizer::{Point, Rasterizer};

/// Values at or above this are "no seed" in the distance transform.
const FAR: f32 = 1.0e20;

/// A straight-alpha colour in 0..=255 as premultiplied floats in 0..=1.
pub(crate) fn premul(c: [u8; 4]) -> [f32; 4] {
    let a = f32::from(c[3]) / 255.0;
    [
        f32::from(c[0]) / 255.0 * a,
        f32::from(c[1]) / 255.0 * a,
        f32::from(c[2]) / 255.0 * a,
        a,
    ]
}

/// An RGBA image with premultiplied float channels, for compositing shapes and text.
pub(crate) struct Canvas {
    pub width: usize,
    pub height: usize,
    pub px: Vec<[f32; 4]>,
}

impl Canvas {
    pub fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            px: vec![[0.0; 4]; width * height],
        }
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
    pub fn fill_sdf(
        &mut self,
        bounds: (f32, f32, f32, f32),
        color: [f32; 4],
        sdf: impl Fn(f32, f32) -> f32,
    ) {
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
        if path.is_empty()
            || !(min.0.is_finite() && max.0.is_finite() && min.1.is_finite() && max.1.is_finite())
        {
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
pub(crate) fn rect_frame(
    l: f32,
    t: f32,
    r: f32,
    b: f32,
    stroke: f32,
    put: &mut dyn FnMut(i32, i32, f32),
) {
    let span = |lo: f32, hi: f32, p: f32| -> f32 { (hi.min(p + 1.0) - lo.max(p)).clamp(0.0, 1.0) };
    let (il, it, ir, ib) = (l + stroke, t + stroke, r - stroke, b - stroke);
    for y in (t.floor() as i32)..(b.ceil() as i32) {
        let fy = y as f32;
        let outer_y = span(t, b, fy);
        let inner_y = if ib > it { span(it, ib, fy) } else { 0.0 };
        for x in (l.floor() as i32)..(r.ceil() as i32) {
            let fx = x as f32;
            let outer = span(l, r, fx) * outer_y;
            let inner = if ir > il {
                span(il, ir, fx) * inner_y
            } else {
                0.0
            };
            let c = outer - inner;
            if c > 0.0 {
                put(x, y, c);
            }
        }
    }
}

/// Euclidean distance (px, between pixel centres) from every pixel to the nearest pixel whose
/// `coverage >= 0.5`; exact up to `max_dist`, and some value above `max_dist` beyond it.
///
/// Two steps, both linear in the pixel count: exact 1-D distances down each column (two sweeps),
/// then along each row the minimum of `dx^2 + column_distance^2` over the window
/// `|dx| <= max_dist`. The window loop runs over whole rows per `dx`, which the compiler
/// vectorises; for outline-sized distances (~10 px) this beats the exact lower-envelope method
/// (Felzenszwalb and Huttenlocher), whose divisions and branches do not vectorise.
pub(crate) fn distance_to_ink(
    coverage: &[f32],
    width: usize,
    height: usize,
    max_dist: f32,
) -> Vec<f32> {
    // Column distances beyond the cap cannot bring a pixel within `max_dist`. Distances are
    // floats, updated without branches, so both sweeps vectorise.
    let cap = max_dist.max(0.0).ceil() as usize + 1;
    let capf = cap as f32;
    let mut grid = vec![FAR; width * height];
    let mut col_dist = vec![FAR; width];
    // Downward sweep: distance to the nearest seed above or at this row.
    for y in 0..height {
        let cov = &coverage[y * width..(y + 1) * width];
        let row = &mut grid[y * width..(y + 1) * width];
        for ((d, &c), g) in col_dist.iter_mut().zip(cov).zip(row.iter_mut()) {
            *d = if c >= 0.5 { 0.0 } else { (*d + 1.0).min(FAR) };
            *g = if *d <= capf { *d * *d } else { FAR };
        }
    }
    // Upward sweep: distance to the nearest seed below.
    col_dist.fill(FAR);
    for y in (0..height).rev() {
        let cov = &coverage[y * width..(y + 1) * width];
        let row = &mut grid[y * width..(y + 1) * width];
        for ((d, &c), g) in col_dist.iter_mut().zip(cov).zip(row.iter_mut()) {
            *d = if c >= 0.5 { 0.0 } else { (*d + 1.0).min(FAR) };
            if *d <= capf {
                *g = g.min(*d * *d);
            }
        }
    }
    let cap_sq = (cap * cap) as f32;
    let mut best = vec![FAR; width];
    for y in 0..height {
        let row = &mut grid[y * width..(y + 1) * width];
        if row.iter().all(|&g| g >= FAR) {
            continue;
        }
        best.copy_from_slice(row);
        for dx in 1..=cap.min(width.saturating_sub(1)) {
            let dx_sq = (dx * dx) as f32;
            // Seeds dx to the right, then dx to the left.
            for (b, &g) in best[..width - dx].iter_mut().zip(&row[dx..]) {
                *b = b.min(g + dx_sq);
            }
            for (b, &g) in best[dx..].iter_mut().zip(&row[..width - dx]) {
                *b = b.min(g + dx_sq);
            }
        }
        for (out, &sq) in row.iter_mut().zip(&best) {
            *out = if sq > cap_sq { FAR } else { sq.sqrt() };
        }
    }
    grid
}

/// Blurs `buf` in place with `passes` box blurs of `radius` px (three approach a Gaussian).
pub(crate) fn box_blur(buf: &mut [f32], width: usize, height: usize, radius: usize, passes: usize) {
    if radius == 0 || width == 0 || height == 0 {
        return;
    }
    let norm = 1.0 / (2 * radius + 1) as f32;
    let mut line = vec![0.0f32; width];
    let mut src = vec![0.0f32; width * height];
    let mut sums = vec![0.0f32; width];
    for _ in 0..passes {
        for y in 0..height {
            let row = &mut buf[y * width..(y + 1) * width];
            line.copy_from_slice(row);
            blur_line(&line, row, radius, norm);
        }
        // Vertical pass row by row, with one running sum per column: cache-friendly, unlike
        // walking down each column.
        src.copy_from_slice(buf);
        sums.fill(0.0);
        for y in 0..(radius + 1).min(height) {
            for (s, v) in sums.iter_mut().zip(&src[y * width..(y + 1) * width]) {
                *s += v;
            }
        }
        for y in 0..height {
            for (o, s) in buf[y * width..(y + 1) * width].iter_mut().zip(&sums) {
                *o = s * norm;
            }
            if y + radius + 1 < height {
                for (s, v) in sums
                    .iter_mut()
                    .zip(&src[(y + radius + 1) * width..(y + radius + 2) * width])
                {
                    *s += v;
                }
            }
            if y >= radius {
                for (s, v) in sums
                    .iter_mut()
                    .zip(&src[(y - radius) * width..(y - radius + 1) * width])
                {
                    *s -= v;
                }
            }
        }
    }
}

/// Running-sum box filter of `src` into `dst` (same length), treating outside values as 0.
fn blur_line(src: &[f32], dst: &mut [f32], radius: usize, norm: f32) {
    let n = src.len();
    let mut sum: f32 = src.iter().take(radius + 1).sum();
    for (i, out) in dst.iter_mut().enumerate() {
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
        let d = distance_to_ink(&cov, w, h, 100.0);
        for y in 0..h {
            for x in 0..w {
                let expect = ((x as f32 - 4.0).powi(2) + (y as f32 - 3.0).powi(2)).sqrt();
                assert!(
                    (d[y * w + x] - expect).abs() < 1e-4,
                    "({x},{y}) {} vs {expect}",
                    d[y * w + x]
                );
            }
        }
        assert!(
            distance_to_ink(&[0.0; 4], 2, 2, 10.0)
                .iter()
                .all(|&v| v >= FAR)
        );
    }

    #[test]
    fn distance_transform_matches_brute_force() {
        let (w, h) = (37, 23);
        let mut seed = 12345u32;
        let cov: Vec<f32> = (0..w * h)
            .map(|_| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                if (seed >> 16).is_multiple_of(17) {
                    1.0
                } else {
                    0.3
                }
            })
            .collect();
        let d = distance_to_ink(&cov, w, h, 6.0);
        for y in 0..h {
            for x in 0..w {
                let mut best = f32::MAX;
                for yy in 0..h {
                    for xx in 0..w {
                        if cov[yy * w + xx] >= 0.5 {
                            best = best.min(
                                ((x as f32 - xx as f32).powi(2) + (y as f32 - yy as f32).powi(2))
                                    .sqrt(),
                            );
                        }
                    }
                }
                let got = d[y * w + x];
                if best <= 6.0 {
                    assert!((got - best).abs() < 1e-4, "({x},{y}) {got} vs {best}");
                } else {
                    assert!(got > 6.0, "({x},{y}) {got} vs {best}");
                }
            }
        }
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
