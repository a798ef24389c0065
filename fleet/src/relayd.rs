//! Traces to lttng-relayd on the collector: a crash's snapshot recorded to a
//! `net://` output (the session daemon's consumer streams it to the relay
//! daemon; nothing of ours in between), named after the crash ID, and the
//! fields that tell the collector where it is.
//!
//! lttng-relayd 2.13 stores a snapshot under its output directory as
//! `HOSTNAME/SESSION-YYYYMMDD-HHMMSS/NAME-YYYYMMDD-HHMMSS-SEQ`: the host
//! name of the session daemon, the session's creation time and the
//! snapshot's time as the session daemon's local time. Those times are
//! not ours to know for certain (the daemon's time zone), so the entry
//! carries the path as the pattern `HOSTNAME/SESSION-*/NAME-*`, which the
//! crash ID in NAME makes match one directory; [`resolve_snapshot_path`]
//! finds it on the collector.
//!
//! A snapshot goes to the relay when it is recorded, at the crash: the
//! ring buffers hold the crash's events only then. When the collector is
//! unreachable at that moment the record fails within the handler's
//! snapshot deadline, the local snapshot stays on the host, and the entry
//! (sent later from the spool) says so.

use crate::crash_id::CrashId;
use crate::export::Field;
use crate::fields;
use lttng_ctl::{Session, SnapshotOutput};
use std::path::{Path, PathBuf};

/// A snapshot recorded to a relay daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelaySnapshot {
    pub relay_url: String,
    pub session: String,
    pub name: String,
    /// The host name the relay daemon files it under.
    pub hostname: String,
}

/// The name of a crash's relay snapshot.
pub fn snapshot_name(crash_id: &CrashId) -> String {
    format!("crash-{crash_id}")
}

impl RelaySnapshot {
    /// Where it is under the relay daemon's output directory (see the
    /// [module documentation](self)).
    pub fn path_pattern(&self) -> String {
        format!("{}/{}-*/{}-*", self.hostname, self.session, self.name)
    }

    /// The entry's fields naming it.
    pub fn fields(&self) -> Vec<Field> {
        vec![
            (
                fields::SNAPSHOT_RELAY.into(),
                self.relay_url.clone().into_bytes(),
            ),
            (
                fields::SNAPSHOT_SESSION.into(),
                self.session.clone().into_bytes(),
            ),
            (
                fields::RELAY_SNAPSHOT_PATH.into(),
                self.path_pattern().into_bytes(),
            ),
        ]
    }
}

/// Records a snapshot of `session` (a snapshot-mode session of the session
/// daemon this process talks to) to the relay daemon at `relay_url`
/// (`net://HOST[:CTRL[:DATA]]`), named after `crash_id`. Returns when the
/// relay has it (the session daemon answers once the snapshot is written).
pub fn record(
    session: &str,
    relay_url: &str,
    crash_id: &CrashId,
) -> Result<RelaySnapshot, lttng_ctl::Error> {
    let name = snapshot_name(crash_id);
    let output = SnapshotOutput::relay(relay_url);
    Session::from_name(session)?.record_snapshot_to(&output.name(&name))?;
    Ok(RelaySnapshot {
        relay_url: relay_url.to_owned(),
        session: session.to_owned(),
        name,
        hostname: rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned(),
    })
}

/// The directory a [`fields::RELAY_SNAPSHOT_PATH`] pattern names under the relay
/// daemon's output directory `relay_root`: `None` unless exactly one
/// matches. Only `*` at the end of a component is a wildcard (the
/// pattern's form), and no component may be `..`.
pub fn resolve_snapshot_path(relay_root: &Path, pattern: &str) -> Option<PathBuf> {
    let mut found = vec![relay_root.to_path_buf()];
    for component in pattern.split('/') {
        if component.is_empty() || component == "." || component == ".." {
            return None;
        }
        let mut next = Vec::new();
        for dir in &found {
            match component.strip_suffix('*') {
                Some(prefix) if !prefix.contains('*') => {
                    let Ok(entries) = std::fs::read_dir(dir) else {
                        continue;
                    };
                    for entry in entries.flatten() {
                        let name = entry.file_name();
                        if name.to_str().is_some_and(|n| n.starts_with(prefix))
                            && entry.file_type().is_ok_and(|t| t.is_dir())
                        {
                            next.push(dir.join(name));
                        }
                    }
                }
                Some(_) => return None,
                None if component.contains('*') => return None,
                None => {
                    let path = dir.join(component);
                    if path.is_dir() {
                        next.push(path);
                    }
                }
            }
        }
        found = next;
    }
    (found.len() == 1).then(|| found.remove(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_resolves_to_the_one_snapshot_it_names() {
        let root = std::env::temp_dir().join(format!("relayd-resolve-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for dir in [
            "host1/sess-20261207-013312/crash-aa-20261207-013312-0/ust",
            "host1/sess-20261207-013312/crash-bb-20261207-013400-1",
            "host1/sessother-20261207-013312/crash-aa-20261207-013312-0",
            "host2/sess-20261207-013312/crash-aa-20261207-013312-0",
        ] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        let snapshot = RelaySnapshot {
            relay_url: "net://c".into(),
            session: "sess".into(),
            name: "crash-aa".into(),
            hostname: "host1".into(),
        };
        assert_eq!(snapshot.path_pattern(), "host1/sess-*/crash-aa-*");
        // "sess-*" does not match "sessother-...".
        assert_eq!(
            resolve_snapshot_path(&root, &snapshot.path_pattern()),
            Some(root.join("host1/sess-20261207-013312/crash-aa-20261207-013312-0"))
        );
        assert_eq!(resolve_snapshot_path(&root, "host1/*/crash-*"), None);
        assert_eq!(resolve_snapshot_path(&root, "../etc"), None);
        assert_eq!(
            resolve_snapshot_path(&root, "host3/sess-*/crash-aa-*"),
            None
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
