//! The `quarantine:` section: where held messages are kept and who keeps them.

use std::path::PathBuf;

use serde::Deserialize;

/// Who keeps a quarantined message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuarantineMode {
    /// Our store keeps the message; the MTA discards it. One place to review, release and
    /// expire held mail, shared by every MTA that uses this milter.
    Store,
    /// The MTA's hold queue keeps it (Postfix `postsuper -H`, Sendmail `-qQ`); our store records
    /// only the metadata, so `quarantine list` still shows why it was held.
    Hold,
    /// Both.
    Both,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawQuarantine {
    /// The store directory, created 0700 on first use. Default `quarantine` in the state
    /// directory: `/var/lib/inspect-milter`, the packaged daemon's, for whoever may write it
    /// (root, the package's user); for anyone else `$XDG_STATE_HOME/inspect-milter` (or
    /// `~/.local/state/inspect-milter`), so the quick start runs without root.
    pub dir: PathBuf,
    /// `store`, `hold` or `both`. Default `store`: the MTA's hold queue keeps no reason and
    /// never expires, so our store is the source of truth. A message truncated at
    /// `max_message_size` is always also held at the MTA, since our copy is incomplete.
    pub mode: QuarantineMode,
}

impl Default for RawQuarantine {
    fn default() -> RawQuarantine {
        RawQuarantine {
            dir: super::state::default_state_dir().join("quarantine"),
            mode: QuarantineMode::Store,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineConfig {
    pub dir: PathBuf,
    pub mode: QuarantineMode,
}

impl RawQuarantine {
    pub fn validate(self) -> Result<QuarantineConfig, super::Problems> {
        if !self.dir.is_absolute() {
            return Err(vec![("quarantine.dir", "must be an absolute path".into())]);
        }
        Ok(QuarantineConfig { dir: self.dir, mode: self.mode })
    }
}
