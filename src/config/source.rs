//! Which configuration file a command reads when it is not told: on a host where the package
//! is installed, a reviewer typing `inspect-milter quarantine list` must get the store, relay
//! and release key the daemon uses, without knowing where the file lives.
//!
//! The rule, decided here once for every subcommand:
//! 1. `--config FILE`: that file.
//! 2. the `INSPECT_MILTER_CONFIG` environment variable: that file, or, set but empty, no file
//!    (the built-in defaults; what the tests use, whatever host they run on).
//! 3. `/etc/inspect-milter/config.yaml`, the package's file, when it exists.
//! 4. no file: the built-in defaults.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use super::{Config, ConfigError};

/// The site's configuration: the file the package installs and its systemd unit passes to
/// `serve`.
pub const SITE_CONFIG: &str = "/etc/inspect-milter/config.yaml";
/// Names the configuration file when `--config` does not; set but empty, the built-in defaults.
pub const CONFIG_ENV: &str = "INSPECT_MILTER_CONFIG";

/// Where a command's configuration comes from, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// `--config FILE`.
    Given(PathBuf),
    /// `INSPECT_MILTER_CONFIG=FILE`.
    Environment(PathBuf),
    /// The site's file, found at [`SITE_CONFIG`].
    Site(PathBuf),
    /// No file: every setting has its documented default.
    BuiltIn,
}

impl ConfigSource {
    /// The source for a command given `--config` (or not), from this process's environment and
    /// file system.
    pub fn find(flag: Option<&Path>) -> ConfigSource {
        ConfigSource::resolve(flag, std::env::var_os(CONFIG_ENV), Path::new(SITE_CONFIG))
    }

    /// [`ConfigSource::find`] with the environment variable's value and the site's path given.
    fn resolve(flag: Option<&Path>, env: Option<OsString>, site: &Path) -> ConfigSource {
        match (flag, env) {
            (Some(path), _) => ConfigSource::Given(path.to_path_buf()),
            (None, Some(v)) if v.is_empty() => ConfigSource::BuiltIn,
            (None, Some(v)) => ConfigSource::Environment(PathBuf::from(v)),
            // A file that exists but cannot be read is still the site's: loading it says why,
            // rather than quietly falling back to defaults the daemon does not use.
            (None, None) if site.symlink_metadata().is_ok() => ConfigSource::Site(site.to_path_buf()),
            (None, None) => ConfigSource::BuiltIn,
        }
    }

    /// The file to read; `None` for the built-in defaults.
    pub fn path(&self) -> Option<&Path> {
        match self {
            ConfigSource::Given(p) | ConfigSource::Environment(p) | ConfigSource::Site(p) => Some(p),
            ConfigSource::BuiltIn => None,
        }
    }

    /// Whether the file was named by the person running the command (`--config`), as opposed to
    /// found by the rule above.
    pub fn is_given(&self) -> bool {
        matches!(self, ConfigSource::Given(_))
    }

    /// Whether the file was found at [`SITE_CONFIG`] without being asked for.
    pub fn is_site(&self) -> bool {
        matches!(self, ConfigSource::Site(_))
    }

    /// Reads and validates the file, or the built-in defaults.
    pub fn load(&self) -> Result<Config, ConfigError> {
        match self.path() {
            Some(path) => Config::load(path),
            None => Ok(Config::default()),
        }
    }
}

/// For people: which file, and why that one.
impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigSource::Given(p) => write!(f, "{}", p.display()),
            ConfigSource::Environment(p) => write!(f, "{} (from {CONFIG_ENV})", p.display()),
            ConfigSource::Site(p) => {
                write!(f, "{} (the site's; --config FILE or {CONFIG_ENV}= for another)", p.display())
            }
            ConfigSource::BuiltIn => f.write_str("the built-in defaults"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(flag: Option<&str>, env: Option<&str>, site: &Path) -> ConfigSource {
        ConfigSource::resolve(flag.map(Path::new), env.map(OsString::from), site)
    }

    #[test]
    fn the_flag_wins_over_the_environment_and_the_site_file() {
        let site = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/inspect-milter.yaml");
        assert_eq!(resolve(Some("a.yaml"), Some("b.yaml"), &site), ConfigSource::Given("a.yaml".into()));
        assert_eq!(resolve(Some("a.yaml"), Some(""), &site), ConfigSource::Given("a.yaml".into()));
    }

    #[test]
    fn the_environment_names_a_file_or_when_empty_the_built_in_defaults() {
        let site = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/inspect-milter.yaml");
        assert_eq!(resolve(None, Some("b.yaml"), &site), ConfigSource::Environment("b.yaml".into()));
        assert_eq!(resolve(None, Some(""), &site), ConfigSource::BuiltIn);
    }

    #[test]
    fn the_site_file_is_used_only_when_it_exists() {
        let site = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/inspect-milter.yaml");
        assert_eq!(resolve(None, None, &site), ConfigSource::Site(site.clone()));
        assert_eq!(resolve(None, None, Path::new("/nonexistent/config.yaml")), ConfigSource::BuiltIn);
    }

    #[test]
    fn the_built_in_defaults_load_without_a_file() {
        assert_eq!(ConfigSource::BuiltIn.load().unwrap(), Config::default());
        assert!(ConfigSource::Site("/nonexistent/config.yaml".into()).load().is_err());
    }
}
