//! What `/proc` says about the process being dumped: its identity and
//! state (`status`, `stat`), its threads (`task/`), its mappings (`maps`,
//! `smaps` with `VmFlags`), `coredump_filter`, `auxv`, `cmdline`, and which
//! of its pages are present (`pagemap`).
//!
//! Everything is read as the caller: `/proc` applies the kernel's ptrace
//! access rules to what needs them (`maps`, `auxv`, `pagemap`).

use crate::sys::Pid;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;

fn read_text(path: &str) -> io::Result<String> {
    let mut text = String::new();
    File::open(path)?.read_to_string(&mut text)?;
    Ok(text)
}

fn read_bytes(path: &str) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// What `/proc/PID/status` (or `task/TID/status`) says.
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub name: String,
    /// The state letter (R, S, D, T, t, Z, X, I...).
    pub state: char,
    pub tgid: Pid,
    pub ppid: Pid,
    pub tracer_pid: Pid,
    /// Real, effective, saved and file-system uids.
    pub uids: [u32; 4],
    pub gids: [u32; 4],
    pub threads: u32,
    /// Signals pending for this thread, and for the whole process.
    pub sig_pending: u64,
    pub shared_pending: u64,
    pub sig_blocked: u64,
    pub cap_permitted: u64,
    /// 0: none, 1: strict, 2: filter.
    pub seccomp: u32,
    /// `Kthread: 1` (kernels that say it; `stat`'s flags say it for all).
    pub kthread: bool,
    /// `x86_Thread_features` (e.g. `shstk`), empty when none.
    pub x86_thread_features: String,
}

fn parse_ids(value: &str) -> [u32; 4] {
    let mut ids = [0u32; 4];
    for (slot, word) in ids.iter_mut().zip(value.split_whitespace()) {
        *slot = word.parse().unwrap_or(0);
    }
    ids
}

fn parse_hex(value: &str) -> u64 {
    u64::from_str_radix(value.trim(), 16).unwrap_or(0)
}

impl Status {
    pub fn parse(text: &str) -> Status {
        let mut status = Status::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match key {
                "Name" => status.name = value.to_string(),
                "State" => status.state = value.chars().next().unwrap_or('?'),
                "Tgid" => status.tgid = value.parse().unwrap_or(0),
                "PPid" => status.ppid = value.parse().unwrap_or(0),
                "TracerPid" => status.tracer_pid = value.parse().unwrap_or(0),
                "Uid" => status.uids = parse_ids(value),
                "Gid" => status.gids = parse_ids(value),
                "Threads" => status.threads = value.parse().unwrap_or(0),
                "SigPnd" => status.sig_pending = parse_hex(value),
                "ShdPnd" => status.shared_pending = parse_hex(value),
                "SigBlk" => status.sig_blocked = parse_hex(value),
                "CapPrm" => status.cap_permitted = parse_hex(value),
                "Seccomp" => status.seccomp = value.parse().unwrap_or(0),
                "Kthread" => status.kthread = value == "1",
                "x86_Thread_features" => status.x86_thread_features = value.to_string(),
                _ => {}
            }
        }
        status
    }
}

/// Whether `pid` still runs (not gone, not a zombie).
pub fn alive(pid: Pid) -> bool {
    stat(pid).is_ok_and(|s| !matches!(s.state, 'Z' | 'X'))
}

/// The memory `pid` has to itself (`Private_Clean` + `Private_Dirty` of
/// `smaps_rollup`), in bytes.
pub fn private_bytes(pid: Pid) -> Option<u64> {
    let text = read_text(&format!("/proc/{pid}/smaps_rollup")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    Some((field("Private_Clean:")? + field("Private_Dirty:")?) * 1024)
}

/// `/proc/PID/status`.
pub fn status(pid: Pid) -> io::Result<Status> {
    read_text(&format!("/proc/{pid}/status")).map(|t| Status::parse(&t))
}

/// `/proc/PID/task/TID/status`.
pub fn task_status(pid: Pid, tid: Pid) -> io::Result<Status> {
    read_text(&format!("/proc/{pid}/task/{tid}/status")).map(|t| Status::parse(&t))
}

/// The `stat` fields a core needs.
#[derive(Debug, Clone, Default)]
pub struct Stat {
    pub state: char,
    pub ppid: Pid,
    pub pgrp: Pid,
    pub session: Pid,
    /// The kernel's `task->flags` (`PF_*`).
    pub flags: u64,
    /// In clock ticks.
    pub utime: u64,
    pub stime: u64,
    pub cutime: u64,
    pub cstime: u64,
    pub nice: i64,
    /// When the process started, in clock ticks since boot (field 22):
    /// with the pid, what names one process over the machine's uptime.
    pub start_time: u64,
}

/// `PF_KTHREAD`: a kernel thread.
pub const PF_KTHREAD: u64 = 0x0020_0000;

impl Stat {
    /// Parses a `stat` line; the process name (field 2) may hold spaces and
    /// parentheses, so the fields are counted from its last `)`.
    pub fn parse(text: &str) -> Option<Stat> {
        let rest = &text[text.rfind(')')? + 1..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        // f[0] is field 3 (state).
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        Some(Stat {
            state: f.first()?.chars().next()?,
            ppid: num(1) as Pid,
            pgrp: num(2) as Pid,
            session: num(3) as Pid,
            flags: num(6) as u64,
            utime: num(11) as u64,
            stime: num(12) as u64,
            cutime: num(13) as u64,
            cstime: num(14) as u64,
            nice: num(16),
            start_time: num(19) as u64,
        })
    }
}

/// `/proc/PID/stat`.
pub fn stat(pid: Pid) -> io::Result<Stat> {
    let text = read_text(&format!("/proc/{pid}/stat"))?;
    Stat::parse(&text).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unreadable stat"))
}

/// `/proc/PID/task/TID/stat`.
pub fn task_stat(pid: Pid, tid: Pid) -> io::Result<Stat> {
    let text = read_text(&format!("/proc/{pid}/task/{tid}/stat"))?;
    Stat::parse(&text).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unreadable stat"))
}

/// A thread's name (`task/TID/comm`), without its newline.
pub fn task_comm(pid: Pid, tid: Pid) -> String {
    read_text(&format!("/proc/{pid}/task/{tid}/comm"))
        .map(|t| t.trim_end_matches('\n').to_string())
        .unwrap_or_default()
}

/// The threads of `pid` (`/proc/PID/task`), sorted, the main thread first
/// when it is there.
pub fn tasks(pid: Pid) -> io::Result<Vec<Pid>> {
    let mut tids: Vec<Pid> = std::fs::read_dir(format!("/proc/{pid}/task"))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable_by_key(|&tid| (tid != pid, tid));
    Ok(tids)
}

/// `/proc/PID/coredump_filter` (the kernel's default, 0x33, when it cannot
/// be read).
pub fn coredump_filter(pid: Pid) -> u32 {
    read_text(&format!("/proc/{pid}/coredump_filter"))
        .ok()
        .and_then(|t| u32::from_str_radix(t.trim(), 16).ok())
        .unwrap_or(0x33)
}

/// `/proc/PID/auxv`.
pub fn auxv(pid: Pid) -> io::Result<Vec<u8>> {
    read_bytes(&format!("/proc/{pid}/auxv"))
}

/// `/proc/PID/cmdline` (NUL-separated arguments).
pub fn cmdline(pid: Pid) -> Vec<u8> {
    read_bytes(&format!("/proc/{pid}/cmdline")).unwrap_or_default()
}

/// One mapping of the address space.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    pub read: bool,
    pub write: bool,
    pub exec: bool,
    pub shared: bool,
    /// File offset of `start`, in bytes.
    pub offset: u64,
    pub inode: u64,
    pub device: String,
    /// The path or pseudo-name (`[heap]`, `[vdso]`), unescaped; empty for
    /// anonymous memory.
    pub path: String,
    /// `VmFlags` two-letter codes (smaps only).
    pub vm_flags: Vec<[u8; 2]>,
    /// `Anonymous:` in kB (smaps only): pages of this mapping that are
    /// anonymous (written to, for a file mapping).
    pub anonymous_kb: u64,
    /// Whether the smaps details were read.
    pub detailed: bool,
}

impl Mapping {
    /// Whether a file backs the mapping (an inode), as the kernel's
    /// `vm_file`.
    pub fn is_file(&self) -> bool {
        self.inode != 0
    }

    /// Whether `VmFlags` holds `flag` (e.g. `b"dd"`).
    pub fn has_flag(&self, flag: &[u8; 2]) -> bool {
        self.vm_flags.iter().any(|f| f == flag)
    }

    /// The file was deleted (its last link is gone: shared anonymous
    /// memory, memfd, SysV shm and unlinked files say so).
    pub fn deleted(&self) -> bool {
        self.path.ends_with(" (deleted)")
    }

    /// Whether two reads of the address space describe the same mapping
    /// (the same range, rights and backing).
    pub fn same_as(&self, other: &Mapping) -> bool {
        self.start == other.start
            && self.end == other.end
            && (self.read, self.write, self.exec, self.shared)
                == (other.read, other.write, other.exec, other.shared)
            && self.offset == other.offset
            && self.inode == other.inode
            && self.device == other.device
    }

    pub fn len(&self) -> u64 {
        self.end - self.start
    }
}

/// Undoes the escaping `/proc` applies to paths (`\012` for a newline).
fn unescape_path(path: &str) -> String {
    if !path.contains('\\') {
        return path.to_string();
    }
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value =
                (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(value);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses one `maps` line.
fn parse_maps_line(line: &str) -> Option<Mapping> {
    // start-end perms offset dev inode [path]; the path may hold spaces.
    let mut fields = line.splitn(6, ' ');
    let range = fields.next()?;
    let perms = fields.next()?.as_bytes();
    let offset = u64::from_str_radix(fields.next()?, 16).ok()?;
    let device = fields.next()?.to_string();
    let inode = fields.next()?.parse().ok()?;
    let path = fields.next().unwrap_or("").trim_start();
    let (start, end) = range.split_once('-')?;
    if perms.len() < 4 {
        return None;
    }
    Some(Mapping {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        read: perms[0] == b'r',
        write: perms[1] == b'w',
        exec: perms[2] == b'x',
        shared: perms[3] == b's',
        offset,
        inode,
        device,
        path: unescape_path(path),
        ..Mapping::default()
    })
}

/// Whether a line starts a mapping (`hex-hex `) rather than an smaps field.
fn is_range_line(line: &str) -> bool {
    line.split_once(' ')
        .and_then(|(range, _)| range.split_once('-'))
        .is_some_and(|(a, b)| {
            !a.is_empty()
                && a.bytes().all(|c| c.is_ascii_hexdigit())
                && b.bytes().all(|c| c.is_ascii_hexdigit())
        })
}

/// Parses `maps` or `smaps` text.
pub fn parse_mappings(text: &str) -> Vec<Mapping> {
    let mut mappings: Vec<Mapping> = Vec::new();
    for line in text.lines() {
        if is_range_line(line) {
            if let Some(mapping) = parse_maps_line(line) {
                mappings.push(mapping);
            }
            continue;
        }
        let Some(current) = mappings.last_mut() else {
            continue;
        };
        if let Some(flags) = line.strip_prefix("VmFlags:") {
            current.vm_flags = flags
                .split_whitespace()
                .filter_map(|f| f.as_bytes().try_into().ok())
                .collect();
            current.detailed = true;
        } else if let Some(value) = line.strip_prefix("Anonymous:") {
            current.anonymous_kb = value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .unwrap_or(0);
        }
    }
    mappings
}

/// `/proc/PID/maps` (cheap: no page-table walk).
pub fn maps(pid: Pid) -> io::Result<Vec<Mapping>> {
    read_text(&format!("/proc/{pid}/maps")).map(|t| parse_mappings(&t))
}

/// `/proc/PID/smaps` (walks the page tables: its cost grows with the
/// resident memory).
pub fn smaps(pid: Pid) -> io::Result<Vec<Mapping>> {
    read_text(&format!("/proc/{pid}/smaps")).map(|t| parse_mappings(&t))
}

/// `/proc/PID/pagemap`, to skip pages that are not there.
pub struct PageMap {
    file: File,
    entries: Vec<u8>,
}

/// A pagemap entry's bits: present, swapped.
const PM_PRESENT: u64 = 1 << 63;
const PM_SWAPPED: u64 = 1 << 62;
/// The page is mapped by this process alone.
const PM_MMAP_EXCLUSIVE: u64 = 1 << 56;

impl PageMap {
    pub fn open(pid: Pid) -> io::Result<PageMap> {
        Ok(PageMap {
            file: File::open(format!("/proc/{pid}/pagemap"))?,
            entries: Vec::new(),
        })
    }

    /// Another reader of the same page map (the same open file: bound to
    /// the address space it was opened on, not to the pid).
    pub fn try_clone(&self) -> io::Result<PageMap> {
        Ok(PageMap {
            file: self.file.try_clone()?,
            entries: Vec::new(),
        })
    }

    /// For each page of `[start, start + pages * page_size)`: whether it is
    /// in memory or in swap (it has content to read). Returns whether every
    /// page in memory is mapped by this process alone (not shared with
    /// another, as after a fork).
    pub fn populated(
        &mut self,
        start: u64,
        pages: usize,
        page_size: u64,
        out: &mut Vec<bool>,
    ) -> io::Result<bool> {
        self.entries.resize(pages * 8, 0);
        let offset = start / page_size * 8;
        let mut done = 0;
        while done < self.entries.len() {
            let n = self
                .file
                .read_at(&mut self.entries[done..], offset + done as u64)?;
            if n == 0 {
                break;
            }
            done += n;
        }
        out.clear();
        let mut exclusive = true;
        out.extend(self.entries[..done].chunks_exact(8).map(|e| {
            let entry = u64::from_le_bytes(e.try_into().unwrap_or([0; 8]));
            if entry & PM_PRESENT != 0 && entry & PM_MMAP_EXCLUSIVE == 0 {
                exclusive = false;
            }
            entry & (PM_PRESENT | PM_SWAPPED) != 0
        }));
        out.resize(pages, false);
        Ok(exclusive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_is_read_past_a_hostile_name() {
        let line = "1234 (a) b (c) S 1 1234 1234 0 -1 4194560 100 0 0 0 7 3 1 2 20 0 1 0 5 0 0";
        let stat = Stat::parse(line).unwrap();
        assert_eq!(stat.state, 'S');
        assert_eq!((stat.ppid, stat.pgrp, stat.session), (1, 1234, 1234));
        assert_eq!(stat.flags, 4194560);
        assert_eq!(
            (stat.utime, stat.stime, stat.cutime, stat.cstime),
            (7, 3, 1, 2)
        );
        assert_eq!(stat.nice, 0);
    }

    #[test]
    fn smaps_gives_flags_and_anonymous_pages() {
        let text = "\
55d0c0000000-55d0c0021000 rw-p 00000000 00:00 0                          [heap]
Size:                132 kB
Anonymous:            12 kB
VmFlags: rd wr mr mw me ac dd
7f0000000000-7f0000001000 r--p 00002000 fd:01 1234                       /usr/lib/with space\\012newline.so (deleted)
Anonymous:             0 kB
VmFlags: rd mr mw me
";
        let maps = parse_mappings(text);
        assert_eq!(maps.len(), 2);
        assert_eq!(maps[0].path, "[heap]");
        assert!(maps[0].has_flag(b"dd") && maps[0].write && !maps[0].shared);
        assert_eq!(maps[0].anonymous_kb, 12);
        assert!(!maps[0].is_file());
        assert_eq!(maps[1].path, "/usr/lib/with space\nnewline.so (deleted)");
        assert!(maps[1].deleted() && maps[1].is_file());
        assert_eq!(maps[1].offset, 0x2000);
        assert!(maps[1].detailed);
    }

    #[test]
    fn status_gives_ids_signals_and_features() {
        let text = "Name:\tx y\nState:\tS (sleeping)\nTgid:\t10\nPPid:\t1\nTracerPid:\t0\nUid:\t1000\t0\t0\t0\nGid:\t100\t100\t100\t100\nThreads:\t3\nSigPnd:\t0000000000000100\nShdPnd:\t0000000000000000\nSigBlk:\t0000000000010000\nCapPrm:\t000001ffffffffff\nSeccomp:\t2\nx86_Thread_features:\tshstk\n";
        let status = Status::parse(text);
        assert_eq!(status.name, "x y");
        assert_eq!(status.uids, [1000, 0, 0, 0]);
        assert_eq!(status.sig_pending, 0x100);
        assert_eq!(status.sig_blocked, 0x10000);
        assert_eq!(status.seccomp, 2);
        assert_eq!(status.threads, 3);
        assert_eq!(status.x86_thread_features, "shstk");
    }
}
