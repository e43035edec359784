//! Who owns the state: the daemon runs as its own user (the package's `inspect-milter`), while
//! people run the review commands, and sometimes the daemon to try it, as root. Two rules keep
//! one from locking the other out:
//!
//! - A file or directory that root creates in a directory belonging to another user is given
//!   to that user ([`inherited`]): `quarantine list` or a trial `serve` as root in the
//!   package's state directory leaves nothing its daemon cannot open. Only what was just
//!   created (`O_EXCL`, or a fresh `mkdir`) is given away, through its descriptor, so a link
//!   planted in the directory cannot turn this into a `chown` of some other file.
//! - When the daemon still cannot open something, its error says who owns it, who the daemon
//!   runs as, and the command that fixes it ([`access_hint`]).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A file's owner and group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Owner {
    pub uid: u32,
    pub gid: u32,
}

impl Owner {
    /// Gives the open file (or directory) `f` to this owner.
    pub fn give(self, f: &File) -> io::Result<()> {
        // SAFETY: fchown on a descriptor we own for as long as `f` lives.
        if unsafe { libc::fchown(f.as_raw_fd(), self.uid, self.gid) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// The owner for what this process creates in `dir`: `dir`'s own, when we are root and `dir`
/// belongs to someone else; `None` (keep ours) otherwise.
pub(super) fn inherited(dir: &Path) -> Option<Owner> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let meta = dir.metadata().ok()?;
    (meta.uid() != 0).then_some(Owner { uid: meta.uid(), gid: meta.gid() })
}

/// For an error on `path`: when it is a refused permission, who owns `path` (or its nearest
/// existing parent), who this process runs as, and the command, to be run as root, that gives
/// `fix` to this process's user (`chown -R USER: DIR`, the user's login group). Empty for other
/// errors.
pub fn access_hint(error: &io::Error, path: &Path, fix: &Path) -> String {
    if !matches!(error.raw_os_error(), Some(libc::EACCES | libc::EPERM)) {
        return String::new();
    }
    let name = |uid: u32| user_name(uid).unwrap_or_else(|| uid.to_string());
    // SAFETY: geteuid has no preconditions.
    let me = name(unsafe { libc::geteuid() });
    let found = path.ancestors().find_map(|p| p.symlink_metadata().ok().map(|m| (p, m)));
    let owner = match found {
        Some((p, m)) => {
            format!("{} is owned by {} (mode {:o})", p.display(), name(m.uid()), m.mode() & 0o7777)
        }
        None => format!("{} does not exist", path.display()),
    };
    format!("; {owner} and this process runs as {me}; fix (as root): chown -R {me}: {}", fix.display())
}

/// The name of user `uid`, from the password database.
pub(super) fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: getpwuid_r writes only into `pwd` and `buf`, which outlive the call, and sets
    // `result` to null or to `&pwd`; `pw_name` then points into `buf`.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        if libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) == 0
            && !result.is_null()
            && !pwd.pw_name.is_null()
        {
            return Some(std::ffi::CStr::from_ptr(pwd.pw_name).to_string_lossy().into_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::test_support::TempDir;
    use super::*;

    #[test]
    fn a_refused_permission_names_the_owner_the_process_and_the_fix() {
        let dir = TempDir::new();
        let path = dir.path().join("missing/.lock");
        let denied = io::Error::from_raw_os_error(libc::EACCES);
        let hint = access_hint(&denied, &path, Path::new("/var/lib/inspect-milter"));
        // The nearest existing parent is named, with its owner.
        assert!(hint.contains(&format!("{} is owned by ", dir.path().display())), "{hint}");
        assert!(hint.contains("this process runs as "), "{hint}");
        assert!(
            hint.contains("fix (as root): chown -R ") && hint.ends_with(" /var/lib/inspect-milter"),
            "{hint}"
        );
    }

    #[test]
    fn other_errors_get_no_hint() {
        let full = io::Error::from_raw_os_error(libc::ENOSPC);
        assert_eq!(access_hint(&full, Path::new("/"), Path::new("/")), "");
    }

    #[test]
    #[ignore = "needs root (gives files to another user): run by tests/run as root"]
    fn root_gives_what_it_creates_in_another_users_directory_to_that_user() {
        // SAFETY: geteuid has no preconditions.
        assert_eq!(unsafe { libc::geteuid() }, 0, "only root can give files away: run by tests/run as root");
        let dir = TempDir::new();
        assert_eq!(inherited(dir.path()), None, "root's own directory: nothing to give");
        let theirs = dir.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        let owner = inherited(&theirs).unwrap();
        assert_eq!(owner, Owner { uid: 65534, gid: 65534 });
        let f = File::create(theirs.join("f")).unwrap();
        owner.give(&f).unwrap();
        assert_eq!(theirs.join("f").metadata().unwrap().uid(), 65534);
    }

    #[test]
    fn uid_0_is_root() {
        assert_eq!(user_name(0).as_deref(), Some("root"));
    }
}
