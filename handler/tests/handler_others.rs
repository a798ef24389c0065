//! Living with the other crash handlers, with the real systemd-coredump
//! package of this machine: `status` and `install` name systemd-coredump
//! in both its forms and apport, and say what will own core_pattern after
//! the next boot; `install --persist` keeps the handler's line across a
//! boot against each of them, and `--chain-previous` hands every core on
//! to systemd-coredump, whose own socket (systemd-coredump.socket, run
//! here by systemd's `systemd-socket-activate` as PID 1 would run it)
//! stores it where coredumpctl finds it: with the real systemd-journald
//! run standalone (`testsupport::journald`) taking systemd-coredump's
//! entry, `coredumpctl info` and `coredumpctl dump` find the crash our
//! handler chained to it.
//!
//! A boot is simulated: the kernel's defaults, then every sysctl.d file
//! (`sysctl --system`, with the package's real 50-coredump.conf), then the
//! services that write their own line when they start. systemd is not PID
//! 1 here, so those services are reproduced by a unit-less script that
//! does what systemd does with their units: nothing for a masked unit,
//! else the `kernel.core_pattern=` its ExecStart gives `systemd-sysctl
//! --inline` (systemd-coredump-register.service), or apport's line.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use testsupport::core_pattern::kernel_core_pattern;
use testsupport::crasher::crasher_command;
use testsupport::handler::*;
use testsupport::handler_binary;
use testsupport::journald::StandaloneJournald;
use testsupport::machine_dirs::in_private_machine_dirs;
use testsupport::process::output_text;
use testsupport::{unique_name, CorePatternGuard, TempDir};

const OURS: &str = "/etc/sysctl.d/90-lttng-coredump.conf";
const SYSTEMD_SYSCTL: &str = "/usr/lib/sysctl.d/50-coredump.conf";
const REGISTER: &str = "systemd-coredump-register.service";
const SOCKET_LINE: &str = "@@/run/systemd/coredump-kernel";
const STORE: &str = "/var/lib/systemd/coredump";

/// The line systemd-coredump's package puts in core_pattern at boot.
fn systemd_pipe_line() -> String {
    let text = fs::read_to_string(SYSTEMD_SYSCTL)
        .unwrap_or_else(|e| panic!("{SYSTEMD_SYSCTL}: {e} (apt-get install -y systemd-coredump)"));
    text.lines()
        .find_map(|l| l.strip_prefix("kernel.core_pattern="))
        .expect("its core_pattern")
        .trim()
        .to_string()
}

/// What systemd does at boot with the units that write core_pattern.
const START_SERVICES: &str = r#"
etc=$1; lib=$2
masked() { [ "$(readlink "$etc/$1")" = /dev/null ]; }
unit=$lib/systemd-coredump-register.service
if [ -e "$unit" ] && ! masked systemd-coredump-register.service; then
  line=$(sed -n 's/^ExecStart=.*--inline "kernel\.core_pattern=\(.*\)"$/\1/p' "$unit")
  sysctl -q -w "kernel.core_pattern=$line"
fi
if [ -e "$etc/multi-user.target.wants/apport.service" ] && ! masked apport.service; then
  sysctl -q -w "kernel.core_pattern=|/usr/share/apport/apport -p%p -s%s -c%c -d%d -P%P -u%u -g%g -F%F -- %E"
fi
"#;

/// systemd-coredump's own socket (`systemd-coredump.socket`: one
/// `systemd-coredump` per connection, which stores the core), run by
/// systemd's `systemd-socket-activate`; stopped when dropped.
struct CoredumpSocket(Child);

impl CoredumpSocket {
    const PATH: &'static str = "/run/systemd/coredump";

    fn start(log: &Path) -> CoredumpSocket {
        assert!(
            !Path::new(Self::PATH).exists(),
            "{} is taken: is systemd-coredump.socket running?",
            Self::PATH
        );
        let child = Command::new("systemd-socket-activate")
            .args(["--seqpacket", "--accept", "--listen", Self::PATH])
            .arg("/lib/systemd/systemd-coredump")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(log).unwrap())
            .spawn()
            .expect("systemd-socket-activate (apt-get install -y systemd)");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !Path::new(Self::PATH).exists() {
            assert!(
                Instant::now() < deadline,
                "{}",
                fs::read_to_string(log).unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        CoredumpSocket(child)
    }
}

impl Drop for CoredumpSocket {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = fs::remove_file(Self::PATH);
    }
}

/// What makes the storing `systemd-coredump` log to a standalone
/// journald: a mount namespace of its own where `/run/systemd` is a
/// tmpfs whose `journal` is journald's (its native socket there, where
/// systemd-coredump sends its entry), and the listening socket in a
/// directory of the test's, which `/run/systemd/coredump` (where the
/// chained pipe helper connects, in the handler's namespace) links to.
const STORE_LOGGING_TO_JOURNALD: &str = r#"set -e
mount -t tmpfs -o mode=0755 tmpfs /run/systemd
mkdir /run/systemd/journal
mount --bind "$1" /run/systemd/journal
exec systemd-socket-activate --seqpacket --accept --listen "$2" /lib/systemd/systemd-coredump
"#;

impl CoredumpSocket {
    /// [`CoredumpSocket::start`], the entries going to `journald`; the
    /// socket made in `dir`.
    fn start_logging_to(log: &Path, journald: &StandaloneJournald, dir: &Path) -> CoredumpSocket {
        assert!(
            fs::symlink_metadata(Self::PATH).is_err(),
            "{} is taken: is systemd-coredump.socket running?",
            Self::PATH
        );
        let listen = dir.join("coredump.socket");
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(STORE_LOGGING_TO_JOURNALD)
            .arg("sh")
            .arg(journald.socket().parent().unwrap())
            .arg(&listen)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(log).unwrap())
            .spawn()
            .expect("unshare and systemd-socket-activate (apt-get install -y util-linux systemd)");
        let store = CoredumpSocket(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !listen.exists() {
            assert!(
                Instant::now() < deadline,
                "{}",
                fs::read_to_string(log).unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::os::unix::fs::symlink(&listen, Self::PATH).unwrap();
        store
    }
}

/// The core systemd-coredump stored for `pid` (waited for), removed.
fn take_stored_core(pid: i32) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found = fs::read_dir(STORE).ok().and_then(|entries| {
            entries.flatten().map(|e| e.path()).find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .contains(&format!(".{pid}."))
            })
        });
        if let Some(core) = found {
            fs::remove_file(&core).unwrap();
            return core;
        }
        assert!(
            Instant::now() < deadline,
            "systemd-coredump stored no core for process {pid} in {STORE}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Machine {
    guard: CorePatternGuard,
    etc: PathBuf,
    lib: PathBuf,
    binary: PathBuf,
    config: PathBuf,
    backup: PathBuf,
    cores: PathBuf,
    _dir: TempDir,
}

impl Machine {
    fn new(name: &str) -> Machine {
        let dir = TempDir::new(name);
        let cores = dir.path().join("cores");
        let (binary, config) = short_handler_copy(handler_binary!(), &config_for(&cores, ""));
        let guard = CorePatternGuard::acquire();
        assert!(
            !Path::new(OURS).exists() && !Path::new("/run/sysctl.d/50-coredump.conf").exists(),
            "{OURS} (or a stand-in for systemd's file) is left from another run"
        );
        let (etc, lib) = (dir.path().join("etc-units"), dir.path().join("lib-units"));
        fs::create_dir_all(etc.join("multi-user.target.wants")).unwrap();
        fs::create_dir_all(&lib).unwrap();
        Machine {
            guard,
            etc,
            lib,
            binary,
            config,
            backup: dir.path().join("core_pattern.bkp"),
            cores,
            _dir: dir,
        }
    }

    /// `lttng-coredump ARGS` with this machine's backup and unit
    /// directories; its whole output.
    fn run(&self, args: &[&str]) -> (bool, String) {
        let mut all: Vec<&str> = args.to_vec();
        all.extend([
            "--backup",
            self.backup.to_str().unwrap(),
            "--unit-dir",
            self.etc.to_str().unwrap(),
            "--unit-dir",
            self.lib.to_str().unwrap(),
        ]);
        let output = run_handler(&self.binary, &all);
        (output.status.success(), output_text(&output))
    }

    fn install(&self, options: &[&str]) -> String {
        let mut args = vec![
            "install",
            "--binary",
            self.binary.to_str().unwrap(),
            "--config",
            self.config.to_str().unwrap(),
        ];
        args.extend(options);
        let (ok, text) = self.run(&args);
        assert!(ok, "{text}");
        text
    }

    /// `status`, in a private view of the machine's own configuration and
    /// core directory (read when the handler is not installed).
    fn status(&self) -> String {
        in_private_machine_dirs(|| self.run(&["status"]).1)
    }

    fn boot(&self) {
        self.guard.simulate_boot();
        let output = Command::new("sh")
            .args(["-c", START_SERVICES, "boot"])
            .arg(&self.etc)
            .arg(&self.lib)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", output_text(&output));
    }

    fn crash(&self) -> (i32, serde_json::Value) {
        crash_and_record(
            crasher_command().args([&unique_name("others"), "1", "segv"]),
            &self.cores,
        )
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        let _ = fs::remove_file(OURS);
        let _ = fs::remove_file(&self.binary);
        let _ = fs::remove_file(&self.config);
    }
}

#[test]
fn systemd_coredumps_pipe_helper_is_named_outlasted_at_boot_and_still_gets_every_core() {
    let machine = Machine::new("lcdt-others-pipe");
    let systemd_line = systemd_pipe_line();
    let log = machine.cores.with_extension("socket.log");
    let _store = CoredumpSocket::start(&log);
    machine.boot();
    assert_eq!(kernel_core_pattern(), systemd_line);
    let report = machine.status();
    assert!(
        report.contains(&format!(
            "other handler: systemd-coredump (pipe helper), from {SYSTEMD_SYSCTL}: {systemd_line}"
        )),
        "{report}"
    );
    assert!(
        report.contains(&format!(
            "after the next boot: {systemd_line} (set by systemd-coredump (pipe helper), \
             {SYSTEMD_SYSCTL})"
        )),
        "{report}"
    );

    let report = machine.install(&["--persist", "--chain-previous"]);
    let line = handler_line(&machine.binary, &machine.config);
    assert!(report.contains("chained"), "{report}");
    assert!(
        report.contains(&format!(
            "after the next boot core_pattern will be {line:?}, set by lttng-coredump ({OURS})"
        )),
        "{report}"
    );
    machine.boot();
    assert_eq!(kernel_core_pattern(), line);
    let (pid, record) = machine.crash();
    assert_eq!(record["core"]["complete"], true, "{record:#}");
    // systemd-coredump got the same crash and stored its core.
    take_stored_core(pid);

    let (ok, text) = machine.run(&["uninstall"]);
    assert!(ok, "{text}");
    machine.boot();
    assert_eq!(kernel_core_pattern(), systemd_line);
}

#[test]
fn systemd_coredumps_socket_form_and_apport_are_masked_by_persist_and_the_socket_form_chained() {
    let machine = Machine::new("lcdt-others-socket");
    let systemd_line = systemd_pipe_line();
    // systemd-coredump's socket form: its register unit, as systemd ships it.
    fs::write(
        machine.lib.join(REGISTER),
        format!(
            "[Unit]\nDescription=Kernel Core Pattern Register\n\n[Service]\nType=oneshot\n\
             ExecStart=/usr/lib/systemd/systemd-sysctl --strict --verify --save=60-coredump \
             --inline \"kernel.core_pattern={SOCKET_LINE}\"\nRemainAfterExit=yes\n"
        ),
    )
    .unwrap();
    let log = machine.cores.with_extension("socket.log");
    let _store = CoredumpSocket::start(&log);
    machine.boot();
    // The service writes after every sysctl.d file: its line wins.
    assert_eq!(kernel_core_pattern(), SOCKET_LINE);
    let report = machine.status();
    let register = machine.lib.join(REGISTER);
    assert!(
        report.contains(&format!(
            "other handler: systemd-coredump (kernel socket), from {}: {SOCKET_LINE}",
            register.display()
        )),
        "{report}"
    );
    assert!(
        report.contains(&format!(
            "after the next boot: {SOCKET_LINE} (set by systemd-coredump (kernel socket)"
        )),
        "{report}"
    );
    // systemd's coredumpd does not run here: nothing serves its socket.
    assert!(
        report.contains("listener: NONE: every core is being dropped now"),
        "{report}"
    );

    let report = machine.install(&["--persist", "--chain-previous"]);
    assert!(report.contains(&format!("masked {REGISTER}")), "{report}");
    assert!(
        report.contains(&format!("chaining to its pipe helper {systemd_line:?}")),
        "{report}"
    );
    let line = handler_line(&machine.binary, &machine.config);
    assert!(
        report.contains(&format!(
            "after the next boot core_pattern will be {line:?}"
        )),
        "{report}"
    );
    assert_eq!(
        fs::read_link(machine.etc.join(REGISTER)).unwrap(),
        Path::new("/dev/null")
    );
    machine.boot();
    assert_eq!(kernel_core_pattern(), line);
    let (pid, record) = machine.crash();
    assert_eq!(record["core"]["complete"], true, "{record:#}");
    take_stored_core(pid);
    assert!(machine
        .status()
        .contains("other handler: systemd-coredump (kernel socket) (masked)"));

    // uninstall unmasks it: the next boot is systemd's again.
    let (ok, text) = machine.run(&["uninstall"]);
    assert!(ok, "{text}");
    assert!(text.contains("unmasked"), "{text}");
    assert!(!machine.etc.join(REGISTER).exists());
    assert_eq!(kernel_core_pattern(), SOCKET_LINE);
    machine.boot();
    assert_eq!(kernel_core_pattern(), SOCKET_LINE);

    // apport, enabled, writes its line after systemd's.
    let apport = machine.lib.join("apport.service");
    fs::write(
        &apport,
        "[Service]\nType=oneshot\nExecStart=/etc/init.d/apport start\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(
        &apport,
        machine.etc.join("multi-user.target.wants/apport.service"),
    )
    .unwrap();
    machine.boot();
    assert!(kernel_core_pattern().starts_with("|/usr/share/apport/apport"));
    let report = machine.status();
    assert!(report.contains("other handler: apport, from"), "{report}");
    assert!(
        report.contains("after the next boot: |/usr/share/apport/apport"),
        "{report}"
    );
    let report = machine.install(&["--persist"]);
    assert!(report.contains("masked apport.service"), "{report}");
    assert!(report.contains(&format!("masked {REGISTER}")), "{report}");
    assert!(report.contains("runs apport"), "{report}");
    machine.boot();
    assert_eq!(kernel_core_pattern(), line);
    let (ok, text) = machine.run(&["uninstall"]);
    assert!(ok, "{text}");
    machine.boot();
    assert!(kernel_core_pattern().starts_with("|/usr/share/apport/apport"));
}

#[test]
fn coredumpctl_finds_the_crash_systemd_coredump_chained_after_ours_stored() {
    let machine = Machine::new("lcdt-others-journal");
    let journald = StandaloneJournald::start();
    let log = machine.cores.with_extension("socket.log");
    let _store = CoredumpSocket::start_logging_to(&log, &journald, machine._dir.path());
    machine.boot();
    assert_eq!(kernel_core_pattern(), systemd_pipe_line());
    let report = machine.install(&["--chain-previous"]);
    assert!(report.contains("chained"), "{report}");

    let (pid, record) = machine.crash();
    assert_eq!(record["core"]["complete"], true, "{record:#}");
    assert_eq!(record["chain"]["complete"], true, "{record:#}");
    // systemd-coredump, run by our handler with its own arguments, stored
    // the core and told the journal, where coredumpctl finds it as it
    // would had systemd-coredump been alone.
    journald.wait_for(&format!("COREDUMP_PID={pid}"));
    let info = journald.coredumpctl(&["info", &pid.to_string()]);
    let text = output_text(&info);
    assert!(info.status.success(), "{text}");
    for said in [
        format!("PID: {pid}"),
        "Signal: 11 (SEGV)".to_string(),
        format!("Storage: {STORE}/"),
        "(present)".to_string(),
    ] {
        assert!(text.contains(&said), "{said:?} not in {text}");
    }
    // And gives back the core the kernel dumped, of that very process.
    let dumped = machine.cores.with_extension("dumped");
    let dump = journald.coredumpctl(&["dump", &pid.to_string(), "-o", dumped.to_str().unwrap()]);
    assert!(dump.status.success(), "{}", output_text(&dump));
    let core = fs::read(&dumped).unwrap();
    assert_eq!(testsupport::core_file::elf_core_identity(&core).pid, pid);
    let _ = fs::remove_file(&dumped);
    take_stored_core(pid);

    let (ok, text) = machine.run(&["uninstall"]);
    assert!(ok, "{text}");
}
