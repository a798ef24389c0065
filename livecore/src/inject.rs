//! Making one stopped thread of the target run a system call of ours
//! (x86_64): the `clone()` that makes the copy-on-write copy, and the
//! `wait4()` that reaps it; pre-copy's `userfaultfd()` and the `close()`
//! of the target's number of it.
//!
//! The thread is stopped; its registers are set so that it executes a
//! `syscall` instruction of its own code (a `syscall; ret` sequence found in
//! its executable mappings, glibc has several), it is resumed up to the
//! system call's exit (`PTRACE_SYSCALL`), and its registers, signal mask
//! and the stack bytes we used are put back. Its signals are blocked
//! meanwhile (`PTRACE_SETSIGMASK`), so none is taken in between.
//!
//! **The safety net.** Between the moment its registers are changed and the
//! moment they are put back, the dumper may die (SIGKILL), and the kernel
//! then lets the thread run on its own. So before its registers are
//! changed, an `rt_sigreturn` frame is written on its stack (below the red
//! zone, memory the ABI leaves free) holding its original registers (a
//! system call it was interrupted in rewound to be restarted, as the
//! kernel would), FPU/XSAVE state and signal mask, and its stack pointer is
//! pointed at that frame, whose return address is a `mov $15, %rax;
//! syscall` sequence (the signal trampoline glibc and musl have). Left
//! alone, the thread runs the system call, returns (`ret`) into the
//! trampoline, and `rt_sigreturn` gives it back all its state: it goes on
//! as if nothing had happened. The frame's `uc_stack` is left invalid on
//! purpose: the kernel then keeps the thread's alternate signal stack as it
//! is (`restore_altstack` ignores all but -EFAULT).
//!
//! For `clone()`, the copy starts on a stack of its own (`clone`'s
//! `newsp`) holding a second frame, which makes it call `exit_group(0)`:
//! should it ever run without us, it ends at once, without running any of
//! the target's code. With us, it never runs: it is attached by the kernel
//! at birth and killed with us (`PTRACE_O_EXITKILL`) once we have seen it.

use crate::freeze::{Event, Tracer};
use crate::procfs::Mapping;
use crate::report::{ErrorKind, LiveError, Result};
use crate::restart::resumable;
use crate::sys::{self, Pid};
use std::time::{Duration, Instant};

/// `syscall; ret`.
const SYSCALL_RET: &[u8] = &[0x0f, 0x05, 0xc3];
/// `mov $15, %rax; syscall` and `mov $15, %eax; syscall` (`rt_sigreturn`).
const SIGRETURN_RAX: &[u8] = &[0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05];
const SIGRETURN_EAX: &[u8] = &[0xb8, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05];

const SYS_CLOSE: u64 = 3;
const SYS_CLONE: u64 = 56;
const SYS_USERFAULTFD: u64 = 323;
const SYS_WAIT4: u64 = 61;
const SYS_EXIT_GROUP: u64 = 231;
const SYS_CLOSE_RANGE: u64 = 436;
const CLONE_PTRACE: u64 = 0x0000_2000;

/// Where in the target's code the two sequences are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gadgets {
    /// A `syscall` instruction followed by `ret`.
    pub syscall_ret: u64,
    /// The `rt_sigreturn` trampoline.
    pub sigreturn: u64,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Looks for the two sequences in the executable mappings of `pid`: the C
/// library and the dynamic loader first.
pub fn find_gadgets(pid: Pid, mappings: &[Mapping]) -> Option<Gadgets> {
    let mut candidates: Vec<&Mapping> = mappings
        .iter()
        .filter(|m| m.exec && m.read && m.len() <= 64 << 20)
        .collect();
    let rank = |m: &Mapping| {
        let name = m.path.rsplit('/').next().unwrap_or("");
        if name.starts_with("libc.so") || name.starts_with("libc-") || name.starts_with("ld-") {
            0
        } else if m.is_file() {
            1
        } else {
            2
        }
    };
    candidates.sort_by_key(|m| rank(m));
    let (mut syscall_ret, mut sigreturn) = (None, None);
    for mapping in candidates {
        let mut code = vec![0u8; mapping.len() as usize];
        let n = sys::read_memory(pid, mapping.start, &mut code).unwrap_or(0);
        code.truncate(n);
        if syscall_ret.is_none() {
            syscall_ret = find(&code, SYSCALL_RET).map(|at| mapping.start + at as u64);
        }
        if sigreturn.is_none() {
            sigreturn = find(&code, SIGRETURN_RAX)
                .or_else(|| find(&code, SIGRETURN_EAX))
                .map(|at| mapping.start + at as u64);
        }
        if let (Some(syscall_ret), Some(sigreturn)) = (syscall_ret, sigreturn) {
            return Some(Gadgets {
                syscall_ret,
                sigreturn,
            });
        }
    }
    None
}

/// Whether the two sequences are still where they were found (the target
/// may have run `execve` since).
pub fn still_there(pid: Pid, gadgets: &Gadgets) -> bool {
    let check = |addr: u64, options: &[&[u8]]| {
        let mut buf = [0u8; 9];
        let n = sys::read_memory(pid, addr, &mut buf).unwrap_or(0);
        options
            .iter()
            .any(|o| n >= o.len() && &buf[..o.len()] == *o)
    };
    check(gadgets.syscall_ret, &[SYSCALL_RET])
        && check(gadgets.sigreturn, &[SIGRETURN_RAX, SIGRETURN_EAX])
}

/// A thread's state before we touch it, to give back.
#[derive(Debug, Clone)]
pub struct Saved {
    pub regs: libc::user_regs_struct,
    pub sigmask: u64,
    /// Its XSAVE buffer (from `PTRACE_GETREGSET`), for the safety net.
    pub xstate: Option<Vec<u8>>,
    pub fpregs: Option<Vec<u8>>,
    /// It was stopped in an endless wait our interrupt made fail with
    /// EINTR: it resumes by running the wait again (`restart`).
    pub run_again: bool,
}

impl Saved {
    /// The registers it resumes with, from a ptrace stop
    /// (`for_sigreturn`: from the safety net's frame).
    fn resume_regs(&self, for_sigreturn: bool) -> libc::user_regs_struct {
        if self.run_again {
            crate::restart::run_again(&self.regs)
        } else {
            resumable(&self.regs, for_sigreturn)
        }
    }
}

/// The system call to make.
#[derive(Debug, Clone, Copy)]
pub enum Call {
    /// `clone(CLONE_PTRACE, newsp)` with exit signal 0: the copy.
    Clone,
    /// `wait4(child, NULL, __WALL | WNOHANG, NULL)`.
    Wait4(Pid),
    /// `userfaultfd(flags)`: a descriptor bound to the target's address
    /// space (pre-copy).
    Userfaultfd(u64),
    /// `close(fd)`: the target's number of that descriptor, once the
    /// dumper holds its own.
    Close(i32),
}

/// What the system call returned.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Its return value (a negative errno on failure).
    pub result: i64,
    /// Where the scratch area was on the stack, and its original bytes: a
    /// copy made by `clone()` was born with the frames in it, and the
    /// caller puts these back there.
    pub scratch_start: u64,
    pub scratch_original: Vec<u8>,
}

// struct rt_sigframe (x86_64): pretcode, ucontext, siginfo.
const FRAME_SIZE: u64 = 440;
const UC_FLAGS: usize = 8;
const UC_STACK_FLAGS: usize = 32;
const MCONTEXT: usize = 48;
const UC_SIGMASK: usize = 304;
const UC_FP_XSTATE: u64 = 1;
const UC_SIGCONTEXT_SS: u64 = 2;
const UC_STRICT_RESTORE_SS: u64 = 4;
/// `ss_flags` no kernel accepts: `rt_sigreturn` then leaves the
/// alternate signal stack alone.
const SS_FLAGS_INVALID: i32 = 3;
const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;
/// Below the stack pointer, the System V ABI's red zone is in use.
const RED_ZONE: u64 = 128;

fn put_u64(buf: &mut [u8], at: usize, value: u64) {
    buf[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

/// The sigcontext's words for `regs` (r8..r15, rdi, rsi, rbp, rbx, rdx,
/// rax, rcx, rsp, rip, eflags, then cs/gs/fs/ss packed).
fn put_sigcontext(frame: &mut [u8], regs: &libc::user_regs_struct, fpstate: u64) {
    let words = [
        regs.r8,
        regs.r9,
        regs.r10,
        regs.r11,
        regs.r12,
        regs.r13,
        regs.r14,
        regs.r15,
        regs.rdi,
        regs.rsi,
        regs.rbp,
        regs.rbx,
        regs.rdx,
        regs.rax,
        regs.rcx,
        regs.rsp,
        regs.rip,
        regs.eflags,
    ];
    for (i, word) in words.iter().enumerate() {
        put_u64(frame, MCONTEXT + i * 8, *word);
    }
    let segments = (regs.cs & 0xffff)
        | (regs.gs & 0xffff) << 16
        | (regs.fs & 0xffff) << 32
        | (regs.ss & 0xffff) << 48;
    put_u64(frame, MCONTEXT + 144, segments);
    put_u64(frame, MCONTEXT + 184, fpstate);
}

/// An `rt_sigframe` returning to `regs` with `sigmask` blocked.
fn sigframe(
    gadgets: &Gadgets,
    regs: &libc::user_regs_struct,
    sigmask: u64,
    fpstate: u64,
) -> Vec<u8> {
    let mut frame = vec![0u8; FRAME_SIZE as usize];
    put_u64(&mut frame, 0, gadgets.sigreturn);
    let mut flags = UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS;
    if fpstate != 0 {
        flags |= UC_FP_XSTATE;
    }
    put_u64(&mut frame, UC_FLAGS, flags);
    frame[UC_STACK_FLAGS..UC_STACK_FLAGS + 4].copy_from_slice(&SS_FLAGS_INVALID.to_le_bytes());
    put_sigcontext(&mut frame, regs, fpstate);
    put_u64(&mut frame, UC_SIGMASK, sigmask);
    frame
}

/// The FPU state for the frame: the XSAVE buffer with its closing magic
/// (the kernel checks both magics), or the legacy FXSAVE area alone (the
/// kernel then restores it and leaves the extended state at its initial
/// values) when the XSAVE buffer does not carry them.
fn fpstate_image(saved: &Saved) -> Option<Vec<u8>> {
    if let Some(xstate) = &saved.xstate {
        let magic = xstate
            .get(464..468)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        let size = xstate
            .get(484..488)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
        if let (Some(FP_XSTATE_MAGIC1), Some(size)) = (magic, size) {
            if size <= xstate.len() && size >= 576 {
                let mut image = xstate[..size].to_vec();
                image.extend_from_slice(&FP_XSTATE_MAGIC2.to_le_bytes());
                return Some(image);
            }
        }
    }
    let mut image = saved.fpregs.clone()?;
    image.resize(512, 0);
    // No software-reserved magic: FXSAVE only.
    image[464..512].fill(0);
    Some(image)
}

/// Where the scratch area goes below the thread's stack pointer.
struct Scratch {
    low: u64,
    /// The thread's frame (its stack pointer while injected).
    restore_frame: u64,
    #[cfg_attr(not(test), allow(dead_code))]
    fpstate: u64,
    /// The copy's frame (its stack pointer when born).
    exit_frame: Option<u64>,
    bytes: Vec<u8>,
}

fn scratch(saved: &Saved, gadgets: &Gadgets, with_exit_frame: bool) -> Option<Scratch> {
    let fp = fpstate_image(saved)?;
    let top = (saved.regs.rsp.checked_sub(RED_ZONE)?) & !63;
    let fpstate = (top.checked_sub(fp.len() as u64)?) & !63;
    let restore_frame = (fpstate.checked_sub(FRAME_SIZE)?) & !15;
    let exit_frame = if with_exit_frame {
        Some((restore_frame.checked_sub(FRAME_SIZE)?) & !15)
    } else {
        None
    };
    let low = exit_frame.unwrap_or(restore_frame);
    let mut bytes = vec![0u8; (top - low) as usize];
    let at = |addr: u64| (addr - low) as usize;
    let frame = sigframe(gadgets, &saved.resume_regs(true), saved.sigmask, fpstate);
    bytes[at(restore_frame)..at(restore_frame) + frame.len()].copy_from_slice(&frame);
    bytes[at(fpstate)..at(fpstate) + fp.len()].copy_from_slice(&fp);
    if let Some(exit) = exit_frame {
        // exit_group(0), every signal blocked, no FPU state.
        let mut regs = saved.regs;
        regs.rip = gadgets.syscall_ret;
        regs.rax = SYS_EXIT_GROUP;
        regs.rdi = 0;
        regs.rsp = exit;
        let frame = sigframe(gadgets, &regs, !0, 0);
        bytes[at(exit)..at(exit) + frame.len()].copy_from_slice(&frame);
    }
    Some(Scratch {
        low,
        restore_frame,
        fpstate,
        exit_frame,
        bytes,
    })
}

/// Whether `saved`'s thread has room for the scratch area in the writable
/// mapping its stack pointer is in.
pub fn fits(saved: &Saved, gadgets: &Gadgets, mappings: &[Mapping]) -> bool {
    let Some(area) = scratch(saved, gadgets, true) else {
        return false;
    };
    let sp = saved.regs.rsp;
    mappings.iter().any(|m| {
        m.start < sp && sp <= m.end && m.write && m.read && !m.shared && area.low >= m.start
    })
}

/// How long one step of an injection may take (a system-call entry, the
/// clone, its exit): generous, the machine may be loaded.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

fn internal(what: String) -> LiveError {
    LiveError::new(ErrorKind::Internal, what)
}

/// Resumes `tid` to its next system-call stop (or ptrace event) and
/// returns it; job-control and interrupt stops on the way are passed.
fn next_stop(tracer: &mut Tracer, pid: Pid, tid: Pid) -> Result<Event> {
    sys::resume_to_syscall(tid, 0)
        .map_err(|e| internal(format!("resuming thread {tid} to its system call: {e}")))?;
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        match tracer.wait(tid, deadline) {
            None => {
                return Err(internal(format!(
                    "thread {tid} did not reach its system call within {} s",
                    STEP_TIMEOUT.as_secs()
                )))
            }
            Some(Event::Exited) => return Err(crate::freeze::exited_error(pid)),
            Some(Event::GroupStop(_) | Event::Interrupted) => {
                sys::resume_to_syscall(tid, 0)
                    .map_err(|e| internal(format!("resuming thread {tid}: {e}")))?;
            }
            Some(Event::Signal(signal)) => {
                return Err(internal(format!(
                    "thread {tid} took signal {signal} in the injected system call"
                )))
            }
            Some(event) => return Ok(event),
        }
    }
}

/// What an injection tells its caller as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The thread is set up (safety net in place), the call not run yet.
    SetUp,
    /// `clone()` made this process (seen at its ptrace event).
    Child(Pid),
    /// The call returned; the thread's state is not given back yet.
    Returned,
}

/// Runs `call` in the stopped thread `tid` of `pid` and gives the thread
/// back its state (see the module documentation), telling `progress` how
/// it goes.
pub fn run(
    tracer: &mut Tracer,
    pid: Pid,
    tid: Pid,
    saved: &Saved,
    gadgets: &Gadgets,
    call: Call,
    progress: &mut dyn FnMut(Progress),
) -> Result<Outcome> {
    let area = scratch(saved, gadgets, matches!(call, Call::Clone))
        .ok_or_else(|| internal(format!("thread {tid} has no room on its stack")))?;
    let mut original = vec![0u8; area.bytes.len()];
    match sys::read_memory(tid, area.low, &mut original) {
        Ok(n) if n == original.len() => {}
        Ok(_) | Err(_) => return Err(internal(format!("reading the stack of thread {tid}"))),
    }
    match sys::write_memory(tid, area.low, &area.bytes) {
        Ok(n) if n == area.bytes.len() => {}
        _ => {
            let _ = sys::write_memory(tid, area.low, &original);
            return Err(internal(format!("writing the stack of thread {tid}")));
        }
    }
    let mut regs = saved.regs;
    regs.rip = gadgets.syscall_ret;
    regs.orig_rax = u64::MAX;
    regs.rsp = area.restore_frame;
    match call {
        Call::Clone => {
            regs.rax = SYS_CLONE;
            regs.rdi = CLONE_PTRACE;
            regs.rsi = area.exit_frame.unwrap_or(0);
            regs.rdx = 0;
            regs.r10 = 0;
            regs.r8 = 0;
        }
        Call::Wait4(child) => {
            regs.rax = SYS_WAIT4;
            regs.rdi = child as u64;
            regs.rsi = 0;
            regs.rdx = (libc::__WALL | libc::WNOHANG) as u32 as u64;
            regs.r10 = 0;
        }
        Call::Userfaultfd(flags) => {
            regs.rax = SYS_USERFAULTFD;
            regs.rdi = flags;
        }
        Call::Close(fd) => {
            regs.rax = SYS_CLOSE;
            regs.rdi = fd as u32 as u64;
        }
    }
    let give_back = || {
        let mut ok = sys::set_regs(tid, &saved.resume_regs(false)).is_ok();
        ok &= sys::set_sigmask(tid, saved.sigmask).is_ok();
        ok &= sys::write_memory(tid, area.low, &original).is_ok_and(|n| n == original.len());
        ok
    };
    if let Err(e) = sys::set_sigmask(tid, !0).and_then(|()| sys::set_regs(tid, &regs)) {
        give_back();
        return Err(internal(format!("setting up thread {tid}: {e}")));
    }
    progress(Progress::SetUp);
    let result = (|| -> Result<i64> {
        let entry = next_stop(tracer, pid, tid)?;
        if entry != Event::Syscall {
            return Err(internal(format!(
                "thread {tid} stopped at {entry:?} instead of the system call"
            )));
        }
        let mut exit = next_stop(tracer, pid, tid)?;
        if let Event::Ptrace(_) = exit {
            // The clone event: the copy exists; on to the system call's exit.
            if let Ok(child) = sys::get_event_msg(tid) {
                progress(Progress::Child(child as Pid));
            }
            exit = next_stop(tracer, pid, tid)?;
        }
        if exit != Event::Syscall {
            return Err(internal(format!(
                "thread {tid} stopped at {exit:?} instead of the system call's exit"
            )));
        }
        let after =
            sys::get_regs(tid).map_err(|e| internal(format!("reading thread {tid}: {e}")))?;
        Ok(after.rax as i64)
    })();
    match result {
        Ok(value) => {
            progress(Progress::Returned);
            if !give_back() {
                return Err(internal(format!("giving thread {tid} its state back")));
            }
            Ok(Outcome {
                result: value,
                scratch_start: area.low,
                scratch_original: original,
            })
        }
        Err(e) => {
            // Stopped somewhere in between: give it everything back. If it
            // is not stopped, the safety net does it when it runs.
            give_back();
            Err(e)
        }
    }
}

/// Makes the stopped copy close every descriptor it inherited
/// (`close_range(0, ~0, 0)`). The copy is ours alone and never resumed
/// past this system call.
pub fn close_descriptors(tracer: &mut Tracer, copy: Pid, gadgets: &Gadgets) -> Result<()> {
    let mut regs =
        sys::get_regs(copy).map_err(|e| internal(format!("reading the copy {copy}: {e}")))?;
    regs.rip = gadgets.syscall_ret;
    regs.orig_rax = u64::MAX;
    regs.rax = SYS_CLOSE_RANGE;
    regs.rdi = 0;
    regs.rsi = u32::MAX as u64;
    regs.rdx = 0;
    sys::set_regs(copy, &regs).map_err(|e| internal(format!("setting up the copy {copy}: {e}")))?;
    let entry = next_stop(tracer, copy, copy)?;
    let exit = next_stop(tracer, copy, copy)?;
    if (entry, exit) != (Event::Syscall, Event::Syscall) {
        return Err(internal(format!(
            "the copy {copy} stopped at {entry:?}/{exit:?} closing its descriptors"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frames_fit_below_the_red_zone() {
        let mut regs = crate::sys::zeroed_regs();
        regs.rsp = 0x7fff_0000_1238;
        let mut xstate = vec![0u8; 1024];
        xstate[464..468].copy_from_slice(&FP_XSTATE_MAGIC1.to_le_bytes());
        xstate[484..488].copy_from_slice(&1000u32.to_le_bytes());
        let saved = Saved {
            regs,
            sigmask: 0,
            xstate: Some(xstate),
            fpregs: None,
            run_again: false,
        };
        let gadgets = Gadgets {
            syscall_ret: 0x10,
            sigreturn: 0x20,
        };
        let area = scratch(&saved, &gadgets, true).unwrap();
        let top = area.low + area.bytes.len() as u64;
        assert!(top <= regs.rsp - RED_ZONE);
        assert_eq!(area.fpstate % 64, 0);
        let magic2_at = (area.fpstate - area.low) as usize + 1000;
        assert_eq!(
            &area.bytes[magic2_at..magic2_at + 4],
            &FP_XSTATE_MAGIC2.to_le_bytes()
        );
        let frame = (area.restore_frame - area.low) as usize;
        assert_eq!(&area.bytes[frame..frame + 8], &0x20u64.to_le_bytes());
        // The frame's fpstate pointer and rsp.
        let fp = u64::from_le_bytes(
            area.bytes[frame + MCONTEXT + 184..frame + MCONTEXT + 192]
                .try_into()
                .unwrap(),
        );
        assert_eq!(fp, area.fpstate);
        let sp = u64::from_le_bytes(
            area.bytes[frame + MCONTEXT + 120..frame + MCONTEXT + 128]
                .try_into()
                .unwrap(),
        );
        assert_eq!(sp, regs.rsp);
        assert!(area.exit_frame.unwrap() < area.restore_frame);
    }
}
