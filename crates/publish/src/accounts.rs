//! Connected accounts: a platform account's OAuth client and refresh token, kept by a
//! [`TokenStore`] (a 0600 file on one machine, an SSM SecureString in the cloud). A token is
//! never printed, logged, or written into a job record, an event or an error message.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::platform::Platform;
use crate::secret::Secret;

/// One connected account: everything needed to get an access token without a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub platform: Platform,
    /// The user's name for it (`main`), unique per platform.
    pub name: String,
    /// The OAuth client (Google: client id; TikTok: client key).
    pub client_id: String,
    pub client_secret: Secret,
    pub refresh_token: Secret,
    /// Scopes granted, space-separated.
    #[serde(default)]
    pub scope: String,
    /// TikTok's user id for this app (absent for YouTube).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_id: Option<String>,
    /// Unix seconds when it was connected.
    #[serde(default)]
    pub connected_at: u64,
}

/// Why the token store could not be read or written. Messages name the store and the
/// account, never a token.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(
        "no {platform} account named {name:?} in {store} (connect it with `storyreel accounts connect {platform} --name {name}`)"
    )]
    NotConnected {
        platform: Platform,
        name: String,
        store: String,
    },
    #[error("invalid account name {0:?} (expected 1 to 64 letters, digits, '-' or '_')")]
    InvalidName(String),
    #[error("{op} {store} failed")]
    Io {
        op: &'static str,
        store: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Checks an account name: 1 to 64 of `[A-Za-z0-9_-]` (it becomes part of a file key or an
/// SSM parameter name).
pub fn check_name(name: &str) -> Result<(), AccountError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(AccountError::InvalidName(name.to_string()))
    }
}

/// Where connected accounts live.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// A name for messages: a file path or `SSM /storyreel/accounts/`.
    fn describe(&self) -> String;
    async fn get(&self, platform: Platform, name: &str) -> Result<Option<Account>, AccountError>;
    /// Creates or replaces the account (TikTok rotates refresh tokens: publishing stores the
    /// new one).
    async fn put(&self, account: &Account) -> Result<(), AccountError>;
    /// Forgets the account; false when there was none.
    async fn remove(&self, platform: Platform, name: &str) -> Result<bool, AccountError>;
    async fn list(&self) -> Result<Vec<Account>, AccountError>;
}

// ---------------------------------------------------------------------------------------------
// FsTokens: the accounts file on one machine.

/// Overrides the directory of `accounts.json` (tests, several profiles on one machine).
pub const CONFIG_DIR_ENV: &str = "STORYREEL_CONFIG_DIR";
/// The accounts file's name in the config directory.
pub const ACCOUNTS_FILE: &str = "accounts.json";
/// The largest accounts file read (an account is well under 2 KiB).
const MAX_FILE: u64 = 4 * 1024 * 1024;

/// The config directory: `$STORYREEL_CONFIG_DIR`, else `$XDG_CONFIG_HOME/storyreel`, else
/// `$HOME/.config/storyreel` (empty values count as unset; relative XDG paths are ignored, as
/// the XDG specification says). `None` when none of them is set.
pub fn config_dir(get: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    if let Some(dir) = get(CONFIG_DIR_ENV) {
        return Some(PathBuf::from(dir));
    }
    if let Some(xdg) = get("XDG_CONFIG_HOME").filter(|x| Path::new(x).is_absolute()) {
        return Some(Path::new(&xdg).join("storyreel"));
    }
    get("HOME").map(|home| Path::new(&home).join(".config").join("storyreel"))
}

/// The accounts file could not be parsed. It says where, never what (the file holds tokens).
#[derive(Debug, thiserror::Error)]
#[error(
    "not valid accounts JSON ({category} error at line {line}, column {column}): fix or remove the file, then connect the accounts again"
)]
pub struct CorruptJson {
    pub category: &'static str,
    pub line: usize,
    pub column: usize,
}

impl CorruptJson {
    fn from_serde(e: &serde_json::Error) -> CorruptJson {
        use serde_json::error::Category;
        CorruptJson {
            category: match e.classify() {
                Category::Io => "read",
                Category::Syntax => "syntax",
                Category::Data => "data",
                Category::Eof => "truncated",
            },
            line: e.line(),
            column: e.column(),
        }
    }
}

/// An [`Account`] from its JSON (an SSM parameter's value, one entry of the accounts file);
/// errors name the position only, since serde's messages may quote values.
pub fn account_from_json(json: &[u8]) -> Result<Account, CorruptJson> {
    serde_json::from_slice(json).map_err(|e| CorruptJson::from_serde(&e))
}

/// The accounts file or its directory is open to other users.
#[derive(Debug, thiserror::Error)]
pub enum UnsafePermissions {
    #[error(
        "it is accessible by other users (mode {mode:04o}, expected 0600): it holds refresh tokens; if nobody else could have read it, run `chmod 600 {path}`, else revoke the accounts' access and connect them again"
    )]
    File { path: String, mode: u32 },
    #[error("it is owned by uid {owner}, not by this user (uid {me})")]
    Owner { owner: u32, me: u32 },
    #[error(
        "its directory {dir} is writable by other users (mode {mode:04o}): run `chmod 700 {dir}`"
    )]
    Dir { dir: String, mode: u32 },
    #[error("it is not a regular file")]
    NotAFile,
}

#[derive(Serialize, Deserialize, Default)]
struct AccountsFile {
    accounts: Vec<Account>,
}

/// The connected accounts of one machine: `accounts.json` in the [`config_dir`], mode 0600 in
/// a directory created 0700.
///
/// - The file is created 0600 from the start (never chmod-ed after being written), written to
///   a temporary file in the same directory, fsync-ed and renamed over the old one, and the
///   directory fsync-ed: a reader sees the old file or the new one, never half of one.
/// - A file readable or writable by anyone else, owned by another user, or in a directory
///   others can write is **refused**, as ssh refuses a private key it cannot trust: its tokens
///   may have been read (chmod would hide that) or swapped.
/// - Changes (put, remove) hold an exclusive `flock` on `accounts.json.lock` across read,
///   modify and rename, so two processes connecting accounts at once both keep theirs.
#[derive(Debug, Clone)]
pub struct FsTokens {
    dir: PathBuf,
}

impl FsTokens {
    /// The accounts file in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> FsTokens {
        FsTokens { dir: dir.into() }
    }

    /// The accounts file in the [`config_dir`] the environment names.
    pub fn from_env() -> Result<FsTokens, AccountError> {
        config_dir(|k| std::env::var(k).ok())
            .map(FsTokens::new)
            .ok_or_else(|| AccountError::Io {
                op: "find",
                store: "the accounts file".into(),
                source: format!("none of {CONFIG_DIR_ENV}, XDG_CONFIG_HOME or HOME is set").into(),
            })
    }

    /// `<dir>/accounts.json`.
    pub fn path(&self) -> PathBuf {
        self.dir.join(ACCOUNTS_FILE)
    }

    fn io_error(
        &self,
        op: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> AccountError {
        AccountError::Io {
            op,
            store: self.path().display().to_string(),
            source: source.into(),
        }
    }

    /// Creates the directory (0700) if needed and checks that others cannot write it.
    fn ensure_dir(&self) -> Result<(), AccountError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| self.io_error("create the directory of", e))?;
        self.check_dir()
    }

    fn check_dir(&self) -> Result<(), AccountError> {
        let meta = std::fs::metadata(&self.dir).map_err(|e| self.io_error("inspect", e))?;
        let mode = meta.permissions().mode() & 0o7777;
        // A sticky world-writable directory (/tmp) still lets others create names; refuse it too.
        if mode & 0o022 != 0 {
            return Err(self.io_error(
                "trust",
                UnsafePermissions::Dir {
                    dir: self.dir.display().to_string(),
                    mode,
                },
            ));
        }
        Ok(())
    }

    /// The accounts, or none when there is no file yet.
    fn read(&self) -> Result<Vec<Account>, AccountError> {
        let path = self.path();
        let file = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(self.io_error("trust", UnsafePermissions::NotAFile));
            }
            Err(e) => return Err(self.io_error("open", e)),
        };
        self.check_dir()?;
        let meta = file.metadata().map_err(|e| self.io_error("inspect", e))?;
        if !meta.is_file() {
            return Err(self.io_error("trust", UnsafePermissions::NotAFile));
        }
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me {
            return Err(self.io_error(
                "trust",
                UnsafePermissions::Owner {
                    owner: meta.uid(),
                    me,
                },
            ));
        }
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(self.io_error(
                "trust",
                UnsafePermissions::File {
                    path: path.display().to_string(),
                    mode,
                },
            ));
        }
        let mut bytes = Vec::new();
        file.take(MAX_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| self.io_error("read", e))?;
        if bytes.len() as u64 > MAX_FILE {
            return Err(self.io_error("read", format!("the file is larger than {MAX_FILE} bytes")));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Vec::new());
        }
        let parsed: AccountsFile = serde_json::from_slice(&bytes)
            .map_err(|e| self.io_error("parse", CorruptJson::from_serde(&e)))?;
        Ok(parsed.accounts)
    }

    /// Replaces the file with `accounts` (temporary file, fsync, rename, fsync of the directory).
    fn write(&self, mut accounts: Vec<Account>) -> Result<(), AccountError> {
        accounts.sort_by(|a, b| (a.platform, &a.name).cmp(&(b.platform, &b.name)));
        let mut json = serde_json::to_vec_pretty(&AccountsFile { accounts })
            .map_err(|e| self.io_error("serialise", CorruptJson::from_serde(&e)))?;
        json.push(b'\n');
        let mut suffix = [0u8; 8];
        getrandom::fill(&mut suffix)
            .map_err(|e| self.io_error("name a temporary file for", e.to_string()))?;
        let tmp = self.dir.join(format!(
            ".{ACCOUNTS_FILE}.{}.{}.tmp",
            std::process::id(),
            u64::from_le_bytes(suffix)
        ));
        let result = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&tmp)?;
            f.write_all(&json)?;
            f.sync_all()?;
            std::fs::rename(&tmp, self.path())?;
            File::open(&self.dir)?.sync_all()
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(self.io_error("write", e));
        }
        Ok(())
    }

    /// Runs `change` on the accounts under the exclusive lock and writes the result when it
    /// says so.
    fn modify<T>(
        &self,
        change: impl FnOnce(&mut Vec<Account>) -> (bool, T),
    ) -> Result<T, AccountError> {
        self.ensure_dir()?;
        let lock_path = self.dir.join(format!("{ACCOUNTS_FILE}.lock"));
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&lock_path)
            .map_err(|e| self.io_error("lock", e))?;
        use std::os::fd::AsRawFd;
        loop {
            // SAFETY: a valid open descriptor; flock has no memory effects. The lock is released
            // when `lock` is closed at the end of this function.
            let r = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
            if r == 0 {
                break;
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(self.io_error("lock", e));
            }
        }
        let mut accounts = self.read()?;
        let (changed, out) = change(&mut accounts);
        if changed {
            self.write(accounts)?;
        }
        drop(lock);
        Ok(out)
    }

    fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(FsTokens) -> Result<T, AccountError> + Send + 'static,
    ) -> impl std::future::Future<Output = Result<T, AccountError>> + Send + 'static {
        let this = self.clone();
        let path = self.path().display().to_string();
        async move {
            tokio::task::spawn_blocking(move || f(this))
                .await
                .map_err(|e| AccountError::Io {
                    op: "use",
                    store: path,
                    source: Box::new(e),
                })?
        }
    }
}

#[async_trait]
impl TokenStore for FsTokens {
    fn describe(&self) -> String {
        self.path().display().to_string()
    }

    async fn get(&self, platform: Platform, name: &str) -> Result<Option<Account>, AccountError> {
        check_name(name)?;
        let name = name.to_string();
        self.blocking(move |s| {
            Ok(s.read()?
                .into_iter()
                .rfind(|a| a.platform == platform && a.name == name))
        })
        .await
    }

    async fn put(&self, account: &Account) -> Result<(), AccountError> {
        check_name(&account.name)?;
        let account = account.clone();
        self.blocking(move |s| {
            s.modify(|accounts| {
                accounts.retain(|a| !(a.platform == account.platform && a.name == account.name));
                accounts.push(account);
                (true, ())
            })
        })
        .await
    }

    async fn remove(&self, platform: Platform, name: &str) -> Result<bool, AccountError> {
        check_name(name)?;
        let name = name.to_string();
        self.blocking(move |s| {
            if !s.path().exists() {
                return Ok(false);
            }
            s.modify(|accounts| {
                let before = accounts.len();
                accounts.retain(|a| !(a.platform == platform && a.name == name));
                let removed = accounts.len() != before;
                (removed, removed)
            })
        })
        .await
    }

    async fn list(&self) -> Result<Vec<Account>, AccountError> {
        self.blocking(|s| {
            let mut accounts = s.read()?;
            accounts.sort_by(|a, b| (a.platform, &a.name).cmp(&(b.platform, &b.name)));
            Ok(accounts)
        })
        .await
    }
}

#[cfg(test)]
mod fs_tests {
    use super::*;

    fn account(platform: Platform, name: &str, token: &str) -> Account {
        Account {
            platform,
            name: name.into(),
            client_id: "client".into(),
            client_secret: Secret::new("client-secret"),
            refresh_token: Secret::new(token),
            scope: "s".into(),
            open_id: None,
            connected_at: 1_700_000_000,
        }
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn config_dir_follows_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let all = env(&[
            (CONFIG_DIR_ENV, "/c"),
            ("XDG_CONFIG_HOME", "/x"),
            ("HOME", "/h"),
        ]);
        assert_eq!(config_dir(all), Some(PathBuf::from("/c")));
        let xdg = env(&[
            (CONFIG_DIR_ENV, " "),
            ("XDG_CONFIG_HOME", "/x"),
            ("HOME", "/h"),
        ]);
        assert_eq!(config_dir(xdg), Some(PathBuf::from("/x/storyreel")));
        let rel = env(&[("XDG_CONFIG_HOME", "rel"), ("HOME", "/h")]);
        assert_eq!(config_dir(rel), Some(PathBuf::from("/h/.config/storyreel")));
        assert_eq!(config_dir(env(&[])), None);
    }

    #[tokio::test]
    async fn accounts_round_trip_in_a_0600_file_in_a_0700_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("config").join("storyreel");
        let store = FsTokens::new(&dir);
        assert!(store.list().await.unwrap().is_empty());
        assert!(
            store
                .get(Platform::YouTube, "main")
                .await
                .unwrap()
                .is_none()
        );
        assert!(!store.remove(Platform::YouTube, "main").await.unwrap());
        assert!(!dir.exists(), "reading and removing create nothing");

        let yt = account(Platform::YouTube, "main", "1//yt");
        let tt = account(Platform::TikTok, "main", "rft.tt");
        store.put(&tt).await.unwrap();
        store.put(&yt).await.unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&store.path()), 0o600);
        assert_eq!(
            store.describe(),
            dir.join("accounts.json").display().to_string()
        );
        assert_eq!(
            store.get(Platform::YouTube, "main").await.unwrap(),
            Some(yt.clone())
        );
        assert_eq!(store.list().await.unwrap(), vec![yt.clone(), tt.clone()]);

        // Replacing keeps one entry (a rotated TikTok token).
        let rotated = account(Platform::TikTok, "main", "rft.rotated");
        store.put(&rotated).await.unwrap();
        assert_eq!(store.list().await.unwrap(), vec![yt.clone(), rotated]);
        assert_eq!(mode(&store.path()), 0o600);

        assert!(store.remove(Platform::TikTok, "main").await.unwrap());
        assert!(!store.remove(Platform::TikTok, "main").await.unwrap());
        assert_eq!(store.list().await.unwrap(), vec![yt]);
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[tokio::test]
    async fn invalid_names_are_refused_before_any_io() {
        let tmp = tempfile::tempdir().unwrap();
        let store = FsTokens::new(tmp.path().join("c"));
        for bad in ["", "../x", "a/b", "with space", &"x".repeat(65)] {
            let mut a = account(Platform::YouTube, "main", "t");
            a.name = bad.to_string();
            let e = store.put(&a).await.unwrap_err();
            assert!(matches!(e, AccountError::InvalidName(_)), "{bad}: {e}");
            assert!(store.get(Platform::YouTube, bad).await.is_err());
            assert!(store.remove(Platform::YouTube, bad).await.is_err());
        }
        assert!(!tmp.path().join("c").exists());
    }

    #[tokio::test]
    async fn a_corrupted_file_is_a_clear_error_without_its_contents() {
        let tmp = tempfile::tempdir().unwrap();
        let store = FsTokens::new(tmp.path());
        let secret_text = r#"{"accounts":[{"platform":"youtube","name":"main","client_id":"c","client_secret":"s","refresh_token":"1//leaky","connected_at":"1//leaky"}]}"#;
        std::fs::write(store.path(), secret_text).unwrap();
        std::fs::set_permissions(store.path(), std::fs::Permissions::from_mode(0o600)).unwrap();
        for e in [
            store.list().await.unwrap_err(),
            store
                .put(&account(Platform::YouTube, "x", "t"))
                .await
                .unwrap_err(),
        ] {
            let chain = format!("{e}: {}", std::error::Error::source(&e).unwrap());
            assert!(chain.starts_with("parse "), "{chain}");
            assert!(
                chain.contains("not valid accounts JSON (data error at line 1"),
                "{chain}"
            );
            assert!(!chain.contains("leaky"), "{chain}");
        }
        std::fs::write(store.path(), "{\"accounts\": [").unwrap();
        let e = store.list().await.unwrap_err();
        let chain = format!("{e}: {}", std::error::Error::source(&e).unwrap());
        assert!(chain.contains("truncated error"), "{chain}");
    }

    #[tokio::test]
    async fn a_file_others_can_read_is_refused_like_ssh_does() {
        let tmp = tempfile::tempdir().unwrap();
        let store = FsTokens::new(tmp.path());
        store
            .put(&account(Platform::YouTube, "main", "t"))
            .await
            .unwrap();
        std::fs::set_permissions(store.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = store.list().await.unwrap_err();
        let chain = format!("{e}: {}", std::error::Error::source(&e).unwrap());
        assert!(chain.contains("mode 0644, expected 0600"), "{chain}");
        assert!(chain.contains("chmod 600"), "{chain}");
        let e = store
            .put(&account(Platform::YouTube, "b", "t"))
            .await
            .unwrap_err();
        assert!(e.to_string().starts_with("trust "), "{e}");
        // The file is left as it was: the person decides.
        assert_eq!(mode(&store.path()), 0o644);

        std::fs::set_permissions(store.path(), std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = store.list().await.unwrap_err();
        let chain = format!("{e}: {}", std::error::Error::source(&e).unwrap());
        assert!(chain.contains("writable by other users"), "{chain}");
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o700)).unwrap();

        let link = tmp.path().join("elsewhere");
        std::fs::rename(store.path(), &link).unwrap();
        std::os::unix::fs::symlink(&link, store.path()).unwrap();
        let e = store.list().await.unwrap_err();
        let chain = format!("{e}: {}", std::error::Error::source(&e).unwrap());
        assert!(chain.contains("not a regular file"), "{chain}");
    }

    #[test]
    fn concurrent_puts_keep_every_account() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let rt = tokio::runtime::Runtime::new().unwrap();
        // Separate stores (as separate processes would have), racing on one file.
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let store = FsTokens::new(&dir);
                rt.spawn(async move {
                    for j in 0..5 {
                        let a = account(Platform::YouTube, &format!("a{i}-{j}"), "t");
                        store.put(&a).await.unwrap();
                    }
                })
            })
            .collect();
        rt.block_on(async {
            for h in handles {
                h.await.unwrap();
            }
        });
        let all = rt.block_on(FsTokens::new(&dir).list()).unwrap();
        assert_eq!(all.len(), 40);
    }
}
