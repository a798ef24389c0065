//! What the live-core tests share: the C programs (compiled here, once per
//! machine and source: the library's own build compiles nothing for its
//! tests), a running target to talk to, the dumper run and held at a
//! stage, gdb.

use lttng_coredump_livecore::{LiveError, LiveReport};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use testsupport::lock::FileLock;
use testsupport::process::run_bounded;
use testsupport::workspace_root;

/// The dumper command (`src/bin/livecore.rs`).
pub fn dumper() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lttng-coredump-livecore"))
}

/// The C programs of `tests/programs/`.
pub struct Programs {
    pub target: PathBuf,
    pub parent: PathBuf,
}

fn hash(bytes: &[u8]) -> u64 {
    // FNV-1a: a name per source version, so a changed source is rebuilt
    // and a binary in use is never overwritten.
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn pkg_config(args: &[&str]) -> Vec<String> {
    let out = Command::new("pkg-config")
        .args(args)
        .output()
        .expect("running pkg-config (apt-get install -y pkg-config)");
    assert!(
        out.status.success(),
        "pkg-config {args:?} failed (apt-get install -y liblttng-ust-dev): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Compiles `source` with warnings as errors, unless this version of it
/// was compiled already.
fn compile(name: &str, source: &Path, libs: &[&str]) -> PathBuf {
    let text =
        std::fs::read(source).unwrap_or_else(|e| panic!("reading {}: {e}", source.display()));
    let header = workspace_root().join("programs/lttng_coredump_tp.h");
    let mut all = text.clone();
    all.extend(std::fs::read(&header).unwrap_or_default());
    let dir = workspace_root().join("target/livecore-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join(format!("{name}-{:016x}", hash(&all)));
    if exe.exists() {
        return exe;
    }
    let partial = dir.join(format!("{name}.{}.partial", std::process::id()));
    let mut cmd = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()));
    cmd.args(["-Wall", "-Wextra", "-Werror", "-O1", "-g", "-pthread"])
        .arg(format!("-I{}", workspace_root().join("programs").display()))
        .arg("-o")
        .arg(&partial)
        .arg(source);
    for lib in libs {
        cmd.args(pkg_config(&["--cflags", "--libs", lib]));
    }
    cmd.arg("-ldl");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler: {e}"));
    assert!(
        out.status.success(),
        "compiling {}: {}",
        source.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&partial, &exe).unwrap();
    exe
}

pub fn programs() -> &'static Programs {
    static PROGRAMS: OnceLock<Programs> = OnceLock::new();
    PROGRAMS.get_or_init(|| {
        let _lock = FileLock::acquire("livecore-programs");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs");
        Programs {
            target: compile("live_target", &dir.join("live_target.c"), &["lttng-ust"]),
            parent: compile("live_parent", &dir.join("live_parent.c"), &[]),
        }
    })
}

/// What the target says of itself (`stats`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    pub stamps: u64,
    pub errors: u64,
    pub reaped: u64,
    pub sigchld: u64,
    pub emitted: u64,
}

/// A running `live_target` (killed when dropped).
pub struct Target {
    pub child: Child,
    pub pid: i32,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// With `live_parent`: its events file.
    pub events: Option<PathBuf>,
}

impl Target {
    /// Starts `command` (the target, or the parent running it), waits for
    /// `ready PID`.
    pub fn start(mut command: Command, events: Option<PathBuf>) -> Target {
        command
            .env(
                "LTTNG_UST_REGISTER_TIMEOUT",
                testsupport::crasher::REGISTER_TIMEOUT_MS,
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {command:?}: {e}"));
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let pid = line
            .strip_prefix("ready ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("the target printed {line:?} instead of `ready PID`"));
        Target {
            child,
            pid,
            stdin,
            stdout,
            events,
        }
    }

    /// `live_target ARGS` as this test process's child.
    pub fn spawn(args: &[&str]) -> Target {
        let mut command = Command::new(&programs().target);
        command.args(args);
        Target::start(command, None)
    }

    /// `live_target ARGS` under `live_parent`, whose events go to `events`.
    pub fn spawn_with_parent(events: &Path, args: &[&str]) -> Target {
        let mut command = Command::new(&programs().parent);
        command.arg(events).arg(&programs().target).args(args);
        Target::start(command, Some(events.to_path_buf()))
    }

    fn ask(&mut self, command: &str) -> String {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "the target ended (asked {command:?})");
        line
    }

    fn ask_list(&mut self, command: &str) -> Vec<String> {
        let mut lines = Vec::new();
        let mut line = self.ask(command);
        while line.trim() != "end" {
            lines.push(line.trim().to_string());
            line.clear();
            self.stdout.read_line(&mut line).unwrap();
            assert!(!line.is_empty(), "the target ended");
        }
        lines
    }

    pub fn stats(&mut self) -> Stats {
        let line = self.ask("stats");
        let field = |name: &str| -> i64 {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {name} in {line:?}"))
        };
        Stats {
            stamps: field("stamps") as u64,
            errors: field("errors") as u64,
            reaped: field("reaped") as u64,
            sigchld: field("sigchld") as u64,
            emitted: field("emitted") as u64,
        }
    }

    /// The target's own account of what went wrong.
    pub fn errors(&mut self) -> Vec<String> {
        self.ask_list("errors")
    }

    /// The counter thread's gaps over 1 ms: (from, to) on CLOCK_MONOTONIC.
    pub fn gaps(&mut self) -> Vec<(u64, u64)> {
        self.ask_list("gaps")
            .iter()
            .filter_map(|l| {
                let mut w = l.split_whitespace().skip(1);
                Some((w.next()?.parse().ok()?, w.next()?.parse().ok()?))
            })
            .collect()
    }

    /// Waits (bounded, generously) until `what` holds of the stats.
    pub fn wait_for(&mut self, what: &str, condition: impl Fn(&Stats) -> bool) -> Stats {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let stats = self.stats();
            if condition(&stats) {
                return stats;
            }
            assert!(
                Instant::now() < deadline,
                "the target never got to {what}: {stats:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Checks that the target runs and has seen nothing wrong: its counter
    /// goes on, no error, no child reaped, no SIGCHLD.
    pub fn assert_unharmed(&mut self, context: &str) {
        let before = self.stats();
        let after = self.wait_for("counting on", |s| s.stamps >= before.stamps + 100);
        let errors = self.errors();
        assert!(
            errors.is_empty() && after.errors == 0,
            "{context}: the target saw errors: {errors:?}"
        );
        assert_eq!(after.reaped, 0, "{context}: the target reaped a child");
        assert_eq!(after.sigchld, 0, "{context}: the target got SIGCHLD");
        assert!(
            Path::new(&format!("/proc/{}", self.pid)).exists(),
            "{context}: the target is gone"
        );
    }

    /// Where its filled memory is (`--fill`): address and length.
    pub fn fill(&mut self) -> (u64, u64) {
        let line = self.ask("fill");
        let mut words = line.split_whitespace().skip(1);
        let addr = words.next().and_then(|a| u64::from_str_radix(a, 16).ok());
        let len = words.next().and_then(|l| l.parse().ok());
        match (addr, len) {
            (Some(addr), Some(len)) => (addr, len),
            _ => panic!("the target answered {line:?} to `fill`"),
        }
    }

    /// Makes it map `mib` MiB more of private memory, every page written
    /// (`grow`): address and length.
    pub fn grow(&mut self, mib: u64) -> (u64, u64) {
        let line = self.ask(&format!("grow {mib}"));
        let mut words = line.split_whitespace();
        assert_eq!(words.next(), Some("grown"), "the target answered {line:?}");
        let addr = words.next().and_then(|a| u64::from_str_radix(a, 16).ok());
        let len = words.next().and_then(|l| l.parse().ok());
        (addr.unwrap(), len.unwrap())
    }

    /// Maps `pages` pages of `file` private and writable in the target and
    /// has it write pages `[from, to)` (`mapfile`); returns the address.
    pub fn map_file(&mut self, file: &Path, pages: u64, from: u64, to: u64) -> u64 {
        let line = self.ask(&format!("mapfile {} {pages} {from} {to}", file.display()));
        line.strip_prefix("mapfile ")
            .and_then(|a| u64::from_str_radix(a.trim(), 16).ok())
            .unwrap_or_else(|| panic!("the target answered {line:?} to `mapfile`"))
    }

    /// Has the target call `madvise(advice)` on `[off, off + len)` of its
    /// filled memory (`which` = "fill") or of its mapped file ("file");
    /// panics unless it succeeded.
    pub fn madvise(&mut self, which: &str, advice: &str, off: u64, len: u64) {
        let line = self.ask(&format!("madvise {which} {advice} {off} {len}"));
        assert_eq!(
            line.trim(),
            "madvise 0",
            "madvise {which} {advice} {off} {len}"
        );
    }

    /// `[addr, addr + len)` of the target's memory, read now
    /// (`/proc/PID/mem`).
    pub fn memory(&self, addr: u64, len: u64) -> Vec<u8> {
        use std::os::unix::fs::FileExt;
        let mem = std::fs::File::open(format!("/proc/{}/mem", self.pid)).unwrap();
        let mut bytes = vec![0u8; len as usize];
        mem.read_exact_at(&mut bytes, addr)
            .unwrap_or_else(|e| panic!("reading the target's memory at {addr:#x}: {e}"));
        bytes
    }

    /// Checks that no userfaultfd is left on the target: no mapping
    /// registered (`uw`/`um`/`ui` in its `VmFlags`), no userfaultfd among
    /// its descriptors. (Its other descriptors are lttng-ust's to change:
    /// it opens and closes sockets and shared memory as session daemons
    /// come and go.)
    pub fn assert_untracked(&self, context: &str) {
        let smaps = std::fs::read_to_string(format!("/proc/{}/smaps", self.pid)).unwrap();
        for line in smaps.lines().filter(|l| l.starts_with("VmFlags:")) {
            assert!(
                !line
                    .split_whitespace()
                    .any(|f| matches!(f, "uw" | "um" | "ui")),
                "{context}: a mapping is still registered with a userfaultfd: {line}"
            );
        }
        let links: Vec<String> = std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .map(|l| l.display().to_string())
            .collect();
        assert!(
            !links.iter().any(|l| l.contains("userfaultfd")),
            "{context}: the target holds a userfaultfd: {links:?}"
        );
    }

    /// SIGKILLs the target without waiting for it (while it is traced, its
    /// tracer reaps it first).
    pub fn kill(&self) {
        // SAFETY: a signal to the target this test started, by its pid.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
    }

    /// Asks the target to exit and waits for it.
    pub fn exit(mut self) -> std::process::ExitStatus {
        writeln!(self.stdin, "exit").unwrap();
        let _ = self.stdin.flush();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the target did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The children of the target (pid, state), from /proc.
    pub fn children(&self) -> Vec<(i32, char)> {
        testsupport::process::children_of(self.pid)
            .into_iter()
            .map(|(pid, _)| {
                let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .ok()
                    .and_then(|s| {
                        s.rsplit(')')
                            .next()
                            .map(|r| r.trim().chars().next().unwrap_or('?'))
                    })
                    .unwrap_or('?');
                (pid, state)
            })
            .collect()
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Under live_parent, the target is the parent's child: it dies with
        // its stdin closed only when asked; kill it by pid too.
        if self.events.is_some() {
            // SAFETY: a signal to the target this test started, by its pid
            // (its parent, our child, has not reaped it while we kill it:
            // it was killed first and the target is reparented or gone).
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
        }
    }
}

/// The dumper's answer.
pub type Answer = Result<LiveReport, LiveError>;

/// The JSON answer on the dumper's last line.
pub fn answer_of(output: &Output) -> Answer {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no answer from the dumper: {output:?}"));
    serde_json::from_str(last).unwrap_or_else(|e| panic!("unreadable answer {last:?}: {e}"))
}

/// Runs the dumper with `args` (bounded) and returns its answer.
pub fn dump(args: &[&str]) -> Answer {
    let out = run_bounded(Command::new(dumper()).args(args), Duration::from_secs(300));
    answer_of(&out)
}

/// Runs the dumper and expects a report.
pub fn dump_ok(args: &[&str]) -> LiveReport {
    match dump(args) {
        Ok(report) => report,
        Err(e) => panic!("dumping with {args:?} failed: {e:?}"),
    }
}

/// The dumper on `pid`, writing `core` by `method`, reading 1 MiB at a
/// time (so that a small process still takes several pieces).
pub fn dump_command(pid: i32, core: &Path, method: &str) -> Command {
    let mut command = Command::new(dumper());
    command.arg(pid.to_string()).arg("-o").arg(core).args([
        "--method",
        method,
        "--buffer-mib",
        "1",
    ]);
    command
}

/// A dumper held at a stage (`--hold-at`).
pub struct Held {
    pub child: Child,
    /// The dumping child's pid (the tracer).
    pub tracer: i32,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Held {
    /// Starts the dumper with `args` plus `--hold-at STAGE`, and waits until
    /// it holds there.
    pub fn start(mut command: Command, stage: &str) -> Held {
        command
            .args(["--hold-at", stage])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            let n = stdout.read_line(&mut line).unwrap();
            if n == 0 {
                let out = child.wait_with_output().unwrap();
                panic!("the dumper ended before holding at {stage}: {out:?}");
            }
            if line.starts_with("hold ") {
                break;
            }
        }
        let tracer = line
            .split_whitespace()
            .nth(2)
            .and_then(|p| p.parse().ok())
            .unwrap();
        Held {
            child,
            tracer,
            stdin,
            stdout,
        }
    }

    /// Lets it go on, and returns its answer.
    pub fn release(mut self) -> Answer {
        drop(self.stdin.take());
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut self.stdout, &mut rest);
        let status = self.child.wait().unwrap();
        let last = rest
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .unwrap_or_else(|| panic!("no answer after release ({status}): {rest:?}"));
        serde_json::from_str(last).unwrap()
    }

    /// SIGKILLs the dumping child (the tracer), lets the command go on,
    /// and returns its answer.
    pub fn kill_tracer(self) -> Answer {
        // SAFETY: a signal to the dumping child this test started, which is
        // held (alive) by its parent, our child.
        unsafe { libc::kill(self.tracer, libc::SIGKILL) };
        self.release()
    }
}

/// `gdb -batch` on `core` of `program` with `commands`; its output.
pub fn gdb(program: &Path, core: &Path, commands: &[&str]) -> String {
    let mut cmd = Command::new("gdb");
    cmd.args(["-batch", "-nx"]);
    for c in commands {
        cmd.args(["-ex", c]);
    }
    cmd.arg(program).arg(core);
    let out = run_bounded(&mut cmd, Duration::from_secs(120));
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The functions of `thread apply all bt` that are among `names`, once each.
pub fn functions_named(backtraces: &str, names: &[&str]) -> Vec<String> {
    let mut found: Vec<String> = names
        .iter()
        .filter(|name| {
            backtraces
                .lines()
                .filter(|l| l.starts_with('#'))
                .any(|l| l.contains(&format!(" {name} (")) || l.contains(&format!(" in {name} (")))
        })
        .map(|n| n.to_string())
        .collect();
    found.sort();
    found
}

/// The eight functions the target's threads block in.
pub const BLOCKED_FUNCTIONS: [&str; 8] = [
    "blocked_in_read",
    "blocked_in_nanosleep",
    "blocked_in_futex",
    "blocked_in_poll",
    "blocked_in_select",
    "blocked_in_epoll",
    "blocked_in_sigwait",
    "spinning_in_user_code",
];

/// A fresh path for a core under `dir`.
pub fn core_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.core"))
}

/// The program headers of an ELF64 core: (vaddr, offset, filesz) of each
/// `PT_LOAD`.
pub fn loads(core: &[u8]) -> Vec<(u64, u64, u64)> {
    let word = |at: usize| u64::from_le_bytes(core[at..at + 8].try_into().unwrap());
    let half = |at: usize| u16::from_le_bytes(core[at..at + 2].try_into().unwrap()) as usize;
    let (phoff, phentsize, phnum) = (word(0x20) as usize, half(0x36), half(0x38));
    (0..phnum)
        .map(|i| phoff + i * phentsize)
        .filter(|&at| u32::from_le_bytes(core[at..at + 4].try_into().unwrap()) == 1)
        .map(|at| (word(at + 16), word(at + 8), word(at + 32)))
        .collect()
}

/// The bytes `[addr, addr + len)` of the process's memory as `core` holds
/// them.
pub fn core_memory(core: &[u8], addr: u64, len: u64) -> &[u8] {
    let (vaddr, offset, _) = loads(core)
        .into_iter()
        .find(|&(vaddr, _, filesz)| vaddr <= addr && addr + len <= vaddr + filesz)
        .unwrap_or_else(|| panic!("no segment of the core holds {addr:#x}+{len:#x}"));
    let from = (offset + addr - vaddr) as usize;
    &core[from..from + len as usize]
}

/// A command run as `user` with no supplementary group.
pub fn as_user(user: &testsupport::users::TestUser, program: &std::path::Path) -> Command {
    testsupport::crasher::command_as(user.uid, user.gid, program)
}

/// `zstd -d` of `compressed` into `plain`.
pub fn decompress(compressed: &Path, plain: &Path) {
    let out = run_bounded(
        Command::new("zstd")
            .args(["-q", "-d", "-o"])
            .arg(plain)
            .arg(compressed),
        Duration::from_secs(120),
    );
    assert!(out.status.success(), "zstd -d: {out:?}");
}
