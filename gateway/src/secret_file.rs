//! Owner-only files in the data dir. Secret files (key material): created once with random
//! bytes, mode 0600 in a 0700 directory, atomically (temp file + hard link), so two processes
//! starting at once agree on one secret and a crash never leaves a torn file. And the two
//! helpers every store opener uses, whatever the process umask: [`private_dir`] (the data dir,
//! `spool/`, `keys/`: 0700) and [`private_sqlite`] (`audit.db`, `console.db`, `guardrails.db`,
//! `features.db` and their `-wal`/`-shm`/`-journal` files: 0600).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use zeroize::Zeroizing;

/// Read the secret at `path`, creating it with `len` random bytes if it does not exist.
pub fn load_or_create(path: &Path, len: usize) -> std::io::Result<Zeroizing<Vec<u8>>> {
    load_or_create_with(path, || {
        let mut bytes = Zeroizing::new(vec![0u8; len]);
        aws_lc_rs::rand::fill(&mut bytes)
            .map_err(|_| std::io::Error::other("system random failed"))?;
        Ok(bytes)
    })
}

/// Read the file at `path`, creating it from `make()` if it does not exist.
pub fn load_or_create_with(
    path: &Path,
    make: impl FnOnce() -> std::io::Result<Zeroizing<Vec<u8>>>,
) -> std::io::Result<Zeroizing<Vec<u8>>> {
    if let Ok(existing) = fs::read(path) {
        check_mode(path)?;
        return Ok(Zeroizing::new(existing));
    }
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("secret path has no parent"))?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let tmp = dir.join(format!(".{}.tmp-{}", file_name(path), uuid::Uuid::new_v4()));
    let bytes = make()?;
    {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
    }
    // A hard link fails if another process created the file first: then use theirs.
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            if let Ok(d) = fs::File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(bytes)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(Zeroizing::new(fs::read(path)?))
        }
        Err(e) => Err(e),
    }
}

/// Create `dir` and any missing parents owner-only (0700), and make an existing `dir` that
/// others can enter 0700.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    restrict(dir, 0o700)
}

/// Prepare the SQLite database at `path` before SQLite opens it: missing parent directories
/// created 0700, the database created empty with mode 0600 if it does not exist (SQLite gives
/// its `-wal`, `-shm` and `-journal` files the database's mode, so they are born 0600 too),
/// and an existing database or one of those files that others can read made 0600.
pub fn private_sqlite(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        match restrict(Path::new(&name), 0o600) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    Ok(())
}

/// Set `path`'s mode to `mode` if it grants group or others anything.
fn restrict(path: &Path, mode: u32) -> std::io::Result<()> {
    let current = fs::symlink_metadata(path)?.permissions().mode();
    if current & 0o077 != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Refuse a secret file that others can read.
fn check_mode(path: &Path) -> std::io::Result<()> {
    let mode = fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(std::io::Error::other(format!(
            "{} is readable by other users (mode {:o}); run: chmod 600 {}",
            path.display(),
            mode & 0o777,
            path.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/a.key");
        let first = load_or_create(&path, 32).unwrap();
        assert_eq!(first.len(), 32);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        let second = load_or_create(&path, 32).unwrap();
        assert_eq!(*first, *second);
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn sqlite_files_are_born_and_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        // A new database in a new directory.
        let path = dir.path().join("new/store.db");
        private_sqlite(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        for suffix in ["-wal", "-shm"] {
            let file = dir.path().join(format!("new/store.db{suffix}"));
            assert_eq!(mode(&file), 0o600, "{suffix}");
        }
        drop(conn);
        // A rollback journal takes the database's mode too.
        let other = dir.path().join("rollback.db");
        private_sqlite(&other).unwrap();
        let conn = rusqlite::Connection::open(&other).unwrap();
        conn.execute_batch("PRAGMA journal_mode = PERSIST; CREATE TABLE t (x);")
            .unwrap();
        assert_eq!(mode(&dir.path().join("rollback.db-journal")), 0o600);
        drop(conn);

        // An existing world-readable database and its files are made private; the data in it
        // is kept.
        for suffix in ["", "-wal", "-shm"] {
            let file = dir.path().join(format!("new/store.db{suffix}"));
            if file.exists() {
                fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
            }
        }
        private_sqlite(&path).unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let file = dir.path().join(format!("new/store.db{suffix}"));
            if file.exists() {
                assert_eq!(mode(&file), 0o600, "{suffix}");
            }
        }
        let conn = rusqlite::Connection::open(&path).unwrap();
        let x: i64 = conn.query_row("SELECT x FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(x, 1);
    }

    #[test]
    fn private_dirs_are_created_and_restricted() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        fs::DirBuilder::new().mode(0o755).create(&data).unwrap();
        fs::set_permissions(&data, fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&data).unwrap();
        assert_eq!(mode(&data), 0o700);
        private_dir(&data.join("a/b")).unwrap();
        assert_eq!(mode(&data.join("a")), 0o700);
        assert_eq!(mode(&data.join("a/b")), 0o700);
    }

    #[test]
    fn world_readable_secret_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.key");
        load_or_create(&path, 8).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_or_create(&path, 8).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }
}
