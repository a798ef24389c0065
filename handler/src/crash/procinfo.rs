//! What `/proc/PID` tells about the crashed process (command line,
//! executable, cgroup), read while the kernel holds it, and only kept when
//! it is certain to be about that process: the kernel's pidfd (`%F`) must
//! still name the same PID after the reading. Otherwise the record says it
//! could not tell, and describes no process at all.

use crate::store::record::Identity;
use rustix::fs::{Mode, OFlags};
use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// Longest command line kept (the rest is cut and said so).
const MAX_CMDLINE: u64 = 64 * 1024;
const MAX_CGROUP: u64 = 4096;
const MAX_STATUS: u64 = 16 * 1024;
const MAX_AUXV: u64 = 8 * 1024;
/// The auxiliary vector's `AT_SECURE` type (linux/auxvec.h).
const AT_SECURE: u64 = 23;

/// The four ids of a `Uid:` or `Gid:` line of `/proc/PID/status`.
pub(crate) fn status_ids(status: &[u8], key: &str) -> Option<[u32; 4]> {
    let text = std::str::from_utf8(status).ok()?;
    let line = text.lines().find_map(|line| line.strip_prefix(key))?;
    let ids: Vec<u32> = line
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    ids.try_into().ok()
}

/// A capability set line of `/proc/PID/status` (`CapPrm:` ...), in hex.
fn status_caps(status: &[u8], key: &str) -> Option<u64> {
    let text = std::str::from_utf8(status).ok()?;
    let value = text.lines().find_map(|line| line.strip_prefix(key))?;
    u64::from_str_radix(value.trim(), 16).ok()
}

/// The value of `kind` in an auxiliary vector (native-endian pairs of
/// words, ended by `AT_NULL`).
fn auxv_value(auxv: &[u8], kind: u64) -> Option<u64> {
    const WORD: usize = std::mem::size_of::<usize>();
    let word = |bytes: &[u8]| -> u64 {
        let mut buffer = [0u8; WORD];
        buffer.copy_from_slice(bytes);
        usize::from_ne_bytes(buffer) as u64
    };
    for pair in auxv.chunks_exact(2 * WORD) {
        let (key, value) = (word(&pair[..WORD]), word(&pair[WORD..]));
        if key == 0 {
            return None;
        }
        if key == kind {
            return Some(value);
        }
    }
    None
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProcessInfo {
    /// The process name as set (the kernel's `%e` writes `/` as `!`).
    pub comm: Option<Vec<u8>>,
    pub cmdline: Option<Vec<Vec<u8>>>,
    pub cmdline_truncated: bool,
    pub exe: Option<Vec<u8>>,
    pub cgroup: Option<Vec<u8>>,
    /// Real, effective, saved and file-system uids (`Uid:` of `status`).
    pub uids: Option<[u32; 4]>,
    /// The same for the gids (`Gid:`).
    pub gids: Option<[u32; 4]>,
    /// Its permitted, effective and ambient capability sets (`CapPrm:`,
    /// `CapEff:`, `CapAmb:`): a process of the user's uid may still hold
    /// capabilities its user does not have (a service with `User=` and
    /// `AmbientCapabilities=`).
    pub caps: Option<Capabilities>,
    /// `AT_SECURE` of the auxiliary vector: set when the program was
    /// started with more privileges than its caller (set-uid, set-gid,
    /// file capabilities), whatever it did with them since.
    pub at_secure: Option<bool>,
}

/// The capability sets of `/proc/PID/status`, as bit masks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    pub permitted: u64,
    pub effective: u64,
    pub ambient: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gathered {
    pub info: ProcessInfo,
    pub identity: Identity,
    pub errors: Vec<String>,
}

/// Reads `/proc/PID` (under `proc_root`) and checks it against the pidfd
/// at `pidfd` (the kernel's `%F`), read through `/proc/self/fdinfo`.
pub fn gather(proc_root: &Path, pid: i32, pidfd: Option<i32>) -> Gathered {
    let mut errors = Vec::new();
    let process_dir = proc_root.join(pid.to_string());
    // The directory fd stays bound to the process it was opened for: files
    // read through it can never come from a later process with that PID.
    let dir = match rustix::fs::open(
        &process_dir,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(dir) => Some(dir),
        Err(err) => {
            errors.push(format!("cannot open {}: {err}", process_dir.display()));
            None
        }
    };
    let mut info = ProcessInfo::default();
    if let Some(dir) = &dir {
        match read_limited(dir, "cmdline", MAX_CMDLINE) {
            Ok((raw, truncated)) => {
                info.cmdline_truncated = truncated;
                info.cmdline = Some(split_cmdline(&raw));
            }
            Err(err) => errors.push(format!(
                "cannot read {}/cmdline: {err}",
                process_dir.display()
            )),
        }
        match read_limited(dir, "comm", 64) {
            Ok((raw, _)) => info.comm = Some(trim_newline(raw)),
            Err(err) => errors.push(format!("cannot read {}/comm: {err}", process_dir.display())),
        }
        match rustix::fs::readlinkat(dir, "exe", Vec::new()) {
            Ok(target) => info.exe = Some(target.into_bytes()),
            Err(err) => errors.push(format!("cannot read {}/exe: {err}", process_dir.display())),
        }
        match read_limited(dir, "status", MAX_STATUS) {
            Ok((raw, _)) => {
                info.uids = status_ids(&raw, "Uid:");
                info.gids = status_ids(&raw, "Gid:");
                info.caps = match (
                    status_caps(&raw, "CapPrm:"),
                    status_caps(&raw, "CapEff:"),
                    status_caps(&raw, "CapAmb:"),
                ) {
                    (Some(permitted), Some(effective), Some(ambient)) => Some(Capabilities {
                        permitted,
                        effective,
                        ambient,
                    }),
                    _ => None,
                };
                if info.uids.is_none() || info.gids.is_none() {
                    errors.push(format!(
                        "{}/status has no Uid: or Gid: line",
                        process_dir.display()
                    ));
                }
            }
            Err(err) => errors.push(format!(
                "cannot read {}/status: {err}",
                process_dir.display()
            )),
        }
        match read_limited(dir, "auxv", MAX_AUXV) {
            Ok((raw, _)) => {
                info.at_secure = auxv_value(&raw, AT_SECURE).map(|value| value != 0);
                if info.at_secure.is_none() {
                    errors.push(format!("{}/auxv has no AT_SECURE", process_dir.display()));
                }
            }
            Err(err) => errors.push(format!("cannot read {}/auxv: {err}", process_dir.display())),
        }
        match read_limited(dir, "cgroup", MAX_CGROUP) {
            Ok((raw, _)) => info.cgroup = Some(trim_newline(raw)),
            Err(err) => errors.push(format!(
                "cannot read {}/cgroup: {err}",
                process_dir.display()
            )),
        }
    }
    let identity = match pidfd {
        None => Identity::Unverified("the kernel gave no pidfd (%F)".into()),
        Some(fd) => {
            let fdinfo = proc_root.join("self/fdinfo").join(fd.to_string());
            match pidfd_pid(&fdinfo) {
                Ok(Some(found)) if found == pid => Identity::VerifiedByPidfd,
                Ok(Some(-1)) => Identity::CouldNotTell(format!(
                    "process {pid} had exited when /proc was read (its pidfd names no process)"
                )),
                Ok(Some(found)) => {
                    Identity::CouldNotTell(format!("the pidfd names process {found}, not {pid}"))
                }
                Ok(None) => Identity::CouldNotTell(format!(
                    "fd {fd} is not a pidfd ({} has no Pid: line)",
                    fdinfo.display()
                )),
                Err(err) => {
                    Identity::CouldNotTell(format!("cannot read {}: {err}", fdinfo.display()))
                }
            }
        }
    };
    if matches!(identity, Identity::CouldNotTell(_)) {
        info = ProcessInfo::default();
    }
    Gathered {
        info,
        identity,
        errors,
    }
}

/// Whether the pidfd at descriptor `fd` still names process `pid` (read
/// through `proc_root/self/fdinfo`).
pub fn pidfd_names(proc_root: &Path, fd: i32, pid: i32) -> bool {
    let fdinfo = proc_root.join("self/fdinfo").join(fd.to_string());
    matches!(pidfd_pid(&fdinfo), Ok(Some(found)) if found == pid)
}

/// The `Pid:` of a pidfd's fdinfo file (`-1` once the process is gone).
fn pidfd_pid(fdinfo: &PathBuf) -> std::io::Result<Option<i32>> {
    let text = std::fs::read_to_string(fdinfo)?;
    Ok(text
        .lines()
        .find_map(|line| line.strip_prefix("Pid:"))
        .and_then(|value| value.trim().parse().ok()))
}

fn read_limited(dir: &OwnedFd, name: &str, limit: u64) -> std::io::Result<(Vec<u8>, bool)> {
    let fd = rustix::fs::openat(dir, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    let mut raw = Vec::new();
    File::from(fd).take(limit + 1).read_to_end(&mut raw)?;
    let truncated = raw.len() as u64 > limit;
    raw.truncate(limit as usize);
    Ok((raw, truncated))
}

fn split_cmdline(raw: &[u8]) -> Vec<Vec<u8>> {
    let raw = raw.strip_suffix(b"\0").unwrap_or(raw);
    if raw.is_empty() {
        return Vec::new();
    }
    raw.split(|&b| b == 0).map(<[u8]>::to_vec).collect()
}

fn trim_newline(mut raw: Vec<u8>) -> Vec<u8> {
    while raw.last() == Some(&b'\n') {
        raw.pop();
    }
    raw
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn status_and_auxv_parsing() {
        let status = b"Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t100\t100\t100\t100\n";
        assert_eq!(status_ids(status, "Uid:"), Some([1000, 0, 0, 0]));
        assert_eq!(status_ids(status, "Gid:"), Some([100; 4]));
        assert_eq!(status_ids(b"Uid:\t1\t2\n", "Uid:"), None);
        let caps = b"CapInh:\t0000000000002000\nCapPrm:\t0000000000002000\nCapAmb:\t0\n";
        assert_eq!(status_caps(caps, "CapPrm:"), Some(0x2000));
        assert_eq!(status_caps(caps, "CapAmb:"), Some(0));
        assert_eq!(status_caps(caps, "CapEff:"), None);
        assert_eq!(status_caps(b"CapPrm:\tzz\n", "CapPrm:"), None);
        let words = |pairs: &[(usize, usize)]| -> Vec<u8> {
            pairs
                .iter()
                .flat_map(|(k, v)| [k.to_ne_bytes(), v.to_ne_bytes()].concat())
                .collect()
        };
        assert_eq!(
            auxv_value(&words(&[(6, 4096), (23, 1), (0, 0)]), 23),
            Some(1)
        );
        assert_eq!(auxv_value(&words(&[(6, 4096), (0, 0), (23, 1)]), 23), None);
        assert_eq!(auxv_value(&words(&[(23, 0)]), 23), Some(0));
    }

    #[test]
    fn cmdline_splitting() {
        assert_eq!(
            split_cmdline(b"a\0b c\0\0d\0"),
            vec![b"a".to_vec(), b"b c".to_vec(), b"".to_vec(), b"d".to_vec()]
        );
        assert_eq!(split_cmdline(b""), Vec::<Vec<u8>>::new());
        assert_eq!(split_cmdline(b"solo"), vec![b"solo".to_vec()]);
    }

    /// A live child process and a pidfd for it; the pidfd is created the
    /// way the kernel gives one (`pidfd_open`), through rustix.
    #[test]
    fn a_live_process_is_verified_by_its_pidfd() {
        let mut child = Command::new("/bin/sleep")
            .args(["30", "1"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        // spawn() may return before the new program's arguments are in
        // place (its close-on-exec pipe closes early in the exec).
        let pid = child.id() as i32;
        let waiting = std::time::Instant::now();
        while std::fs::read(format!("/proc/{pid}/cmdline")).map_or(true, |c| c.is_empty()) {
            assert!(
                waiting.elapsed() < std::time::Duration::from_secs(10),
                "sleep never started"
            );
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let pidfd = rustix::process::pidfd_open(
            rustix::process::Pid::from_raw(pid).unwrap(),
            rustix::process::PidfdFlags::empty(),
        )
        .unwrap();
        let fd_number = std::os::fd::AsRawFd::as_raw_fd(&pidfd);
        let gathered = gather(Path::new("/proc"), pid, Some(fd_number));
        assert_eq!(gathered.identity, Identity::VerifiedByPidfd);
        assert!(gathered.errors.is_empty(), "{:?}", gathered.errors);
        let cmdline = gathered.info.cmdline.unwrap();
        assert_eq!(
            cmdline,
            vec![b"/bin/sleep".to_vec(), b"30".to_vec(), b"1".to_vec()]
        );
        assert!(gathered.info.exe.unwrap().ends_with(b"sleep"));
        assert_eq!(gathered.info.comm.unwrap(), b"sleep");
        let own = (
            rustix::process::getuid().as_raw(),
            rustix::process::getgid().as_raw(),
        );
        assert_eq!(gathered.info.uids, Some([own.0; 4]));
        assert_eq!(gathered.info.gids, Some([own.1; 4]));
        assert_eq!(gathered.info.at_secure, Some(false));
        let own_cgroup = std::fs::read(format!("/proc/{pid}/cgroup")).unwrap();
        assert_eq!(gathered.info.cgroup.unwrap(), trim_newline(own_cgroup));

        // The process is gone and reaped: its pidfd now names no process,
        // so whatever has its PID is not described.
        child.kill().unwrap();
        child.wait().unwrap();
        let gathered = gather(Path::new("/proc"), pid, Some(fd_number));
        assert!(
            matches!(gathered.identity, Identity::CouldNotTell(_)),
            "{:?}",
            gathered.identity
        );
        assert_eq!(gathered.info, ProcessInfo::default());
    }

    #[test]
    fn another_process_pidfd_is_not_trusted() {
        // fd 0..2 of the test are not pidfds; a pidfd of ourselves names
        // another PID than the one asked about.
        let own = rustix::process::pidfd_open(
            rustix::process::getpid(),
            rustix::process::PidfdFlags::empty(),
        )
        .unwrap();
        let fd_number = std::os::fd::AsRawFd::as_raw_fd(&own);
        let parent = rustix::process::getppid().unwrap().as_raw_nonzero().get();
        let gathered = gather(Path::new("/proc"), parent, Some(fd_number));
        match gathered.identity {
            Identity::CouldNotTell(reason) => assert!(reason.contains("names process"), "{reason}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(gathered.info, ProcessInfo::default());

        let gathered = gather(Path::new("/proc"), parent, None);
        assert!(matches!(gathered.identity, Identity::Unverified(_)));
        assert!(gathered.info.cmdline.is_some());
    }
}
