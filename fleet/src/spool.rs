//! The spool: every crash waiting to be shipped, kept on disk as corewatcher
//! (seed 002) kept its crashes, one directory a state, so that a crash
//! survives the network, the submitter's death and a power loss.
//!
//! ```text
//! SPOOL/                 root:root 0755
//!   incoming/            root:root 0700   items being written (the handler, as root)
//!   queue/               OWNER 0700       items complete, waiting for a destination
//!   sent/                OWNER 0700       items every destination acknowledged
//!   state/               OWNER 0700       each destination's last error, back-off
//!   submit.lock          OWNER 0600       one submitter at a time
//!   drops.log            root:OWNER 0640  every core or report dropped, one JSON line each
//! ```
//!
//! An item is a directory `TIME-SIZE-CRASHID` (its time first, so names
//! sort oldest first; its size when queued, so that the spool's size is
//! bounded without opening every item) holding `meta.json`, `fields` (the journal entry's fields
//! in the export format: binary-safe), `report.json` when there is a
//! report, `core.zst` when the core travels, and a `done.DESTINATION` file
//! for each destination that has acknowledged it.
//!
//! The states, and what makes each durable:
//! 1. **incoming**: the handler (root) creates the item in `incoming/`,
//!    writes and `fsync`s each file, gives the item to the submitter's user
//!    (`fchown` on descriptors), `fsync`s the item's directory.
//! 2. **queue**: it renames the item into `queue/` (`renameat2`,
//!    `RENAME_NOREPLACE`) and `fsync`s both directories: from then on the
//!    crash survives a power loss. An item left in `incoming/` by a
//!    handler that died is found by the next enqueue (its `flock` is free;
//!    an item is made and locked under a shared `flock` of `incoming/`,
//!    which the sweep takes exclusively, so none is seen unlocked while
//!    its handler lives),
//!    removed and recorded as a drop.
//! 3. **acknowledged by a destination**: once the destination answered that
//!    it has the crash, the submitter creates `done.DESTINATION` in the
//!    item and `fsync`s the item's directory. Nothing is marked before the
//!    answer: a submitter killed between the answer and the mark sends the
//!    crash again (at-least-once delivery; see [`crate`] for how readers
//!    count it once).
//! 4. **sent**: when the last configured destination acknowledges it, the
//!    item moves to `sent/` (its core removed: delivered) without a mark,
//!    and `sent/` and `queue/` are synced once for the batch; the newest
//!    [`SpoolLimits::keep_sent`] are kept for `status`.
//!
//! The size bound is kept by whoever adds to the spool (enqueue): over
//! [`SpoolLimits::max_bytes`], sent items go first (they are delivered),
//! then the oldest cores, then the oldest reports (whole items); every drop
//! of something unsent is a line in `drops.log`, and `status` shows them.

use crate::crash_id::CrashId;
use crate::dirs::{self, Dir};
use crate::export;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The format of `meta.json`; bumped on incompatible changes.
pub const ITEM_FORMAT: &str = "lttng-coredump-spool-item/1";

pub const INCOMING: &str = "incoming";
pub const QUEUE: &str = "queue";
pub const SENT: &str = "sent";
pub const STATE: &str = "state";
pub const LOCK_FILE: &str = "submit.lock";
pub const DROPS_LOG: &str = "drops.log";
/// The previous drops log, once the current one passed [`DROPS_LOG_MAX`].
pub const DROPS_LOG_OLD: &str = "drops.log.1";
const DROPS_LOG_MAX: u64 = 1 << 20;

pub const META: &str = "meta.json";
pub const FIELDS: &str = "fields";
pub const REPORT: &str = "report.json";
pub const CORE: &str = "core.zst";
/// Written when the core was dropped from a full spool: why.
pub const CORE_DROPPED: &str = "core-dropped";
const DONE_PREFIX: &str = "done.";

/// The longest field value read back from an item's `fields` (a core never
/// is one: it is `core.zst`).
const MAX_FIELD_VALUE: usize = 64 << 20;

/// The user the submitter runs as, who owns the spool's states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolOwner {
    pub uid: u32,
    pub gid: u32,
}

/// The spool's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolLimits {
    /// Total bytes of the items in `queue/` and `sent/`.
    pub max_bytes: u64,
    /// Cores up to this size (uncompressed) are copied into the spool
    /// (zstd) and travel inside the journal entry; larger ones stay on the
    /// host and the entry says where.
    pub core_in_entry_max: u64,
    /// Sent items kept (without their cores) for `status`.
    pub keep_sent: usize,
}

impl Default for SpoolLimits {
    fn default() -> Self {
        SpoolLimits {
            max_bytes: 1 << 30,
            core_in_entry_max: 16 << 20,
            keep_sent: 100,
        }
    }
}

/// The core of a crash being enqueued: the handler's open file, read
/// through its descriptor (never reopened by path).
#[derive(Debug)]
pub struct CoreSource {
    pub file: File,
    /// Whether the file is zstd-compressed (the handler's
    /// `compression = "zstd"`).
    pub zstd: bool,
    /// The core's uncompressed size.
    pub size: u64,
    /// Where it stays on this host.
    pub host_path: PathBuf,
}

/// A crash entering the spool.
#[derive(Debug)]
pub struct NewCrash {
    /// The crash's ID when it already has one (given at the crash, to name
    /// its relay snapshot: [`crate::relayd`]); else a new one.
    pub crash_id: Option<CrashId>,
    /// The journal entry's fields, in order (systemd-coredump's names:
    /// `MESSAGE_ID`, `MESSAGE`, `COREDUMP_PID`, ..., the signature). Not
    /// `COREDUMP` (the core comes as [`NewCrash::core`]), nor names
    /// starting with `_` (the spool adds the host's own).
    pub fields: Vec<export::Field>,
    /// The report, as JSON (for the webhook).
    pub report_json: Option<Vec<u8>>,
    pub core: Option<CoreSource>,
    /// The host, as the entry will say (`_HOSTNAME`, the core's location).
    pub host: HostIdentity,
}

/// What identifies the crashing host and the moment, as journald would
/// have stamped the entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostIdentity {
    pub hostname: String,
    pub boot_id: String,
    pub machine_id: Option<String>,
    pub realtime_us: u64,
    pub monotonic_us: u64,
}

impl HostIdentity {
    /// This host, now.
    pub fn now() -> HostIdentity {
        let read_id = |path: &str| {
            std::fs::read_to_string(path)
                .ok()
                .map(|s| s.trim().replace('-', ""))
                .filter(|s| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        };
        let mono = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        HostIdentity {
            hostname: rustix::system::uname()
                .nodename()
                .to_string_lossy()
                .into_owned(),
            boot_id: read_id("/proc/sys/kernel/random/boot_id").unwrap_or_else(|| "0".repeat(32)),
            machine_id: read_id("/etc/machine-id"),
            realtime_us: now_us(),
            monotonic_us: (mono.tv_sec as u64) * 1_000_000 + (mono.tv_nsec as u64) / 1000,
        }
    }
}

/// Now, in microseconds since the epoch.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// `meta.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemMeta {
    pub format: String,
    pub crash_id: String,
    pub enqueued_us: u64,
    pub host: HostIdentity,
    pub core: Option<CoreMeta>,
}

/// What the spool knows of the crash's core.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoreMeta {
    /// Where it stays on the host.
    pub host_path: String,
    /// Uncompressed size.
    pub size: u64,
    /// Whether the spool holds a copy (`core.zst`) to send in the entry.
    pub in_spool: bool,
    /// Why it does not, when it does not.
    pub note: Option<String>,
}

/// One drop of something unsent, as `drops.log` records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropRecord {
    pub time_us: u64,
    pub crash_id: String,
    /// `core` (the item stays, without its core), `report` (the whole
    /// item), `incomplete` (an item a handler died writing).
    pub what: String,
    pub bytes: u64,
    pub reason: String,
}

/// What [`Spool::enqueue`] did.
#[derive(Debug, Clone)]
pub struct Enqueued {
    pub crash_id: CrashId,
    pub item: String,
    /// What was dropped to keep the bound (this crash's core may be one).
    pub drops: Vec<DropRecord>,
    /// Why the bound could not be kept, when it could not.
    pub bound_error: Option<String>,
}

/// An item in `queue/`, read back.
#[derive(Debug)]
pub struct LoadedItem {
    pub name: String,
    pub meta: ItemMeta,
    pub fields: Vec<export::Field>,
    pub report: Option<Vec<u8>>,
    /// `core.zst`, open.
    pub core: Option<File>,
    /// Why the core was dropped, when it was.
    pub core_dropped: Option<String>,
    /// The destinations that acknowledged it.
    pub done: BTreeSet<String>,
}

/// An error of the spool, with what was attempted.
#[derive(Debug)]
pub struct SpoolError(pub String);

impl std::fmt::Display for SpoolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SpoolError {}

impl From<io::Error> for SpoolError {
    fn from(err: io::Error) -> Self {
        SpoolError(err.to_string())
    }
}

pub type Result<T> = std::result::Result<T, SpoolError>;

fn context<T>(result: io::Result<T>, what: impl FnOnce() -> String) -> Result<T> {
    result.map_err(|e| SpoolError(format!("{}: {e}", what())))
}

/// An open spool.
#[derive(Debug)]
pub struct Spool {
    root: Dir,
    owner: SpoolOwner,
}

/// The submitter's lock, held until dropped.
#[derive(Debug)]
pub struct SubmitLock {
    _file: File,
}

impl Spool {
    /// Creates the spool's directories where missing (as root), with the
    /// owners and modes of the [module documentation](self), and opens it.
    /// Run again, it checks and repairs owners and modes.
    pub fn create(root: &Path, owner: SpoolOwner) -> Result<Spool> {
        match std::fs::create_dir(root) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(SpoolError(format!(
                    "creating the spool {}: {e}",
                    root.display()
                )))
            }
        }
        let dir = Dir::open(root)?;
        dir.set_owner_and_mode(Some((0, 0)), 0o755)?;
        let give = Some((owner.uid, owner.gid));
        for (name, dir_owner, mode) in [
            (INCOMING, Some((0, 0)), 0o700),
            (QUEUE, give, 0o700),
            (SENT, give, 0o700),
            (STATE, give, 0o700),
        ] {
            if !dir.exists(name) {
                dir.mkdir(name, 0o700)?;
            }
            dir.open_sub(name)?.set_owner_and_mode(dir_owner, mode)?;
        }
        for (name, file_owner, mode) in [
            (LOCK_FILE, (owner.uid, owner.gid), 0o600),
            (DROPS_LOG, (0, owner.gid), 0o640),
        ] {
            let file = dir.append_file(name, mode)?;
            dirs::set_file_owner(&file, Some(file_owner))?;
            rustix::fs::fchmod(&file, rustix::fs::Mode::from_raw_mode(mode))
                .map_err(|e| SpoolError(format!("setting the mode of {name}: {e}")))?;
        }
        dir.sync()?;
        Spool::open(root)
    }

    /// Opens an existing spool. Its root must be a directory owned by root
    /// that nobody else can write (what root writes into it is then never
    /// redirected); the owner of `queue/` is the submitter's user.
    pub fn open(root: &Path) -> Result<Spool> {
        let dir = Dir::open(root)?;
        let st = dir.self_stat()?;
        if st.uid != 0 || st.mode & 0o022 != 0 {
            return Err(SpoolError(format!(
                "the spool {} must be owned by root and writable by nobody else (owner {}, mode {:o})",
                root.display(),
                st.uid,
                st.mode
            )));
        }
        let queue = dir.stat(QUEUE)?;
        let owner = SpoolOwner {
            uid: queue.uid,
            gid: dir.open_sub(QUEUE)?.self_gid()?,
        };
        for name in [INCOMING, QUEUE, SENT, STATE] {
            if !dir.stat(name)?.is_dir {
                return Err(SpoolError(format!(
                    "{} is not a directory",
                    root.join(name).display()
                )));
            }
        }
        Ok(Spool { root: dir, owner })
    }

    pub fn path(&self) -> &Path {
        self.root.path()
    }

    pub fn owner(&self) -> SpoolOwner {
        self.owner
    }

    fn sub(&self, name: &str) -> Result<Dir> {
        Ok(self.root.open_sub(name)?)
    }

    /// Adds a crash (as root: the handler, once the report is written):
    /// gives it a crash ID, writes its item durably into `queue/`, then
    /// keeps the size bound. Returns the ID and what was dropped.
    pub fn enqueue(&self, crash: NewCrash, limits: &SpoolLimits) -> Result<Enqueued> {
        for (name, _) in &crash.fields {
            export::check_field_name(name, false).map_err(|e| SpoolError(e.to_string()))?;
            if name == crate::fields::COREDUMP {
                return Err(SpoolError(
                    "the COREDUMP field is the core itself: give it as the crash's core".into(),
                ));
            }
        }
        let incoming = self.sub(INCOMING)?;
        let queue = self.sub(QUEUE)?;
        self.sweep_incomplete(&incoming)?;

        let crash_id = match crash.crash_id {
            Some(id) => id,
            None => CrashId::random()?,
        };
        let enqueued_us = now_us();
        let item_name = format!("{enqueued_us:020}-{crash_id}");
        // Made and locked under a shared lock of `incoming/`, which a sweep
        // takes exclusively: no sweep sees the item between its mkdir and
        // its lock (it would take it for one whose writer died).
        let making = self.sub(INCOMING)?;
        making.lock_shared()?;
        incoming.mkdir(&item_name, 0o700)?;
        let item = incoming.open_sub(&item_name)?;
        // Held while the item is written: a sweep that gets it knows the
        // writer is gone.
        item.lock(false)?;
        drop(making);
        let owner = Some((self.owner.uid, self.owner.gid));

        let core_meta = match crash.core {
            None => None,
            Some(core) => Some(self.copy_core(&item, core, limits, owner)?),
        };
        let meta = ItemMeta {
            format: ITEM_FORMAT.into(),
            crash_id: crash_id.to_string(),
            enqueued_us,
            host: crash.host,
            core: core_meta,
        };
        let mut fields = Vec::new();
        export::write_entry(
            &mut fields,
            crash.fields.iter().map(|(n, v)| (n.as_str(), v.as_slice())),
            false,
        )
        .map_err(|e| SpoolError(e.to_string()))?;
        write_durably(&item, FIELDS, &fields, owner)?;
        if let Some(report) = &crash.report_json {
            write_durably(&item, REPORT, report, owner)?;
        }
        let meta_json = serde_json::to_vec_pretty(&meta).expect("the item's meta serializes");
        write_durably(&item, META, &meta_json, owner)?;
        item.set_owner_and_mode(owner, 0o700)?;
        item.sync()?;
        // Queued under TIME-SIZE-CRASHID: the sizes in the names bound the
        // spool's size without opening every item.
        let queued_name = format!("{enqueued_us:020}-{}-{crash_id}", item_bytes(&item));
        incoming.rename(&item_name, &queue, &queued_name)?;
        // One sync makes the rename durable: a journaling file system
        // commits both of its directories at once (and were `incoming/` to
        // keep a twin, the next sweep removes it unrecorded).
        queue.sync()?;

        // The crash is queued: a failure to keep the bound (something the
        // submitter's user put in an item) is reported, never the crash's.
        let (drops, bound_error) = match self.keep_bound(limits, &queued_name) {
            Ok(drops) => (drops, None),
            Err(e) => (Vec::new(), Some(format!("keeping the spool's bound: {e}"))),
        };
        Ok(Enqueued {
            crash_id,
            item: queued_name,
            drops,
            bound_error,
        })
    }

    fn copy_core(
        &self,
        item: &Dir,
        mut core: CoreSource,
        limits: &SpoolLimits,
        owner: Option<(u32, u32)>,
    ) -> Result<CoreMeta> {
        let host_path = core.host_path.display().to_string();
        if core.size > limits.core_in_entry_max {
            return Ok(CoreMeta {
                host_path,
                size: core.size,
                in_spool: false,
                note: Some(format!(
                    "the core ({} bytes) is larger than the {} bytes that travel inside the entry: it stays on the host",
                    core.size, limits.core_in_entry_max
                )),
            });
        }
        let mut out = item.create_file(CORE, 0o600)?;
        let copied = if core.zstd {
            // Already zstd (the handler's compression): copied as it is,
            // after checking that it holds what it claims.
            let mut bytes = Vec::new();
            (&mut core.file)
                .take(limits.core_in_entry_max.saturating_add(1 << 20))
                .read_to_end(&mut bytes)?;
            let size = zstd_size(&bytes, limits.core_in_entry_max)?;
            if size != core.size {
                return Err(SpoolError(format!(
                    "the core {host_path} holds {size} bytes, not the {} it was said to",
                    core.size
                )));
            }
            out.write_all(&bytes)?;
            bytes.len() as u64
        } else {
            let mut encoder = zstd::Encoder::new(&mut out, 3)?;
            let copied = io::copy(&mut (&mut core.file).take(core.size), &mut encoder)?;
            encoder.finish()?;
            if copied != core.size {
                return Err(SpoolError(format!(
                    "the core {host_path} ended after {copied} of {} bytes",
                    core.size
                )));
            }
            copied
        };
        let _ = copied;
        dirs::set_file_owner(&out, owner)?;
        out.sync_all()?;
        Ok(CoreMeta {
            host_path,
            size: core.size,
            in_spool: true,
            note: None,
        })
    }

    /// Removes the items of `incoming/` whose writer is gone (their lock is
    /// free), recording each as a drop.
    fn sweep_incomplete(&self, incoming: &Dir) -> Result<()> {
        // Exclusive: no enqueue is between making its item and locking it
        // (a handle of its own, released when the sweep ends).
        let sweeping = self.sub(INCOMING)?;
        sweeping.lock(false)?;
        for name in incoming.entries()? {
            let Ok(item) = incoming.open_sub(&name) else {
                incoming.remove_file(&name)?;
                continue;
            };
            if !item.lock(true)? {
                continue;
            }
            let bytes = item_bytes(&item);
            drop(item);
            incoming.remove_tree(&name)?;
            let id = crash_id_of(&name);
            let queued = [QUEUE, SENT].iter().any(|state| {
                self.sub(state)
                    .and_then(|dir| Ok(dir.entries()?))
                    .is_ok_and(|names| names.iter().any(|n| n.ends_with(&id)))
            });
            if queued {
                // The twin of a queued item (a rename that a power loss
                // left half-recorded): nothing was lost.
                continue;
            }
            self.record_drop(&DropRecord {
                time_us: now_us(),
                crash_id: crash_id_of(&name),
                what: "incomplete".into(),
                bytes,
                reason:
                    "the handler that was writing this crash into the spool died before it finished"
                        .into(),
            })?;
        }
        Ok(())
    }

    /// Keeps the spool under `limits.max_bytes`: sent items first, then the
    /// oldest cores (the new item's last), then the oldest reports (never
    /// the new item's). Serialized by a lock on the spool's root.
    fn keep_bound(&self, limits: &SpoolLimits, new_item: &str) -> Result<Vec<DropRecord>> {
        let root = Dir::open(self.root.path())?;
        root.lock(false)?;
        let queue = self.sub(QUEUE)?;
        let sent = self.sub(SENT)?;
        // The sizes in the names (never less than the items': drops only
        // shrink them) bound the total: under the bound, nothing to open.
        let named: Option<u64> = queue
            .entries()?
            .iter()
            .chain(&sent.entries()?)
            .map(|name| named_size(name))
            .sum();
        if named.is_some_and(|total| total <= limits.max_bytes) {
            return Ok(Vec::new());
        }
        let size_of =
            |dir: &Dir, name: &str| dir.open_sub(name).map(|d| item_bytes(&d)).unwrap_or(0);
        let queued: Vec<(String, u64)> = queue
            .entries()?
            .into_iter()
            .map(|n| {
                let size = size_of(&queue, &n);
                (n, size)
            })
            .collect();
        let sent_items: Vec<(String, u64)> = sent
            .entries()?
            .into_iter()
            .map(|n| {
                let size = size_of(&sent, &n);
                (n, size)
            })
            .collect();
        let mut total: u64 = queued.iter().chain(&sent_items).map(|(_, s)| s).sum();
        let mut drops = Vec::new();
        for (name, size) in &sent_items {
            if total <= limits.max_bytes {
                return Ok(drops);
            }
            sent.remove_tree(name)?;
            total -= size;
        }
        for (name, _) in &queued {
            if total <= limits.max_bytes {
                return Ok(drops);
            }
            let Ok(item) = queue.open_sub(name) else {
                continue;
            };
            let Ok(st) = item.stat(CORE) else { continue };
            let reason = format!(
                "the spool is over its bound of {} bytes: oldest cores are dropped first",
                limits.max_bytes
            );
            write_durably(
                &item,
                CORE_DROPPED,
                reason.as_bytes(),
                Some((self.owner.uid, self.owner.gid)),
            )
            .or_else(|e| {
                if item.exists(CORE_DROPPED) {
                    Ok(())
                } else {
                    Err(e)
                }
            })?;
            item.remove_file(CORE)?;
            item.sync()?;
            total = total.saturating_sub(st.size);
            let record = DropRecord {
                time_us: now_us(),
                crash_id: crash_id_of(name),
                what: "core".into(),
                bytes: st.size,
                reason,
            };
            self.record_drop(&record)?;
            drops.push(record);
        }
        for (name, _) in &queued {
            if total <= limits.max_bytes {
                return Ok(drops);
            }
            if name == new_item {
                continue;
            }
            let size = size_of(&queue, name);
            queue.remove_tree(name)?;
            total = total.saturating_sub(size);
            let record = DropRecord {
                time_us: now_us(),
                crash_id: crash_id_of(name),
                what: "report".into(),
                bytes: size,
                reason: format!(
                    "the spool is over its bound of {} bytes with no core left to drop: the oldest unsent crash is dropped",
                    limits.max_bytes
                ),
            };
            self.record_drop(&record)?;
            drops.push(record);
        }
        queue.sync()?;
        Ok(drops)
    }

    /// Appends a drop to `drops.log` (durably), starting a new log when it
    /// has grown past 1 MiB.
    fn record_drop(&self, record: &DropRecord) -> Result<()> {
        if self
            .root
            .stat(DROPS_LOG)
            .is_ok_and(|st| st.size > DROPS_LOG_MAX)
        {
            let _ = self.root.remove_file(DROPS_LOG_OLD);
            self.root.replace(DROPS_LOG, DROPS_LOG_OLD)?;
            let file = self.root.append_file(DROPS_LOG, 0o640)?;
            dirs::set_file_owner(&file, Some((0, self.owner.gid)))?;
        }
        let mut file = self.root.append_file(DROPS_LOG, 0o640)?;
        let mut line = serde_json::to_vec(record).expect("a drop record serializes");
        line.push(b'\n');
        file.write_all(&line)?;
        file.sync_all()?;
        Ok(())
    }

    /// The drops recorded, oldest first.
    pub fn drops(&self) -> Vec<DropRecord> {
        let mut all = Vec::new();
        for name in [DROPS_LOG_OLD, DROPS_LOG] {
            let Ok(mut file) = self.root.open_file(name) else {
                continue;
            };
            let mut text = String::new();
            if (&mut file)
                .take(4 * DROPS_LOG_MAX)
                .read_to_string(&mut text)
                .is_err()
            {
                continue;
            }
            all.extend(text.lines().filter_map(|l| serde_json::from_str(l).ok()));
        }
        all
    }

    /// The names of the items waiting in `queue/`, oldest first.
    pub fn queued(&self) -> Result<Vec<String>> {
        Ok(self.sub(QUEUE)?.entries()?)
    }

    /// The names of the items in `sent/`, oldest first.
    pub fn sent(&self) -> Result<Vec<String>> {
        Ok(self.sub(SENT)?.entries()?)
    }

    /// Reads the item `name` of `queue/`.
    pub fn load(&self, name: &str) -> Result<LoadedItem> {
        self.load_item(name, true)
    }

    /// Reads the item `name` of `queue/`, its report only when
    /// `with_report` (journal-remote sends none).
    pub fn load_item(&self, name: &str, with_report: bool) -> Result<LoadedItem> {
        let item = self.sub(QUEUE)?.open_sub(name)?;
        let meta_bytes = read_small(&item, META, 1 << 20)?;
        let meta: ItemMeta = serde_json::from_slice(&meta_bytes)
            .map_err(|e| SpoolError(format!("reading {}/{META}: {e}", item.path().display())))?;
        let fields_bytes = read_small(&item, FIELDS, MAX_FIELD_VALUE as u64)?;
        let mut reader = export::Reader::new(
            fields_bytes.as_slice(),
            export::ReadLimits {
                max_value: MAX_FIELD_VALUE,
                max_line: MAX_FIELD_VALUE,
            },
        );
        let fields = context(reader.next_entry(), || {
            format!("reading {}/{FIELDS}", item.path().display())
        })?
        .map(|e| e.fields)
        .unwrap_or_default();
        let report = match with_report && item.exists(REPORT) {
            true => Some(read_small(&item, REPORT, MAX_FIELD_VALUE as u64)?),
            false => None,
        };
        let core = item.open_file(CORE).ok();
        let core_dropped = item
            .exists(CORE_DROPPED)
            .then(|| read_small(&item, CORE_DROPPED, 4096).ok())
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        let done = item
            .entries()?
            .into_iter()
            .filter_map(|n| n.strip_prefix(DONE_PREFIX).map(str::to_owned))
            .collect();
        Ok(LoadedItem {
            name: name.to_owned(),
            meta,
            fields,
            report,
            core,
            core_dropped,
            done,
        })
    }

    /// Records that `destination` acknowledged the items `names` (a batch
    /// it answered for): an item that every one of `destinations` has now
    /// acknowledged moves to `sent/` (its core removed: delivered), the
    /// others get `done.DESTINATION`. Durable once this returns: each
    /// marked item's directory, then `queue/` and `sent/`, are synced (once
    /// for the batch). Keeps the newest `keep_sent` in `sent/`. Returns how
    /// many moved.
    pub fn acknowledge(
        &self,
        names: &[&str],
        destination: &str,
        destinations: &[&str],
        keep_sent: usize,
    ) -> Result<usize> {
        let queue = self.sub(QUEUE)?;
        let sent = self.sub(SENT)?;
        let marker = format!("{DONE_PREFIX}{destination}");
        let mut moved = 0;
        for name in names {
            let item = match queue.open_sub(name) {
                Ok(item) => item,
                // Dropped from a full spool meanwhile.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            let all_done = destinations
                .iter()
                .all(|d| *d == destination || item.exists(&format!("{DONE_PREFIX}{d}")));
            if all_done {
                item.remove_file(CORE)?;
                moved += usize::from(self.move_to_sent(&queue, &sent, name)?);
            } else {
                // An empty file: the directory's sync makes it durable.
                match item.create_file(&marker, 0o600) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(e.into()),
                }
                item.sync()?;
            }
        }
        if moved > 0 {
            sent.sync()?;
            self.prune_sent(&sent, keep_sent)?;
        }
        queue.sync()?;
        Ok(moved)
    }

    /// Moves to `sent/` the queued items that every one of `destinations`
    /// acknowledged (left in `queue/` when the destinations were
    /// configured differently, or by an older submitter). Returns how many.
    pub fn complete_acknowledged(&self, destinations: &[&str], keep_sent: usize) -> Result<usize> {
        let queue = self.sub(QUEUE)?;
        let sent = self.sub(SENT)?;
        let mut moved = 0;
        for name in queue.entries()? {
            let Ok(item) = queue.open_sub(&name) else {
                continue;
            };
            if destinations
                .iter()
                .all(|d| item.exists(&format!("{DONE_PREFIX}{d}")))
            {
                item.remove_file(CORE)?;
                moved += usize::from(self.move_to_sent(&queue, &sent, &name)?);
            }
        }
        if moved > 0 {
            sent.sync()?;
            queue.sync()?;
            self.prune_sent(&sent, keep_sent)?;
        }
        Ok(moved)
    }

    fn move_to_sent(&self, queue: &Dir, sent: &Dir, name: &str) -> Result<bool> {
        match queue.rename(name, sent, name) {
            Ok(()) => Ok(true),
            // An earlier run moved it and died before syncing the queue.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                queue.remove_tree(name)?;
                Ok(false)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn prune_sent(&self, sent: &Dir, keep_sent: usize) -> Result<()> {
        let kept = sent.entries()?;
        if kept.len() > keep_sent {
            for old in &kept[..kept.len() - keep_sent] {
                sent.remove_tree(old)?;
            }
        }
        Ok(())
    }

    /// Takes the submitter's lock: `None` when another submitter holds it
    /// and `wait` is false.
    pub fn lock_submitter(&self, wait: bool) -> Result<Option<SubmitLock>> {
        let file = rustix::fs::openat(
            self.root.fd(),
            LOCK_FILE,
            rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map(File::from)
        .map_err(|e| {
            SpoolError(format!(
                "opening {}: {e}",
                self.path().join(LOCK_FILE).display()
            ))
        })?;
        if dirs::lock_fd(file.as_fd(), !wait)? {
            Ok(Some(SubmitLock { _file: file }))
        } else {
            Ok(None)
        }
    }

    /// The directory of the destinations' state files.
    pub fn state_dir(&self) -> Result<Dir> {
        self.sub(STATE)
    }

    /// The items left in `incoming/` (being written, or by a handler that
    /// died: the next enqueue removes those).
    pub fn incoming(&self) -> Result<Vec<String>> {
        Ok(self.sub(INCOMING)?.entries()?)
    }

    /// Total bytes of the items in `queue/` and in `sent/`.
    pub fn bytes(&self) -> Result<(u64, u64)> {
        let total = |name: &str| -> Result<u64> {
            let dir = self.sub(name)?;
            Ok(dir
                .entries()?
                .iter()
                .map(|n| dir.open_sub(n).map(|d| item_bytes(&d)).unwrap_or(0))
                .sum())
        };
        Ok((total(QUEUE)?, total(SENT)?))
    }
}

impl Dir {
    fn self_gid(&self) -> io::Result<u32> {
        Ok(rustix::fs::fstat(self.fd())?.st_gid)
    }
}

/// Writes the new file `name` in `dir` and syncs it.
fn write_durably(dir: &Dir, name: &str, bytes: &[u8], owner: Option<(u32, u32)>) -> Result<()> {
    let mut file = dir.create_file(name, 0o600)?;
    context(file.write_all(bytes), || {
        format!("writing {}", dir.path().join(name).display())
    })?;
    dirs::set_file_owner(&file, owner)?;
    context(file.sync_all(), || {
        format!("syncing {}", dir.path().join(name).display())
    })?;
    Ok(())
}

fn read_small(dir: &Dir, name: &str, max: u64) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let file = dir.open_file(name)?;
    context(file.take(max + 1).read_to_end(&mut bytes), || {
        format!("reading {}", dir.path().join(name).display())
    })?;
    if bytes.len() as u64 > max {
        return Err(SpoolError(format!(
            "{} is larger than {max} bytes",
            dir.path().join(name).display()
        )));
    }
    Ok(bytes)
}

/// The bytes of the files of an item.
fn item_bytes(item: &Dir) -> u64 {
    item.entries()
        .unwrap_or_default()
        .iter()
        .filter_map(|n| item.stat(n).ok())
        .map(|st| st.size)
        .sum()
}

/// The size in a queued item's name (`TIME-SIZE-CRASHID`): its bytes when
/// it was queued.
fn named_size(item: &str) -> Option<u64> {
    let mut parts = item.split('-');
    let (_, size, _) = (parts.next()?, parts.next()?, parts.next()?);
    size.parse().ok()
}

/// The crash ID in an item's name (`TIME-SIZE-CRASHID`, `TIME-CRASHID` in
/// `incoming/`).
pub fn crash_id_of(item: &str) -> String {
    item.rsplit('-').next().unwrap_or(item).to_owned()
}

/// The uncompressed size of a zstd stream, read to its end, at most `max`
/// bytes (more is an error).
fn zstd_size(compressed: &[u8], max: u64) -> Result<u64> {
    let decoder = zstd::Decoder::new(compressed)?;
    let size = context(
        io::copy(&mut decoder.take(max + 1), &mut io::sink()),
        || "reading the zstd core".into(),
    )?;
    if size > max {
        return Err(SpoolError(format!(
            "the zstd core holds more than {max} bytes"
        )));
    }
    Ok(size)
}

/// Reads a spool item's `core.zst` back to the core's bytes, at most
/// `max` of them.
pub fn read_core(file: &mut File, max: u64) -> Result<Vec<u8>> {
    use std::io::Seek;
    file.seek(io::SeekFrom::Start(0))?;
    let decoder = zstd::Decoder::new(&mut *file)?;
    let mut core = Vec::new();
    context(decoder.take(max + 1).read_to_end(&mut core), || {
        "decompressing the spool's copy of the core".into()
    })?;
    if core.len() as u64 > max {
        return Err(SpoolError(format!(
            "the spool's core holds more than {max} bytes"
        )));
    }
    Ok(core)
}
