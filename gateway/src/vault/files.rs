//! Files in the data dir as the embedded object store: object `prompts/2025/01/31/09/<id>` is
//! the file `<data_dir>/vault/prompts/2025/01/31/09/<id>`.
//!
//! Objects are write-once: `put` creates the object's file exclusively (`O_EXCL`, so an object
//! is never overwritten) and writes it in one call; a failed write removes the file. One
//! directory operation per record keeps the file system's metadata work (and its locks) small.
//! A record is read only through its audit event, which is written after `put` returns, so no
//! reader sees a record still being written; a process killed mid-write leaves at most a
//! record that was never acknowledged (opening it reports it malformed). Written bytes survive `kill -9` (they are in the page cache once
//! `write` returns); with [`Durability::PowerLoss`] the file and its directories are fsynced
//! too, so the record survives a power loss. Temporary files a killed process left behind are removed by the sweep.
//!
//! Object keys are validated before they touch the file system: only `[A-Za-z0-9/_.-]`, no
//! empty, `.`-leading (so no `..`) components, no leading or trailing `/`, bounded length.

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use super::{ObjectStore, VaultError};
use crate::audit::sqlite::Durability;

/// The longest object key accepted.
pub const MAX_KEY_LEN: usize = 512;
/// The longest path component accepted (file systems stop at 255 bytes).
const MAX_COMPONENT_LEN: usize = 200;
/// Prefix of in-flight temporary files (keys cannot start a component with `.`).
const TEMP_PREFIX: &str = ".tmp-";
/// A temporary file this old was left by a killed process.
const STALE_TEMP: Duration = Duration::from_secs(3600);
const HOUR_MS: i64 = 3_600_000;

/// The embedded [`ObjectStore`]: one file per object under a root directory.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
    durability: Durability,
}

impl FileStore {
    /// A store rooted at `root` (usually `<data_dir>/vault`) with [`Durability::Process`].
    /// The directory is created on the first `put`.
    pub fn new(root: impl Into<PathBuf>) -> FileStore {
        FileStore::with_durability(root, Durability::Process)
    }

    pub fn with_durability(root: impl Into<PathBuf>, durability: Durability) -> FileStore {
        FileStore {
            root: root.into(),
            durability,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file holding `key`, once the key is validated.
    pub fn path_of(&self, key: &str) -> Result<PathBuf, VaultError> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }
}

/// Accept only keys that name a file strictly inside the store.
pub fn validate_key(key: &str) -> Result<(), VaultError> {
    let bad = |why: &str| Err(VaultError::Storage(format!("invalid object key: {why}")));
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return bad("empty or too long");
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'.' | b'-'))
    {
        return bad("only A-Z a-z 0-9 / _ . - are allowed");
    }
    if key.contains("..") {
        return bad("'..' is not allowed");
    }
    for component in key.split('/') {
        if component.is_empty() {
            return bad("empty path component (leading, trailing or double '/')");
        }
        if component.starts_with('.') {
            return bad("a path component may not start with '.'");
        }
        if component.len() > MAX_COMPONENT_LEN {
            return bad("path component too long");
        }
    }
    Ok(())
}

#[async_trait]
impl ObjectStore for FileStore {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), VaultError> {
        let path = self.path_of(key)?;
        match self.durability {
            // A small write to the page cache takes microseconds: doing it here costs less than
            // the two thread hand-offs of the blocking pool.
            Durability::Process => self.put_blocking(&path, &bytes),
            // fsync may take milliseconds: keep it off the async workers.
            Durability::PowerLoss => {
                let store = self.clone();
                blocking(move || store.put_blocking(&path, &bytes)).await
            }
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, VaultError> {
        let path = self.path_of(key)?;
        blocking(move || match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(VaultError::Storage(format!(
                "cannot read vault object: {e}"
            ))),
        })
        .await
    }

    async fn delete_older_than(&self, before_ms: i64) -> Result<u64, VaultError> {
        let root = self.root.clone();
        blocking(move || {
            let mut deleted = 0;
            match std::fs::symlink_metadata(&root) {
                Ok(meta) if meta.is_dir() => sweep_dir(&root, &root, before_ms, &mut deleted),
                Ok(_) => {
                    return Err(VaultError::Storage(format!(
                        "vault root {} is not a directory",
                        root.display()
                    )));
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(VaultError::Storage(format!(
                        "cannot read vault root {}: {e}",
                        root.display()
                    )));
                }
            }
            Ok(deleted)
        })
        .await
    }
}

impl FileStore {
    fn put_blocking(&self, path: &Path, bytes: &[u8]) -> Result<(), VaultError> {
        let dir = path.parent().unwrap_or(&self.root);
        let fail = |what: &str, e: std::io::Error| {
            VaultError::Storage(format!("cannot {what} vault object: {e}"))
        };
        // A concurrent sweep may remove a directory that was empty a moment ago; retry then.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let retry = attempt < 3;
            create_private_dirs(dir).map_err(|e| fail("create directory for", e))?;
            match write_new(path, bytes, self.durability == Durability::PowerLoss) {
                Ok(()) => break,
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    return Err(VaultError::Storage(
                        "vault object already exists (records are write-once)".into(),
                    ));
                }
                Err(e) if e.kind() == ErrorKind::NotFound && retry => continue,
                Err(e) => {
                    // Never leave a partial object behind.
                    let _ = std::fs::remove_file(path);
                    return Err(fail("write", e));
                }
            }
        }
        if self.durability == Durability::PowerLoss {
            // The new name, and any directory created for it, down to the root.
            let mut d = Some(dir);
            while let Some(current) = d {
                sync_dir(current).map_err(|e| fail("sync directory of", e))?;
                if current == self.root {
                    break;
                }
                d = current.parent().filter(|p| p.starts_with(&self.root));
            }
        }
        Ok(())
    }
}

/// Run file-system work on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, VaultError> + Send + 'static,
) -> Result<T, VaultError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| VaultError::Storage(format!("vault file task failed: {e}")))?
}

/// Write a new file; fsync it only when `sync` (power-loss durability). Without it the bytes are
/// in the page cache once `write` returns, which a killed process cannot lose.
fn write_new(path: &Path, bytes: &[u8], sync: bool) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    if sync { file.sync_all() } else { Ok(()) }
}

fn create_private_dirs(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Delete old objects and stale temporary files under `dir`, then `dir` itself if it is left
/// empty (never the root). Failures are logged and skipped so one bad file cannot stop the sweep.
fn sweep_dir(root: &Path, dir: &Path, before_ms: i64, deleted: &mut u64) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "vault sweep cannot read directory");
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            sweep_dir(root, &path, before_ms, deleted);
        } else if kind.is_file() && is_expired(root, &path, &entry, before_ms) {
            match std::fs::remove_file(&path) {
                Ok(()) if is_temp(&path) => {}
                Ok(()) => *deleted += 1,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "vault sweep cannot delete");
                }
            }
        }
        // Symlinks and other file types are never followed nor deleted.
    }
    if dir != root {
        // Fails (harmlessly) unless the directory is empty.
        let _ = std::fs::remove_dir(dir);
    }
}

fn is_temp(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(TEMP_PREFIX))
}

fn is_expired(root: &Path, path: &Path, entry: &std::fs::DirEntry, before_ms: i64) -> bool {
    let modified_ms = || {
        entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_millis()).ok())
    };
    if is_temp(path) {
        let stale_before = SystemTime::now()
            .checked_sub(STALE_TEMP)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_millis()).ok());
        return matches!((modified_ms(), stale_before), (Some(m), Some(s)) if m < s);
    }
    let key_hour = path
        .strip_prefix(root)
        .ok()
        .and_then(|rel| rel.to_str())
        .and_then(key_hour_ms);
    match key_hour {
        // Only once the whole hour the key names is before the cut-off.
        Some(hour) => hour.saturating_add(HOUR_MS) <= before_ms,
        None => modified_ms().is_some_and(|m| m < before_ms),
    }
}

/// The start of the hour encoded in `prompts/YYYY/MM/DD/HH/<id>`, in ms since the epoch.
pub fn key_hour_ms(key: &str) -> Option<i64> {
    let mut parts = key.split('/');
    if parts.next()? != "prompts" {
        return None;
    }
    let mut number = |digits: usize| -> Option<i32> {
        let s = parts.next()?;
        if s.len() != digits || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let (year, month, day, hour) = (number(4)?, number(2)?, number(2)?, number(2)?);
    parts.next()?; // the request id
    let month = time::Month::try_from(u8::try_from(month).ok()?).ok()?;
    let date = time::Date::from_calendar_date(year, month, u8::try_from(day).ok()?).ok()?;
    let at = date
        .with_hms(u8::try_from(hour).ok()?, 0, 0)
        .ok()?
        .assume_utc();
    at.unix_timestamp().checked_mul(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "prompts/2025/01/31/09/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

    #[test]
    fn keys_are_validated() {
        assert!(validate_key(KEY).is_ok());
        assert!(validate_key("a").is_ok());
        assert!(validate_key("prompts/2025/x_y-z.json").is_ok());
        for bad in [
            "",
            "/etc/passwd",
            "../secret",
            "prompts/../../etc/passwd",
            "prompts/..",
            "prompts/a..b",
            "prompts/./x",
            "prompts/.hidden",
            "prompts//x",
            "prompts/x/",
            "prompts\\..\\x",
            "prompts/x y",
            "prompts/\u{e9}",
            "prompts/x\0",
            "prompts/%2e%2e/x",
        ] {
            assert!(
                matches!(validate_key(bad), Err(VaultError::Storage(_))),
                "{bad:?} was accepted"
            );
        }
        assert!(validate_key(&"a/".repeat(300)).is_err());
        assert!(validate_key(&"a".repeat(MAX_COMPONENT_LEN + 1)).is_err());
    }

    #[tokio::test]
    async fn traversal_is_rejected_by_every_operation() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("vault"));
        std::fs::write(dir.path().join("secret"), b"s").unwrap();
        assert!(matches!(
            store.put("../escape", b"x".to_vec()).await,
            Err(VaultError::Storage(_))
        ));
        assert!(matches!(
            store.get("../secret").await,
            Err(VaultError::Storage(_))
        ));
        assert!(!dir.path().join("escape").exists());
    }

    #[tokio::test]
    async fn put_is_complete_on_return_and_write_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::with_durability(dir.path().join("vault"), Durability::PowerLoss);
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        store.put(KEY, bytes.clone()).await.unwrap();

        let on_disk = std::fs::read(dir.path().join("vault").join(KEY)).unwrap();
        assert_eq!(on_disk, bytes);
        assert_eq!(store.get(KEY).await.unwrap(), Some(bytes.clone()));
        assert_eq!(
            store.get("prompts/2025/01/31/09/other").await.unwrap(),
            None
        );

        let again = store.put(KEY, b"overwrite".to_vec()).await;
        assert!(matches!(again, Err(VaultError::Storage(m)) if m.contains("write-once")));
        assert_eq!(store.get(KEY).await.unwrap(), Some(bytes));

        // Only the object is in its directory: no temporary files left.
        let parent = dir.path().join("vault").join(KEY);
        let names: Vec<_> = std::fs::read_dir(parent.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&parent).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[tokio::test]
    async fn concurrent_puts_of_one_key_store_exactly_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("vault"));
        let tasks: Vec<_> = (0..16u8)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move { store.put(KEY, vec![i; 4096]).await })
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            if t.await.unwrap().is_ok() {
                ok += 1;
            }
        }
        assert_eq!(ok, 1);
        let stored = store.get(KEY).await.unwrap().unwrap();
        assert_eq!(stored.len(), 4096);
        assert!(stored.iter().all(|b| *b == stored[0]));
    }

    #[test]
    fn key_hours_parse() {
        assert_eq!(key_hour_ms(KEY), Some(1_738_314_000_000));
        assert_eq!(key_hour_ms("prompts/2025/02/30/09/x"), None);
        assert_eq!(key_hour_ms("prompts/2025/01/31/24/x"), None);
        assert_eq!(key_hour_ms("prompts/2025/01/31/09"), None);
        assert_eq!(key_hour_ms("other/2025/01/31/09/x"), None);
        assert_eq!(key_hour_ms("prompts/25/01/31/09/x"), None);
    }

    #[tokio::test]
    async fn sweep_uses_key_time_then_mtime_and_prunes_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("vault");
        let store = FileStore::new(&root);
        let hour = key_hour_ms(KEY).unwrap();
        store.put(KEY, b"old".to_vec()).await.unwrap();
        store
            .put("prompts/2025/01/31/10/newer", b"newer".to_vec())
            .await
            .unwrap();
        // Not a dated key: judged by its mtime, which is now.
        store.put("misc/fresh", b"fresh".to_vec()).await.unwrap();
        store.put("misc/stale", b"stale".to_vec()).await.unwrap();
        let a_day_ago = SystemTime::now() - Duration::from_secs(86_400);
        std::fs::File::options()
            .write(true)
            .open(root.join("misc/stale"))
            .unwrap()
            .set_modified(a_day_ago)
            .unwrap();
        // A temporary file left by a killed writer, long ago.
        let orphan = root.join("prompts/2025/01/31/10/.tmp-1-abc");
        std::fs::write(&orphan, b"partial").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&orphan)
            .unwrap()
            .set_modified(a_day_ago)
            .unwrap();

        // Mid-hour of the old key: the hour is not wholly past, nothing dated goes.
        assert_eq!(
            store.delete_older_than(hour + HOUR_MS - 1).await.unwrap(),
            0
        );
        assert!(!orphan.exists());
        assert!(root.join("misc/fresh").exists());

        // The old key's hour wholly past: it goes, with its now empty directories.
        // `misc/stale` (mtime a day ago) is not older than this 2025 cut-off.
        let deleted = store.delete_older_than(hour + HOUR_MS).await.unwrap();
        assert_eq!(deleted, 1);
        assert!(!root.join("prompts/2025/01/31/09").exists());
        assert!(root.join("prompts/2025/01/31/10/newer").exists());
        assert!(root.join("misc/stale").exists());

        let deleted = store
            .delete_older_than(crate::now_ms() - HOUR_MS)
            .await
            .unwrap();
        assert_eq!(deleted, 2); // `newer` by its key, `misc/stale` by its mtime
        assert!(root.join("misc/fresh").exists());
        assert!(!root.join("prompts").exists());
        assert!(root.exists());

        // An empty or missing store sweeps to zero.
        let empty = FileStore::new(dir.path().join("none"));
        assert_eq!(empty.delete_older_than(i64::MAX).await.unwrap(), 0);
    }
}
