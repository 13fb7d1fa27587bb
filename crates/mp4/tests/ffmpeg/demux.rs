//! `read_video_track` against ffprobe's packet list for files ffmpeg wrote.

use std::path::PathBuf;

use storyreel_mp4::{Mp4Error, VideoTrack, read_video_track};

use crate::common::{self, Packet, fixture, testsrc};

fn x264(name: &str, src: &str, extra: &[&str]) -> PathBuf {
    let mut args = vec![
        "-f", "lavfi", "-i", src, "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
    ];
    args.extend_from_slice(extra);
    fixture(name, &args)
}

/// 25 fps with 3 B-frames, moov after mdat (ffmpeg's default layout).
fn bframes() -> PathBuf {
    x264(
        "bframes25.mp4",
        &testsrc("320x240", 25, 3),
        &["-bf", "3", "-g", "50"],
    )
}

/// 60 fps, 2-second GOP, fast start.
fn fps60() -> PathBuf {
    x264(
        "fps60-faststart.mp4",
        &testsrc("320x240", 60, 3),
        &["-g", "120", "-movflags", "+faststart"],
    )
}

fn read(path: &PathBuf) -> VideoTrack {
    let file = std::fs::File::open(path).unwrap();
    read_video_track(&file).unwrap()
}

/// Asserts that the sample table matches ffprobe exactly (count, sizes, keyframes, pts and
/// dts after converting time bases; ffprobe's dts carries the edit shift).
fn assert_matches_ffprobe(path: &PathBuf) -> VideoTrack {
    let track = read(path);
    let (packets, (num, den)) = common::video_packets(path);
    assert_eq!(track.samples.len(), packets.len(), "{path:?}");
    let ts = i64::from(track.timescale);
    let convert = |t: i64| t * num * ts / den;
    let shift = convert(packets[0].dts) - track.samples[0].dts;
    for (i, (s, p)) in track.samples.iter().zip(&packets).enumerate() {
        let ours = Packet {
            pts: s.pts,
            dts: s.dts + shift,
            size: s.size,
            key: s.sync,
        };
        let theirs = Packet {
            pts: convert(p.pts),
            dts: convert(p.dts),
            ..*p
        };
        assert_eq!(ours, theirs, "sample {i} of {path:?}");
    }
    let first_shown = track.samples.iter().map(|s| s.pts).min().unwrap();
    assert_eq!(first_shown, 0);
    track
}

#[test]
fn bframes_moov_at_end() {
    let path = bframes();
    let data = std::fs::read(&path).unwrap();
    assert_eq!(common::top_level_boxes(&data).last().unwrap(), "moov");
    let track = assert_matches_ffprobe(&path);
    assert_eq!((track.width, track.height), (320, 240));
    assert_eq!(track.samples.len(), 75);
    // Frame duration 512 at 12800: 75 frames = 38400 ticks.
    assert_eq!(track.duration, 75 * i64::from(track.samples[0].duration));
    assert!(
        track.samples.iter().any(|s| s.pts != s.dts),
        "B-frames reorder"
    );
    assert_eq!(track.avc.profile, 100);
    assert_eq!(track.avc.nal_length_size, 4);
    let sps = storyreel_mp4::Sps::parse(&track.avc.sps[0]).unwrap();
    assert_eq!((sps.width, sps.height), (320, 240));
}

#[test]
fn fps60_faststart() {
    let path = fps60();
    let data = std::fs::read(&path).unwrap();
    assert_eq!(&common::top_level_boxes(&data)[..2], ["ftyp", "moov"]);
    let track = assert_matches_ffprobe(&path);
    assert_eq!(track.samples.len(), 180);
    assert_eq!(track.samples.iter().filter(|s| s.sync).count(), 2);
}

#[test]
fn portrait() {
    let path = x264("portrait.mp4", &testsrc("180x320", 30, 2), &["-g", "60"]);
    let track = assert_matches_ffprobe(&path);
    assert_eq!((track.width, track.height), (180, 320));
    assert_eq!(track.samples.len(), 60);
}

#[test]
fn audio_track_first() {
    let path = fixture(
        "audio-first.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            &testsrc("320x240", 25, 2),
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000:duration=2",
            "-map",
            "1:a",
            "-map",
            "0:v",
            "-c:a",
            "aac",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-bf",
            "2",
        ],
    );
    let s = common::streams(&path);
    assert_eq!(s[0]["codec_type"], "audio");
    let track = assert_matches_ffprobe(&path);
    assert_eq!(track.samples.len(), 50);
}

#[test]
fn largesize_mdat_and_size_zero_moov() {
    // ffmpeg leaves an 8-byte `free` before `mdat` so the header can become 64-bit in place.
    let mut data = std::fs::read(bframes()).unwrap();
    let boxes = common::top_level_boxes(&data);
    assert_eq!(boxes, ["ftyp", "free", "mdat", "moov"]);
    let expected = read_video_track(&data).unwrap();
    let ftyp = u32::from_be_bytes(data[0..4].try_into().unwrap()) as usize;
    let mdat_size = u32::from_be_bytes(data[ftyp + 8..ftyp + 12].try_into().unwrap()) as u64;
    let mut header = 1u32.to_be_bytes().to_vec();
    header.extend_from_slice(b"mdat");
    header.extend_from_slice(&(mdat_size + 8).to_be_bytes());
    data[ftyp..ftyp + 16].copy_from_slice(&header);
    // The last box (moov) with size 0 runs to the end of the file.
    let moov = ftyp + 8 + mdat_size as usize;
    data[moov..moov + 4].copy_from_slice(&[0; 4]);
    assert_eq!(read_video_track(&data).unwrap(), expected);
}

#[test]
fn hevc_is_unsupported() {
    let path = fixture(
        "hevc.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            &testsrc("320x240", 25, 1),
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "log-level=error",
            "-tag:v",
            "hvc1",
        ],
    );
    let err = read_video_track(&std::fs::read(path).unwrap()).unwrap_err();
    assert!(matches!(err, Mp4Error::UnsupportedCodec(_)));
    assert_eq!(err.to_string(), "unsupported codec hevc");
}

#[test]
fn vp9_is_unsupported() {
    let path = fixture(
        "vp9.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            &testsrc("320x240", 25, 1),
            "-c:v",
            "libvpx-vp9",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-b:v",
            "200k",
        ],
    );
    let err = read_video_track(&std::fs::read(path).unwrap()).unwrap_err();
    assert_eq!(err.to_string(), "unsupported codec vp9");
}

#[test]
fn fragmented_is_a_clear_error() {
    let path = x264(
        "fragmented.mp4",
        &testsrc("320x240", 25, 2),
        &["-g", "25", "-movflags", "frag_keyframe+empty_moov"],
    );
    let err = read_video_track(&std::fs::read(path).unwrap()).unwrap_err();
    assert!(matches!(err, Mp4Error::Fragmented), "{err}");
    assert!(
        err.to_string()
            .starts_with("fragmented mp4 is not supported")
    );
}

#[test]
fn truncated_in_moov() {
    let data = std::fs::read(fps60()).unwrap();
    let ftyp = u32::from_be_bytes(data[0..4].try_into().unwrap()) as usize;
    assert_eq!(&data[ftyp + 4..ftyp + 8], b"moov");
    let moov_size = u32::from_be_bytes(data[ftyp..ftyp + 4].try_into().unwrap());
    let cut = ftyp + 200;
    let err = read_video_track(&data[..cut]).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "truncated: box `moov` at offset {ftyp} claims {moov_size} bytes but the file has {cut}"
        )
    );
    // Moov intact but mdat cut short: the last samples are beyond the end of the file.
    let err = read_video_track(&data[..data.len() - 100]).unwrap_err();
    assert!(
        matches!(err, Mp4Error::SampleOutOfFile { sample: 180, .. }),
        "{err}"
    );
}

#[test]
fn garbage_and_mutations_never_panic() {
    let mut data = std::fs::read(fps60()).unwrap();
    let err = read_video_track(&data[8..]).unwrap_err();
    assert!(matches!(err, Mp4Error::NotMp4(_)), "{err}");
    // Corrupt bytes throughout the moov: every outcome must be Ok or Err, never a panic.
    let ftyp = u32::from_be_bytes(data[0..4].try_into().unwrap()) as usize;
    let moov_len = u32::from_be_bytes(data[ftyp..ftyp + 4].try_into().unwrap()) as usize;
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut errors = 0;
    for _ in 0..3000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let at = ftyp + 8 + (x as usize % (moov_len - 9));
        let saved = [data[at], data[at + 1]];
        data[at] = (x >> 32) as u8;
        data[at + 1] ^= 0xff;
        errors += usize::from(read_video_track(&data).is_err());
        data[at..at + 2].copy_from_slice(&saved);
    }
    assert!(errors > 0);
}
