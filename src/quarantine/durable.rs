//! The few file-system operations the store's promises rest on: creating files and
//! directories with exact permissions, making data and directory entries durable, and
//! advisory locks.
//!
//! Permissions are set explicitly after creation (`fchmod`/`chmod`), not left to the umask:
//! quarantined mail is private and often hostile, so files are 0600 and directories 0700
//! whatever umask the daemon or an administrator's shell happens to have. Durability means
//! `fsync` on the file *and* on its directory: a rename or a new name is only on disk once the
//! directory is synced. Locks are `flock(2)`, which belongs to an open file description: every
//! lock is taken on a file opened for that purpose alone, so two threads of one process
//! exclude each other exactly as two processes do, and a killed process's locks vanish with it.
//! What is created is given to `owner` when there is one (root working in a store that belongs
//! to the daemon's user, see `ownership`), always through the descriptor of what was just
//! created, never by a name that could meanwhile be a link elsewhere.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, ErrorKind};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::ownership::Owner;

/// Files: owner read and write only.
pub(super) const FILE_MODE: u32 = 0o600;
/// Directories: owner only.
pub(super) const DIR_MODE: u32 = 0o700;

/// Creates `path`, failing if it exists (`O_EXCL`): the way an entry claims its id.
pub(super) fn create_new(path: &Path, owner: Option<Owner>) -> io::Result<File> {
    let f = OpenOptions::new().read(true).write(true).create_new(true).mode(FILE_MODE).open(path)?;
    f.set_permissions(Permissions::from_mode(FILE_MODE))?;
    if let Some(owner) = owner {
        owner.give(&f)?;
    }
    Ok(f)
}

/// Creates `path` afresh: for temporary files, whose names belong to one writer. A leftover of
/// a writer that died is removed first, so what is written is always a file created here.
pub(super) fn create_replacing(path: &Path, owner: Option<Owner>) -> io::Result<File> {
    remove_if_present(path)?;
    create_new(path, owner)
}

/// Opens `path` for locking, creating it empty (0600) if needed. An existing lock file is
/// opened as it is, never through a symbolic link.
pub(super) fn open_lock_file(path: &Path, owner: Option<Owner>) -> io::Result<File> {
    match create_new(path, owner) {
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        created => return created,
    }
    let f = OpenOptions::new().read(true).write(true).custom_flags(libc::O_NOFOLLOW).open(path)?;
    let meta = f.metadata()?;
    if meta.permissions().mode() & 0o777 != FILE_MODE {
        f.set_permissions(Permissions::from_mode(FILE_MODE))?;
    }
    Ok(f)
}

/// Creates the directory `path` with mode 0700 (its parent must exist). Returns whether it was
/// created here, in which case the caller must sync the parent to make the new name durable.
pub(super) fn ensure_dir(path: &Path, owner: Option<Owner>) -> io::Result<bool> {
    match DirBuilder::new().mode(DIR_MODE).create(path) {
        Ok(()) => {
            // Through a descriptor of the directory made here: never a link put in its place.
            let dir = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
                .open(path)?;
            dir.set_permissions(Permissions::from_mode(DIR_MODE))?;
            if let Some(owner) = owner {
                owner.give(&dir)?;
            }
            Ok(true)
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists && path.is_dir() => Ok(false),
        Err(e) => Err(e),
    }
}

/// Makes the directory entries of `dir` (new names, renames, removals) durable.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Removes `path`; a file already gone is not an error.
pub(super) fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LockKind {
    Shared,
    Exclusive,
}

/// Takes a `flock` on `file`, waiting for it.
pub(super) fn lock(file: &File, kind: LockKind) -> io::Result<()> {
    let op = match kind {
        LockKind::Shared => libc::LOCK_SH,
        LockKind::Exclusive => libc::LOCK_EX,
    };
    flock(file, op).map(|_| ())
}

/// Takes a `flock` on `file` if nobody holds a conflicting one; `false` when someone does.
pub(super) fn try_lock(file: &File, kind: LockKind) -> io::Result<bool> {
    let op = match kind {
        LockKind::Shared => libc::LOCK_SH,
        LockKind::Exclusive => libc::LOCK_EX,
    };
    flock(file, op | libc::LOCK_NB)
}

fn flock(file: &File, op: libc::c_int) -> io::Result<bool> {
    loop {
        // SAFETY: flock on a file descriptor we own for as long as `file` lives.
        if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) if op & libc::LOCK_NB != 0 => return Ok(false),
            _ => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::TempDir;
    use super::*;

    #[test]
    fn an_exclusive_lock_excludes_other_opens_in_the_same_process() {
        let dir = TempDir::new();
        let path = dir.path().join("l");
        let a = open_lock_file(&path, None).unwrap();
        let b = open_lock_file(&path, None).unwrap();
        lock(&a, LockKind::Exclusive).unwrap();
        assert!(!try_lock(&b, LockKind::Shared).unwrap());
        drop(a);
        assert!(try_lock(&b, LockKind::Exclusive).unwrap());
    }

    #[test]
    fn shared_locks_coexist_and_keep_out_an_exclusive_one() {
        let dir = TempDir::new();
        let path = dir.path().join("l");
        let (a, b, c) = (
            open_lock_file(&path, None).unwrap(),
            open_lock_file(&path, None).unwrap(),
            open_lock_file(&path, None).unwrap(),
        );
        lock(&a, LockKind::Shared).unwrap();
        assert!(try_lock(&b, LockKind::Shared).unwrap());
        assert!(!try_lock(&c, LockKind::Exclusive).unwrap());
    }

    #[test]
    fn create_new_refuses_an_existing_name() {
        let dir = TempDir::new();
        let path = dir.path().join("f");
        create_new(&path, None).unwrap();
        assert_eq!(create_new(&path, None).unwrap_err().kind(), ErrorKind::AlreadyExists);
    }

    #[test]
    fn a_lock_file_is_never_opened_through_a_symbolic_link() {
        let dir = TempDir::new();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, b"not a lock").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join(".lock")).unwrap();
        assert!(open_lock_file(&dir.path().join(".lock"), None).is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"not a lock");
    }
}
