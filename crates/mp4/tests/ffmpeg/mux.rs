//! A fast-start MP4 built from an x264 Annex B stream and ffmpeg AAC frames, judged by
//! ffprobe and by decoding it with ffmpeg.

use std::path::Path;

use storyreel_mp4::h264::{self, access_units, display_order, nal_type};
use storyreel_mp4::{
    AudioCodec, AudioTrackSpec, AvcConfig, Mp4Plan, MuxSample, TrackKind, VideoTrackSpec,
    read_video_track,
};

use crate::common::{self, fixture};

const TIMESCALE: u32 = 12800;
const FRAME: u32 = TIMESCALE / 25;

/// AAC frames of an ADTS stream, without their 7- or 9-byte headers.
fn adts_frames(data: &[u8]) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let mut pos = 0;
    while pos + 7 <= data.len() {
        let h = &data[pos..];
        assert_eq!((h[0], h[1] & 0xf0), (0xff, 0xf0), "adts sync at {pos}");
        let header = if h[1] & 1 == 1 { 7 } else { 9 };
        let len = (usize::from(h[3] & 3) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
        frames.push(data[pos + header..pos + len].to_vec());
        pos += len;
    }
    frames
}

fn framemd5(path: &Path) -> Vec<(i64, String)> {
    let (out, _) = common::run(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-nostdin",
            "-i",
            path.to_str().unwrap(),
            "-map",
            "0:v",
            "-f",
            "framemd5",
            "-",
        ],
    );
    out.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split(',').map(str::trim).collect();
            (f[2].parse().unwrap(), f[5].to_string())
        })
        .collect()
}

#[test]
fn muxed_file_plays_frame_exact() {
    let (_, annexb_path) = crate::h264::pyramid_a();
    let stream = std::fs::read(&annexb_path).unwrap();
    let aus = access_units(&stream).unwrap();
    let order = display_order(&aus);
    let delay = h264::reorder_delay(&order);

    let mut sps = Vec::new();
    let mut pps = Vec::new();
    for nal in aus[0].nal_units(&stream) {
        match h264::nal_unit_type(nal) {
            nal_type::SPS => sps.push(nal.to_vec()),
            nal_type::PPS => pps.push(nal.to_vec()),
            _ => {}
        }
    }
    let avc = AvcConfig::from_parameter_sets(sps, pps).unwrap();
    let mut video_payloads = Vec::new();
    let mut video_samples = Vec::new();
    for (i, au) in aus.iter().enumerate() {
        let mut buf = Vec::new();
        au.write_avcc(&stream, false, &mut buf).unwrap();
        video_samples.push(MuxSample {
            size: buf.len() as u32,
            duration: FRAME,
            cts_offset: ((order[i] + delay) as i32 - i as i32) * FRAME as i32,
            sync: au.idr,
        });
        video_payloads.push(buf);
    }

    let adts = fixture(
        "sine48k.aac",
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000:duration=3",
            "-ac",
            "1",
            "-c:a",
            "aac",
            "-b:a",
            "64k",
            "-f",
            "adts",
        ],
    );
    let audio_payloads = adts_frames(&std::fs::read(adts).unwrap());
    let audio_samples: Vec<MuxSample> = audio_payloads
        .iter()
        .map(|f| MuxSample {
            size: f.len() as u32,
            duration: 1024,
            cts_offset: 0,
            sync: true,
        })
        .collect();

    let n = aus.len();
    let plan = Mp4Plan::new(
        VideoTrackSpec {
            width: 320,
            height: 240,
            timescale: TIMESCALE,
            avc,
            samples: video_samples,
        },
        Some(AudioTrackSpec {
            sample_rate: 48000,
            channels: 1,
            codec: AudioCodec::Aac {
                asc: vec![0x11, 0x88],
            },
            samples: audio_samples,
            priming: 1024,
            playable: 3 * 48000,
            bitrate: 64000,
        }),
    )
    .unwrap();
    let mut file = plan.header();
    for run in plan.runs() {
        let payloads = match run.track {
            TrackKind::Video => &video_payloads,
            TrackKind::Audio => &audio_payloads,
        };
        for i in run.first..run.first + run.count {
            file.extend_from_slice(&payloads[i as usize]);
        }
    }
    assert_eq!(file.len() as u64, plan.total_size());
    assert!(!plan.uses_co64());
    let out = common::dir().join("muxed.mp4");
    std::fs::write(&out, &file).unwrap();

    assert_eq!(common::top_level_boxes(&file), ["ftyp", "moov", "mdat"]);
    let streams = common::streams(&out);
    let v = streams.iter().find(|s| s["codec_type"] == "video").unwrap();
    let a = streams.iter().find(|s| s["codec_type"] == "audio").unwrap();
    assert_eq!(v["codec_name"], "h264");
    assert_eq!((v["width"].as_str(), v["height"].as_str()), ("320", "240"));
    assert_eq!(v["nb_frames"], n.to_string());
    let secs = |s: &str| s.parse::<f64>().unwrap();
    assert!(
        secs(&v["start_time"]).abs() <= 0.001,
        "video start {}",
        v["start_time"]
    );
    assert!(
        (secs(&v["duration"]) - n as f64 / 25.0).abs() <= 0.001,
        "video duration {}",
        v["duration"]
    );
    assert_eq!(a["codec_name"], "aac");
    assert_eq!(a["nb_frames"], audio_payloads.len().to_string());
    assert!(
        secs(&a["start_time"]).abs() <= 0.001,
        "audio start {}",
        a["start_time"]
    );
    assert!(
        (secs(&a["duration"]) - 3.0).abs() <= 0.03,
        "audio duration {}",
        a["duration"]
    );

    let (_, stderr) = common::run(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-nostdin",
            "-i",
            out.to_str().unwrap(),
            "-f",
            "null",
            "-",
        ],
    );
    assert_eq!(stderr, "", "ffmpeg decode errors");

    // Frame-exact: the same pictures as decoding the raw stream, in the same order, with
    // presentation times 0, 1, 2... frames.
    let ours = framemd5(&out);
    let raw = framemd5(&annexb_path);
    assert_eq!(ours.len(), n);
    let hashes = |v: &[(i64, String)]| v.iter().map(|(_, h)| h.clone()).collect::<Vec<_>>();
    assert_eq!(hashes(&ours), hashes(&raw));
    let pts: Vec<i64> = ours.iter().map(|(p, _)| *p).collect();
    assert_eq!(
        pts,
        (0..n as i64).collect::<Vec<_>>(),
        "framemd5 pts in frames"
    );

    // ffprobe's packet pts are the display order times the frame duration.
    let (packets, _) = common::video_packets(&out);
    let expected: Vec<i64> = order.iter().map(|&o| i64::from(o * FRAME)).collect();
    assert_eq!(packets.iter().map(|p| p.pts).collect::<Vec<_>>(), expected);

    // And our own demuxer reads it back the same way.
    let track = read_video_track(&file).unwrap();
    assert_eq!(
        track.samples.iter().map(|s| s.pts).collect::<Vec<_>>(),
        expected
    );
    assert_eq!(track.duration, n as i64 * i64::from(FRAME));
}
