//! The embedded default background: a slowly drifting two-colour gradient with soft bands.
//!
//! It is a pure function of the frame index (so any chunk renders it identically), costs about
//! one add per sample, and is smooth enough that x264 spends few bits on it.

use crate::frame::{Frame, rgb_to_yuv};

/// Palette stops the gradient cycles through (deep, saturated colours that keep white
/// captions readable).
const PALETTE: &[(u8, u8, u8)] = &[
    (48, 16, 96),
    (12, 52, 120),
    (8, 96, 104),
    (72, 20, 110),
    (120, 24, 72),
    (30, 30, 120),
];

/// Seconds for one palette step.
const STEP_SECONDS: f64 = 6.0;

fn palette_at(t: f64) -> [f32; 3] {
    let n = PALETTE.len();
    let pos = (t / STEP_SECONDS).rem_euclid(n as f64);
    let i = pos.floor() as usize % n;
    let f = pos - pos.floor();
    // Smoothstep so colour changes have no visible kinks.
    let f = (f * f * (3.0 - 2.0 * f)) as f32;
    let a = rgb_to_yuv(PALETTE[i].0, PALETTE[i].1, PALETTE[i].2);
    let b = rgb_to_yuv(
        PALETTE[(i + 1) % n].0,
        PALETTE[(i + 1) % n].1,
        PALETTE[(i + 1) % n].2,
    );
    [
        a.0 + (b.0 - a.0) * f,
        a.1 + (b.1 - a.1) * f,
        a.2 + (b.2 - a.2) * f,
    ]
}

/// Renders generated frame number `index` at `fps` into `out`.
pub fn render(index: u64, fps: u32, out: &mut Frame) {
    let t = index as f64 / f64::from(fps.max(1));
    let top = palette_at(t);
    let bottom = palette_at(t + STEP_SECONDS * 2.5);
    let (w, h) = (out.width, out.height);
    let phase = (t * 0.15).fract();
    fill_plane(&mut out.y, w, h, top[0], bottom[0], phase, 10.0);
    let (cw, ch) = (out.cw(), out.ch());
    fill_plane(&mut out.u, cw, ch, top[1], bottom[1], phase, 4.0);
    fill_plane(&mut out.v, cw, ch, top[2], bottom[2], phase, 4.0);
}

/// A diagonal blend from `a` (top left) to `b` (bottom right) plus a soft moving band.
fn fill_plane(plane: &mut [u8], w: usize, h: usize, a: f32, b: f32, phase: f64, band: f32) {
    // Value at (x, y) = base(y) + x * dx, in 16.16 fixed point.
    let span = (w + h) as f32;
    let dx = ((b - a) / span * 65536.0) as i32;
    for (y, row) in plane.chunks_exact_mut(w).enumerate() {
        let yf = y as f64 / h as f64;
        let wave = (std::f64::consts::TAU * (yf * 1.5 - phase)).sin() as f32 * band;
        let base = a + (b - a) * (y as f32 / span) + wave;
        let mut acc = (base * 65536.0) as i32;
        for p in row.iter_mut() {
            *p = (acc >> 16).clamp(0, 255) as u8;
            acc += dx;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_deterministic_and_moves() {
        let mut a = Frame::black(90, 160);
        let mut b = Frame::black(90, 160);
        render(42, 30, &mut a);
        render(42, 30, &mut b);
        assert_eq!(a, b);
        render(42 + 90, 30, &mut b);
        assert_ne!(a, b, "three seconds later the background has changed");
        assert!(a.y.iter().all(|&v| (16..=235).contains(&v)));
    }
}
