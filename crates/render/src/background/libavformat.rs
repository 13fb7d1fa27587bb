//! Footage of any codec and container the system's FFmpeg libraries read: libavformat
//! demuxes (MP4, MOV, Matroska, WebM), libavcodec decodes (HEVC, VP9, AV1, MPEG-4, 10-bit and
//! 4:2:2 H.264, ...) and libswscale turns pictures of any pixel format into 8-bit 4:2:0. All
//! three are loaded with `dlopen` at run time, as libavcodec is for H.264 ([`super::libav`]),
//! and only where the libraries of one FFmpeg release (4 to 7) are installed together.
//!
//! **Determinism.** A chunk must be a function of the file and the frame index alone, so the
//! picture shown at a time cannot depend on where decoding started. When the file is opened
//! every packet of the video stream is read once (not decoded) into a packet index: byte
//! position, size, timestamps, keyframe flag. [`super::VideoBackground`] then picks pictures
//! by presentation time from the index and restarts decoding at the last keyframe presented at
//! or before the picture wanted, exactly as for H.264 MP4s. [`Footage::restart`] finds that
//! keyframe again after a seek by its byte position, so the packets decoded are the same ones
//! whichever way the picture is reached, and leading pictures of an open GOP (which refer to
//! pictures before their keyframe) are never shown after a seek.
//!
//! **Structures.** Entry points are stable across FFmpeg 4 to 7; a few structure fields are
//! read directly. Their offsets were taken from each release's installed headers
//! (`offsetof`, Debian's libavformat-dev 4.3, 5.1 and 7.1, and FFmpeg 6.0's and 6.1's
//! `avformat.h`/`codec_par.h`) and are tabled per libavformat major in [`LAYOUTS`]; within a
//! major FFmpeg only appends fields. What is read is checked for sense (the stream's own index,
//! a video codec type, a positive size that agrees with the decoder's) so that a library laid
//! out otherwise fails with a reason instead of crashing.

use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_void};
use std::path::Path;
use std::sync::OnceLock;

use storyreel_mp4::demux::Sample;

use super::decoder::Picture;
use super::libav::{self, Api as CodecApi, Decoder};

type Ptr = *mut c_void;

/// Most video packets indexed (about 9 hours at 60 fps).
pub const MAX_PACKETS: usize = 2_000_000;

/// `AVERROR_EOF`: `FFERRTAG('E','O','F',' ')`.
const AVERROR_EOF: c_int = -0x2046_4F45;
/// `AVMEDIA_TYPE_VIDEO`.
const MEDIA_TYPE_VIDEO: c_int = 0;
/// `AV_NOPTS_VALUE`.
const NOPTS: i64 = i64::MIN;
/// `AVSEEK_FLAG_BACKWARD`.
const SEEK_BACKWARD: c_int = 1;
/// `AV_PKT_FLAG_KEY` and `AV_PKT_FLAG_DISCARD` (decoded for later pictures, never shown).
const PKT_FLAG_KEY: c_int = 1;
const PKT_FLAG_DISCARD: c_int = 4;
/// `AV_PKT_DATA_DISPLAYMATRIX` (the same value in every version).
const PKT_DATA_DISPLAYMATRIX: c_int = 5;
/// `AV_FIELD_TT` ... `AV_FIELD_BT`: interlaced field orders (0 unknown, 1 progressive).
const FIELD_INTERLACED: std::ops::RangeInclusive<i64> = 2..=5;
/// libswscale flags: bilinear chroma, bit-exact and accurately rounded (the same output on
/// every CPU, whatever SIMD it has).
const SWS_FLAGS: c_int = 2 | 0x40000 | 0x80000;

// `AVPacket` fields (the same offsets in libavcodec 58 to 61).
const PACKET_PTS: usize = 8;
const PACKET_DTS: usize = 16;
const PACKET_SIZE: usize = 32;
const PACKET_STREAM_INDEX: usize = 36;
const PACKET_FLAGS: usize = 40;
const PACKET_DURATION: usize = 64;
const PACKET_POS: usize = 72;
// `AVFormatContext` fields (the same in libavformat 58 to 61).
const FORMAT_NB_STREAMS: usize = 44;
const FORMAT_STREAMS: usize = 48;
// `AVCodecParameters` leading fields (the same in libavcodec 58 to 61).
const PAR_CODEC_TYPE: usize = 0;
// `AVPacketSideData` (libavcodec 59 and later: `size` is a `size_t`).
const SIDE_DATA_DATA: usize = 0;
const SIDE_DATA_SIZE: usize = 8;

/// Offsets that differ between FFmpeg releases, by libavformat major (libavcodec has the same
/// major in each release).
#[derive(Debug)]
struct Layout {
    major: c_uint,
    /// `AVStream.index`, `.codecpar`, `.time_base`.
    stream_index: usize,
    stream_codecpar: usize,
    stream_time_base: usize,
    /// `AVCodecParameters.width`, `.height`, `.field_order`.
    par_width: usize,
    par_height: usize,
    par_field_order: usize,
    /// `AVCodecParameters.coded_side_data` and `.nb_coded_side_data`, where stream side data
    /// (the display matrix) lives from FFmpeg 7 on; before, `av_stream_get_side_data`.
    par_coded_side_data: Option<(usize, usize)>,
}

/// FFmpeg 4.x, 5.x, 6.x and 7.x.
const LAYOUTS: [Layout; 4] = [
    Layout {
        major: 58,
        stream_index: 0,
        stream_codecpar: 208,
        stream_time_base: 24,
        par_width: 56,
        par_height: 60,
        par_field_order: 72,
        par_coded_side_data: None,
    },
    Layout {
        major: 59,
        stream_index: 0,
        stream_codecpar: 208,
        stream_time_base: 16,
        par_width: 56,
        par_height: 60,
        par_field_order: 72,
        par_coded_side_data: None,
    },
    Layout {
        major: 60,
        stream_index: 8,
        stream_codecpar: 16,
        stream_time_base: 32,
        par_width: 56,
        par_height: 60,
        par_field_order: 72,
        par_coded_side_data: None,
    },
    Layout {
        major: 61,
        stream_index: 8,
        stream_codecpar: 16,
        stream_time_base: 32,
        par_width: 72,
        par_height: 76,
        par_field_order: 96,
        par_coded_side_data: Some((32, 40)),
    },
];

/// libavformat's and libswscale's entry points, resolved once, with libavcodec's.
struct FormatApi {
    open_input: unsafe extern "C" fn(*mut Ptr, *const c_char, *const c_void, *mut Ptr) -> c_int,
    find_stream_info: unsafe extern "C" fn(Ptr, *mut Ptr) -> c_int,
    find_best_stream:
        unsafe extern "C" fn(Ptr, c_int, c_int, c_int, *mut *const c_void, c_int) -> c_int,
    read_frame: unsafe extern "C" fn(Ptr, Ptr) -> c_int,
    seek_frame: unsafe extern "C" fn(Ptr, c_int, i64, c_int) -> c_int,
    close_input: unsafe extern "C" fn(*mut Ptr),
    find_input_format: unsafe extern "C" fn(*const c_char) -> *const c_void,
    /// `av_stream_get_side_data` (FFmpeg 4 to 7; its size argument is an `int *` in 4).
    stream_side_data: Option<unsafe extern "C" fn(*const c_void, c_int, *mut c_void) -> *const u8>,
    sws_get_context: unsafe extern "C" fn(
        c_int,
        c_int,
        c_int,
        c_int,
        c_int,
        c_int,
        c_int,
        Ptr,
        Ptr,
        *const f64,
    ) -> Ptr,
    sws_scale: unsafe extern "C" fn(
        Ptr,
        *const *const u8,
        *const c_int,
        c_int,
        c_int,
        *const *mut u8,
        *const c_int,
    ) -> c_int,
    sws_free: unsafe extern "C" fn(Ptr),
    layout: &'static Layout,
    codec: &'static CodecApi,
    /// The libraries loaded, for reports: `libavformat.so.59 + libswscale.so.6`.
    name: String,
    _format: libloading::Library,
    _swscale: libloading::Library,
}

static API: OnceLock<Result<FormatApi, String>> = OnceLock::new();

fn api() -> Result<&'static FormatApi, String> {
    // libavcodec first: it carries the `STORYREEL_FFMPEG` switch and the version checks.
    let codec = libav::api()?;
    API.get_or_init(|| load(codec))
        .as_ref()
        .map_err(Clone::clone)
}

/// The loaded libavformat and libswscale, or why they cannot be used (turned off, not
/// installed, not the release libavcodec belongs to).
pub fn available() -> Result<&'static str, String> {
    api().map(|a| a.name.as_str())
}

fn load(codec: &'static CodecApi) -> Result<FormatApi, String> {
    let major = codec.avcodec_major;
    let layout = LAYOUTS
        .iter()
        .find(|l| l.major == major)
        .ok_or_else(|| format!("libavcodec {major} is not a supported version (58 to 61)"))?;
    let format_name = format!("libavformat.so.{major}");
    // libswscale 5 to 8 came with libavcodec 58 to 61.
    let swscale_major = major - 53;
    let swscale_name = format!("libswscale.so.{swscale_major}");
    // SAFETY: loading the libraries runs only their ELF initialisers (static tables).
    let format = unsafe { libloading::Library::new(&format_name) }
        .map_err(|e| format!("{format_name} (FFmpeg's libavformat) is not installed: {e}"))?;
    let swscale = unsafe { libloading::Library::new(&swscale_name) }
        .map_err(|e| format!("{swscale_name} (FFmpeg's libswscale) is not installed: {e}"))?;
    let sym = |e: libloading::Error| e.to_string();
    // SAFETY: each symbol is declared with the signature FFmpeg's headers give it.
    unsafe {
        let avformat_version: unsafe extern "C" fn() -> c_uint =
            *format.get(b"avformat_version\0").map_err(sym)?;
        let swscale_version: unsafe extern "C" fn() -> c_uint =
            *swscale.get(b"swscale_version\0").map_err(sym)?;
        let (fm, sm) = (avformat_version() >> 16, swscale_version() >> 16);
        if fm != major || sm != swscale_major {
            return Err(format!(
                "libavformat {fm} and libswscale {sm} do not belong with libavcodec {major} \
                 (expected {major} and {swscale_major})"
            ));
        }
        Ok(FormatApi {
            open_input: *format.get(b"avformat_open_input\0").map_err(sym)?,
            find_stream_info: *format.get(b"avformat_find_stream_info\0").map_err(sym)?,
            find_best_stream: *format.get(b"av_find_best_stream\0").map_err(sym)?,
            read_frame: *format.get(b"av_read_frame\0").map_err(sym)?,
            seek_frame: *format.get(b"av_seek_frame\0").map_err(sym)?,
            close_input: *format.get(b"avformat_close_input\0").map_err(sym)?,
            find_input_format: *format.get(b"av_find_input_format\0").map_err(sym)?,
            stream_side_data: format.get(b"av_stream_get_side_data\0").ok().map(|f| *f),
            sws_get_context: *swscale.get(b"sws_getContext\0").map_err(sym)?,
            sws_scale: *swscale.get(b"sws_scale\0").map_err(sym)?,
            sws_free: *swscale.get(b"sws_freeContext\0").map_err(sym)?,
            layout,
            codec,
            name: format!("{format_name} + {swscale_name}"),
            _format: format,
            _swscale: swscale,
        })
    }
}

/// Reads a field of type `T` at `offset` bytes into the structure at `base`.
///
/// # Safety
/// `base` must point to a live structure with a `T` at `offset`.
unsafe fn field<T: Copy>(base: *const c_void, offset: usize) -> T {
    // SAFETY: the caller's contract; FFmpeg's structures are naturally aligned.
    unsafe { base.cast::<u8>().add(offset).cast::<T>().read() }
}

/// The container libavformat is told to read (no probing: storyreel's own readers have
/// already recognised the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// MP4 or MOV (`mov` demuxer).
    Mp4,
    /// Matroska or WebM (`matroska` demuxer).
    Matroska,
}

/// An 8-bit 4:2:0 picture converted from another pixel format, at the decoded size.
#[derive(Default)]
pub struct Converted {
    pub width: usize,
    pub height: usize,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
}

impl Converted {
    /// The planes and their strides.
    pub fn planes(&self) -> ([&[u8]; 3], [usize; 3]) {
        let cw = self.width.div_ceil(2);
        ([&self.y, &self.u, &self.v], [self.width, cw, cw])
    }
}

/// What [`Footage::open`] found: the packet index and what the stream is.
pub struct Opened {
    pub footage: Footage,
    /// Every packet of the video stream in decode order, timestamps in `timescale` ticks
    /// with the first picture shown at 0; `offset` is the byte position.
    pub samples: Vec<Sample>,
    /// Packets to decode but never show (`AV_PKT_FLAG_DISCARD`, e.g. cut by an edit list).
    pub hidden: Vec<bool>,
    pub timescale: u32,
    /// From the first picture to the end of the last.
    pub duration: i64,
    /// Half a tick of the container's own time base, in `timescale` ticks: containers such as
    /// Matroska round timestamps to it (a 30 fps picture at 66.67 ms is stored as 67 ms), so a
    /// picture counts as presented that much before its rounded time.
    pub tolerance: i64,
    /// Decoded size (before rotation).
    pub width: u32,
    pub height: u32,
    /// Clockwise degrees from the stream's display matrix, if it has one.
    pub rotation: Option<u16>,
    /// libavcodec's name of the codec (`hevc`, `vp9`, `av1`, `mpeg4`, `h264`, ...).
    pub codec: String,
}

/// An opened file: the demuxer, the video stream, and a decoder started at a keyframe.
pub struct Footage {
    fmt: Ptr,
    api: &'static FormatApi,
    stream: c_int,
    /// The stream's `const AVCodec *` decoder and its `AVCodecParameters *`.
    codec: *const c_void,
    codecpar: *const c_void,
    packet: Ptr,
    /// `packet` holds a read packet not fed yet: the keyframe a restart found.
    held: bool,
    decoder: Option<Decoder>,
    /// The sample the next packet read for the stream is, once known.
    next: Option<usize>,
    /// Stream timestamps to ticks: `(ts - origin) * mul`.
    origin: i64,
    mul: i64,
    /// Samples sorted by byte position, to recognise a packet after a seek.
    by_pos: Vec<(u64, u32)>,
    /// The scaler context for pictures that are not 8-bit 4:2:0, and what it converts.
    sws: Option<(Ptr, (c_int, c_int, c_int))>,
}

// SAFETY: the format and codec contexts are used by one thread at a time (`&mut self`), which
// FFmpeg allows; nothing here is shared.
unsafe impl Send for Footage {}

/// A packet that could not be fed: the demuxer failed (or gave another packet than indexed),
/// or the decoder refused it.
#[derive(Debug)]
pub enum FeedError {
    Demux(String),
    Decode(String),
}

/// One packet as the index scan read it.
struct Raw {
    pts: i64,
    dts: i64,
    duration: i64,
    pos: i64,
    size: c_int,
    flags: c_int,
}

impl Footage {
    /// Opens `path` as `container`, finds the video stream and its decoder, refuses interlaced
    /// video, and indexes every packet of the stream.
    pub fn open(path: &Path, container: Container) -> Result<Opened, String> {
        let api = api()?;
        let codec = api.codec;
        let mut footage = Footage {
            fmt: std::ptr::null_mut(),
            api,
            stream: -1,
            codec: std::ptr::null(),
            codecpar: std::ptr::null(),
            // SAFETY: a fresh packet, freed in Drop.
            packet: unsafe { (codec.packet_alloc)() },
            held: false,
            decoder: None,
            next: None,
            origin: 0,
            mul: 1,
            by_pos: Vec::new(),
            sws: None,
        };
        if footage.packet.is_null() {
            return Err("av_packet_alloc failed".into());
        }
        footage.open_input(path, container)?;
        let stream = footage.find_stream()?;
        let layout = api.layout;

        // A decoder now: it must open, and its view of the stream checks the layout read.
        let probe = Decoder::for_stream(footage.codec, footage.codecpar)?;
        let (pw, ph): (c_int, c_int) = unsafe {
            // SAFETY: codecpar is the stream's live AVCodecParameters (checked in find_stream).
            (
                field(footage.codecpar, layout.par_width),
                field(footage.codecpar, layout.par_height),
            )
        };
        if let Some((w, h)) = probe.video_size()
            && (w, h) != (pw, ph)
        {
            return Err(layout_error(
                layout,
                format!("the stream says {pw}x{ph}, its decoder {w}x{h}"),
            ));
        }
        if pw <= 0 || ph <= 0 {
            return Err(format!("the video stream has no picture size ({pw}x{ph})"));
        }
        let codec_name = codec_name(codec, footage.codecpar);
        let field_order = probe.option_int(c"field_order").unwrap_or_else(|| {
            // SAFETY: as above.
            i64::from(unsafe { field::<c_int>(footage.codecpar, layout.par_field_order) })
        });
        if FIELD_INTERLACED.contains(&field_order) {
            return Err(format!(
                "interlaced {codec_name} is not supported (expected progressive; field order {field_order})"
            ));
        }
        let rotation = footage.display_rotation(stream);

        // SAFETY: the stream is live; time_base is two ints.
        let (num, den): (c_int, c_int) = unsafe {
            (
                field(stream, layout.stream_time_base),
                field(stream, layout.stream_time_base + 4),
            )
        };
        if num <= 0 || den <= 0 {
            return Err(layout_error(
                layout,
                format!("the stream's time base is {num}/{den}"),
            ));
        }
        let raws = footage.scan()?;
        let index = Index::build(&raws, i64::from(num), i64::from(den))?;
        footage.origin = index.origin;
        footage.mul = index.mul;
        footage.by_pos = index
            .samples
            .iter()
            .enumerate()
            .map(|(i, s)| (s.offset, i as u32))
            .collect();
        footage.by_pos.sort_unstable();
        Ok(Opened {
            footage,
            samples: index.samples,
            hidden: index.hidden,
            timescale: index.timescale,
            duration: index.duration,
            tolerance: index.mul / 2,
            width: pw as u32,
            height: ph as u32,
            rotation,
            codec: codec_name,
        })
    }

    fn open_input(&mut self, path: &Path, container: Container) -> Result<(), String> {
        let api = self.api;
        // `file:` keeps a name with a colon from being taken for another protocol, and the
        // whitelist keeps a demuxer from opening anything but local files.
        let mut url = b"file:".to_vec();
        url.extend_from_slice(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()));
        let url = CString::new(url).map_err(|_| "the path contains a NUL byte".to_string())?;
        let demuxer = match container {
            Container::Mp4 => c"mov",
            Container::Matroska => c"matroska",
        };
        // SAFETY: documented calls; the dictionary is freed on every path and fmt by Drop.
        unsafe {
            let format = (api.find_input_format)(demuxer.as_ptr());
            if format.is_null() {
                return Err(format!(
                    "this libavformat has no {} demuxer",
                    demuxer.to_string_lossy()
                ));
            }
            let mut options: Ptr = std::ptr::null_mut();
            (api.codec.dict_set)(
                &mut options,
                c"protocol_whitelist".as_ptr(),
                c"file".as_ptr(),
                0,
            );
            let r = (api.open_input)(&mut self.fmt, url.as_ptr(), format, &mut options);
            (api.codec.dict_free)(&mut options);
            if r < 0 {
                self.fmt = std::ptr::null_mut();
                return Err(format!(
                    "libavformat cannot open it: {}",
                    libav::error_text(api.codec, r)
                ));
            }
            let r = (api.find_stream_info)(self.fmt, std::ptr::null_mut());
            if r < 0 {
                return Err(format!(
                    "libavformat cannot read its streams: {}",
                    libav::error_text(api.codec, r)
                ));
            }
        }
        Ok(())
    }

    /// Picks the video stream and its decoder; returns the `AVStream *`.
    fn find_stream(&mut self) -> Result<*const c_void, String> {
        let api = self.api;
        let layout = api.layout;
        let mut decoder: *const c_void = std::ptr::null();
        // SAFETY: fmt is an opened input; the reads below are the fields tabled for this
        // version, each checked for sense before the next is trusted.
        unsafe {
            let index = (api.find_best_stream)(self.fmt, MEDIA_TYPE_VIDEO, -1, -1, &mut decoder, 0);
            if index < 0 {
                return Err(format!(
                    "no video stream it can decode: {}",
                    libav::error_text(api.codec, index)
                ));
            }
            if decoder.is_null() {
                return Err("libavcodec has no decoder for its video".into());
            }
            let nb: c_uint = field(self.fmt, FORMAT_NB_STREAMS);
            let streams: *const *const c_void = field(self.fmt, FORMAT_STREAMS);
            if streams.is_null() || index as c_uint >= nb {
                return Err(layout_error(
                    layout,
                    format!("stream {index} of {nb} streams"),
                ));
            }
            let stream = *streams.add(index as usize);
            if stream.is_null() {
                return Err(layout_error(layout, format!("stream {index} is null")));
            }
            let own: c_int = field(stream, layout.stream_index);
            let par: *const c_void = field(stream, layout.stream_codecpar);
            if own != index || par.is_null() {
                return Err(layout_error(
                    layout,
                    format!("stream {index} says it is stream {own}"),
                ));
            }
            let kind: c_int = field(par, PAR_CODEC_TYPE);
            if kind != MEDIA_TYPE_VIDEO {
                return Err(layout_error(
                    layout,
                    format!("video stream {index} has codec type {kind}"),
                ));
            }
            self.stream = index;
            self.codec = decoder;
            self.codecpar = par;
            Ok(stream)
        }
    }

    /// Clockwise rotation from the stream's display matrix, when it is a pure rotation.
    fn display_rotation(&self, stream: *const c_void) -> Option<u16> {
        let api = self.api;
        let (data, size) = unsafe {
            // SAFETY: FFmpeg 7 keeps stream side data in codecpar (offsets tabled), earlier
            // versions hand it out through av_stream_get_side_data; both give data + size.
            match (
                api.layout.par_coded_side_data,
                api.codec.packet_side_data_get,
            ) {
                (Some((sd, nb)), Some(get)) => {
                    let list: *const c_void = field(self.codecpar, sd);
                    let count: c_int = field(self.codecpar, nb);
                    if list.is_null() || count <= 0 {
                        return None;
                    }
                    let entry = get(list, count, PKT_DATA_DISPLAYMATRIX);
                    if entry.is_null() {
                        return None;
                    }
                    (
                        field::<*const u8>(entry, SIDE_DATA_DATA),
                        field::<usize>(entry, SIDE_DATA_SIZE),
                    )
                }
                _ => {
                    let get = api.stream_side_data?;
                    let mut size = 0u64;
                    let data = get(
                        stream,
                        PKT_DATA_DISPLAYMATRIX,
                        (&mut size as *mut u64).cast(),
                    );
                    // FFmpeg 4 writes an int, later versions a size_t.
                    let size = if api.layout.major == 58 {
                        size as u32 as usize
                    } else {
                        size as usize
                    };
                    (data, size)
                }
            }
        };
        if data.is_null() || size < 36 {
            return None;
        }
        // SAFETY: a display matrix is nine int32 (checked: at least 36 bytes).
        let m: [i32; 9] = unsafe { data.cast::<[i32; 9]>().read_unaligned() };
        Some(rotation_of_matrix(&m))
    }

    /// Reads every packet once, keeping those of the video stream. A demuxer that logs an
    /// error while doing so has met damage it stepped over (Matroska's resyncs past garbage):
    /// that is corruption too, not a shorter clip.
    fn scan(&mut self) -> Result<Vec<Raw>, String> {
        let (raws, logged) = libav::capture_errors(|| self.read_all());
        let raws = raws?;
        match logged {
            Some(line) => Err(format!(
                "corrupt data after {} video frames: libavformat: {line}",
                raws.len()
            )),
            None => Ok(raws),
        }
    }

    fn read_all(&mut self) -> Result<Vec<Raw>, String> {
        let (api, codec) = (self.api, self.api.codec);
        let mut raws = Vec::new();
        loop {
            // SAFETY: fmt is open and packet allocated; every packet read is unreferenced.
            let r = unsafe { (api.read_frame)(self.fmt, self.packet) };
            if r == AVERROR_EOF {
                break;
            }
            if r < 0 {
                return Err(format!(
                    "corrupt data after {} video frames: {}",
                    raws.len(),
                    libav::error_text(codec, r)
                ));
            }
            // SAFETY: a packet av_read_frame filled.
            unsafe {
                let p = self.packet.cast_const();
                if field::<c_int>(p, PACKET_STREAM_INDEX) == self.stream {
                    raws.push(Raw {
                        pts: field(p, PACKET_PTS),
                        dts: field(p, PACKET_DTS),
                        duration: field(p, PACKET_DURATION),
                        pos: field(p, PACKET_POS),
                        size: field(p, PACKET_SIZE),
                        flags: field(p, PACKET_FLAGS),
                    });
                }
                (codec.packet_unref)(self.packet);
            }
            if raws.len() > MAX_PACKETS {
                return Err(format!(
                    "more than {MAX_PACKETS} video frames (at most {MAX_PACKETS})"
                ));
            }
        }
        Ok(raws)
    }

    /// Positions the demuxer so that the next packet fed is sample `k` (a keyframe), with a new
    /// decoder. Seeks to `k`'s timestamp, else to earlier keyframes', else to the start, and
    /// reads forward to `k`, recognising packets by byte position.
    pub fn restart(&mut self, k: usize, samples: &[Sample], syncs: &[u32]) -> Result<(), String> {
        self.decoder = Some(Decoder::for_stream(self.codec, self.codecpar)?);
        self.release_held();
        self.next = None;
        let target = samples.get(k).ok_or("no such frame")?;
        let before = syncs.partition_point(|&s| (s as usize) < k);
        let mut stamps: Vec<(i64, c_int)> = vec![(self.raw(target.dts), SEEK_BACKWARD)];
        for &s in syncs[..before].iter().rev().take(3) {
            stamps.push((self.raw(samples[s as usize].dts), SEEK_BACKWARD));
        }
        let first = samples.iter().map(|s| s.dts).min().unwrap_or(0);
        stamps.push((self.raw(first), 0));
        for (ts, flags) in stamps {
            // SAFETY: fmt is open; a failed seek leaves it usable.
            if unsafe { (self.api.seek_frame)(self.fmt, self.stream, ts, flags) } < 0 {
                continue;
            }
            match self.read_to(k, samples)? {
                true => return Ok(()),
                false => continue,
            }
        }
        Err(format!(
            "cannot seek back to frame {k} (at {} s)",
            target.pts as f64 / self.mul as f64
        ))
    }

    /// Reads packets until sample `k`, which is then held; false when a later packet (or the
    /// end) comes first.
    fn read_to(&mut self, k: usize, samples: &[Sample]) -> Result<bool, String> {
        let codec = self.api.codec;
        for _ in 0..=samples.len() {
            // SAFETY: as in `scan`.
            let r = unsafe { (self.api.read_frame)(self.fmt, self.packet) };
            if r == AVERROR_EOF {
                return Ok(false);
            }
            if r < 0 {
                return Err(format!(
                    "corrupt data while seeking to frame {k}: {}",
                    libav::error_text(codec, r)
                ));
            }
            // SAFETY: a packet av_read_frame filled.
            let mine = unsafe { field::<c_int>(self.packet, PACKET_STREAM_INDEX) } == self.stream;
            let at = if mine { self.locate(samples) } else { None };
            match at {
                Some(j) if j == k => {
                    self.held = true;
                    self.next = Some(k);
                    return Ok(true);
                }
                Some(j) if j > k => {
                    unsafe { (codec.packet_unref)(self.packet) };
                    return Ok(false);
                }
                None if mine => {
                    unsafe { (codec.packet_unref)(self.packet) };
                    return Err(format!(
                        "while seeking to frame {k} the demuxer gave a packet the index never saw"
                    ));
                }
                _ => unsafe { (codec.packet_unref)(self.packet) },
            }
        }
        Ok(false)
    }

    /// The sample the packet just read is: same byte position, size and timestamp.
    fn locate(&self, samples: &[Sample]) -> Option<usize> {
        // SAFETY: a packet av_read_frame filled.
        let (pos, size, pts, dts): (i64, c_int, i64, i64) = unsafe {
            let p = self.packet.cast_const();
            (
                field(p, PACKET_POS),
                field(p, PACKET_SIZE),
                field(p, PACKET_PTS),
                field(p, PACKET_DTS),
            )
        };
        let pos = u64::try_from(pos).ok()?;
        let ts = if pts != NOPTS { pts } else { dts };
        let from = self.by_pos.partition_point(|&(p, _)| p < pos);
        self.by_pos[from..]
            .iter()
            .take_while(|&&(p, _)| p == pos)
            .map(|&(_, i)| i as usize)
            .find(|&i| {
                let s = &samples[i];
                i64::from(s.size) == i64::from(size) && self.raw(s.pts) == ts
            })
    }

    /// A tick count back in the stream's time base.
    fn raw(&self, ticks: i64) -> i64 {
        ticks / self.mul + self.origin
    }

    fn release_held(&mut self) {
        if self.held {
            // SAFETY: the held packet is ours to drop.
            unsafe { (self.api.codec.packet_unref)(self.packet) };
            self.held = false;
        }
    }

    /// Feeds sample `i` (the next one after the last fed or the restart) to the decoder,
    /// presented at `samples[i].pts`, and appends the pictures it gives out. `skip_nonref`:
    /// the picture is never shown, so it need not be decoded unless others refer to it.
    pub fn feed(
        &mut self,
        i: usize,
        samples: &[Sample],
        skip_nonref: bool,
        out: &mut Vec<Picture>,
    ) -> Result<(), FeedError> {
        let codec = self.api.codec;
        if self.next != Some(i) || self.decoder.is_none() {
            return Err(FeedError::Demux(format!(
                "frame {i} is not the next one read"
            )));
        }
        if !self.held {
            loop {
                // SAFETY: as in `scan`.
                let r = unsafe { (self.api.read_frame)(self.fmt, self.packet) };
                if r == AVERROR_EOF {
                    return Err(FeedError::Demux(format!(
                        "the file ended before frame {i} of {}",
                        samples.len()
                    )));
                }
                if r < 0 {
                    return Err(FeedError::Demux(format!(
                        "cannot read frame {i}: {}",
                        libav::error_text(codec, r)
                    )));
                }
                // SAFETY: a packet av_read_frame filled.
                if unsafe { field::<c_int>(self.packet, PACKET_STREAM_INDEX) } == self.stream {
                    break;
                }
                unsafe { (codec.packet_unref)(self.packet) };
            }
        }
        self.held = false;
        let s = &samples[i];
        // SAFETY: a packet av_read_frame filled; pts is an int64 we may set (the decoder
        // hands it back on the picture), and the packet is unreferenced after sending.
        let sent = unsafe {
            let p = self.packet;
            let (pos, size): (i64, c_int) = (field(p, PACKET_POS), field(p, PACKET_SIZE));
            if u64::try_from(pos).ok() != Some(s.offset) || i64::from(size) != i64::from(s.size) {
                (codec.packet_unref)(p);
                return Err(FeedError::Demux(format!(
                    "frame {i} was read at byte {pos} ({size} bytes), indexed at byte {} ({} bytes)",
                    s.offset, s.size
                )));
            }
            p.cast::<u8>().add(PACKET_PTS).cast::<i64>().write(s.pts);
            let decoder = self
                .decoder
                .as_mut()
                .ok_or(FeedError::Demux(String::new()))?;
            decoder.skip_nonref(skip_nonref);
            // Decoders that conceal damage still log it: a logged error fails the packet.
            let (sent, logged) =
                libav::capture_errors(|| decoder.send(p, &mut |pic| out.push(Picture::Libav(pic))));
            (codec.packet_unref)(p);
            match (sent, logged) {
                (Ok(()), Some(line)) => Err(line),
                (sent, _) => sent,
            }
        };
        self.next = Some(i + 1);
        sent.map_err(FeedError::Decode)
    }

    /// Ends the stream: appends the pictures the decoder still holds.
    pub fn finish(&mut self, out: &mut Vec<Picture>) -> Result<(), String> {
        match self.decoder.as_mut() {
            Some(d) => d.finish(&mut |pic| out.push(Picture::Libav(pic))),
            None => Ok(()),
        }
    }

    /// Converts a picture that is not 8-bit 4:2:0 (10-bit, 4:2:2, 4:4:4, RGB...) into `out`.
    pub fn convert(&mut self, pic: &libav::Picture, out: &mut Converted) -> Result<(), String> {
        let api = self.api;
        let (w, h) = pic.size();
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let key = (w as c_int, h as c_int, pic.format());
        if self.sws.as_ref().map(|s| s.1) != Some(key) {
            self.free_sws();
            // SAFETY: a plain constructor; null means the conversion is not supported.
            let ctx = unsafe {
                (api.sws_get_context)(
                    key.0,
                    key.1,
                    key.2,
                    key.0,
                    key.1,
                    libav::PIX_FMT_YUV420P,
                    SWS_FLAGS,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    std::ptr::null(),
                )
            };
            if ctx.is_null() {
                return Err(format!(
                    "libswscale cannot convert {w}x{h} {} pictures to yuv420p",
                    pix_fmt_name(api.codec, key.2)
                ));
            }
            self.sws = Some((ctx, key));
        }
        let Some((ctx, _)) = self.sws else {
            return Err("no scaler".into());
        };
        out.width = w;
        out.height = h;
        out.y.resize(w * h, 0);
        out.u.resize(cw * ch, 0);
        out.v.resize(cw * ch, 0);
        let dst = [
            out.y.as_mut_ptr(),
            out.u.as_mut_ptr(),
            out.v.as_mut_ptr(),
            std::ptr::null_mut(),
        ];
        let dst_stride = [w as c_int, cw as c_int, cw as c_int, 0];
        let (src, src_stride) = pic.raw_planes();
        // SAFETY: the destination planes hold w x h and cw x ch bytes at the strides given;
        // the source is a decoded frame of the size and format the context was made for.
        let rows = unsafe {
            (api.sws_scale)(
                ctx,
                src.as_ptr(),
                src_stride.as_ptr(),
                0,
                key.1,
                dst.as_ptr(),
                dst_stride.as_ptr(),
            )
        };
        if rows != key.1 {
            return Err(format!(
                "libswscale converted {rows} of {h} rows of a {} picture",
                pix_fmt_name(api.codec, key.2)
            ));
        }
        Ok(())
    }

    fn free_sws(&mut self) {
        if let Some((ctx, _)) = self.sws.take() {
            // SAFETY: made by sws_getContext, freed once.
            unsafe { (self.api.sws_free)(ctx) };
        }
    }
}

impl Drop for Footage {
    fn drop(&mut self) {
        self.decoder = None;
        self.release_held();
        self.free_sws();
        // SAFETY: each was allocated by FFmpeg and is freed once (null is fine).
        unsafe {
            (self.api.codec.packet_free)(&mut self.packet);
            if !self.fmt.is_null() {
                (self.api.close_input)(&mut self.fmt);
            }
        }
    }
}

fn layout_error(layout: &Layout, what: String) -> String {
    format!(
        "libavformat {} is not laid out as storyreel expects ({what}); please report this version",
        layout.major
    )
}

fn codec_name(api: &CodecApi, codecpar: *const c_void) -> String {
    // SAFETY: codec_id is the second int of AVCodecParameters in every version; the name is
    // a static string (or null).
    unsafe {
        let id: c_int = field(codecpar, 4);
        let name = (api.get_name)(id);
        if name.is_null() {
            return format!("codec {id}");
        }
        CStr::from_ptr(name).to_string_lossy().into_owned()
    }
}

fn pix_fmt_name(api: &CodecApi, format: c_int) -> String {
    // SAFETY: a static string or null.
    unsafe {
        let name = (api.pix_fmt_name)(format);
        if name.is_null() {
            return format!("pixel format {format}");
        }
        CStr::from_ptr(name).to_string_lossy().into_owned()
    }
}

/// The clockwise rotation a display matrix (as in ISO BMFF's `tkhd`: `a b u / c d v / x y w`,
/// 16.16 fixed point) applies, when it is a pure rotation by a multiple of 90 degrees; 0 for
/// anything else (flips, scaling, odd angles).
fn rotation_of_matrix(m: &[i32; 9]) -> u16 {
    let (a, b, c, d) = (m[0], m[1], m[3], m[4]);
    match (a.signum(), b.signum(), c.signum(), d.signum()) {
        (0, 1, -1, 0) if b == -c => 90,
        (-1, 0, 0, -1) if a == d => 180,
        (0, -1, 1, 0) if c == -b => 270,
        _ => 0,
    }
}

/// The packet index in ticks.
struct Index {
    samples: Vec<Sample>,
    hidden: Vec<bool>,
    timescale: u32,
    duration: i64,
    origin: i64,
    mul: i64,
}

impl Index {
    /// Turns raw packets (timestamps in `num/den` s) into samples in ticks of a timescale
    /// `den * F` (F = 90 when it fits, so that half a container tick is a whole number of
    /// ticks), the first shown picture at 0.
    fn build(raws: &[Raw], num: i64, den: i64) -> Result<Index, String> {
        if raws.is_empty() {
            return Err("the video stream has no frames".into());
        }
        let factor = if den * 90 <= i64::from(u32::MAX) {
            90
        } else {
            1
        };
        let timescale = u32::try_from(den * factor)
            .map_err(|_| format!("time base {num}/{den} is too fine (at most 1/{})", u32::MAX))?;
        let mul = num * factor;
        let ts = |r: &Raw, i: usize| -> Result<i64, String> {
            match (r.pts, r.dts) {
                (NOPTS, NOPTS) => Err(format!("frame {i} has no timestamp")),
                (NOPTS, dts) => Ok(dts),
                (pts, _) => Ok(pts),
            }
        };
        let hidden: Vec<bool> = raws
            .iter()
            .map(|r| r.flags & PKT_FLAG_DISCARD != 0)
            .collect();
        let mut origin = i64::MAX;
        for (i, r) in raws.iter().enumerate() {
            let t = ts(r, i)?;
            if !hidden[i] {
                origin = origin.min(t);
            }
        }
        if origin == i64::MAX {
            return Err("every frame of the video stream is marked to be discarded".into());
        }
        let ticks = |t: i64| -> Result<i64, String> {
            t.checked_sub(origin)
                .and_then(|d| d.checked_mul(mul))
                .filter(|v| v.checked_abs().is_some_and(|a| a < i64::MAX / 4))
                .ok_or_else(|| format!("timestamp {t} is out of range"))
        };
        let mut samples = Vec::with_capacity(raws.len());
        for (i, r) in raws.iter().enumerate() {
            let pts = ticks(ts(r, i)?)?;
            let dts = if r.dts == NOPTS { pts } else { ticks(r.dts)? };
            let offset = u64::try_from(r.pos)
                .map_err(|_| format!("frame {i} has no byte position in the file"))?;
            let size =
                u32::try_from(r.size).map_err(|_| format!("frame {i} has size {}", r.size))?;
            let duration = u32::try_from(r.duration.max(0).saturating_mul(mul)).unwrap_or(0);
            samples.push(Sample {
                offset,
                size,
                dts,
                pts,
                duration,
                sync: r.flags & PKT_FLAG_KEY != 0,
            });
        }
        if !samples.iter().any(|s| s.sync) {
            return Err("no keyframe in the video stream".into());
        }
        // Frames without a duration last until the next picture; the last one as long as the
        // typical gap between pictures.
        let mut shown: Vec<i64> = samples
            .iter()
            .zip(&hidden)
            .filter(|(_, h)| !**h)
            .map(|(s, _)| s.pts)
            .collect();
        shown.sort_unstable();
        let mut gaps: Vec<i64> = shown
            .windows(2)
            .map(|w| w[1] - w[0])
            .filter(|&g| g > 0)
            .collect();
        gaps.sort_unstable();
        let typical = gaps.get(gaps.len() / 2).copied().unwrap_or(mul.max(1));
        let typical32 = u32::try_from(typical).unwrap_or(u32::MAX);
        let mut end = 0i64;
        for (s, h) in samples.iter_mut().zip(&hidden) {
            if s.duration == 0 {
                s.duration = typical32;
            }
            if !h {
                end = end.max(s.pts.saturating_add(i64::from(s.duration)));
            }
        }
        Ok(Index {
            samples,
            hidden,
            timescale,
            duration: end,
            origin,
            mul,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_are_tabled_for_every_supported_release() {
        let majors: Vec<c_uint> = LAYOUTS.iter().map(|l| l.major).collect();
        assert_eq!(majors, [58, 59, 60, 61]);
    }

    #[test]
    fn display_matrix_rotations() {
        let one = 1 << 16;
        let m = |a: i32, b: i32, c: i32, d: i32| [a, b, 0, c, d, 0, 0, 0, 1 << 30];
        assert_eq!(rotation_of_matrix(&m(one, 0, 0, one)), 0);
        assert_eq!(rotation_of_matrix(&m(0, one, -one, 0)), 90);
        assert_eq!(rotation_of_matrix(&m(-one, 0, 0, -one)), 180);
        assert_eq!(rotation_of_matrix(&m(0, -one, one, 0)), 270);
        // A flip is not a rotation.
        assert_eq!(rotation_of_matrix(&m(-one, 0, 0, one)), 0);
        assert_eq!(rotation_of_matrix(&m(0, one, one, 0)), 0);
    }

    fn raw(pts: i64, key: bool) -> Raw {
        Raw {
            pts,
            dts: NOPTS,
            duration: 0,
            pos: pts.saturating_mul(100),
            size: 10,
            flags: if key { PKT_FLAG_KEY } else { 0 },
        }
    }

    #[test]
    fn matroska_milliseconds_become_ticks_with_half_a_millisecond_to_spare() {
        // 30 fps in 1/1000: 0, 33, 67, 100 ms; B-frame order in the file.
        let raws = [
            raw(0, true),
            raw(67, false),
            raw(33, false),
            raw(100, false),
        ];
        let index = Index::build(&raws, 1, 1000).unwrap();
        assert_eq!(index.timescale, 90_000);
        assert_eq!(index.mul, 90);
        let pts: Vec<i64> = index.samples.iter().map(|s| s.pts).collect();
        assert_eq!(pts, [0, 6030, 2970, 9000]);
        // No durations: each lasts the typical gap (33 or 34 ms), the clip 100 + 33 ms.
        assert_eq!(index.duration, 9000 + 2970);
        // Output frame 2 at 30 fps is 6000 ticks: with half a millisecond of tolerance the
        // picture stored at 67 ms is the one on screen.
        let tolerance = index.mul / 2;
        assert_eq!(tolerance, 45);
        assert!(index.samples[1].pts - tolerance <= 2 * 90_000 / 30);
    }

    #[test]
    fn bad_indexes_are_errors() {
        assert!(Index::build(&[], 1, 1000).is_err());
        assert_eq!(
            Index::build(&[raw(0, false)], 1, 1000).err().unwrap(),
            "no keyframe in the video stream"
        );
        let mut r = raw(0, true);
        r.pts = NOPTS;
        assert_eq!(
            Index::build(&[r], 1, 1000).err().unwrap(),
            "frame 0 has no timestamp"
        );
        let mut r = raw(0, true);
        r.pos = -1;
        assert!(Index::build(&[r], 1, 1000).is_err());
        assert!(Index::build(&[raw(i64::MAX / 2, true), raw(0, true)], 1, 1000).is_err());
    }
}
