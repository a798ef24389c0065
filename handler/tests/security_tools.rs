//! Root's crash tools over a user's crash (issue 17, "Root's tools on a
//! user's crash"): an administrator runs `trace`, `trace --from-core`,
//! `recover` and `debug` as root over the crash of a real unprivileged
//! test user, who plays each move of the attacker: a snapshot directory
//! made a link to a root-only directory holding a secret (metadata-shaped)
//! file, a subdirectory of the temporary trace swapped for a link while
//! root works on it, a FIFO in a trace directory and beside a core, a
//! record name beside a core linked to a device, the user's own gdb
//! scripts, and their processes reaching for root's terminal. Real
//! crashes through the real core_pattern, real babeltrace2 and gdb.
//!
//! `LCD_TOOL_UNDER_TEST` runs the tools of another build (the handler in
//! core_pattern stays this one): pointed at a build of the code before
//! these defenses, every test here fails.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use testsupport::handler::{config_for, wait_for_record, InstalledHandler, CRASH_TIMEOUT};
use testsupport::process::{copy_executable, run_bounded};
use testsupport::recover::*;
use testsupport::users::TestUser;
use testsupport::{crasher_path, handler_binary, ready_pid, unique_name, TempDir};

const TOOL_TIMEOUT: Duration = Duration::from_secs(300);

/// The tools' binary (see the module comment).
fn tool_binary() -> PathBuf {
    std::env::var_os("LCD_TOOL_UNDER_TEST")
        .map(PathBuf::from)
        .unwrap_or_else(|| handler_binary!().to_path_buf())
}

/// `lttng-coredump ARGS` as root, to its end.
fn tool(args: &[&str]) -> Output {
    run_bounded(Command::new(tool_binary()).args(args), TOOL_TIMEOUT)
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A shell line run as `user`, which must succeed.
fn as_user(user: &TestUser, script: &str) -> String {
    let out = run_bounded(user.command("/bin/sh").args(["-c", script]), TOOL_TIMEOUT);
    assert!(
        out.status.success(),
        "as {}: {script}: {}",
        user.name,
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A directory everyone may write (sticky), removed afterwards.
fn shared_dir(prefix: &str) -> TempDir {
    let dir = TempDir::new(prefix);
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o1777)).unwrap();
    dir
}

/// The lab of a user whose own daemon snapshots their session on every
/// crash (a trigger of theirs), and a first crash while every daemon
/// lives: the handler's snapshot of it is in the user's `~/traces`.
fn lab_with_a_snapshot(user: &str) -> (Lab, Crash, PathBuf) {
    let scenario = Scenario {
        user,
        before: 4,
        after: 4,
        ..Scenario::default()
    };
    let lab = Lab::new(handler_binary!(), &scenario);
    lab.user
        .set_trigger_in_own_daemon(&lab.session, lttng_coredump_engine::ActionKind::Snapshot);
    let crash = lab.crash(&scenario);
    let own = format!("user {}", lab.user.uid);
    let snapshot = crash.record["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["daemon"] == own.as_str() && s["error"].is_null())
        .and_then(|s| s["path"].as_str())
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no snapshot of the user's daemon: {:#}", crash.record));
    (lab, crash, snapshot)
}

/// Then a crash whose snapshot fails (the consumer daemon killed): its
/// trace is only in its core.
fn crash_with_trace_only_in_core(lab: &Lab) -> Crash {
    lab.crash(&Scenario {
        user: &lab.user.name,
        failure: Failure::KillConsumer,
        snapshot: false,
        before: 6,
        after: 9,
        ..Scenario::default()
    })
}

/// Every file under `dir` (links not followed), with its bytes.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).into_iter().flatten().flatten() {
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                out.push((entry.path(), fs::read(entry.path()).unwrap_or_default()));
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// A field of `/proc/PID/stat` after the command name (3: state, 6:
/// session, 7: tty_nr), as text.
fn stat_field(pid: i32, field: usize) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.split(' ').nth(field - 3).map(str::to_string)
}

/// The processes of `uid` named `name`.
fn processes_of(uid: u32, name: &str) -> Vec<i32> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            fs::metadata(format!("/proc/{pid}")).is_ok_and(|m| m.uid() == uid)
                && fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.trim_end() == name)
        })
        .collect()
}

fn wait_for(what: &str, bound: Duration, mut found: impl FnMut() -> bool) {
    let started = Instant::now();
    while !found() {
        assert!(started.elapsed() < bound, "{what}: not within {bound:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A pseudo-terminal the test owns: the tool runs on its slave as on
/// root's terminal (its controlling terminal, in a session of its own).
struct TestTerminal {
    master: fs::File,
    slave: fs::File,
    slave_path: PathBuf,
}

impl TestTerminal {
    fn open() -> TestTerminal {
        use rustix::fs::{Mode, OFlags};
        use rustix::pty::OpenptFlags;
        // What openpty(3) does: both ends read-write, neither made the
        // test's controlling terminal (nor closed on exec).
        let master = rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
        rustix::pty::grantpt(&master).unwrap();
        rustix::pty::unlockpt(&master).unwrap();
        let name = rustix::pty::ptsname(&master, Vec::new()).unwrap();
        let slave = rustix::fs::open(
            name.as_c_str(),
            OFlags::RDWR | OFlags::NOCTTY,
            Mode::empty(),
        )
        .unwrap();
        let (master, slave) = (fs::File::from(master), fs::File::from(slave));
        let slave_path = fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&slave)
        ))
        .unwrap();
        TestTerminal {
            master,
            slave,
            slave_path,
        }
    }

    /// The tool on this terminal: `setsid --ctty` makes it the session's
    /// controlling terminal, as a login shell's is.
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> RunningTool {
        let child = Command::new("setsid")
            .arg("--ctty")
            .arg(tool_binary())
            .args(args)
            .envs(env.iter().copied())
            .stdin(self.slave.try_clone().unwrap())
            .stdout(self.slave.try_clone().unwrap())
            .stderr(self.slave.try_clone().unwrap())
            .spawn()
            .unwrap();
        RunningTool(child)
    }

    fn termios(&self) -> rustix::termios::Termios {
        rustix::termios::tcgetattr(&self.slave).unwrap()
    }

    /// What is waiting to be read as input on root's terminal.
    fn pending_input(&self) -> Vec<u8> {
        let waiting = rustix::io::ioctl_fionread(&self.slave).unwrap_or(0);
        let mut buf = vec![0u8; waiting as usize];
        if !buf.is_empty() {
            let n = rustix::io::read(&self.slave, &mut buf).unwrap_or(0);
            buf.truncate(n);
        }
        buf
    }
}

/// A tool started on a [`TestTerminal`]; its whole session is killed when
/// dropped (on main it would hang).
struct RunningTool(Child);

impl RunningTool {
    fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    fn wait_within(&mut self, bound: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return Some(status);
            }
            if started.elapsed() > bound {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for RunningTool {
    fn drop(&mut self) {
        // The session this test started (setsid made the tool the leader
        // of its process group).
        testsupport::process::signal(-(self.0.id() as i32), libc::SIGKILL);
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The directory of a snapshot that holds its `metadata` (where
/// babeltrace2 opens every stream file).
fn trace_dir_of(snapshot: &Path) -> PathBuf {
    find_metadata(snapshot, None)
        .unwrap_or_else(|| panic!("no metadata under {}", snapshot.display()))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// [`lab_with_a_snapshot`], the user having made the metadata of their
/// snapshot a FIFO (babeltrace2 blocks in its open).
fn lab_with_a_fifo_as_metadata(user: &str) -> (Lab, Crash) {
    let (lab, first, snapshot) = lab_with_a_snapshot(user);
    let trace_dir = trace_dir_of(&snapshot);
    as_user(
        &lab.user,
        &format!(
            "cd {} && rm metadata && mkfifo metadata",
            trace_dir.display()
        ),
    );
    (lab, first)
}

#[test]
fn root_tools_never_copy_or_print_a_root_only_file_the_user_links_as_metadata() {
    let (lab, first, snapshot) = lab_with_a_snapshot("lcdtsec");
    let crash = crash_with_trace_only_in_core(&lab);
    assert_eq!(crash.record["core_trace"]["only_in_core"], true);
    // Root's secret: a file only root may read, shaped as the metadata of
    // this very trace (text CTF with the same UUID, larger than the real
    // one), naming a host that shows in every event babeltrace2 prints.
    let marker = unique_name("ROOTSECRET");
    let secret = TempDir::new("lcd-secret");
    fs::set_permissions(secret.path(), fs::Permissions::from_mode(0o700)).unwrap();
    let tsdl = run_bounded(
        Command::new("babeltrace2")
            .args(["--output-format=ctf-metadata"])
            .arg(trace_dir_of(&crash.snapshot)),
        TOOL_TIMEOUT,
    );
    assert!(tsdl.status.success(), "{}", text(&tsdl));
    let tsdl = String::from_utf8_lossy(&tsdl.stdout).into_owned();
    let at = tsdl
        .find("hostname = \"")
        .expect("a hostname in the metadata")
        + 12;
    let end = at + tsdl[at..].find('"').unwrap();
    let mut forged = format!("{}{marker}{}", &tsdl[..at], &tsdl[end..]);
    forged.push_str(&format!("\n/* {} */\n", "x".repeat(1 << 20)));
    assert!(forged.contains(&crash.uuid));
    let secret_file = secret.path().join("metadata");
    fs::write(&secret_file, &forged).unwrap();
    fs::set_permissions(&secret_file, fs::Permissions::from_mode(0o600)).unwrap();
    // The user's move: each snapshot directory of theirs becomes a link to
    // root's directory (their real snapshot kept beside it).
    as_user(
        &lab.user,
        &format!(
            "cd {} && for d in *; do mv \"$d\" \"$d.real\" && ln -s {} \"$d\"; done",
            snapshot.parent().unwrap().display(),
            secret.path().display()
        ),
    );
    let _ = first;

    // recover, as root, into a directory of root's.
    let out = TempDir::new("lcd-secret-out");
    let output = out.path().join("trace");
    let cores = lab.cores.to_str().unwrap();
    let config = lab.handler.as_ref().unwrap().config.clone();
    let recovered = tool(&[
        "recover",
        crash.core.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    let report = text(&recovered);
    for (path, bytes) in files_under(out.path()) {
        assert!(
            !contains(&bytes, &marker),
            "root's secret was copied into {}: {report}",
            path.display()
        );
    }
    assert!(!report.contains(&marker), "{report}");
    // The user's real metadata (which they may read) still serves.
    assert_eq!(recovered.status.code(), Some(0), "{report}");
    assert!(
        output.join(&crash.uuid).join("metadata").is_file(),
        "{report}"
    );

    // trace --from-core, as root: never prints the secret; the events are
    // read with the real metadata.
    let pid = crash.pid.to_string();
    let traced = tool(&[
        "trace",
        &pid,
        "--dir",
        cores,
        "--from-core",
        "--all",
        "--json",
    ]);
    let shown = text(&traced);
    assert!(
        !shown.contains(&marker),
        "root's secret was printed: {shown}"
    );
    assert_eq!(traced.status.code(), Some(0), "{shown}");
    assert!(shown.contains(&crash.tag), "{shown}");
}

#[test]
fn trace_from_core_changes_no_owner_when_the_user_swaps_a_subdirectory_for_a_link() {
    let (lab, _first, _snapshot) = lab_with_a_snapshot("lcdtchown");
    let crash = crash_with_trace_only_in_core(&lab);
    // Root's canary: a directory and a file of root's the user would like
    // to own.
    let canary = TempDir::new("lcd-canary");
    fs::set_permissions(canary.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let canary_file = canary.path().join("canary");
    fs::write(&canary_file, "root's\n").unwrap();
    let tmp = shared_dir("lcd-chown-tmp");
    // The tool under strace, which stops it (SIGSTOP) right after the
    // second change of owner it makes, if it makes any: the temporary
    // directory is the user's by then, and the user swaps the
    // subdirectory root is about to walk for a link to the canary. strace
    // also stops the tool at each of its system calls (the same tracing
    // stop, in /proc): its log says when the stop is the injected one.
    let cores = lab.cores.to_str().unwrap();
    let pid = crash.pid.to_string();
    let strace_dir = TempDir::new("lcd-strace");
    let strace_log = strace_dir.path().join("strace.log");
    let mut traced = Command::new("strace")
        .arg("-o")
        .arg(&strace_log)
        .args([
            "-e",
            "trace=lchown,fchownat,chown,fchown",
            "-e",
            "inject=lchown,fchownat,chown,fchown:signal=SIGSTOP:when=2",
        ])
        .arg(tool_binary())
        .args(["trace", &pid, "--dir", cores, "--from-core", "--all"])
        .env("TMPDIR", tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running strace");
    let started = Instant::now();
    let mut swapped = false;
    let status = loop {
        if let Some(status) = traced.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < TOOL_TIMEOUT, "the tool did not end");
        // The tool is strace's child, stopped by the injected SIGSTOP.
        let injected = fs::read_to_string(&strace_log)
            .is_ok_and(|log| log.contains("--- stopped by SIGSTOP ---"));
        let stopped = testsupport::process::children_of(traced.id() as i32)
            .into_iter()
            .find(|(child, _)| stat_field(*child, 3).is_some_and(|s| s == "t" || s == "T"))
            .filter(|_| injected);
        if let (Some((tool_pid, _)), false) = (stopped, swapped) {
            let top = fs::read_dir(tmp.path())
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .find(|p| p.join("trace").exists())
                .expect("the temporary directory");
            as_user(
                &lab.user,
                &format!(
                    "cd {} && mv trace moved && ln -s {} trace",
                    top.display(),
                    canary.path().display()
                ),
            );
            swapped = true;
            // The tool this test started.
            testsupport::process::signal(tool_pid, libc::SIGCONT);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut shown = String::new();
    traced
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut shown)
        .unwrap();
    traced
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut shown)
        .unwrap();
    for path in [canary.path(), canary_file.as_path()] {
        let meta = fs::symlink_metadata(path).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid()),
            (0, 0),
            "root's {} was given to the user: {shown}",
            path.display()
        );
    }
    assert!(
        !swapped,
        "root changed the owner of files in the temporary tree: {shown}"
    );
    assert!(status.success(), "{shown}");
    assert!(shown.contains(&crash.tag), "{shown}");
    // The temporary directory was made by the user's child (never handed
    // over) and is gone.
    assert!(fs::read_dir(tmp.path()).unwrap().next().is_none());
}

#[test]
fn trace_runs_babeltrace2_as_the_user_in_a_session_of_its_own_without_roots_terminal() {
    // The trace's metadata made a FIFO holds babeltrace2 (in its open)
    // while the test looks at it.
    let (lab, first) = lab_with_a_fifo_as_metadata("lcdttty");
    let terminal = TestTerminal::open();
    let before = terminal.termios();
    let cores = lab.cores.to_str().unwrap();
    let pid = first.pid.to_string();
    let mut tool = terminal.run(&["trace", &pid, "--dir", cores], &[]);
    let mut reader: Vec<i32> = Vec::new();
    wait_for("babeltrace2 running as the user", TOOL_TIMEOUT, || {
        reader = processes_of(lab.user.uid, "babeltrace2");
        reader.len() == 1
    });
    let reader = reader[0];
    // In a session of its own, with no controlling terminal, holding no
    // descriptor of root's terminal.
    let tool_session = stat_field(tool.pid(), 6).unwrap();
    assert_ne!(
        stat_field(reader, 6).unwrap(),
        tool_session,
        "babeltrace2 is in root's session"
    );
    assert_eq!(
        stat_field(reader, 7).unwrap(),
        "0",
        "babeltrace2 has a controlling terminal"
    );
    for fd in fs::read_dir(format!("/proc/{reader}/fd"))
        .unwrap()
        .flatten()
    {
        let target = fs::read_link(fd.path()).unwrap_or_default();
        assert_ne!(
            target, terminal.slave_path,
            "babeltrace2 holds root's terminal"
        );
    }
    // From the user's side: TIOCSTI through every descriptor of their
    // process (/proc/PID/fd: babeltrace2 runs as them). Nothing reaches
    // root's terminal. (With root's session and terminal, as before, the
    // user's process could open /dev/tty, root's terminal, and push input
    // to root's shell or read what root types.)
    as_user(
        &lab.user,
        &format!(
            "for fd in /proc/{reader}/fd/*; do perl -e 'open(my $t, \"+<\", $ARGV[0]) or exit 0; \
             ioctl($t, 0x5412, \"X\")' \"$fd\" 2>/dev/null; done; true"
        ),
    );
    let pushed = terminal.pending_input();
    assert!(
        pushed.is_empty(),
        "input pushed into root's terminal: {pushed:?}"
    );
    // The tool ends (SIGTERM): the user's child dies with it.
    testsupport::process::signal(tool.pid(), libc::SIGTERM);
    assert!(tool.wait_within(TOOL_TIMEOUT).is_some());
    wait_for("babeltrace2 gone with its parent", TOOL_TIMEOUT, || {
        processes_of(lab.user.uid, "babeltrace2").is_empty()
    });
    let after = terminal.termios();
    assert_eq!(
        (before.local_modes, before.input_modes, before.output_modes),
        (after.local_modes, after.input_modes, after.output_modes)
    );
}

#[test]
fn a_fifo_in_a_trace_directory_or_beside_a_core_costs_trace_and_recover_their_bound_only() {
    let (lab, first) = lab_with_a_fifo_as_metadata("lcdtfifo");
    let cores = lab.cores.to_str().unwrap();
    let pid = first.pid.to_string();
    // trace: babeltrace2 blocks on the FIFO (the snapshot's metadata made
    // one); killed at the bound.
    let traced = tool(&["trace", &pid, "--dir", cores, "--timeout", "5"]);
    let shown = text(&traced);
    assert_eq!(traced.status.code(), Some(1), "{shown}");
    assert!(shown.contains("did not end within 5 s: killed"), "{shown}");
    wait_for("babeltrace2 gone", TOOL_TIMEOUT, || {
        processes_of(lab.user.uid, "babeltrace2").is_empty()
    });
    // recover: the user gives root a copy of their core, beside a FIFO
    // named as a crash record, and a FIFO as the core itself.
    let given = lab.user.home.join("given");
    as_user(
        &lab.user,
        &format!(
            "mkdir -p {g} && cp {core} {g}/core && mkfifo {g}/evil.json {g}/fifo-core",
            g = given.display(),
            core = first.core.display()
        ),
    );
    let config = lab.handler.as_ref().unwrap().config.clone();
    let out = TempDir::new("lcd-fifo-out");
    let recovered = tool(&[
        "recover",
        given.join("fifo-core").to_str().unwrap(),
        "-o",
        out.path().join("a").to_str().unwrap(),
    ]);
    let report = text(&recovered);
    assert_eq!(recovered.status.code(), Some(2), "{report}");
    assert!(report.contains("not a regular file"), "{report}");
    let recovered = tool(&[
        "recover",
        given.join("core").to_str().unwrap(),
        "-o",
        out.path().join("b").to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    let report = text(&recovered);
    assert_eq!(recovered.status.code(), Some(0), "{report}");
    assert!(report.contains(&first.uuid), "{report}");
}

/// Watches a path for opens (inotify `IN_OPEN`).
struct OpenWatch(fs::File);

impl OpenWatch {
    fn new(path: &Path) -> OpenWatch {
        use rustix::fs::inotify::{self, CreateFlags, WatchFlags};
        let fd = inotify::init(CreateFlags::NONBLOCK | CreateFlags::CLOEXEC).unwrap();
        inotify::add_watch(&fd, path, WatchFlags::OPEN)
            .unwrap_or_else(|err| panic!("watching {}: {err}", path.display()));
        OpenWatch(fs::File::from(fd))
    }

    fn opened(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        matches!(self.0.read(&mut buf), Ok(n) if n > 0)
    }
}

#[test]
fn metadata_search_never_opens_a_device_file() {
    let (lab, first, _snapshot) = lab_with_a_snapshot("lcdtdev");
    // A device anyone may open (as /dev/null), where the test sees opens.
    let devices = TempDir::new("lcd-dev");
    fs::set_permissions(devices.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let device = devices.path().join("null");
    let status = Command::new("mknod")
        .arg(&device)
        .args(["c", "1", "3"])
        .status()
        .unwrap();
    assert!(status.success());
    fs::set_permissions(&device, fs::Permissions::from_mode(0o666)).unwrap();
    // The user's move: a copy of their core for root to recover, beside a
    // "record" that is a link to the device.
    let given = lab.user.home.join("given");
    as_user(
        &lab.user,
        &format!(
            "mkdir -p {g} && cp {core} {g}/core && ln -s {dev} {g}/evil.json",
            g = given.display(),
            core = first.core.display(),
            dev = device.display()
        ),
    );
    let mut watch = OpenWatch::new(&device);
    let config = lab.handler.as_ref().unwrap().config.clone();
    let out = TempDir::new("lcd-dev-out");
    let recovered = tool(&[
        "recover",
        given.join("core").to_str().unwrap(),
        "-o",
        out.path().join("t").to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    let report = text(&recovered);
    assert!(!watch.opened(), "the device was opened: {report}");
    assert_eq!(recovered.status.code(), Some(0), "{report}");
}

/// A user, the handler installed, and a crash of the crasher copied into
/// the user's home (their executable): (user, core directory, pid, exe).
fn users_own_program_crash(name: &str, cores: &Path) -> (TestUser, i32, PathBuf) {
    let user = TestUser::create(name, false);
    let exe = user.home.join("prog");
    copy_executable(crasher_path(), &exe);
    std::os::unix::fs::chown(&exe, Some(user.uid), Some(user.gid)).unwrap();
    let output = run_bounded(
        user.command(&exe).args([&unique_name("dbg"), "1", "segv"]),
        CRASH_TIMEOUT,
    );
    let pid = ready_pid(&output);
    let (_, record) = wait_for_record(cores, pid);
    assert_eq!(
        record["core"]["readable_by_uid"], user.uid,
        "the user's core: {record:#}"
    );
    (user, pid, exe)
}

#[test]
fn debug_runs_gdb_as_the_user_whose_scripts_never_run_as_root() {
    let dir = TempDir::new("lcd-dbg");
    let cores = dir.path().join("cores");
    let _handler = InstalledHandler::new(handler_binary!(), &config_for(&cores, ""));
    let (user, pid, exe) = users_own_program_crash("lcdtgdb", &cores);
    // Where the scripts leave their mark (`WHO.UID`, by whoever ran them).
    let marks = shared_dir("lcd-gdb-marks");
    let mark = |what: &str| format!("shell id -u > {}/{what}.$(id -u)\n", marks.path().display());
    // The user's: an auto-load script beside their executable, and their
    // own ~/.gdbinit.
    fs::write(exe.with_file_name("prog-gdb.gdb"), mark("autoload")).unwrap();
    fs::write(user.home.join(".gdbinit"), mark("gdbinit")).unwrap();
    // Root's gdb is set up to auto-load from anywhere (an administrator's
    // ~/.gdbinit on a development machine).
    let root_home = TempDir::new("lcd-dbg-home");
    fs::write(
        root_home.path().join(".gdbinit"),
        "set auto-load safe-path /\n",
    )
    .unwrap();
    let debugged = run_bounded(
        Command::new(tool_binary())
            .args(["debug", &pid.to_string(), "--dir", cores.to_str().unwrap()])
            .env("HOME", root_home.path()),
        TOOL_TIMEOUT,
    );
    let shown = text(&debugged);
    let made: Vec<(String, u32)> = fs::read_dir(marks.path())
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().uid(),
            )
        })
        .collect();
    assert!(
        made.iter().all(|(_, owner)| *owner != 0),
        "a script of the user's ran as root: {made:?}: {shown}"
    );
    assert!(
        made.contains(&(format!("gdbinit.{}", user.uid), user.uid)),
        "gdb did not run as the user: {made:?}: {shown}"
    );
    assert!(debugged.status.success(), "{shown}");
    assert!(shown.contains("main"), "no backtrace: {shown}");
}

#[test]
fn debug_on_a_terminal_gives_gdb_a_terminal_of_its_own_and_puts_roots_back() {
    let dir = TempDir::new("lcd-dbgpty");
    let cores = dir.path().join("cores");
    let _handler = InstalledHandler::new(handler_binary!(), &config_for(&cores, ""));
    let (user, pid, _exe) = users_own_program_crash("lcdtgdbpty", &cores);
    let terminal = TestTerminal::open();
    let before = terminal.termios();
    let mut tool = terminal.run(
        &["debug", &pid.to_string(), "--dir", cores.to_str().unwrap()],
        &[("TERM", "dumb")],
    );
    let mut debugger = Vec::new();
    wait_for("gdb running as the user", TOOL_TIMEOUT, || {
        debugger = processes_of(user.uid, "gdb");
        debugger.len() == 1
    });
    let gdb = debugger[0];
    let tool_session = stat_field(tool.pid(), 6).unwrap();
    assert_ne!(
        stat_field(gdb, 6).unwrap(),
        tool_session,
        "gdb is in root's session"
    );
    let gdb_tty = stat_field(gdb, 7).unwrap();
    assert_ne!(gdb_tty, "0", "gdb has no terminal");
    assert_ne!(
        gdb_tty,
        stat_field(tool.pid(), 7).unwrap(),
        "gdb's terminal is root's"
    );
    for fd in fs::read_dir(format!("/proc/{gdb}/fd")).unwrap().flatten() {
        let target = fs::read_link(fd.path()).unwrap_or_default();
        assert_ne!(target, terminal.slave_path, "gdb holds root's terminal");
    }
    // Root types on its terminal; gdb answers through the relay.
    let mut master = terminal.master.try_clone().unwrap();
    std::io::Write::write_all(&mut master, b"bt\nquit\n").unwrap();
    let reading = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        seen
    });
    let status = tool.wait_within(TOOL_TIMEOUT).expect("debug did not end");
    assert!(status.success(), "{status:?}");
    let after = terminal.termios();
    assert_eq!(
        (before.local_modes, before.input_modes, before.output_modes),
        (after.local_modes, after.input_modes, after.output_modes),
        "root's terminal was not put back"
    );
    drop(terminal);
    let seen = String::from_utf8_lossy(&reading.join().unwrap()).into_owned();
    assert!(seen.contains("main (argc"), "{seen}");
}

/// A directory only root can change, all the way from `/` (under `/run`,
/// root's 0755), removed when dropped: where an administrator keeps a
/// set-uid program.
struct RootOnlyDir(PathBuf);

impl RootOnlyDir {
    fn new(prefix: &str) -> RootOnlyDir {
        let path = PathBuf::from("/run").join(unique_name(prefix));
        fs::create_dir(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        RootOnlyDir(path)
    }
}

impl Drop for RootOnlyDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The set-uid-root test program installed at `program`, run by `user`
/// with a root-only secret it reads as root: its record (a root-only core).
fn set_uid_crash(user: &TestUser, program: &Path, cores: &Path, dir: &Path) -> serde_json::Value {
    copy_executable(testsupport::crasher::setuid_dumpable_path(), program);
    fs::set_permissions(program, fs::Permissions::from_mode(0o4755)).unwrap();
    let secret = dir.join("secret");
    fs::write(&secret, unique_name("root-only")).unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    let output = run_bounded(
        testsupport::crasher::command_as(user.uid, user.gid, program).arg(&secret),
        CRASH_TIMEOUT,
    );
    let pid = ready_pid(&output);
    let (_, record) = wait_for_record(cores, pid);
    assert!(record["core"]["readable_by_uid"].is_null(), "{record:#}");
    assert_eq!(record["uid"], user.uid, "{record:#}");
    record
}

/// Every place the user could put a gdb script or Python code that root's
/// gdb would run (given the user's home as HOME, or as the current
/// directory): each leaves `WHO.UID` in `marks` when it runs.
fn plant_gdb_scripts(user: &TestUser, marks: &Path) {
    let shell_mark = |what: &str| format!("shell id -u > {}/{what}.$(id -u)\n", marks.display());
    let python_mark = |what: &str| {
        format!(
            "import os; os.system('id -u > {}/{what}.$(id -u)')\n",
            marks.display()
        )
    };
    let user_site = String::from_utf8(
        run_bounded(
            user.command("python3")
                .args(["-c", "import site; print(site.getusersitepackages())"]),
            TOOL_TIMEOUT,
        )
        .stdout,
    )
    .unwrap();
    let plants = [
        (user.home.join(".gdbinit"), shell_mark("gdbinit")),
        (user.home.join(".gdbearlyinit"), shell_mark("earlyinit")),
        (
            user.home.join(".config/gdb/gdbinit"),
            shell_mark("xdg-gdbinit"),
        ),
        (
            PathBuf::from(user_site.trim()).join("lcd-evil.pth"),
            python_mark("python-user-site"),
        ),
    ];
    for (path, text) in plants {
        as_user(
            user,
            &format!(
                "mkdir -p '{}' && cat > '{}' <<'EOF'\n{text}EOF",
                path.parent().unwrap().display(),
                path.display()
            ),
        );
    }
}

/// The marks left in `marks` (file name, owner).
fn marks_made(marks: &Path) -> Vec<(String, u32)> {
    fs::read_dir(marks)
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().uid(),
            )
        })
        .collect()
}

#[test]
fn debug_by_root_of_a_set_uid_crash_runs_a_hardened_gdb_over_roots_copy() {
    let dir = TempDir::new("lcd-dbgsuid");
    let cores = dir.path().join("cores");
    let _handler = InstalledHandler::new(handler_binary!(), &config_for(&cores, ""));
    let user = TestUser::create("lcdtgdbsuid", false);
    let bin = RootOnlyDir::new("lcd-dbgsuid-bin");
    let program = bin.0.join("suid-prog");
    let record = set_uid_crash(&user, &program, &cores, dir.path());
    let pid = record["pid"].as_i64().unwrap().to_string();
    let marks = shared_dir("lcd-dbgsuid-marks");
    plant_gdb_scripts(&user, marks.path());
    // Root's own gdb set up to auto-load from anywhere (a development
    // machine's ~/.gdbinit), for the second run.
    let root_home = TempDir::new("lcd-dbgsuid-home");
    fs::write(
        root_home.path().join(".gdbinit"),
        format!(
            "set auto-load safe-path /\nshell id -u > {}/roots-gdbinit.$(id -u)\n",
            marks.path().display()
        ),
    )
    .unwrap();
    // The copy goes where TMPDIR says: looked at afterwards.
    let tmp = TempDir::new("lcd-dbgsuid-tmp");
    // The administrator runs it from the user's home, with HOME the
    // user's (as `sudo` keeps it on some systems), then with their own.
    for home in [user.home.as_path(), root_home.path()] {
        let debugged = run_bounded(
            Command::new(tool_binary())
                .args(["debug", &pid, "--dir", cores.to_str().unwrap()])
                .env("HOME", home)
                .env("TMPDIR", tmp.path())
                .current_dir(&user.home),
            TOOL_TIMEOUT,
        );
        let shown = text(&debugged);
        assert!(debugged.status.success(), "{shown}");
        // gdb ran, as root, over the crash: its backtrace...
        assert!(shown.contains("main"), "no backtrace: {shown}");
        assert!(
            shown.contains("as root over root's copy of its root-only core"),
            "{shown}"
        );
        // ...and not one script or init file, the user's or root's.
        let made = marks_made(marks.path());
        assert!(made.is_empty(), "scripts ran: {made:?}: {shown}");
        // Root's copy is gone.
        let left: Vec<_> = fs::read_dir(tmp.path()).unwrap().flatten().collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}

#[test]
fn debug_by_root_refuses_a_root_only_core_whose_executable_is_not_roots_alone() {
    let dir = TempDir::new("lcd-dbgrefuse");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let cores = dir.path().join("cores");
    let _handler = InstalledHandler::new(handler_binary!(), &config_for(&cores, ""));
    let user = TestUser::create("lcdtgdbrefuse", false);
    let marks = shared_dir("lcd-dbgrefuse-marks");
    let mark = format!(
        "shell id -u > {}/autoload.$(id -u)\n",
        marks.path().display()
    );
    let root_home = TempDir::new("lcd-dbgrefuse-home");
    fs::write(
        root_home.path().join(".gdbinit"),
        "set auto-load safe-path /\n",
    )
    .unwrap();
    let debug = |pid: &str| {
        run_bounded(
            Command::new(tool_binary())
                .args(["debug", pid, "--dir", cores.to_str().unwrap()])
                .env("HOME", root_home.path()),
            TOOL_TIMEOUT,
        )
    };

    // A set-uid-root program in a directory of the user's (the user can
    // swap it, and put an auto-load script beside it).
    let user_bin = user.home.join("bin");
    as_user(&user, &format!("mkdir -p {}", user_bin.display()));
    let program = user_bin.join("suid-prog");
    let record = set_uid_crash(&user, &program, &cores, dir.path());
    as_user(
        &user,
        &format!(
            "cat > {}/suid-prog-gdb.gdb <<'EOF'\n{mark}EOF",
            user_bin.display()
        ),
    );
    let refused = debug(&record["pid"].as_i64().unwrap().to_string());
    let shown = text(&refused);
    assert!(!refused.status.success(), "{shown}");
    assert!(
        shown.contains("its executable is not root's alone")
            && shown.contains(&user.home.display().to_string())
            && shown.contains("lttng-coredump dump"),
        "{shown}"
    );

    // The user's own program, run holding a capability they lack: its
    // core is root's, its executable theirs.
    let own = user.home.join("prog");
    copy_executable(crasher_path(), &own);
    std::os::unix::fs::chown(&own, Some(user.uid), Some(user.gid)).unwrap();
    fs::write(own.with_file_name("prog-gdb.gdb"), &mark).unwrap();
    let (_, record) = testsupport::handler::crash_and_record(
        Command::new("setpriv")
            .args([
                &format!("--reuid={}", user.uid),
                &format!("--regid={}", user.gid),
                "--clear-groups",
                "--inh-caps",
                "+net_raw",
                "--ambient-caps",
                "+net_raw",
                "--",
            ])
            .arg(&own)
            .args([&unique_name("caps"), "1", "segv"]),
        &cores,
    );
    assert!(record["core"]["readable_by_uid"].is_null(), "{record:#}");
    let refused = debug(&record["pid"].as_i64().unwrap().to_string());
    let shown = text(&refused);
    assert!(!refused.status.success(), "{shown}");
    assert!(
        shown.contains("its executable is not root's alone"),
        "{shown}"
    );
    let made = marks_made(marks.path());
    assert!(made.is_empty(), "scripts ran: {made:?}");
}
