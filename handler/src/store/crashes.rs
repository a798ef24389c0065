//! Finding the crashes: the records (`core.*.json`) in the core directory,
//! each read with the caller's own rights, through the record's own types
//! (`record_read`). A record the caller may not open is not theirs to see
//! and is skipped without a word; one that cannot be read as a record is
//! reported (unless quiet) and skipped. A directory that does not exist or
//! that the caller may not read is an error that says so.

use crate::store::record_read::{CoreView, StoredRecord};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// The crashes of one core directory.
pub struct Store {
    pub dir: PathBuf,
}

impl Store {
    pub fn at(dir: &Path) -> Store {
        Store {
            dir: dir.to_path_buf(),
        }
    }

    /// Every crash the caller may read, oldest first, and the records that
    /// were skipped (each with why). A crash whose record has a user's copy
    /// beside it (`STEM.user.json`, holding only what concerns the
    /// crashing user) is shown once: from root's record when the caller may
    /// read it, else from the copy.
    pub fn crashes(&self) -> Result<(Vec<Crash>, Vec<String>)> {
        let entries = match std::fs::read_dir(&self.dir) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => bail!(
                "the core directory {} does not exist (the handler makes it on the first crash \
                 it saves there; is this the configured one? see lttng-coredump config)",
                self.dir.display()
            ),
            Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => bail!(
                "this user (uid {}) may not read the core directory {}: its crashes are root's \
                 to list",
                rustix::process::geteuid().as_raw(),
                self.dir.display()
            ),
            entries => entries
                .with_context(|| format!("cannot list the crashes in {}", self.dir.display()))?,
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry
                .with_context(|| format!("cannot list the crashes in {}", self.dir.display()))?;
            if let Some(name) = entry.file_name().to_str() {
                if name.starts_with("core.")
                    && name.ends_with(".json")
                    && !crate::store::report_file::is_report_name(name)
                {
                    names.push(name.to_string());
                }
            }
        }
        names.sort();
        let mut crashes: Vec<Crash> = Vec::new();
        let mut skipped = Vec::new();
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
                Err(err) => skipped.push(format!(
                    "skipping {}: {}",
                    crate::base::human::escape(&path.to_string_lossy()),
                    crate::base::human::escape_controls(&err)
                )),
            }
        }
        crashes.sort_by(|a, b| {
            (a.time().unwrap_or(0), &a.record_path).cmp(&(b.time().unwrap_or(0), &b.record_path))
        });
        Ok((crashes, skipped))
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
    pub record: StoredRecord,
    /// Whether its snapshot directories are still there, as a child looked
    /// ([`look_at_snapshots`]): `None` until looked at; a path missing
    /// from the map got no answer in time.
    pub snapshots_seen: Option<std::collections::HashMap<PathBuf, bool>>,
}

/// Looks whether the crashes' snapshot directories are still there, never
/// in this process (a path a session daemon named may hang whoever looks
/// at it, `base::path_presence`): by a child acting as the user whose
/// daemon took each snapshot (when the caller is root), else with the
/// caller's ids, all within [`crate::base::path_presence::DEADLINE`].
pub fn look_at_snapshots(crashes: &mut [Crash]) {
    use crate::base::user_child::{acting_as, Who};
    let mut groups: Vec<(Option<Who>, Vec<PathBuf>)> = Vec::new();
    let mut places: Vec<Vec<(usize, usize)>> = Vec::new();
    for crash in crashes.iter() {
        let mut at = Vec::new();
        for snapshot in crash.snapshots() {
            let owner = snapshot
                .daemon
                .strip_prefix("user ")
                .and_then(|uid| uid.parse::<u64>().ok());
            let who = acting_as(owner, crash.gid().map(u64::from));
            let group = match groups.iter().position(|(w, _)| *w == who) {
                Some(group) => group,
                None => {
                    groups.push((who, Vec::new()));
                    groups.len() - 1
                }
            };
            groups[group].1.push(snapshot.path);
            at.push((group, groups[group].1.len() - 1));
        }
        places.push(at);
    }
    let answers = if groups.is_empty() {
        Vec::new()
    } else {
        crate::base::path_presence::look(&groups, crate::base::path_presence::DEADLINE)
    };
    for (crash, at) in crashes.iter_mut().zip(places) {
        let mut seen = std::collections::HashMap::new();
        for ((group, index), snapshot) in at.into_iter().zip(crash.snapshots()) {
            if let Some(present) = answers[group][index] {
                seen.insert(snapshot.path, present);
            }
        }
        crash.snapshots_seen = Some(seen);
    }
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
    /// Reads the crash's report from its file beside the record
    /// (`store/report_file.rs`) into the record as read, for `info`
    /// (`list` and `problems` need only the record). A file that cannot be
    /// read says so where the report would be.
    pub fn load_report(&mut self) {
        let loaded = crate::store::report_file::load(&self.record_path, self.record.report());
        let section = self.record.report_mut();
        match loaded {
            Ok(report) => section.report = report,
            Err(err) => {
                section.report = None;
                section.not_analyzed_reason = Some(format!("its report could not be read: {err}"));
            }
        }
    }

    /// Reads a record with the caller's rights; `None` when they may not.
    pub fn read(path: &Path) -> Result<Option<Crash>, String> {
        Ok(StoredRecord::read(path)?.map(|record| Crash {
            record_path: path.to_path_buf(),
            record,
            snapshots_seen: None,
        }))
    }

    pub fn time(&self) -> Option<i64> {
        self.record.crashed().time
    }

    pub fn pid(&self) -> Option<i64> {
        self.record.crashed().pid.map(i64::from)
    }

    pub fn uid(&self) -> Option<u32> {
        self.record.crashed().uid
    }

    pub fn gid(&self) -> Option<u32> {
        self.record.crashed().gid
    }

    pub fn process_name(&self) -> Option<&str> {
        self.record.crashed().process_name.as_deref()
    }

    pub fn exe_path(&self) -> Option<&str> {
        self.record.crashed().exe_path.as_deref()
    }

    pub fn signal_name(&self) -> String {
        match &self.record.crashed().signal {
            Some(signal) => match &signal.name {
                Some(name) => name.trim_start_matches("SIG").to_string(),
                None => signal.number.to_string(),
            },
            None => "-".into(),
        }
    }

    pub fn core(&self) -> CoreView<'_> {
        self.record.core()
    }

    /// The core file's path, when one was saved.
    pub fn core_path(&self) -> Option<PathBuf> {
        self.core().path.map(PathBuf::from)
    }

    pub fn compression(&self) -> &str {
        self.core().compression
    }

    /// Uncompressed bytes of the core held by its file.
    pub fn core_size(&self) -> u64 {
        self.core().size
    }

    pub fn core_state(&self) -> CoreState {
        let core = self.core();
        let (Some(path), true) = (core.path, core.saved) else {
            return CoreState::None;
        };
        // Existence only: the directory is readable by everyone, the file
        // may not be, and whether it is is the kernel's business at open.
        match std::fs::symlink_metadata(path) {
            Ok(metadata) if metadata.is_file() => {
                if core.complete {
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
        self.record
            .snapshots()
            .iter()
            .filter(|entry| entry.error.is_none())
            .filter_map(|entry| {
                Some(Snapshot {
                    path: PathBuf::from(entry.path.as_deref()?),
                    session: entry.session.clone(),
                    daemon: entry.daemon.clone(),
                })
            })
            .collect()
    }

    /// Whether at least one snapshot of the crash is still on disk, as
    /// [`look_at_snapshots`] found: `None` when it was not looked at, or
    /// a snapshot it could not tell of might be.
    pub fn trace_present(&self) -> Option<bool> {
        let seen = self.snapshots_seen.as_ref()?;
        let snapshots = self.snapshots();
        if snapshots.iter().any(|s| seen.get(&s.path) == Some(&true)) {
            return Some(true);
        }
        snapshots
            .iter()
            .all(|s| seen.contains_key(&s.path))
            .then_some(false)
    }

    /// Whether the snapshot directory `path` is still there, as
    /// [`look_at_snapshots`] found (`None`: not known).
    pub fn snapshot_seen(&self, path: &Path) -> Option<bool> {
        self.snapshots_seen.as_ref()?.get(path).copied()
    }

    /// The record, with what the tools found out added.
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = self.record.to_value();
        if let Some(object) = value.as_object_mut() {
            object.insert(
                "record_path".into(),
                self.record_path.to_string_lossy().into_owned().into(),
            );
            object.insert("core_state".into(), self.core_state().word().into());
            object.insert("core_present".into(), self.core_state().on_disk().into());
            // `null`: not looked at, or a snapshot did not answer in time.
            object.insert("trace_present".into(), self.trace_present().into());
            object.insert(
                "no_trace_reasons".into(),
                self.record.trace_absence().into(),
            );
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
            r#"{"format": "lttng-coredump-user-record/1", "pid": 1, "time": 10}"#,
        )
        .unwrap();
        // Only a copy (root's record gone, or not readable): the copy shows.
        std::fs::write(
            dir.join("core.b.2.20.user.json"),
            r#"{"format": "lttng-coredump-user-record/1", "pid": 2, "time": 20}"#,
        )
        .unwrap();
        std::fs::write(dir.join("notes.json"), "{}").unwrap();
        let store = Store::at(&dir);
        let (crashes, skipped) = store.crashes().unwrap();
        assert!(skipped.is_empty(), "{skipped:?}");
        let pids: Vec<_> = crashes.iter().map(|c| c.pid()).collect();
        assert_eq!(pids, [Some(1), Some(2)]);
        assert!(
            !crashes[0].record.is_user_copy(),
            "root's record, not the copy"
        );
        assert!(crashes[1].record.is_user_copy());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
