//! Finding the crashes: the records (`core.*.json`) in the core directory,
//! each read with the caller's own rights. A record the caller may not open
//! is not theirs to see and is skipped without a word; one that cannot be
//! parsed is reported on stderr and skipped.

use super::SourceArgs;
use crate::config::{self, Config};
use crate::install::{self, KernelFiles};
use anyhow::{Context, Result};
use serde_json::Value;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Records are small (the handler's log included); anything larger is not one.
const MAX_RECORD_BYTES: u64 = 64 * 1024 * 1024;

/// Where the crashes are and the configuration that says so.
pub struct Store {
    pub dir: PathBuf,
    pub config: Config,
    pub config_path: PathBuf,
    /// Why the configuration could not be used, when it could not.
    pub config_error: Option<String>,
}

impl Store {
    /// The configuration named on the command line, else the one in the
    /// installed core_pattern line, else the default file.
    pub fn open(source: &SourceArgs) -> Store {
        let installed = KernelFiles::under(Path::new(install::DEFAULT_PROC_SYS_KERNEL))
            .read_pattern()
            .ok()
            .filter(|pattern| install::is_handler_line(pattern))
            .and_then(|pattern| install::config_in_line(&pattern));
        let explicit = source.config.clone().or(installed);
        let loaded = Config::load(explicit.as_deref());
        let config_path = explicit.unwrap_or_else(|| config::DEFAULT_CONFIG_PATH.into());
        let dir = source
            .dir
            .clone()
            .unwrap_or_else(|| loaded.config.core_dir.clone());
        Store {
            dir,
            config: loaded.config,
            config_path,
            config_error: loaded.error,
        }
    }

    /// Every crash the caller may read, oldest first. A crash whose
    /// record has a user's copy beside it (`STEM.user.json`, holding only
    /// what concerns the crashing user) is shown once: from root's record
    /// when the caller may read it, else from the copy.
    pub fn crashes(&self) -> Result<Vec<Crash>> {
        let entries = match std::fs::read_dir(&self.dir) {
            // Made on the first crash: none yet.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            entries => entries
                .with_context(|| format!("cannot list the crashes in {}", self.dir.display()))?,
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry
                .with_context(|| format!("cannot list the crashes in {}", self.dir.display()))?;
            if let Some(name) = entry.file_name().to_str() {
                if name.starts_with("core.") && name.ends_with(".json") {
                    names.push(name.to_string());
                }
            }
        }
        names.sort();
        let mut crashes: Vec<Crash> = Vec::new();
        let mut read = std::collections::BTreeSet::new();
        // Root's records first, so that their copies can be left out.
        let (copies, records): (Vec<String>, Vec<String>) = names
            .into_iter()
            .partition(|name| root_record_of(name).is_some());
        for name in records.into_iter().chain(copies) {
            if root_record_of(&name).is_some_and(|root| read.contains(&root)) {
                continue;
            }
            let path = self.dir.join(&name);
            match Crash::read(&path) {
                Ok(Some(crash)) => {
                    read.insert(name);
                    crashes.push(crash);
                }
                Ok(None) => {}
                Err(err) => eprintln!("lttng-coredump: skipping {}: {err:#}", path.display()),
            }
        }
        crashes.sort_by(|a, b| {
            (a.time().unwrap_or(0), &a.record_path).cmp(&(b.time().unwrap_or(0), &b.record_path))
        });
        Ok(crashes)
    }
}

/// The name of root's record a user's copy goes with (`STEM.user.json` or
/// `STEM.user.N.json` beside `STEM.json`); `None` for any other name.
pub fn root_record_of(name: &str) -> Option<String> {
    let at = name.rfind(".user.")?;
    let rest = &name[at + ".user.".len()..];
    let numbered = rest
        .strip_suffix(".json")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    (rest == "json" || numbered).then(|| format!("{}.json", &name[..at]))
}

/// One crash: its record, as the handler wrote it.
#[derive(Debug, Clone)]
pub struct Crash {
    pub record_path: PathBuf,
    pub record: Value,
}

/// What became of a crash's core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoreState {
    /// Saved, whole, and still there.
    Present,
    /// Saved but cut (a size or space limit).
    Truncated,
    /// Saved, then deleted (to make room, or by hand).
    Missing,
    /// Never saved (see `not_saved_reason`).
    None,
}

impl CoreState {
    pub fn word(self) -> &'static str {
        match self {
            CoreState::Present => "present",
            CoreState::Truncated => "truncated",
            CoreState::Missing => "missing",
            CoreState::None => "none",
        }
    }

    pub fn on_disk(self) -> bool {
        matches!(self, CoreState::Present | CoreState::Truncated)
    }
}

impl Crash {
    /// Reads a record with the caller's rights; `None` when they may not.
    pub fn read(path: &Path) -> Result<Option<Crash>> {
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc_o_nofollow())
            .open(path)
        {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => return Ok(None),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err).context("cannot open the record"),
        };
        let metadata = file.metadata().context("cannot stat the record")?;
        if !metadata.is_file() {
            anyhow::bail!("not a regular file");
        }
        let mut text = Vec::new();
        (&file)
            .take(MAX_RECORD_BYTES)
            .read_to_end(&mut text)
            .context("cannot read the record")?;
        let record: Value =
            serde_json::from_slice(&text).context("not a crash record (bad JSON)")?;
        if !record.is_object() {
            anyhow::bail!("not a crash record (not a JSON object)");
        }
        Ok(Some(Crash {
            record_path: path.to_path_buf(),
            record,
        }))
    }

    pub fn time(&self) -> Option<i64> {
        self.record["time"].as_i64()
    }

    pub fn pid(&self) -> Option<i64> {
        self.record["pid"].as_i64()
    }

    pub fn uid(&self) -> Option<u64> {
        self.record["uid"].as_u64()
    }

    pub fn process_name(&self) -> Option<&str> {
        self.record["process_name"].as_str()
    }

    pub fn exe_path(&self) -> Option<&str> {
        self.record["exe_path"].as_str()
    }

    pub fn signal_name(&self) -> String {
        match (
            self.record["signal"]["name"].as_str(),
            self.record["signal"]["number"].as_i64(),
        ) {
            (Some(name), _) => name.trim_start_matches("SIG").to_string(),
            (None, Some(number)) => number.to_string(),
            (None, None) => "-".into(),
        }
    }

    /// The core file's path, when one was saved.
    pub fn core_path(&self) -> Option<PathBuf> {
        self.record["core"]["path"].as_str().map(PathBuf::from)
    }

    pub fn compression(&self) -> &str {
        self.record["core"]["compression"]
            .as_str()
            .unwrap_or("none")
    }

    /// Uncompressed bytes of the core held by its file.
    pub fn core_size(&self) -> Option<u64> {
        self.record["core"]["size"].as_u64()
    }

    pub fn core_state(&self) -> CoreState {
        let Some(path) = self.core_path() else {
            return CoreState::None;
        };
        if self.record["core"]["saved"] != true {
            return CoreState::None;
        }
        // Existence only: the directory is readable by everyone, the file
        // may not be, and whether it is is the kernel's business at open.
        match std::fs::symlink_metadata(&path) {
            Ok(metadata) if metadata.is_file() => {
                if self.record["core"]["complete"] == true {
                    CoreState::Present
                } else {
                    CoreState::Truncated
                }
            }
            _ => CoreState::Missing,
        }
    }

    /// The snapshots taken for the crash (those with a path and no error).
    pub fn snapshots(&self) -> Vec<Snapshot> {
        self.record["snapshots"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter(|entry| entry["error"].is_null())
                    .filter_map(|entry| {
                        Some(Snapshot {
                            path: PathBuf::from(entry["path"].as_str()?),
                            session: entry["session"].as_str().unwrap_or("?").to_string(),
                            daemon: entry["daemon"].as_str().unwrap_or("?").to_string(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether at least one snapshot of the crash is still on disk.
    pub fn trace_present(&self) -> bool {
        self.snapshots()
            .iter()
            .any(|snapshot| snapshot.path.is_dir())
    }

    /// The record, with what the tools found out added.
    pub fn to_json(&self) -> Value {
        let mut value = self.record.clone();
        if let Some(object) = value.as_object_mut() {
            object.insert(
                "record_path".into(),
                Value::from(self.record_path.to_string_lossy().into_owned()),
            );
            object.insert("core_state".into(), Value::from(self.core_state().word()));
            object.insert(
                "core_present".into(),
                Value::from(self.core_state().on_disk()),
            );
            object.insert("trace_present".into(), Value::from(self.trace_present()));
        }
        value
    }
}

/// A trace snapshot recorded for a crash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub path: PathBuf,
    pub session: String,
    /// `root`, or `user UID`.
    pub daemon: String,
}

/// `O_NOFOLLOW`: a record is a file the handler wrote, never a link.
fn libc_o_nofollow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits() as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_copy_names_roots_record() {
        assert_eq!(
            root_record_of("core.x.1.2.user.json").as_deref(),
            Some("core.x.1.2.json")
        );
        assert_eq!(
            root_record_of("core.x.1.2.1.user.3.json").as_deref(),
            Some("core.x.1.2.1.json")
        );
        assert_eq!(root_record_of("core.x.1.2.json"), None);
        assert_eq!(root_record_of("core.user.1.2.json"), None);
    }

    #[test]
    fn each_crash_once_roots_record_before_its_copy() {
        let dir = std::env::temp_dir().join(format!("tools-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("core.a.1.10.json"), r#"{"pid": 1, "time": 10}"#).unwrap();
        std::fs::write(
            dir.join("core.a.1.10.user.json"),
            r#"{"pid": 1, "time": 10, "note": "copy"}"#,
        )
        .unwrap();
        // Only a copy (root's record gone, or not readable): the copy shows.
        std::fs::write(
            dir.join("core.b.2.20.user.json"),
            r#"{"pid": 2, "time": 20}"#,
        )
        .unwrap();
        std::fs::write(dir.join("notes.json"), "{}").unwrap();
        let store = Store {
            dir: dir.clone(),
            config: Config::default(),
            config_path: "/none".into(),
            config_error: None,
        };
        let crashes = store.crashes().unwrap();
        let pids: Vec<_> = crashes.iter().map(|c| c.pid()).collect();
        assert_eq!(pids, [Some(1), Some(2)]);
        assert!(
            crashes[0].record["note"].is_null(),
            "root's record, not the copy"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
