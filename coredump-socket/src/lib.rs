//! The kernel side of the coredump socket (Linux 6.16 `@PATH`, 6.17
//! `@@PATH`), as `include/uapi/linux/coredump.h`, `fs/coredump.c` and
//! `include/uapi/linux/pidfd.h` define it and as this machine's kernel was
//! seen to behave (see the handler's `serve` module): the request and
//! acknowledgement messages, the one-word answer (`coredump_mark`), the
//! peer's pidfd (`SO_PEERPIDFD`) and what `PIDFD_GET_INFO` says about the
//! crash. Debian 12's kernel headers predate all of these, so they are
//! declared here, with a test of their sizes and offsets.
//!
//! An FFI layer of its own (the handler forbids unsafe code): the raw
//! calls std and rustix do not wrap, `getsockopt(SO_PEERPIDFD)`, the
//! `PIDFD_GET_INFO` ioctl, and the service's `malloc_trim`.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

/// `coredump_req`/`coredump_ack` flags: the kernel writes the core into the
/// socket.
pub const COREDUMP_KERNEL: u64 = 1 << 0;
/// Userspace makes the core itself (from the held process); the kernel
/// writes nothing.
pub const COREDUMP_USERSPACE: u64 = 1 << 1;
/// No core at all: the kernel lets the process go at once.
pub const COREDUMP_REJECT: u64 = 1 << 2;
/// The kernel holds the process until the server closes the connection.
pub const COREDUMP_WAIT: u64 = 1 << 3;

/// The first published sizes; the kernel may send a larger request (later
/// fields, skipped) and accepts acknowledgements from this size up to the
/// request's `size_ack`.
pub const COREDUMP_REQ_SIZE_VER0: u32 = 16;
pub const COREDUMP_ACK_SIZE_VER0: u32 = 16;
/// A request larger than this is not from a kernel we understand.
const MAX_REQUEST_SIZE: u32 = 4096;

/// `struct coredump_req`: what the kernel sends first on a `@@` connection.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CoredumpReq {
    /// Size of the request the kernel sent (bytes past ours are skipped).
    pub size: u32,
    /// Largest acknowledgement the kernel reads.
    pub size_ack: u32,
    /// The `COREDUMP_*` flags the kernel supports.
    pub mask: u64,
}

/// `struct coredump_ack`: the server's answer.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CoredumpAck {
    pub size: u32,
    pub spare: u32,
    pub mask: u64,
}

/// `enum coredump_mark`: the kernel's one 32-bit word after an
/// acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// `COREDUMP_MARK_REQACK`: accepted.
    ReqAck,
    /// `COREDUMP_MARK_MINSIZE`: the acknowledgement was too small.
    MinSize,
    /// `COREDUMP_MARK_MAXSIZE`: it was larger than `size_ack`.
    MaxSize,
    /// `COREDUMP_MARK_UNSUPPORTED`: a flag the kernel did not offer.
    Unsupported,
    /// `COREDUMP_MARK_CONFLICTING`: not exactly one of KERNEL, USERSPACE, REJECT.
    Conflicting,
    Unknown(u32),
}

impl Mark {
    pub fn from_word(word: u32) -> Mark {
        match word {
            0 => Mark::ReqAck,
            1 => Mark::MinSize,
            2 => Mark::MaxSize,
            3 => Mark::Unsupported,
            4 => Mark::Conflicting,
            other => Mark::Unknown(other),
        }
    }
}

/// Reads the kernel's request: the size first (peeked), then the fields we
/// know; bytes of a larger, later request are read and dropped.
pub fn read_request(stream: &mut UnixStream) -> io::Result<CoredumpReq> {
    let mut size = [0u8; 4];
    let peeked = rustix::net::recv(
        stream.as_fd(),
        &mut size,
        rustix::net::RecvFlags::PEEK | rustix::net::RecvFlags::WAITALL,
    )?;
    if peeked.0 < 4 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the connection ended before a coredump request",
        ));
    }
    let size = u32::from_ne_bytes(size);
    if !(COREDUMP_REQ_SIZE_VER0..=MAX_REQUEST_SIZE).contains(&size) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a coredump request of {size} bytes (expected 16 to {MAX_REQUEST_SIZE})"),
        ));
    }
    let mut raw = vec![0u8; size as usize];
    stream.read_exact(&mut raw)?;
    Ok(CoredumpReq {
        size,
        size_ack: u32::from_ne_bytes(raw[4..8].try_into().expect("4 bytes")),
        mask: u64::from_ne_bytes(raw[8..16].try_into().expect("8 bytes")),
    })
}

/// Sends `mask` as the acknowledgement of `request` and returns the
/// kernel's mark. Refuses, without sending, a flag the kernel did not
/// offer or an acknowledgement the kernel cannot take.
pub fn acknowledge(stream: &mut UnixStream, request: &CoredumpReq, mask: u64) -> io::Result<Mark> {
    if mask & !request.mask != 0 {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "the kernel offers coredump flags {:#x}, not {:#x}",
                request.mask, mask
            ),
        ));
    }
    if request.size_ack < COREDUMP_ACK_SIZE_VER0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the kernel reads acknowledgements of {} bytes, less than the first published {COREDUMP_ACK_SIZE_VER0}",
                request.size_ack
            ),
        ));
    }
    let mut ack = [0u8; COREDUMP_ACK_SIZE_VER0 as usize];
    ack[0..4].copy_from_slice(&COREDUMP_ACK_SIZE_VER0.to_ne_bytes());
    ack[8..16].copy_from_slice(&mask.to_ne_bytes());
    stream.write_all(&ack)?;
    let mut mark = [0u8; 4];
    stream.read_exact(&mut mark)?;
    Ok(Mark::from_word(u32::from_ne_bytes(mark)))
}

/// `PIDFD_INFO_*` request and answer flags.
pub const PIDFD_INFO_PID: u64 = 1 << 0;
pub const PIDFD_INFO_CREDS: u64 = 1 << 1;
pub const PIDFD_INFO_EXIT: u64 = 1 << 3;
pub const PIDFD_INFO_COREDUMP: u64 = 1 << 4;
/// Linux 6.19: `coredump_signal` is filled in.
pub const PIDFD_INFO_COREDUMP_SIGNAL: u64 = 1 << 6;
/// `coredump_mask` bits.
pub const PIDFD_COREDUMPED: u32 = 1 << 0;
pub const PIDFD_COREDUMP_SKIP: u32 = 1 << 1;
pub const PIDFD_COREDUMP_USER: u32 = 1 << 2;
pub const PIDFD_COREDUMP_ROOT: u32 = 1 << 3;

/// `struct pidfd_info` as of Linux 6.19 (`PIDFD_INFO_SIZE_VER2`); an older
/// kernel fills the part it knows and says so in `mask`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PidfdInfo {
    pub mask: u64,
    pub cgroupid: u64,
    pub pid: u32,
    pub tgid: u32,
    pub ppid: u32,
    pub ruid: u32,
    pub rgid: u32,
    pub euid: u32,
    pub egid: u32,
    pub suid: u32,
    pub sgid: u32,
    pub fsuid: u32,
    pub fsgid: u32,
    pub exit_code: i32,
    pub coredump_mask: u32,
    pub coredump_signal: u32,
    pub supported_mask: u64,
}

/// `_IOWR(PIDFS_IOCTL_MAGIC, 11, struct pidfd_info)`: the size is part of
/// the request number, and tells the kernel how much we can take.
const PIDFD_GET_INFO: u64 =
    (3 << 30) | ((std::mem::size_of::<PidfdInfo>() as u64) << 16) | (0xFF << 8) | 11;
/// `SO_PEERPIDFD` (Linux 6.5; 77 on every architecture but mips, parisc
/// and sparc, which this project does not build for).
const SO_PEERPIDFD: libc::c_int = 77;

/// A pidfd of the process at the other end of `stream`, as of its
/// `connect()` (for the kernel's connection: the crashing process).
pub fn peer_pidfd(stream: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let mut fd: libc::c_int = -1;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `fd` and `len` are live locals of the sizes the kernel is
    // told; `stream` is an open descriptor for the duration of the call.
    let ret = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_PEERPIDFD,
            (&mut fd as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if ret != 0 {
        return Err(io::Error::last_os_error());
    }
    if fd < 0 || len as usize != std::mem::size_of::<libc::c_int>() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "SO_PEERPIDFD gave no descriptor",
        ));
    }
    // SAFETY: the kernel just installed `fd` in our table for us (with
    // O_CLOEXEC); nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// What the kernel says about the process behind `pidfd`; `request` is a
/// set of `PIDFD_INFO_*` flags (PID and credentials always come when the
/// process is alive). Check `mask` for what was filled in.
pub fn pidfd_info(pidfd: BorrowedFd<'_>, request: u64) -> io::Result<PidfdInfo> {
    let mut info = PidfdInfo {
        mask: request,
        ..PidfdInfo::default()
    };
    // SAFETY: the request number encodes `size_of::<PidfdInfo>()`, the size
    // of the live, writable `info` passed; the kernel writes at most that.
    let ret = unsafe {
        libc::ioctl(
            pidfd.as_raw_fd(),
            PIDFD_GET_INFO as _,
            &mut info as *mut PidfdInfo,
        )
    };
    if ret != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(info)
}

/// The crash as the peer's pidfd tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCrash {
    /// Thread-group id in the service's (the initial) PID namespace.
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
    /// `%d`: 1 when dumped as the user, 2 when as root (set-uid).
    pub dump_mode: u32,
    /// The signal, when the kernel tells it (Linux 6.19).
    pub signal: Option<i32>,
}

/// Why a connection is not a crash the kernel sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotACrash {
    /// The peer process is not dumping core: a client, not the kernel.
    NotDumping { pid: u32, uid: u32 },
    /// The kernel cannot tell (no pidfd support, or the ioctl failed).
    Unknown(String),
}

impl std::fmt::Display for NotACrash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotACrash::NotDumping { pid, uid } => write!(
                f,
                "the peer (process {pid}, uid {uid}) is not dumping core: a client, not the kernel"
            ),
            NotACrash::Unknown(reason) => f.write_str(reason),
        }
    }
}

/// Whether the peer of a connection is a process the kernel is dumping,
/// and what it is. The kernel marks the process (`PIDFD_COREDUMPED`)
/// before it connects; a program that merely connects is never marked,
/// whatever credentials it has.
pub fn crash_of(info: &PidfdInfo) -> Result<PeerCrash, NotACrash> {
    if info.mask & PIDFD_INFO_COREDUMP == 0 {
        return Err(NotACrash::Unknown(
            "the kernel gives no coredump information for the peer (PIDFD_INFO_COREDUMP)".into(),
        ));
    }
    if info.mask & PIDFD_INFO_PID == 0 || info.mask & PIDFD_INFO_CREDS == 0 {
        return Err(NotACrash::Unknown(
            "the peer has exited: its PID and credentials are gone".into(),
        ));
    }
    if info.coredump_mask & PIDFD_COREDUMPED == 0 {
        return Err(NotACrash::NotDumping {
            pid: info.tgid,
            uid: info.ruid,
        });
    }
    let dump_mode = if info.coredump_mask & PIDFD_COREDUMP_ROOT != 0 {
        2
    } else {
        1
    };
    Ok(PeerCrash {
        pid: info.tgid as i32,
        uid: info.ruid,
        gid: info.rgid,
        dump_mode,
        signal: (info.mask & PIDFD_INFO_COREDUMP_SIGNAL != 0 && info.coredump_signal != 0)
            .then_some(info.coredump_signal as i32),
    })
}

/// The signal that killed the process behind `pidfd`, once it has exited
/// (its wait status, from `PIDFD_INFO_EXIT`), waiting up to `timeout`.
pub fn exit_signal(pidfd: BorrowedFd<'_>, timeout: std::time::Duration) -> Option<i32> {
    let deadline = std::time::Instant::now() + timeout;
    // A pidfd polls readable once its process has exited; the exit status
    // is kept for it once the process is reaped, which its parent does in
    // its own time.
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let mut fds = [rustix::event::PollFd::new(
            &pidfd,
            rustix::event::PollFlags::IN,
        )];
        let wait = rustix::event::Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: left.subsec_nanos() as i64,
        };
        let ready = rustix::event::poll(&mut fds, Some(&wait)).unwrap_or(0) > 0;
        if let Ok(info) = pidfd_info(pidfd, PIDFD_INFO_EXIT) {
            if info.mask & PIDFD_INFO_EXIT != 0 {
                let signal = info.exit_code & 0x7f;
                return (signal != 0).then_some(signal);
            }
        }
        if left.is_zero() {
            return None;
        }
        if ready {
            std::thread::sleep(std::time::Duration::from_millis(2).min(left));
        }
    }
}

/// Makes the allocator give large blocks back as soon as they are freed:
/// blocks of 128 KiB and more are mapped on their own and unmapped when
/// freed, and an arena's free top is returned past 128 KiB (glibc's
/// defaults, made fixed: `mallopt(M_MMAP_THRESHOLD)` and
/// `mallopt(M_TRIM_THRESHOLD)`). glibc otherwise raises both thresholds
/// after the first large block is freed (up to 32 MiB), so that a
/// compressor's context (zstd's, a few MiB per core) is then taken from,
/// and kept in, the arena of each thread that compressed, which
/// [`release_free_memory`] cannot give back (it trims only the main
/// arena's top). Measured: two storms of 20 simultaneous crashes with zstd
/// left the service at 54 MiB (7.6 MiB at rest). The crash service calls
/// it once, at start. Returns whether glibc took both settings.
pub fn limit_retained_memory() -> bool {
    const THRESHOLD: libc::c_int = 128 * 1024;
    // SAFETY: mallopt only changes the allocator's tuning parameters; it
    // takes no pointer.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, THRESHOLD) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, THRESHOLD) == 1
    }
}

/// Gives the memory the allocator holds free back to the system
/// (glibc's `malloc_trim(0)`: every arena, not only the main one). The
/// crash service calls it once a crash is done: glibc keeps what a thread
/// freed in that thread's arena, so each of the service's threads that
/// compressed a core (zstd's context and buffers, a few MiB) would
/// otherwise keep that memory for good (76 MiB after a benchmark run).
/// Returns whether any memory was given back.
pub fn release_free_memory() -> bool {
    // SAFETY: malloc_trim only walks and trims the allocator's own arenas,
    // under their locks; it takes no pointer of ours.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// The first descriptor a service manager passes (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: i32 = 3;

/// The sockets a service manager passed this process, as systemd's socket
/// activation passes them (sd_listen_fds(3)): `LISTEN_PID` names this
/// process, `LISTEN_FDS` counts the descriptors from 3 up, and
/// `LISTEN_FDNAMES` names them (colon-separated; empty when unnamed). The
/// descriptors become this process's own (close-on-exec), and the three
/// variables are removed so that no child takes them for its own. None
/// when the variables are absent or name another process.
pub fn listen_fds() -> io::Result<Vec<(OwnedFd, String)>> {
    let pid = std::env::var("LISTEN_PID").ok();
    let count = std::env::var("LISTEN_FDS").ok();
    let names = std::env::var("LISTEN_FDNAMES").unwrap_or_default();
    for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(name);
    }
    let (Some(pid), Some(count)) = (pid, count) else {
        return Ok(Vec::new());
    };
    if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
        return Ok(Vec::new());
    }
    let count: i32 = count.trim().parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("LISTEN_FDS={count:?} is not a number"),
        )
    })?;
    if !(0..=1024).contains(&count) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("LISTEN_FDS={count} is out of range"),
        ));
    }
    let mut names = names.split(':').map(str::to_string);
    let mut fds = Vec::new();
    for fd in LISTEN_FDS_START..LISTEN_FDS_START + count {
        // SAFETY: fcntl(F_GETFD) only asks whether `fd` is open; it reads
        // and changes nothing.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("LISTEN_FDS={count}, but descriptor {fd} is not open"),
            ));
        }
        // SAFETY: `fd` is open (checked above) and was handed to this
        // process by its service manager for it to own (LISTEN_PID is this
        // process); nothing else in this process refers to it, and the
        // variables that named it were removed above, so it is taken once.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        rustix::io::fcntl_setfd(&owned, rustix::io::FdFlags::CLOEXEC)?;
        fds.push((owned, names.next().unwrap_or_default()));
    }
    Ok(fds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn structs_have_the_kernel_layout() {
        assert_eq!(size_of::<CoredumpReq>(), COREDUMP_REQ_SIZE_VER0 as usize);
        assert_eq!(size_of::<CoredumpAck>(), COREDUMP_ACK_SIZE_VER0 as usize);
        assert_eq!(offset_of!(CoredumpReq, size_ack), 4);
        assert_eq!(offset_of!(CoredumpReq, mask), 8);
        assert_eq!(offset_of!(CoredumpAck, spare), 4);
        assert_eq!(offset_of!(CoredumpAck, mask), 8);
        // PIDFD_INFO_SIZE_VER0 (64) ends after exit_code, VER1 (72) after
        // the coredump fields, VER2 (80) after supported_mask.
        assert_eq!(offset_of!(PidfdInfo, exit_code) + 4, 64);
        assert_eq!(offset_of!(PidfdInfo, coredump_mask), 64);
        assert_eq!(offset_of!(PidfdInfo, coredump_signal), 68);
        assert_eq!(size_of::<PidfdInfo>(), 80);
        assert_eq!(PIDFD_GET_INFO, 0xC050_FF0B);
    }

    /// A kernel stand-in on the other end of a socket pair.
    fn pair() -> (UnixStream, UnixStream) {
        UnixStream::pair().unwrap()
    }

    fn request_bytes(size: u32, size_ack: u32, mask: u64, extra: usize) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&size.to_ne_bytes());
        bytes.extend_from_slice(&size_ack.to_ne_bytes());
        bytes.extend_from_slice(&mask.to_ne_bytes());
        bytes.extend(std::iter::repeat_n(0xAB, extra));
        bytes
    }

    #[test]
    fn a_larger_request_is_read_whole_and_its_unknown_bytes_dropped() {
        let (mut ours, mut kernel) = pair();
        let mut sent = request_bytes(24, 16, 0xf, 8);
        sent.extend_from_slice(b"\x7fELF");
        kernel.write_all(&sent).unwrap();
        let request = read_request(&mut ours).unwrap();
        assert_eq!(
            request,
            CoredumpReq {
                size: 24,
                size_ack: 16,
                mask: 0xf
            }
        );
        let mut next = [0u8; 4];
        ours.read_exact(&mut next).unwrap();
        assert_eq!(&next, b"\x7fELF");
    }

    #[test]
    fn requests_of_impossible_sizes_are_refused() {
        for size in [0, 8, 15, MAX_REQUEST_SIZE + 1] {
            let (mut ours, mut kernel) = pair();
            kernel.write_all(&request_bytes(size, 16, 0xf, 0)).unwrap();
            assert!(read_request(&mut ours).is_err(), "size {size}");
        }
        let (mut ours, kernel) = pair();
        drop(kernel);
        assert!(read_request(&mut ours).is_err());
    }

    #[test]
    fn acknowledgements_offer_only_what_the_kernel_supports() {
        let (mut ours, mut kernel) = pair();
        let request = CoredumpReq {
            size: 16,
            size_ack: 24,
            mask: COREDUMP_KERNEL | COREDUMP_REJECT | COREDUMP_WAIT,
        };
        let answer = std::thread::spawn(move || {
            let mut ack = [0u8; 16];
            kernel.read_exact(&mut ack).unwrap();
            kernel.write_all(&0u32.to_ne_bytes()).unwrap();
            ack
        });
        let mark = acknowledge(&mut ours, &request, COREDUMP_KERNEL | COREDUMP_WAIT).unwrap();
        assert_eq!(mark, Mark::ReqAck);
        let ack = answer.join().unwrap();
        assert_eq!(u32::from_ne_bytes(ack[0..4].try_into().unwrap()), 16);
        assert_eq!(u32::from_ne_bytes(ack[4..8].try_into().unwrap()), 0);
        assert_eq!(
            u64::from_ne_bytes(ack[8..16].try_into().unwrap()),
            COREDUMP_KERNEL | COREDUMP_WAIT
        );

        // USERSPACE was not offered: nothing is sent.
        let err = acknowledge(&mut ours, &request, COREDUMP_USERSPACE).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Unsupported);
        let small = CoredumpReq {
            size_ack: 8,
            ..request
        };
        assert!(acknowledge(&mut ours, &small, COREDUMP_REJECT).is_err());
        assert_eq!(Mark::from_word(4), Mark::Conflicting);
        assert_eq!(Mark::from_word(9), Mark::Unknown(9));
    }

    #[test]
    fn a_connected_program_is_not_a_crash() {
        // Our own end of a socket pair: the peer is this test process,
        // alive and not dumping core.
        let (ours, _other) = pair();
        let pidfd = peer_pidfd(ours.as_fd()).unwrap();
        let info = pidfd_info(pidfd.as_fd(), PIDFD_INFO_COREDUMP).unwrap();
        assert_eq!(info.tgid, std::process::id());
        match crash_of(&info) {
            Err(NotACrash::NotDumping { pid, .. }) => assert_eq!(pid, std::process::id()),
            other => panic!("{other:?} for {info:?}"),
        }
    }
}
