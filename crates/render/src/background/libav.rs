//! H.264 decoding with the system's libavcodec (FFmpeg), loaded with `dlopen` when it is there.
//!
//! FFmpeg's decoder is the fastest on x86 (hand-written SIMD for every kernel): 4.7 ms a 1080p
//! picture against `rusty_h264`'s 7.4 ms on the benchmark host. Both are bit-exact H.264
//! decoders, so a frame is the same whichever one made it (`tests/background.rs` checks this on
//! every kind of test footage), and a chunk rendered here still joins a chunk rendered by a
//! Lambda, which has no libavcodec and uses `rusty_h264`.
//!
//! Loaded at run time rather than linked, like libespeak-ng: the deployed bootstraps must need
//! nothing beyond glibc. Only stable entry points are called; the two structures read
//! directly (`AVPacket`'s and `AVFrame`'s leading fields) have had the same layout from FFmpeg
//! 4 to 7 (libavcodec 58–61, libavutil 56–59), and other versions are not used. Codec
//! contexts are configured and read through AVOptions (`av_opt_set`, `av_opt_get_int`, ...),
//! never by field offset.
//!
//! The same decoder also serves [`super::libavformat`], which feeds it the packets of any
//! codec libavcodec has. `STORYREEL_FFMPEG=off` makes every FFmpeg library count as absent
//! (nothing is loaded), as on a machine without them.

use std::ffi::{CStr, c_char, c_int, c_uint, c_void};
use std::sync::OnceLock;

/// libavutil majors whose `AVFrame` starts with the layout read below (FFmpeg 4.0 to 7.1).
const AVUTIL_MAJORS: std::ops::RangeInclusive<c_uint> = 56..=59;

/// The libavcodec sonames tried, newest first (each pairs with one libavutil major above).
const LIBRARY_NAMES: [&str; 4] = [
    "libavcodec.so.61",
    "libavcodec.so.60",
    "libavcodec.so.59",
    "libavcodec.so.58",
];

/// `AVERROR(EAGAIN)` on Linux.
const AVERROR_EAGAIN: c_int = -11;
/// `AVERROR_EOF`: `FFERRTAG('E','O','F',' ')`.
const AVERROR_EOF: c_int = -0x2046_4F45;
/// `AV_LOG_QUIET` and `AV_LOG_ERROR`.
const AV_LOG_QUIET: c_int = -8;
const AV_LOG_ERROR: c_int = 16;
/// `AV_PIX_FMT_YUV420P` and `AV_PIX_FMT_YUVJ420P` (full range; same planes).
pub(super) const PIX_FMT_YUV420P: c_int = 0;
const PIX_FMT_YUVJ420P: c_int = 12;
/// `AVDISCARD_DEFAULT` and `AVDISCARD_NONREF`, values of the `skip_frame` option.
const DISCARD_DEFAULT: i64 = 0;
const DISCARD_NONREF: i64 = 8;

/// The variable that lets storyreel use FFmpeg's libraries (`auto`) or not (`off`).
pub const FFMPEG_VAR: &str = "STORYREEL_FFMPEG";

/// Whether `STORYREEL_FFMPEG` lets FFmpeg's libraries be loaded: `auto` (or unset) yes, `off`
/// no (as if they were not installed); any other value is an error listing the choices.
pub fn ffmpeg_allowed() -> Result<bool, String> {
    let value = std::env::var(FFMPEG_VAR).unwrap_or_default();
    match value.trim() {
        "" | "auto" => Ok(true),
        "off" => Ok(false),
        other => Err(format!(
            "{FFMPEG_VAR}={other:?} is not a choice (expected auto or off)"
        )),
    }
}

// Offsets of the fields read or written, stable over the versions in `AVUTIL_MAJORS`.
/// `AVPacket.pts` (after `AVBufferRef *buf`).
const PACKET_PTS: usize = 8;
/// `AVPacket.data`.
const PACKET_DATA: usize = 24;
/// `AVFrame.data[0..8]`, `linesize[0..8]`, `width`, `height`, `format`, `pts`.
const FRAME_DATA: usize = 0;
const FRAME_LINESIZE: usize = 64;
const FRAME_WIDTH: usize = 104;
const FRAME_HEIGHT: usize = 108;
const FRAME_FORMAT: usize = 116;
const FRAME_PTS: usize = 136;

type Ptr = *mut c_void;

/// The entry points used, resolved once.
pub(super) struct Api {
    pub(super) alloc_context3: unsafe extern "C" fn(*const c_void) -> Ptr,
    pub(super) open2: unsafe extern "C" fn(Ptr, *const c_void, *mut Ptr) -> c_int,
    pub(super) free_context: unsafe extern "C" fn(*mut Ptr),
    pub(super) send_packet: unsafe extern "C" fn(Ptr, *const c_void) -> c_int,
    pub(super) receive_frame: unsafe extern "C" fn(Ptr, Ptr) -> c_int,
    pub(super) packet_alloc: unsafe extern "C" fn() -> Ptr,
    pub(super) packet_free: unsafe extern "C" fn(*mut Ptr),
    pub(super) new_packet: unsafe extern "C" fn(Ptr, c_int) -> c_int,
    pub(super) packet_unref: unsafe extern "C" fn(Ptr),
    pub(super) frame_alloc: unsafe extern "C" fn() -> Ptr,
    pub(super) frame_free: unsafe extern "C" fn(*mut Ptr),
    pub(super) opt_set: unsafe extern "C" fn(Ptr, *const c_char, *const c_char, c_int) -> c_int,
    pub(super) strerror: unsafe extern "C" fn(c_int, *mut c_char, usize) -> c_int,
    pub(super) parameters_to_context: unsafe extern "C" fn(Ptr, *const c_void) -> c_int,
    pub(super) get_name: unsafe extern "C" fn(c_int) -> *const c_char,
    opt_set_int: unsafe extern "C" fn(Ptr, *const c_char, i64, c_int) -> c_int,
    pub(super) opt_get_int: unsafe extern "C" fn(Ptr, *const c_char, c_int, *mut i64) -> c_int,
    pub(super) opt_get_image_size:
        unsafe extern "C" fn(Ptr, *const c_char, c_int, *mut c_int, *mut c_int) -> c_int,
    pub(super) pix_fmt_name: unsafe extern "C" fn(c_int) -> *const c_char,
    pub(super) dict_set:
        unsafe extern "C" fn(*mut Ptr, *const c_char, *const c_char, c_int) -> c_int,
    pub(super) dict_free: unsafe extern "C" fn(*mut Ptr),
    /// `av_packet_side_data_get` (FFmpeg 6.1 and later).
    pub(super) packet_side_data_get:
        Option<unsafe extern "C" fn(*const c_void, c_int, c_int) -> *const c_void>,
    /// libavcodec's major version (libavutil's is two less).
    pub(super) avcodec_major: c_uint,
    /// The h264 decoder (`const AVCodec *`).
    codec: usize,
    /// Which library was loaded, for reports.
    pub(super) name: String,
    /// Keeps the library mapped while the pointers above are used (the process).
    _lib: libloading::Library,
}

static API: OnceLock<Result<Api, String>> = OnceLock::new();

/// `av_log_set_callback`'s callback: `(void *avcl, int level, const char *fmt, va_list vl)`.
/// A `va_list` argument is passed as a pointer on the ABIs FFmpeg is loaded on (x86-64 and
/// AArch64 Linux); it is only handed on to `av_log_format_line2`.
type LogCallback = unsafe extern "C" fn(Ptr, c_int, *const c_char, *mut c_void);
type LogFormat = unsafe extern "C" fn(
    Ptr,
    c_int,
    *const c_char,
    *mut c_void,
    *mut c_char,
    c_int,
    *mut c_int,
) -> c_int;
static LOG_FORMAT: OnceLock<LogFormat> = OnceLock::new();

thread_local! {
    /// `None`: nobody listens; `Some(None)`: listening, nothing yet; `Some(Some(line))`: the
    /// first error-level line FFmpeg logged on this thread since.
    static CAPTURED: std::cell::RefCell<Option<Option<String>>> =
        const { std::cell::RefCell::new(None) };
}

/// Keeps the first error-level message, if this thread is listening; everything else is
/// dropped (FFmpeg's own output stays silent). Never panics: it runs inside FFmpeg.
unsafe extern "C" fn log_callback(avcl: Ptr, level: c_int, fmt: *const c_char, vl: *mut c_void) {
    if level > AV_LOG_ERROR || fmt.is_null() {
        return;
    }
    let _ = CAPTURED.try_with(|captured| {
        let Ok(mut captured) = captured.try_borrow_mut() else {
            return;
        };
        let Some(slot) = captured.as_mut() else {
            return;
        };
        if slot.is_some() {
            return;
        }
        let mut line = [0 as c_char; 256];
        let mut prefix: c_int = 0;
        let text = match LOG_FORMAT.get() {
            // SAFETY: the arguments FFmpeg gave us, handed on once; the buffer is writable for
            // its length and av_log_format_line2 NUL-terminates it.
            Some(format) => unsafe {
                format(
                    avcl,
                    level,
                    fmt,
                    vl,
                    line.as_mut_ptr(),
                    line.len() as c_int,
                    &mut prefix,
                );
                CStr::from_ptr(line.as_ptr())
                    .to_string_lossy()
                    .trim()
                    .to_string()
            },
            None => String::new(),
        };
        *slot = Some(text);
    });
}

/// Runs `f`, returning with its result the first error FFmpeg logged on this thread meanwhile.
pub(super) fn capture_errors<R>(f: impl FnOnce() -> R) -> (R, Option<String>) {
    CAPTURED.with(|c| *c.borrow_mut() = Some(None));
    let result = f();
    let logged = CAPTURED.with(|c| c.borrow_mut().take().flatten());
    (result, logged)
}

/// libavcodec's entry points, loaded on first use; an error says why they cannot be used
/// (turned off by `STORYREEL_FFMPEG`, not installed, an unsupported version).
pub(super) fn api() -> Result<&'static Api, String> {
    if !ffmpeg_allowed()? {
        return Err(format!(
            "FFmpeg's libraries are turned off by {FFMPEG_VAR}=off"
        ));
    }
    API.get_or_init(load).as_ref().map_err(Clone::clone)
}

/// The loaded libavcodec's soname, or why it cannot be used (turned off, not installed, an
/// unsupported version, no h264 decoder).
pub fn available() -> Result<&'static str, String> {
    api().map(|a| a.name.as_str())
}

fn load() -> Result<Api, String> {
    let mut reasons = Vec::new();
    for name in LIBRARY_NAMES {
        // SAFETY: loading libavcodec runs only its ELF initialisers, which set up static tables.
        match unsafe { libloading::Library::new(name) } {
            Ok(lib) => return resolve(lib, name).map_err(|e| format!("{name}: {e}")),
            Err(e) => reasons.push(e.to_string()),
        }
    }
    Err(format!(
        "libavcodec is not installed (FFmpeg 4 to 7): {}",
        reasons.join("; ")
    ))
}

fn resolve(lib: libloading::Library, name: &str) -> Result<Api, String> {
    let sym = |e: libloading::Error| e.to_string();
    // SAFETY: each symbol is declared with the signature FFmpeg's headers give it; `dlsym` on
    // libavcodec's handle also finds the libavutil functions it depends on.
    unsafe {
        let avutil_version: unsafe extern "C" fn() -> c_uint =
            *lib.get(b"avutil_version\0").map_err(sym)?;
        let major = avutil_version() >> 16;
        if !AVUTIL_MAJORS.contains(&major) {
            return Err(format!(
                "libavutil {major} is not a supported version (expected {} to {})",
                AVUTIL_MAJORS.start(),
                AVUTIL_MAJORS.end()
            ));
        }
        let avcodec_version: unsafe extern "C" fn() -> c_uint =
            *lib.get(b"avcodec_version\0").map_err(sym)?;
        let avcodec_major = avcodec_version() >> 16;
        // Each FFmpeg release pairs libavcodec N with libavutil N - 2 (58/56 ... 61/59).
        if avcodec_major != major + 2 {
            return Err(format!(
                "libavcodec {avcodec_major} with libavutil {major} is not one FFmpeg release \
                 (expected libavcodec {})",
                major + 2
            ));
        }
        // Errors reach the caller as return codes; FFmpeg's own log lines on stderr would only
        // repeat them (or report what the caller recovers from).
        let log_set_level: unsafe extern "C" fn(c_int) =
            *lib.get(b"av_log_set_level\0").map_err(sym)?;
        log_set_level(AV_LOG_QUIET);
        // FFmpeg's messages are not printed, but an error one is kept while a caller asks
        // (`capture_errors`): some damage is only logged (a demuxer resyncing past garbage).
        let log_format: LogFormat = *lib.get(b"av_log_format_line2\0").map_err(sym)?;
        let _ = LOG_FORMAT.set(log_format);
        let log_set_callback: unsafe extern "C" fn(LogCallback) =
            *lib.get(b"av_log_set_callback\0").map_err(sym)?;
        log_set_callback(log_callback);
        let find_decoder_by_name: unsafe extern "C" fn(*const c_char) -> *const c_void =
            *lib.get(b"avcodec_find_decoder_by_name\0").map_err(sym)?;
        let codec = find_decoder_by_name(c"h264".as_ptr());
        if codec.is_null() {
            return Err("this libavcodec has no h264 decoder".into());
        }
        Ok(Api {
            alloc_context3: *lib.get(b"avcodec_alloc_context3\0").map_err(sym)?,
            open2: *lib.get(b"avcodec_open2\0").map_err(sym)?,
            free_context: *lib.get(b"avcodec_free_context\0").map_err(sym)?,
            send_packet: *lib.get(b"avcodec_send_packet\0").map_err(sym)?,
            receive_frame: *lib.get(b"avcodec_receive_frame\0").map_err(sym)?,
            packet_alloc: *lib.get(b"av_packet_alloc\0").map_err(sym)?,
            packet_free: *lib.get(b"av_packet_free\0").map_err(sym)?,
            new_packet: *lib.get(b"av_new_packet\0").map_err(sym)?,
            packet_unref: *lib.get(b"av_packet_unref\0").map_err(sym)?,
            frame_alloc: *lib.get(b"av_frame_alloc\0").map_err(sym)?,
            frame_free: *lib.get(b"av_frame_free\0").map_err(sym)?,
            opt_set: *lib.get(b"av_opt_set\0").map_err(sym)?,
            strerror: *lib.get(b"av_strerror\0").map_err(sym)?,
            parameters_to_context: *lib.get(b"avcodec_parameters_to_context\0").map_err(sym)?,
            get_name: *lib.get(b"avcodec_get_name\0").map_err(sym)?,
            opt_set_int: *lib.get(b"av_opt_set_int\0").map_err(sym)?,
            opt_get_int: *lib.get(b"av_opt_get_int\0").map_err(sym)?,
            opt_get_image_size: *lib.get(b"av_opt_get_image_size\0").map_err(sym)?,
            pix_fmt_name: *lib.get(b"av_get_pix_fmt_name\0").map_err(sym)?,
            dict_set: *lib.get(b"av_dict_set\0").map_err(sym)?,
            dict_free: *lib.get(b"av_dict_free\0").map_err(sym)?,
            packet_side_data_get: lib.get(b"av_packet_side_data_get\0").ok().map(|f| *f),
            avcodec_major,
            codec: codec as usize,
            name: name.to_string(),
            _lib: lib,
        })
    }
}

/// libavcodec's text for an error code.
pub(super) fn error_text(api: &Api, code: c_int) -> String {
    let mut buf = [0 as c_char; 128];
    // SAFETY: `buf` is writable for its length; av_strerror always NUL-terminates.
    unsafe {
        (api.strerror)(code, buf.as_mut_ptr(), buf.len());
        CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned()
    }
}

/// One decoded picture, owned (an `AVFrame` holding references to the decoder's buffers).
pub struct Picture {
    frame: Ptr,
    api: &'static Api,
}

// SAFETY: an AVFrame's buffers are reference-counted with atomic counts; the frame itself is
// only touched through `&self`/`&mut self` of this owner.
unsafe impl Send for Picture {}

impl Picture {
    fn field<T: Copy>(&self, offset: usize) -> T {
        // SAFETY: `frame` is a live AVFrame and `offset` a field of type T in the versions
        // allowed by `AVUTIL_MAJORS`.
        unsafe { self.frame.cast::<u8>().add(offset).cast::<T>().read() }
    }

    /// Presentation time, as given to the packet it came from.
    pub fn pts(&self) -> i64 {
        self.field(FRAME_PTS)
    }

    /// The `AVPixelFormat` of the planes.
    pub fn format(&self) -> c_int {
        self.field(FRAME_FORMAT)
    }

    /// True for 8-bit 4:2:0 (limited or full range), which [`Self::planes`] describes; other
    /// formats are converted first ([`super::libavformat::Footage::convert`]).
    pub fn is_yuv420(&self) -> bool {
        matches!(self.format(), PIX_FMT_YUV420P | PIX_FMT_YUVJ420P)
    }

    /// The `data` and `linesize` arrays (as libswscale takes them).
    pub(super) fn raw_planes(&self) -> ([*const u8; 4], [c_int; 4]) {
        let mut data = [std::ptr::null::<u8>(); 4];
        let mut lines = [0 as c_int; 4];
        for k in 0..4 {
            data[k] = self.field(FRAME_DATA + 8 * k);
            lines[k] = self.field(FRAME_LINESIZE + 4 * k);
        }
        (data, lines)
    }

    /// Width and height (after the stream's cropping).
    pub fn size(&self) -> (usize, usize) {
        let w: c_int = self.field(FRAME_WIDTH);
        let h: c_int = self.field(FRAME_HEIGHT);
        (w.max(0) as usize, h.max(0) as usize)
    }

    /// The Y, U and V planes and their row strides.
    pub fn planes(&self) -> ([&[u8]; 3], [usize; 3]) {
        let (w, h) = self.size();
        let sizes = [
            (w, h),
            (w.div_ceil(2), h.div_ceil(2)),
            (w.div_ceil(2), h.div_ceil(2)),
        ];
        let mut planes: [&[u8]; 3] = [&[]; 3];
        let mut strides = [0usize; 3];
        for (k, (pw, ph)) in sizes.into_iter().enumerate() {
            let data: *const u8 = self.field(FRAME_DATA + 8 * k);
            let stride: c_int = self.field(FRAME_LINESIZE + 4 * k);
            if data.is_null() || stride < pw as c_int || ph == 0 {
                continue;
            }
            let stride = stride as usize;
            // SAFETY: a decoded yuv420p plane holds `ph` rows of `stride` bytes (the last row
            // at least `pw`), alive while the frame is.
            planes[k] = unsafe { std::slice::from_raw_parts(data, stride * (ph - 1) + pw) };
            strides[k] = stride;
        }
        (planes, strides)
    }
}

impl Drop for Picture {
    fn drop(&mut self) {
        // SAFETY: `frame` came from av_frame_alloc and is freed once.
        unsafe { (self.api.frame_free)(&mut self.frame) }
    }
}

/// A single-threaded libavcodec decoder: H.264 fed Annex B access units with their timestamps
/// ([`Decoder::new`]), or any codec fed a demuxer's packets ([`Decoder::for_stream`]).
pub struct Decoder {
    ctx: Ptr,
    packet: Ptr,
    api: &'static Api,
    /// End of stream was signalled: nothing more can be sent.
    drained: bool,
    /// Pictures of any pixel format are given out (else only 8-bit 4:2:0).
    any_format: bool,
    /// The `skip_frame` setting now in force: non-reference pictures are not decoded.
    skip_nonref: bool,
}

// SAFETY: a codec context may be used from any thread, one at a time; `&mut self` ensures that.
unsafe impl Send for Decoder {}

impl Decoder {
    /// A decoder on one thread (the render already keeps every core busy) that fails on any
    /// error it detects instead of concealing it, as `rusty_h264` does, and outputs pictures
    /// from a stream started at a non-IDR sync sample too.
    pub fn new() -> Result<Self, String> {
        let api = api()?;
        Self::open(api, api.codec as *const c_void, None)
    }

    /// A decoder for a demuxed stream: `codec` is the `const AVCodec *` and `codecpar` the
    /// `AVCodecParameters *` libavformat gave for it. Configured as [`Decoder::new`]'s, and it
    /// gives out pictures of any pixel format.
    pub(super) fn for_stream(
        codec: *const c_void,
        codecpar: *const c_void,
    ) -> Result<Self, String> {
        let api = api()?;
        Self::open(api, codec, Some(codecpar))
    }

    fn open(
        api: &'static Api,
        codec: *const c_void,
        codecpar: Option<*const c_void>,
    ) -> Result<Self, String> {
        // SAFETY: the calls follow libavcodec's documented allocate/configure/open order; every
        // pointer is checked before use and freed in `Drop`.
        unsafe {
            let ctx = (api.alloc_context3)(codec);
            if ctx.is_null() {
                return Err("avcodec_alloc_context3 failed".into());
            }
            let dec = Decoder {
                ctx,
                packet: (api.packet_alloc)(),
                api,
                drained: false,
                any_format: codecpar.is_some(),
                skip_nonref: false,
            };
            if dec.packet.is_null() {
                return Err("av_packet_alloc failed".into());
            }
            if let Some(par) = codecpar {
                let r = (api.parameters_to_context)(ctx, par);
                if r < 0 {
                    return Err(format!(
                        "avcodec_parameters_to_context: {}",
                        error_text(api, r)
                    ));
                }
            }
            // Footage of other codecs: decoders whose arithmetic is not fixed by their standard
            // (MPEG-4 Part 2's IDCT) otherwise pick a CPU-dependent variant; the same file
            // must give the same bytes on every machine.
            let bitexact: &[(&CStr, &CStr)] = match codecpar {
                Some(_) => &[(c"flags", c"+bitexact")],
                None => &[],
            };
            for &(key, value) in [
                (c"threads", c"1"),
                (c"err_detect", c"+explode"),
                (c"flags2", c"+showall"),
            ]
            .iter()
            .chain(bitexact)
            {
                let r = (api.opt_set)(ctx, key.as_ptr(), value.as_ptr(), 0);
                if r < 0 {
                    return Err(format!(
                        "setting {} failed: {}",
                        key.to_string_lossy(),
                        error_text(api, r)
                    ));
                }
            }
            let r = (api.open2)(ctx, codec, std::ptr::null_mut());
            if r < 0 {
                return Err(format!("avcodec_open2: {}", error_text(api, r)));
            }
            Ok(dec)
        }
    }

    /// Sends one access unit (Annex B) presented at `pts`, then appends every picture the
    /// decoder has ready to `out`.
    pub fn decode(
        &mut self,
        annexb: &[u8],
        pts: i64,
        out: &mut dyn FnMut(Picture),
    ) -> Result<(), String> {
        if self.drained {
            return Err("the decoder was already flushed".into());
        }
        let len = c_int::try_from(annexb.len())
            .map_err(|_| format!("an access unit of {} bytes is too large", annexb.len()))?;
        // SAFETY: av_new_packet gives `packet` a zero-padded buffer of `len` bytes at `data`;
        // the copy stays inside it. send_packet takes its own reference; unref drops ours.
        unsafe {
            let r = (self.api.new_packet)(self.packet, len);
            if r < 0 {
                return Err(format!("av_new_packet: {}", error_text(self.api, r)));
            }
            let base = self.packet.cast::<u8>();
            let data = base.add(PACKET_DATA).cast::<*mut u8>().read();
            std::ptr::copy_nonoverlapping(annexb.as_ptr(), data, annexb.len());
            base.add(PACKET_PTS).cast::<i64>().write(pts);
            let r = (self.api.send_packet)(self.ctx, self.packet);
            (self.api.packet_unref)(self.packet);
            if r < 0 {
                return Err(error_text(self.api, r));
            }
        }
        self.receive(out)
    }

    /// Sends a packet a demuxer filled (its `pts` already set by the caller), then appends
    /// every picture the decoder has ready to `out`. The packet keeps its data.
    pub(super) fn send(&mut self, packet: Ptr, out: &mut dyn FnMut(Picture)) -> Result<(), String> {
        if self.drained {
            return Err("the decoder was already flushed".into());
        }
        // SAFETY: `packet` is a valid AVPacket; send_packet takes its own reference.
        let r = unsafe { (self.api.send_packet)(self.ctx, packet) };
        if r < 0 {
            return Err(error_text(self.api, r));
        }
        self.receive(out)
    }

    /// Whether to skip decoding non-reference pictures from the next packet on (a picture
    /// nothing predicts from and that is never shown need not be decoded).
    pub(super) fn skip_nonref(&mut self, skip: bool) {
        if skip == self.skip_nonref {
            return;
        }
        let value = if skip {
            DISCARD_NONREF
        } else {
            DISCARD_DEFAULT
        };
        // SAFETY: `ctx` is an opened codec context; `skip_frame` is one of its options.
        let r = unsafe { (self.api.opt_set_int)(self.ctx, c"skip_frame".as_ptr(), value, 0) };
        // An option a version lacks only costs speed: the pictures are decoded after all.
        if r >= 0 {
            self.skip_nonref = skip;
        }
    }

    /// An integer option of the opened codec context (`field_order`, ...).
    pub(super) fn option_int(&self, name: &std::ffi::CStr) -> Option<i64> {
        let mut value = 0i64;
        // SAFETY: `ctx` is an opened codec context; the option is looked up by name.
        let r = unsafe { (self.api.opt_get_int)(self.ctx, name.as_ptr(), 0, &mut value) };
        (r >= 0).then_some(value)
    }

    /// The codec context's picture size (the `video_size` option).
    pub(super) fn video_size(&self) -> Option<(c_int, c_int)> {
        let (mut w, mut h) = (0, 0);
        // SAFETY: as in `option_int`.
        let r = unsafe {
            (self.api.opt_get_image_size)(self.ctx, c"video_size".as_ptr(), 0, &mut w, &mut h)
        };
        (r >= 0).then_some((w, h))
    }

    /// Signals the end of the stream and appends the pictures still held for reordering.
    pub fn finish(&mut self, out: &mut dyn FnMut(Picture)) -> Result<(), String> {
        if self.drained {
            return Ok(());
        }
        self.drained = true;
        // SAFETY: a null packet enters draining mode.
        let r = unsafe { (self.api.send_packet)(self.ctx, std::ptr::null()) };
        if r < 0 && r != AVERROR_EOF {
            return Err(error_text(self.api, r));
        }
        self.receive(out)
    }

    fn receive(&mut self, out: &mut dyn FnMut(Picture)) -> Result<(), String> {
        loop {
            // SAFETY: a fresh AVFrame, owned by `Picture` from here on (freed on every path).
            let pic = Picture {
                frame: unsafe { (self.api.frame_alloc)() },
                api: self.api,
            };
            if pic.frame.is_null() {
                return Err("av_frame_alloc failed".into());
            }
            // SAFETY: `ctx` is an opened decoder and `pic.frame` an empty frame.
            let r = unsafe { (self.api.receive_frame)(self.ctx, pic.frame) };
            if r == AVERROR_EAGAIN || r == AVERROR_EOF {
                return Ok(());
            }
            if r < 0 {
                return Err(error_text(self.api, r));
            }
            if !self.any_format && !pic.is_yuv420() {
                return Err(format!(
                    "decoded picture format {} is not 8-bit 4:2:0",
                    pic.format()
                ));
            }
            out(pic);
        }
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: both were allocated by libavcodec in `new` and are freed once (null is fine).
        unsafe {
            (self.api.packet_free)(&mut self.packet);
            (self.api.free_context)(&mut self.ctx);
        }
    }
}
