//! Where window files go: a local directory (`file://DIR`) or an
//! S3-compatible bucket (`s3://bucket/prefix`: S3, R2, MinIO), through the
//! `object_store` crate.
//!
//! Key layout (PROTOCOL.md §8): `{prefix/}grail/windows/{hotkey_ss58}-window-{window}.grail`.
//!
//! Uploads are atomic: a local file is written to a staging name and renamed
//! into place; an S3 object of up to [`MULTIPART_THRESHOLD`] bytes is one
//! `PutObject`, a larger one a multipart upload that is only visible once
//! completed and is aborted on failure. Either way no reader ever sees part of
//! a file. Each request is retried with exponential backoff on transient
//! failures (connection errors, timeouts, 5xx) by `object_store`; the miner
//! retries whole uploads on top of that until its deadline. Uploads are
//! idempotent: the same key always names the same window, and a second put
//! replaces the object whole.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, PutPayload, RetryConfig, WriteMultipart,
};

/// Objects up to this size are uploaded with one request; larger ones as a
/// multipart upload of [`MULTIPART_PART`] parts.
pub const MULTIPART_THRESHOLD: usize = 32 << 20;
/// Part size of multipart uploads (S3's minimum is 5 MiB).
pub const MULTIPART_PART: usize = 16 << 20;
/// Largest object [`WindowStore::get`] reads (the window-file cap).
pub const MAX_GET_BYTES: u64 = grail_core::params::MAX_WINDOW_FILE_BYTES;

/// Environment variable: S3 endpoint (`object_store`'s and the AWS CLI's name).
pub const ENV_S3_ENDPOINT: &str = "AWS_ENDPOINT_URL";

/// How to reach an S3-compatible store; unset fields come from the usual
/// `AWS_*` environment variables (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
/// `AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StoreArgs {
    /// Where window files are uploaded: `file://DIR` or `s3://BUCKET[/PREFIX]`.
    #[arg(
        long = "store",
        id = "store_url",
        value_name = "URL",
        default_value = "file://grail-store"
    )]
    pub url: String,
    /// S3 endpoint URL (R2: https://<account>.r2.cloudflarestorage.com;
    /// MinIO: http://host:9000). [env: AWS_ENDPOINT_URL] [default: AWS S3]
    #[arg(long = "s3.endpoint", id = "s3_endpoint", value_name = "URL")]
    pub endpoint: Option<String>,
    /// S3 region (R2: auto). [env: AWS_REGION, AWS_DEFAULT_REGION] [default: us-east-1]
    #[arg(long = "s3.region", id = "s3_region", value_name = "REGION")]
    pub region: Option<String>,
    /// S3 access key id. [env: AWS_ACCESS_KEY_ID]
    #[arg(long = "s3.access-key-id", id = "s3_access_key_id", value_name = "ID")]
    pub access_key_id: Option<String>,
    /// S3 secret access key (prefer the environment variable: command lines
    /// are visible to other users). [env: AWS_SECRET_ACCESS_KEY]
    #[arg(
        long = "s3.secret-access-key",
        id = "s3_secret_access_key",
        value_name = "KEY"
    )]
    pub secret_access_key: Option<String>,
}

/// Per-request behaviour of the store client.
#[derive(Debug, Clone, Copy)]
pub struct StoreTuning {
    /// Timeout of one request.
    pub timeout: Duration,
    /// Retries of one request after a transient failure.
    pub max_retries: usize,
    /// First backoff; doubled up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for StoreTuning {
    fn default() -> Self {
        StoreTuning {
            timeout: Duration::from_secs(60),
            max_retries: 6,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(8),
        }
    }
}

/// Errors of the store, naming the store and the key.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("opening store {url}: {source}")]
    Open {
        url: String,
        #[source]
        source: Box<object_store::Error>,
    },
    #[error("{op} {key} in {url}: {source}")]
    Request {
        op: &'static str,
        url: String,
        key: String,
        #[source]
        source: Box<object_store::Error>,
    },
    #[error("{key} in {url} is {size} bytes, more than the {limit}-byte cap")]
    TooLarge {
        url: String,
        key: String,
        size: u64,
        limit: u64,
    },
}

impl StoreError {
    /// Whether the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            StoreError::Request { source, .. } if matches!(**source, object_store::Error::NotFound { .. })
        )
    }
}

/// What an upload did.
#[derive(Debug, Clone, Copy)]
pub struct PutReport {
    pub bytes: usize,
    pub multipart: bool,
    pub elapsed: Duration,
}

/// A window-file store.
#[derive(Debug, Clone)]
pub struct WindowStore {
    store: Arc<dyn ObjectStore>,
    prefix: Vec<String>,
    url: String,
}

impl WindowStore {
    /// Open the store `args.url` names.
    pub fn open(args: &StoreArgs, tuning: StoreTuning) -> Result<WindowStore, StoreError> {
        let url = args.url.clone();
        let bad = |reason: &str| StoreError::Url {
            url: url.clone(),
            reason: reason.to_owned(),
        };
        if let Some(dir) = url.strip_prefix("file://") {
            if dir.is_empty() {
                return Err(bad("no directory after file://"));
            }
            let dir = PathBuf::from(dir);
            std::fs::create_dir_all(&dir).map_err(|e| StoreError::Url {
                url: url.clone(),
                reason: format!("cannot create directory {}: {e}", dir.display()),
            })?;
            let store =
                LocalFileSystem::new_with_prefix(&dir).map_err(|source| StoreError::Open {
                    url: url.clone(),
                    source: Box::new(source),
                })?;
            return Ok(WindowStore {
                store: Arc::new(store),
                prefix: Vec::new(),
                url,
            });
        }
        let Some(rest) = url.strip_prefix("s3://") else {
            return Err(bad("expected file://DIR or s3://BUCKET[/PREFIX]"));
        };
        let mut parts = rest.split('/').filter(|p| !p.is_empty());
        let bucket = parts.next().ok_or_else(|| bad("no bucket after s3://"))?;
        let prefix: Vec<String> = parts.map(str::to_owned).collect();
        if prefix.iter().any(|p| p == "." || p == "..") {
            return Err(bad("the prefix may not contain . or .. segments"));
        }
        let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
        let endpoint = args.endpoint.clone().or_else(|| {
            std::env::var(ENV_S3_ENDPOINT)
                .ok()
                .filter(|e| !e.is_empty())
        });
        if let Some(endpoint) = &endpoint {
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                return Err(bad(&format!(
                    "S3 endpoint {endpoint:?} must start with http:// or https://"
                )));
            }
            b = b
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false);
        }
        if let Some(region) = &args.region {
            b = b.with_region(region);
        }
        if let Some(id) = &args.access_key_id {
            b = b.with_access_key_id(id);
        }
        if let Some(secret) = &args.secret_access_key {
            b = b.with_secret_access_key(secret);
        }
        let store = b
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: tuning.initial_backoff,
                    max_backoff: tuning.max_backoff,
                    base: 2.0,
                },
                max_retries: tuning.max_retries,
                retry_timeout: tuning.timeout * 4,
            })
            // (client options replace the builder's whole set, allow_http included)
            .with_client_options(
                ClientOptions::new()
                    .with_allow_http(
                        endpoint
                            .as_deref()
                            .is_some_and(|e| e.starts_with("http://")),
                    )
                    .with_timeout(tuning.timeout)
                    .with_connect_timeout(tuning.timeout.min(Duration::from_secs(10))),
            )
            .build()
            .map_err(|source| StoreError::Open {
                url: url.clone(),
                source: Box::new(source),
            })?;
        Ok(WindowStore {
            store: Arc::new(store),
            prefix,
            url,
        })
    }

    /// The URL the store was opened from.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn path(&self, key: &str) -> ObjectPath {
        ObjectPath::from_iter(
            self.prefix
                .iter()
                .map(String::as_str)
                .chain(key.split('/').filter(|p| !p.is_empty())),
        )
    }

    fn err(&self, op: &'static str, key: &str, source: object_store::Error) -> StoreError {
        StoreError::Request {
            op,
            url: self.url.clone(),
            key: key.to_owned(),
            source: Box::new(source),
        }
    }

    /// Whether an object exists under `key`.
    pub async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        match self.store.head(&self.path(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.err("head", key, e)),
        }
    }

    /// Upload `bytes` under `key`, atomically (see the module docs).
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<PutReport, StoreError> {
        let started = Instant::now();
        let path = self.path(key);
        let len = bytes.len();
        let multipart = len > MULTIPART_THRESHOLD;
        if multipart {
            let upload = self
                .store
                .put_multipart(&path)
                .await
                .map_err(|e| self.err("start multipart upload of", key, e))?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, MULTIPART_PART);
            writer.write(&bytes);
            drop(bytes);
            // `finish` aborts the upload itself when a part or the completion fails.
            writer
                .finish()
                .await
                .map_err(|e| self.err("multipart upload of", key, e))?;
        } else {
            self.store
                .put(&path, PutPayload::from(bytes))
                .await
                .map_err(|e| self.err("put", key, e))?;
        }
        Ok(PutReport {
            bytes: len,
            multipart,
            elapsed: started.elapsed(),
        })
    }

    /// The object under `key`, refusing objects over [`MAX_GET_BYTES`].
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        Ok(self.get_timed(key).await?.0)
    }

    /// The object under `key` and its last-modified time (ms since the
    /// epoch, as the store reports it), refusing objects over
    /// [`MAX_GET_BYTES`].
    pub async fn get_timed(&self, key: &str) -> Result<(Vec<u8>, u64), StoreError> {
        let path = self.path(key);
        let meta = self
            .store
            .head(&path)
            .await
            .map_err(|e| self.err("head", key, e))?;
        if meta.size > MAX_GET_BYTES {
            return Err(StoreError::TooLarge {
                url: self.url.clone(),
                key: key.to_owned(),
                size: meta.size,
                limit: MAX_GET_BYTES,
            });
        }
        let bytes = self
            .store
            .get(&path)
            .await
            .map_err(|e| self.err("get", key, e))?
            .bytes()
            .await
            .map_err(|e| self.err("read", key, e))?;
        let modified_ms = u64::try_from(meta.last_modified.timestamp_millis()).unwrap_or(0);
        Ok((bytes.to_vec(), modified_ms))
    }

    /// Keys (relative to the store's prefix) of every object under `dir`.
    pub async fn list(&self, dir: &str) -> Result<Vec<String>, StoreError> {
        use futures_util::TryStreamExt;
        let base = self.path(dir);
        let skip = self.prefix.len();
        let metas: Vec<_> = self
            .store
            .list(Some(&base))
            .try_collect()
            .await
            .map_err(|e| self.err("list", dir, e))?;
        let mut keys: Vec<String> = metas
            .into_iter()
            .map(|m| {
                m.location
                    .parts()
                    .skip(skip)
                    .map(|p| p.as_ref().to_owned())
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .collect();
        keys.sort();
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(url: &str) -> StoreArgs {
        StoreArgs {
            url: url.into(),
            ..StoreArgs::default()
        }
    }

    #[test]
    fn urls_are_checked() {
        for bad in [
            "",
            "grail-store",
            "file://",
            "s3://",
            "gs://b",
            "s3://b/../x",
        ] {
            let e = WindowStore::open(&args(bad), StoreTuning::default()).unwrap_err();
            assert!(matches!(e, StoreError::Url { .. }), "{bad}: {e}");
        }
        let e = WindowStore::open(
            &StoreArgs {
                endpoint: Some("localhost:9000".into()),
                ..args("s3://b")
            },
            StoreTuning::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("must start with http"), "{e}");
    }

    #[tokio::test]
    async fn local_put_get_list_and_replace() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().join("s").display());
        let store = WindowStore::open(&args(&url), StoreTuning::default()).unwrap();
        let key = "grail/windows/a-window-30.grail";
        assert!(!store.exists(key).await.unwrap());
        assert!(store.get(key).await.unwrap_err().is_not_found());
        store.put(key, b"one".to_vec()).await.unwrap();
        store.put(key, b"second".to_vec()).await.unwrap();
        assert!(store.exists(key).await.unwrap());
        assert_eq!(store.get(key).await.unwrap(), b"second");
        assert_eq!(store.list("grail/windows").await.unwrap(), vec![key]);
        assert!(dir.path().join("s").join(key).is_file());
    }
}
