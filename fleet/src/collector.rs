//! On the collector: the crashes systemd-journal-remote stored, read back
//! from its journal directory and counted once each, and the problems they
//! make (crashes grouped by signature across hosts). What `lttng-coredump
//! list --journal-dir DIR` and `problems --journal-dir DIR` show.
//!
//! The journal files are read through `journalctl -D DIR -o export`, not
//! libsystemd over FFI: journalctl reads every journal file version and
//! compression its systemd knows (the collector's own, whatever wrote the
//! files), the export format is binary-safe and already ours to parse
//! ([`crate::export`]), `--output-fields` keeps the cores (the `COREDUMP`
//! field, megabytes each) out of what is read, and no `unsafe` nor a
//! libsystemd-dev build dependency comes with it. It runs with a bounded
//! time.
//!
//! **Counted once.** Delivery is at-least-once: an entry whose
//! acknowledgement was lost is sent again and stored twice. Each copy
//! carries the same `LTTNG_COREDUMP_CRASH_ID` and the same host: the
//! sender's machine (`_MACHINE_ID`) and the host name the crashing process
//! saw (`COREDUMP_HOSTNAME`, else `_HOSTNAME`), which the spool keeps with
//! the crash and which the local journal's copy shipped by
//! systemd-journal-upload carries too. The copies of one crash ID *from
//! one host* are one crash (the first stored is shown, with how many
//! copies there were). The ID alone is no key: another host sending the
//! same ID (a collision, a copied spool, a host sending another's ID) is
//! another crash, never hidden as a copy. Entries without the field
//! (systemd-coredump's own, shipped by systemd-journal-upload, which may
//! resend too) are one crash per host, boot, PID and crash time.

use crate::export::{self, Entry};
use crate::fields;
use lttng_coredump_journal::coredump::UID_UNKNOWN;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How to read the journal directory.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// The journalctl to run.
    pub journalctl: PathBuf,
    /// The bound on its run.
    pub timeout: Duration,
    /// Fields kept besides those [`CollectedCrash`] names.
    pub extra_fields: Vec<String>,
    /// The longest value kept of a field (longer ones are left out, their
    /// length noted): the files hold what every host chose to send.
    pub max_value: usize,
    /// The most bytes of fields read in all: past it the read stops with
    /// an error (a journal directory bigger than wanted, or crafted to
    /// fill memory), never a partial answer taken for the whole.
    pub max_total: u64,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            journalctl: PathBuf::from("journalctl"),
            timeout: Duration::from_secs(300),
            extra_fields: Vec::new(),
            max_value: 1 << 20,
            max_total: 1 << 30,
        }
    }
}

/// The fields read for each crash.
const READ_FIELDS: &[&str] = &[
    fields::MESSAGE,
    fields::MESSAGE_ID,
    fields::CRASH_ID,
    fields::SIGNATURE,
    fields::CORE_STORAGE,
    fields::CORE_LOCATION,
    fields::CORE_NOTE,
    fields::CORE_SIZE,
    fields::SNAPSHOT_RELAY,
    fields::SNAPSHOT_SESSION,
    fields::RELAY_SNAPSHOT_PATH,
    fields::SNAPSHOT_PATH,
    fields::COREDUMP_FILENAME,
    fields::COREDUMP_PID,
    fields::COREDUMP_UID,
    UID_UNKNOWN,
    fields::COREDUMP_SIGNAL,
    fields::COREDUMP_SIGNAL_NAME,
    fields::COREDUMP_EXE,
    fields::COREDUMP_COMM,
    fields::COREDUMP_TIMESTAMP,
    fields::COREDUMP_HOSTNAME,
    fields::HOSTNAME,
    fields::MACHINE_ID,
    fields::BOOT_ID,
];

/// One crash of the fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CollectedCrash {
    /// What it is counted by: `MACHINE/HOST/CRASH_ID` (the sending host,
    /// by its machine ID and the crash's host name, `-` for one the entry
    /// does not carry, and the crash ID), or `MACHINE/HOST/BOOT/PID/TIME`
    /// for an entry without a crash ID; each part's `\` and `/` escaped.
    pub key: String,
    pub crash_id: Option<String>,
    /// Entries of this crash in the journal (more than 1: it was sent
    /// again after an acknowledgement was lost).
    pub copies: usize,
    pub hostname: Option<String>,
    /// The sending host's machine ID (`_MACHINE_ID`).
    pub machine_id: Option<String>,
    /// When the entry was stamped (the crashing host's clock).
    pub realtime_us: u64,
    pub pid: Option<String>,
    pub uid: Option<String>,
    pub signal: Option<String>,
    pub exe: Option<String>,
    pub comm: Option<String>,
    pub signature: Option<String>,
    /// `journal`, `host` or `none` (our entries); `None` for others.
    pub core_storage: Option<String>,
    pub core_location: Option<String>,
    pub snapshot_session: Option<String>,
    /// The relay's pattern of the snapshot sent to it
    /// ([`fields::RELAY_SNAPSHOT_PATH`]); the crashing host's own paths
    /// are in `fields` ([`fields::SNAPSHOT_PATH`]).
    pub snapshot_path: Option<String>,
    /// The first line of `MESSAGE`.
    pub summary: Option<String>,
    /// Every field read, of the first copy.
    #[serde(skip)]
    pub fields: BTreeMap<String, Vec<u8>>,
}

/// Crashes of one signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The signature; for crashes without one, `exe:SIGNAL`.
    pub signature: String,
    pub signed: bool,
    pub count: usize,
    pub first_us: u64,
    pub last_us: u64,
    pub hosts: BTreeSet<String>,
    pub programs: BTreeSet<String>,
    /// The newest crash's key.
    pub newest: String,
}

#[derive(Debug)]
pub struct CollectorError(pub String);

impl std::fmt::Display for CollectorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CollectorError {}

/// Reads the crashes stored in the journal directory `dir` (what
/// systemd-journal-remote writes: `remote-HOST.journal` files), each
/// counted once, oldest first.
pub fn read_journal_dir(
    dir: &Path,
    options: &ReadOptions,
) -> Result<Vec<CollectedCrash>, CollectorError> {
    if !dir.is_dir() {
        return Err(CollectorError(format!(
            "{} is not a directory of journal files",
            dir.display()
        )));
    }
    let mut wanted: Vec<&str> = READ_FIELDS.to_vec();
    wanted.extend(options.extra_fields.iter().map(String::as_str));
    let mut command = Command::new(&options.journalctl);
    command
        .arg("-D")
        .arg(dir)
        .args(["-o", "export", "--no-pager"])
        .arg(format!("--output-fields={}", wanted.join(",")))
        .arg(format!(
            "{}={}",
            fields::MESSAGE_ID,
            fields::COREDUMP_MESSAGE_ID
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|e| {
        CollectorError(format!(
            "cannot run {} (apt-get install systemd): {e}",
            options.journalctl.display()
        ))
    })?;
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let stderr_reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut text = String::new();
        let _ = stderr.take(64 * 1024).read_to_string(&mut text);
        text
    });
    // The bound: journalctl is killed at the deadline, which ends the read.
    let pid = child.id();
    let deadline = Instant::now() + options.timeout;
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let killer = std::thread::spawn(move || {
        if done_rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_err()
        {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(pid as i32).expect("a child's pid"),
                rustix::process::Signal::KILL,
            );
            return true;
        }
        false
    });
    let limits = export::ReadLimits {
        max_value: options.max_value,
        // A text field is one line, its name (at most 64 bytes) and `=`.
        max_line: options.max_value + 128,
    };
    let mut entries = Vec::new();
    let mut read_error = None;
    let mut total: u64 = 0;
    for entry in export::Reader::new(BufReader::new(stdout), limits) {
        match entry {
            Ok(entry) => {
                total += entry
                    .fields
                    .iter()
                    .map(|(name, value)| (name.len() + value.len() + 2) as u64)
                    .sum::<u64>();
                if total > options.max_total {
                    read_error = Some(std::io::Error::other(format!(
                        "more than {} bytes of crash entries: stopped there",
                        options.max_total
                    )));
                    break;
                }
                entries.push(entry);
            }
            Err(e) => {
                read_error = Some(e);
                break;
            }
        }
    }
    if read_error.is_some() {
        // Its output is no longer read: it ends now, not at the deadline.
        let _ = child.kill();
    }
    let status = child.wait();
    let _ = done_tx.send(());
    let killed = killer.join().unwrap_or(false);
    let stderr = stderr_reader.join().unwrap_or_default();
    if killed {
        return Err(CollectorError(format!(
            "journalctl -D {} took longer than {:?}",
            dir.display(),
            options.timeout
        )));
    }
    if let Some(e) = read_error {
        return Err(CollectorError(format!(
            "reading journalctl -D {}: {e}",
            dir.display()
        )));
    }
    match status {
        Ok(s) if s.success() || (entries.is_empty() && stderr.contains("No entries")) => {}
        // journalctl exits 1 with "-- No entries --" on a directory with
        // none that match.
        Ok(_) if entries.is_empty() && !stderr.contains("Failed") => {}
        Ok(s) => {
            return Err(CollectorError(format!(
                "journalctl -D {} failed ({s}): {}",
                dir.display(),
                stderr.trim()
            )))
        }
        Err(e) => return Err(CollectorError(format!("waiting for journalctl: {e}"))),
    }
    Ok(crashes_of(entries))
}

/// The crashes of these entries, one per host and crash ID (or per host,
/// boot, PID and time), oldest first.
pub fn crashes_of(entries: Vec<Entry>) -> Vec<CollectedCrash> {
    let mut order: Vec<String> = Vec::new();
    let mut by_key: HashMap<String, CollectedCrash> = HashMap::new();
    for entry in entries {
        let crash = crash_of(&entry);
        match by_key.get_mut(&crash.key) {
            Some(first) => first.copies += 1,
            None => {
                order.push(crash.key.clone());
                by_key.insert(crash.key.clone(), crash);
            }
        }
    }
    let mut crashes: Vec<CollectedCrash> = order
        .into_iter()
        .filter_map(|key| by_key.remove(&key))
        .collect();
    crashes.sort_by_key(|c| c.realtime_us);
    crashes
}

fn crash_of(entry: &Entry) -> CollectedCrash {
    let text = |name: &str| entry.text(name).filter(|s| !s.is_empty());
    let hostname = text(fields::HOSTNAME).or_else(|| text(fields::COREDUMP_HOSTNAME));
    let machine_id = text(fields::MACHINE_ID);
    let crash_id = text(fields::CRASH_ID);
    // The host in the key: the machine, and the host name the crashing
    // process saw (`COREDUMP_HOSTNAME`, the same in every copy: the spool's
    // and the local journal's that journal-upload ships, whose `_HOSTNAME`
    // is journald's own name), else the one the entry was stamped with.
    let crash_host = text(fields::COREDUMP_HOSTNAME).or_else(|| hostname.clone());
    let mut key_parts = vec![
        machine_id.clone().unwrap_or_else(|| "-".into()),
        crash_host.unwrap_or_else(|| "-".into()),
    ];
    match &crash_id {
        Some(id) => key_parts.push(id.clone()),
        None => key_parts.extend(
            [
                fields::BOOT_ID,
                fields::COREDUMP_PID,
                fields::COREDUMP_TIMESTAMP,
            ]
            .map(|name| text(name).unwrap_or_default()),
        ),
    }
    let key = key_of(&key_parts);
    CollectedCrash {
        key,
        crash_id,
        copies: 1,
        hostname,
        machine_id,
        realtime_us: text("__REALTIME_TIMESTAMP")
            .and_then(|t| t.parse().ok())
            .unwrap_or(0),
        pid: text(fields::COREDUMP_PID),
        // A uid the entry says it does not know is none (its COREDUMP_UID
        // only stands for it, for coredumpctl's sake).
        uid: text(fields::COREDUMP_UID).filter(|_| text(UID_UNKNOWN).is_none()),
        signal: text(fields::COREDUMP_SIGNAL_NAME).or_else(|| text(fields::COREDUMP_SIGNAL)),
        exe: text(fields::COREDUMP_EXE),
        comm: text(fields::COREDUMP_COMM),
        signature: text(fields::SIGNATURE),
        core_storage: text(fields::CORE_STORAGE),
        core_location: text(fields::CORE_LOCATION).or_else(|| text(fields::COREDUMP_FILENAME)),
        snapshot_session: text(fields::SNAPSHOT_SESSION),
        snapshot_path: relay_snapshot_path(&text),
        summary: text(fields::MESSAGE).map(|m| m.lines().next().unwrap_or("").to_owned()),
        fields: entry.fields.iter().cloned().collect(),
    }
}

/// The parts joined by `/`, each one's `\` and `/` escaped with a `\`:
/// what a host chose (its name) cannot make two keys one.
fn key_of(parts: &[String]) -> String {
    parts
        .iter()
        .map(|part| part.replace('\\', "\\\\").replace('/', "\\/"))
        .collect::<Vec<_>>()
        .join("/")
}

/// The relay's pattern of the crash's snapshot: [`fields::RELAY_SNAPSHOT_PATH`],
/// or, in an entry shipped before that field existed, the
/// [`fields::SNAPSHOT_PATH`] that stood beside [`fields::SNAPSHOT_RELAY`]
/// (such an entry carried the relay's pattern under that name, and no
/// local path). A local path alone is no relay's.
fn relay_snapshot_path(text: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    text(fields::RELAY_SNAPSHOT_PATH).or_else(|| {
        text(fields::SNAPSHOT_RELAY)?;
        text(fields::SNAPSHOT_PATH)
    })
}

/// The problems of these crashes: one per signature (crashes without one
/// grouped by program and signal), most frequent first.
pub fn problems(crashes: &[CollectedCrash]) -> Vec<Problem> {
    let mut by_signature: BTreeMap<String, Problem> = BTreeMap::new();
    for crash in crashes {
        let (signature, signed) = match &crash.signature {
            Some(s) => (s.clone(), true),
            None => (
                format!(
                    "{}:{}",
                    crash
                        .exe
                        .as_deref()
                        .or(crash.comm.as_deref())
                        .unwrap_or("?"),
                    crash.signal.as_deref().unwrap_or("?")
                ),
                false,
            ),
        };
        let problem = by_signature
            .entry(signature.clone())
            .or_insert_with(|| Problem {
                signature,
                signed,
                count: 0,
                first_us: crash.realtime_us,
                last_us: crash.realtime_us,
                hosts: BTreeSet::new(),
                programs: BTreeSet::new(),
                newest: crash.key.clone(),
            });
        problem.count += 1;
        problem.first_us = problem.first_us.min(crash.realtime_us);
        if crash.realtime_us >= problem.last_us {
            problem.last_us = crash.realtime_us;
            problem.newest = crash.key.clone();
        }
        if let Some(host) = &crash.hostname {
            problem.hosts.insert(host.clone());
        }
        if let Some(program) = crash.exe.as_ref().or(crash.comm.as_ref()) {
            problem.programs.insert(program.clone());
        }
    }
    let mut problems: Vec<Problem> = by_signature.into_values().collect();
    problems.sort_by(|a, b| b.count.cmp(&a.count).then(b.last_us.cmp(&a.last_us)));
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(fields: &[(&str, &str)]) -> Entry {
        Entry {
            fields: fields
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect(),
            skipped: Vec::new(),
        }
    }

    #[test]
    fn copies_of_one_crash_id_count_once() {
        let a = [
            ("__REALTIME_TIMESTAMP", "10"),
            (fields::CRASH_ID, "aa"),
            (fields::HOSTNAME, "h1"),
            (fields::SIGNATURE, "sig1"),
            (fields::COREDUMP_EXE, "/bin/x"),
        ];
        let b = [
            ("__REALTIME_TIMESTAMP", "20"),
            (fields::CRASH_ID, "bb"),
            (fields::HOSTNAME, "h2"),
            (fields::SIGNATURE, "sig1"),
            (fields::COREDUMP_EXE, "/bin/x"),
        ];
        let c = [
            ("__REALTIME_TIMESTAMP", "30"),
            (fields::HOSTNAME, "h2"),
            (fields::COREDUMP_PID, "7"),
            (fields::COREDUMP_TIMESTAMP, "5"),
            (fields::COREDUMP_EXE, "/bin/y"),
            (fields::COREDUMP_SIGNAL_NAME, "SIGSEGV"),
        ];
        let crashes = crashes_of(vec![entry(&a), entry(&b), entry(&a), entry(&c), entry(&c)]);
        assert_eq!(crashes.len(), 3);
        assert_eq!(crashes[0].key, "-/h1/aa");
        assert_eq!(crashes[0].copies, 2);
        assert_eq!(crashes[1].copies, 1);
        assert_eq!(crashes[2].key, "-/h2//7/5");
        assert_eq!(crashes[2].copies, 2);
        let problems = problems(&crashes);
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0].signature, "sig1");
        assert_eq!(problems[0].count, 2);
        assert_eq!(
            problems[0].hosts,
            BTreeSet::from(["h1".into(), "h2".into()])
        );
        assert_eq!(problems[0].newest, "-/h2/bb");
        assert_eq!(problems[1].signature, "/bin/y:SIGSEGV");
        assert!(!problems[1].signed);
    }

    #[test]
    fn a_crash_is_its_hosts_and_its_id_never_the_id_alone() {
        let sent = |time: &str, machine: &str, host: &str, id: &str| {
            entry(&[
                ("__REALTIME_TIMESTAMP", time),
                (fields::MACHINE_ID, machine),
                (fields::HOSTNAME, host),
                (fields::CRASH_ID, id),
                (fields::SIGNATURE, "sig"),
            ])
        };
        let crashes = crashes_of(vec![
            sent("1", "m1", "web1", "aa"),
            // The same ID from another host name on the same machine (a
            // container), from another machine of the same name, and
            // from another host altogether: three more crashes.
            sent("2", "m1", "db2", "aa"),
            sent("3", "m2", "web1", "aa"),
            sent("4", "m3", "db3", "aa"),
            // web1 of m1 sending its crash again: a copy; and the local
            // journal's copy shipped by journal-upload, stamped with
            // journald's host name: a copy too.
            sent("5", "m1", "web1", "aa"),
            entry(&[
                ("__REALTIME_TIMESTAMP", "5"),
                (fields::MACHINE_ID, "m1"),
                (fields::HOSTNAME, "the-machine"),
                (fields::COREDUMP_HOSTNAME, "web1"),
                (fields::CRASH_ID, "aa"),
                (fields::SIGNATURE, "sig"),
            ]),
            // Names that would make one key of two were `/` not escaped.
            sent("6", "m4", "a/b", "c"),
            sent("7", "m4", "a", "b/c"),
        ]);
        let keys: Vec<(&str, usize)> = crashes.iter().map(|c| (c.key.as_str(), c.copies)).collect();
        assert_eq!(
            keys,
            [
                ("m1/web1/aa", 3),
                ("m1/db2/aa", 1),
                ("m2/web1/aa", 1),
                ("m3/db3/aa", 1),
                ("m4/a\\/b/c", 1),
                ("m4/a/b\\/c", 1),
            ]
        );
        assert_eq!(crashes[2].machine_id.as_deref(), Some("m2"));
        let problems = problems(&crashes);
        assert_eq!(problems[0].count, 6);
    }

    #[test]
    fn the_relay_pattern_and_the_local_paths_are_told_apart_in_new_and_old_entries() {
        let pattern = "h1/sess-*/crash-aa-*";
        // Today's entry: both, each under its own name.
        let new = [
            ("__REALTIME_TIMESTAMP", "10"),
            (fields::CRASH_ID, "aa"),
            (fields::SNAPSHOT_RELAY, "net://c"),
            (fields::SNAPSHOT_SESSION, "sess"),
            (fields::RELAY_SNAPSHOT_PATH, pattern),
            (fields::SNAPSHOT_PATH, "/var/lib/traces/sess/crash-aa"),
        ];
        // Shipped before the split: the relay's pattern under the old name.
        let old = [
            ("__REALTIME_TIMESTAMP", "20"),
            (fields::CRASH_ID, "bb"),
            (fields::SNAPSHOT_RELAY, "net://c"),
            (fields::SNAPSHOT_PATH, pattern),
        ];
        // No relay: the old name is a local path, no relay's pattern.
        let local = [
            ("__REALTIME_TIMESTAMP", "30"),
            (fields::CRASH_ID, "cc"),
            (fields::SNAPSHOT_PATH, "/var/lib/traces/sess/crash-cc"),
        ];
        let crashes = crashes_of(vec![entry(&new), entry(&old), entry(&local)]);
        assert_eq!(crashes[0].snapshot_path.as_deref(), Some(pattern));
        assert_eq!(
            crashes[0].fields[fields::SNAPSHOT_PATH],
            b"/var/lib/traces/sess/crash-aa"
        );
        assert_eq!(crashes[1].snapshot_path.as_deref(), Some(pattern));
        assert_eq!(crashes[2].snapshot_path, None);
    }
}

#[cfg(test)]
mod bound_tests {
    use super::*;

    /// A "journalctl" that prints `count` crash entries of `size` bytes of
    /// message each, whatever it is asked.
    fn fake_journalctl(dir: &Path, count: usize, size: usize) -> PathBuf {
        let script = dir.join("journalctl");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nfor i in $(seq {count}); do\n  printf '__REALTIME_TIMESTAMP=%s\\nLTTNG_COREDUMP_CRASH_ID=%s\\nMESSAGE=' $i $i\n  head -c {size} /dev/zero | tr '\\\\0' x\n  printf '\\n\\n'\ndone\n"
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        script
    }

    #[test]
    fn the_read_is_bounded_in_all_and_long_values_are_left_out() {
        let dir = std::env::temp_dir().join(format!("lcd-collector-bound-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let options = |max_total| ReadOptions {
            journalctl: fake_journalctl(&dir, 50, 2000),
            timeout: Duration::from_secs(60),
            extra_fields: Vec::new(),
            max_value: 1000,
            max_total,
        };
        // Every message longer than kept: 50 crashes, without their text.
        let crashes = read_journal_dir(&dir, &options(1 << 20)).unwrap();
        assert_eq!(crashes.len(), 50);
        assert!(crashes.iter().all(|c| c.summary.is_none()));
        // Past the bound in all: an error, never a part taken for the whole.
        let options = ReadOptions {
            max_value: 4096,
            ..options(20_000)
        };
        let err = read_journal_dir(&dir, &options).unwrap_err().to_string();
        assert!(err.contains("more than 20000 bytes"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
