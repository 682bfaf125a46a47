//! [`LockFile`]: lendkit's own exclusive lock on a durable library, and the file-system helpers
//! the durable adapters share.

use lendkit_core::error::StoreError;
use lendkit_core::ports::SnapshotBody;
use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long an opener sleeps between two tries of a lock held elsewhere.
pub(crate) const LOCK_RETRY: Duration = Duration::from_millis(20);

/// A file-system failure while opening `shown`.
pub(crate) fn io_failed(shown: &str, doing: &str, e: std::io::Error) -> StoreError {
    if read_only(&e) {
        return StoreError::ReadOnly(format!("{shown} ({doing}: {e})"));
    }
    StoreError::io(format!("{shown}: cannot {doing}"), e)
}

/// Whether a failed file operation says the file, its folder or its file system cannot be
/// written: permission denied, not permitted (an immutable file) or a read-only file system.
pub(crate) fn read_only(e: &std::io::Error) -> bool {
    // EPERM and EROFS (the same numbers on Linux and macOS).
    e.kind() == ErrorKind::PermissionDenied
        || (cfg!(unix) && matches!(e.raw_os_error(), Some(1 | 30)))
}

/// Fails with [`StoreError::ReadOnly`] when one of `files` (those that exist) cannot be opened
/// for writing. Changes nothing: the files are only opened.
pub(crate) fn check_writable<'a>(
    shown: &str,
    files: impl IntoIterator<Item = &'a Path>,
) -> Result<(), StoreError> {
    for file in files {
        match OpenOptions::new().write(true).open(file) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                return Err(io_failed(
                    shown,
                    &format!("open {} for writing", file.display()),
                    e,
                ))
            }
        }
    }
    Ok(())
}

/// Makes a directory's entries (files created, renamed or removed in it) durable. Windows cannot
/// open a directory as a file and makes entries durable by itself, so there it does nothing.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// True when a lock attempt failed only because someone else holds the lock.
pub(crate) fn contended(e: &std::io::Error) -> bool {
    e.kind() == ErrorKind::WouldBlock
        || e.raw_os_error().is_some()
            && e.raw_os_error() == fs2::lock_contended_error().raw_os_error()
}

/// lendkit's own exclusive lock on a library: an `flock` (through fs2, `LockFileEx` on
/// Windows) on a lock file beside or in the library, released when dropped (also by the kernel
/// when the process dies). `flock` locks belong to the open file, so a second handle in the same
/// process is refused just like another process.
pub(crate) struct LockFile {
    file: File,
    path: PathBuf,
    /// This open created the lock file, so refusing the folder removes it again.
    created: bool,
}

impl LockFile {
    /// Takes the lock on the file at `path` (creating it if need be), waiting until `deadline`
    /// for another holder; `shown` names the library in errors.
    pub(crate) fn acquire(path: &Path, shown: &str, deadline: Instant) -> Result<Self, StoreError> {
        let path = path.to_path_buf();
        loop {
            let created = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path);
            let (file, created) = match created {
                Ok(file) => (file, true),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    match OpenOptions::new().read(true).write(true).open(&path) {
                        Ok(file) => (file, false),
                        // Removed in between by an opener that refused the folder: try again.
                        Err(e) if e.kind() == ErrorKind::NotFound => continue,
                        Err(e) => return Err(io_failed(shown, "open its lock file", e)),
                    }
                }
                Err(e) => return Err(io_failed(shown, "create its lock file", e)),
            };
            match fs2::FileExt::try_lock_exclusive(&file) {
                // The file may have been removed (by an opener that refused the folder) between
                // our open and our lock: then the lock guards nothing, and we take it again.
                Ok(()) if Self::still_at(&file, &path) => {
                    return Ok(LockFile {
                        file,
                        path,
                        created,
                    })
                }
                Ok(()) => {}
                Err(e) if contended(&e) => {}
                Err(e) => return Err(io_failed(shown, "lock its lock file", e)),
            }
            if Instant::now() >= deadline {
                return Err(StoreError::Locked(shown.to_owned()));
            }
            std::thread::sleep(LOCK_RETRY);
        }
    }

    /// True when `file` is still the file at `path`.
    #[cfg(unix)]
    fn still_at(file: &File, path: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), std::fs::metadata(path)) {
            (Ok(held), Ok(named)) => held.dev() == named.dev() && held.ino() == named.ino(),
            _ => false,
        }
    }

    /// True when `file` is still the file at `path` (Windows cannot remove an open file).
    #[cfg(not(unix))]
    fn still_at(_file: &File, path: &Path) -> bool {
        path.is_file()
    }

    /// Leaves the library as it was found: removes the lock file if this open created it (still
    /// holding the lock, so no one can have locked the file being removed), then unlocks.
    pub(crate) fn release_as_found(self) {
        if self.created {
            // Best effort: a lock file left behind is harmless, and the refusal matters more.
            let _ = std::fs::remove_file(&self.path);
        }
        drop(self.file);
    }
}

/// A snapshot as the durable stores keep it: its position (8 bytes, big-endian), then its body.
pub(crate) fn snapshot_value(position: u64, body: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(8 + body.len());
    value.extend_from_slice(&position.to_be_bytes());
    value.extend_from_slice(body);
    value
}

/// The position and body of a value [`snapshot_value`] made (`None` for anything shorter).
pub(crate) fn snapshot_parts<V>(value: V) -> Option<(u64, SnapshotBody)>
where
    V: AsRef<[u8]> + Send + Sync + 'static,
{
    /// A stored value without its first 8 bytes (the position), not copied.
    struct Body<V>(V);
    impl<V: AsRef<[u8]>> AsRef<[u8]> for Body<V> {
        fn as_ref(&self) -> &[u8] {
            // At least 8 bytes long: checked before it was made.
            self.0.as_ref().get(8..).unwrap_or_default()
        }
    }
    let (position, _) = value.as_ref().split_first_chunk::<8>()?;
    Some((
        u64::from_be_bytes(*position),
        SnapshotBody::new(Body(value)),
    ))
}
