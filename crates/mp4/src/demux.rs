//! Reads the video track of an MP4/MOV (ISO BMFF) file through random access: only top-level
//! box headers and the `moov` box are read, never `mdat`, so the same code serves local files
//! and ranged GETs.
//!
//! The input is untrusted: every table count is checked against its box size before use,
//! sample offsets are checked against the file length, and the sample count is capped.

use std::io;

use crate::FourCc;
use crate::h264::{AvcConfig, H264Error};

/// Largest `moov` box read into memory (a 10-million-sample table needs about 200 MiB).
pub const MAX_MOOV_SIZE: u64 = 256 << 20;
/// Largest number of samples accepted in the video track.
pub const MAX_SAMPLES: u64 = 10_000_000;
/// Largest number of top-level boxes walked before `moov` is found.
const MAX_TOP_LEVEL_BOXES: usize = 100_000;

/// Random-access byte source (a file, a byte slice, later an S3 object with ranged GETs).
pub trait ReadAt {
    /// Fills `buf` exactly from `offset`; an error if the source is shorter.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Total length of the source in bytes.
    fn len(&self) -> io::Result<u64>;
    /// True if the source has no bytes.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
}

#[cfg(unix)]
impl ReadAt for std::fs::File {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }
}

impl ReadAt for [u8] {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let src = usize::try_from(offset)
            .ok()
            .and_then(|start| self.get(start..start.checked_add(buf.len())?))
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "read of {} bytes at offset {offset} is beyond the {} byte source",
                        buf.len(),
                        <[u8]>::len(self)
                    ),
                )
            })?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn len(&self) -> io::Result<u64> {
        Ok(<[u8]>::len(self) as u64)
    }
}

impl ReadAt for Vec<u8> {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.as_slice().read_exact_at(offset, buf)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(Vec::len(self) as u64)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for &T {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        (**self).read_exact_at(offset, buf)
    }
    fn len(&self) -> io::Result<u64> {
        (**self).len()
    }
}

/// Errors from reading an MP4 file. Messages describe the problem; the caller adds the name.
#[derive(Debug, thiserror::Error)]
pub enum Mp4Error {
    /// The byte source failed.
    #[error("i/o error reading {len} bytes at offset {offset}")]
    Io {
        /// Where the read started.
        offset: u64,
        /// How many bytes were requested.
        len: usize,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The data does not start like an ISO BMFF file.
    #[error("not an mp4 file: {0}")]
    NotMp4(String),
    /// A top-level box extends past the end of the file.
    #[error(
        "truncated: box `{kind}` at offset {offset} claims {size} bytes but the file has {file_len}"
    )]
    Truncated {
        /// The box type.
        kind: FourCc,
        /// Offset of the box header.
        offset: u64,
        /// Size from the header.
        size: u64,
        /// Length of the file.
        file_len: u64,
    },
    /// No `moov` box was found.
    #[error("no `moov` box in {boxes} top-level boxes")]
    NoMoov {
        /// Top-level boxes walked.
        boxes: usize,
    },
    /// The `moov` box is larger than this reader accepts.
    #[error("`moov` box of {size} bytes is too large (expected <= {max})")]
    MoovTooLarge {
        /// Size of the box.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// No track has a `vide` handler.
    #[error("no video track among {tracks} tracks")]
    NoVideoTrack {
        /// Number of `trak` boxes found.
        tracks: usize,
    },
    /// The samples live in movie fragments, which this reader does not follow.
    #[error(
        "fragmented mp4 is not supported (the video track has no samples in `moov` and the file has `mvex`)"
    )]
    Fragmented,
    /// The video track is not H.264.
    #[error("unsupported codec {0}")]
    UnsupportedCodec(String),
    /// A required box is missing.
    #[error("missing box `{kind}` in `{parent}`")]
    MissingBox {
        /// The missing box type.
        kind: FourCc,
        /// Where it was expected.
        parent: FourCc,
    },
    /// A box's contents are inconsistent or out of range.
    #[error("malformed `{kind}` box: {reason}")]
    Malformed {
        /// The box type.
        kind: FourCc,
        /// What is wrong, with the values involved.
        reason: String,
    },
    /// A sample's bytes lie (partly) past the end of the file.
    #[error(
        "sample {sample} at offset {offset} with {size} bytes ends beyond the end of the file ({file_len} bytes): the file is truncated or its chunk offsets are wrong"
    )]
    SampleOutOfFile {
        /// 1-based sample number in decode order.
        sample: u64,
        /// Offset of the sample.
        offset: u64,
        /// Size of the sample.
        size: u32,
        /// Length of the file.
        file_len: u64,
    },
    /// The track has more samples than this reader accepts.
    #[error("too many samples: {count} (expected <= {max})")]
    TooManySamples {
        /// Samples declared.
        count: u64,
        /// The limit.
        max: u64,
    },
    /// The `avcC` record could not be parsed.
    #[error("invalid `avcC` box")]
    Avc(#[source] H264Error),
}

/// The video codec of a track, from its sample entry (MP4) or codec ID (Matroska).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VideoCodec {
    /// H.264 (`avc1`: parameter sets in avcC; `avc3`: parameter sets may also be in-band).
    Avc,
    /// HEVC / H.265 (`hvc1`, `hev1`, Dolby Vision `dvh1`/`dvhe`).
    Hevc,
    /// VP8 (`vp08`).
    Vp8,
    /// VP9 (`vp09`).
    Vp9,
    /// AV1 (`av01`).
    Av1,
    /// MPEG-4 Part 2 (`mp4v` whose `esds` names MPEG-4 Visual, or says nothing).
    Mpeg4,
    /// MPEG-1 or MPEG-2 video (`mp4v` whose `esds` names them).
    Mpeg2,
    /// Apple ProRes (`apch`, `apcn`, `apcs`, `apco`, `ap4h`, `ap4x`).
    ProRes,
    /// Motion JPEG (`mjpa`, `mjpb`, `jpeg`).
    Mjpeg,
    /// Anything else, by its sample entry type (for Matroska: the first four characters of
    /// the codec ID after `V_`).
    Other(FourCc),
}

impl VideoCodec {
    /// The short name FFmpeg gives the codec (`h264`, `hevc`, `vp9`, `av1`, `mpeg4`, ...), or
    /// the sample entry type of an unknown one.
    pub fn name(&self) -> String {
        match self {
            VideoCodec::Avc => "h264".into(),
            VideoCodec::Hevc => "hevc".into(),
            VideoCodec::Vp8 => "vp8".into(),
            VideoCodec::Vp9 => "vp9".into(),
            VideoCodec::Av1 => "av1".into(),
            VideoCodec::Mpeg4 => "mpeg4".into(),
            VideoCodec::Mpeg2 => "mpeg2video".into(),
            VideoCodec::ProRes => "prores".into(),
            VideoCodec::Mjpeg => "mjpeg".into(),
            VideoCodec::Other(kind) => kind.to_string(),
        }
    }

    /// The name people know the codec by (`H.264`, `HEVC`, `VP9`, `MPEG-4 Part 2`, ...), for
    /// messages.
    pub fn display_name(&self) -> String {
        match self {
            VideoCodec::Avc => "H.264".into(),
            VideoCodec::Hevc => "HEVC".into(),
            VideoCodec::Vp8 => "VP8".into(),
            VideoCodec::Vp9 => "VP9".into(),
            VideoCodec::Av1 => "AV1".into(),
            VideoCodec::Mpeg4 => "MPEG-4 Part 2".into(),
            VideoCodec::Mpeg2 => "MPEG-1/2".into(),
            VideoCodec::ProRes => "ProRes".into(),
            VideoCodec::Mjpeg => "Motion JPEG".into(),
            VideoCodec::Other(kind) => format!("`{kind}`"),
        }
    }

    /// The codec of an MP4 visual sample entry type (`esds` decides what `mp4v` holds).
    fn from_sample_entry(kind: FourCc, esds_object_type: Option<u8>) -> Self {
        match &kind.0 {
            b"avc1" | b"avc3" => VideoCodec::Avc,
            b"hvc1" | b"hev1" | b"dvh1" | b"dvhe" => VideoCodec::Hevc,
            b"vp08" => VideoCodec::Vp8,
            b"vp09" => VideoCodec::Vp9,
            b"av01" => VideoCodec::Av1,
            b"mp4v" => match esds_object_type {
                Some(0x60..=0x65 | 0x6a) => VideoCodec::Mpeg2,
                Some(0x6c) => VideoCodec::Mjpeg,
                _ => VideoCodec::Mpeg4,
            },
            b"apch" | b"apcn" | b"apcs" | b"apco" | b"ap4h" | b"ap4x" => VideoCodec::ProRes,
            b"mjpa" | b"mjpb" | b"jpeg" => VideoCodec::Mjpeg,
            _ => VideoCodec::Other(kind),
        }
    }
}

/// One sample (coded picture) of the video track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Absolute file offset of the sample data (AVCC, length-prefixed NAL units).
    pub offset: u64,
    /// Size in bytes.
    pub size: u32,
    /// Decode time in media timescale units, starting at 0 (the edit list is not applied).
    pub dts: i64,
    /// Presentation time: `dts + ctts offset - media_time` of the first non-empty edit, so
    /// the first displayed frame is at about 0.
    pub pts: i64,
    /// Duration in media timescale units (from `stts`).
    pub duration: u32,
    /// True for a sync sample (keyframe); every sample is sync when `stss` is absent.
    pub sync: bool,
}

/// The video track of an MP4 file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoTrack {
    /// The codec: always H.264 from [`read_video_track`], any from
    /// [`read_video_track_of_any_codec`].
    pub codec: VideoCodec,
    /// Width in pixels (coded size from the sample entry, else from `tkhd`).
    pub width: u32,
    /// Height in pixels (coded size from the sample entry, else from `tkhd`).
    pub height: u32,
    /// Media timescale (`mdhd`), ticks per second.
    pub timescale: u32,
    /// Presentation duration in timescale units: from pts 0 to the latest `pts + duration`
    /// (the sum of sample durations minus the edit list's trim), capped by the edit's
    /// segment duration.
    pub duration: i64,
    /// The parsed `avcC` record (empty, with no parameter sets, unless the codec is H.264).
    pub avc: AvcConfig,
    /// Samples in decode order.
    pub samples: Vec<Sample>,
    /// Clockwise rotation (0, 90, 180 or 270 degrees) that `tkhd`'s display matrix asks players
    /// to apply, as phones record portrait video; 0 for any other matrix.
    pub rotation: u16,
}

const MOOV: FourCc = FourCc::new(b"moov");

/// Top-level box types that may start a plausible MP4/MOV file.
const FIRST_BOX_TYPES: [&[u8; 4]; 12] = [
    b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid", b"styp", b"sidx",
    b"pdin", b"meta",
];

fn io_err(offset: u64, len: usize) -> impl FnOnce(io::Error) -> Mp4Error {
    move |source| Mp4Error::Io {
        offset,
        len,
        source,
    }
}

fn malformed(kind: FourCc, reason: impl Into<String>) -> Mp4Error {
    Mp4Error::Malformed {
        kind,
        reason: reason.into(),
    }
}

/// Reads the first video track (first `trak` with a `vide` handler) of an MP4/MOV file.
///
/// Walks top-level box headers until `moov` (which may follow `mdat`), reads `moov` into
/// memory and builds the sample table. Fails with [`Mp4Error::UnsupportedCodec`] for
/// non-H.264 video (before reading the sample tables) and [`Mp4Error::Fragmented`] for
/// fragmented files.
///
/// Generic so that unsized sources (`[u8]`, `dyn ReadAt`) can be passed directly.
pub fn read_video_track<R: ReadAt + ?Sized>(src: &R) -> Result<VideoTrack, Mp4Error> {
    read_video_track_dyn(&src, false)
}

/// As [`read_video_track`], for a video track of any codec: the sample tables are read and
/// checked against the file the same way (so truncation and corruption are found whatever the
/// codec), the codec is named in [`VideoTrack::codec`], and `avc` is parsed only for H.264.
pub fn read_video_track_of_any_codec<R: ReadAt + ?Sized>(src: &R) -> Result<VideoTrack, Mp4Error> {
    read_video_track_dyn(&src, true)
}

fn read_video_track_dyn(src: &dyn ReadAt, any_codec: bool) -> Result<VideoTrack, Mp4Error> {
    let file_len = src.len().map_err(io_err(0, 0))?;
    let moov = find_moov(src, file_len)?;
    parse_moov(&moov.data, moov.offset, file_len, any_codec)
}

/// The major brand of an ISO BMFF file's leading `ftyp` box (`qt  ` for QuickTime MOV,
/// `isom`, `mp42`, ... for MP4), if it starts with one.
pub fn major_brand<R: ReadAt + ?Sized>(src: &R) -> Option<FourCc> {
    let mut head = [0u8; 12];
    src.read_exact_at(0, &mut head).ok()?;
    (&head[4..8] == b"ftyp").then(|| FourCc([head[8], head[9], head[10], head[11]]))
}

struct Moov {
    offset: u64,
    data: Vec<u8>,
}

/// Walks top-level boxes by header and returns the payload of `moov`.
fn find_moov(src: &dyn ReadAt, file_len: u64) -> Result<Moov, Mp4Error> {
    if file_len < 8 {
        return Err(Mp4Error::NotMp4(format!(
            "the file has {file_len} bytes, fewer than a box header"
        )));
    }
    let mut offset = 0u64;
    let mut boxes = 0;
    while offset + 8 <= file_len {
        if boxes == MAX_TOP_LEVEL_BOXES {
            return Err(Mp4Error::NoMoov { boxes });
        }
        let mut header = [0u8; 16];
        let header_len = if offset + 16 <= file_len { 16 } else { 8 };
        src.read_exact_at(offset, &mut header[..header_len])
            .map_err(io_err(offset, header_len))?;
        let kind = FourCc([header[4], header[5], header[6], header[7]]);
        if boxes == 0 && !FIRST_BOX_TYPES.contains(&&kind.0) {
            return Err(Mp4Error::NotMp4(format!(
                "the first box type is `{kind}`, expected one of ftyp, moov, mdat, free, wide"
            )));
        }
        let size32 = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let (size, head) = match size32 {
            0 => (file_len - offset, 8),
            1 => {
                if header_len < 16 {
                    return Err(Mp4Error::Truncated {
                        kind,
                        offset,
                        size: 16,
                        file_len,
                    });
                }
                let large = u64::from_be_bytes(header[8..16].try_into().unwrap_or_default());
                (large, 16)
            }
            n => (u64::from(n), 8),
        };
        if size < head {
            let reason = format!(
                "box at offset {offset} has size {size}, smaller than its {head} byte header"
            );
            return Err(if boxes == 0 {
                Mp4Error::NotMp4(reason)
            } else {
                malformed(kind, reason)
            });
        }
        let end = offset.checked_add(size).filter(|&e| e <= file_len);
        let Some(end) = end else {
            return Err(Mp4Error::Truncated {
                kind,
                offset,
                size,
                file_len,
            });
        };
        if kind == MOOV {
            let len = size - head;
            if len > MAX_MOOV_SIZE {
                return Err(Mp4Error::MoovTooLarge {
                    size,
                    max: MAX_MOOV_SIZE,
                });
            }
            // Bounded by MAX_MOOV_SIZE and by the file length checked above.
            let mut data = vec![0u8; len as usize];
            src.read_exact_at(offset + head, &mut data)
                .map_err(io_err(offset + head, data.len()))?;
            return Ok(Moov {
                offset: offset + head,
                data,
            });
        }
        boxes += 1;
        offset = end;
    }
    Err(Mp4Error::NoMoov { boxes })
}

/// A box inside `moov`, borrowed from the in-memory payload.
#[derive(Clone, Copy)]
struct BoxRef<'a> {
    kind: FourCc,
    payload: &'a [u8],
    /// Absolute file offset of the payload, for error messages.
    offset: u64,
}

/// Iterates the child boxes of `parent`'s payload.
fn children<'a>(
    parent: FourCc,
    data: &'a [u8],
    base: u64,
) -> impl Iterator<Item = Result<BoxRef<'a>, Mp4Error>> + 'a {
    let mut pos = 0usize;
    let mut done = false;
    std::iter::from_fn(move || {
        // Fewer than 8 bytes left: QuickTime pads some containers with a zero terminator.
        if done || data.len() - pos < 8 {
            return None;
        }
        let h = &data[pos..];
        let kind = FourCc([h[4], h[5], h[6], h[7]]);
        let size32 = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let remaining = (data.len() - pos) as u64;
        let (size, head) = match size32 {
            0 => (remaining, 8),
            1 => match h.get(8..16) {
                Some(b) => (u64::from_be_bytes(b.try_into().unwrap_or_default()), 16),
                None => (u64::MAX, 16),
            },
            n => (u64::from(n), 8),
        };
        if size < head || size > remaining {
            done = true;
            return Some(Err(malformed(
                parent,
                format!(
                    "child box `{kind}` at offset {} claims {size} bytes but {remaining} remain",
                    base + pos as u64
                ),
            )));
        }
        let start = pos + head as usize;
        let end = pos + size as usize;
        let item = BoxRef {
            kind,
            payload: &data[start..end],
            offset: base + start as u64,
        };
        pos = end;
        Some(Ok(item))
    })
}

impl<'a> BoxRef<'a> {
    fn child(&self, kind: &[u8; 4]) -> Result<Option<BoxRef<'a>>, Mp4Error> {
        for b in children(self.kind, self.payload, self.offset) {
            let b = b?;
            if b.kind.0 == *kind {
                return Ok(Some(b));
            }
        }
        Ok(None)
    }

    fn require(&self, kind: &[u8; 4]) -> Result<BoxRef<'a>, Mp4Error> {
        self.child(kind)?.ok_or(Mp4Error::MissingBox {
            kind: FourCc(*kind),
            parent: self.kind,
        })
    }

    fn reader(&self) -> Cursor<'a> {
        Cursor {
            data: self.payload,
            pos: 0,
            kind: self.kind,
        }
    }
}

/// Bounds-checked big-endian reader over a box payload.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    kind: FourCc,
}

impl<'a> Cursor<'a> {
    fn bytes(&mut self, n: usize, what: &str) -> Result<&'a [u8], Mp4Error> {
        let s = self
            .pos
            .checked_add(n)
            .and_then(|end| self.data.get(self.pos..end))
            .ok_or_else(|| {
                malformed(
                    self.kind,
                    format!(
                        "{what} needs {n} bytes at offset {} but the box has {}",
                        self.pos,
                        self.data.len()
                    ),
                )
            })?;
        self.pos += n;
        Ok(s)
    }
    fn u16(&mut self, what: &str) -> Result<u16, Mp4Error> {
        let b = self.bytes(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &str) -> Result<u32, Mp4Error> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// Version byte and flags of a full box.
    fn full_header(&mut self) -> Result<(u8, u32), Mp4Error> {
        let v = self.u32("version and flags")?;
        Ok(((v >> 24) as u8, v & 0x00ff_ffff))
    }
    /// A table of `count` entries of `entry` bytes, checked against the box size first.
    fn table(&mut self, count: u32, entry: usize) -> Result<Table<'a>, Mp4Error> {
        let need = u64::from(count) * entry as u64;
        let left = (self.data.len() - self.pos) as u64;
        if need > left {
            return Err(malformed(
                self.kind,
                format!("entry count {count} needs {need} bytes but the box has {left} left"),
            ));
        }
        let data = self.bytes(need as usize, "table")?;
        Ok(Table { data, entry })
    }
}

/// Fixed-size table entries; `field(i, k)` reads the k-th u32 of entry i.
#[derive(Clone, Copy)]
struct Table<'a> {
    data: &'a [u8],
    entry: usize,
}

impl Table<'_> {
    fn len(&self) -> usize {
        self.data.len() / self.entry.max(1)
    }
    fn u32(&self, i: usize, k: usize) -> u32 {
        let at = i * self.entry + k * 4;
        self.data
            .get(at..at + 4)
            .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&self, i: usize) -> u64 {
        let at = i * self.entry;
        self.data
            .get(at..at + 8)
            .map_or(0, |b| u64::from_be_bytes(b.try_into().unwrap_or_default()))
    }
}

fn parse_moov(
    data: &[u8],
    offset: u64,
    file_len: u64,
    any_codec: bool,
) -> Result<VideoTrack, Mp4Error> {
    let moov = BoxRef {
        kind: MOOV,
        payload: data,
        offset,
    };
    let mut movie_timescale = 0;
    let mut fragmented = false;
    let mut tracks = 0;
    let mut video = None;
    for b in children(MOOV, data, offset) {
        let b = b?;
        match &b.kind.0 {
            b"mvhd" => {
                let mut r = b.reader();
                let (version, _) = r.full_header()?;
                r.bytes(if version == 1 { 16 } else { 8 }, "mvhd times")?;
                movie_timescale = r.u32("mvhd timescale")?;
            }
            b"mvex" => fragmented = true,
            b"trak" => {
                tracks += 1;
                if video.is_none() && handler(&b)? == *b"vide" {
                    video = Some(b);
                }
            }
            _ => {}
        }
    }
    let _ = moov;
    let trak = video.ok_or(Mp4Error::NoVideoTrack { tracks })?;
    parse_video_trak(&trak, movie_timescale, fragmented, file_len, any_codec)
}

fn handler(trak: &BoxRef<'_>) -> Result<[u8; 4], Mp4Error> {
    let Some(mdia) = trak.child(b"mdia")? else {
        return Ok([0; 4]);
    };
    let Some(hdlr) = mdia.child(b"hdlr")? else {
        return Ok([0; 4]);
    };
    let mut r = hdlr.reader();
    r.full_header()?;
    r.u32("hdlr pre_defined")?;
    let t = r.bytes(4, "handler_type")?;
    Ok([t[0], t[1], t[2], t[3]])
}

struct Entry {
    codec: VideoCodec,
    width: u32,
    height: u32,
    avc: AvcConfig,
}

/// An `avcC` with nothing in it, for tracks of other codecs.
fn empty_avc() -> AvcConfig {
    AvcConfig {
        profile: 0,
        compat: 0,
        level: 0,
        nal_length_size: 4,
        sps: Vec::new(),
        pps: Vec::new(),
    }
}

/// The objectTypeIndication of an `esds` payload's DecoderConfigDescriptor, if it has one.
fn esds_object_type(esds: &[u8]) -> Option<u8> {
    // Full box header, then descriptors: tag, a 1-4 byte size, the body.
    let mut pos = 4;
    let descriptor = |pos: &mut usize| -> Option<(u8, usize)> {
        let tag = *esds.get(*pos)?;
        *pos += 1;
        let mut size = 0usize;
        for _ in 0..4 {
            let b = *esds.get(*pos)?;
            *pos += 1;
            size = (size << 7) | usize::from(b & 0x7f);
            if b & 0x80 == 0 {
                break;
            }
        }
        Some((tag, size))
    };
    let (tag, _) = descriptor(&mut pos)?;
    if tag != 0x03 {
        return None;
    }
    // ES_Descriptor: ES_ID (2), flags (1), then optional fields the flags announce.
    let flags = *esds.get(pos + 2)?;
    pos += 3;
    if flags & 0x80 != 0 {
        pos += 2; // dependsOn_ES_ID
    }
    if flags & 0x40 != 0 {
        pos += 1 + usize::from(*esds.get(pos)?); // URL
    }
    if flags & 0x20 != 0 {
        pos += 2; // OCR_ES_Id
    }
    let (tag, _) = descriptor(&mut pos)?;
    if tag != 0x04 {
        return None;
    }
    esds.get(pos).copied()
}

fn parse_stsd(stsd: &BoxRef<'_>, any_codec: bool) -> Result<Entry, Mp4Error> {
    let mut r = stsd.reader();
    r.full_header()?;
    let count = r.u32("entry_count")?;
    if count == 0 {
        return Err(malformed(stsd.kind, "no sample entries"));
    }
    let rest = &stsd.payload[r.pos..];
    let entry = children(stsd.kind, rest, stsd.offset + r.pos as u64)
        .next()
        .transpose()?
        .ok_or_else(|| malformed(stsd.kind, "no sample entries"))?;
    let is_avc = matches!(&entry.kind.0, b"avc1" | b"avc3");
    if !is_avc && !any_codec {
        return Err(Mp4Error::UnsupportedCodec(
            VideoCodec::from_sample_entry(entry.kind, None).name(),
        ));
    }
    let mut r = entry.reader();
    // SampleEntry (8) + pre_defined/reserved (16), then width and height.
    r.bytes(24, "visual sample entry")?;
    let width = u32::from(r.u16("width")?);
    let height = u32::from(r.u16("height")?);
    r.bytes(50, "visual sample entry")?;
    let boxes = BoxRef {
        kind: entry.kind,
        payload: &entry.payload[r.pos..],
        offset: entry.offset + r.pos as u64,
    };
    if !is_avc {
        let esds = match &entry.kind.0 {
            b"mp4v" => boxes
                .child(b"esds")?
                .and_then(|b| esds_object_type(b.payload)),
            _ => None,
        };
        return Ok(Entry {
            codec: VideoCodec::from_sample_entry(entry.kind, esds),
            width,
            height,
            avc: empty_avc(),
        });
    }
    let avcc = boxes.require(b"avcC")?;
    let avc = AvcConfig::parse(avcc.payload).map_err(Mp4Error::Avc)?;
    Ok(Entry {
        codec: VideoCodec::Avc,
        width,
        height,
        avc,
    })
}

/// Sample sizes from `stsz` or `stz2`.
enum Sizes<'a> {
    Constant(u32),
    Table(Table<'a>),
    Compact { bits: u8, data: &'a [u8] },
}

impl Sizes<'_> {
    fn get(&self, i: usize) -> u32 {
        match self {
            Sizes::Constant(s) => *s,
            Sizes::Table(t) => t.u32(i, 0),
            Sizes::Compact { bits: 4, data } => {
                let b = data.get(i / 2).copied().unwrap_or(0);
                u32::from(if i.is_multiple_of(2) { b >> 4 } else { b & 0xf })
            }
            Sizes::Compact { bits: 8, data } => data.get(i).copied().map_or(0, u32::from),
            Sizes::Compact { data, .. } => data
                .get(i * 2..i * 2 + 2)
                .map_or(0, |b| u32::from(u16::from_be_bytes([b[0], b[1]]))),
        }
    }
}

fn parse_sizes<'a>(stbl: &BoxRef<'a>) -> Result<(Sizes<'a>, u32, FourCc), Mp4Error> {
    if let Some(stsz) = stbl.child(b"stsz")? {
        let mut r = stsz.reader();
        r.full_header()?;
        let size = r.u32("sample_size")?;
        let count = r.u32("sample_count")?;
        check_sample_count(count)?;
        if size != 0 {
            return Ok((Sizes::Constant(size), count, stsz.kind));
        }
        return Ok((Sizes::Table(r.table(count, 4)?), count, stsz.kind));
    }
    let Some(stz2) = stbl.child(b"stz2")? else {
        return Err(Mp4Error::MissingBox {
            kind: FourCc::new(b"stsz"),
            parent: stbl.kind,
        });
    };
    let mut r = stz2.reader();
    r.full_header()?;
    let field = r.u32("field_size")? & 0xff;
    let count = r.u32("sample_count")?;
    check_sample_count(count)?;
    if !matches!(field, 4 | 8 | 16) {
        return Err(malformed(
            stz2.kind,
            format!("field size {field} (expected 4, 8 or 16)"),
        ));
    }
    let bytes = (u64::from(count) * u64::from(field)).div_ceil(8);
    let data = r.bytes(
        usize::try_from(bytes).unwrap_or(usize::MAX),
        "sample size table",
    )?;
    Ok((
        Sizes::Compact {
            bits: field as u8,
            data,
        },
        count,
        stz2.kind,
    ))
}

fn check_sample_count(count: u32) -> Result<(), Mp4Error> {
    if u64::from(count) > MAX_SAMPLES {
        return Err(Mp4Error::TooManySamples {
            count: count.into(),
            max: MAX_SAMPLES,
        });
    }
    Ok(())
}

/// A table box with a full header and `count` entries of `entry` bytes.
fn table_box<'a>(b: &BoxRef<'a>, entry: usize) -> Result<(u8, Table<'a>), Mp4Error> {
    let mut r = b.reader();
    let (version, _) = r.full_header()?;
    let count = r.u32("entry_count")?;
    Ok((version, r.table(count, entry)?))
}

/// The first non-empty edit: (media_time, segment_duration in movie timescale units, summed
/// over all non-empty edits).
fn parse_edits(trak: &BoxRef<'_>) -> Result<Option<(i64, u64)>, Mp4Error> {
    let Some(edts) = trak.child(b"edts")? else {
        return Ok(None);
    };
    let Some(elst) = edts.child(b"elst")? else {
        return Ok(None);
    };
    let mut r = elst.reader();
    let (version, _) = r.full_header()?;
    let count = r.u32("entry_count")?;
    let entry = if version == 1 { 20 } else { 12 };
    let table = r.table(count, entry)?;
    let mut first: Option<i64> = None;
    let mut total = 0u64;
    for i in 0..table.len() {
        let (segment, media_time) = if version == 1 {
            let at = i * entry + 8;
            let time = table
                .data
                .get(at..at + 8)
                .map_or(-1, |b| i64::from_be_bytes(b.try_into().unwrap_or_default()));
            (table.u64(i), time)
        } else {
            (
                u64::from(table.u32(i, 0)),
                i64::from(table.u32(i, 1) as i32),
            )
        };
        if media_time < 0 {
            continue; // empty edit (a leading delay), ignored
        }
        first.get_or_insert(media_time);
        total = total.saturating_add(segment);
    }
    Ok(first.map(|t| (t, total)))
}

fn parse_video_trak(
    trak: &BoxRef<'_>,
    movie_timescale: u32,
    fragmented: bool,
    file_len: u64,
    any_codec: bool,
) -> Result<VideoTrack, Mp4Error> {
    let mdia = trak.require(b"mdia")?;
    let minf = mdia.require(b"minf")?;
    let stbl = minf.require(b"stbl")?;
    let entry = parse_stsd(&stbl.require(b"stsd")?, any_codec)?;

    let mdhd = mdia.require(b"mdhd")?;
    let mut r = mdhd.reader();
    let (version, _) = r.full_header()?;
    r.bytes(if version == 1 { 16 } else { 8 }, "mdhd times")?;
    let timescale = r.u32("timescale")?;
    if timescale == 0 {
        return Err(malformed(mdhd.kind, "timescale 0 (expected >= 1)"));
    }

    let (sizes, sample_count, sizes_kind) = parse_sizes(&stbl)?;
    if sample_count == 0 {
        if fragmented {
            return Err(Mp4Error::Fragmented);
        }
        return Err(malformed(sizes_kind, "the video track has no samples"));
    }
    let n = sample_count as usize;

    let (chunk_kind, chunk_offsets, wide) = if let Some(b) = stbl.child(b"stco")? {
        (b.kind, table_box(&b, 4)?.1, false)
    } else if let Some(b) = stbl.child(b"co64")? {
        (b.kind, table_box(&b, 8)?.1, true)
    } else {
        return Err(Mp4Error::MissingBox {
            kind: FourCc::new(b"stco"),
            parent: stbl.kind,
        });
    };
    let chunk_count = chunk_offsets.len();
    let stsc = stbl.require(b"stsc")?;
    let (_, stsc_table) = table_box(&stsc, 12)?;
    if stsc_table.len() == 0 {
        return Err(malformed(stsc.kind, "no entries"));
    }
    let stts = stbl.require(b"stts")?;
    let (_, stts_table) = table_box(&stts, 8)?;
    let ctts = match stbl.child(b"ctts")? {
        Some(b) => Some(table_box(&b, 8)?.1),
        None => None,
    };
    let stss = match stbl.child(b"stss")? {
        Some(b) => Some((b.kind, table_box(&b, 4)?.1)),
        None => None,
    };
    let edit = parse_edits(trak)?;
    let media_time = edit.map_or(0, |(t, _)| t);

    // Samples grow as they are validated against the file; MAX_SAMPLES caps the total.
    let mut samples: Vec<Sample> = Vec::with_capacity(n.min(1 << 16));
    let mut stts_i = 0usize;
    let mut stts_left = 0u32;
    let mut delta = 0u32;
    let mut ctts_i = 0usize;
    let mut ctts_left = 0u32;
    let mut cts = 0i64;
    let mut dts = 0i64;
    let mut prev_first_chunk = 0u32;
    for e in 0..stsc_table.len() {
        let first_chunk = stsc_table.u32(e, 0);
        let per_chunk = stsc_table.u32(e, 1);
        if first_chunk <= prev_first_chunk || (e == 0 && first_chunk != 1) {
            return Err(malformed(
                stsc.kind,
                format!(
                    "entry {e} has first chunk {first_chunk} (expected > {prev_first_chunk}, and 1 for the first entry)"
                ),
            ));
        }
        if first_chunk as usize > chunk_count {
            return Err(malformed(
                stsc.kind,
                format!(
                    "entry {e} references chunk {first_chunk} but `{chunk_kind}` has {chunk_count} chunks"
                ),
            ));
        }
        prev_first_chunk = first_chunk;
        let next_first = if e + 1 < stsc_table.len() {
            (stsc_table.u32(e + 1, 0) as usize).saturating_sub(1)
        } else {
            chunk_count
        };
        for chunk in (first_chunk as usize - 1)..next_first.min(chunk_count) {
            let mut offset = if wide {
                chunk_offsets.u64(chunk)
            } else {
                u64::from(chunk_offsets.u32(chunk, 0))
            };
            for _ in 0..per_chunk {
                let i = samples.len();
                if i == n {
                    break;
                }
                let size = sizes.get(i);
                let end = offset.saturating_add(u64::from(size));
                if end > file_len {
                    return Err(Mp4Error::SampleOutOfFile {
                        sample: i as u64 + 1,
                        offset,
                        size,
                        file_len,
                    });
                }
                while stts_left == 0 {
                    if stts_i == stts_table.len() {
                        return Err(malformed(
                            stts.kind,
                            format!("durations cover {i} samples but the track has {n}"),
                        ));
                    }
                    stts_left = stts_table.u32(stts_i, 0);
                    delta = stts_table.u32(stts_i, 1);
                    stts_i += 1;
                }
                stts_left -= 1;
                if let Some(ctts) = &ctts {
                    while ctts_left == 0 && ctts_i < ctts.len() {
                        ctts_left = ctts.u32(ctts_i, 0);
                        // Version 0 offsets are read as signed too, as writers use both.
                        cts = i64::from(ctts.u32(ctts_i, 1) as i32);
                        ctts_i += 1;
                    }
                    if ctts_left == 0 {
                        cts = 0;
                    } else {
                        ctts_left -= 1;
                    }
                }
                samples.push(Sample {
                    offset,
                    size,
                    dts,
                    // Saturating: media_time comes from the file and may be absurd.
                    pts: (dts + cts).saturating_sub(media_time),
                    duration: delta,
                    sync: stss.is_none(),
                });
                dts += i64::from(delta);
                offset = end;
            }
        }
    }
    if samples.len() < n {
        return Err(malformed(
            stsc.kind,
            format!(
                "chunks hold {} samples but `{sizes_kind}` has {n}",
                samples.len()
            ),
        ));
    }
    if let Some((kind, stss)) = stss {
        for i in 0..stss.len() {
            let number = stss.u32(i, 0);
            let sample = (number as usize)
                .checked_sub(1)
                .and_then(|k| samples.get_mut(k))
                .ok_or_else(|| {
                    malformed(kind, format!("sync sample {number} is outside 1..={n}"))
                })?;
            sample.sync = true;
        }
    }

    // Presentation ends with the latest pts + duration; frames before pts 0 are trimmed.
    let mut duration = samples
        .iter()
        .map(|s| s.pts.saturating_add(i64::from(s.duration)))
        .max()
        .unwrap_or(0)
        .max(0);
    if let Some((_, segment)) = edit
        && segment > 0
    {
        if movie_timescale == 0 {
            return Err(malformed(
                FourCc::new(b"mvhd"),
                "timescale 0 (expected >= 1)",
            ));
        }
        let media = u128::from(segment) * u128::from(timescale) / u128::from(movie_timescale);
        duration = duration.min(i64::try_from(media).unwrap_or(i64::MAX));
    }

    let (mut width, mut height) = (entry.width, entry.height);
    let tkhd = trak.child(b"tkhd")?;
    let rotation = tkhd.as_ref().map_or(0, |t| rotation_of(t.payload));
    if (width == 0 || height == 0)
        && let Some(tkhd) = tkhd
    {
        let p = tkhd.payload;
        if p.len() >= 8 {
            let at = p.len() - 8;
            width = u32::from_be_bytes([p[at], p[at + 1], p[at + 2], p[at + 3]]) >> 16;
            height = u32::from_be_bytes([p[at + 4], p[at + 5], p[at + 6], p[at + 7]]) >> 16;
        }
    }
    Ok(VideoTrack {
        codec: entry.codec,
        width,
        height,
        timescale,
        duration,
        avc: entry.avc,
        samples,
        rotation,
    })
}

/// The rotation in a `tkhd` payload's display matrix. Both box versions end with the matrix
/// (nine 32-bit values) then width and height; a pure rotation has a, b, c, d of 0 or ±1.0
/// (16.16 fixed point) and no translation that matters here.
fn rotation_of(tkhd: &[u8]) -> u16 {
    if tkhd.len() < 44 {
        return 0;
    }
    let m = &tkhd[tkhd.len() - 44..];
    let at = |i: usize| i32::from_be_bytes([m[4 * i], m[4 * i + 1], m[4 * i + 2], m[4 * i + 3]]);
    const ONE: i32 = 1 << 16;
    const MINUS_ONE: i32 = -(1 << 16);
    match (at(0), at(1), at(3), at(4)) {
        (0, ONE, MINUS_ONE, 0) => 90,
        (MINUS_ONE, 0, 0, MINUS_ONE) => 180,
        (0, MINUS_ONE, ONE, 0) => 270,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut v = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn display_matrix_rotations() {
        let tkhd = |a: i32, b: i32, c: i32, d: i32| {
            let mut p = vec![0u8; 40];
            for v in [a, b, 0, c, d, 0, 0, 0, 1 << 30, 1280 << 16, 720 << 16] {
                p.extend_from_slice(&v.to_be_bytes());
            }
            p
        };
        let one = 1 << 16;
        assert_eq!(rotation_of(&tkhd(one, 0, 0, one)), 0);
        assert_eq!(rotation_of(&tkhd(0, one, -one, 0)), 90);
        assert_eq!(rotation_of(&tkhd(-one, 0, 0, -one)), 180);
        assert_eq!(rotation_of(&tkhd(0, -one, one, 0)), 270);
        // Scaling or shearing matrices are not rotations; short boxes are ignored.
        assert_eq!(rotation_of(&tkhd(2 * one, 0, 0, one)), 0);
        assert_eq!(rotation_of(&[0; 12]), 0);
    }

    #[test]
    fn garbage_is_not_mp4() {
        let garbage: Vec<u8> = (0..1000u32).map(|i| (i * 7919 % 251) as u8).collect();
        let err = read_video_track(&garbage).unwrap_err();
        assert!(matches!(err, Mp4Error::NotMp4(_)), "{err}");
        assert!(matches!(
            read_video_track(&[0u8; 3][..]).unwrap_err(),
            Mp4Error::NotMp4(_)
        ));
    }

    #[test]
    fn truncated_moov() {
        let mut file = boxed(b"ftyp", b"isom\0\0\0\0");
        file.extend_from_slice(&5000u32.to_be_bytes());
        file.extend_from_slice(b"moov");
        file.resize(3000, 0);
        let err = read_video_track(&file).unwrap_err();
        assert_eq!(
            err.to_string(),
            "truncated: box `moov` at offset 16 claims 5000 bytes but the file has 3000"
        );
    }

    #[test]
    fn huge_table_count_is_an_error_not_an_allocation() {
        let mut stts = vec![0u8; 4];
        stts.extend_from_slice(&u32::MAX.to_be_bytes());
        let b = boxed(b"stts", &stts);
        let parent = BoxRef {
            kind: FourCc::new(b"stbl"),
            payload: &b,
            offset: 0,
        };
        let stts = parent.require(b"stts").unwrap();
        let err = table_box(&stts, 8).err().unwrap();
        assert_eq!(
            err.to_string(),
            "malformed `stts` box: entry count 4294967295 needs 34359738360 bytes but the box has 0 left"
        );
    }

    /// A valid two-track file from the muxer, with each sample's bytes set to its index.
    fn muxed() -> Vec<u8> {
        use crate::mux::{Mp4Plan, MuxSample, VideoTrackSpec};
        let avc = AvcConfig {
            profile: 66,
            compat: 0,
            level: 30,
            nal_length_size: 4,
            sps: vec![vec![0x67, 0x42]],
            pps: vec![vec![0x68]],
        };
        let samples = (0..60)
            .map(|i| MuxSample {
                size: 10 + i,
                duration: 1,
                cts_offset: 0,
                sync: i % 10 == 0,
            })
            .collect();
        let plan = Mp4Plan::new(
            VideoTrackSpec {
                width: 64,
                height: 64,
                timescale: 30,
                avc,
                samples,
            },
            None,
        )
        .unwrap();
        let mut file = plan.header();
        file.resize(plan.total_size() as usize, 0);
        file
    }

    /// Offset of the payload of the first box of type `kind` (found by searching).
    fn find(file: &[u8], kind: &[u8; 4]) -> usize {
        file.windows(4).position(|w| w == kind).unwrap() + 4
    }

    fn set_u32(file: &mut [u8], at: usize, v: u32) {
        file[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }

    #[test]
    fn malformed_tables_are_errors() {
        let file = muxed();
        let track = read_video_track(&file).unwrap();
        assert_eq!(track.samples.len(), 60);
        assert_eq!(track.duration, 60);
        assert_eq!(track.samples.iter().filter(|s| s.sync).count(), 6);

        let mut f = file.clone();
        let stco = find(&f, b"stco");
        set_u32(&mut f, stco + 4, 0); // no chunks left for stsc's first entry
        let err = read_video_track(&f).unwrap_err().to_string();
        assert_eq!(
            err,
            "malformed `stsc` box: entry 0 references chunk 1 but `stco` has 0 chunks"
        );

        let mut f = file.clone();
        let stsz = find(&f, b"stsz");
        set_u32(&mut f, stsz + 8, 20_000_000);
        let err = read_video_track(&f).unwrap_err().to_string();
        assert_eq!(err, "too many samples: 20000000 (expected <= 10000000)");

        let mut f = file.clone();
        set_u32(&mut f, stsz + 8, 1_000_000);
        let err = read_video_track(&f).unwrap_err().to_string();
        assert_eq!(
            err,
            "malformed `stsz` box: entry count 1000000 needs 4000000 bytes but the box has 240 left"
        );

        let mut f = file.clone();
        let mdhd = find(&f, b"mdhd");
        set_u32(&mut f, mdhd + 12, 0);
        let err = read_video_track(&f).unwrap_err().to_string();
        assert_eq!(err, "malformed `mdhd` box: timescale 0 (expected >= 1)");

        let mut f = file.clone();
        let stco = find(&f, b"stco");
        set_u32(&mut f, stco + 8, u32::MAX - 5);
        let err = read_video_track(&f).unwrap_err();
        assert!(
            matches!(err, Mp4Error::SampleOutOfFile { sample: 1, .. }),
            "{err}"
        );

        let mut f = file.clone();
        let elst = find(&f, b"elst");
        set_u32(&mut f, elst + 12, i32::MAX as u32); // absurd media_time
        assert!(read_video_track(&f).is_ok());

        let mut f = file;
        let stsd = find(&f, b"stsd");
        f[stsd + 12..stsd + 16].copy_from_slice(b"av01");
        assert_eq!(
            read_video_track(&f).unwrap_err().to_string(),
            "unsupported codec av1"
        );
        // Read whatever the codec: the same sample tables, named as AV1, no avcC kept.
        let any = read_video_track_of_any_codec(&f).unwrap();
        assert_eq!(any.codec, VideoCodec::Av1);
        assert_eq!(any.samples, track.samples);
        assert!(any.avc.sps.is_empty());
        // An unknown sample entry is named by its type.
        f[stsd + 12..stsd + 16].copy_from_slice(b"zz\x01z");
        let any = read_video_track_of_any_codec(&f).unwrap();
        assert_eq!(any.codec.name(), "zz\\x01z");
        assert_eq!(
            read_video_track(&f).unwrap_err().to_string(),
            "unsupported codec zz\\x01z"
        );
    }

    #[test]
    fn mp4v_is_named_by_its_esds() {
        // esds: full box header, ES_Descriptor (tag 3) with flags 0, DecoderConfigDescriptor
        // (tag 4) whose first byte is the object type.
        let esds = |oti: u8| {
            vec![
                0, 0, 0, 0, 3, 0x80, 0x80, 0x80, 20, 0, 1, 0, 4, 13, oti, 0x11,
            ]
        };
        assert_eq!(esds_object_type(&esds(0x20)), Some(0x20));
        assert_eq!(esds_object_type(&esds(0x61)), Some(0x61));
        assert_eq!(esds_object_type(&[0, 0, 0, 0, 3]), None);
        assert_eq!(esds_object_type(&[]), None);
        let mp4v = FourCc::new(b"mp4v");
        assert_eq!(
            VideoCodec::from_sample_entry(mp4v, Some(0x20)),
            VideoCodec::Mpeg4
        );
        assert_eq!(
            VideoCodec::from_sample_entry(mp4v, Some(0x61)),
            VideoCodec::Mpeg2
        );
        assert_eq!(VideoCodec::from_sample_entry(mp4v, None), VideoCodec::Mpeg4);
        assert_eq!(
            VideoCodec::from_sample_entry(FourCc::new(b"hev1"), None).display_name(),
            "HEVC"
        );
    }

    #[test]
    fn no_moov() {
        let file = boxed(b"ftyp", b"isom\0\0\0\0");
        assert_eq!(
            read_video_track(&file).unwrap_err().to_string(),
            "no `moov` box in 1 top-level boxes"
        );
    }
}
