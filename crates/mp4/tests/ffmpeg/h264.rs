//! Access units and display order of x264 Annex B streams against ffprobe.

use std::path::{Path, PathBuf};

use storyreel_mp4::h264::{self, access_units, display_order, nal_type};

use crate::common::{self, fixture, testsrc};

/// An x264 stream with 3 B-frames and a normal pyramid, as MP4 (timestamps from the
/// encoder) and as the same bitstream in Annex B.
pub fn pyramid(name: &str, src: &str, x264_params: &str) -> (PathBuf, PathBuf) {
    let mp4 = fixture(
        &format!("{name}.mp4"),
        &[
            "-f",
            "lavfi",
            "-i",
            src,
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-x264-params",
            x264_params,
        ],
    );
    let annexb = fixture(
        &format!("{name}.h264"),
        &[
            "-i",
            mp4.to_str().unwrap(),
            "-c:v",
            "copy",
            "-bsf:v",
            "h264_mp4toannexb",
            "-f",
            "h264",
        ],
    );
    (mp4, annexb)
}

pub fn pyramid_a() -> (PathBuf, PathBuf) {
    pyramid(
        "pyramid-a",
        &testsrc("320x240", 25, 3),
        "bframes=3:b-pyramid=normal:keyint=30:min-keyint=30:scenecut=0",
    )
}

fn pyramid_b() -> (PathBuf, PathBuf) {
    pyramid(
        "pyramid-b",
        "smptebars=size=320x240:rate=25:duration=2",
        "bframes=3:b-pyramid=normal:keyint=25:aud=1",
    )
}

fn frame_count(annexb: &Path) -> usize {
    let s = common::probe(
        annexb,
        &["-count_frames", "-show_entries", "stream=nb_read_frames"],
    );
    s[0]["nb_read_frames"].parse().unwrap()
}

#[test]
fn access_units_and_display_order_match_ffprobe() {
    for (mp4, annexb) in [pyramid_a(), pyramid_b()] {
        let stream = std::fs::read(&annexb).unwrap();
        let aus = access_units(&stream).unwrap();
        assert_eq!(aus.len(), frame_count(&annexb), "{annexb:?}");
        let (packets, _) = common::video_packets(&mp4);
        assert_eq!(aus.len(), packets.len());
        let keys: Vec<bool> = packets.iter().map(|p| p.key).collect();
        let idrs: Vec<bool> = aus.iter().map(|a| a.idr).collect();
        assert_eq!(idrs, keys);
        let pts: Vec<i64> = packets.iter().map(|p| p.pts).collect();
        assert_eq!(display_order(&aus), common::ranks(&pts), "{annexb:?}");
        // The pyramid really reorders: the delay is 2 frames with b-pyramid normal.
        assert_eq!(h264::reorder_delay(&display_order(&aus)), 2);
        // Every IDR carries its parameter sets (h264_mp4toannexb inserts them).
        assert!(aus.iter().filter(|a| a.idr).all(|a| a.has_parameter_sets));
        let first_sps = aus[0]
            .nal_units(&stream)
            .find(|n| h264::nal_unit_type(n) == nal_type::SPS)
            .unwrap();
        let sps = h264::Sps::parse(first_sps).unwrap();
        assert_eq!(
            (sps.width, sps.height, sps.pic_order_cnt_type),
            (320, 240, 0)
        );
    }
}

#[test]
fn concatenated_chunks_restart_at_second_idr() {
    let (_, a) = pyramid_a();
    let (_, b) = pyramid_b();
    let (a, b) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    let order_a = display_order(&access_units(&a).unwrap());
    let order_b = display_order(&access_units(&b).unwrap());
    let mut joined = a.clone();
    joined.extend_from_slice(&b);
    let aus = access_units(&joined).unwrap();
    assert_eq!(aus.len(), order_a.len() + order_b.len());
    let n = order_a.len() as u32;
    let expected: Vec<u32> = order_a
        .iter()
        .copied()
        .chain(order_b.iter().map(|p| p + n))
        .collect();
    assert_eq!(display_order(&aus), expected);
    // ffprobe decodes the concatenation to the same number of frames.
    let path = common::dir().join("joined.h264");
    std::fs::write(&path, &joined).unwrap();
    assert_eq!(frame_count(&path), aus.len());
}

#[test]
fn truncated_streams_never_panic() {
    let (_, a) = pyramid_a();
    let stream = std::fs::read(a).unwrap();
    for cut in (0..stream.len().min(4000)).step_by(7) {
        if let Ok(aus) = access_units(&stream[..cut]) {
            let _ = display_order(&aus);
        }
    }
    let mut corrupted = stream.clone();
    for i in (0..corrupted.len()).step_by(101) {
        corrupted[i] ^= 0x5a;
    }
    let _ = access_units(&corrupted);
}
