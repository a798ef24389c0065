//! Shared by the handler's system tests: installs the freshly built
//! handler in the kernel's core_pattern (through the test support's guard,
//! which restores it), crashes programs, and reads back cores and records.

#![allow(dead_code)] // each test file uses a part

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use testsupport::{handler_binary, CorePatternGuard};

/// A short directory for the handler and its configuration: the whole
/// core_pattern line must fit in 127 bytes.
const SHORT_DIR: &str = "/run/lcdh";
/// Longest a crash may take, handler included.
pub const CRASH_TIMEOUT: Duration = Duration::from_secs(120);

/// The handler installed in core_pattern with a configuration, for one
/// test; core_pattern and core_pipe_limit come back when dropped, then the
/// copies of the handler and its configuration are removed (their names are
/// this copy's own, so removing them never races another test).
pub struct InstalledHandler {
    guard: Option<CorePatternGuard>,
    pub binary: PathBuf,
    pub config: PathBuf,
}

impl InstalledHandler {
    /// Installs the handler with `config_toml` as its configuration.
    pub fn new(config_toml: &str) -> InstalledHandler {
        let guard = CorePatternGuard::acquire();
        let (binary, config) = short_handler_copy(config_toml);
        // Non-zero: the kernel keeps /proc/PID until the handler is done,
        // and the crash is only reported to the parent once it is.
        guard.set_pipe_limit(16);
        guard.set(&handler_line(&binary, &config));
        InstalledHandler {
            guard: Some(guard),
            binary,
            config,
        }
    }

    pub fn guard(&self) -> &CorePatternGuard {
        self.guard.as_ref().expect("held until dropped")
    }

    /// Replaces the configuration (the handler reads it on every crash).
    pub fn set_config(&self, config_toml: &str) {
        fs::write(&self.config, config_toml).unwrap();
    }
}

impl Drop for InstalledHandler {
    fn drop(&mut self) {
        drop(self.guard.take());
        let _ = fs::remove_file(&self.binary);
        let _ = fs::remove_file(&self.config);
    }
}

/// Copies the freshly built handler and writes `config_toml` under a short
/// directory (the whole core_pattern line must fit in 127 bytes), under
/// names no other test uses; returns both paths.
pub fn short_handler_copy(config_toml: &str) -> (PathBuf, PathBuf) {
    let built = handler_binary();
    fs::create_dir_all(SHORT_DIR).unwrap();
    fs::set_permissions(SHORT_DIR, fs::Permissions::from_mode(0o755)).unwrap();
    static COPIES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let copy = COPIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let id = format!("{}-{copy}", std::process::id());
    let binary = Path::new(SHORT_DIR).join(format!("h.{id}"));
    let temporary = Path::new(SHORT_DIR).join(format!("h.{id}.tmp"));
    fs::copy(&built, &temporary).unwrap();
    fs::rename(&temporary, &binary).unwrap();
    let config = Path::new(SHORT_DIR).join(format!("c.{id}.toml"));
    fs::write(&config, config_toml).unwrap();
    fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).unwrap();
    (binary, config)
}

/// The core_pattern line the handler's `install` writes for this kernel.
pub fn handler_line(binary: &Path, config: &Path) -> String {
    format!(
        "|{} handle --config {} P=%P u=%u g=%g s=%s t=%t c=%c d=%d F=%F h=%h e=%e E=%E",
        binary.display(),
        config.display()
    )
}

/// A configuration putting cores in `core_dir`, plus `extra` lines. It
/// leaves out the fallback to every active snapshot session, which would
/// snapshot other tests' sessions in the shared root session daemon.
pub fn config_for(core_dir: &Path, extra: &str) -> String {
    format!(
        "core_dir = \"{}\"\nmin_free = 0\nsnapshot_deadline = 2\nsnapshot_active_sessions = false\n{extra}\n",
        core_dir.display()
    )
}

/// Runs `command` to its end, killing it after `timeout`.
pub fn run_bounded(command: &mut Command, timeout: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let deadline = Instant::now() + timeout;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!("{command:?} still running after {timeout:?}: {output:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The pid the crasher fixture printed (`ready PID`).
pub fn ready_pid(output: &Output) -> i32 {
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("ready "))
        .and_then(|pid| pid.trim().parse().ok())
        .unwrap_or_else(|| panic!("the crasher printed no pid: {output:?}"))
}

/// Waits for the crash record of `pid` in `dir` and parses it.
pub fn wait_for_record(dir: &Path, pid: i32) -> (PathBuf, serde_json::Value) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let needle = format!(".{pid}.");
    loop {
        if let Ok(entries) = fs::read_dir(dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                // Root's record, not the crashing user's copy.
                if name.ends_with(".json")
                    && !name.ends_with(".user.json")
                    && name.contains(&needle)
                {
                    let text = fs::read(entry.path()).unwrap();
                    let record = serde_json::from_slice(&text).unwrap_or_else(|e| {
                        panic!(
                            "record {name} is not JSON: {e}: {}",
                            String::from_utf8_lossy(&text)
                        )
                    });
                    return (entry.path(), record);
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no crash record for pid {pid} in {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Names in a directory, sorted, but for the handler's ledger (its
/// bookkeeping of the rate limits and the snapshot budget).
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name != ".lttng-coredump-ledger")
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// What an ELF core file says about the process it is from.
#[derive(Debug)]
pub struct CoreIdentity {
    pub pid: i32,
    pub uid: u32,
    pub fname: Vec<u8>,
}

/// Checks that `bytes` start an x86-64 ELF core file (ET_CORE) and reads
/// its NT_PRPSINFO note.
pub fn elf_core_identity(bytes: &[u8]) -> CoreIdentity {
    assert!(bytes.len() > 64, "core of {} bytes", bytes.len());
    assert_eq!(&bytes[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(bytes[4], 2, "not ELF64");
    let u16_at = |o: usize| u16::from_le_bytes(bytes[o..o + 2].try_into().unwrap());
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap()) as usize;
    assert_eq!(u16_at(16), 4, "e_type is not ET_CORE");
    let (phoff, phentsize, phnum) = (u64_at(32), u16_at(54) as usize, u16_at(56) as usize);
    for index in 0..phnum {
        let ph = phoff + index * phentsize;
        if u32_at(ph) != 4 {
            continue; // not PT_NOTE
        }
        let (mut at, end) = (u64_at(ph + 8), u64_at(ph + 8) + u64_at(ph + 32));
        while at + 12 <= end {
            let (namesz, descsz, kind) =
                (u32_at(at) as usize, u32_at(at + 4) as usize, u32_at(at + 8));
            let desc = at + 12 + namesz.div_ceil(4) * 4;
            if kind == 3 {
                // NT_PRPSINFO: pr_uid at 16, pr_pid at 24, pr_fname[16] at 40.
                let fname = &bytes[desc + 40..desc + 56];
                let len = fname.iter().position(|&b| b == 0).unwrap_or(16);
                return CoreIdentity {
                    pid: u32_at(desc + 24) as i32,
                    uid: u32_at(desc + 16),
                    fname: fname[..len].to_vec(),
                };
            }
            at = desc + descsz.div_ceil(4) * 4;
        }
    }
    panic!("no NT_PRPSINFO note in the core");
}

/// Where the last segment of an ELF64 core ends (its program headers'
/// largest `p_offset + p_filesz`): the length of a complete core file.
pub fn elf_core_extent(bytes: &[u8]) -> u64 {
    let u16_at = |o: usize| u16::from_le_bytes(bytes[o..o + 2].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap());
    let (phoff, phentsize, phnum) = (
        u64_at(32) as usize,
        u16_at(54) as usize,
        u16_at(56) as usize,
    );
    (0..phnum)
        .map(|index| {
            let ph = phoff + index * phentsize;
            u64_at(ph + 8) + u64_at(ph + 32)
        })
        .max()
        .unwrap_or(0)
}

/// gdb's backtrace of `core` (for `exe`).
pub fn gdb_backtrace(exe: &Path, core: &Path) -> String {
    let output = run_bounded(
        Command::new("gdb")
            .args(["-nx", "-batch", "-ex", "bt"])
            .arg(exe)
            .arg(core),
        Duration::from_secs(120),
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Users an access ACL grants read to, as `getfacl` shows them.
pub fn acl_users(path: &Path) -> Vec<String> {
    let output = Command::new("getfacl")
        .args(["--omit-header", "--numeric"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run getfacl (apt-get install -y acl): {e}"));
    assert!(
        output.status.success(),
        "getfacl {}: {output:?}",
        path.display()
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.strip_prefix("user:"))
        .filter(|entry| !entry.starts_with(':'))
        .map(str::to_owned)
        .collect()
}

/// Whether `uid` (with gid `gid` and no other group) can read `path`.
pub fn readable_by(uid: u32, gid: u32, path: &Path) -> bool {
    Command::new("setpriv")
        .args([
            &format!("--reuid={uid}"),
            &format!("--regid={gid}"),
            "--clear-groups",
            "--",
            "/bin/cat",
        ])
        .arg(path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("running setpriv")
        .success()
}

/// The file mode bits of `path` (not following a symlink).
pub fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

/// A syslog socket the handler can be pointed at (`syslog_socket`), to read
/// what it logged.
pub struct SyslogListener {
    pub path: PathBuf,
    socket: std::os::unix::net::UnixDatagram,
}

impl SyslogListener {
    pub fn bind(dir: &Path) -> SyslogListener {
        let path = dir.join("log.sock");
        let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        socket.set_nonblocking(true).unwrap();
        SyslogListener { path, socket }
    }

    /// The messages received so far.
    pub fn messages(&self) -> Vec<String> {
        let mut messages = Vec::new();
        let mut buffer = vec![0u8; 65536];
        while let Ok(length) = self.socket.recv(&mut buffer) {
            messages.push(String::from_utf8_lossy(&buffer[..length]).into_owned());
        }
        messages
    }
}

/// A tmpfs mounted for one test, unmounted when dropped.
pub struct Tmpfs(pub PathBuf);

impl Tmpfs {
    pub fn mount(path: &Path, options: &str) -> Tmpfs {
        fs::create_dir_all(path).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(path)
            .status()
            .expect("running mount");
        assert!(
            status.success(),
            "mount -t tmpfs -o {options} {}",
            path.display()
        );
        Tmpfs(path.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}
