//! Support for the C API's system tests: the C library installed with its
//! own `make install` into a private prefix, the C test programs compiled
//! against it (C and C++, shared and static), snapshot sessions that clean
//! up after themselves, and test users with their own session daemon.

#![allow(dead_code)]

use std::fs;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use testsupport::*;

/// The C flags every C API test program is built with.
const C_FLAGS: &[&str] = &["-Wall", "-Wextra", "-Werror", "-pedantic", "-g", "-O1"];

/// What a program is linked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Shared,
    Static,
}

/// One build of a C test program.
#[derive(Debug, Clone)]
pub struct Program {
    pub label: String,
    pub path: PathBuf,
    pub link: Link,
}

/// The installed library and the test programs built against it.
pub struct CApi {
    pub prefix: PathBuf,
    /// `tests/c/set_trigger.c` as C and as C++, each shared and static.
    pub set_trigger: Vec<Program>,
    /// `tests/c/coredump_helper.c` (the RFC's core_pattern helper), shared
    /// and static.
    pub helper: Vec<Program>,
}

impl CApi {
    pub fn helper(&self, link: Link) -> &Program {
        self.helper.iter().find(|p| p.link == link).unwrap()
    }
}

fn run_checked(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {cmd:?}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn pkg_config(prefix: &Path, args: &[&str]) -> Vec<String> {
    let out = Command::new("pkg-config")
        .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"))
        .args(args)
        .arg("lttng-coredump")
        .output()
        .expect("running pkg-config (apt-get install -y pkg-config)");
    assert!(
        out.status.success(),
        "pkg-config {args:?} lttng-coredump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Compiles `source` as C or C++ against the installed library, with the
/// flags pkg-config gives; a static build names the archive so that the
/// program does not depend on the shared library.
fn compile(prefix: &Path, source: &str, cxx: bool, link: Link, out: &Path) {
    let root = workspace_root();
    let compiler = if cxx {
        std::env::var("CXX").unwrap_or_else(|_| "c++".into())
    } else {
        std::env::var("CC").unwrap_or_else(|_| "cc".into())
    };
    let mut cmd = Command::new(compiler);
    cmd.args(C_FLAGS);
    if cxx {
        cmd.args(["-x", "c++", "-std=c++11"]);
    } else {
        cmd.arg("-std=gnu11");
    }
    cmd.args(pkg_config(prefix, &["--cflags"]));
    cmd.arg(root.join(source)).arg("-o").arg(out);
    if cxx {
        // What follows are libraries, not sources to compile as C++.
        cmd.args(["-x", "none"]);
    }
    match link {
        Link::Shared => {
            cmd.arg(format!("-Wl,-rpath,{}", prefix.join("lib").display()));
            cmd.args(pkg_config(prefix, &["--libs"]));
        }
        Link::Static => {
            for flag in pkg_config(prefix, &["--static", "--libs"]) {
                if flag == "-llttng-coredump" {
                    cmd.args(["-Wl,-Bstatic", "-llttng-coredump", "-Wl,-Bdynamic"]);
                } else {
                    cmd.arg(flag);
                }
            }
        }
    }
    run_checked(&mut cmd, &format!("compiling {source}"));
}

fn build() -> CApi {
    let root = workspace_root();
    let base = root.join("target/capi-c-tests");
    // Directories of earlier test processes are left behind only if those
    // died; remove those of processes that are gone.
    if let Ok(entries) = fs::read_dir(&base) {
        for entry in entries.flatten() {
            let gone = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
            if gone {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
    let dir = base.join(std::process::id().to_string());
    let _ = fs::remove_dir_all(&dir);
    let prefix = dir.join("prefix");
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    {
        // One cargo build of the library at a time across test processes.
        let _lock = FileLock::acquire("capi-build");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        run_checked(
            Command::new("make")
                .current_dir(&root)
                .env("CARGO", cargo)
                .args(["-s", "-C", "capi", "install", "PROFILE=dev"])
                .arg(format!("PREFIX={}", prefix.display()))
                // Not the multiarch default (capi/tests/install.rs checks
                // that): the programs below look in <prefix>/lib.
                .arg(format!("LIBDIR={}", prefix.join("lib").display())),
            "make -C capi install",
        );
    }
    for name in [
        "liblttng-coredump.so",
        "liblttng-coredump.so.0",
        "liblttng-coredump.a",
        "pkgconfig/lttng-coredump.pc",
    ] {
        assert!(
            prefix.join("lib").join(name).exists(),
            "make install did not install {name}"
        );
    }
    assert!(prefix.join("include/lttng-coredump.h").exists());

    let mut set_trigger = Vec::new();
    let mut helper = Vec::new();
    for link in [Link::Shared, Link::Static] {
        let suffix = match link {
            Link::Shared => "shared",
            Link::Static => "static",
        };
        for cxx in [false, true] {
            let label = format!("set_trigger-{}-{suffix}", if cxx { "c++" } else { "c" });
            let path = bin.join(&label);
            compile(&prefix, "tests/c/set_trigger.c", cxx, link, &path);
            set_trigger.push(Program { label, path, link });
        }
        let label = format!("coredump_helper-c-{suffix}");
        let path = bin.join(&label);
        compile(&prefix, "tests/c/coredump_helper.c", false, link, &path);
        helper.push(Program { label, path, link });
    }
    CApi {
        prefix,
        set_trigger,
        helper,
    }
}

/// The C API, installed and its programs built, once per test process.
pub fn c_api() -> &'static CApi {
    static C_API: OnceLock<CApi> = OnceLock::new();
    C_API.get_or_init(build)
}

/// The shared libraries a program needs (`readelf -d`).
pub fn needed_libraries(program: &Path) -> Vec<String> {
    let out = Command::new("readelf")
        .arg("-d")
        .arg(program)
        .output()
        .expect("running readelf (binutils)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| Some(l.split('[').nth(1)?.trim_end_matches(']').to_string()))
        .collect()
}

/// Runs a program and returns its output (whatever its exit status).
pub fn run(program: &Path, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()))
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One action of a fire, as `coredump_helper --report` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub status: i32,
    pub action: i32,
    pub owner_uid: i64,
    pub session: String,
    pub trigger: String,
    pub snapshot_path: Option<PathBuf>,
    pub message: Option<String>,
}

/// What `coredump_helper` printed.
#[derive(Debug, Clone)]
pub struct HelperOutput {
    pub ret: i32,
    pub entries: Vec<Entry>,
    pub errors: Vec<(i32, String)>,
    pub raw: String,
}

impl HelperOutput {
    pub fn parse(text: &str) -> HelperOutput {
        let mut ret = None;
        let mut entries: Vec<Entry> = Vec::new();
        let mut errors = Vec::new();
        for line in text.lines() {
            let mut words = line.splitn(2, ' ');
            let (kind, rest) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            match kind {
                "ret" => ret = rest.trim().parse().ok(),
                "entry" => {
                    let f: Vec<&str> = rest.splitn(7, ' ').collect();
                    assert_eq!(f.len(), 7, "bad entry line {line:?}");
                    entries.push(Entry {
                        status: f[1].parse().unwrap(),
                        action: f[2].parse().unwrap(),
                        owner_uid: f[3].parse().unwrap(),
                        session: f[4].to_string(),
                        trigger: f[5].to_string(),
                        snapshot_path: (f[6] != "-").then(|| PathBuf::from(f[6])),
                        message: None,
                    });
                }
                "message" => {
                    let (index, message) = rest.split_once(' ').unwrap();
                    entries[index.parse::<usize>().unwrap()].message = Some(message.to_string());
                }
                "error" => {
                    let (code, message) = rest.split_once(' ').unwrap();
                    errors.push((code.parse().unwrap(), message.to_string()));
                }
                _ => {}
            }
        }
        HelperOutput {
            ret: ret.unwrap_or_else(|| panic!("no `ret` line in {text:?}")),
            entries,
            errors,
            raw: text.to_string(),
        }
    }

    /// The entries about `session`.
    pub fn for_session(&self, session: &str) -> Vec<&Entry> {
        self.entries
            .iter()
            .filter(|e| e.session == session)
            .collect()
    }
}

/// Runs the helper with `--report` for a crash of `pid`/`exec_name`.
pub fn fire(helper: &Program, extra: &[&str], pid: u32, exec_name: &str) -> HelperOutput {
    let pid = pid.to_string();
    let mut args: Vec<&str> = extra.to_vec();
    args.extend(["--report", &pid, "0", "0", exec_name, "testhost"]);
    let out = run(&helper.path, &args);
    let parsed = HelperOutput::parse(&stdout(&out));
    assert_eq!(
        out.status.success(),
        parsed.ret == 0,
        "exit status and ret disagree: {}",
        parsed.raw
    );
    parsed
}

/// The negative `LTTNG_ERR_*` value C sees for `code`.
pub fn c_code(code: lttng_ctl::ErrorCode) -> i32 {
    -(code.raw() as i32)
}

/// A root-daemon session created for one test, destroyed (with any
/// OnAnyCoreDump trigger naming it) when dropped.
pub struct TestSession {
    pub name: String,
    pub output: TempDir,
}

impl TestSession {
    /// A started snapshot-mode session recording the crasher's events.
    pub fn snapshot(prefix: &str) -> TestSession {
        ensure_sessiond();
        let name = unique_name(prefix);
        let output = TempDir::new(prefix);
        lttng_ok(&[
            "create",
            &name,
            "--snapshot",
            "-o",
            &output.path().display().to_string(),
        ]);
        let session = TestSession { name, output };
        lttng_ok(&[
            "enable-event",
            "-u",
            "lttng_coredump_test:step",
            "-s",
            &session.name,
        ]);
        lttng_ok(&["start", &session.name]);
        session
    }

    /// `lttng list`'s line about this session.
    pub fn status_line(&self) -> String {
        lttng_ok(&["list"])
            .lines()
            .find(|l| l.contains(&format!(" {} ", self.name)))
            .unwrap_or_else(|| panic!("session {} is not listed", self.name))
            .to_string()
    }

    /// The snapshot directories in the session's output.
    pub fn snapshot_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = fs::read_dir(self.output.path())
            .map(|entries| entries.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        dirs.sort();
        dirs
    }
}

impl Drop for TestSession {
    fn drop(&mut self) {
        for name in [
            format!("lttng-coredump:snapshot:{}", self.name),
            format!("lttng-coredump:stop:{}", self.name),
        ] {
            let _ = lttng(&["remove-trigger", &name]);
        }
        let _ = lttng(&["destroy", &self.name]);
    }
}

/// Runs the crasher fixture to completion (mode `exit`) with `tag`; returns
/// its pid.
pub fn run_crasher(tag: &str, count: u32) -> u32 {
    let out = run(&crasher_path(), &[tag, &count.to_string(), "exit"]);
    assert!(out.status.success(), "the crasher failed: {out:?}");
    stdout(&out)
        .split_whitespace()
        .nth(1)
        .and_then(|pid| pid.parse().ok())
        .expect("the crasher prints `ready <pid>`")
}

/// Unregisters, as root, every OnAnyCoreDump trigger of the root daemon
/// whose sessions no longer exist: left by an earlier, interrupted run,
/// they would make every fire report an error. Call with
/// [`root_triggers_lock`] held.
pub fn remove_stale_triggers() {
    let sessions: Vec<String> = lttng_ctl::session::list_sessions()
        .expect("listing sessions")
        .into_iter()
        .map(|s| s.name)
        .collect();
    let list = lttng_ctl::trigger::TriggerList::fetch().expect("listing triggers");
    for trigger in list.iter() {
        let info = trigger.info();
        let Some(decoded) = lttng_coredump_engine::encoding::decode(&info) else {
            continue;
        };
        let stale = decoded.actions.iter().all(|a| match a {
            lttng_coredump_engine::encoding::CoreDumpAction::Snapshot { session, .. }
            | lttng_coredump_engine::encoding::CoreDumpAction::Stop { session } => {
                !sessions.contains(session)
            }
            lttng_coredump_engine::encoding::CoreDumpAction::Unsupported { .. } => true,
        });
        if stale {
            let _ = trigger.unregister();
        }
    }
}

/// An unprivileged user created for one test and deleted (with its home
/// directory, and after its session daemon is stopped) when dropped.
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    sessiond_pid: Option<i32>,
}

impl TestUser {
    /// Sets an OnAnyCoreDump trigger on `session` in this user's own
    /// session daemon, acting as the user from this root process, and fails
    /// the test unless the engine reports success.
    pub fn set_trigger_in_own_daemon(
        &self,
        session: &str,
        action: lttng_coredump_engine::ActionKind,
    ) {
        let identity = lttng_coredump_engine::identity::Identity::of_user(self.uid)
            .unwrap()
            .with_lttng_home(&self.home)
            .per_user_daemon();
        let set = lttng_coredump_engine::identity::run_as(
            Duration::from_secs(10),
            Some(&identity),
            || {
                let result = lttng_coredump_engine::set_trigger(session, action)
                    .map(|_| ())
                    .map_err(|e| e.to_string());
                format!("{result:?}").into_bytes()
            },
        )
        .unwrap();
        assert_eq!(String::from_utf8_lossy(&set), "Ok(())");
    }

    pub fn create(name: &str, in_tracing_group: bool) -> TestUser {
        let (uid, gid) = ensure_test_user(name, in_tracing_group);
        let home = PathBuf::from(format!("/home/{name}"));
        assert!(home.is_dir(), "{} has no home directory", name);
        TestUser {
            name: name.to_string(),
            uid,
            gid,
            home,
            sessiond_pid: None,
        }
    }

    /// A command run as this user, with a clean environment pointing at
    /// their home.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", &self.name, "--", "env", "-i"])
            .arg(format!("HOME={}", self.home.display()))
            .arg("PATH=/usr/local/bin:/usr/bin:/bin")
            .arg(program)
            .stdin(Stdio::null());
        cmd
    }

    /// Runs the lttng CLI as this user, panicking on failure.
    pub fn lttng_ok(&self, args: &[&str]) -> String {
        let out = self.command("lttng").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "lttng {args:?} as {} failed: {}{}",
            self.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn run_dir(&self) -> PathBuf {
        self.home.join(".lttng")
    }

    /// Starts the user's own session daemon and waits until it answers.
    pub fn start_sessiond(&mut self) -> i32 {
        let status = self
            .command("lttng-sessiond")
            .args(["--daemonize", "--no-kernel"])
            .status()
            .expect("running lttng-sessiond");
        assert!(status.success(), "lttng-sessiond as {} failed", self.name);
        let socket = self.run_dir().join("client-lttng-sessiond");
        let pid_file = self.run_dir().join("lttng-sessiond.pid");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let pid = fs::read_to_string(&pid_file)
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok());
            if let (Some(pid), true) = (pid, UnixStream::connect(&socket).is_ok()) {
                self.sessiond_pid = Some(pid);
                return pid;
            }
            assert!(
                Instant::now() < deadline,
                "the session daemon of {} never answered on {}",
                self.name,
                socket.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop_sessiond(&mut self) {
        let Some(pid) = self.sessiond_pid.take() else {
            return;
        };
        // SAFETY: signals to the daemon this test started, by its pid.
        unsafe {
            libc::kill(pid, libc::SIGCONT);
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: as above; it did not stop in time.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        // Its consumer daemons exit with it; wait until the user owns no
        // process, or userdel refuses.
        let deadline = Instant::now() + Duration::from_secs(10);
        while user_has_processes(self.uid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn user_has_processes(uid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::read_dir("/proc")
        .map(|entries| {
            entries.flatten().any(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.parse::<u32>().is_ok())
                    && e.metadata().is_ok_and(|m| m.uid() == uid)
            })
        })
        .unwrap_or(false)
}

impl Drop for TestUser {
    fn drop(&mut self) {
        self.stop_sessiond();
        let _ = Command::new("userdel")
            .args(["--remove", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}
