//! Joining rendered chunks and the narration into one fast-start MP4, without re-encoding.
//!
//! Chunks are Annex B streams; their pictures' presentation order is recovered from the
//! slice headers (POC), so merge needs no side channel from the chunk renders. Video
//! timestamps use a 1/15360 s timescale (512 ticks a frame at 30 fps); B-frame delay goes
//! into `ctts` and is hidden with an edit list, and so is the AAC encoder delay, so audio
//! and video both start at zero.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use storyreel_audio::{AacTrack, Pcm};
use storyreel_mp4::h264::{self, AccessUnit, AvcConfig, nal_type};
use storyreel_mp4::mux::{
    AudioCodec, AudioTrackSpec, Mp4Plan, MuxSample, TrackKind, VideoTrackSpec,
};

use crate::plan::RenderPlan;

/// Video timescale ticks per frame.
const TICKS_PER_FRAME: u32 = 512;

/// AAC bitrate for narration (mono speech).
pub const AUDIO_BITRATE: u32 = 128_000;

/// Errors joining chunks; each names the chunk or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("cannot read chunk {index} ({path})")]
    ReadChunk {
        index: u32,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("chunk {index} is not a valid h.264 stream")]
    Bitstream {
        index: u32,
        #[source]
        source: h264::H264Error,
    },
    #[error("chunk {index} has {got} frames (expected {want} for frames {start}..{end})")]
    FrameCount {
        index: u32,
        got: usize,
        want: u64,
        start: u64,
        end: u64,
    },
    #[error("chunk {index} does not start with an IDR picture carrying SPS and PPS")]
    NotClosed { index: u32 },
    #[error("chunk {index} has different SPS/PPS from chunk 0 (rendered with other settings?)")]
    ParameterSets { index: u32 },
    #[error("expected {want} chunks, got {got}")]
    ChunkCount { want: u32, got: usize },
    #[error("narration audio")]
    Audio(#[from] storyreel_audio::AudioError),
    #[error("cannot lay out the mp4")]
    Mux(#[from] storyreel_mp4::mux::MuxError),
    #[error("cannot write {path}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Summary of a merged file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MergeStats {
    pub frames: u64,
    pub bytes: u64,
    pub audio_frames: usize,
}

struct ChunkIndex {
    aus: Vec<AccessUnit>,
    display: Vec<u32>,
    sizes: Vec<u32>,
}

fn read_chunk(index: u32, path: &Path) -> Result<Vec<u8>, MergeError> {
    fs::read(path).map_err(|e| MergeError::ReadChunk {
        index,
        path: path.display().to_string(),
        source: e,
    })
}

/// The SPS and PPS NAL units of one access unit.
type ParameterSets = (Vec<Vec<u8>>, Vec<Vec<u8>>);

fn parameter_sets(stream: &[u8], au: &AccessUnit) -> ParameterSets {
    let (mut sps, mut pps) = (Vec::new(), Vec::new());
    for nal in au.nal_units(stream) {
        match h264::nal_unit_type(nal) {
            nal_type::SPS => sps.push(nal.to_vec()),
            nal_type::PPS => pps.push(nal.to_vec()),
            _ => {}
        }
    }
    (sps, pps)
}

/// Encodes the narration for the video: resampled to 48 kHz and padded with silence to the
/// video's length, so both tracks end together.
pub fn encode_narration(plan: &RenderPlan, pcm: &Pcm) -> Result<AacTrack, MergeError> {
    let mut pcm = storyreel_audio::resample(pcm, storyreel_audio::OUTPUT_RATE)?;
    let want =
        (plan.frames as u128 * u128::from(pcm.sample_rate) / u128::from(plan.encoder.fps)) as usize;
    if pcm.samples.len() < want {
        pcm.samples.resize(want, 0.0);
    }
    Ok(storyreel_audio::encode_aac(&pcm, AUDIO_BITRATE)?)
}

/// Joins `chunks` (in order, one file per plan chunk) and `audio` into `out`.
///
/// The file is written beside `out` and renamed into place at the end, so a crash never
/// leaves a partial file under the final name.
pub fn merge(
    plan: &RenderPlan,
    chunks: &[PathBuf],
    audio: &AacTrack,
    out: &Path,
) -> Result<MergeStats, MergeError> {
    if chunks.len() != plan.chunk_count() as usize {
        return Err(MergeError::ChunkCount {
            want: plan.chunk_count(),
            got: chunks.len(),
        });
    }
    // Pass 1: index every chunk (sizes, order, parameter sets); streams are not kept.
    let mut index = Vec::with_capacity(chunks.len());
    let mut avc: Option<AvcConfig> = None;
    let mut ps0: Option<ParameterSets> = None;
    let mut scratch = Vec::new();
    for (ci, (path, range)) in chunks.iter().zip(plan.chunks()).enumerate() {
        let ci = ci as u32;
        let stream = read_chunk(ci, path)?;
        let aus = h264::access_units(&stream).map_err(|e| MergeError::Bitstream {
            index: ci,
            source: e,
        })?;
        let want = range.end - range.start;
        if aus.len() as u64 != want {
            return Err(MergeError::FrameCount {
                index: ci,
                got: aus.len(),
                want,
                start: range.start,
                end: range.end,
            });
        }
        let first = aus.first().filter(|a| a.idr && a.has_parameter_sets);
        let Some(first) = first else {
            return Err(MergeError::NotClosed { index: ci });
        };
        let ps = parameter_sets(&stream, first);
        match &ps0 {
            None => {
                avc = Some(
                    AvcConfig::from_parameter_sets(ps.0.clone(), ps.1.clone()).map_err(|e| {
                        MergeError::Bitstream {
                            index: ci,
                            source: e,
                        }
                    })?,
                );
                ps0 = Some(ps);
            }
            Some(p) if *p != ps => return Err(MergeError::ParameterSets { index: ci }),
            Some(_) => {}
        }
        let mut sizes = Vec::with_capacity(aus.len());
        for au in &aus {
            scratch.clear();
            let n =
                au.write_avcc(&stream, false, &mut scratch)
                    .map_err(|e| MergeError::Bitstream {
                        index: ci,
                        source: e,
                    })?;
            sizes.push(n as u32);
        }
        let display = h264::display_order(&aus);
        index.push(ChunkIndex {
            aus,
            display,
            sizes,
        });
    }
    let Some(avc) = avc else {
        return Err(MergeError::ChunkCount {
            want: plan.chunk_count(),
            got: 0,
        });
    };

    // Global decode index and presentation index per picture.
    let mut pictures = Vec::with_capacity(plan.frames as usize);
    let mut base = 0u64;
    for c in &index {
        for (i, (&p, &size)) in c.display.iter().zip(&c.sizes).enumerate() {
            pictures.push(TrackPicture {
                size,
                sync: c.aus[i].idr,
                decode: base + i as u64,
                present: base + u64::from(p),
            });
        }
        base += c.aus.len() as u64;
    }
    let video = video_track(
        plan.encoder.width,
        plan.encoder.height,
        plan.encoder.fps,
        avc,
        &pictures,
    );
    let audio_spec = AudioTrackSpec {
        sample_rate: audio.sample_rate,
        channels: audio.channels,
        codec: AudioCodec::Aac {
            asc: audio.asc.clone(),
        },
        samples: audio
            .frames
            .iter()
            .map(|f| MuxSample {
                size: f.len() as u32,
                duration: 1024,
                cts_offset: 0,
                sync: true,
            })
            .collect(),
        priming: audio.priming,
        playable: audio.playable_samples,
        bitrate: audio.bitrate,
    };
    let layout = Mp4Plan::new(video, Some(audio_spec))?;

    // Pass 2: stream the payloads in the layout's order, into a file renamed when complete.
    write_then_rename(
        out,
        |tmp| write_payloads(&layout, &index, chunks, audio, tmp, &mut scratch),
        |e| MergeError::Write {
            path: out.display().to_string(),
            source: e,
        },
    )?;
    Ok(MergeStats {
        frames: plan.frames,
        bytes: layout.total_size(),
        audio_frames: audio.frames.len(),
    })
}

/// One picture of a video track, as [`video_track`] needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TrackPicture {
    /// AVCC payload size in bytes.
    pub size: u32,
    /// An IDR picture.
    pub sync: bool,
    /// Position in decode order.
    pub decode: u64,
    /// Position in presentation order.
    pub present: u64,
}

/// The video track of a storyreel MP4: `fps * 512` ticks a second, 512 a frame; pictures in
/// decode order. Pictures shown after later-decoded ones (B-frames) get a composition offset
/// of the largest reorder delay, which the muxer's edit list hides, so the first picture
/// plays at 0.
pub(crate) fn video_track(
    width: u32,
    height: u32,
    fps: u32,
    avc: AvcConfig,
    pictures: &[TrackPicture],
) -> VideoTrackSpec {
    let delay = pictures
        .iter()
        .map(|p| p.decode.saturating_sub(p.present))
        .max()
        .unwrap_or(0);
    VideoTrackSpec {
        width,
        height,
        timescale: fps * TICKS_PER_FRAME,
        avc,
        samples: pictures
            .iter()
            .map(|p| MuxSample {
                size: p.size,
                duration: TICKS_PER_FRAME,
                cts_offset: ((p.present + delay).saturating_sub(p.decode)
                    * u64::from(TICKS_PER_FRAME)) as i32,
                sync: p.sync,
            })
            .collect(),
    }
}

/// `<out>.partial`: where a file is written before it is renamed into place.
pub(crate) fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Runs `write` on [`partial_path`]`(out)` and renames the result to `out`, so nothing
/// half-written ever has the final name; on failure the partial file is removed.
pub(crate) fn write_then_rename<E>(
    out: &Path,
    write: impl FnOnce(&Path) -> Result<(), E>,
    rename_error: impl FnOnce(std::io::Error) -> E,
) -> Result<(), E> {
    let tmp = partial_path(out);
    if let Err(e) = write(&tmp) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, out).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        rename_error(e)
    })
}

fn write_payloads(
    layout: &Mp4Plan,
    index: &[ChunkIndex],
    chunks: &[PathBuf],
    audio: &AacTrack,
    tmp: &Path,
    scratch: &mut Vec<u8>,
) -> Result<(), MergeError> {
    let werr = |e: std::io::Error| MergeError::Write {
        path: tmp.display().to_string(),
        source: e,
    };
    let file = fs::File::create(tmp).map_err(werr)?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    w.write_all(&layout.header()).map_err(werr)?;
    let mut loaded: Option<(usize, Vec<u8>)> = None;
    // Chunk index and position of each global decode index.
    let starts: Vec<u64> = index
        .iter()
        .scan(0u64, |acc, c| {
            let s = *acc;
            *acc += c.aus.len() as u64;
            Some(s)
        })
        .collect();
    for run in layout.runs() {
        match run.track {
            TrackKind::Audio => {
                for f in &audio.frames[run.first as usize..(run.first + run.count) as usize] {
                    w.write_all(f).map_err(werr)?;
                }
            }
            TrackKind::Video => {
                for g in u64::from(run.first)..u64::from(run.first + run.count) {
                    let ci = starts.partition_point(|&s| s <= g) - 1;
                    if loaded.as_ref().map(|(i, _)| *i) != Some(ci) {
                        loaded = Some((ci, read_chunk(ci as u32, &chunks[ci])?));
                    }
                    if let Some((_, stream)) = &loaded {
                        let au = &index[ci].aus[(g - starts[ci]) as usize];
                        scratch.clear();
                        au.write_avcc(stream, false, scratch).map_err(|e| {
                            MergeError::Bitstream {
                                index: ci as u32,
                                source: e,
                            }
                        })?;
                        w.write_all(scratch).map_err(werr)?;
                    }
                }
            }
        }
    }
    let file = w.into_inner().map_err(|e| werr(e.into_error()))?;
    file.sync_all().map_err(werr)
}
