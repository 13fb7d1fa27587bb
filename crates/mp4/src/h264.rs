//! H.264 bitstream helpers: avcC records, Annex B / AVCC framing, SPS/PPS/slice-header parsing,
//! access-unit grouping and POC-based display order.
//!
//! Everything here parses untrusted bytes: reads go through a bounded bit reader and every
//! failure is an [`H264Error`], never a panic. Allocations are proportional to the input.

use std::ops::Range;

/// Errors from parsing or framing H.264 data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum H264Error {
    /// The structure ended before a field could be read.
    #[error("truncated {what}: the data ends at byte {len}")]
    Truncated {
        /// The structure being read (`sps`, `avcC`, …).
        what: &'static str,
        /// Length of the data that was available.
        len: usize,
    },
    /// An exp-Golomb code had more leading zeros than a 32-bit value allows.
    #[error("invalid exp-golomb code in {what} ({zeros} leading zeros, expected <= 31)")]
    ExpGolomb {
        /// The structure being read.
        what: &'static str,
        /// Number of leading zero bits found.
        zeros: u32,
    },
    /// A field held a value outside its legal range.
    #[error("invalid {field} {value} (expected {min}..={max})")]
    OutOfRange {
        /// Field name as in the H.264 specification.
        field: &'static str,
        /// The value read.
        value: i64,
        /// Smallest legal value.
        min: i64,
        /// Largest legal value.
        max: i64,
    },
    /// A NAL unit of one type was given where another was expected.
    #[error("expected nal unit type {expected} but found {found}")]
    NalType {
        /// The type the parser needs.
        expected: u8,
        /// The type found in the NAL header.
        found: u8,
    },
    /// A length prefix in an AVCC sample points past the end of the sample.
    #[error(
        "nal length {length} at offset {offset} exceeds the {remaining} bytes left in the sample"
    )]
    NalLength {
        /// The length read from the prefix.
        length: u64,
        /// Offset of the prefix within the sample.
        offset: usize,
        /// Bytes after the prefix.
        remaining: usize,
    },
    /// A NAL unit is too large for a 4-byte length prefix or a 2-byte avcC length.
    #[error("nal unit of {len} bytes is too large (expected <= {max})")]
    NalTooLarge {
        /// Length of the NAL unit.
        len: usize,
        /// Largest encodable length.
        max: usize,
    },
    /// A slice refers to a parameter set that has not been seen.
    #[error("slice references missing {kind} {id}")]
    MissingParameterSet {
        /// `sps` or `pps`.
        kind: &'static str,
        /// The referenced id.
        id: u32,
    },
    /// The frame size after cropping is empty or overflows.
    #[error(
        "invalid frame size: {width_mbs}x{height_map_units} macroblocks with cropping {crop:?}"
    )]
    FrameSize {
        /// pic_width_in_mbs.
        width_mbs: u32,
        /// pic_height_in_map_units.
        height_map_units: u32,
        /// Crop offsets left, right, top, bottom.
        crop: [u32; 4],
    },
}

type Result<T> = std::result::Result<T, H264Error>;

/// NAL unit types used by this module.
pub mod nal_type {
    /// Coded slice of a non-IDR picture.
    pub const SLICE: u8 = 1;
    /// Coded slice data partition A.
    pub const SLICE_PART_A: u8 = 2;
    /// Coded slice of an IDR picture.
    pub const IDR: u8 = 5;
    /// Supplemental enhancement information.
    pub const SEI: u8 = 6;
    /// Sequence parameter set.
    pub const SPS: u8 = 7;
    /// Picture parameter set.
    pub const PPS: u8 = 8;
    /// Access unit delimiter.
    pub const AUD: u8 = 9;
    /// End of sequence.
    pub const END_OF_SEQUENCE: u8 = 10;
    /// End of stream.
    pub const END_OF_STREAM: u8 = 11;
    /// Filler data.
    pub const FILLER: u8 = 12;
}

/// The `nal_unit_type` of a NAL unit (0 for an empty slice).
pub fn nal_unit_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| b & 0x1f)
}

/// Profiles whose SPS carries chroma format, bit depth and scaling-matrix fields.
fn has_high_profile_fields(profile_idc: u8) -> bool {
    matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    )
}

/// Copies at most `limit` bytes of RBSP from a NAL payload, dropping emulation-prevention bytes.
fn unescape(payload: &[u8], limit: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len().min(limit));
    let mut zeros = 0;
    for &b in payload {
        if out.len() >= limit {
            break;
        }
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// MSB-first bit reader over RBSP bytes; every read is bounds-checked.
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8], what: &'static str) -> Self {
        Self { data, pos: 0, what }
    }

    fn bit(&mut self) -> Result<u32> {
        let byte = self.data.get(self.pos / 8).ok_or(H264Error::Truncated {
            what: self.what,
            len: self.data.len(),
        })?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Ok(u32::from(bit))
    }

    fn flag(&mut self) -> Result<bool> {
        Ok(self.bit()? == 1)
    }

    /// Reads `n <= 32` bits.
    fn bits(&mut self, n: u32) -> Result<u32> {
        let mut v: u64 = 0;
        for _ in 0..n.min(32) {
            v = (v << 1) | u64::from(self.bit()?);
        }
        Ok(v as u32)
    }

    fn ue(&mut self) -> Result<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return Err(H264Error::ExpGolomb {
                    what: self.what,
                    zeros,
                });
            }
        }
        let rest = u64::from(self.bits(zeros)?);
        // Fits: at most 2^32 - 2 for 31 leading zeros.
        Ok(((1u64 << zeros) - 1 + rest) as u32)
    }

    fn se(&mut self) -> Result<i32> {
        let k = i64::from(self.ue()?);
        let v = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        Ok(v as i32)
    }

    /// Reads an ue(v) and checks it against `0..=max`.
    fn ue_max(&mut self, field: &'static str, max: u32) -> Result<u32> {
        let v = self.ue()?;
        if v > max {
            return Err(out_of_range(field, v.into(), 0, max.into()));
        }
        Ok(v)
    }
}

fn out_of_range(field: &'static str, value: i64, min: i64, max: i64) -> H264Error {
    H264Error::OutOfRange {
        field,
        value,
        min,
        max,
    }
}

fn check_type(nal: &[u8], expected: &[u8]) -> Result<u8> {
    let found = nal_unit_type(nal);
    if nal.is_empty() || !expected.contains(&found) {
        return Err(H264Error::NalType {
            expected: expected.first().copied().unwrap_or(0),
            found,
        });
    }
    Ok(found)
}

/// A parsed `AVCDecoderConfigurationRecord` (the payload of an `avcC` box).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcConfig {
    /// AVCProfileIndication.
    pub profile: u8,
    /// profile_compatibility (the constraint-set flags byte).
    pub compat: u8,
    /// AVCLevelIndication.
    pub level: u8,
    /// Bytes in each NAL length prefix of a sample: 1, 2 or 4.
    pub nal_length_size: u8,
    /// Sequence parameter set NAL units (with their NAL header byte).
    pub sps: Vec<Vec<u8>>,
    /// Picture parameter set NAL units (with their NAL header byte).
    pub pps: Vec<Vec<u8>>,
}

impl AvcConfig {
    /// Parses an avcC payload. The High-profile trailer (chroma format, bit depths, SPS
    /// extensions) is optional, as many writers omit it, and is not kept.
    pub fn parse(data: &[u8]) -> Result<Self> {
        let trunc = || H264Error::Truncated {
            what: "avcC",
            len: data.len(),
        };
        let header = data.get(..6).ok_or_else(trunc)?;
        if header[0] != 1 {
            return Err(out_of_range(
                "avcC configurationVersion",
                header[0].into(),
                1,
                1,
            ));
        }
        let nal_length_size = (header[4] & 3) + 1;
        if nal_length_size == 3 {
            return Err(out_of_range("avcC lengthSizeMinusOne", 2, 0, 3));
        }
        let mut pos = 6;
        let read_sets = |count: usize, pos: &mut usize| -> Result<Vec<Vec<u8>>> {
            let mut sets = Vec::with_capacity(count);
            for _ in 0..count {
                let len_bytes = data.get(*pos..*pos + 2).ok_or_else(trunc)?;
                let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
                let set = data.get(*pos + 2..*pos + 2 + len).ok_or_else(trunc)?;
                sets.push(set.to_vec());
                *pos += 2 + len;
            }
            Ok(sets)
        };
        let sps = read_sets(usize::from(header[5] & 0x1f), &mut pos)?;
        let pps_count = usize::from(*data.get(pos).ok_or_else(trunc)?);
        pos += 1;
        let pps = read_sets(pps_count, &mut pos)?;
        Ok(Self {
            profile: header[1],
            compat: header[2],
            level: header[3],
            nal_length_size,
            sps,
            pps,
        })
    }

    /// Builds a configuration with 4-byte NAL lengths from parameter sets found in a stream;
    /// profile, compatibility and level come from the first SPS.
    pub fn from_parameter_sets(sps: Vec<Vec<u8>>, pps: Vec<Vec<u8>>) -> Result<Self> {
        let first = sps.first().map(Vec::as_slice).unwrap_or_default();
        check_type(first, &[nal_type::SPS])?;
        let bytes = first.get(1..4).ok_or(H264Error::Truncated {
            what: "sps",
            len: first.len(),
        })?;
        Ok(Self {
            profile: bytes[0],
            compat: bytes[1],
            level: bytes[2],
            nal_length_size: 4,
            sps,
            pps,
        })
    }

    /// Serialises the record as an avcC payload. For profiles 100, 110, 122 and 144 the
    /// chroma-format and bit-depth trailer is written from the first SPS (4:2:0 8-bit if it
    /// cannot be parsed). Fails if a count or length does not fit its field.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        if self.sps.len() > 31 {
            return Err(out_of_range(
                "avcC numOfSequenceParameterSets",
                self.sps.len() as i64,
                0,
                31,
            ));
        }
        if self.pps.len() > 255 {
            return Err(out_of_range(
                "avcC numOfPictureParameterSets",
                self.pps.len() as i64,
                0,
                255,
            ));
        }
        if !matches!(self.nal_length_size, 1 | 2 | 4) {
            return Err(out_of_range(
                "nal_length_size",
                self.nal_length_size.into(),
                1,
                4,
            ));
        }
        let mut out = vec![
            1,
            self.profile,
            self.compat,
            self.level,
            0xfc | (self.nal_length_size - 1),
            0xe0 | self.sps.len() as u8,
        ];
        let write_sets = |sets: &[Vec<u8>], out: &mut Vec<u8>| -> Result<()> {
            for set in sets {
                let len = u16::try_from(set.len()).map_err(|_| H264Error::NalTooLarge {
                    len: set.len(),
                    max: usize::from(u16::MAX),
                })?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(set);
            }
            Ok(())
        };
        write_sets(&self.sps, &mut out)?;
        out.push(self.pps.len() as u8);
        write_sets(&self.pps, &mut out)?;
        if matches!(self.profile, 100 | 110 | 122 | 144) {
            let (chroma, luma, chroma_depth) = self
                .sps
                .first()
                .and_then(|s| Sps::parse(s).ok())
                .map_or((1, 8, 8), |s| {
                    (
                        s.chroma_format_idc as u8,
                        s.bit_depth_luma,
                        s.bit_depth_chroma,
                    )
                });
            out.extend_from_slice(&[
                0xfc | (chroma & 3),
                0xf8 | (luma.saturating_sub(8) & 7),
                0xf8 | (chroma_depth.saturating_sub(8) & 7),
                0,
            ]);
        }
        Ok(out)
    }
}

/// Byte ranges of the NAL units of an Annex B stream, without start codes. Accepts 3- and
/// 4-byte start codes; bytes before the first start code and trailing zero bytes (which
/// belong to no NAL unit) are skipped, and empty NAL units are dropped.
pub fn annexb_nal_ranges(data: &[u8]) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut next = find_start_code(data, 0);
    std::iter::from_fn(move || {
        loop {
            let start = next?;
            let following = find_start_code(data, start);
            next = following;
            // The next start code's range begins after its `00 00 01`; the NAL ends before it.
            let mut end = following.map_or(data.len(), |f| f - 3);
            while end > start && data[end - 1] == 0 {
                end -= 1;
            }
            if end > start {
                return Some(start..end);
            }
        }
    })
}

/// Returns the index just after the next `00 00 01` at or after `from`.
fn find_start_code(data: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 2 < data.len() {
        // Skip quickly: a start code needs data[i + 2] == 1 and two zeros before it.
        match data[i + 2] {
            1 if data[i] == 0 && data[i + 1] == 0 => return Some(i + 3),
            0 | 1 => i += 1,
            _ => i += 3,
        }
    }
    None
}

/// NAL units of an Annex B stream (see [`annexb_nal_ranges`]).
pub fn split_annexb(data: &[u8]) -> impl Iterator<Item = &[u8]> + '_ {
    annexb_nal_ranges(data).map(move |r| &data[r])
}

/// Appends the NAL units of an AVCC sample (length-prefixed) to `out` in Annex B form with
/// 4-byte start codes. Fails on a prefix length other than 1..=4 or a length beyond the sample.
pub fn avcc_to_annexb(sample: &[u8], nal_length_size: u8, out: &mut Vec<u8>) -> Result<()> {
    for nal in avcc_nals(sample, nal_length_size) {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal?);
    }
    Ok(())
}

/// The NAL units of an AVCC sample; yields an error (then stops) on a bad length.
pub fn avcc_nals(sample: &[u8], nal_length_size: u8) -> impl Iterator<Item = Result<&[u8]>> + '_ {
    let mut pos = 0usize;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || pos >= sample.len() {
            return None;
        }
        failed = true;
        let n = usize::from(nal_length_size);
        if !(1..=4).contains(&n) {
            return Some(Err(out_of_range("nal_length_size", n as i64, 1, 4)));
        }
        let Some(prefix) = sample.get(pos..pos + n) else {
            return Some(Err(H264Error::NalLength {
                length: n as u64,
                offset: pos,
                remaining: sample.len() - pos,
            }));
        };
        let length = prefix
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        let body = pos + n;
        let remaining = sample.len() - body;
        if length > remaining as u64 {
            return Some(Err(H264Error::NalLength {
                length,
                offset: pos,
                remaining,
            }));
        }
        let end = body + length as usize;
        pos = end;
        failed = false;
        Some(Ok(&sample[body..end]))
    })
}

/// Appends one NAL unit to `out` with a 4-byte big-endian length prefix.
pub fn write_avcc_nal(nal: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let len = u32::try_from(nal.len()).map_err(|_| H264Error::NalTooLarge {
        len: nal.len(),
        max: u32::MAX as usize,
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(nal);
    Ok(())
}

/// Converts an Annex B stream to AVCC with 4-byte length prefixes, appending to `out`.
pub fn annexb_to_avcc(annexb: &[u8], out: &mut Vec<u8>) -> Result<()> {
    split_annexb(annexb).try_for_each(|nal| write_avcc_nal(nal, out))
}

/// The fields of a sequence parameter set needed for framing, slice headers and sizing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sps {
    /// profile_idc.
    pub profile_idc: u8,
    /// constraint_set0..5 flags and reserved bits (the byte after profile_idc).
    pub constraint_flags: u8,
    /// level_idc.
    pub level_idc: u8,
    /// seq_parameter_set_id (0..=31).
    pub id: u32,
    /// chroma_format_idc (1 = 4:2:0 when absent).
    pub chroma_format_idc: u32,
    /// separate_colour_plane_flag.
    pub separate_colour_plane: bool,
    /// Luma bit depth (8..=14).
    pub bit_depth_luma: u8,
    /// Chroma bit depth (8..=14).
    pub bit_depth_chroma: u8,
    /// log2_max_frame_num (4..=16).
    pub log2_max_frame_num: u8,
    /// pic_order_cnt_type (0..=2).
    pub pic_order_cnt_type: u8,
    /// log2_max_pic_order_cnt_lsb (4..=16) for POC type 0, else 0.
    pub log2_max_poc_lsb: u8,
    /// delta_pic_order_always_zero_flag (POC type 1 only).
    pub delta_pic_order_always_zero: bool,
    /// max_num_ref_frames.
    pub max_num_ref_frames: u32,
    /// frame_mbs_only_flag.
    pub frame_mbs_only: bool,
    /// Displayed width in pixels after cropping.
    pub width: u32,
    /// Displayed height in pixels after cropping.
    pub height: u32,
}

impl Sps {
    /// Parses an SPS NAL unit (including its header byte). Parsing stops after the
    /// cropping fields; the VUI is not read.
    pub fn parse(nal: &[u8]) -> Result<Self> {
        check_type(nal, &[nal_type::SPS])?;
        let rbsp = unescape(&nal[1..], nal.len());
        let mut r = BitReader::new(&rbsp, "sps");
        let profile_idc = r.bits(8)? as u8;
        let constraint_flags = r.bits(8)? as u8;
        let level_idc = r.bits(8)? as u8;
        let id = r.ue_max("seq_parameter_set_id", 31)?;
        let mut chroma_format_idc = 1;
        let mut separate_colour_plane = false;
        let mut bit_depth_luma = 8;
        let mut bit_depth_chroma = 8;
        if has_high_profile_fields(profile_idc) {
            chroma_format_idc = r.ue_max("chroma_format_idc", 3)?;
            if chroma_format_idc == 3 {
                separate_colour_plane = r.flag()?;
            }
            bit_depth_luma = 8 + r.ue_max("bit_depth_luma_minus8", 6)? as u8;
            bit_depth_chroma = 8 + r.ue_max("bit_depth_chroma_minus8", 6)? as u8;
            let _qpprime_y_zero_transform_bypass = r.flag()?;
            if r.flag()? {
                let lists = if chroma_format_idc == 3 { 12 } else { 8 };
                for i in 0..lists {
                    if r.flag()? {
                        skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                    }
                }
            }
        }
        let log2_max_frame_num = 4 + r.ue_max("log2_max_frame_num_minus4", 12)? as u8;
        let pic_order_cnt_type = r.ue_max("pic_order_cnt_type", 2)? as u8;
        let mut log2_max_poc_lsb = 0;
        let mut delta_pic_order_always_zero = false;
        match pic_order_cnt_type {
            0 => log2_max_poc_lsb = 4 + r.ue_max("log2_max_pic_order_cnt_lsb_minus4", 12)? as u8,
            1 => {
                delta_pic_order_always_zero = r.flag()?;
                let _offset_for_non_ref_pic = r.se()?;
                let _offset_for_top_to_bottom_field = r.se()?;
                let cycle = r.ue_max("num_ref_frames_in_pic_order_cnt_cycle", 255)?;
                for _ in 0..cycle {
                    r.se()?;
                }
            }
            _ => {}
        }
        let max_num_ref_frames = r.ue_max("max_num_ref_frames", 16)?;
        let _gaps_in_frame_num_allowed = r.flag()?;
        // 1023 macroblocks = 16368 pixels, beyond any level's limit.
        let width_mbs = r.ue_max("pic_width_in_mbs_minus1", 1022)? + 1;
        let height_map_units = r.ue_max("pic_height_in_map_units_minus1", 1022)? + 1;
        let frame_mbs_only = r.flag()?;
        if !frame_mbs_only {
            let _mb_adaptive_frame_field = r.flag()?;
        }
        let _direct_8x8_inference = r.flag()?;
        let mut crop = [0u32; 4];
        if r.flag()? {
            for c in &mut crop {
                *c = r.ue()?;
            }
        }
        let field_factor: u32 = if frame_mbs_only { 1 } else { 2 };
        let chroma_array_type = if separate_colour_plane {
            0
        } else {
            chroma_format_idc
        };
        let (crop_x, crop_y): (u32, u32) = match chroma_array_type {
            0 => (1, field_factor),
            1 => (2, 2 * field_factor),
            2 => (2, field_factor),
            _ => (1, field_factor),
        };
        let size_error = || H264Error::FrameSize {
            width_mbs,
            height_map_units,
            crop,
        };
        let crop_w = u64::from(crop[0]) + u64::from(crop[1]);
        let crop_h = u64::from(crop[2]) + u64::from(crop[3]);
        let coded_w = u64::from(width_mbs) * 16;
        let coded_h = u64::from(height_map_units) * 16 * u64::from(field_factor);
        let width = coded_w
            .checked_sub(crop_w * u64::from(crop_x))
            .filter(|&w| w > 0)
            .ok_or_else(size_error)?;
        let height = coded_h
            .checked_sub(crop_h * u64::from(crop_y))
            .filter(|&h| h > 0)
            .ok_or_else(size_error)?;
        Ok(Self {
            profile_idc,
            constraint_flags,
            level_idc,
            id,
            chroma_format_idc,
            separate_colour_plane,
            bit_depth_luma,
            bit_depth_chroma,
            log2_max_frame_num,
            pic_order_cnt_type,
            log2_max_poc_lsb,
            delta_pic_order_always_zero,
            max_num_ref_frames,
            frame_mbs_only,
            width: width as u32,
            height: height as u32,
        })
    }
}

fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<()> {
    let mut last = 8i32;
    let mut next = 8i32;
    for _ in 0..size {
        if next != 0 {
            let delta = r.se()?;
            if !(-128..=127).contains(&delta) {
                return Err(out_of_range("delta_scale", delta.into(), -128, 127));
            }
            next = (last + delta + 256) % 256;
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

/// The leading fields of a picture parameter set, enough to parse slice headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pps {
    /// pic_parameter_set_id (0..=255).
    pub id: u32,
    /// seq_parameter_set_id (0..=31).
    pub sps_id: u32,
    /// entropy_coding_mode_flag (CABAC).
    pub entropy_coding_mode: bool,
    /// bottom_field_pic_order_in_frame_present_flag.
    pub bottom_field_pic_order_in_frame_present: bool,
}

impl Pps {
    /// Parses a PPS NAL unit (including its header byte) up to
    /// bottom_field_pic_order_in_frame_present_flag.
    pub fn parse(nal: &[u8]) -> Result<Self> {
        check_type(nal, &[nal_type::PPS])?;
        let rbsp = unescape(&nal[1..], 16);
        let mut r = BitReader::new(&rbsp, "pps");
        let id = r.ue_max("pic_parameter_set_id", 255)?;
        let sps_id = r.ue_max("seq_parameter_set_id", 31)?;
        let entropy_coding_mode = r.flag()?;
        let bottom_field_pic_order_in_frame_present = r.flag()?;
        Ok(Self {
            id,
            sps_id,
            entropy_coding_mode,
            bottom_field_pic_order_in_frame_present,
        })
    }
}

/// The leading fields of a slice header, up to the picture order count fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceHeader {
    /// nal_unit_type (1, 2 or 5).
    pub nal_unit_type: u8,
    /// nal_ref_idc (0 for a non-reference picture).
    pub nal_ref_idc: u8,
    /// first_mb_in_slice.
    pub first_mb_in_slice: u32,
    /// slice_type (0..=9; modulo 5: 0 P, 1 B, 2 I, 3 SP, 4 SI).
    pub slice_type: u32,
    /// pic_parameter_set_id.
    pub pps_id: u32,
    /// frame_num.
    pub frame_num: u32,
    /// field_pic_flag.
    pub field_pic: bool,
    /// bottom_field_flag.
    pub bottom_field: bool,
    /// True for an IDR slice (nal_unit_type 5).
    pub idr: bool,
    /// idr_pic_id for IDR slices.
    pub idr_pic_id: Option<u32>,
    /// pic_order_cnt_lsb for POC type 0.
    pub pic_order_cnt_lsb: Option<u32>,
    /// delta_pic_order_cnt_bottom for POC type 0 frames when the PPS says it is present.
    pub delta_pic_order_cnt_bottom: Option<i32>,
}

/// Slice headers are short; this many RBSP bytes always hold the fields parsed here.
const SLICE_HEADER_PREFIX: usize = 96;

impl SliceHeader {
    /// Parses the slice header of a coded slice NAL unit (types 1, 2, 5) using its SPS and PPS.
    /// Fails if the slice names a PPS other than `pps` or `pps` names an SPS other than `sps`.
    pub fn parse(nal: &[u8], sps: &Sps, pps: &Pps) -> Result<Self> {
        Self::parse_with(nal, |pps_id| {
            if pps_id != pps.id {
                return Err(H264Error::MissingParameterSet {
                    kind: "pps",
                    id: pps_id,
                });
            }
            if pps.sps_id != sps.id {
                return Err(H264Error::MissingParameterSet {
                    kind: "sps",
                    id: pps.sps_id,
                });
            }
            Ok((sps, pps))
        })
    }

    fn parse_with<'p>(
        nal: &[u8],
        lookup: impl FnOnce(u32) -> Result<(&'p Sps, &'p Pps)>,
    ) -> Result<Self> {
        let nal_unit_type = check_type(
            nal,
            &[nal_type::SLICE, nal_type::SLICE_PART_A, nal_type::IDR],
        )?;
        let nal_ref_idc = (nal[0] >> 5) & 3;
        let rbsp = unescape(&nal[1..], SLICE_HEADER_PREFIX);
        let mut r = BitReader::new(&rbsp, "slice header");
        let first_mb_in_slice = r.ue()?;
        let slice_type = r.ue_max("slice_type", 9)?;
        let pps_id = r.ue_max("pic_parameter_set_id", 255)?;
        let (sps, pps) = lookup(pps_id)?;
        if sps.separate_colour_plane {
            let _colour_plane_id = r.bits(2)?;
        }
        let frame_num = r.bits(u32::from(sps.log2_max_frame_num))?;
        let (mut field_pic, mut bottom_field) = (false, false);
        if !sps.frame_mbs_only {
            field_pic = r.flag()?;
            if field_pic {
                bottom_field = r.flag()?;
            }
        }
        let idr = nal_unit_type == nal_type::IDR;
        let idr_pic_id = if idr {
            Some(r.ue_max("idr_pic_id", 65535)?)
        } else {
            None
        };
        let mut pic_order_cnt_lsb = None;
        let mut delta_pic_order_cnt_bottom = None;
        if sps.pic_order_cnt_type == 0 {
            pic_order_cnt_lsb = Some(r.bits(u32::from(sps.log2_max_poc_lsb))?);
            if pps.bottom_field_pic_order_in_frame_present && !field_pic {
                delta_pic_order_cnt_bottom = Some(r.se()?);
            }
        }
        Ok(Self {
            nal_unit_type,
            nal_ref_idc,
            first_mb_in_slice,
            slice_type,
            pps_id,
            frame_num,
            field_pic,
            bottom_field,
            idr,
            idr_pic_id,
            pic_order_cnt_lsb,
            delta_pic_order_cnt_bottom,
        })
    }
}

/// One access unit (one coded picture with its non-VCL NAL units) of an Annex B stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    /// Byte ranges of its NAL units in the stream given to [`access_units`], without start codes.
    pub nals: Vec<Range<usize>>,
    /// True if the picture is an IDR picture.
    pub idr: bool,
    /// True if the picture is a reference picture (nal_ref_idc != 0).
    pub reference: bool,
    /// slice_type of the first slice (0..=9).
    pub slice_type: u32,
    /// frame_num of the first slice.
    pub frame_num: u32,
    /// pic_order_cnt_lsb of the first slice (POC type 0 only).
    pub poc_lsb: Option<u32>,
    /// pic_order_cnt_type of the active SPS.
    pub poc_type: u8,
    /// log2_max_pic_order_cnt_lsb of the active SPS (POC type 0 only, else 0).
    pub log2_max_poc_lsb: u8,
    /// True if the unit contains an SPS and a PPS NAL unit.
    pub has_parameter_sets: bool,
}

impl AccessUnit {
    /// The NAL units of this access unit within `stream` (the same bytes given to
    /// [`access_units`]); ranges outside `stream` are skipped.
    pub fn nal_units<'a>(&'a self, stream: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.nals.iter().filter_map(move |r| stream.get(r.clone()))
    }

    /// Appends the unit as an AVCC sample with 4-byte length prefixes. Access unit
    /// delimiters are always dropped; SPS/PPS are dropped unless `keep_parameter_sets`
    /// (an `avc1` track carries them in its avcC instead). Returns the bytes written.
    pub fn write_avcc(
        &self,
        stream: &[u8],
        keep_parameter_sets: bool,
        out: &mut Vec<u8>,
    ) -> Result<usize> {
        let before = out.len();
        for nal in self.nal_units(stream) {
            match nal_unit_type(nal) {
                nal_type::AUD => {}
                nal_type::SPS | nal_type::PPS if !keep_parameter_sets => {}
                _ => write_avcc_nal(nal, out)?,
            }
        }
        Ok(out.len() - before)
    }
}

/// What distinguishes one picture from the next when first_mb_in_slice alone does not.
#[derive(PartialEq, Eq)]
struct PictureKey {
    pps_id: u32,
    frame_num: u32,
    field_pic: bool,
    bottom_field: bool,
    reference: bool,
    idr: bool,
    idr_pic_id: Option<u32>,
    poc_lsb: Option<u32>,
}

/// Groups the NAL units of an Annex B stream into access units, in decode order.
///
/// A new unit starts at an access unit delimiter, at SEI/SPS/PPS (types 6–8, 14–18) that
/// follow a slice, or at a slice starting a new picture (first_mb_in_slice 0 or a change in
/// frame_num, PPS, POC, IDR id or reference flag). SPS and PPS are tracked as they appear;
/// a slice referring to one not yet seen is an error. Non-VCL units left after the last
/// slice join the last unit. Field pictures are one unit per field.
pub fn access_units(annexb: &[u8]) -> Result<Vec<AccessUnit>> {
    let mut sps_table: Vec<Option<Sps>> = vec![None; 32];
    let mut pps_table: Vec<Option<Pps>> = vec![None; 256];
    let mut units: Vec<AccessUnit> = Vec::new();
    let mut pending: Vec<Range<usize>> = Vec::new();
    let mut force_new = true;
    let mut prev_key: Option<PictureKey> = None;
    for range in annexb_nal_ranges(annexb) {
        let nal = &annexb[range.clone()];
        match nal_unit_type(nal) {
            nal_type::AUD => {
                force_new = true;
                pending.push(range);
            }
            t @ (nal_type::SEI | nal_type::SPS | nal_type::PPS | 14..=18) => {
                if t == nal_type::SPS {
                    let sps = Sps::parse(nal)?;
                    let id = sps.id as usize;
                    sps_table[id] = Some(sps);
                } else if t == nal_type::PPS {
                    let pps = Pps::parse(nal)?;
                    let id = pps.id as usize;
                    pps_table[id] = Some(pps);
                }
                pending.push(range);
            }
            nal_type::SLICE | nal_type::SLICE_PART_A | nal_type::IDR => {
                let mut active: Option<&Sps> = None;
                let header = SliceHeader::parse_with(nal, |pps_id| {
                    let pps = pps_table[pps_id as usize].as_ref().ok_or(
                        H264Error::MissingParameterSet {
                            kind: "pps",
                            id: pps_id,
                        },
                    )?;
                    let sps = sps_table
                        .get(pps.sps_id as usize)
                        .and_then(Option::as_ref)
                        .ok_or(H264Error::MissingParameterSet {
                            kind: "sps",
                            id: pps.sps_id,
                        })?;
                    active = Some(sps);
                    Ok((sps, pps))
                })?;
                let Some(sps) = active else {
                    continue;
                };
                let key = PictureKey {
                    pps_id: header.pps_id,
                    frame_num: header.frame_num,
                    field_pic: header.field_pic,
                    bottom_field: header.bottom_field,
                    reference: header.nal_ref_idc != 0,
                    idr: header.idr,
                    idr_pic_id: header.idr_pic_id,
                    poc_lsb: header.pic_order_cnt_lsb,
                };
                let new_picture = force_new
                    || header.first_mb_in_slice == 0
                    || prev_key.as_ref() != Some(&key)
                    || units.is_empty();
                if new_picture {
                    let mut nals = std::mem::take(&mut pending);
                    let has_sps = nals
                        .iter()
                        .any(|r| nal_unit_type(&annexb[r.clone()]) == nal_type::SPS);
                    let has_pps = nals
                        .iter()
                        .any(|r| nal_unit_type(&annexb[r.clone()]) == nal_type::PPS);
                    nals.push(range);
                    units.push(AccessUnit {
                        nals,
                        idr: header.idr,
                        reference: header.nal_ref_idc != 0,
                        slice_type: header.slice_type,
                        frame_num: header.frame_num,
                        poc_lsb: header.pic_order_cnt_lsb,
                        poc_type: sps.pic_order_cnt_type,
                        log2_max_poc_lsb: sps.log2_max_poc_lsb,
                        has_parameter_sets: has_sps && has_pps,
                    });
                } else if let Some(last) = units.last_mut() {
                    last.nals.append(&mut pending);
                    last.nals.push(range);
                }
                force_new = false;
                prev_key = Some(key);
            }
            _ => {
                // End of sequence/stream, filler, partitions B/C and others belong to the
                // current picture unless a new unit has already begun.
                match units.last_mut() {
                    Some(last) if pending.is_empty() => last.nals.push(range),
                    _ => pending.push(range),
                }
            }
        }
    }
    if let Some(last) = units.last_mut() {
        last.nals.append(&mut pending);
    }
    Ok(units)
}

/// For each access unit in decode order, its presentation index.
///
/// POC type 0 uses pic_order_cnt_lsb with the standard MSB wrap logic (8.2.1.1), reset at
/// each IDR; the presentation index is the number of pictures in earlier IDR periods plus
/// the rank of the POC within its own period (ties keep decode order). POC types 1 and 2
/// are taken to be in decode order (exact for type 2; x264 uses type 1 never). Memory
/// management operation 5 is not tracked. The result is a permutation of `0..aus.len()`.
pub fn display_order(aus: &[AccessUnit]) -> Vec<u32> {
    let mut out = vec![0u32; aus.len()];
    let mut pocs: Vec<i64> = Vec::with_capacity(aus.len());
    let mut prev_msb = 0i64;
    let mut prev_lsb = 0i64;
    for (i, au) in aus.iter().enumerate() {
        if au.idr {
            prev_msb = 0;
            prev_lsb = 0;
        }
        let poc = match (au.poc_type, au.poc_lsb) {
            (0, Some(lsb)) => {
                let max = 1i64 << au.log2_max_poc_lsb.min(16);
                let lsb = i64::from(lsb);
                let msb = if lsb < prev_lsb && prev_lsb - lsb >= max / 2 {
                    prev_msb + max
                } else if lsb > prev_lsb && lsb - prev_lsb > max / 2 {
                    prev_msb - max
                } else {
                    prev_msb
                };
                if au.reference {
                    prev_msb = msb;
                    prev_lsb = lsb;
                }
                msb + lsb
            }
            // Decode order: later units sort after earlier ones in the period.
            _ => i64::MAX / 2 + i as i64,
        };
        pocs.push(poc);
    }
    let mut start = 0;
    while start < aus.len() {
        let end = (start + 1..aus.len())
            .find(|&j| aus[j].idr)
            .unwrap_or(aus.len());
        let mut period: Vec<usize> = (start..end).collect();
        period.sort_by_key(|&j| (pocs[j], j));
        for (rank, j) in period.into_iter().enumerate() {
            out[j] = (start + rank) as u32;
        }
        start = end;
    }
    out
}

/// Frames of reordering delay: the largest `decode index - presentation index` (0 without
/// B-frames). With frame duration `d`, `dts = (i - delay) * d` and `pts = display[i] * d`
/// give non-negative composition offsets `(display[i] + delay - i) * d`.
pub fn reorder_delay(display: &[u32]) -> u32 {
    display
        .iter()
        .enumerate()
        .map(|(i, &p)| (i as i64 - i64::from(p)).max(0))
        .max()
        .unwrap_or(0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes bits MSB-first, for building test parameter sets.
    #[derive(Default)]
    struct BitWriter {
        bytes: Vec<u8>,
        bits: usize,
    }

    impl BitWriter {
        fn bit(&mut self, b: u32) {
            if self.bits.is_multiple_of(8) {
                self.bytes.push(0);
            }
            if b != 0 {
                *self.bytes.last_mut().unwrap() |= 0x80 >> (self.bits % 8);
            }
            self.bits += 1;
        }
        fn bits(&mut self, v: u32, n: u32) {
            for i in (0..n).rev() {
                self.bit((v >> i) & 1);
            }
        }
        fn ue(&mut self, v: u32) {
            let v1 = u64::from(v) + 1;
            let len = 64 - v1.leading_zeros();
            self.bits(0, len - 1);
            for i in (0..len).rev() {
                self.bit(((v1 >> i) & 1) as u32);
            }
        }
        fn finish(mut self) -> Vec<u8> {
            self.bit(1);
            self.bytes
        }
    }

    /// A High-profile SPS for 1080x1920 (coded 1088 wide) with a scaling matrix.
    fn high_sps() -> Vec<u8> {
        let mut w = BitWriter::default();
        w.bits(100, 8);
        w.bits(0, 8);
        w.bits(40, 8);
        w.ue(0); // sps id
        w.ue(1); // chroma 4:2:0
        w.ue(0);
        w.ue(0);
        w.bit(0);
        w.bit(1); // seq_scaling_matrix_present
        w.bit(1); // list 0 present; delta -8 (ue 16) makes next_scale 0, ending the list
        w.ue(16);
        for _ in 1..8 {
            w.bit(0);
        }
        w.ue(0); // log2_max_frame_num_minus4
        w.ue(0); // poc type 0
        w.ue(2); // log2_max_poc_lsb_minus4
        w.ue(4);
        w.bit(0);
        w.ue(1088 / 16 - 1);
        w.ue(1920 / 16 - 1);
        w.bit(1); // frame_mbs_only
        w.bit(1);
        w.bit(1); // cropping: 4 chroma units (8 luma columns) on the right
        w.ue(0);
        w.ue(4);
        w.ue(0);
        w.ue(0);
        let mut nal = vec![0x67];
        nal.extend(w.finish());
        nal
    }

    #[test]
    fn sps_with_scaling_matrix() {
        let sps = Sps::parse(&high_sps()).unwrap();
        assert_eq!((sps.width, sps.height), (1080, 1920));
        assert_eq!(sps.profile_idc, 100);
        assert_eq!(sps.log2_max_poc_lsb, 6);
        assert_eq!(sps.log2_max_frame_num, 4);
        assert_eq!((sps.bit_depth_luma, sps.chroma_format_idc), (8, 1));
    }

    #[test]
    fn sps_cropping() {
        let mut w = BitWriter::default();
        w.bits(66, 8);
        w.bits(0xc0, 8);
        w.bits(30, 8);
        w.ue(0);
        w.ue(0);
        w.ue(2); // poc type 2
        w.ue(1);
        w.bit(0);
        w.ue(1920 / 16 - 1);
        w.ue(1088 / 16 - 1);
        w.bit(1);
        w.bit(1);
        w.bit(1);
        w.ue(0);
        w.ue(0);
        w.ue(0);
        w.ue(4); // 4 * 2 = 8 rows cropped
        let mut nal = vec![0x67];
        nal.extend(w.finish());
        let sps = Sps::parse(&nal).unwrap();
        assert_eq!((sps.width, sps.height), (1920, 1080));
        assert_eq!(sps.pic_order_cnt_type, 2);
        assert_eq!(sps.chroma_format_idc, 1);
    }

    #[test]
    fn emulation_prevention_removed() {
        assert_eq!(
            unescape(&[0, 0, 3, 1, 0, 0, 3, 0, 3], 100),
            vec![0, 0, 1, 0, 0, 0, 3]
        );
    }

    #[test]
    fn annexb_split_start_codes_and_trailing_zeros() {
        let data = [
            0xff, 0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 0, 1, 0x65, 4, 0, 0,
        ];
        let nals: Vec<&[u8]> = split_annexb(&data).collect();
        assert_eq!(nals, vec![&[0x67, 1, 2][..], &[0x68, 3], &[0x65, 4]]);
        assert_eq!(split_annexb(&[0, 0, 1]).count(), 0);
        assert_eq!(split_annexb(&[]).count(), 0);
    }

    #[test]
    fn avcc_round_trip_and_bad_lengths() {
        let mut avcc = Vec::new();
        annexb_to_avcc(&[0, 0, 1, 0x65, 1, 2, 0, 0, 0, 1, 0x06, 5], &mut avcc).unwrap();
        assert_eq!(avcc, [0, 0, 0, 3, 0x65, 1, 2, 0, 0, 0, 2, 0x06, 5]);
        let mut annexb = Vec::new();
        avcc_to_annexb(&avcc, 4, &mut annexb).unwrap();
        assert_eq!(annexb, [0, 0, 0, 1, 0x65, 1, 2, 0, 0, 0, 1, 0x06, 5]);
        let err = avcc_to_annexb(&[0, 0, 0, 9, 1], 4, &mut annexb).unwrap_err();
        assert_eq!(
            err.to_string(),
            "nal length 9 at offset 0 exceeds the 1 bytes left in the sample"
        );
        assert!(avcc_to_annexb(&[0, 0], 4, &mut annexb).is_err());
        assert!(avcc_to_annexb(&[0, 0], 0, &mut annexb).is_err());
    }

    #[test]
    fn avcc_config_round_trip_with_high_trailer() {
        let sps = high_sps();
        let config = AvcConfig {
            profile: 100,
            compat: 0,
            level: 40,
            nal_length_size: 4,
            sps: vec![sps],
            pps: vec![vec![0x68, 0xee, 0x3c, 0x80]],
        };
        let bytes = config.to_bytes().unwrap();
        assert_eq!(&bytes[bytes.len() - 4..], &[0xfd, 0xf8, 0xf8, 0]);
        assert_eq!(AvcConfig::parse(&bytes).unwrap(), config);
    }

    /// Deterministic pseudo-random bytes (xorshift) for garbage-input tests.
    fn garbage(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn garbage_never_panics() {
        let sps = high_sps();
        for seed in 0..2000u64 {
            let len = (seed % 97) as usize;
            let mut g = garbage(seed, len);
            let _ = AvcConfig::parse(&g);
            let _ = avcc_to_annexb(&g, (seed % 6) as u8, &mut Vec::new());
            if let Some(b) = g.first_mut() {
                *b = 0x67;
            }
            let _ = Sps::parse(&g);
            let _ = Pps::parse(&g);
            let parsed = Sps::parse(&sps).unwrap();
            let pps = Pps {
                id: 0,
                sps_id: 0,
                entropy_coding_mode: true,
                bottom_field_pic_order_in_frame_present: false,
            };
            let _ = SliceHeader::parse(&g, &parsed, &pps);
            // Annex B with real parameter sets followed by garbage slices.
            let mut stream = vec![0, 0, 1];
            stream.extend_from_slice(&sps);
            stream.extend_from_slice(&[0, 0, 1, 0x68, 0xce, 0x3c, 0x80, 0, 0, 1, 0x65]);
            stream.extend_from_slice(&g);
            if let Ok(aus) = access_units(&stream) {
                let order = display_order(&aus);
                let mut sorted = order.clone();
                sorted.sort_unstable();
                assert!(sorted.iter().enumerate().all(|(i, &v)| v as usize == i));
            }
            // Truncations of a valid SPS.
            let _ = Sps::parse(&sps[..(seed as usize % sps.len())]);
        }
    }

    #[test]
    fn display_order_poc_wrap_and_idr_reset() {
        let au = |idr: bool, lsb: u32| AccessUnit {
            nals: Vec::new(),
            idr,
            reference: true,
            slice_type: 0,
            frame_num: 0,
            poc_lsb: Some(lsb),
            poc_type: 0,
            log2_max_poc_lsb: 4,
            has_parameter_sets: false,
        };
        // max lsb 16: POC 0, 6, 2, 4, 8 ... wrapping 14 -> 0 (= 16) -> 2 (= 18).
        let aus = vec![
            au(true, 0),
            au(false, 6),
            au(false, 2),
            au(false, 4),
            au(false, 10),
            au(false, 8),
            au(false, 14),
            au(false, 12),
            au(false, 2),
            au(false, 0),
            au(true, 4),
            au(false, 0),
        ];
        let order = display_order(&aus);
        assert_eq!(order, vec![0, 3, 1, 2, 5, 4, 7, 6, 9, 8, 11, 10]);
        assert_eq!(reorder_delay(&order), 1);
    }
}
