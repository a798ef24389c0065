//! Signal numbers, `si_code` values and what they mean, as Linux defines
//! them (`<asm-generic/signal.h>`, `<asm-generic/siginfo.h>`; the numbers
//! of x86, ARM, RISC-V and most other architectures).

/// `SIGSEGV` for 11; `None` for a number without a name here.
pub fn name(number: i32) -> Option<&'static str> {
    Some(match number {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        10 => "SIGUSR1",
        11 => "SIGSEGV",
        12 => "SIGUSR2",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        16 => "SIGSTKFLT",
        17 => "SIGCHLD",
        18 => "SIGCONT",
        19 => "SIGSTOP",
        20 => "SIGTSTP",
        21 => "SIGTTIN",
        22 => "SIGTTOU",
        23 => "SIGURG",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        26 => "SIGVTALRM",
        27 => "SIGPROF",
        28 => "SIGWINCH",
        29 => "SIGIO",
        30 => "SIGPWR",
        31 => "SIGSYS",
        _ => return None,
    })
}

/// `SIGSEGV`, or `signal N`.
pub fn display_name(number: i32) -> String {
    name(number).map_or_else(|| format!("signal {number}"), str::to_string)
}

/// Whether the kernel puts a fault address in `si_addr` for this signal
/// when it raises it (a positive `si_code`).
pub fn has_fault_address(number: i32) -> bool {
    matches!(number, 4 | 5 | 7 | 8 | 11)
}

/// The name and meaning of `code` for signal `number`.
pub fn code(number: i32, code: i32) -> Option<(&'static str, &'static str)> {
    // Codes any signal can have (sent by a process or the kernel).
    let generic = match code {
        0 => Some(("SI_USER", "sent by kill")),
        0x80 => Some(("SI_KERNEL", "sent by the kernel")),
        -1 => Some(("SI_QUEUE", "sent by sigqueue")),
        -2 => Some(("SI_TIMER", "a POSIX timer expired")),
        -3 => Some(("SI_MESGQ", "a POSIX message queue changed state")),
        -4 => Some(("SI_ASYNCIO", "asynchronous I/O completed")),
        -5 => Some(("SI_SIGIO", "queued SIGIO")),
        -6 => Some(("SI_TKILL", "sent by tkill or tgkill (raise, abort)")),
        _ => None,
    };
    if code <= 0 || code == 0x80 {
        return generic;
    }
    let specific = match (number, code) {
        (11, 1) => ("SEGV_MAPERR", "address not mapped to object"),
        (11, 2) => ("SEGV_ACCERR", "invalid permissions for mapped object"),
        (11, 3) => ("SEGV_BNDERR", "failed address bound checks"),
        (11, 4) => ("SEGV_PKUERR", "access denied by memory protection keys"),
        (11, 5) => ("SEGV_ACCADI", "ADI not enabled for mapped object"),
        (11, 6) => ("SEGV_ADIDERR", "disrupting MCD error"),
        (11, 7) => ("SEGV_ADIPERR", "precise MCD exception"),
        (11, 8) => ("SEGV_MTEAERR", "asynchronous MTE error"),
        (11, 9) => ("SEGV_MTESERR", "synchronous MTE exception"),
        (11, 10) => ("SEGV_CPERR", "control protection fault"),
        (7, 1) => ("BUS_ADRALN", "invalid address alignment"),
        (7, 2) => ("BUS_ADRERR", "nonexistent physical address"),
        (7, 3) => ("BUS_OBJERR", "object-specific hardware error"),
        (7, 4) => (
            "BUS_MCEERR_AR",
            "hardware memory error consumed on a machine check",
        ),
        (7, 5) => ("BUS_MCEERR_AO", "hardware memory error detected in process"),
        (4, 1) => ("ILL_ILLOPC", "illegal opcode"),
        (4, 2) => ("ILL_ILLOPN", "illegal operand"),
        (4, 3) => ("ILL_ILLADR", "illegal addressing mode"),
        (4, 4) => ("ILL_ILLTRP", "illegal trap"),
        (4, 5) => ("ILL_PRVOPC", "privileged opcode"),
        (4, 6) => ("ILL_PRVREG", "privileged register"),
        (4, 7) => ("ILL_COPROC", "coprocessor error"),
        (4, 8) => ("ILL_BADSTK", "internal stack error"),
        (8, 1) => ("FPE_INTDIV", "integer divide by zero"),
        (8, 2) => ("FPE_INTOVF", "integer overflow"),
        (8, 3) => ("FPE_FLTDIV", "floating-point divide by zero"),
        (8, 4) => ("FPE_FLTOVF", "floating-point overflow"),
        (8, 5) => ("FPE_FLTUND", "floating-point underflow"),
        (8, 6) => ("FPE_FLTRES", "floating-point inexact result"),
        (8, 7) => ("FPE_FLTINV", "floating-point invalid operation"),
        (8, 8) => ("FPE_FLTSUB", "subscript out of range"),
        (5, 1) => ("TRAP_BRKPT", "process breakpoint"),
        (5, 2) => ("TRAP_TRACE", "process trace trap"),
        (5, 3) => ("TRAP_BRANCH", "process taken branch trap"),
        (5, 4) => ("TRAP_HWBKPT", "hardware breakpoint or watchpoint"),
        (31, 1) => ("SYS_SECCOMP", "seccomp filter denied a system call"),
        _ => return generic,
    };
    Some(specific)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_codes_and_addresses() {
        assert_eq!(display_name(11), "SIGSEGV");
        assert_eq!(display_name(64), "signal 64");
        assert_eq!(code(11, 1).unwrap().0, "SEGV_MAPERR");
        assert_eq!(code(6, -6).unwrap().0, "SI_TKILL");
        assert_eq!(code(7, 0x80).unwrap().0, "SI_KERNEL");
        assert_eq!(code(11, 99), None);
        assert!(has_fault_address(11) && !has_fault_address(6));
    }
}
