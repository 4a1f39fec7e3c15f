//! Secret files in the data dir (key material): created once with random bytes, mode 0600 in a
//! 0700 directory, atomically (temp file + hard link), so two processes starting at once agree
//! on one secret and a crash never leaves a torn file.

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
