//! H.264 encoding with libx264, configured so that chunks join by concatenation.
//!
//! Every chunk is a closed-GOP Annex B stream that starts with an IDR, repeats SPS/PPS
//! before each IDR, and carries access unit delimiters. Given the same settings x264
//! writes byte-identical SPS/PPS, so `cat chunk-*.h264` is one valid stream.

use std::ffi::{CStr, CString};
use std::mem::MaybeUninit;
use std::os::raw::c_int;

use x264_sys as sys;

use crate::frame::Frame;

/// The x264 presets, fastest first.
pub const PRESETS: &[&str] = &[
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
];

/// Encoder settings that must be identical for every chunk of one video.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EncoderSettings {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// x264 preset name, one of [`PRESETS`].
    pub preset: String,
    /// Constant rate factor, 0 (lossless) ..= 51.
    pub crf: f32,
    /// Frames per closed GOP inside a chunk (each chunk also starts a GOP).
    pub keyint: u32,
}

/// Encoder choices beyond [`EncoderSettings`], which render plans never set (so a plan's JSON,
/// and the hash its chunk keys carry, stay as they were).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncoderTuning {
    /// Most consecutive B-frames (`None`: the preset's). 0 makes decode order presentation
    /// order, which the prepared backgrounds need.
    pub max_bframes: Option<u32>,
}

/// Errors from the encoder.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("unknown x264 preset {0:?} (expected one of {list})", list = PRESETS.join(", "))]
    UnknownPreset(String),
    #[error("invalid crf {0} (expected 0 ..= 51)")]
    InvalidCrf(f32),
    #[error("invalid frame size {0}x{1} (expected even sizes from 16x16 to 4096x4096)")]
    InvalidSize(u32, u32),
    #[error("x264 refused the settings: {0}")]
    Open(String),
    #[error("x264 failed to encode frame {0}")]
    Encode(i64),
    #[error("frame is {got_w}x{got_h} but the encoder was opened for {want_w}x{want_h}")]
    FrameSize {
        got_w: usize,
        got_h: usize,
        want_w: u32,
        want_h: u32,
    },
}

impl EncoderSettings {
    /// Checks the values a user can set, before any chunk is rendered.
    pub fn validate(&self) -> Result<(), EncodeError> {
        if !PRESETS.contains(&self.preset.as_str()) {
            return Err(EncodeError::UnknownPreset(self.preset.clone()));
        }
        if !(0.0..=51.0).contains(&self.crf) || self.crf.is_nan() {
            return Err(EncodeError::InvalidCrf(self.crf));
        }
        let ok = |v: u32| (16..=4096).contains(&v) && v.is_multiple_of(2);
        if !ok(self.width) || !ok(self.height) {
            return Err(EncodeError::InvalidSize(self.width, self.height));
        }
        Ok(())
    }
}

/// One open libx264 encoder producing Annex B bytes.
pub struct Encoder {
    enc: *mut sys::x264_t,
    pic: sys::x264_picture_t,
    settings: EncoderSettings,
    next_pts: i64,
}

// The x264 handle is owned exclusively by this value and x264 has no thread affinity.
unsafe impl Send for Encoder {}

impl Encoder {
    /// Opens an encoder. `threads` is x264's frame-thread count (0 = x264's own choice).
    pub fn new(settings: &EncoderSettings, threads: u32) -> Result<Self, EncodeError> {
        Self::with_tuning(settings, threads, EncoderTuning::default())
    }

    /// Opens an encoder with `tuning` applied on top of the preset.
    pub fn with_tuning(
        settings: &EncoderSettings,
        threads: u32,
        tuning: EncoderTuning,
    ) -> Result<Self, EncodeError> {
        settings.validate()?;
        let preset = CString::new(settings.preset.as_str())
            .map_err(|_| EncodeError::UnknownPreset(settings.preset.clone()))?;
        let lossless = settings.crf == 0.0;
        let profile = if lossless { c"high444" } else { c"high" };
        // SAFETY: x264_param_default_preset fully initialises the struct when it returns 0;
        // all strings passed outlive the calls.
        unsafe {
            let mut p = MaybeUninit::<sys::x264_param_t>::zeroed();
            if sys::x264_param_default_preset(p.as_mut_ptr(), preset.as_ptr(), std::ptr::null()) < 0
            {
                return Err(EncodeError::UnknownPreset(settings.preset.clone()));
            }
            let mut p = p.assume_init();
            p.i_log_level = sys::X264_LOG_ERROR as c_int;
            p.i_threads = threads as c_int;
            p.b_sliced_threads = 0;
            p.b_deterministic = 1;
            p.i_width = settings.width as c_int;
            p.i_height = settings.height as c_int;
            p.i_csp = sys::X264_CSP_I420 as c_int;
            p.i_fps_num = settings.fps;
            p.i_fps_den = 1;
            p.i_timebase_num = 1;
            p.i_timebase_den = settings.fps;
            p.b_vfr_input = 0;
            p.i_keyint_max = settings.keyint.max(1) as c_int;
            p.i_keyint_min = settings.keyint.max(1) as c_int;
            p.i_scenecut_threshold = 0;
            p.b_open_gop = 0;
            p.b_repeat_headers = 1;
            p.b_annexb = 1;
            p.b_aud = 1;
            p.vui.i_colorprim = 1;
            p.vui.i_transfer = 1;
            p.vui.i_colmatrix = 1;
            p.vui.b_fullrange = 0;
            p.vui.i_sar_width = 1;
            p.vui.i_sar_height = 1;
            if let Some(b) = tuning.max_bframes {
                p.i_bframe = b.min(16) as c_int;
            }
            p.rc.i_rc_method = sys::X264_RC_CRF as c_int;
            p.rc.f_rf_constant = settings.crf;
            if sys::x264_param_apply_profile(&mut p, profile.as_ptr()) < 0 {
                return Err(EncodeError::Open(format!(
                    "profile {} does not allow these settings",
                    CStr::from_ptr(profile.as_ptr()).to_string_lossy()
                )));
            }
            let enc = sys::x264_encoder_open(&mut p);
            if enc.is_null() {
                return Err(EncodeError::Open(format!(
                    "x264_encoder_open failed for {}x{} preset {} crf {}",
                    settings.width, settings.height, settings.preset, settings.crf
                )));
            }
            let mut pic = MaybeUninit::<sys::x264_picture_t>::zeroed();
            sys::x264_picture_init(pic.as_mut_ptr());
            let mut pic = pic.assume_init();
            pic.img.i_csp = sys::X264_CSP_I420 as c_int;
            pic.img.i_plane = 3;
            Ok(Encoder {
                enc,
                pic,
                settings: settings.clone(),
                next_pts: 0,
            })
        }
    }

    /// Encodes one frame, appending any finished access units (Annex B) to `out`.
    pub fn encode(&mut self, frame: &Frame, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if frame.width != self.settings.width as usize
            || frame.height != self.settings.height as usize
        {
            return Err(EncodeError::FrameSize {
                got_w: frame.width,
                got_h: frame.height,
                want_w: self.settings.width,
                want_h: self.settings.height,
            });
        }
        self.pic.img.plane[0] = frame.y.as_ptr() as *mut u8;
        self.pic.img.plane[1] = frame.u.as_ptr() as *mut u8;
        self.pic.img.plane[2] = frame.v.as_ptr() as *mut u8;
        self.pic.img.i_stride[0] = frame.width as c_int;
        self.pic.img.i_stride[1] = (frame.width / 2) as c_int;
        self.pic.img.i_stride[2] = (frame.width / 2) as c_int;
        self.pic.i_pts = self.next_pts;
        self.pic.i_type = sys::X264_TYPE_AUTO as c_int;
        self.next_pts += 1;
        let pic: *mut sys::x264_picture_t = &mut self.pic;
        // SAFETY: x264 only reads the planes during this call (it copies the picture into
        // its own lookahead buffers), and `frame` outlives the call.
        unsafe { self.encode_raw(pic, out) }
    }

    /// Drains the frames x264 still holds (B-frame and lookahead delay).
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        while self.flush_one(out)? {}
        Ok(())
    }

    /// Drains at most one held frame, appending its access unit (if x264 gave one out) to
    /// `out`; false when nothing was held. Each call of [`Self::encode`] and of this gives out
    /// at most one access unit, so a caller can index the stream picture by picture.
    pub fn flush_one(&mut self, out: &mut Vec<u8>) -> Result<bool, EncodeError> {
        // SAFETY: `enc` is a live encoder; a null picture asks x264 to flush.
        unsafe {
            if sys::x264_encoder_delayed_frames(self.enc) <= 0 {
                return Ok(false);
            }
            self.encode_raw(std::ptr::null_mut(), out)?;
        }
        Ok(true)
    }

    unsafe fn encode_raw(
        &mut self,
        pic: *mut sys::x264_picture_t,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        let mut nals: *mut sys::x264_nal_t = std::ptr::null_mut();
        let mut n: c_int = 0;
        let mut pic_out = MaybeUninit::<sys::x264_picture_t>::zeroed();
        // SAFETY: the caller guarantees `pic` is null or valid; outputs are x264-owned
        // until the next call, and are copied out before returning.
        unsafe {
            let size =
                sys::x264_encoder_encode(self.enc, &mut nals, &mut n, pic, pic_out.as_mut_ptr());
            if size < 0 {
                return Err(EncodeError::Encode(self.next_pts - 1));
            }
            if size > 0 && !nals.is_null() {
                // With b_annexb the payloads of one call are contiguous in x264's buffer.
                let first = (*nals).p_payload;
                out.extend_from_slice(std::slice::from_raw_parts(first, size as usize));
            }
        }
        Ok(())
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: `enc` came from x264_encoder_open and is closed once.
        unsafe { sys::x264_encoder_close(self.enc) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> EncoderSettings {
        EncoderSettings {
            width: 64,
            height: 128,
            fps: 30,
            preset: "veryfast".into(),
            crf: 23.0,
            keyint: 10,
        }
    }

    #[test]
    fn rejects_bad_settings_with_the_allowed_range() {
        let mut s = settings();
        s.preset = "warp".into();
        let e = Encoder::new(&s, 1)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("\"warp\"") && e.contains("veryfast"), "{e}");
        let mut s = settings();
        s.crf = 60.0;
        let e = Encoder::new(&s, 1)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("60") && e.contains("0 ..= 51"), "{e}");
        let mut s = settings();
        s.width = 63;
        assert!(Encoder::new(&s, 1).is_err());
    }

    #[test]
    fn encodes_all_frames_starting_with_an_idr() {
        let mut enc = Encoder::new(&settings(), 1).expect("open");
        let mut out = Vec::new();
        let mut f = Frame::black(64, 128);
        for i in 0..25u8 {
            f.y.fill(16 + i * 4);
            enc.encode(&f, &mut out).expect("encode");
        }
        enc.finish(&mut out).expect("finish");
        // AUD, then SPS (type 7) right after: the first access unit is self-contained.
        let types: Vec<u8> = out
            .windows(3)
            .enumerate()
            .filter(|(_, w)| *w == [0, 0, 1])
            .filter_map(|(i, _)| out.get(i + 3).map(|b| b & 0x1f))
            .collect();
        assert_eq!(types.first(), Some(&9));
        assert_eq!(types.get(1), Some(&7));
        assert_eq!(types.iter().filter(|&&t| t == 9).count(), 25);
        assert_eq!(
            types.iter().filter(|&&t| t == 5).count(),
            3,
            "IDR every 10 frames"
        );
    }
}
