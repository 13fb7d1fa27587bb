//! Plans and writes fast-start MP4 files (`moov` before `mdat`) with one H.264 video track and
//! an optional AAC or MP3 audio track, streaming: the plan fixes every box size and chunk
//! offset up front, so the caller writes [`Mp4Plan::header`] and then the sample payloads
//! run by run without holding the media in memory.
//!
//! Edit lists make playback start at pts 0: the video edit skips the B-frame reorder delay
//! and the audio edit hides the encoder priming.

use crate::h264::{AvcConfig, H264Error};

/// Largest number of samples per track accepted by the planner.
pub const MAX_SAMPLES: usize = 10_000_000;

/// Errors from planning an MP4 file.
#[derive(Debug, thiserror::Error)]
pub enum MuxError {
    /// A track parameter is outside its legal range.
    #[error("invalid {track} {field} {value} (expected {min}..={max})")]
    OutOfRange {
        /// `video` or `audio`.
        track: &'static str,
        /// The parameter.
        field: &'static str,
        /// The value given.
        value: i64,
        /// Smallest legal value.
        min: i64,
        /// Largest legal value.
        max: i64,
    },
    /// A track's sample count is outside `1..=MAX_SAMPLES`.
    #[error("invalid {track} sample count {count} (expected 1..={max})")]
    SampleCount {
        /// `video` or `audio`.
        track: &'static str,
        /// Samples given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A composition offset is negative (pts before dts).
    #[error("invalid composition offset {value} of video sample {index} (expected >= 0)")]
    NegativeCts {
        /// Sample index in decode order.
        index: usize,
        /// The offset given.
        value: i32,
    },
    /// The audio edit list would reach past the track's samples.
    #[error(
        "audio priming {priming} plus playable {playable} samples exceed the {total} samples in the track"
    )]
    AudioEdit {
        /// Encoder delay in samples.
        priming: u32,
        /// Playable samples.
        playable: u64,
        /// Samples in the track (sum of durations).
        total: u64,
    },
    /// The avcC record cannot be written.
    #[error("invalid avc configuration")]
    Avc(#[source] H264Error),
}

/// The video track to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoTrackSpec {
    /// Width in pixels (1..=65535).
    pub width: u32,
    /// Height in pixels (1..=65535).
    pub height: u32,
    /// Media timescale, ticks per second (>= 1).
    pub timescale: u32,
    /// The H.264 configuration written as `avcC`; samples must use 4-byte NAL lengths
    /// unless `avc.nal_length_size` says otherwise.
    pub avc: AvcConfig,
    /// Samples in decode order.
    pub samples: Vec<MuxSample>,
}

/// One sample as the planner needs it: no payload, only its size and timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MuxSample {
    /// Payload size in bytes.
    pub size: u32,
    /// Duration in the track's timescale.
    pub duration: u32,
    /// pts - dts in the track's timescale (>= 0; 0 for audio).
    pub cts_offset: i32,
    /// True for a sync sample (keyframe).
    pub sync: bool,
}

/// The audio codec of an [`AudioTrackSpec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioCodec {
    /// AAC with its AudioSpecificConfig (e.g. `[0x11, 0x88]` for 48 kHz mono LC).
    Aac {
        /// AudioSpecificConfig bytes (1..=64).
        asc: Vec<u8>,
    },
    /// MPEG-1/2 Layer III.
    Mp3,
}

/// The audio track to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioTrackSpec {
    /// Sample rate in Hz; also the track's timescale.
    pub sample_rate: u32,
    /// Channel count (1..=8).
    pub channels: u16,
    /// The codec.
    pub codec: AudioCodec,
    /// Frames in order; durations in `sample_rate` units, composition offsets 0.
    pub samples: Vec<MuxSample>,
    /// Encoder delay in samples, hidden by the edit list.
    pub priming: u32,
    /// Real samples after the priming: the edit's duration.
    pub playable: u64,
    /// Average bitrate in bits per second for the esds (0: computed from the samples).
    pub bitrate: u32,
}

/// Which track a [`Run`] belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackKind {
    /// The H.264 track (track id 1).
    Video,
    /// The audio track (track id 2).
    Audio,
}

/// Consecutive samples of one track, written as one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// The track.
    pub track: TrackKind,
    /// Index of the first sample in the track's `samples`.
    pub first: u32,
    /// Number of samples.
    pub count: u32,
}

/// The complete layout of a fast-start MP4: header bytes with final chunk offsets, and the
/// order in which sample payloads follow it.
#[derive(Debug, Clone)]
pub struct Mp4Plan {
    header: Vec<u8>,
    runs: Vec<Run>,
    total_size: u64,
    co64: bool,
}

/// Media per run: half a second keeps players' read-ahead small with little box overhead.
const RUN_SECONDS_DIV: u64 = 2;

impl Mp4Plan {
    /// Validates the specs and lays out the file. Uses `co64` only if some chunk offset
    /// needs more than 32 bits.
    pub fn new(video: VideoTrackSpec, audio: Option<AudioTrackSpec>) -> Result<Self, MuxError> {
        Self::build(video, audio, false)
    }

    fn build(
        video: VideoTrackSpec,
        audio: Option<AudioTrackSpec>,
        force_co64: bool,
    ) -> Result<Self, MuxError> {
        validate_video(&video)?;
        if let Some(a) = &audio {
            validate_audio(a)?;
        }
        let avcc = video.avc.to_bytes().map_err(MuxError::Avc)?;
        let runs = interleave(&video, audio.as_ref());
        let payload: u64 = video
            .samples
            .iter()
            .chain(audio.iter().flat_map(|a| a.samples.iter()))
            .map(|s| u64::from(s.size))
            .sum();
        let mdat_head: u64 = if payload + 8 > u64::from(u32::MAX) {
            16
        } else {
            8
        };
        let tracks = Tracks {
            video: &video,
            audio: audio.as_ref(),
            avcc: &avcc,
            runs: &runs,
        };
        // Table entries have a fixed width, so a first pass with zero offsets gives the size.
        let measure = |co64: bool| tracks.header(co64, 0, payload, mdat_head).len() as u64;
        let mut co64 = force_co64;
        if !co64 && measure(false) + payload > u64::from(u32::MAX) {
            co64 = true;
        }
        let header_len = measure(co64);
        let header = tracks.header(co64, header_len, payload, mdat_head);
        debug_assert_eq!(header.len() as u64, header_len);
        Ok(Self {
            header,
            runs,
            total_size: header_len + payload,
            co64,
        })
    }

    /// Bytes before the first sample: ftyp + moov + mdat header (the moov already holds final
    /// chunk offsets).
    pub fn header(&self) -> Vec<u8> {
        self.header.clone()
    }

    /// The order in which sample payloads must follow the header: each run's samples, in
    /// sample order, video samples as AVCC with the configured NAL length size.
    pub fn runs(&self) -> &[Run] {
        &self.runs
    }

    /// Size of the finished file in bytes.
    pub fn total_size(&self) -> u64 {
        self.total_size
    }

    /// True if chunk offsets are written as `co64` (the file exceeds 4 GiB).
    pub fn uses_co64(&self) -> bool {
        self.co64
    }
}

fn range_err(track: &'static str, field: &'static str, value: i64, min: i64, max: i64) -> MuxError {
    MuxError::OutOfRange {
        track,
        field,
        value,
        min,
        max,
    }
}

fn validate_video(v: &VideoTrackSpec) -> Result<(), MuxError> {
    for (field, value) in [("width", v.width), ("height", v.height)] {
        if !(1..=65535).contains(&value) {
            return Err(range_err("video", field, value.into(), 1, 65535));
        }
    }
    if v.timescale == 0 {
        return Err(range_err("video", "timescale", 0, 1, u32::MAX.into()));
    }
    if v.samples.is_empty() || v.samples.len() > MAX_SAMPLES {
        return Err(MuxError::SampleCount {
            track: "video",
            count: v.samples.len(),
            max: MAX_SAMPLES,
        });
    }
    if let Some((index, s)) = v.samples.iter().enumerate().find(|(_, s)| s.cts_offset < 0) {
        return Err(MuxError::NegativeCts {
            index,
            value: s.cts_offset,
        });
    }
    Ok(())
}

fn validate_audio(a: &AudioTrackSpec) -> Result<(), MuxError> {
    if a.sample_rate == 0 {
        return Err(range_err("audio", "sample rate", 0, 1, u32::MAX.into()));
    }
    if !(1..=8).contains(&a.channels) {
        return Err(range_err("audio", "channel count", a.channels.into(), 1, 8));
    }
    if let AudioCodec::Aac { asc } = &a.codec
        && !(1..=64).contains(&asc.len())
    {
        return Err(range_err(
            "audio",
            "audio specific config length",
            asc.len() as i64,
            1,
            64,
        ));
    }
    if a.samples.is_empty() || a.samples.len() > MAX_SAMPLES {
        return Err(MuxError::SampleCount {
            track: "audio",
            count: a.samples.len(),
            max: MAX_SAMPLES,
        });
    }
    let total: u64 = a.samples.iter().map(|s| u64::from(s.duration)).sum();
    if u64::from(a.priming) + a.playable > total {
        return Err(MuxError::AudioEdit {
            priming: a.priming,
            playable: a.playable,
            total,
        });
    }
    Ok(())
}

/// Splits both tracks into runs of about half a second, ordered by decode time.
fn interleave(video: &VideoTrackSpec, audio: Option<&AudioTrackSpec>) -> Vec<Run> {
    struct Cursor<'a> {
        kind: TrackKind,
        samples: &'a [MuxSample],
        timescale: u64,
        next: usize,
        time: u64,
    }
    let mut cursors = vec![Cursor {
        kind: TrackKind::Video,
        samples: &video.samples,
        timescale: video.timescale.into(),
        next: 0,
        time: 0,
    }];
    if let Some(a) = audio {
        cursors.push(Cursor {
            kind: TrackKind::Audio,
            samples: &a.samples,
            timescale: a.sample_rate.into(),
            next: 0,
            time: 0,
        });
    }
    let mut runs = Vec::new();
    loop {
        // The track whose next sample is earliest in seconds (cross-multiplied, exact).
        let pick = cursors
            .iter()
            .enumerate()
            .filter(|(_, c)| c.next < c.samples.len())
            .min_by(|(_, x), (_, y)| {
                (u128::from(x.time) * u128::from(y.timescale))
                    .cmp(&(u128::from(y.time) * u128::from(x.timescale)))
            })
            .map(|(i, _)| i);
        let Some(i) = pick else {
            break;
        };
        let c = &mut cursors[i];
        let first = c.next;
        let start = c.time;
        while c.next < c.samples.len()
            && (c.next == first || (c.time - start) * RUN_SECONDS_DIV < c.timescale)
        {
            c.time += u64::from(c.samples[c.next].duration);
            c.next += 1;
        }
        runs.push(Run {
            track: c.kind,
            first: first as u32,
            count: (c.next - first) as u32,
        });
    }
    runs
}

/// Everything the header writer needs.
struct Tracks<'a> {
    video: &'a VideoTrackSpec,
    audio: Option<&'a AudioTrackSpec>,
    avcc: &'a [u8],
    runs: &'a [Run],
}

/// Appends a box, patching its size after `body` wrote the payload.
fn bx(out: &mut Vec<u8>, kind: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(kind);
    body(out);
    // The moov stays far below 4 GiB: tables are bounded by MAX_SAMPLES.
    let size = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// Appends a full box (version and flags first).
fn full(
    out: &mut Vec<u8>,
    kind: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut Vec<u8>),
) {
    bx(out, kind, |o| {
        o.extend_from_slice(&((u32::from(version) << 24) | flags).to_be_bytes());
        body(o);
    });
}

fn u16b(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}
fn u32b(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}
fn u64b(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// Rescales `v` from timescale `from` to `to`, rounding to nearest.
fn rescale(v: u64, from: u32, to: u32) -> u64 {
    let from = u128::from(from.max(1));
    ((u128::from(v) * u128::from(to) + from / 2) / from) as u64
}

/// Per-track values derived from the samples.
struct TrackTimes {
    /// Sum of sample durations (media timescale).
    media_duration: u64,
    /// The edit: media time where playback starts (media timescale).
    media_time: u64,
    /// The edit's length (media timescale).
    presented: u64,
}

fn video_times(v: &VideoTrackSpec) -> TrackTimes {
    let mut dts = 0u64;
    let mut min_pts = u64::MAX;
    let mut end = 0u64;
    for s in &v.samples {
        let pts = dts + s.cts_offset.max(0) as u64;
        min_pts = min_pts.min(pts);
        end = end.max(pts + u64::from(s.duration));
        dts += u64::from(s.duration);
    }
    TrackTimes {
        media_duration: dts,
        media_time: min_pts,
        presented: end - min_pts,
    }
}

fn audio_times(a: &AudioTrackSpec) -> TrackTimes {
    TrackTimes {
        media_duration: a.samples.iter().map(|s| u64::from(s.duration)).sum(),
        media_time: a.priming.into(),
        presented: a.playable,
    }
}

impl Tracks<'_> {
    fn movie_timescale(&self) -> u32 {
        // The video timescale keeps the video edit exact; below 1000 it is too coarse for audio.
        self.video.timescale.max(1000)
    }

    fn header(&self, co64: bool, header_len: u64, payload: u64, mdat_head: u64) -> Vec<u8> {
        let mut out = Vec::new();
        bx(&mut out, b"ftyp", |o| {
            o.extend_from_slice(b"isom");
            u32b(o, 0x200);
            for brand in [b"isom", b"iso2", b"avc1", b"mp41"] {
                o.extend_from_slice(brand);
            }
        });
        // Chunk offsets: header, then each run's bytes in order.
        let mut video_chunks = Vec::new();
        let mut audio_chunks = Vec::new();
        let mut offset = header_len;
        for run in self.runs {
            let (samples, chunks) = match run.track {
                TrackKind::Video => (&self.video.samples, &mut video_chunks),
                TrackKind::Audio => match self.audio {
                    Some(a) => (&a.samples, &mut audio_chunks),
                    None => continue,
                },
            };
            chunks.push((offset, run.count));
            let first = run.first as usize;
            offset += samples[first..first + run.count as usize]
                .iter()
                .map(|s| u64::from(s.size))
                .sum::<u64>();
        }
        let movie_ts = self.movie_timescale();
        let vt = video_times(self.video);
        let at = self.audio.map(audio_times);
        let v_edit = rescale(vt.presented, self.video.timescale, movie_ts);
        let a_edit = match (self.audio, &at) {
            (Some(a), Some(t)) => rescale(t.presented, a.sample_rate, movie_ts),
            _ => 0,
        };
        let movie_duration = v_edit.max(a_edit);
        bx(&mut out, b"moov", |o| {
            let v1 = movie_duration > u64::from(u32::MAX);
            full(o, b"mvhd", u8::from(v1), 0, |o| {
                time_fields(o, v1, movie_ts, movie_duration);
                u32b(o, 0x0001_0000); // rate 1.0
                u16b(o, 0x0100); // volume 1.0
                o.extend_from_slice(&[0; 10]);
                MATRIX.iter().for_each(|&m| u32b(o, m));
                o.extend_from_slice(&[0; 24]);
                u32b(o, if self.audio.is_some() { 3 } else { 2 });
            });
            let video = TrakParams {
                id: 1,
                times: &vt,
                timescale: self.video.timescale,
                edit: v_edit,
                chunks: &video_chunks,
                co64,
            };
            self.trak_video(o, &video);
            if let (Some(a), Some(t)) = (self.audio, &at) {
                let audio = TrakParams {
                    id: 2,
                    times: t,
                    timescale: a.sample_rate,
                    edit: a_edit,
                    chunks: &audio_chunks,
                    co64,
                };
                trak_audio(o, &audio, a);
            }
        });
        if mdat_head == 16 {
            u32b(&mut out, 1);
            out.extend_from_slice(b"mdat");
            u64b(&mut out, payload + 16);
        } else {
            u32b(&mut out, (payload + 8) as u32);
            out.extend_from_slice(b"mdat");
        }
        out
    }

    fn trak_video(&self, o: &mut Vec<u8>, p: &TrakParams<'_>) {
        let v = self.video;
        bx(o, b"trak", |o| {
            tkhd(o, p, false, (v.width, v.height));
            bx(o, b"mdia", |o| {
                mdhd_hdlr(o, p, b"vide", "VideoHandler");
                bx(o, b"minf", |o| {
                    full(o, b"vmhd", 0, 1, |o| o.extend_from_slice(&[0; 8]));
                    dinf(o);
                    bx(o, b"stbl", |o| {
                        full(o, b"stsd", 0, 0, |o| {
                            u32b(o, 1);
                            self.avc1(o);
                        });
                        sample_tables(o, p, &v.samples, true);
                    });
                });
            });
        });
    }

    fn avc1(&self, o: &mut Vec<u8>) {
        let v = self.video;
        bx(o, b"avc1", |o| {
            o.extend_from_slice(&[0; 6]);
            u16b(o, 1); // data_reference_index
            o.extend_from_slice(&[0; 16]);
            u16b(o, v.width as u16);
            u16b(o, v.height as u16);
            u32b(o, 0x0048_0000); // 72 dpi
            u32b(o, 0x0048_0000);
            u32b(o, 0);
            u16b(o, 1); // frame_count
            o.extend_from_slice(&[0; 32]); // compressorname
            u16b(o, 0x0018);
            u16b(o, 0xffff);
            bx(o, b"avcC", |o| o.extend_from_slice(self.avcc));
            // storyreel renders BT.709 limited range; saying so stops players guessing.
            bx(o, b"colr", |o| {
                o.extend_from_slice(b"nclx");
                u16b(o, 1);
                u16b(o, 1);
                u16b(o, 1);
                o.push(0);
            });
            bx(o, b"pasp", |o| {
                u32b(o, 1);
                u32b(o, 1);
            });
        });
    }
}

fn time_fields(o: &mut Vec<u8>, v1: bool, timescale: u32, duration: u64) {
    if v1 {
        u64b(o, 0);
        u64b(o, 0);
        u32b(o, timescale);
        u64b(o, duration);
    } else {
        u32b(o, 0);
        u32b(o, 0);
        u32b(o, timescale);
        u32b(o, duration as u32);
    }
}

struct TrakParams<'a> {
    id: u32,
    times: &'a TrackTimes,
    timescale: u32,
    /// Edit duration in movie timescale units.
    edit: u64,
    chunks: &'a [(u64, u32)],
    co64: bool,
}

fn tkhd(o: &mut Vec<u8>, p: &TrakParams<'_>, audio: bool, size: (u32, u32)) {
    let v1 = p.edit > u64::from(u32::MAX);
    full(o, b"tkhd", u8::from(v1), 3, |o| {
        if v1 {
            u64b(o, 0);
            u64b(o, 0);
            u32b(o, p.id);
            u32b(o, 0);
            u64b(o, p.edit);
        } else {
            u32b(o, 0);
            u32b(o, 0);
            u32b(o, p.id);
            u32b(o, 0);
            u32b(o, p.edit as u32);
        }
        o.extend_from_slice(&[0; 8]);
        u16b(o, 0); // layer
        u16b(o, u16::from(audio)); // alternate_group
        u16b(o, if audio { 0x0100 } else { 0 });
        u16b(o, 0);
        MATRIX.iter().for_each(|&m| u32b(o, m));
        u32b(o, size.0 << 16);
        u32b(o, size.1 << 16);
    });
    let v1 = p.edit > u64::from(u32::MAX) || p.times.media_time > i32::MAX as u64;
    bx(o, b"edts", |o| {
        full(o, b"elst", u8::from(v1), 0, |o| {
            u32b(o, 1);
            if v1 {
                u64b(o, p.edit);
                u64b(o, p.times.media_time);
            } else {
                u32b(o, p.edit as u32);
                u32b(o, p.times.media_time as u32);
            }
            u32b(o, 0x0001_0000);
        });
    });
}

fn mdhd_hdlr(o: &mut Vec<u8>, p: &TrakParams<'_>, handler: &[u8; 4], name: &str) {
    let v1 = p.times.media_duration > u64::from(u32::MAX);
    full(o, b"mdhd", u8::from(v1), 0, |o| {
        time_fields(o, v1, p.timescale, p.times.media_duration);
        u16b(o, 0x55c4); // language `und`
        u16b(o, 0);
    });
    full(o, b"hdlr", 0, 0, |o| {
        u32b(o, 0);
        o.extend_from_slice(handler);
        o.extend_from_slice(&[0; 12]);
        o.extend_from_slice(name.as_bytes());
        o.push(0);
    });
}

fn dinf(o: &mut Vec<u8>) {
    bx(o, b"dinf", |o| {
        full(o, b"dref", 0, 0, |o| {
            u32b(o, 1);
            full(o, b"url ", 0, 1, |_| {});
        });
    });
}

fn trak_audio(o: &mut Vec<u8>, p: &TrakParams<'_>, a: &AudioTrackSpec) {
    bx(o, b"trak", |o| {
        tkhd(o, p, true, (0, 0));
        bx(o, b"mdia", |o| {
            mdhd_hdlr(o, p, b"soun", "SoundHandler");
            bx(o, b"minf", |o| {
                full(o, b"smhd", 0, 0, |o| u32b(o, 0));
                dinf(o);
                bx(o, b"stbl", |o| {
                    full(o, b"stsd", 0, 0, |o| {
                        u32b(o, 1);
                        mp4a(o, a, p.times);
                    });
                    sample_tables(o, p, &a.samples, false);
                });
            });
        });
    });
}

/// Appends an MPEG-4 descriptor with a 4-byte length (always long enough here).
fn descriptor(o: &mut Vec<u8>, tag: u8, body: impl FnOnce(&mut Vec<u8>)) {
    o.push(tag);
    let at = o.len();
    o.extend_from_slice(&[0x80, 0x80, 0x80, 0]);
    body(o);
    let len = (o.len() - at - 4) as u32;
    o[at] = 0x80 | ((len >> 21) & 0x7f) as u8;
    o[at + 1] = 0x80 | ((len >> 14) & 0x7f) as u8;
    o[at + 2] = 0x80 | ((len >> 7) & 0x7f) as u8;
    o[at + 3] = (len & 0x7f) as u8;
}

fn mp4a(o: &mut Vec<u8>, a: &AudioTrackSpec, times: &TrackTimes) {
    let max_size = a.samples.iter().map(|s| s.size).max().unwrap_or(0);
    // Peak bitrate over one-second windows aligned to whole seconds.
    let mut peak = 0u64;
    let mut window = 0u64;
    let mut window_end = u64::from(a.sample_rate);
    let mut t = 0u64;
    for s in &a.samples {
        while t >= window_end {
            peak = peak.max(window);
            window = 0;
            window_end += u64::from(a.sample_rate);
        }
        window += u64::from(s.size);
        t += u64::from(s.duration);
    }
    peak = peak.max(window) * 8;
    let total_bytes: u64 = a.samples.iter().map(|s| u64::from(s.size)).sum();
    let avg = if a.bitrate > 0 {
        u64::from(a.bitrate)
    } else {
        (u128::from(total_bytes) * 8 * u128::from(a.sample_rate)
            / u128::from(times.media_duration.max(1))) as u64
    };
    bx(o, b"mp4a", |o| {
        o.extend_from_slice(&[0; 6]);
        u16b(o, 1);
        o.extend_from_slice(&[0; 8]);
        u16b(o, a.channels);
        u16b(o, 16);
        u32b(o, 0);
        // 16.16 rate; rates above 65535 Hz do not fit and are carried by the ASC alone.
        u32b(
            o,
            if a.sample_rate <= 0xffff {
                a.sample_rate << 16
            } else {
                0
            },
        );
        full(o, b"esds", 0, 0, |o| {
            descriptor(o, 0x03, |o| {
                u16b(o, 0); // ES_ID
                o.push(0);
                descriptor(o, 0x04, |o| {
                    o.push(match a.codec {
                        AudioCodec::Aac { .. } => 0x40,
                        AudioCodec::Mp3 => 0x6b,
                    });
                    o.push(0x15); // audio stream, upstream 0, reserved 1
                    o.extend_from_slice(&max_size.min(0xff_ffff).to_be_bytes()[1..]);
                    u32b(o, peak.max(avg).min(u64::from(u32::MAX)) as u32);
                    u32b(o, avg.min(u64::from(u32::MAX)) as u32);
                    if let AudioCodec::Aac { asc } = &a.codec {
                        descriptor(o, 0x05, |o| o.extend_from_slice(asc));
                    }
                });
                descriptor(o, 0x06, |o| o.push(2));
            });
        });
    });
}

/// stts, ctts, stss, stsz, stsc and stco/co64 for one track.
fn sample_tables(o: &mut Vec<u8>, p: &TrakParams<'_>, samples: &[MuxSample], video: bool) {
    let run_length = |o: &mut Vec<u8>, value: &dyn Fn(&MuxSample) -> u32| {
        let at = o.len();
        u32b(o, 0);
        let mut entries = 0u32;
        let mut i = 0;
        while i < samples.len() {
            let v = value(&samples[i]);
            let mut n = 1;
            while i + n < samples.len() && value(&samples[i + n]) == v {
                n += 1;
            }
            u32b(o, n as u32);
            u32b(o, v);
            entries += 1;
            i += n;
        }
        o[at..at + 4].copy_from_slice(&entries.to_be_bytes());
    };
    full(o, b"stts", 0, 0, |o| run_length(o, &|s| s.duration));
    if samples.iter().any(|s| s.cts_offset != 0) {
        full(o, b"ctts", 0, 0, |o| {
            run_length(o, &|s| s.cts_offset as u32)
        });
    }
    if video && samples.iter().any(|s| !s.sync) {
        full(o, b"stss", 0, 0, |o| {
            u32b(o, samples.iter().filter(|s| s.sync).count() as u32);
            for (i, _) in samples.iter().enumerate().filter(|(_, s)| s.sync) {
                u32b(o, i as u32 + 1);
            }
        });
    }
    full(o, b"stsz", 0, 0, |o| {
        let first = samples.first().map_or(0, |s| s.size);
        if samples.iter().all(|s| s.size == first) && first > 0 {
            u32b(o, first);
            u32b(o, samples.len() as u32);
        } else {
            u32b(o, 0);
            u32b(o, samples.len() as u32);
            samples.iter().for_each(|s| u32b(o, s.size));
        }
    });
    full(o, b"stsc", 0, 0, |o| {
        let at = o.len();
        u32b(o, 0);
        let mut entries = 0u32;
        let mut prev = None;
        for (i, &(_, count)) in p.chunks.iter().enumerate() {
            if prev != Some(count) {
                u32b(o, i as u32 + 1);
                u32b(o, count);
                u32b(o, 1);
                entries += 1;
                prev = Some(count);
            }
        }
        o[at..at + 4].copy_from_slice(&entries.to_be_bytes());
    });
    if p.co64 {
        full(o, b"co64", 0, 0, |o| {
            u32b(o, p.chunks.len() as u32);
            p.chunks.iter().for_each(|&(off, _)| u64b(o, off));
        });
    } else {
        full(o, b"stco", 0, 0, |o| {
            u32b(o, p.chunks.len() as u32);
            p.chunks.iter().for_each(|&(off, _)| u32b(o, off as u32));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demux::read_video_track;

    fn avc() -> AvcConfig {
        AvcConfig {
            profile: 66,
            compat: 0xc0,
            level: 30,
            nal_length_size: 4,
            // Opaque to the planner, which copies them into avcC.
            sps: vec![vec![
                0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00,
                0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x62, 0xe4, 0x80,
            ]],
            pps: vec![vec![0x68, 0xcb, 0x83, 0xcb, 0x20]],
        }
    }

    fn video(n: usize) -> VideoTrackSpec {
        VideoTrackSpec {
            width: 320,
            height: 240,
            timescale: 15360,
            avc: avc(),
            samples: (0..n)
                .map(|i| MuxSample {
                    size: 100 + i as u32,
                    duration: 512,
                    cts_offset: if i % 2 == 0 { 1024 } else { 512 },
                    sync: i % 30 == 0,
                })
                .collect(),
        }
    }

    fn audio(frames: usize) -> AudioTrackSpec {
        AudioTrackSpec {
            sample_rate: 48000,
            channels: 1,
            codec: AudioCodec::Aac {
                asc: vec![0x11, 0x88],
            },
            samples: vec![
                MuxSample {
                    size: 200,
                    duration: 1024,
                    cts_offset: 0,
                    sync: true
                };
                frames
            ],
            priming: 1024,
            playable: 96000,
            bitrate: 0,
        }
    }

    /// Writes the whole file with each sample filled with its index byte.
    fn write(plan: &Mp4Plan, v: &VideoTrackSpec, a: Option<&AudioTrackSpec>) -> Vec<u8> {
        let mut file = plan.header();
        for run in plan.runs() {
            let samples = match run.track {
                TrackKind::Video => &v.samples,
                TrackKind::Audio => &a.unwrap().samples,
            };
            for i in run.first..run.first + run.count {
                let s = samples[i as usize];
                file.extend(std::iter::repeat_n(i as u8, s.size as usize));
            }
        }
        file
    }

    #[test]
    fn plan_reads_back_with_stco_and_co64() {
        let v = video(90);
        let a = audio(97);
        for force in [false, true] {
            let plan = Mp4Plan::build(v.clone(), Some(a.clone()), force).unwrap();
            assert_eq!(plan.uses_co64(), force);
            let file = write(&plan, &v, Some(&a));
            assert_eq!(file.len() as u64, plan.total_size());
            let track = read_video_track(&file).unwrap();
            assert_eq!(track.samples.len(), 90);
            assert_eq!(track.timescale, 15360);
            // The edit starts at the smallest pts (512 for the odd samples at dts 0 + 512...).
            let min_pts = track.samples.iter().map(|s| s.pts).min().unwrap();
            assert_eq!(min_pts, 0);
            for (i, s) in track.samples.iter().enumerate() {
                assert_eq!(s.size, 100 + i as u32);
                assert_eq!(s.sync, i % 30 == 0);
                let at = s.offset as usize;
                assert!(file[at..at + s.size as usize].iter().all(|&b| b == i as u8));
            }
            // Runs alternate tracks and cover every sample once.
            let video_runs: u32 = plan
                .runs()
                .iter()
                .filter(|r| r.track == TrackKind::Video)
                .map(|r| r.count)
                .sum();
            assert_eq!(video_runs, 90);
            assert!(plan.runs().len() >= 10, "{:?}", plan.runs());
        }
    }

    #[test]
    fn invalid_specs_are_errors() {
        let mut v = video(3);
        v.samples[1].cts_offset = -1;
        assert_eq!(
            Mp4Plan::new(v, None).unwrap_err().to_string(),
            "invalid composition offset -1 of video sample 1 (expected >= 0)"
        );
        let mut v = video(3);
        v.width = 0;
        assert_eq!(
            Mp4Plan::new(v, None).unwrap_err().to_string(),
            "invalid video width 0 (expected 1..=65535)"
        );
        let mut a = audio(10);
        a.playable = 96000;
        assert_eq!(
            Mp4Plan::new(video(3), Some(a)).unwrap_err().to_string(),
            "audio priming 1024 plus playable 96000 samples exceed the 10240 samples in the track"
        );
        assert!(Mp4Plan::new(video(0), None).is_err());
    }
}
