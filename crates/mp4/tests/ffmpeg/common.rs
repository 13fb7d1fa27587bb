//! Fixture generation with ffmpeg and ffprobe output parsing.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// Directory for generated fixtures, inside the target directory.
pub fn dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("storyreel-mp4-fixtures");
    std::fs::create_dir_all(&d).expect("create fixture dir");
    d
}

/// Runs a tool and returns (stdout, stderr); panics clearly if it is missing or fails.
pub fn run(tool: &str, args: &[&str]) -> (String, String) {
    let out = Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!("cannot run {tool} ({e}): these tests need ffmpeg/ffprobe with libx264, libx265 and libvpx on PATH")
    });
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{tool} {args:?} failed: {stderr}");
    (stdout, stderr)
}

static GENERATED: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// Generates `name` in the fixture dir once per test process with
/// `ffmpeg -y -v error <args> <path>`; ffmpeg runs one at a time (the machine is small).
pub fn fixture(name: &str, args: &[&str]) -> PathBuf {
    let path = dir().join(name);
    let mut done = GENERATED.lock().unwrap_or_else(|e| e.into_inner());
    let done = done.get_or_insert_with(HashSet::new);
    if !done.contains(name) {
        let tmp = dir().join(format!("tmp-{}-{name}", std::process::id()));
        let mut all = vec!["-y", "-v", "error", "-nostdin"];
        all.extend_from_slice(args);
        all.push(tmp.to_str().unwrap());
        run("ffmpeg", &all);
        std::fs::rename(&tmp, &path).unwrap();
        done.insert(name.to_string());
    }
    path
}

/// Key/value records from `ffprobe ... -of compact=p=0`, one per line.
pub fn probe(path: &Path, args: &[&str]) -> Vec<HashMap<String, String>> {
    let mut all = vec!["-v", "error"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-of", "compact=p=0", path.to_str().unwrap()]);
    let (out, _) = run("ffprobe", &all);
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split('|')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// One video packet as ffprobe reports it, in decode order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    pub pts: i64,
    pub dts: i64,
    pub size: u32,
    pub key: bool,
}

/// The video packets of a file and the stream's time base (num, den).
pub fn video_packets(path: &Path) -> (Vec<Packet>, (i64, i64)) {
    let streams = probe(
        path,
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=time_base",
        ],
    );
    let tb = &streams[0]["time_base"];
    let (n, d) = tb.split_once('/').unwrap();
    let packets = probe(
        path,
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts,dts,size,flags",
        ],
    )
    .into_iter()
    .map(|p| Packet {
        pts: p["pts"].parse().unwrap(),
        dts: p["dts"].parse().unwrap(),
        size: p["size"].parse().unwrap(),
        key: p["flags"].starts_with('K'),
    })
    .collect();
    (packets, (n.parse().unwrap(), d.parse().unwrap()))
}

/// Stream records (selected entries) of a file.
pub fn streams(path: &Path) -> Vec<HashMap<String, String>> {
    probe(
        path,
        &[
            "-show_entries",
            "stream=codec_type,codec_name,width,height,nb_frames,start_time,duration,sample_rate,channels",
        ],
    )
}

/// Top-level box types of a file, in order.
pub fn top_level_boxes(data: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos + 8 <= data.len() {
        let size = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as u64;
        let kind = String::from_utf8_lossy(&data[pos + 4..pos + 8]).into_owned();
        let size = match size {
            0 => (data.len() - pos) as u64,
            1 => u64::from_be_bytes(data[pos + 8..pos + 16].try_into().unwrap()),
            n => n,
        };
        out.push(kind);
        pos += size as usize;
    }
    out
}

/// The rank of each value among all values (a permutation of 0..n for distinct values).
pub fn ranks(values: &[i64]) -> Vec<u32> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by_key(|&i| (values[i], i));
    let mut out = vec![0; values.len()];
    for (rank, i) in idx.into_iter().enumerate() {
        out[i] = rank as u32;
    }
    out
}

/// Test source video arguments: `testsrc2` of the given size, rate and seconds.
pub fn testsrc(size: &str, rate: u32, seconds: u32) -> String {
    format!("testsrc2=size={size}:rate={rate}:duration={seconds}")
}
