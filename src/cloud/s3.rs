//! [`S3Store`]: the bucket as a [`BlobStore`], with the real `aws-sdk-s3` client.
//!
//! - Whole-object reads are capped: the `Content-Length` of the answer is checked before the
//!   body is read, and the body is counted as it arrives.
//! - Large files go up as multipart uploads ([`MultipartConfig`]) streamed from disk part by
//!   part, a few parts at once; a failed upload is aborted so no parts linger (the bucket's
//!   lifecycle rule also aborts stale uploads after a day).
//! - [`BlobStore::reader`] gives a [`ReadAt`] that issues ranged GETs through a small cache of
//!   aligned blocks, so demuxing a background reads its index and the samples a chunk needs,
//!   never the whole file.
//! - Links are pre-signed GET URLs, at most [`MAX_LINK_SECS`] (S3's limit for SigV4).
//! - [`BlobStore::head_with_metadata`] also returns the uploader's `x-amz-meta-*` metadata
//!   (the tags of footage under `backgrounds/incoming/`).
//! - With an endpoint override (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3`: moto, MinIO) the
//!   client uses path-style addressing (`http://host/bucket/key`), which local servers need.
//!
//! Errors: a missing key is [`StoreError::NotFound`], a missing bucket an [`StoreError::Io`] whose
//! cause is [`NoSuchBucket`] (it names the bucket and where its name came from), 403 is
//! [`StoreError::AccessDenied`], throttling/5xx/timeouts are [`StoreError::Unavailable`]
//! (retryable; the SDK has already retried them). The SDK error is always kept as the source.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier,
};
use storyreel_mp4::ReadAt;

use super::{AnySdkError, Failure, SdkConfig, classify};
use crate::store::{BlobStore, ObjectInfo, StoreError, UserMetadata, check_key};

/// Longest a pre-signed link may last: 7 days (SigV4's limit).
pub const MAX_LINK_SECS: u64 = 7 * 24 * 3600;

/// Size of the aligned blocks a [`BlobStore::reader`] fetches and caches.
pub const READ_BLOCK: u64 = 1 << 20;
/// Blocks a reader keeps (least recently used first out).
pub const READ_CACHE_BLOCKS: usize = 8;

const NOT_FOUND: &[&str] = &["NoSuchKey", "NotFound"];
const NO_BUCKET: &[&str] = &["NoSuchBucket"];

/// The bucket named by a store does not exist.
#[derive(Debug, thiserror::Error)]
#[error(
    "bucket {bucket:?} does not exist (check --bucket or STORYREEL_BUCKET, the stack output BucketName)"
)]
pub struct NoSuchBucket {
    pub bucket: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// When and how [`BlobStore::put_file`] uses a multipart upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MultipartConfig {
    /// Files of at least this many bytes go up in parts.
    pub threshold: u64,
    /// Bytes per part (S3: at least 5 MiB except the last; grown so a file needs at most
    /// 10,000 parts).
    pub part_size: u64,
    /// Parts in flight at once (each streams from disk, so memory stays small).
    pub concurrency: usize,
}

impl Default for MultipartConfig {
    fn default() -> Self {
        MultipartConfig {
            threshold: 64 << 20,
            part_size: 16 << 20,
            concurrency: 4,
        }
    }
}

/// S3's smallest part (all but the last).
const MIN_PART: u64 = 5 << 20;
/// S3's most parts in one upload.
const MAX_PARTS: u64 = 10_000;

/// Objects in an S3 bucket.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    multipart: MultipartConfig,
    /// Set once any call proved the bucket exists: a 404 on HEAD then means "no such key".
    bucket_seen: Arc<AtomicBool>,
}

impl S3Store {
    /// A store over `bucket` with a client built from `conf` (storyreel's retry policy;
    /// path-style addressing when an endpoint override is set).
    pub fn new(conf: &SdkConfig, bucket: &str) -> Self {
        let path_style = super::endpoint_overridden(conf, "AWS_ENDPOINT_URL_S3");
        let config = aws_sdk_s3::config::Builder::from(conf)
            .retry_config(super::retry_config())
            .force_path_style(path_style)
            .build();
        Self::from_client(Client::from_conf(config), bucket)
    }

    /// A store over `bucket` with a client configured by the caller.
    pub fn from_client(client: Client, bucket: &str) -> Self {
        S3Store {
            client,
            bucket: bucket.to_string(),
            multipart: MultipartConfig::default(),
            bucket_seen: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Replaces the multipart policy (part sizes are still raised to S3's minimum).
    pub fn with_multipart(mut self, multipart: MultipartConfig) -> Self {
        self.multipart = multipart;
        self
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The S3 client (its configuration shows the retry policy and addressing style).
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn saw_bucket(&self) {
        self.bucket_seen.store(true, Ordering::Relaxed);
    }

    /// Maps an SDK error of `op` on `key`.
    fn err<E>(&self, op: &'static str, key: &str, e: AnySdkError<E>) -> StoreError
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        map_error(op, &self.describe(), &self.bucket, key, e)
    }

    /// A 404 on HEAD says nothing about whether the bucket exists: ask once.
    async fn check_bucket(&self, op: &'static str, key: &str) -> Result<(), StoreError> {
        if self.bucket_seen.load(Ordering::Relaxed) {
            return Ok(());
        }
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => {
                self.saw_bucket();
                Ok(())
            }
            Err(e) => {
                let failure = classify(&e, &[], &["NoSuchBucket", "NotFound"]);
                let failure = if failure == Failure::NotFound {
                    Failure::NoContainer
                } else {
                    failure
                };
                Err(error_for(
                    failure,
                    op,
                    &self.describe(),
                    &self.bucket,
                    key,
                    Box::new(e),
                ))
            }
        }
    }

    /// Size, ETag and user metadata of `key`, or `None` when the key holds nothing.
    async fn head_object(
        &self,
        key: &str,
    ) -> Result<Option<(u64, String, UserMetadata)>, StoreError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(h) => {
                self.saw_bucket();
                let bytes = u64::try_from(h.content_length().unwrap_or(0)).unwrap_or(0);
                // The SDK strips `x-amz-meta-`; HTTP header names are case-insensitive.
                let meta = h
                    .metadata()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                    .collect();
                Ok(Some((bytes, clean_etag(h.e_tag()), meta)))
            }
            Err(e) => {
                let failure = classify(&e, NOT_FOUND, NO_BUCKET);
                if failure == Failure::NotFound {
                    self.check_bucket("stat", key).await?;
                    Ok(None)
                } else {
                    Err(self.err("stat", key, e))
                }
            }
        }
    }

    async fn put_multipart(
        &self,
        key: &str,
        path: &Path,
        len: u64,
        content_type: &str,
    ) -> Result<(), StoreError> {
        let part_size = part_size_for(len, self.multipart.part_size);
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .send()
            .await
            .map_err(|e| self.err("write", key, e))?;
        self.saw_bucket();
        let upload_id = created
            .upload_id()
            .ok_or_else(|| StoreError::Io {
                op: "write",
                store: self.describe(),
                key: key.to_string(),
                source: "CreateMultipartUpload answered without an upload id".into(),
            })?
            .to_string();
        let result = self
            .upload_parts(key, path, len, part_size, &upload_id)
            .await;
        match result {
            Ok(parts) => {
                let done = self
                    .client
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts))
                            .build(),
                    )
                    .send()
                    .await;
                match done {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        self.abort(key, &upload_id).await;
                        Err(self.err("write", key, e))
                    }
                }
            }
            Err(e) => {
                self.abort(key, &upload_id).await;
                Err(e)
            }
        }
    }

    /// Uploads the parts, a few at once; stops at the first failure.
    async fn upload_parts(
        &self,
        key: &str,
        path: &Path,
        len: u64,
        part_size: u64,
        upload_id: &str,
    ) -> Result<Vec<CompletedPart>, StoreError> {
        let count = len.div_ceil(part_size);
        let mut parts = Vec::with_capacity(count as usize);
        let mut running = tokio::task::JoinSet::new();
        let mut next = 0u64;
        let concurrency = self.multipart.concurrency.max(1);
        loop {
            while next < count && running.len() < concurrency {
                let offset = next * part_size;
                let size = part_size.min(len - offset);
                let number = (next + 1) as i32;
                let client = self.client.clone();
                let (bucket, key_owned, id, path) = (
                    self.bucket.clone(),
                    key.to_string(),
                    upload_id.to_string(),
                    path.to_path_buf(),
                );
                let store = self.describe();
                running.spawn(async move {
                    let body = ByteStream::read_from()
                        .path(&path)
                        .offset(offset)
                        .length(Length::Exact(size))
                        .build()
                        .await
                        .map_err(|e| StoreError::Io {
                            op: "read part of",
                            store: path.display().to_string(),
                            key: key_owned.clone(),
                            source: Box::new(e),
                        })?;
                    let out = client
                        .upload_part()
                        .bucket(&bucket)
                        .key(&key_owned)
                        .upload_id(&id)
                        .part_number(number)
                        .content_length(size as i64)
                        .checksum_algorithm(ChecksumAlgorithm::Crc32)
                        .body(body)
                        .send()
                        .await
                        .map_err(|e| map_error("write", &store, &bucket, &key_owned, e))?;
                    Ok::<_, StoreError>(
                        CompletedPart::builder()
                            .part_number(number)
                            .set_e_tag(out.e_tag().map(str::to_string))
                            .set_checksum_crc32(out.checksum_crc32().map(str::to_string))
                            .build(),
                    )
                });
                next += 1;
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            match joined {
                Ok(Ok(part)) => parts.push(part),
                Ok(Err(e)) => return Err(e),
                Err(e) => {
                    return Err(StoreError::Io {
                        op: "write",
                        store: self.describe(),
                        key: key.to_string(),
                        source: Box::new(e),
                    });
                }
            }
        }
        parts.sort_by_key(|p| p.part_number());
        Ok(parts)
    }

    async fn abort(&self, key: &str, upload_id: &str) {
        // Best effort: the lifecycle rule aborts what this misses after a day.
        if let Err(e) = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
        {
            warn(&format!(
                "could not abort the multipart upload of {key:?} in {}: {}",
                self.describe(),
                aws_sdk_s3::error::DisplayErrorContext(e)
            ));
        }
    }

    /// Deletes `keys` in batches of 1,000 (DeleteObjects' limit).
    async fn delete_keys(&self, prefix: &str, keys: Vec<String>) -> Result<(), StoreError> {
        for batch in keys.chunks(1000) {
            let objects = batch
                .iter()
                .map(|k| ObjectIdentifier::builder().key(k).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| StoreError::Io {
                    op: "delete",
                    store: self.describe(),
                    key: prefix.to_string(),
                    source: Box::new(e),
                })?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| StoreError::Io {
                    op: "delete",
                    store: self.describe(),
                    key: prefix.to_string(),
                    source: Box::new(e),
                })?;
            let out = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| self.err("delete", prefix, e))?;
            if let Some(first) = out.errors().first() {
                let code = first.code().unwrap_or("error").to_string();
                let failure = super::classify_code(Some(&code), None, NOT_FOUND, NO_BUCKET);
                let source: Box<dyn std::error::Error + Send + Sync> = format!(
                    "{} of {} objects not deleted, first {:?}: {code}: {}",
                    out.errors().len(),
                    batch.len(),
                    first.key().unwrap_or_default(),
                    first.message().unwrap_or_default()
                )
                .into();
                return Err(error_for(
                    failure,
                    "delete",
                    &self.describe(),
                    &self.bucket,
                    prefix,
                    source,
                ));
            }
        }
        Ok(())
    }
}

/// A problem worth a line in the log (stderr: CloudWatch in a Lambda) but not an error.
fn warn(msg: &str) {
    eprintln!("warning: {msg}");
}

/// The part size for a file of `len` bytes: at least `wanted` and S3's minimum, and large
/// enough that the file needs at most 10,000 parts (rounded up to whole MiB).
pub fn part_size_for(len: u64, wanted: u64) -> u64 {
    let needed = len.div_ceil(MAX_PARTS).div_ceil(1 << 20) << 20;
    wanted.max(MIN_PART).max(needed)
}

/// S3 quotes ETags; events and [`ObjectInfo`] carry them bare.
fn clean_etag(etag: Option<&str>) -> String {
    etag.unwrap_or_default().trim_matches('"').to_string()
}

/// Maps an SDK error of `op` on `key` in `bucket` to a [`StoreError`], keeping it as the source.
pub fn map_error<E>(
    op: &'static str,
    store: &str,
    bucket: &str,
    key: &str,
    e: AnySdkError<E>,
) -> StoreError
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let failure = classify(&e, NOT_FOUND, NO_BUCKET);
    error_for(failure, op, store, bucket, key, Box::new(e))
}

fn error_for(
    failure: Failure,
    op: &'static str,
    store: &str,
    bucket: &str,
    key: &str,
    source: Box<dyn std::error::Error + Send + Sync>,
) -> StoreError {
    let (store, key) = (store.to_string(), key.to_string());
    match failure {
        Failure::NotFound => StoreError::NotFound { store, key },
        Failure::NoContainer => StoreError::Io {
            op,
            store,
            key,
            source: Box::new(NoSuchBucket {
                bucket: bucket.to_string(),
                source,
            }),
        },
        Failure::Denied => StoreError::AccessDenied { store, key, source },
        Failure::Unavailable => StoreError::Unavailable { store, key, source },
        Failure::Other => StoreError::Io {
            op,
            store,
            key,
            source,
        },
    }
}

/// Percent-encodes a key for `x-amz-copy-source` (everything but unreserved characters and `/`).
fn encode_copy_source(bucket: &str, key: &str) -> String {
    let mut out = format!("{bucket}/");
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[async_trait]
impl BlobStore for S3Store {
    fn describe(&self) -> String {
        format!("s3://{}", self.bucket)
    }

    async fn get(&self, key: &str, max_bytes: u64) -> Result<Vec<u8>, StoreError> {
        check_key(key)?;
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.err("read", key, e))?;
        self.saw_bucket();
        let too_large = |bytes: u64| StoreError::TooLarge {
            key: key.to_string(),
            bytes,
            max: max_bytes,
        };
        let announced = u64::try_from(out.content_length().unwrap_or(0)).unwrap_or(0);
        if announced > max_bytes {
            return Err(too_large(announced));
        }
        let mut body = out.body;
        let mut bytes = Vec::with_capacity(announced as usize);
        while let Some(chunk) = body.try_next().await.map_err(|e| StoreError::Unavailable {
            store: self.describe(),
            key: key.to_string(),
            source: Box::new(e),
        })? {
            if (bytes.len() + chunk.len()) as u64 > max_bytes {
                return Err(too_large((bytes.len() + chunk.len()) as u64));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }

    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), StoreError> {
        check_key(key)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| self.err("write", key, e))?;
        self.saw_bucket();
        Ok(())
    }

    async fn put_file(&self, key: &str, path: &Path, content_type: &str) -> Result<(), StoreError> {
        check_key(key)?;
        let local_err = |e: std::io::Error| StoreError::Io {
            op: "upload",
            store: path.display().to_string(),
            key: key.to_string(),
            source: Box::new(e),
        };
        let len = std::fs::metadata(path).map_err(local_err)?.len();
        if len >= self.multipart.threshold {
            return self.put_multipart(key, path, len, content_type).await;
        }
        let body = ByteStream::from_path(path)
            .await
            .map_err(|e| StoreError::Io {
                op: "upload",
                store: path.display().to_string(),
                key: key.to_string(),
                source: Box::new(e),
            })?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(body)
            .send()
            .await
            .map_err(|e| self.err("write", key, e))?;
        self.saw_bucket();
        Ok(())
    }

    async fn get_file(&self, key: &str, path: &Path) -> Result<(), StoreError> {
        use std::io::Write;
        check_key(key)?;
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.err("read", key, e))?;
        self.saw_bucket();
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".{}.partial", std::process::id()));
        let tmp = path.with_file_name(name);
        let local_err = |e: std::io::Error| StoreError::Io {
            op: "download",
            store: path.display().to_string(),
            key: key.to_string(),
            source: Box::new(e),
        };
        let result = async {
            // Local disk writes of network-paced chunks: short enough not to need a blocking
            // thread.
            let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(local_err)?);
            let mut body = out.body;
            while let Some(chunk) = body.try_next().await.map_err(|e| StoreError::Unavailable {
                store: self.describe(),
                key: key.to_string(),
                source: Box::new(e),
            })? {
                file.write_all(&chunk).map_err(local_err)?;
            }
            file.into_inner()
                .map_err(|e| local_err(e.into_error()))?
                .sync_all()
                .map_err(local_err)?;
            std::fs::rename(&tmp, path).map_err(local_err)
        }
        .await;
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError> {
        Ok(self.head_with_metadata(key).await?.map(|(info, _)| info))
    }

    async fn head_with_metadata(
        &self,
        key: &str,
    ) -> Result<Option<(ObjectInfo, UserMetadata)>, StoreError> {
        check_key(key)?;
        Ok(self.head_object(key).await?.map(|(bytes, etag, meta)| {
            let info = ObjectInfo {
                key: key.to_string(),
                bytes,
                etag,
            };
            (info, meta)
        }))
    }

    async fn copy(&self, from: &str, to: &str) -> Result<(), StoreError> {
        check_key(from)?;
        check_key(to)?;
        self.client
            .copy_object()
            .bucket(&self.bucket)
            .key(to)
            .copy_source(encode_copy_source(&self.bucket, from))
            .send()
            .await
            .map_err(|e| match self.err("copy", from, e) {
                // The missing object is the source.
                StoreError::NotFound { store, .. } => StoreError::NotFound {
                    store,
                    key: from.to_string(),
                },
                other => other,
            })?;
        Ok(())
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<(), StoreError> {
        // As in FsStore, a prefix names a key or a "directory": `a` deletes `a` and `a/...`,
        // never `ab`.
        let base = prefix.trim_end_matches('/');
        check_key(base)?;
        let dir = format!("{base}/");
        let keys: Vec<String> = self
            .list(base)
            .await?
            .into_iter()
            .map(|o| o.key)
            .filter(|k| k == base || k.starts_with(&dir))
            .collect();
        self.delete_keys(prefix, keys).await
    }

    async fn reader(&self, key: &str) -> Result<Box<dyn ReadAt + Send + Sync>, StoreError> {
        check_key(key)?;
        let (len, etag, _) = self
            .head_object(key)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                store: self.describe(),
                key: key.to_string(),
            })?;
        Ok(Box::new(S3Reader {
            runtime: tokio::runtime::Handle::current(),
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: key.to_string(),
            len,
            etag,
            cache: Mutex::new(Vec::new()),
        }))
    }

    async fn link(&self, key: &str, expires_secs: u64) -> Result<String, StoreError> {
        check_key(key)?;
        let secs = expires_secs.clamp(1, MAX_LINK_SECS);
        let presign = PresigningConfig::expires_in(Duration::from_secs(secs)).map_err(|e| {
            StoreError::Io {
                op: "sign a link to",
                store: self.describe(),
                key: key.to_string(),
                source: Box::new(e),
            }
        })?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(presign)
            .await
            .map_err(|e| self.err("sign a link to", key, e))?;
        Ok(request.uri().to_string())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| self.err("list", prefix, e))?;
            self.saw_bucket();
            for o in page.contents() {
                if let Some(key) = o.key() {
                    out.push(ObjectInfo {
                        key: key.to_string(),
                        bytes: u64::try_from(o.size().unwrap_or(0)).unwrap_or(0),
                        etag: clean_etag(o.e_tag()),
                    });
                }
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}

/// Random access to one object by ranged GETs, through a small LRU cache of aligned blocks.
///
/// [`ReadAt`] is synchronous: the demuxer and decoder are blocking code that runs under
/// `spawn_blocking` (render-chunk, prepare) or on plain threads. Each read therefore drives
/// its GET with [`tokio::runtime::Handle::block_on`] on the runtime captured when the reader
/// was made. That is safe because it is only ever called off the runtime's worker threads
/// (`block_on` panics inside an async task, which this type must never be used from); on a
/// current-thread runtime the thread awaiting the blocking task drives the I/O meanwhile.
/// Every GET carries `If-Match` with the ETag seen at open, so an object replaced while it is
/// read fails loudly instead of mixing two versions.
struct S3Reader {
    runtime: tokio::runtime::Handle,
    client: Client,
    bucket: String,
    key: String,
    len: u64,
    etag: String,
    /// Most recently used last.
    cache: Mutex<Vec<(u64, Arc<Vec<u8>>)>>,
}

impl S3Reader {
    /// Bytes `[start, end)` of the object.
    fn fetch(&self, start: u64, end: u64) -> std::io::Result<Vec<u8>> {
        let io_err = |e: Box<dyn std::error::Error + Send + Sync>| {
            std::io::Error::other(format!(
                "ranged read of s3://{}/{} bytes {start}..{end}: {e}",
                self.bucket, self.key
            ))
        };
        self.runtime.block_on(async {
            let mut request = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(&self.key)
                .range(format!("bytes={start}-{}", end - 1));
            if !self.etag.is_empty() {
                request = request.if_match(format!("\"{}\"", self.etag));
            }
            let out = request.send().await.map_err(|e| {
                let e = map_error(
                    "read",
                    &format!("s3://{}", self.bucket),
                    &self.bucket,
                    &self.key,
                    e,
                );
                std::io::Error::other(e)
            })?;
            let mut body = out.body;
            let mut bytes = Vec::with_capacity((end - start) as usize);
            while let Some(chunk) = body.try_next().await.map_err(|e| io_err(Box::new(e)))? {
                if bytes.len() + chunk.len() > (end - start) as usize {
                    return Err(io_err("the server sent more bytes than the range".into()));
                }
                bytes.extend_from_slice(&chunk);
            }
            if bytes.len() as u64 != end - start {
                return Err(io_err(
                    format!("got {} bytes (expected {})", bytes.len(), end - start).into(),
                ));
            }
            Ok(bytes)
        })
    }

    fn block(&self, index: u64) -> std::io::Result<Arc<Vec<u8>>> {
        if let Ok(mut cache) = self.cache.lock()
            && let Some(pos) = cache.iter().position(|(i, _)| *i == index)
        {
            let hit = cache.remove(pos);
            let data = hit.1.clone();
            cache.push(hit);
            return Ok(data);
        }
        let start = index * READ_BLOCK;
        let end = (start + READ_BLOCK).min(self.len);
        let data = Arc::new(self.fetch(start, end)?);
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= READ_CACHE_BLOCKS {
                cache.remove(0);
            }
            cache.push((index, data.clone()));
        }
        Ok(data)
    }
}

impl ReadAt for S3Reader {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.len)
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "read of {} bytes at {offset} is past the end of s3://{}/{} ({} bytes)",
                        buf.len(),
                        self.bucket,
                        self.key,
                        self.len
                    ),
                )
            })?;
        if buf.is_empty() {
            return Ok(());
        }
        // A large read (a whole sample run) goes straight through, not via the cache.
        if buf.len() as u64 >= 2 * READ_BLOCK {
            let bytes = self.fetch(offset, end)?;
            buf.copy_from_slice(&bytes);
            return Ok(());
        }
        let mut pos = offset;
        while pos < end {
            let index = pos / READ_BLOCK;
            let block = self.block(index)?;
            let within = (pos - index * READ_BLOCK) as usize;
            let n = ((end - pos) as usize).min(block.len() - within);
            let at = (pos - offset) as usize;
            buf[at..at + n].copy_from_slice(&block[within..within + n]);
            pos += n as u64;
        }
        Ok(())
    }

    fn len(&self) -> std::io::Result<u64> {
        Ok(self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_sizes_respect_s3_limits() {
        assert_eq!(part_size_for(100 << 20, 16 << 20), 16 << 20);
        assert_eq!(part_size_for(100 << 20, 1 << 20), MIN_PART);
        // 400 GiB needs parts of at least 41 MiB to stay within 10,000.
        let big = 400u64 << 30;
        let p = part_size_for(big, 16 << 20);
        assert!(big.div_ceil(p) <= MAX_PARTS);
        assert_eq!(p % (1 << 20), 0);
    }

    #[test]
    fn copy_source_is_encoded() {
        assert_eq!(
            encode_copy_source("b", "drop/My Story (1).txt"),
            "b/drop/My%20Story%20%281%29.txt"
        );
        assert_eq!(encode_copy_source("b", "a+b/ü"), "b/a%2Bb/%C3%BC");
    }

    #[test]
    fn etags_lose_their_quotes() {
        assert_eq!(clean_etag(Some("\"abc-2\"")), "abc-2");
        assert_eq!(clean_etag(None), "");
    }
}
