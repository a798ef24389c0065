//! How a stopped thread goes on where it was (x86_64).
//!
//! A thread interrupted in a blocking system call is stopped with the
//! system call's `-ERESTART*` code in `rax`; on its way back, the kernel
//! rewinds it to run the call again. That is kept as it is, or done by
//! hand where the way back is not the kernel's usual one ([`resumable`]).
//!
//! A few blocking calls do not restart: woken for any signal, even a
//! ptrace interrupt with nothing to deliver, they fail with EINTR
//! (`epoll_wait`, `epoll_pwait`, `epoll_pwait2`, `rt_sigtimedwait`,
//! `semop`, `semtimedop`, `io_getevents`, `io_pgetevents`; the list of
//! man 7 signal, "Interruption of system calls and library functions by
//! stop signals": gdb's attach, `gcore` or SIGSTOP/SIGCONT do it too). When
//! such a call waits without a timeout and nothing else woke it (no signal
//! the thread would take is pending), the thread is rewound to make the
//! call again ([`interrupted_endless_wait`], [`run_again`]) as soon as it
//! is seen stopped, so that it waits again however it is let go (by us or
//! by the kernel when the dumper dies): the process does not see the EINTR
//! our interrupt caused. If a signal it would take comes while it is
//! stopped, it is given its EINTR back when we let it go (a signal that
//! comes when the dumper is dead finds it about to wait again: the race any
//! program has between a signal and its next wait). A call with a timeout
//! is left failing with EINTR, as after any stop: run again, it would wait
//! its whole timeout again.

use crate::procfs;
use crate::sys::Pid;

const SYS_RESTART_SYSCALL: u64 = 219;
const EINTR: i64 = 4;

/// The registers to resume with: as they were, except that a system call
/// interrupted with `-ERESTART*` is rewound to be run again (what the
/// kernel does on the way out of a signal stop with no handler to run),
/// so that they are right to resume with from any stop.
///
/// For the safety net's `rt_sigreturn` frame (`for_sigreturn`), a system
/// call that would have continued through `restart_syscall` (a relative
/// sleep or timeout, `-ERESTART_RESTARTBLOCK`) is run again from its
/// arguments instead: `rt_sigreturn` cancels the pending restart, which
/// would make it fail with EINTR; it waits its whole timeout again instead.
pub fn resumable(regs: &libc::user_regs_struct, for_sigreturn: bool) -> libc::user_regs_struct {
    let mut r = *regs;
    if (r.orig_rax as i64) >= 0 {
        match r.rax as i64 {
            // -ERESTARTSYS, -ERESTARTNOINTR, -ERESTARTNOHAND
            -514..=-512 => {
                r.rax = r.orig_rax;
                r.rip -= 2;
            }
            // -ERESTART_RESTARTBLOCK
            -516 => {
                r.rax = if for_sigreturn {
                    r.orig_rax
                } else {
                    SYS_RESTART_SYSCALL
                };
                r.rip -= 2;
            }
            _ => {}
        }
    }
    r.orig_rax = u64::MAX;
    r
}

/// Whether the thread was stopped in a wait without a timeout that failed
/// with EINTR (see the module documentation).
pub fn interrupted_endless_wait(r: &libc::user_regs_struct) -> bool {
    if r.rax as i64 != -EINTR {
        return false;
    }
    // Arguments: rdi, rsi, rdx, r10, r8.
    match r.orig_rax {
        // epoll_wait, epoll_pwait: int timeout (ms), -1 forever.
        232 | 281 => r.r10 as u32 as i32 == -1,
        // epoll_pwait2: const struct timespec *, NULL forever.
        441 => r.r10 == 0,
        // rt_sigtimedwait: const struct timespec *uts.
        128 => r.rdx == 0,
        // semop: no timeout; semtimedop: const struct timespec *.
        65 => true,
        220 => r.r10 == 0,
        // io_getevents, io_pgetevents: struct timespec *timeout.
        208 | 333 => r.r8 == 0,
        _ => false,
    }
}

/// Whether a signal the thread would take (pending, not blocked by it) is
/// there: then the EINTR is that signal's, and is kept.
pub fn deliverable_signal_pending(pid: Pid, tid: Pid, blocked: u64) -> bool {
    match procfs::task_status(pid, tid) {
        Ok(status) => (status.sig_pending | status.shared_pending) & !blocked != 0,
        // Cannot tell: keep what the kernel said.
        Err(_) => true,
    }
}

/// The registers that run the interrupted call again.
pub fn run_again(r: &libc::user_regs_struct) -> libc::user_regs_struct {
    let mut again = *r;
    again.rax = r.orig_rax;
    again.rip -= 2;
    again.orig_rax = u64::MAX;
    again
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupted_system_call_is_rewound_to_restart() {
        let mut regs = crate::sys::zeroed_regs();
        regs.orig_rax = 202;
        regs.rax = (-512i64) as u64;
        regs.rip = 0x1002;
        let r = resumable(&regs, false);
        assert_eq!((r.rax, r.rip, r.orig_rax), (202, 0x1000, u64::MAX));
        regs.rax = (-516i64) as u64;
        let r = resumable(&regs, false);
        assert_eq!((r.rax, r.rip), (SYS_RESTART_SYSCALL, 0x1000));
        let r = resumable(&regs, true);
        assert_eq!((r.rax, r.rip), (202, 0x1000));
        // Not in a system call: as it was.
        regs.orig_rax = u64::MAX;
        regs.rax = 7;
        let r = resumable(&regs, false);
        assert_eq!((r.rax, r.rip), (7, 0x1002));
    }

    #[test]
    fn only_endless_waits_failing_with_eintr_run_again() {
        let mut regs = crate::sys::zeroed_regs();
        regs.orig_rax = 232;
        regs.rax = (-4i64) as u64;
        regs.r10 = u32::MAX as u64;
        regs.rip = 0x2002;
        assert!(interrupted_endless_wait(&regs));
        let again = run_again(&regs);
        assert_eq!(
            (again.rax, again.rip, again.orig_rax),
            (232, 0x2000, u64::MAX)
        );
        regs.r10 = 1000;
        assert!(
            !interrupted_endless_wait(&regs),
            "a wait with a timeout keeps its EINTR"
        );
        regs.orig_rax = 128;
        regs.rdx = 0;
        assert!(interrupted_endless_wait(&regs));
        regs.rax = 0;
        assert!(!interrupted_endless_wait(&regs));
    }
}
