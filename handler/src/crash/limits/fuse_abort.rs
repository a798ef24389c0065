//! Letting a dump stalled on a FUSE file system go on: root aborts the
//! connection (`/sys/fs/fuse/connections/N/abort`), every request it holds
//! fails, the dump's page fault ends (the page is left out of the core) and
//! the dump goes on; without it the dumping task waits for good, holding
//! the kernel's `core_pipe_limit` slot whatever the handler does.
//!
//! Only what stalls this dump is aborted: the connections of the FUSE file
//! systems (`fuse`, `fuseblk`, `fuse.*` in the process's own mountinfo)
//! whose files the crashed process maps (`/proc/PID/maps`), and of those
//! only the ones with requests waiting. `/proc/PID/maps` and `mountinfo`
//! are read by a child under a deadline (a reader can wait on the
//! process's memory map lock), the pidfd (`%F`) is checked to still name
//! the process afterwards, and the fuse control file system is checked to
//! be one (`statfs`) before anything is written to it.

use crate::store::record::{FuseConnection, Remedy};
use std::io::{BufRead, Read};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

/// Where the kernel's fuse control file system is mounted (systemd mounts
/// it at boot).
pub const CONNECTIONS: &str = "/sys/fs/fuse/connections";
/// `FUSE_CTL_SUPER_MAGIC` (linux/magic.h).
const FUSE_CTL_SUPER_MAGIC: i64 = 0x6573_5543;
/// How long the look at the process's mappings may take.
const LOOK_DEADLINE: Duration = Duration::from_secs(2);
/// Lines of `maps` (and of `mountinfo`) read: past the kernel's default
/// `vm.max_map_count` (65530) four times over.
const MAX_LINES: usize = 1 << 18;

/// A FUSE mount of a device (`major`, `minor`): its mount point and type.
pub type FuseMount = ((u32, u32), String, String);

/// The devices (`major`, `minor`) of the files mapped in a `maps` text.
pub fn mapped_devices(maps: impl BufRead) -> Vec<(u32, u32)> {
    let mut devices = Vec::new();
    for line in maps.split(b'\n').take(MAX_LINES).map_while(Result::ok) {
        // start-end perms offset major:minor inode path
        let mut fields = line.split(|&b| b == b' ').filter(|field| !field.is_empty());
        let (Some(_), Some(_), Some(_), Some(device), Some(inode)) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            continue;
        };
        if inode == b"0" {
            continue;
        }
        let Some(device) = std::str::from_utf8(device).ok().and_then(|d| {
            let (major, minor) = d.split_once(':')?;
            Some((
                u32::from_str_radix(major, 16).ok()?,
                u32::from_str_radix(minor, 16).ok()?,
            ))
        }) else {
            continue;
        };
        if !devices.contains(&device) {
            devices.push(device);
        }
    }
    devices
}

/// The FUSE mounts of a `mountinfo` text among `devices`: (device, mount
/// point, type), the first mount of each.
pub fn fuse_mounts(mountinfo: impl BufRead, devices: &[(u32, u32)]) -> Vec<FuseMount> {
    let mut found: Vec<FuseMount> = Vec::new();
    for line in mountinfo.split(b'\n').take(MAX_LINES).map_while(Result::ok) {
        let line = String::from_utf8_lossy(&line);
        // id parent major:minor root mount-point options [optional...] - type source super
        let Some((before, after)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = before.split(' ').collect();
        let (Some(device), Some(mount_point)) = (fields.get(2), fields.get(4)) else {
            continue;
        };
        let Some(device) = device.split_once(':').and_then(|(major, minor)| {
            Some((major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?))
        }) else {
            continue;
        };
        let fs_type = after.split(' ').next().unwrap_or_default();
        let fuse = fs_type == "fuse" || fs_type == "fuseblk" || fs_type.starts_with("fuse.");
        if fuse && devices.contains(&device) && !found.iter().any(|(d, ..)| *d == device) {
            found.push((
                device,
                crate::base::sanitize::for_log(&unescape(mount_point)),
                crate::base::sanitize::for_log(fs_type.as_bytes()),
            ));
        }
    }
    found
}

/// A mountinfo field with the kernel's octal escapes (`\040` for a
/// space, and tab, newline and backslash) undone.
fn unescape(field: &str) -> Vec<u8> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let octal = bytes
            .get(at + 1..at + 4)
            .filter(|d| bytes[at] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(d) => {
                let value = d.iter().fold(0u32, |v, b| v * 8 + u32::from(b - b'0'));
                out.push(value as u8);
                at += 4;
            }
            None => {
                out.push(bytes[at]);
                at += 1;
            }
        }
    }
    out
}

/// The kernel's device number as the fuse control file system names a
/// connection (`MKDEV`: the major above 20 bits of minor).
pub fn connection_number((major, minor): (u32, u32)) -> u64 {
    (u64::from(major) << 20) | u64::from(minor)
}

/// The FUSE file systems process `pid` maps files of, read by a child
/// (root) under [`LOOK_DEADLINE`].
fn mapped_fuse(pid: i32) -> Result<Vec<FuseMount>, String> {
    lttng_coredump_engine::identity::run_json(LOOK_DEADLINE, None, move || {
        let open = |name: &str| {
            std::fs::File::open(format!("/proc/{pid}/{name}"))
                .map(|f| std::io::BufReader::new(f.take(64 << 20)))
        };
        let devices = match open("maps") {
            Ok(maps) => mapped_devices(maps),
            Err(err) => return Err(format!("cannot read /proc/{pid}/maps: {err}")),
        };
        match open("mountinfo") {
            Ok(mountinfo) => Ok(fuse_mounts(mountinfo, &devices)),
            Err(err) => Err(format!("cannot read /proc/{pid}/mountinfo: {err}")),
        }
    })
    .map_err(|err| format!("looking at the mappings of process {pid}: {err}"))?
}

/// The remedy for a dump of process `pid` (pidfd `pidfd`, the kernel's
/// `%F`) stalled after `bytes` bytes: finds the FUSE file systems it
/// maps files of and, when `abort` (the configuration's
/// `abort_stalled_fuse`), aborts those with requests waiting.
pub fn remedy(pid: Option<i32>, pidfd: Option<i32>, abort: bool) -> Remedy {
    let mut remedy = Remedy::default();
    let Some(pid) = pid else {
        remedy
            .said
            .push("the kernel gave no PID: its mappings cannot be looked at".into());
        return remedy;
    };
    let mounts = match mapped_fuse(pid) {
        Ok(mounts) => mounts,
        Err(err) => {
            remedy.said.push(err);
            return remedy;
        }
    };
    // The process is held by its dump, so its PID cannot have been reused;
    // the pidfd says so for certain.
    if let Some(fd) = pidfd {
        if !crate::crash::procinfo::pidfd_names(Path::new("/proc"), fd, pid) {
            remedy.said.push(format!(
                "the pidfd no longer names process {pid}: its mappings are not acted on"
            ));
            return remedy;
        }
    }
    if mounts.is_empty() {
        remedy.said.push(format!(
            "process {pid} maps no file of a FUSE file system: nothing to abort"
        ));
        return remedy;
    }
    let control = control_file_system();
    for (device, mount_point, fs_type) in mounts {
        let connection = connection_number(device);
        let mut found = FuseConnection {
            connection,
            device: format!("{}:{}", device.0, device.1),
            mount_point,
            fs_type,
            waiting: None,
            aborted: false,
            error: None,
        };
        match &control {
            Err(err) => found.error = Some(err.clone()),
            Ok(dir) => match act_on(dir, connection, abort) {
                Ok((waiting, aborted)) => {
                    found.waiting = Some(waiting);
                    found.aborted = aborted;
                }
                Err(err) => found.error = Some(err),
            },
        }
        remedy.said.push(describe(&found, abort));
        remedy.acted |= found.aborted;
        remedy.fuse.push(found);
    }
    remedy
}

/// One sentence on what became of a connection.
fn describe(found: &FuseConnection, abort: bool) -> String {
    let what = format!(
        "FUSE connection {} ({} on {})",
        found.connection, found.fs_type, found.mount_point
    );
    match (&found.error, found.waiting, found.aborted) {
        (Some(err), ..) => format!("{what} not aborted: {err}"),
        (None, _, true) => format!(
            "aborted {what}, which held {} request(s) and stalled the dump: its files' pages are \
             left out of the core",
            found.waiting.unwrap_or(0)
        ),
        (None, Some(0), false) => format!("{what} has no request waiting: left alone"),
        (None, _, false) if !abort => format!(
            "{what} holds requests; not aborted (abort_stalled_fuse = false): the dump waits \
             until the file system answers"
        ),
        (None, _, false) => format!("{what} not aborted"),
    }
}

/// The fuse control file system, opened and checked to be one.
fn control_file_system() -> Result<std::os::fd::OwnedFd, String> {
    use rustix::fs::{Mode, OFlags};
    let dir = rustix::fs::open(
        CONNECTIONS,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|err| format!("cannot open {CONNECTIONS}: {err}"))?;
    let stat =
        rustix::fs::fstatfs(&dir).map_err(|err| format!("cannot statfs {CONNECTIONS}: {err}"))?;
    if stat.f_type as i64 != FUSE_CTL_SUPER_MAGIC {
        return Err(format!(
            "the fuse control file system is not mounted on {CONNECTIONS} (mount -t fusectl \
             fusectl {CONNECTIONS})"
        ));
    }
    Ok(dir)
}

/// Reads connection `connection`'s waiting requests and, when `abort` and
/// some wait, aborts it. Returns (waiting, aborted).
fn act_on(
    control: &std::os::fd::OwnedFd,
    connection: u64,
    abort: bool,
) -> Result<(u64, bool), String> {
    use rustix::fs::{Mode, OFlags};
    let name = connection.to_string();
    let dir = rustix::fs::openat(
        control,
        name.as_str(),
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|err| format!("no {CONNECTIONS}/{name}: {err}"))?;
    let waiting = rustix::fs::openat(
        &dir,
        "waiting",
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|err| format!("cannot open {CONNECTIONS}/{name}/waiting: {err}"))?;
    let mut text = String::new();
    std::fs::File::from(waiting)
        .take(64)
        .read_to_string(&mut text)
        .map_err(|err| format!("cannot read {CONNECTIONS}/{name}/waiting: {err}"))?;
    let waiting: u64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{CONNECTIONS}/{name}/waiting says {:?}", text.trim()))?;
    if waiting == 0 || !abort {
        return Ok((waiting, false));
    }
    let file = rustix::fs::openat(
        &dir,
        "abort",
        OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|err| format!("cannot open {CONNECTIONS}/{name}/abort: {err}"))?;
    rustix::io::write(file.as_fd(), b"1")
        .map_err(|err| format!("cannot write {CONNECTIONS}/{name}/abort: {err}"))?;
    Ok((waiting, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_devices_are_read_in_hexadecimal_and_anonymous_mappings_left_out() {
        let maps = "\
55e1c5509000-55e1c550a000 r--p 00000000 fe:00 5622555                    /usr/bin/x\n\
7f8b30b6c000-7f8b30b6d000 r--p 00000000 00:29 2                          /home/u/m 1/held\n\
7f8b30b6d000-7f8b30b6e000 rw-p 00000000 00:00 0 \n\
7ffd000000-7ffd001000 rw-p 00000000 00:00 0                          [stack]\n\
7f8b30b6e000-7f8b30b6f000 r--p 00001000 00:29 2                          /home/u/m 1/held\n\
garbage line\n";
        assert_eq!(mapped_devices(maps.as_bytes()), [(0xfe, 0), (0, 0x29)]);
    }

    #[test]
    fn only_fuse_mounts_of_mapped_devices_are_found() {
        let mountinfo = "\
45 23 0:40 / /sys/fs/fuse/connections rw,relatime - fusectl fusectl rw\n\
47 27 0:41 / /home/u/m\\0401 rw,nosuid,nodev,relatime - fuse hangfs rw,user_id=1010\n\
48 27 0:42 / /home/u/m2 rw,nosuid,nodev shared:5 - fuse.sshfs h:/ rw,user_id=1010\n\
49 27 0:41 / /home/u/bind rw - fuse hangfs rw\n\
50 27 254:0 / / rw - ext4 /dev/vda rw\n";
        let found = fuse_mounts(mountinfo.as_bytes(), &[(0, 41), (0, 42), (254, 0), (0, 40)]);
        assert_eq!(
            found,
            [
                ((0, 41), "/home/u/m 1".to_string(), "fuse".to_string()),
                ((0, 42), "/home/u/m2".to_string(), "fuse.sshfs".to_string()),
            ]
        );
        assert_eq!(connection_number((0, 41)), 41);
        assert_eq!(connection_number((8, 1)), (8 << 20) | 1);
    }

    #[test]
    fn a_process_with_no_fuse_mapping_gets_nothing_aborted() {
        // This test's own process maps no FUSE file.
        let remedy = remedy(Some(std::process::id() as i32), None, true);
        assert!(!remedy.acted, "{remedy:?}");
        assert!(remedy.fuse.is_empty());
        assert!(
            remedy.said.join(" ").contains("nothing to abort"),
            "{remedy:?}"
        );
    }
}
