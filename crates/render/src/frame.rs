//! Planar YUV 4:2:0 frames, the one picture format of the render path.
//!
//! Decoder output, the scaler, caption blending and the x264 input all speak this layout,
//! so a frame is never converted to RGB on the hot path (only for the thumbnail).

/// An 8-bit planar YUV 4:2:0 picture with tightly packed planes (stride = width).
///
/// Width and height are even; chroma planes are `width/2 x height/2`.
/// Samples are BT.709 limited range (Y 16..=235, UV 16..=240), as the output is tagged.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    pub width: usize,
    pub height: usize,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Frame({}x{})", self.width, self.height)
    }
}

impl Frame {
    /// A black frame. `width` and `height` must be even (the caller's sizes come from
    /// [`crate::plan::OutputSize`], which guarantees it).
    pub fn black(width: usize, height: usize) -> Self {
        debug_assert!(width.is_multiple_of(2) && height.is_multiple_of(2));
        let c = (width / 2) * (height / 2);
        Frame {
            width,
            height,
            y: vec![16; width * height],
            u: vec![128; c],
            v: vec![128; c],
        }
    }

    /// Chroma plane width.
    pub fn cw(&self) -> usize {
        self.width / 2
    }

    /// Chroma plane height.
    pub fn ch(&self) -> usize {
        self.height / 2
    }

    /// Copies `other` into `self` without reallocating (sizes must match).
    pub fn copy_from(&mut self, other: &Frame) {
        self.y.copy_from_slice(&other.y);
        self.u.copy_from_slice(&other.u);
        self.v.copy_from_slice(&other.v);
    }

    /// Converts to packed 8-bit RGB (BT.709 limited range in), for thumbnails.
    pub fn to_rgb(&self) -> Vec<u8> {
        let mut out = vec![0u8; self.width * self.height * 3];
        let cw = self.cw();
        for row in 0..self.height {
            for col in 0..self.width {
                let y = f32::from(self.y[row * self.width + col]) - 16.0;
                let ci = (row / 2) * cw + col / 2;
                let u = f32::from(self.u[ci]) - 128.0;
                let v = f32::from(self.v[ci]) - 128.0;
                let yy = y * 1.164_383;
                let r = yy + 1.792_741 * v;
                let g = yy - 0.213_249 * u - 0.532_909 * v;
                let b = yy + 2.112_402 * u;
                let o = (row * self.width + col) * 3;
                out[o] = r.round().clamp(0.0, 255.0) as u8;
                out[o + 1] = g.round().clamp(0.0, 255.0) as u8;
                out[o + 2] = b.round().clamp(0.0, 255.0) as u8;
            }
        }
        out
    }
}

/// BT.709 limited-range conversion of one (non-premultiplied) RGB colour to Y, U, V.
pub fn rgb_to_yuv(r: u8, g: u8, b: u8) -> (f32, f32, f32) {
    let (r, g, b) = (
        f32::from(r) / 255.0,
        f32::from(g) / 255.0,
        f32::from(b) / 255.0,
    );
    let y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    let u = (b - y) / 1.8556;
    let v = (r - y) / 1.5748;
    (16.0 + 219.0 * y, 128.0 + 224.0 * u, 128.0 + 224.0 * v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rgb_round_trip_is_close() {
        for &(r, g, b) in &[
            (255u8, 230u8, 0u8),
            (0, 0, 0),
            (255, 255, 255),
            (30, 144, 255),
        ] {
            let (y, u, v) = rgb_to_yuv(r, g, b);
            let mut f = Frame::black(2, 2);
            f.y.fill(y.round() as u8);
            f.u[0] = u.round() as u8;
            f.v[0] = v.round() as u8;
            let rgb = f.to_rgb();
            for (got, want) in rgb[..3].iter().zip([r, g, b]) {
                assert!(
                    (i32::from(*got) - i32::from(want)).abs() <= 3,
                    "{rgb:?} vs {r},{g},{b}"
                );
            }
        }
    }
}
