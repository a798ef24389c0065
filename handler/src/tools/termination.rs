//! What a tool does when SIGTERM or SIGHUP comes while a program of its
//! own holds the terminal (the pager, the debugger): that program is ended
//! too, the terminal put back as it was before it started, what the tool
//! made for it removed (a decompressed core), and the tool then ends by
//! the same signal, as it would have without this. Without it, the tool
//! died at once and left its pager running on a terminal in raw mode.
//!
//! A thread waits for the signals (through signal-hook's self-pipe: no
//! handler code of ours runs in the signal's context) and runs the
//! clean-ups registered with [`on_termination`], newest first.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

type Cleanup = Box<dyn FnOnce() + Send>;

/// The clean-ups in force, with the id of the [`Registered`] that removes
/// each.
static CLEANUPS: Mutex<Vec<(u64, Cleanup)>> = Mutex::new(Vec::new());
static NEXT_ID: Mutex<u64> = Mutex::new(0);
static WATCH: Once = Once::new();
/// Set once a terminating signal came: the tool is ending by it.
static TERMINATING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// How long a program asked to end (SIGTERM) may take before SIGKILL.
pub const END_GRACE: Duration = Duration::from_secs(1);

/// A clean-up in force until this is dropped (or run).
pub struct Registered(u64);

impl Drop for Registered {
    fn drop(&mut self) {
        lock().retain(|(id, _)| *id != self.0);
    }
}

fn lock() -> std::sync::MutexGuard<'static, Vec<(u64, Cleanup)>> {
    CLEANUPS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `cleanup` if SIGTERM or SIGHUP comes before the returned value is
/// dropped; the process then ends by that signal. (Registered before the
/// program it ends is started: a signal that comes meanwhile still finds
/// it.)
pub fn on_termination(cleanup: impl FnOnce() + Send + 'static) -> Registered {
    WATCH.call_once(watch);
    let id = {
        let mut next = NEXT_ID.lock().unwrap_or_else(|p| p.into_inner());
        *next += 1;
        *next
    };
    lock().push((id, Box::new(cleanup)));
    Registered(id)
}

/// Starts the thread that hears SIGTERM and SIGHUP (once a process).
fn watch() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let Ok((mut reader, writer)) = std::os::unix::net::UnixStream::pair() else {
        return;
    };
    let mut heard = Vec::new();
    for signal in [rustix::process::Signal::TERM, rustix::process::Signal::HUP] {
        let flag = Arc::new(AtomicBool::new(false));
        let Ok(writer) = writer.try_clone() else {
            return;
        };
        if signal_hook::flag::register(signal.as_raw(), flag.clone()).is_err()
            || signal_hook::low_level::pipe::register(signal.as_raw(), writer).is_err()
        {
            return;
        }
        heard.push((signal.as_raw(), flag));
    }
    let _ = std::thread::Builder::new()
        .name("termination".into())
        .spawn(move || {
            let mut byte = [0u8; 1];
            while let Ok(1) = reader.read(&mut byte) {
                let Some(signal) = heard
                    .iter()
                    .find(|(_, flag)| flag.load(Ordering::SeqCst))
                    .map(|(signal, _)| *signal)
                else {
                    continue;
                };
                TERMINATING.store(true, Ordering::SeqCst);
                let cleanups: Vec<_> = lock().drain(..).collect();
                for (_, cleanup) in cleanups.into_iter().rev() {
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(cleanup));
                }
                let _ = signal_hook::low_level::emulate_default_handler(signal);
                std::process::exit(128 + signal);
            }
        });
}

/// Waits for good once a terminating signal came (the clean-ups are
/// running, and the process then ends by the signal): called where the
/// tool would go on once the program a clean-up ended is gone, so that it
/// does not exit with its own status first.
pub fn hold_if_terminating() {
    if TERMINATING.load(std::sync::atomic::Ordering::SeqCst) {
        loop {
            std::thread::park();
        }
    }
}

/// Ends the process `pid` (a child of ours, not yet reaped, so its pid is
/// still its own): SIGTERM, then SIGKILL after [`END_GRACE`].
pub fn end_child(pid: u32) {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok();
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    if !ended_within(pidfd.as_ref(), END_GRACE) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        ended_within(pidfd.as_ref(), END_GRACE);
    }
}

/// Whether the process of `pidfd` ended within `bound`.
fn ended_within(pidfd: Option<&OwnedFd>, bound: Duration) -> bool {
    let Some(pidfd) = pidfd else {
        std::thread::sleep(bound.min(Duration::from_millis(100)));
        return false;
    };
    let until = Instant::now() + bound;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let mut fds = [rustix::event::PollFd::new(
            pidfd,
            rustix::event::PollFlags::IN,
        )];
        let timeout = rustix::event::Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(n) if n > 0 => return true,
            Err(rustix::io::Errno::INTR) => continue,
            _ => return false,
        }
    }
}

/// A program of the tool's own that holds the terminal (the pager, the
/// debugger), registered before it is started: SIGTERM or SIGHUP then ends
/// it once [`started`](TerminalProgram::started) was told its pid, runs
/// `also` (what the tool made for it), and puts the terminal back as it was
/// at registration. In force until dropped.
pub struct TerminalProgram {
    started: std::sync::Arc<std::sync::atomic::AtomicU32>,
    _registered: Registered,
}

impl TerminalProgram {
    pub fn register(also: impl FnOnce() + Send + 'static) -> TerminalProgram {
        let saved = SavedTerminal::now();
        let started = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let registered = on_termination({
            let started = started.clone();
            move || {
                let pid = started.load(std::sync::atomic::Ordering::SeqCst);
                if pid != 0 {
                    end_child(pid);
                }
                also();
                if let Some(saved) = &saved {
                    saved.restore();
                }
            }
        });
        TerminalProgram {
            started,
            _registered: registered,
        }
    }

    /// The program was started as `pid`.
    pub fn started(&self, pid: u32) {
        self.started.store(pid, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Ctrl-C and Ctrl-\ on the terminal belong to the program holding it
/// (they reach this process too, in its process group): heard, not obeyed,
/// so that this process goes on and waits for that program.
pub fn hear_but_not_obey_interrupts() {
    for signal in [rustix::process::Signal::INT, rustix::process::Signal::QUIT] {
        let ignored = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let _ = signal_hook::flag::register(signal.as_raw(), ignored);
    }
}

/// The controlling terminal's settings, to put back.
pub struct SavedTerminal {
    tty: std::fs::File,
    settings: rustix::termios::Termios,
}

impl SavedTerminal {
    /// The controlling terminal's settings now (`None` without one).
    pub fn now() -> Option<SavedTerminal> {
        let tty = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags_noctty()
            .open("/dev/tty")
            .ok()?;
        let settings = rustix::termios::tcgetattr(&tty).ok()?;
        Some(SavedTerminal { tty, settings })
    }

    /// Puts the settings back.
    pub fn restore(&self) {
        let _ = rustix::termios::tcsetattr(
            &self.tty,
            rustix::termios::OptionalActions::Now,
            &self.settings,
        );
    }
}

/// `O_NOCTTY` on an [`std::fs::OpenOptions`].
trait NoCtty {
    fn custom_flags_noctty(&mut self) -> &mut Self;
}

impl NoCtty for std::fs::OpenOptions {
    fn custom_flags_noctty(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags((rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::CLOEXEC).bits() as i32)
    }
}
