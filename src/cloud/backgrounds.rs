//! The background library: footage users add once and jobs pick by id, by tag or at random.
//!
//! Each background is two objects under [`keys::BACKGROUNDS_PREFIX`]: the video,
//! `backgrounds/<id>.mp4`, and its metadata, `backgrounds/<id>.json` ([`BackgroundMeta`]). The
//! metadata sits beside the video in the store rather than in a table so the library works
//! with any [`BlobStore`] — the bucket in the cloud, a directory locally — and needs no other
//! resource or permission. The JSON is written after the video and removed before it, so the
//! catalog never lists a background whose video is missing. Listing reads one small object
//! per background: fine for a library of tens or hundreds of clips.
//!
//! A video is checked before it is stored: it must demux, be footage our decoder decodes (one
//! frame is decoded), and last at least [`MIN_DURATION_MS`]. Then it is *prepared*
//! ([`storyreel_render::prepare`]): what is stored is the library's working form — the 9:16 crop at the
//! source's resolution, 30 fps, H.264 without B-frames with a keyframe every second, no audio,
//! fast start — made in a temporary directory and put under `backgrounds/<id>.mp4`; the
//! original is not kept. [`BackgroundMeta`] describes the stored file and, under `source`, the
//! footage it was made from.
//!
//! [`pick_background`] is pure: the catalog, a [`BackgroundSelector`] and a seed (from the job
//! id, so a retried job picks the same clip) decide the background.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::background::VideoBackground;
use crate::keys;
use crate::steps::BackgroundChoice;
use crate::store::{BlobStore, StoreError};
use storyreel_render::prepare::{self, PrepareError, PrepareSettings, PreparedInfo};

/// Shortest background accepted: shorter clips would loop visibly within one video.
pub const MIN_DURATION_MS: u64 = 10_000;
/// Largest background accepted.
pub const MAX_BACKGROUND_BYTES: u64 = 4 << 30;
/// Largest metadata object read.
const MAX_META_BYTES: u64 = 64 << 10;
/// Most tags on one background.
pub const MAX_TAGS: usize = 16;

/// What the library knows about a background. The size, rate, codec, length and bytes are
/// the stored (prepared) file's; `source` is what was added. Entries added before backgrounds
/// were prepared have the default (empty) preparation fields and describe the file as added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackgroundMeta {
    /// Random, lowercase hex; names both objects.
    pub id: String,
    /// The video's storage key (`backgrounds/<id>.mp4`).
    pub key: String,
    pub duration_ms: u64,
    /// Displayed size (after the track's rotation).
    pub width: u32,
    pub height: u32,
    /// Average frame rate.
    pub fps: f64,
    /// `h264`.
    pub codec: String,
    pub tags: Vec<String>,
    pub bytes: u64,
    /// Unix seconds.
    pub added_at: u64,
    /// The file name it was added from.
    #[serde(default)]
    pub original_name: String,
    /// Frames in the stored file.
    #[serde(default)]
    pub frames: u64,
    /// Frames per closed GOP (a keyframe every `keyint` frames).
    #[serde(default)]
    pub keyint: u32,
    /// x264's constant rate factor for the stored file.
    #[serde(default)]
    pub crf: f32,
    /// x264's preset for the stored file (empty: stored as added, not prepared).
    #[serde(default)]
    pub preset: String,
    /// The footage as it was added.
    #[serde(default)]
    pub source: SourceMeta,
    /// Wall time spent preparing, in ms.
    #[serde(default)]
    pub prepare_ms: u64,
}

/// The footage a background was prepared from (not kept in the library).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SourceMeta {
    /// `h264`, `hevc`, `vp9`, `av1`, ...
    pub codec: String,
    /// `mp4`, `matroska`, ...
    pub container: String,
    /// Displayed size (after the rotation).
    pub width: u32,
    pub height: u32,
    /// Average frame rate.
    pub fps: f64,
    pub duration_ms: u64,
    pub bytes: u64,
    /// Clockwise degrees applied before display.
    pub rotation: u16,
    /// The file name it was added from.
    pub name: String,
}

/// How a job chooses its background.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackgroundSelector {
    /// This background.
    Id(String),
    /// Any background with this tag (chosen by the seed).
    Tag(String),
    /// Any background (chosen by the seed).
    Random,
}

/// Why a background could not be added, listed, removed or picked.
#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    /// The file is not a usable background.
    #[error("background {name} is not usable: {reason}")]
    Unusable { name: String, reason: String },
    /// The file could not be decoded.
    #[error("background {name} cannot be decoded")]
    Undecodable {
        name: String,
        #[source]
        source: crate::background::BackgroundError,
    },
    /// Preparing the file failed for a reason other than the file (x264, the scratch disk).
    #[error("background {name} cannot be prepared")]
    Prepare {
        name: String,
        #[source]
        source: PrepareError,
    },
    /// A tag is malformed.
    #[error("invalid tag {tag:?} (expected 1-32 characters of a-z, 0-9, '-' and '_')")]
    InvalidTag { tag: String },
    /// An id is malformed.
    #[error("invalid background id {id:?} (expected 1-64 characters of a-z and 0-9)")]
    InvalidId { id: String },
    /// No background has this id.
    #[error("no background {id:?} in {store} (see `storyreel backgrounds list`)")]
    UnknownId { id: String, store: String },
    /// No background has this tag.
    #[error("no background tagged {tag:?} (tags in the library: {known})")]
    NoTag { tag: String, known: String },
    /// The library is empty.
    #[error("the background library is empty (add one with `storyreel backgrounds add FILE`)")]
    Empty,
    /// A metadata object is not JSON of the expected shape.
    #[error("background metadata {key:?} is malformed")]
    BadMeta {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The video's key for `id`.
pub fn video_key(id: &str) -> String {
    format!("{}{id}.mp4", keys::BACKGROUNDS_PREFIX)
}

/// The metadata's key for `id`.
pub fn meta_key(id: &str) -> String {
    format!("{}{id}.json", keys::BACKGROUNDS_PREFIX)
}

/// Checks a tag: 1-32 characters of `a-z0-9-_` (tags are lowercased first by callers).
pub fn check_tag(tag: &str) -> Result<(), LibraryError> {
    let ok = (1..=32).contains(&tag.len())
        && tag
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(LibraryError::InvalidTag {
            tag: tag.to_string(),
        })
    }
}

/// Checks an id: 1-64 characters of `a-z0-9`.
pub fn check_id(id: &str) -> Result<(), LibraryError> {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(LibraryError::InvalidId { id: id.to_string() })
    }
}

/// Normalises tags: trimmed, lowercased, checked, deduplicated, in the order given.
pub fn normalise_tags(tags: &[String]) -> Result<Vec<String>, LibraryError> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        let t = t.trim().to_lowercase();
        check_tag(&t)?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    if out.len() > MAX_TAGS {
        return Err(LibraryError::Unusable {
            name: "tags".into(),
            reason: format!("{} tags (expected <= {MAX_TAGS})", out.len()),
        });
    }
    Ok(out)
}

/// What probing a video found.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub duration_ms: u64,
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    pub codec: String,
    pub bytes: u64,
}

/// Checks that `path` is a usable background: footage our decoder decodes (its first picture
/// is decoded), at most [`MAX_BACKGROUND_BYTES`], lasting at least `min_duration_ms`. Blocking.
pub fn probe_file(path: &Path, min_duration_ms: u64) -> Result<Probe, LibraryError> {
    let (mut video, bytes) = open_checked(path, min_duration_ms)?;
    let info = video.info();
    // Decode the first picture: the demuxer accepts streams the decoder may not.
    video
        .draw(0, 64, 64)
        .map_err(|source| LibraryError::Undecodable {
            name: path.display().to_string(),
            source,
        })?;
    Ok(Probe {
        duration_ms: info.duration_ms,
        width: info.width,
        height: info.height,
        fps: info.fps,
        codec: info.codec,
        bytes,
    })
}

/// Opens `path` after the size check and checks its length; returns it with its size.
fn open_checked(path: &Path, min_duration_ms: u64) -> Result<(VideoBackground, u64), LibraryError> {
    let name = path.display().to_string();
    let unusable = |reason: String| LibraryError::Unusable {
        name: name.clone(),
        reason,
    };
    let bytes = std::fs::metadata(path)
        .map_err(|e| unusable(format!("cannot read it: {e}")))?
        .len();
    if bytes > MAX_BACKGROUND_BYTES {
        return Err(unusable(format!(
            "{bytes} bytes (expected <= {MAX_BACKGROUND_BYTES})"
        )));
    }
    let video = VideoBackground::open_file(path).map_err(|source| LibraryError::Undecodable {
        name: name.clone(),
        source,
    })?;
    let duration_ms = video.duration_ms();
    if duration_ms < min_duration_ms {
        return Err(unusable(format!(
            "it lasts {:.1} s (expected at least {:.1} s)",
            duration_ms as f64 / 1000.0,
            min_duration_ms as f64 / 1000.0
        )));
    }
    Ok((video, bytes))
}

/// Checks `path` ([`probe_file`]'s checks) and prepares it into `out`, reporting
/// `progress(done, total)` frames. Blocking; nothing is left at `out` (or beside it) on failure.
pub fn prepare_file(
    path: &Path,
    out: &Path,
    min_duration_ms: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(PreparedInfo, u64), LibraryError> {
    let name = path.display().to_string();
    let (mut video, bytes) = open_checked(path, min_duration_ms)?;
    let prepared =
        prepare::prepare_background(&mut video, out, &PrepareSettings::default(), progress)
            .map_err(|e| match e {
                PrepareError::Decode(source) => LibraryError::Undecodable {
                    name: name.clone(),
                    source,
                },
                e @ (PrepareError::TooSmall { .. } | PrepareError::TooLong { .. }) => {
                    LibraryError::Unusable {
                        name: name.clone(),
                        reason: e.to_string(),
                    }
                }
                source => LibraryError::Prepare {
                    name: name.clone(),
                    source,
                },
            })?;
    Ok((prepared, bytes))
}

/// A scratch directory removed with everything in it when dropped.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> std::io::Result<Self> {
        let dir = std::env::temp_dir().join(format!("storyreel-prepare-{}", new_id()));
        std::fs::create_dir(&dir)?;
        Ok(ScratchDir(dir))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh random id: 16 hex digits from the process's random hasher keys, the clock and a
/// counter.
pub fn new_id() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(nanos);
    h.write_u64(SEQ.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

/// Validates `path`, prepares it and adds it to the library in `store` with `tags`.
pub async fn add(
    store: &dyn BlobStore,
    path: &Path,
    tags: &[String],
    min_duration_ms: u64,
) -> Result<BackgroundMeta, LibraryError> {
    add_with_progress(store, path, tags, min_duration_ms, Box::new(|_, _| {})).await
}

/// [`add`], calling `progress(done, total)` with the frames prepared so far (from a blocking
/// thread). The prepared file is made in a scratch directory under the system's temporary
/// directory (`TMPDIR`), removed however this ends; the video is put first and its metadata
/// last, and a failed metadata put removes the video again, so a failure adds nothing.
pub async fn add_with_progress(
    store: &dyn BlobStore,
    path: &Path,
    tags: &[String],
    min_duration_ms: u64,
    mut progress: Box<dyn FnMut(u64, u64) + Send>,
) -> Result<BackgroundMeta, LibraryError> {
    let tags = normalise_tags(tags)?;
    let name = path.display().to_string();
    let owned = path.to_path_buf();
    let prepared = tokio::task::spawn_blocking(move || {
        let scratch = ScratchDir::new().map_err(|e| LibraryError::Prepare {
            name: owned.display().to_string(),
            source: PrepareError::Write {
                path: std::env::temp_dir().display().to_string(),
                source: e,
            },
        })?;
        let out = scratch.0.join("prepared.mp4");
        let (info, bytes) = prepare_file(&owned, &out, min_duration_ms, &mut *progress)?;
        Ok::<_, LibraryError>((scratch, out, info, bytes))
    })
    .await
    .map_err(|e| LibraryError::Unusable {
        name: name.clone(),
        reason: format!("the preparing thread failed: {e}"),
    })?;
    let (scratch, out, info, source_bytes) = prepared?;
    let id = new_id();
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let meta = BackgroundMeta {
        key: video_key(&id),
        id,
        duration_ms: info.duration_ms,
        width: info.width,
        height: info.height,
        fps: f64::from(info.fps),
        codec: "h264".into(),
        tags,
        bytes: info.bytes,
        added_at: crate::jobs::unix_now(),
        original_name: file_name.clone(),
        frames: info.frames,
        keyint: info.keyint,
        crf: info.crf,
        preset: info.preset.clone(),
        source: SourceMeta {
            codec: info.source.codec.clone(),
            container: info.source.container.clone(),
            width: info.source.width,
            height: info.source.height,
            fps: info.source.fps,
            duration_ms: info.source.duration_ms,
            bytes: source_bytes,
            rotation: info.source.rotation,
            name: file_name,
        },
        prepare_ms: info.elapsed_ms,
    };
    let json = serde_json::to_vec_pretty(&meta).map_err(|e| LibraryError::BadMeta {
        key: meta_key(&meta.id),
        source: e,
    })?;
    store.put_file(&meta.key, &out, "video/mp4").await?;
    drop(scratch);
    if let Err(e) = store
        .put(&meta_key(&meta.id), json, "application/json")
        .await
    {
        // Not listed without its metadata, but not to be left behind either.
        let _ = store.delete_prefix(&meta.key).await;
        return Err(e.into());
    }
    Ok(meta)
}

/// The catalog, sorted by id; with `tag`, only backgrounds carrying it.
pub async fn list(
    store: &dyn BlobStore,
    tag: Option<&str>,
) -> Result<Vec<BackgroundMeta>, LibraryError> {
    let mut out = Vec::new();
    for obj in store.list(keys::BACKGROUNDS_PREFIX).await? {
        let Some(id) = obj
            .key
            .strip_prefix(keys::BACKGROUNDS_PREFIX)
            .and_then(|k| k.strip_suffix(".json"))
        else {
            continue;
        };
        if check_id(id).is_err() {
            continue;
        }
        let bytes = match store.get(&obj.key, MAX_META_BYTES).await {
            Ok(b) => b,
            // Removed since the listing.
            Err(StoreError::NotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        let meta: BackgroundMeta =
            serde_json::from_slice(&bytes).map_err(|e| LibraryError::BadMeta {
                key: obj.key.clone(),
                source: e,
            })?;
        if tag.is_none_or(|t| meta.tags.iter().any(|m| m == t)) {
            out.push(meta);
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// Removes background `id` (metadata first, so it leaves the catalog before its video goes).
pub async fn remove(store: &dyn BlobStore, id: &str) -> Result<BackgroundMeta, LibraryError> {
    check_id(id)?;
    let key = meta_key(id);
    let bytes = match store.get(&key, MAX_META_BYTES).await {
        Ok(b) => b,
        Err(StoreError::NotFound { .. }) => {
            return Err(LibraryError::UnknownId {
                id: id.to_string(),
                store: store.describe(),
            });
        }
        Err(e) => return Err(e.into()),
    };
    let meta: BackgroundMeta =
        serde_json::from_slice(&bytes).map_err(|e| LibraryError::BadMeta {
            key: key.clone(),
            source: e,
        })?;
    store.delete_prefix(&key).await?;
    store.delete_prefix(&video_key(id)).await?;
    Ok(meta)
}

/// Picks a background: `Id` finds it, `Tag` and `Random` choose `seed % n` among the matching
/// backgrounds in id order, so the same seed (a job id's hash) always picks the same one.
pub fn pick_background<'a>(
    catalog: &'a [BackgroundMeta],
    selector: &BackgroundSelector,
    seed: u64,
) -> Result<&'a BackgroundMeta, LibraryError> {
    let mut sorted: Vec<&BackgroundMeta> = catalog.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    let choose = |pool: Vec<&'a BackgroundMeta>| pool[(seed % pool.len() as u64) as usize];
    match selector {
        BackgroundSelector::Id(id) => {
            sorted
                .into_iter()
                .find(|m| &m.id == id)
                .ok_or_else(|| LibraryError::UnknownId {
                    id: id.clone(),
                    store: "the library".into(),
                })
        }
        BackgroundSelector::Tag(tag) => {
            let pool: Vec<_> = sorted
                .iter()
                .copied()
                .filter(|m| m.tags.iter().any(|t| t == tag))
                .collect();
            if pool.is_empty() {
                let mut known: Vec<&str> = catalog
                    .iter()
                    .flat_map(|m| m.tags.iter().map(String::as_str))
                    .collect();
                known.sort_unstable();
                known.dedup();
                return Err(LibraryError::NoTag {
                    tag: tag.clone(),
                    known: if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    },
                });
            }
            Ok(choose(pool))
        }
        BackgroundSelector::Random => {
            if sorted.is_empty() {
                return Err(LibraryError::Empty);
            }
            Ok(choose(sorted))
        }
    }
}

/// The job's background for a picked entry (`start_ms: None` lets the plan choose a start
/// from the job id).
pub fn choice(meta: &BackgroundMeta, start_ms: Option<u64>) -> BackgroundChoice {
    BackgroundChoice {
        key: meta.key.clone(),
        start_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: &str, tags: &[&str]) -> BackgroundMeta {
        BackgroundMeta {
            id: id.into(),
            key: video_key(id),
            duration_ms: 60_000,
            width: 1920,
            height: 1080,
            fps: 30.0,
            codec: "h264".into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            bytes: 1,
            added_at: 0,
            original_name: String::new(),
            frames: 1800,
            keyint: 30,
            crf: 12.0,
            preset: "faster".into(),
            source: SourceMeta::default(),
            prepare_ms: 0,
        }
    }

    #[test]
    fn metadata_from_before_preparing_still_parses() {
        let old = r#"{"id":"ab12","key":"backgrounds/ab12.mp4","duration_ms":12000,"width":320,
            "height":240,"fps":30.0,"codec":"h264","tags":["x"],"bytes":5,"added_at":1}"#;
        let m: BackgroundMeta = serde_json::from_str(old).unwrap();
        assert_eq!((m.width, m.preset.as_str(), m.frames), (320, "", 0));
        assert_eq!(m.source, SourceMeta::default());
        let back: BackgroundMeta =
            serde_json::from_slice(&serde_json::to_vec(&meta("a", &[])).unwrap()).unwrap();
        assert_eq!(back, meta("a", &[]));
    }

    #[test]
    fn picks_by_id_tag_and_seed() {
        let cat = vec![
            meta("c", &["minecraft"]),
            meta("a", &["parkour", "minecraft"]),
            meta("b", &["parkour"]),
        ];
        let id = |s: &BackgroundSelector, seed| pick_background(&cat, s, seed).unwrap().id.clone();
        assert_eq!(id(&BackgroundSelector::Id("b".into()), 7), "b");
        assert_eq!(id(&BackgroundSelector::Tag("parkour".into()), 0), "a");
        assert_eq!(id(&BackgroundSelector::Tag("parkour".into()), 1), "b");
        assert_eq!(id(&BackgroundSelector::Random, 2), "c");
        // The catalog's order does not matter.
        let mut rev = cat.clone();
        rev.reverse();
        assert_eq!(
            pick_background(&rev, &BackgroundSelector::Random, 2)
                .unwrap()
                .id,
            "c"
        );
        let e = pick_background(&cat, &BackgroundSelector::Tag("subway".into()), 0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no background tagged \"subway\" (tags in the library: minecraft, parkour)"
        );
        assert!(matches!(
            pick_background(&[], &BackgroundSelector::Random, 0),
            Err(LibraryError::Empty)
        ));
        assert!(matches!(
            pick_background(&cat, &BackgroundSelector::Id("z".into()), 0),
            Err(LibraryError::UnknownId { .. })
        ));
    }

    #[test]
    fn selectors_have_a_stable_json_form() {
        assert_eq!(
            serde_json::to_string(&BackgroundSelector::Tag("x".into())).unwrap(),
            r#"{"tag":"x"}"#
        );
        assert_eq!(
            serde_json::to_string(&BackgroundSelector::Random).unwrap(),
            r#""random""#
        );
    }

    #[test]
    fn tags_and_ids_are_checked() {
        assert_eq!(
            normalise_tags(&[" Parkour ".into(), "parkour".into(), "a_b-1".into()]).unwrap(),
            ["parkour", "a_b-1"]
        );
        assert!(normalise_tags(&["two words".into()]).is_err());
        assert!(normalise_tags(&["".into()]).is_err());
        assert!(check_id("0123abcd").is_ok());
        assert!(check_id("../x").is_err());
        assert!(check_id("ABC").is_err());
        assert_ne!(new_id(), new_id());
        assert_eq!(new_id().len(), 16);
    }
}
