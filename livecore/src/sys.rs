//! The system calls a live dump makes, each wrapped once so that the rest of
//! the crate is safe code: ptrace(2) requests, waiting for tracees, reading
//! and writing another process's memory, signal masks, and the few calls of
//! the dumping child's set-up. Every `unsafe` block of the crate is here,
//! each with the reason it is sound.

use std::ffi::{c_int, c_long, c_void};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// A thread or process id.
pub type Pid = i32;

/// `PTRACE_EVENT_STOP`: a stop of a `PTRACE_SEIZE`d thread (interrupt,
/// group-stop, or the first stop of an auto-attached thread).
pub const PTRACE_EVENT_STOP: c_int = 128;
/// `PTRACE_EVENT_CLONE`: a traced thread is creating a thread or process
/// whose exit signal is not SIGCHLD.
pub const PTRACE_EVENT_CLONE: c_int = 3;
/// `NT_X86_XSTATE`: the regset of the XSAVE extended state.
pub const NT_X86_XSTATE: u32 = 0x202;

fn check(ret: c_long) -> io::Result<c_long> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// One ptrace request whose `addr` and `data` are plain values or point to
/// memory the caller owns for the call.
///
/// # Safety
/// For requests that read or write through `data` (or `addr`), the pointer
/// must be valid for what that request reads or writes.
unsafe fn ptrace(
    request: u32,
    pid: Pid,
    addr: *mut c_void,
    data: *mut c_void,
) -> io::Result<c_long> {
    // SAFETY: forwarded contract: the pointers are valid for `request`.
    check(unsafe { libc::ptrace(request, pid, addr, data) })
}

/// `PTRACE_SEIZE` with `options`: traces the thread without stopping it and
/// without any signal.
pub fn seize(tid: Pid, options: c_int) -> io::Result<()> {
    // SAFETY: SEIZE takes its options by value in `data`; `addr` is 0.
    unsafe {
        ptrace(
            libc::PTRACE_SEIZE,
            tid,
            std::ptr::null_mut(),
            options as usize as *mut c_void,
        )
    }
    .map(drop)
}

/// `PTRACE_INTERRUPT`: asks a seized thread to stop (a `PTRACE_EVENT_STOP`).
pub fn interrupt(tid: Pid) -> io::Result<()> {
    // SAFETY: no pointer is used.
    unsafe {
        ptrace(
            libc::PTRACE_INTERRUPT,
            tid,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    }
    .map(drop)
}

/// `PTRACE_DETACH`, delivering `signal` (0: none) as the thread resumes.
pub fn detach(tid: Pid, signal: c_int) -> io::Result<()> {
    // SAFETY: the signal is passed by value in `data`.
    unsafe {
        ptrace(
            libc::PTRACE_DETACH,
            tid,
            std::ptr::null_mut(),
            signal as usize as *mut c_void,
        )
    }
    .map(drop)
}

/// `PTRACE_SYSCALL`: resumes a stopped thread until its next system-call
/// entry or exit.
pub fn resume_to_syscall(tid: Pid, signal: c_int) -> io::Result<()> {
    // SAFETY: the signal is passed by value in `data`.
    unsafe {
        ptrace(
            libc::PTRACE_SYSCALL,
            tid,
            std::ptr::null_mut(),
            signal as usize as *mut c_void,
        )
    }
    .map(drop)
}

/// `PTRACE_SETOPTIONS`.
pub fn set_options(tid: Pid, options: c_int) -> io::Result<()> {
    // SAFETY: the options are passed by value in `data`.
    unsafe {
        ptrace(
            libc::PTRACE_SETOPTIONS,
            tid,
            std::ptr::null_mut(),
            options as usize as *mut c_void,
        )
    }
    .map(drop)
}

/// The general registers of a stopped thread.
pub fn get_regs(tid: Pid) -> io::Result<libc::user_regs_struct> {
    // SAFETY: all zeroes is a valid user_regs_struct (plain integers).
    let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
    // SAFETY: GETREGS writes one user_regs_struct to `data`.
    unsafe {
        ptrace(
            libc::PTRACE_GETREGS,
            tid,
            std::ptr::null_mut(),
            (&mut regs as *mut libc::user_regs_struct).cast(),
        )
    }?;
    Ok(regs)
}

/// Sets the general registers of a stopped thread.
pub fn set_regs(tid: Pid, regs: &libc::user_regs_struct) -> io::Result<()> {
    // SAFETY: SETREGS reads one user_regs_struct from `data`.
    unsafe {
        ptrace(
            libc::PTRACE_SETREGS,
            tid,
            std::ptr::null_mut(),
            (regs as *const libc::user_regs_struct).cast_mut().cast(),
        )
    }
    .map(drop)
}

/// The FXSAVE-format floating-point registers of a stopped thread (512
/// bytes, the core's `NT_FPREGSET`).
pub fn get_fpregs(tid: Pid) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; std::mem::size_of::<libc::user_fpregs_struct>()];
    // SAFETY: GETFPREGS writes one user_fpregs_struct to `data`; the buffer
    // has its size (no alignment needed beyond bytes for a kernel copy).
    unsafe {
        ptrace(
            libc::PTRACE_GETFPREGS,
            tid,
            std::ptr::null_mut(),
            buf.as_mut_ptr().cast(),
        )
    }?;
    Ok(buf)
}

/// One register set of a stopped thread (`PTRACE_GETREGSET`), at most
/// `max` bytes; the kernel says how many it wrote.
pub fn get_regset(tid: Pid, note_type: u32, max: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; max];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: GETREGSET writes at most iov_len bytes to iov_base (our
    // buffer) and updates iov_len; `addr` carries the note type by value.
    unsafe {
        ptrace(
            libc::PTRACE_GETREGSET,
            tid,
            note_type as usize as *mut c_void,
            (&mut iov as *mut libc::iovec).cast(),
        )
    }?;
    buf.truncate(iov.iov_len.min(max));
    Ok(buf)
}

/// The blocked-signal mask of a stopped thread.
pub fn get_sigmask(tid: Pid) -> io::Result<u64> {
    let mut mask = 0u64;
    // SAFETY: GETSIGMASK writes `addr` (8) bytes to `data`.
    unsafe {
        ptrace(
            libc::PTRACE_GETSIGMASK,
            tid,
            8 as *mut c_void,
            (&mut mask as *mut u64).cast(),
        )
    }?;
    Ok(mask)
}

/// Sets the blocked-signal mask of a stopped thread.
pub fn set_sigmask(tid: Pid, mask: u64) -> io::Result<()> {
    let mut mask = mask;
    // SAFETY: SETSIGMASK reads `addr` (8) bytes from `data`.
    unsafe {
        ptrace(
            libc::PTRACE_SETSIGMASK,
            tid,
            8 as *mut c_void,
            (&mut mask as *mut u64).cast(),
        )
    }
    .map(drop)
}

/// The siginfo of the signal a thread is stopped for (128 bytes).
pub fn get_siginfo(tid: Pid) -> io::Result<[u8; 128]> {
    let mut info = [0u8; 128];
    // SAFETY: GETSIGINFO writes one siginfo_t (128 bytes) to `data`.
    unsafe {
        ptrace(
            libc::PTRACE_GETSIGINFO,
            tid,
            std::ptr::null_mut(),
            info.as_mut_ptr().cast(),
        )
    }?;
    Ok(info)
}

/// The message of the last ptrace event (the new pid of a
/// `PTRACE_EVENT_CLONE`).
pub fn get_event_msg(tid: Pid) -> io::Result<u64> {
    let mut msg: libc::c_ulong = 0;
    // SAFETY: GETEVENTMSG writes one unsigned long to `data`.
    unsafe {
        ptrace(
            libc::PTRACE_GETEVENTMSG,
            tid,
            std::ptr::null_mut(),
            (&mut msg as *mut libc::c_ulong).cast(),
        )
    }?;
    Ok(msg)
}

/// `waitpid(pid, flags)`; `None` when `WNOHANG` found nothing.
pub fn waitpid(pid: Pid, flags: c_int) -> io::Result<Option<(Pid, c_int)>> {
    let mut status: c_int = 0;
    // SAFETY: `status` is a valid out-pointer.
    let rc = unsafe { libc::waitpid(pid, &mut status, flags) };
    match rc {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(None),
        pid => Ok(Some((pid, status))),
    }
}

/// Reads `buf.len()` bytes of `pid`'s memory at `addr`
/// (`process_vm_readv`); returns how many were read (fewer when a page is
/// missing: the transfer stops there).
pub fn read_memory(pid: Pid, addr: u64, buf: &mut [u8]) -> io::Result<usize> {
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as usize as *mut c_void,
        iov_len: buf.len(),
    };
    // SAFETY: the local iovec covers our own buffer exactly; the remote one
    // is only an address in the other process, checked by the kernel.
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Writes `data` into `pid`'s memory at `addr` (`process_vm_writev`);
/// returns how many bytes were written.
pub fn write_memory(pid: Pid, addr: u64, data: &[u8]) -> io::Result<usize> {
    let local = libc::iovec {
        iov_base: data.as_ptr().cast_mut().cast(),
        iov_len: data.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as usize as *mut c_void,
        iov_len: data.len(),
    };
    // SAFETY: the local iovec covers `data` exactly and is only read; the
    // remote one is an address in the other process, checked by the kernel.
    let n = unsafe { libc::process_vm_writev(pid, &local, 1, &remote, 1, 0) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Blocks SIGCHLD in the calling thread, so that [`wait_for_sigchld`] can
/// take it; returns the previous mask.
pub fn block_sigchld() -> io::Result<libc::sigset_t> {
    // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise it.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to our own sets.
    let rc = unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old)
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(old)
}

/// Waits up to `timeout` for a SIGCHLD (blocked by [`block_sigchld`]):
/// something happened to a child or a tracee. Returns whether one came.
pub fn wait_for_sigchld(timeout: Duration) -> bool {
    // SAFETY: as in block_sigchld.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: valid pointers to our own set and timespec; the siginfo
    // out-pointer may be NULL.
    let rc = unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::sigtimedwait(&set, std::ptr::null_mut(), &ts)
    };
    rc == libc::SIGCHLD
}

/// `pidfd_open(pid, 0)`: a descriptor that names the process `pid` names
/// now, for as long as it is open (a pid reused later names another).
pub fn pidfd_open(pid: Pid) -> io::Result<OwnedFd> {
    // SAFETY: no memory is involved; the descriptor returned is new and
    // ours.
    let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: `fd` is a descriptor just returned to us and owned by no one
    // else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `pidfd_send_signal(pidfd, 0)`: `Ok` while the pidfd's process exists
/// (`ESRCH` once it has exited, even if its pid names another now).
pub fn pidfd_alive(pidfd: RawFd) -> io::Result<()> {
    // SAFETY: a null siginfo is allowed; no other memory is involved.
    check(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd,
            0,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })
    .map(|_| ())
}

/// Sends `signal` to the process `pid`.
pub fn kill(pid: Pid, signal: c_int) -> io::Result<()> {
    // SAFETY: no memory is involved.
    if unsafe { libc::kill(pid, signal) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The caller's real, effective and saved user and group ids.
pub fn credentials() -> ([u32; 3], [u32; 3]) {
    let (mut r, mut e, mut s) = (0, 0, 0);
    let (mut gr, mut ge, mut gs) = (0, 0, 0);
    // SAFETY: valid out-pointers; these calls cannot fail for the caller.
    unsafe {
        libc::getresuid(&mut r, &mut e, &mut s);
        libc::getresgid(&mut gr, &mut ge, &mut gs);
    }
    ([r, e, s], [gr, ge, gs])
}

/// The caller's process id.
pub fn getpid() -> Pid {
    // SAFETY: no memory is involved.
    unsafe { libc::getpid() }
}

/// The machine's host name.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname truncates.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: `fds` has room for the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 just created both descriptors; each is owned once.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// What [`fork`] returned.
pub enum Forked {
    Parent(Pid),
    Child,
}

/// `fork()`. The child of a multi-threaded caller must use only what
/// survives a fork there: the crate's dumping child allocates (glibc's
/// malloc is reset for the child by fork itself) and makes system calls,
/// and never takes a lock a vanished thread could hold (no stdio, no
/// environment).
pub fn fork() -> io::Result<Forked> {
    // SAFETY: see the function's documentation for what the child does.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid)),
    }
}

/// In the dumping child: dies with SIGKILL when the thread that forked it
/// ends, and checks that the parent is still `parent` (it may have died
/// before the request took effect).
pub fn die_with_parent(parent: Pid) -> bool {
    // SAFETY: prctl/getppid have no memory effects.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
        libc::getppid() == parent
    }
}

/// Ends the calling process at once, without running atexit handlers or
/// flushing stdio (which belong to the caller's state in a forked child).
pub fn exit_now(status: c_int) -> ! {
    // SAFETY: _exit never returns and touches no memory of ours.
    unsafe { libc::_exit(status) }
}

/// Closes every descriptor of the calling process from `first` up, except
/// those in `keep` (sorted or not).
pub fn close_descriptors_except(first: RawFd, keep: &[RawFd]) {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|&fd| fd >= first).collect();
    keep.sort_unstable();
    keep.dedup();
    let mut from = first;
    for &fd in keep.iter().chain(std::iter::once(&RawFd::MAX)) {
        if fd > from {
            let to = if fd == RawFd::MAX {
                u32::MAX
            } else {
                (fd - 1) as u32
            };
            // SAFETY: closing descriptors this (child) process owns and does
            // not use; the kept ones are outside the range.
            unsafe { libc::syscall(libc::SYS_close_range, from as u32, to, 0) };
        }
        from = fd.saturating_add(1);
    }
}

/// Writes all of `data` to the descriptor `fd` (raw, no buffering: usable
/// in a forked child).
pub fn write_all_fd(fd: RawFd, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        // SAFETY: `data` is valid for its length.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        data = &data[n as usize..];
    }
    Ok(())
}

/// Reads into `buf` from the descriptor `fd` (raw: usable in a forked
/// child); returns how many bytes were read (0 at end of file).
pub fn read_fd(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is valid for its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// `poll()` on one descriptor for input, up to `timeout` (`None`: no
/// bound); returns whether it is readable (or closed).
pub fn poll_readable(fd: RawFd, timeout: Option<Duration>) -> io::Result<bool> {
    let mut pollfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.map_or(-1, |t| t.as_millis().min(c_int::MAX as u128) as c_int);
    loop {
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut pollfd, 1, ms) };
        if rc >= 0 {
            return Ok(rc > 0);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// The regular-file-or-not, and size, of the open descriptor `fd`.
pub fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    // SAFETY: all zeroes is a valid stat (plain data).
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

/// The CPU's description of one XSAVE state component: (size, offset)
/// from CPUID leaf 0xD, sub-leaf `component`.
pub fn xsave_component(component: u32) -> (u32, u32) {
    // SAFETY: CPUID is available on every x86_64 CPU and has no side
    // effects (the intrinsic is `unsafe` on older toolchains).
    #[allow(unused_unsafe)]
    let leaf = unsafe { std::arch::x86_64::__cpuid_count(0xd, component) };
    (leaf.eax, leaf.ebx)
}

/// A `user_regs_struct` of zeroes.
#[cfg(test)]
pub fn zeroed_regs() -> libc::user_regs_struct {
    // SAFETY: user_regs_struct is plain integers; all zeroes is valid.
    unsafe { std::mem::zeroed() }
}

/// `CLOCK_MONOTONIC` in nanoseconds (the clock a target's own timestamps
/// are compared with).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Gives the calling thread (and the threads it creates from now on) the
/// lowest scheduling priority (nice 19; Linux's nice is per thread).
pub fn lowest_priority() {
    // SAFETY: setpriority only changes the calling thread's nice value
    // (who = 0 is the calling thread on Linux).
    unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) };
}

/// `MADV_POPULATE_WRITE` (Linux 5.14): fault every page of a range in,
/// writable, in one call.
const MADV_POPULATE_WRITE: c_int = 23;

/// Private anonymous memory of the dumper's own (stop-and-copy's buffer),
/// mapped with `mmap`, asked to be huge pages (`MADV_HUGEPAGE`) *before*
/// any page is touched, then faulted in at once (`MADV_POPULATE_WRITE`;
/// one store per page where the kernel is older): so that copying into it
/// during the stop costs no page fault, and the copy's stores hit few TLB
/// entries. Unmapped when dropped.
pub struct AnonRegion {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the region is plain memory owned by this value alone (no other
// alias to it exists), so it may be moved to and used from another thread.
unsafe impl Send for AnonRegion {}
// SAFETY: shared references only read it (`Deref`), as for a `Vec<u8>`.
unsafe impl Sync for AnonRegion {}

impl AnonRegion {
    /// `len` bytes mapped, not touched (no page, no page table).
    pub fn reserve(len: usize) -> io::Result<AnonRegion> {
        // SAFETY: a new private anonymous mapping; the kernel chooses the
        // address; nothing else refers to it.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(AnonRegion {
            ptr: ptr.cast(),
            len,
        })
    }

    pub fn new(len: usize) -> io::Result<AnonRegion> {
        let region = AnonRegion::reserve(len)?;
        let ptr: *mut libc::c_void = region.ptr.cast();
        // SAFETY: the range is exactly the mapping just made, owned by
        // `region`; both advices change how it is backed, never its content
        // (zeroes).
        let populated = unsafe {
            libc::madvise(ptr, len, libc::MADV_HUGEPAGE);
            libc::madvise(ptr, len, MADV_POPULATE_WRITE)
        };
        if populated != 0 {
            let error = io::Error::last_os_error();
            if error.raw_os_error() != Some(libc::EINVAL) {
                // ENOMEM and the like: the memory is not there.
                return Err(error);
            }
            // An older kernel: one store per page faults it in.
            let mut region = region;
            for page in region.chunks_mut(4096) {
                // SAFETY: a volatile store into our own mapping, so that the
                // compiler keeps it (the memory is known to be zero).
                unsafe { std::ptr::write_volatile(page.as_mut_ptr(), 0) };
            }
            return Ok(region);
        }
        Ok(region)
    }
}

impl std::ops::Deref for AnonRegion {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr` is a live mapping of `len` readable bytes owned by
        // `self` (unmapped only in `drop`).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl std::ops::DerefMut for AnonRegion {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and `&mut self` makes this the only
        // reference.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for AnonRegion {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, no reference to it outlives
        // `self`.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// The calling thread's nice value.
pub fn thread_nice() -> i32 {
    // SAFETY: getpriority has no memory effects (who = 0: the calling
    // thread on Linux). -1 is also a valid value: errno is not checked, a
    // failure (impossible for oneself) reads as -1.
    unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
}

/// Sets the calling thread's nice value (threads it creates from now on
/// inherit it); lowering it needs `CAP_SYS_NICE` or `RLIMIT_NICE`.
pub fn set_thread_nice(nice: i32) -> io::Result<()> {
    // SAFETY: setpriority has no memory effects (who = 0: the calling
    // thread).
    check(unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) } as c_long).map(drop)
}

/// Whether the scheduler groups this process with its session
/// (`kernel.sched_autogroup_enabled`, and no cpu cgroup of its own).
pub fn autogroups_in_effect() -> bool {
    let enabled = std::fs::read_to_string("/proc/sys/kernel/sched_autogroup_enabled")
        .is_ok_and(|v| v.trim() == "1");
    // A task in a cpu cgroup other than the root is scheduled by the
    // cgroup, not by its autogroup (v1 "cpu" line, or v2's with a
    // non-root path and the cpu controller; v2 is counted as grouped).
    let rooted = std::fs::read_to_string("/proc/self/cgroup").is_ok_and(|text| {
        text.lines().all(|line| {
            let mut fields = line.splitn(3, ':');
            let (_, controllers, path) = (fields.next(), fields.next(), fields.next());
            let cpu = controllers.is_some_and(|c| c.split(',').any(|c| c == "cpu"));
            let v2 = controllers == Some("");
            !(cpu || v2) || path == Some("/") || (v2 && !cpu_controller_on_v2())
        })
    });
    enabled && rooted
}

/// Whether cgroup v2's cpu controller is enabled at the root.
fn cpu_controller_on_v2() -> bool {
    ["/sys/fs/cgroup/cgroup.subtree_control", "/sys/fs/cgroup/unified/cgroup.subtree_control"]
        .iter()
        .any(|p| std::fs::read_to_string(p).is_ok_and(|t| t.split_whitespace().any(|c| c == "cpu")))
}

/// `setsid()`: a session (and autogroup) of the calling process's own.
pub fn new_session() -> io::Result<()> {
    // SAFETY: setsid has no memory effects.
    check(unsafe { libc::setsid() } as c_long).map(drop)
}

/// Sets the nice value of the calling process's autogroup.
pub fn set_autogroup_nice(nice: i32) -> io::Result<()> {
    std::fs::write("/proc/self/autogroup", nice.to_string())
}
