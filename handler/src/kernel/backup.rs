//! The backup of what was in place before the handler: the previous
//! `core_pattern` and `core_pipe_limit` (restored by `uninstall`), the
//! services `install --persist` masked, and the two lines of
//! `install --socket` (the socket line `serve` writes when it starts, the
//! pipe line it puts back when it stops). Written whole or not at all.

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use std::io::Write as _;
use std::path::{Path, PathBuf};

pub const DEFAULT_BACKUP: &str = "/var/lib/lttng-coredump/core_pattern.bkp";

/// What was in place before the handler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backup {
    pub core_pattern: String,
    pub core_pipe_limit: String,
    /// The services `install --persist` masked because they would write
    /// their own line at boot ([`crate::kernel::other_handlers`]); `uninstall` unmasks them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub masked_units: Vec<PathBuf>,
    /// Set by `install --socket`: the socket line the kernel took, which
    /// `serve` writes when it starts...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_line: Option<String>,
    /// ...and the pipe line it puts back when it stops, so that no core is
    /// lost while nothing listens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipe_line: Option<String>,
}

impl Backup {
    pub fn read(path: &Path) -> anyhow::Result<Option<Backup>> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .with_context(|| format!("backup {} is unreadable", path.display())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => {
                Err(err).with_context(|| format!("cannot read the backup {}", path.display()))
            }
        }
    }

    /// Writes the backup whole or not at all (temporary file, then rename).
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let dir = path.parent().context("the backup path has no directory")?;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let temporary = dir.join(format!(
            ".{}.tmp",
            path.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ));
        let mut json = serde_json::to_vec_pretty(self).expect("serializable");
        json.push(b'\n');
        let _ = std::fs::remove_file(&temporary);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temporary)
            .with_context(|| format!("cannot create {}", temporary.display()))?;
        file.write_all(&json)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot write {}", temporary.display()))?;
        std::fs::rename(&temporary, path)
            .with_context(|| format!("cannot write {}", path.display()))
    }
}
