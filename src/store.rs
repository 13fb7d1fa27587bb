//! Storage capabilities: blobs (S3 in the cloud, a directory on one machine).
//!
//! Steps ask for a [`BlobStore`]; keys follow the layout in [`crate::keys`] and are the same
//! in both adapters, so a local run's directory mirrors the bucket. Writes are atomic: a reader
//! never sees half an object under its final key (S3 puts are atomic; [`FsStore`] writes a
//! temporary file and renames it).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use storyreel_mp4::ReadAt;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The key holds no object.
    #[error("object {key:?} not found in {store}")]
    NotFound { store: String, key: String },
    /// The key is not a valid storage key.
    #[error("invalid storage key {key:?} ({reason})")]
    InvalidKey { key: String, reason: &'static str },
    /// The object is larger than the caller allows.
    #[error("object {key:?} is {bytes} bytes (expected <= {max})")]
    TooLarge { key: String, bytes: u64, max: u64 },
    /// Access was refused (permissions).
    #[error("access denied to {key:?} in {store}")]
    AccessDenied {
        store: String,
        key: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The service asked us to slow down, or was briefly unavailable: worth retrying.
    #[error("{store} is throttling or unavailable while accessing {key:?}")]
    Unavailable {
        store: String,
        key: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Any other I/O failure.
    #[error("{op} {key:?} in {store} failed")]
    Io {
        op: &'static str,
        store: String,
        key: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StoreError {
    /// True when retrying the same call may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }
}

/// Metadata of a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub bytes: u64,
    /// An opaque version tag (S3 ETag; size and mtime locally).
    pub etag: String,
}

/// User-defined metadata of an object: S3's `x-amz-meta-<name>` headers, names in lowercase.
pub type UserMetadata = std::collections::BTreeMap<String, String>;

/// Objects by key: the one storage capability every step uses.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// A name for messages, e.g. `s3://bucket` or a directory.
    fn describe(&self) -> String;
    /// Reads a whole object, refusing objects over `max_bytes`.
    async fn get(&self, key: &str, max_bytes: u64) -> Result<Vec<u8>, StoreError>;
    /// Writes a whole object atomically, replacing any previous one.
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), StoreError>;
    /// Uploads a local file (multipart for large files where the store supports it).
    async fn put_file(&self, key: &str, path: &Path, content_type: &str) -> Result<(), StoreError>;
    /// Downloads an object to a local file (written atomically).
    async fn get_file(&self, key: &str, path: &Path) -> Result<(), StoreError>;
    /// The object's metadata, or `None` if the key holds nothing.
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError>;
    /// [`BlobStore::head`] with the object's user-defined metadata (what an uploader set, e.g.
    /// `aws s3 cp --metadata`). A store without user metadata (a directory) answers an empty
    /// map.
    async fn head_with_metadata(
        &self,
        key: &str,
    ) -> Result<Option<(ObjectInfo, UserMetadata)>, StoreError> {
        Ok(self
            .head(key)
            .await?
            .map(|info| (info, UserMetadata::new())))
    }
    /// Copies an object inside the store.
    async fn copy(&self, from: &str, to: &str) -> Result<(), StoreError>;
    /// Deletes every object under `prefix` (a missing prefix is not an error).
    async fn delete_prefix(&self, prefix: &str) -> Result<(), StoreError>;
    /// Random access to an object for demuxing (ranged reads; called from blocking code).
    async fn reader(&self, key: &str) -> Result<Box<dyn ReadAt + Send + Sync>, StoreError>;
    /// A link to download the object for `expires_secs` (a pre-signed URL, or a file path).
    async fn link(&self, key: &str, expires_secs: u64) -> Result<String, StoreError>;
    /// Keys under `prefix`, sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError>;
}

/// Checks a key the way both stores can honour it: relative, `/`-separated, no `.` or `..`
/// segments, no empty segments, printable.
pub fn check_key(key: &str) -> Result<(), StoreError> {
    let bad = |reason| {
        Err(StoreError::InvalidKey {
            key: key.to_string(),
            reason,
        })
    };
    if key.is_empty() || key.len() > 1024 {
        return bad("expected 1 ..= 1024 bytes");
    }
    if key.starts_with('/') || key.ends_with('/') {
        return bad("expected no leading or trailing '/'");
    }
    if key.chars().any(|c| c.is_control() || c == '\\') {
        return bad("expected no control characters or backslashes");
    }
    if key
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return bad("expected no empty, '.' or '..' segments");
    }
    Ok(())
}

/// A directory that mirrors the bucket's key layout: key `a/b.mp4` is the file `root/a/b.mp4`.
#[derive(Debug, Clone)]
pub struct FsStore {
    root: PathBuf,
}

impl FsStore {
    /// A store rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FsStore { root: root.into() }
    }

    /// The directory this store writes into.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file that holds `key`.
    pub fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        check_key(key)?;
        Ok(self.root.join(key))
    }

    fn io(&self, op: &'static str, key: &str, e: io::Error) -> StoreError {
        if e.kind() == io::ErrorKind::NotFound {
            StoreError::NotFound {
                store: self.describe(),
                key: key.to_string(),
            }
        } else {
            StoreError::Io {
                op,
                store: self.describe(),
                key: key.to_string(),
                source: Box::new(e),
            }
        }
    }

    fn write_atomic(
        &self,
        key: &str,
        write: impl FnOnce(&Path) -> io::Result<()>,
    ) -> Result<(), StoreError> {
        let path = self.path(key)?;
        let result = (|| {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = partial_path(&path);
            write(&tmp)?;
            std::fs::rename(&tmp, &path)
        })();
        result.map_err(|e| self.io("write", key, e))
    }
}

/// Where an object is written before it is renamed into place. Unique per process and call,
/// so concurrent writers of one key never share a temporary file.
fn partial_path(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".{}.{n}.partial", std::process::id()));
    path.with_file_name(name)
}

struct FileReader(std::fs::File);

impl ReadAt for FileReader {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(&self.0, buf, offset)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
}

#[async_trait]
impl BlobStore for FsStore {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    async fn get(&self, key: &str, max_bytes: u64) -> Result<Vec<u8>, StoreError> {
        let path = self.path(key)?;
        let len = std::fs::metadata(&path)
            .map_err(|e| self.io("read", key, e))?
            .len();
        if len > max_bytes {
            return Err(StoreError::TooLarge {
                key: key.to_string(),
                bytes: len,
                max: max_bytes,
            });
        }
        std::fs::read(&path).map_err(|e| self.io("read", key, e))
    }

    async fn put(&self, key: &str, bytes: Vec<u8>, _content_type: &str) -> Result<(), StoreError> {
        self.write_atomic(key, |tmp| std::fs::write(tmp, &bytes))
    }

    async fn put_file(
        &self,
        key: &str,
        path: &Path,
        _content_type: &str,
    ) -> Result<(), StoreError> {
        self.write_atomic(key, |tmp| std::fs::copy(path, tmp).map(|_| ()))
    }

    async fn get_file(&self, key: &str, path: &Path) -> Result<(), StoreError> {
        let src = self.path(key)?;
        let tmp = partial_path(path);
        std::fs::copy(&src, &tmp)
            .and_then(|_| std::fs::rename(&tmp, path))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                self.io("read", key, e)
            })
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError> {
        let path = self.path(key)?;
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(Some(file_info(key, &m))),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io("stat", key, e)),
        }
    }

    async fn copy(&self, from: &str, to: &str) -> Result<(), StoreError> {
        let src = self.path(from)?;
        if !src.is_file() {
            return Err(StoreError::NotFound {
                store: self.describe(),
                key: from.to_string(),
            });
        }
        self.write_atomic(to, |tmp| std::fs::copy(&src, tmp).map(|_| ()))
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<(), StoreError> {
        let path = self.path(prefix.trim_end_matches('/'))?;
        let result = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match result {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(self.io("delete", prefix, e)),
            _ => Ok(()),
        }
    }

    async fn reader(&self, key: &str) -> Result<Box<dyn ReadAt + Send + Sync>, StoreError> {
        let path = self.path(key)?;
        let file = std::fs::File::open(&path).map_err(|e| self.io("open", key, e))?;
        Ok(Box::new(FileReader(file)))
    }

    async fn link(&self, key: &str, _expires_secs: u64) -> Result<String, StoreError> {
        let path = self.path(key)?;
        let abs = std::path::absolute(&path).map_err(|e| self.io("resolve", key, e))?;
        Ok(abs.display().to_string())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        let mut out = Vec::new();
        let base = self.root.clone();
        let mut stack = vec![base.clone()];
        while let Some(dir) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(self.io("list", prefix, e)),
            };
            for entry in entries.flatten() {
                let p = entry.path();
                let Ok(meta) = entry.metadata() else { continue };
                let Ok(rel) = p.strip_prefix(&base) else {
                    continue;
                };
                let key = rel.to_string_lossy().replace('\\', "/");
                if meta.is_dir() {
                    if prefix.starts_with(&format!("{key}/"))
                        || key.starts_with(prefix)
                        || prefix.is_empty()
                    {
                        stack.push(p);
                    }
                } else if key.starts_with(prefix) && !key.ends_with(".partial") {
                    out.push(file_info(&key, &meta));
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}

fn file_info(key: &str, m: &std::fs::Metadata) -> ObjectInfo {
    let mtime = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    ObjectInfo {
        key: key.to_string(),
        bytes: m.len(),
        etag: format!("{:x}-{:x}", m.len(), mtime),
    }
}

/// A shared store.
pub type SharedStore = Arc<dyn BlobStore>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked() {
        for bad in ["", "/abs", "a//b", "a/../b", "./a", "a/", "a\\b", "a\nb"] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        for good in ["a", "jobs/x/chunk-00001.h264", "drop/My Story (1).txt"] {
            assert!(check_key(good).is_ok(), "{good:?}");
        }
    }

    #[tokio::test]
    async fn fs_store_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let s = FsStore::new(dir.path());
        assert!(s.head("a/b.txt").await.unwrap().is_none());
        assert!(matches!(
            s.get("a/b.txt", 10).await,
            Err(StoreError::NotFound { .. })
        ));
        s.put("a/b.txt", b"hello".to_vec(), "text/plain")
            .await
            .unwrap();
        assert_eq!(s.get("a/b.txt", 10).await.unwrap(), b"hello");
        assert!(matches!(
            s.get("a/b.txt", 4).await,
            Err(StoreError::TooLarge { bytes: 5, .. })
        ));
        s.copy("a/b.txt", "c/d.txt").await.unwrap();
        let keys: Vec<_> = s
            .list("")
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
        assert_eq!(keys, ["a/b.txt", "c/d.txt"]);
        let r = s.reader("c/d.txt").await.unwrap();
        let mut buf = [0u8; 3];
        r.read_exact_at(1, &mut buf).unwrap();
        assert_eq!(&buf, b"ell");
        s.delete_prefix("a").await.unwrap();
        assert!(s.head("a/b.txt").await.unwrap().is_none());
        assert_eq!(s.list("c/").await.unwrap().len(), 1);
    }
}
