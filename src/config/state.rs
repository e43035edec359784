//! Where the state (the quarantine store and the release key) goes when the configuration does
//! not say: the packaged daemon's directory for those who may write it (root, the package's
//! user), else the user's own state directory, so that the quick start runs without root and
//! an ordinary user never needs write access to `/var/lib`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The packaged daemon's state directory (the systemd unit's `StateDirectory`).
pub const SYSTEM_STATE_DIR: &str = "/var/lib/inspect-milter";

/// [`SYSTEM_STATE_DIR`] when this process may write it (or create it), else
/// `$XDG_STATE_HOME/inspect-milter`, else `~/.local/state/inspect-milter`.
pub fn default_state_dir() -> PathBuf {
    let system = Path::new(SYSTEM_STATE_DIR);
    choose(system, may_write(system), std::env::var_os("XDG_STATE_HOME"), std::env::var_os("HOME"))
}

/// The choice, with what it depends on given. Relative variables are ignored, as the XDG
/// specification says; with neither, the system directory (and its error) it is.
fn choose(system: &Path, writable: bool, xdg: Option<OsString>, home: Option<OsString>) -> PathBuf {
    let absolute = |v: Option<OsString>| v.map(PathBuf::from).filter(|p| p.is_absolute());
    if writable {
        system.to_path_buf()
    } else if let Some(xdg) = absolute(xdg) {
        xdg.join("inspect-milter")
    } else if let Some(home) = absolute(home) {
        home.join(".local/state/inspect-milter")
    } else {
        system.to_path_buf()
    }
}

/// Whether this process can write `dir`, or create it when it does not exist.
fn may_write(dir: &Path) -> bool {
    match dir.symlink_metadata() {
        Ok(_) => access_write(dir),
        Err(_) => dir.parent().is_some_and(access_write),
    }
}

fn access_write(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else { return false };
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYSTEM: &str = "/var/lib/inspect-milter";

    fn os(s: &str) -> Option<OsString> {
        Some(OsString::from(s))
    }

    #[test]
    fn who_may_write_the_system_directory_uses_it() {
        assert_eq!(choose(Path::new(SYSTEM), true, os("/x"), os("/home/u")), PathBuf::from(SYSTEM));
    }

    #[test]
    fn others_use_their_own_state_directory() {
        let system = Path::new(SYSTEM);
        assert_eq!(choose(system, false, os("/x"), os("/home/u")), PathBuf::from("/x/inspect-milter"));
        assert_eq!(
            choose(system, false, None, os("/home/u")),
            PathBuf::from("/home/u/.local/state/inspect-milter")
        );
        assert_eq!(
            choose(system, false, os("relative"), os("/home/u")),
            PathBuf::from("/home/u/.local/state/inspect-milter"),
            "a relative XDG_STATE_HOME is ignored"
        );
        assert_eq!(choose(system, false, None, None), PathBuf::from(SYSTEM));
    }

    #[test]
    fn a_missing_directory_counts_as_writable_when_its_parent_is() {
        let dir = std::env::temp_dir().join(format!("im-state-{}", std::process::id()));
        assert!(may_write(&dir), "the temporary directory is writable");
    }
}
