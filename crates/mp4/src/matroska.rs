//! Names the video track of a Matroska or WebM file without decoding anything: the EBML
//! header's DocType, then the `Tracks` element's first video `TrackEntry` (codec ID, size,
//! interlacing). This is what lets storyreel say which codec a background is, and what it
//! would take to decode it, on a machine without FFmpeg's libraries.
//!
//! The input is untrusted: elements are read through [`ReadAt`] one header at a time, only
//! the EBML header and `Tracks` are read into memory (each bounded), the number of elements
//! walked is capped, and a `Segment` that claims more bytes than the file has is reported as
//! truncated. The segment's top-level elements (clusters, cues, ...) are walked by their
//! headers to the end, so that damage over the media data is reported here: FFmpeg's demuxer
//! would skip it silently and play a shorter clip.

use std::io;

use crate::FourCc;
use crate::demux::{ReadAt, VideoCodec};

/// The EBML magic that starts every Matroska and WebM file (the EBML header's element ID).
pub const EBML_MAGIC: [u8; 4] = [0x1A, 0x45, 0xDF, 0xA3];

/// Largest EBML header read into memory.
const MAX_HEADER_SIZE: u64 = 4096;
/// Largest `Tracks` element read into memory (a file's track list is a few hundred bytes).
pub const MAX_TRACKS_SIZE: u64 = 16 << 20;
/// Most `Segment` children walked before `Tracks` is found.
const MAX_ELEMENTS: usize = 10_000;
/// Most `Segment` children whose headers are checked (a cluster is typically 1 to 5 s).
const MAX_CHECKED: usize = 1_000_000;

const ID_EBML: u32 = 0x1A45_DFA3;
const ID_DOC_TYPE: u32 = 0x4282;
const ID_SEGMENT: u32 = 0x1853_8067;
const ID_SEEK_HEAD: u32 = 0x114D_9B74;
const ID_SEEK: u32 = 0x4DBB;
const ID_SEEK_ID: u32 = 0x53AB;
const ID_SEEK_POSITION: u32 = 0x53AC;
const ID_TRACKS: u32 = 0x1654_AE6B;
const ID_CLUSTER: u32 = 0x1F43_B675;
/// The elements a segment holds (level 1), and the two that may appear anywhere.
const SEGMENT_CHILDREN: [u32; 10] = [
    ID_SEEK_HEAD,
    0x1549_A966, // Info
    ID_TRACKS,
    0x1043_A770, // Chapters
    ID_CLUSTER,
    0x1C53_BB6B, // Cues
    0x1941_A469, // Attachments
    0x1254_C367, // Tags
    0xEC,        // Void
    0xBF,        // CRC-32
];
const ID_TRACK_ENTRY: u32 = 0xAE;
const ID_TRACK_TYPE: u32 = 0x83;
const ID_CODEC_ID: u32 = 0x86;
const ID_CODEC_PRIVATE: u32 = 0x63A2;
const ID_VIDEO: u32 = 0xE0;
const ID_PIXEL_WIDTH: u32 = 0xB0;
const ID_PIXEL_HEIGHT: u32 = 0xBA;
const ID_FLAG_INTERLACED: u32 = 0x9A;

/// `TrackType` of a video track.
const TRACK_TYPE_VIDEO: u64 = 1;

/// Errors from reading a Matroska file. Messages describe the problem; the caller adds the
/// name.
#[derive(Debug, thiserror::Error)]
pub enum MatroskaError {
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
    /// The data does not start like a Matroska or WebM file.
    #[error("not a matroska file: {0}")]
    NotMatroska(String),
    /// An element extends past the end of the file.
    #[error(
        "truncated: element `{element}` at offset {offset} claims {size} bytes but the file has {file_len}"
    )]
    Truncated {
        /// The element's name.
        element: &'static str,
        /// Offset of its header.
        offset: u64,
        /// Size of its payload from the header.
        size: u64,
        /// Length of the file.
        file_len: u64,
    },
    /// An element's header or contents are out of range.
    #[error("malformed `{element}` element: {reason}")]
    Malformed {
        /// The element's name.
        element: &'static str,
        /// What is wrong, with the values involved.
        reason: String,
    },
    /// An element is larger than this reader accepts.
    #[error("`{element}` element of {size} bytes is too large (expected <= {max})")]
    TooLarge {
        /// The element's name.
        element: &'static str,
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The segment's elements do not follow each other: bytes were overwritten or lost.
    #[error(
        "corrupt: `{found:#x}` at offset {offset} is not an element a segment holds (the data after offset {last_good} is damaged)"
    )]
    Corrupt {
        /// The ID read where the next element should start.
        found: u32,
        /// Where it was read.
        offset: u64,
        /// End of the last intact element.
        last_good: u64,
    },
    /// No `Tracks` element was found before the media data.
    #[error("no `Tracks` element in the first {elements} elements of the segment")]
    NoTracks {
        /// Elements walked.
        elements: usize,
    },
    /// No track is a video track.
    #[error("no video track among {tracks} tracks")]
    NoVideoTrack {
        /// Number of `TrackEntry` elements.
        tracks: usize,
    },
}

type Result<T> = std::result::Result<T, MatroskaError>;

/// The video track of a Matroska or WebM file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatroskaVideo {
    /// The EBML DocType: `matroska` or `webm`.
    pub doc_type: String,
    /// The track's codec ID as written (`V_VP9`, `V_MPEGH/ISO/HEVC`, ...).
    pub codec_id: String,
    /// The codec that ID names.
    pub codec: VideoCodec,
    /// `PixelWidth` (0 when absent).
    pub width: u32,
    /// `PixelHeight` (0 when absent).
    pub height: u32,
    /// `FlagInterlaced` says interlaced (1); 0 (undetermined) and 2 (progressive) do not.
    /// Writers often leave it unset or wrong: for H.264, the SPS in `codec_private` is the
    /// judge.
    pub interlaced: bool,
    /// `CodecPrivate`: the decoder configuration (an `avcC` record for H.264), or empty.
    pub codec_private: Vec<u8>,
}

impl MatroskaVideo {
    /// The container's name for messages: `WebM` or `Matroska`.
    pub fn container_name(&self) -> &'static str {
        if self.doc_type == "webm" {
            "WebM"
        } else {
            "Matroska"
        }
    }
}

/// The codec a Matroska codec ID names.
pub fn codec_of(codec_id: &str) -> VideoCodec {
    match codec_id {
        "V_MPEG4/ISO/AVC" => VideoCodec::Avc,
        "V_MPEGH/ISO/HEVC" => VideoCodec::Hevc,
        "V_VP8" => VideoCodec::Vp8,
        "V_VP9" => VideoCodec::Vp9,
        "V_AV1" => VideoCodec::Av1,
        "V_MPEG4/ISO/SP" | "V_MPEG4/ISO/ASP" | "V_MPEG4/ISO/AP" => VideoCodec::Mpeg4,
        "V_MPEG1" | "V_MPEG2" => VideoCodec::Mpeg2,
        "V_PRORES" => VideoCodec::ProRes,
        "V_MJPEG" => VideoCodec::Mjpeg,
        other => {
            let mut code = [b' '; 4];
            let name = other.strip_prefix("V_").unwrap_or(other).as_bytes();
            for (c, b) in code.iter_mut().zip(name) {
                *c = *b;
            }
            VideoCodec::Other(FourCc(code))
        }
    }
}

/// True if `src` starts with the EBML magic (a Matroska, WebM or other EBML file).
pub fn is_ebml<R: ReadAt + ?Sized>(src: &R) -> bool {
    let mut head = [0u8; 4];
    src.read_exact_at(0, &mut head).is_ok() && head == EBML_MAGIC
}

/// Reads the first video track of a Matroska or WebM file.
///
/// Generic so that unsized sources (`[u8]`, `dyn ReadAt`) can be passed directly.
pub fn read_matroska_video<R: ReadAt + ?Sized>(src: &R) -> Result<MatroskaVideo> {
    read_dyn(&src)
}

fn read_dyn(src: &dyn ReadAt) -> Result<MatroskaVideo> {
    let file_len = src.len().map_err(|source| MatroskaError::Io {
        offset: 0,
        len: 0,
        source,
    })?;
    let reader = Reader { src, file_len };
    if file_len < 4 {
        return Err(MatroskaError::NotMatroska(format!(
            "the file has {file_len} bytes, fewer than an EBML header"
        )));
    }
    let header = reader.header(0)?;
    if header.id != ID_EBML {
        return Err(MatroskaError::NotMatroska(format!(
            "the file starts with element ID {:#x}, not the EBML header",
            header.id
        )));
    }
    let size = header.known_size("EBML")?;
    if size > MAX_HEADER_SIZE {
        return Err(MatroskaError::TooLarge {
            element: "EBML",
            size,
            max: MAX_HEADER_SIZE,
        });
    }
    let payload = reader.payload(&header, "EBML", size)?;
    let doc_type = children(&payload, "EBML")
        .find_map(|c| match c {
            Ok((ID_DOC_TYPE, data)) => Some(Ok(text(data))),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
        .transpose()?
        .unwrap_or_else(|| "matroska".into());
    if doc_type != "matroska" && doc_type != "webm" {
        return Err(MatroskaError::NotMatroska(format!(
            "EBML DocType {doc_type:?} (expected matroska or webm)"
        )));
    }

    // The Segment follows the header (after any Void or other top-level elements).
    let mut offset = header.data_start + size;
    let mut segment = None;
    for _ in 0..16 {
        if offset >= file_len {
            break;
        }
        let h = reader.header(offset)?;
        if h.id == ID_SEGMENT {
            segment = Some(h);
            break;
        }
        offset = h.data_start.saturating_add(h.known_size("top-level")?);
    }
    let segment = segment.ok_or_else(|| {
        MatroskaError::NotMatroska(format!("no `Segment` element after the {doc_type} header"))
    })?;
    let segment_end = match segment.size {
        Some(size) => {
            let end = segment.data_start.saturating_add(size);
            if end > file_len {
                return Err(MatroskaError::Truncated {
                    element: "Segment",
                    offset: segment.offset,
                    size,
                    file_len,
                });
            }
            end
        }
        None => file_len,
    };

    let tracks = find_tracks(&reader, segment.data_start, segment_end)?;
    check_chain(&reader, segment.data_start, segment_end)?;
    let (codec_id, width, height, interlaced, count, codec_private) = first_video(&tracks)?;
    let Some(codec_id) = codec_id else {
        return Err(MatroskaError::NoVideoTrack { tracks: count });
    };
    Ok(MatroskaVideo {
        doc_type,
        codec: codec_of(&codec_id),
        codec_id,
        width,
        height,
        interlaced,
        codec_private,
    })
}

/// The payload of the segment's `Tracks` element: walked to directly, or through the
/// `SeekHead` when clusters come first.
fn find_tracks(reader: &Reader<'_>, start: u64, end: u64) -> Result<Vec<u8>> {
    let mut offset = start;
    let mut seek_tracks: Option<u64> = None;
    let mut walked = 0;
    while offset < end {
        if walked == MAX_ELEMENTS {
            return Err(MatroskaError::NoTracks { elements: walked });
        }
        walked += 1;
        let h = reader.header(offset)?;
        match h.id {
            ID_TRACKS => return tracks_payload(reader, &h),
            ID_SEEK_HEAD => {
                let size = h.known_size("SeekHead")?;
                if size <= MAX_TRACKS_SIZE {
                    let data = reader.payload(&h, "SeekHead", size)?;
                    seek_tracks = seek_tracks.or(tracks_position(&data)?.map(|p| start + p));
                }
            }
            ID_CLUSTER => break,
            _ => {}
        }
        let Some(size) = h.size else {
            break; // an unknown-size element other than the segment: only clusters do this
        };
        offset = h.data_start.saturating_add(size);
    }
    if let Some(at) = seek_tracks.filter(|&at| at < end) {
        let h = reader.header(at)?;
        if h.id == ID_TRACKS {
            return tracks_payload(reader, &h);
        }
    }
    Err(MatroskaError::NoTracks { elements: walked })
}

/// Walks the segment's children by their headers from `start` to `end`: each must be an
/// element a segment holds and end inside it. Stops early (without an error) at an element of
/// unknown size, which live-written files use for clusters and which cannot be skipped.
fn check_chain(reader: &Reader<'_>, start: u64, end: u64) -> Result<()> {
    let mut offset = start;
    for _ in 0..MAX_CHECKED {
        if offset >= end {
            return Ok(());
        }
        let corrupt = |found: u32| MatroskaError::Corrupt {
            found,
            offset,
            last_good: offset,
        };
        let h = match reader.header(offset) {
            Ok(h) => h,
            Err(MatroskaError::Malformed { .. }) => return Err(corrupt(0)),
            Err(e) => return Err(e),
        };
        if !SEGMENT_CHILDREN.contains(&h.id) {
            return Err(corrupt(h.id));
        }
        let Some(size) = h.size else {
            return Ok(());
        };
        let next = h.data_start.saturating_add(size);
        if next > end {
            return Err(MatroskaError::Truncated {
                element: if h.id == ID_CLUSTER {
                    "Cluster"
                } else {
                    "segment child"
                },
                offset,
                size,
                file_len: end,
            });
        }
        offset = next;
    }
    Ok(())
}

fn tracks_payload(reader: &Reader<'_>, h: &Header) -> Result<Vec<u8>> {
    let size = h.known_size("Tracks")?;
    if size > MAX_TRACKS_SIZE {
        return Err(MatroskaError::TooLarge {
            element: "Tracks",
            size,
            max: MAX_TRACKS_SIZE,
        });
    }
    reader.payload(h, "Tracks", size)
}

/// The `SeekPosition` (relative to the segment's data) of the `Tracks` element in a
/// `SeekHead` payload.
fn tracks_position(seek_head: &[u8]) -> Result<Option<u64>> {
    for seek in children(seek_head, "SeekHead") {
        let (id, data) = seek?;
        if id != ID_SEEK {
            continue;
        }
        let (mut target, mut position) = (None, None);
        for field in children(data, "Seek") {
            match field? {
                (ID_SEEK_ID, v) => target = Some(uint(v)),
                (ID_SEEK_POSITION, v) => position = Some(uint(v)),
                _ => {}
            }
        }
        if target == Some(u64::from(ID_TRACKS)) {
            return Ok(position);
        }
    }
    Ok(None)
}

type Video = (Option<String>, u32, u32, bool, usize, Vec<u8>);

/// The first video `TrackEntry`: (codec ID, width, height, interlaced, tracks seen, codec
/// private data).
fn first_video(tracks: &[u8]) -> Result<Video> {
    let mut count = 0;
    for entry in children(tracks, "Tracks") {
        let (id, data) = entry?;
        if id != ID_TRACK_ENTRY {
            continue;
        }
        count += 1;
        let (mut kind, mut codec_id, mut width, mut height, mut interlaced) =
            (0, String::new(), 0, 0, false);
        let mut private = Vec::new();
        for field in children(data, "TrackEntry") {
            match field? {
                (ID_TRACK_TYPE, v) => kind = uint(v),
                (ID_CODEC_ID, v) => codec_id = text(v),
                // Bounded by the `Tracks` element, itself at most MAX_TRACKS_SIZE.
                (ID_CODEC_PRIVATE, v) => private = v.to_vec(),
                (ID_VIDEO, video) => {
                    for f in children(video, "Video") {
                        match f? {
                            (ID_PIXEL_WIDTH, v) => width = clamp_u32(uint(v)),
                            (ID_PIXEL_HEIGHT, v) => height = clamp_u32(uint(v)),
                            (ID_FLAG_INTERLACED, v) => interlaced = uint(v) == 1,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        if kind == TRACK_TYPE_VIDEO {
            // Count the rest too, for the message if this one is the only video track.
            return Ok((Some(codec_id), width, height, interlaced, count, private));
        }
    }
    Ok((None, 0, 0, false, count, Vec::new()))
}

fn clamp_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// A big-endian unsigned integer element (at most 8 bytes are read).
fn uint(data: &[u8]) -> u64 {
    data.iter()
        .take(8)
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

/// A string element: up to its first NUL, lossily decoded, at most 256 bytes.
fn text(data: &[u8]) -> String {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    String::from_utf8_lossy(&data[..end.min(256)]).into_owned()
}

/// An element header read from the file.
struct Header {
    id: u32,
    /// Payload size; `None` for the reserved "unknown size".
    size: Option<u64>,
    /// Offset of the header and of the payload.
    offset: u64,
    data_start: u64,
}

impl Header {
    fn known_size(&self, element: &'static str) -> Result<u64> {
        self.size.ok_or_else(|| MatroskaError::Malformed {
            element,
            reason: format!("unknown size at offset {}", self.offset),
        })
    }
}

struct Reader<'a> {
    src: &'a dyn ReadAt,
    file_len: u64,
}

impl Reader<'_> {
    /// The element header at `offset` (ID and size, at most 12 bytes).
    fn header(&self, offset: u64) -> Result<Header> {
        let avail = self.file_len.saturating_sub(offset).min(12) as usize;
        let mut buf = [0u8; 12];
        self.src
            .read_exact_at(offset, &mut buf[..avail])
            .map_err(|source| MatroskaError::Io {
                offset,
                len: avail,
                source,
            })?;
        let truncated = || MatroskaError::Truncated {
            element: "element header",
            offset,
            size: 12,
            file_len: self.file_len,
        };
        let (id, id_len) = vint(&buf[..avail], true)
            .map_err(|reason| MatroskaError::Malformed {
                element: "element ID",
                reason: format!("{reason} at offset {offset}"),
            })?
            .ok_or_else(truncated)?;
        let (size, size_len) = vint(&buf[id_len..avail], false)
            .map_err(|reason| MatroskaError::Malformed {
                element: "element size",
                reason: format!("{reason} at offset {}", offset + id_len as u64),
            })?
            .ok_or_else(truncated)?;
        let unknown = size == (1u64 << (7 * size_len)) - 1;
        Ok(Header {
            id: id as u32,
            size: (!unknown).then_some(size),
            offset,
            data_start: offset + (id_len + size_len) as u64,
        })
    }

    /// The `size` bytes of `h`'s payload (the caller bounds `size`).
    fn payload(&self, h: &Header, element: &'static str, size: u64) -> Result<Vec<u8>> {
        if h.data_start.saturating_add(size) > self.file_len {
            return Err(MatroskaError::Truncated {
                element,
                offset: h.offset,
                size,
                file_len: self.file_len,
            });
        }
        let mut data = vec![0u8; size as usize];
        self.src
            .read_exact_at(h.data_start, &mut data)
            .map_err(|source| MatroskaError::Io {
                offset: h.data_start,
                len: data.len(),
                source,
            })?;
        Ok(data)
    }
}

/// An EBML variable-length integer at the start of `data`: (value, length). IDs keep their
/// length marker and are at most 4 bytes; sizes drop it and are at most 8. `Ok(None)` when
/// `data` ends inside it.
fn vint(data: &[u8], id: bool) -> std::result::Result<Option<(u64, usize)>, String> {
    let Some(&first) = data.first() else {
        return Ok(None);
    };
    let len = first.leading_zeros() as usize + 1;
    let max = if id { 4 } else { 8 };
    if len > max {
        return Err(format!(
            "{} starting with byte {first:#04x} (longer than {max} bytes)",
            if id { "an id" } else { "a size" }
        ));
    }
    let Some(bytes) = data.get(..len) else {
        return Ok(None);
    };
    let mut value = if id {
        u64::from(first)
    } else {
        u64::from(first) & ((1u64 << (8 - len)) - 1)
    };
    for &b in &bytes[1..] {
        value = (value << 8) | u64::from(b);
    }
    Ok(Some((value, len)))
}

/// The child elements of an in-memory master element: (id, payload). An element that claims
/// more than its parent holds is an error (and ends the iteration).
fn children<'a>(
    data: &'a [u8],
    parent: &'static str,
) -> impl Iterator<Item = Result<(u32, &'a [u8])>> + 'a {
    let mut pos = 0usize;
    let mut done = false;
    std::iter::from_fn(move || {
        if done || pos >= data.len() {
            return None;
        }
        let rest = &data[pos..];
        let parsed = vint(rest, true).and_then(|id| {
            let Some((id, id_len)) = id else {
                return Ok(None);
            };
            Ok(vint(&rest[id_len..], false)?.map(|(size, size_len)| (id, id_len + size_len, size)))
        });
        let item = match parsed {
            Ok(Some((id, head, size))) if size <= (rest.len() - head) as u64 => {
                let payload = &rest[head..head + size as usize];
                pos += head + size as usize;
                return Some(Ok((id as u32, payload)));
            }
            Ok(Some((id, head, size))) => format!(
                "child {id:#x} at offset {pos} claims {size} bytes but {} remain",
                rest.len() - head
            ),
            Ok(None) => format!("a child header at offset {pos} is cut off"),
            Err(reason) => format!("{reason} at offset {pos}"),
        };
        done = true;
        Some(Err(MatroskaError::Malformed {
            element: parent,
            reason: item,
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An element: ID bytes, an 8-byte size, the payload.
    fn el(id: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut v = id.to_vec();
        v.push(0x01);
        v.extend_from_slice(&(payload.len() as u64).to_be_bytes()[1..]);
        v.extend_from_slice(payload);
        v
    }

    fn file(doc_type: &str, tracks: &[u8], extra: usize) -> Vec<u8> {
        let mut f = el(&EBML_MAGIC, &el(&[0x42, 0x82], doc_type.as_bytes()));
        let mut segment = el(&[0x15, 0x49, 0xA9, 0x66], &[0; 10]); // Info
        segment.extend(el(&[0x16, 0x54, 0xAE, 0x6B], tracks));
        segment.extend(el(&[0x1F, 0x43, 0xB6, 0x75], &vec![0; extra]));
        f.extend(el(&[0x18, 0x53, 0x80, 0x67], &segment));
        f
    }

    fn track(kind: u8, codec: &str, video: &[u8]) -> Vec<u8> {
        let mut e = el(&[0xD7], &[1]);
        e.extend(el(&[0x83], &[kind]));
        e.extend(el(&[0x86], codec.as_bytes()));
        if !video.is_empty() {
            e.extend(el(&[0xE0], video));
        }
        el(&[0xAE], &e)
    }

    fn video(w: u16, h: u16, interlaced: u8) -> Vec<u8> {
        let mut v = el(&[0xB0], &w.to_be_bytes());
        v.extend(el(&[0xBA], &h.to_be_bytes()));
        v.extend(el(&[0x9A], &[interlaced]));
        v
    }

    #[test]
    fn finds_the_video_track_after_audio() {
        let mut tracks = track(2, "A_OPUS", &[]);
        tracks.extend(track(1, "V_VP9", &video(640, 360, 2)));
        let f = file("webm", &tracks, 100);
        let v = read_matroska_video(&f).unwrap();
        assert_eq!(v.doc_type, "webm");
        assert_eq!(v.container_name(), "WebM");
        assert_eq!(v.codec_id, "V_VP9");
        assert_eq!(v.codec, VideoCodec::Vp9);
        assert_eq!((v.width, v.height, v.interlaced), (640, 360, false));

        let f = file("matroska", &track(1, "V_MPEG4/ISO/AVC", &video(8, 8, 1)), 0);
        let v = read_matroska_video(&f).unwrap();
        assert_eq!(v.codec, VideoCodec::Avc);
        assert!(v.interlaced);
        assert_eq!(v.container_name(), "Matroska");
    }

    #[test]
    fn codec_ids() {
        assert_eq!(codec_of("V_MPEGH/ISO/HEVC"), VideoCodec::Hevc);
        assert_eq!(codec_of("V_AV1"), VideoCodec::Av1);
        assert_eq!(codec_of("V_MPEG4/ISO/ASP"), VideoCodec::Mpeg4);
        assert_eq!(codec_of("V_THEORA").name(), "THEO");
        assert_eq!(codec_of("X").name(), "X   ");
    }

    #[test]
    fn audio_only_is_no_video_track() {
        let f = file("webm", &track(2, "A_VORBIS", &[]), 10);
        assert_eq!(
            read_matroska_video(&f).unwrap_err().to_string(),
            "no video track among 1 tracks"
        );
    }

    #[test]
    fn truncated_segment() {
        let f = file("webm", &track(1, "V_VP9", &video(64, 64, 0)), 1000);
        let cut = &f[..f.len() - 500];
        let err = read_matroska_video(cut).unwrap_err();
        assert!(
            matches!(
                err,
                MatroskaError::Truncated {
                    element: "Segment",
                    ..
                }
            ),
            "{err}"
        );
        // Cut inside the EBML header.
        let err = read_matroska_video(&f[..10]).unwrap_err();
        assert!(matches!(err, MatroskaError::Truncated { .. }), "{err}");
    }

    #[test]
    fn damage_between_elements_is_corruption() {
        let f = file("webm", &track(1, "V_VP9", &video(64, 64, 0)), 100);
        // The cluster header (after the EBML header, the segment header, Info and Tracks) is
        // overwritten.
        let cluster = f
            .windows(4)
            .position(|w| w == [0x1F, 0x43, 0xB6, 0x75])
            .unwrap();
        let mut bad = f.clone();
        bad[cluster..cluster + 4].copy_from_slice(&[0x55, 0x66, 0x77, 0x88]);
        let err = read_matroska_video(&bad).unwrap_err();
        assert!(matches!(err, MatroskaError::Corrupt { .. }), "{err}");
        assert!(err.to_string().starts_with("corrupt: "), "{err}");
        // A cluster that claims more than the segment holds.
        let mut bad = f;
        bad[cluster + 11] = 0xff;
        let err = read_matroska_video(&bad).unwrap_err();
        assert!(
            matches!(
                err,
                MatroskaError::Truncated {
                    element: "Cluster",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn not_matroska() {
        for bad in [&b""[..], b"\x1a\x45", b"ftypisom", b"\x1a\x45\xdf\xa3\x80"] {
            let err = read_matroska_video(bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    MatroskaError::NotMatroska(_) | MatroskaError::Truncated { .. }
                ),
                "{bad:?}: {err}"
            );
        }
        let f = file("notmkv", &track(1, "V_VP9", &[]), 0);
        assert_eq!(
            read_matroska_video(&f).unwrap_err().to_string(),
            "not a matroska file: EBML DocType \"notmkv\" (expected matroska or webm)"
        );
    }

    #[test]
    fn mutations_never_panic() {
        let mut tracks = track(2, "A_OPUS", &[]);
        tracks.extend(track(1, "V_VP9", &video(640, 360, 2)));
        let mut f = file("webm", &tracks, 64);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let at = x as usize % f.len();
            let saved = f[at];
            f[at] = (x >> 40) as u8;
            let _ = read_matroska_video(&f);
            let _ = read_matroska_video(&f[..at]);
            f[at] = saved;
        }
    }
}
