//! The crash service's life with the real kernel: `install --socket`
//! refuses unless the service answers, then chooses `@@`; the service
//! puts the pipe line back when it stops cleanly (SIGTERM) and the socket
//! line when it starts again; `status` says whether the listener is alive
//! and warns loudly when core_pattern points at a socket nobody serves;
//! and a service killed (SIGKILL) in the middle of a crash: what the kernel
//! does, what is left, and how a restart recovers.

use std::fs;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use testsupport::core_file::*;
use testsupport::handler::*;
use testsupport::machine_dirs::in_private_machine_dirs;
use testsupport::service::*;
use testsupport::{crasher_command, unique_name, wait_for_path, CorePatternGuard, TempDir};
use testsupport::{handler_binary, ready_pid, run_bounded};

fn core_pattern() -> String {
    fs::read_to_string("/proc/sys/kernel/core_pattern")
        .unwrap()
        .trim_end_matches('\n')
        .to_string()
}

fn lttng_coredump(args: &[&str]) -> Output {
    run_bounded(
        Command::new(handler_binary!()).args(args),
        Duration::from_secs(120),
    )
}

/// `status`, in a private view of the machine's configuration and core
/// directory (it reads the default ones in socket mode).
fn run_status(args: &[&str]) -> Output {
    in_private_machine_dirs(|| {
        run_bounded(
            Command::new(handler_binary!()).arg("status").args(args),
            Duration::from_secs(120),
        )
    })
}

fn install_socket(socket: &Path, binary: &Path, config: &Path, backup: &Path) -> Output {
    lttng_coredump(&[
        "install",
        "--socket",
        socket.to_str().unwrap(),
        "--binary",
        binary.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--backup",
        backup.to_str().unwrap(),
    ])
}

fn crash() -> (i32, Output) {
    let output = run_bounded(
        crasher_command().args([&unique_name("s"), "1", "segv"]),
        CRASH_TIMEOUT,
    );
    assert!(!output.status.success());
    (ready_pid(&output), output)
}

fn text_of(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn install_socket_needs_the_service_and_a_clean_stop_puts_the_pipe_line_back() {
    let dir = TempDir::new("lcds-install");
    let cores = dir.path().join("cores");
    let guard = CorePatternGuard::acquire();
    guard.set("core");
    guard.set_pipe_limit(0);
    let (binary, config) = short_handler_copy(handler_binary!(), &config_for(&cores, ""));
    let backup = dir.path().join("core_pattern.bkp");
    let socket = unique_socket();

    // Nothing listens: refused, nothing changed.
    let refused = install_socket(&socket, &binary, &config, &backup);
    assert!(!refused.status.success());
    assert!(
        text_of(&refused).contains("refusing to send cores to"),
        "{}",
        text_of(&refused)
    );
    assert_eq!(core_pattern(), "core");
    assert!(!backup.exists());

    // Something listens but is not the service (never answers): refused.
    fs::create_dir_all(socket.parent().unwrap()).unwrap();
    let foreign = UnixListener::bind(&socket).unwrap();
    let refused = install_socket(&socket, &binary, &config, &backup);
    assert!(!refused.status.success());
    assert!(
        text_of(&refused).contains("did not answer"),
        "{}",
        text_of(&refused)
    );
    assert_eq!(core_pattern(), "core");
    drop(foreign);
    fs::remove_dir_all(socket.parent().unwrap()).unwrap();

    // The service answers: this kernel (6.17+) takes the request protocol.
    let log = dir.path().join("serve.log");
    let mut service = Service::start_with(handler_binary!(), &config, &socket, &backup, &log);
    let installed = install_socket(&socket, &binary, &config, &backup);
    assert!(installed.status.success(), "{}", text_of(&installed));
    let socket_line = format!("@@{}", socket.display());
    assert!(
        text_of(&installed).contains(&format!("installed: {socket_line} (the request protocol")),
        "{}",
        text_of(&installed)
    );
    assert_eq!(core_pattern(), socket_line);
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/core_pipe_limit")
            .unwrap()
            .trim(),
        "64"
    );
    let status = run_status(&["--backup", backup.to_str().unwrap()]);
    assert!(
        text_of(&status).contains("handler: installed"),
        "{}",
        text_of(&status)
    );
    assert!(
        text_of(&status).contains("listener: alive"),
        "{}",
        text_of(&status)
    );
    let (pid, _) = crash();
    wait_for_record(&cores, pid);

    // SIGTERM: the pipe line is back before the service ends, and a crash
    // goes to the pipe handler.
    let stopped = service.signal_and_wait(libc::SIGTERM);
    assert!(stopped.success(), "{stopped:?}: {}", service.log_text());
    let pipe_line = handler_line(&binary, &config);
    assert_eq!(core_pattern(), pipe_line);
    assert!(!socket.exists());
    assert!(service
        .log_text()
        .contains("core_pattern set back to the pipe line"));
    let status = run_status(&["--backup", backup.to_str().unwrap()]);
    assert!(
        text_of(&status).contains("socket mode: installed")
            && text_of(&status).contains("not running"),
        "{}",
        text_of(&status)
    );
    let (pid, output) = crash();
    let (_, record) = wait_for_record(&cores, pid);
    assert_eq!(record["core"]["complete"], true, "{record:#}");
    assert!(core_dumped(&output.status));

    // Started again: the socket line again.
    let service = Service::start_with(handler_binary!(), &config, &socket, &backup, &log);
    let deadline = Instant::now() + Duration::from_secs(30);
    while core_pattern() != socket_line {
        assert!(Instant::now() < deadline, "{}", service.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    let (pid, _) = crash();
    let (_, record) = wait_for_record(&cores, pid);
    assert_eq!(record["core"]["complete"], true, "{record:#}");

    // Uninstall puts back exactly what was there.
    let uninstalled = lttng_coredump(&["uninstall", "--backup", backup.to_str().unwrap()]);
    assert!(uninstalled.status.success(), "{}", text_of(&uninstalled));
    assert_eq!(core_pattern(), "core");
    drop(service);
    drop(guard);
    let _ = fs::remove_file(&binary);
    let _ = fs::remove_file(&config);
}

#[test]
fn status_warns_loudly_when_core_pattern_points_at_a_socket_nobody_serves() {
    // A stand-in for /proc/sys/kernel: the real one is not touched.
    let dir = TempDir::new("lcds-status");
    let kernel = dir.path().join("kernel");
    fs::create_dir_all(&kernel).unwrap();
    let socket = unique_socket();
    fs::write(
        kernel.join("core_pattern"),
        format!("@@{}\n", socket.display()),
    )
    .unwrap();
    fs::write(kernel.join("core_pipe_limit"), "64\n").unwrap();
    let status = run_status(&[
        "--proc-sys-kernel",
        kernel.to_str().unwrap(),
        "--backup",
        dir.path().join("none.bkp").to_str().unwrap(),
    ]);
    let report = text_of(&status);
    assert!(
        report.contains("listener: NONE: every core is being dropped now"),
        "{report}"
    );
    assert!(report.contains("THE KERNEL DROPS EVERY CORE"), "{report}");
    assert!(report.contains(&socket.display().to_string()), "{report}");
}

#[test]
fn a_service_killed_mid_crash_loses_that_core_and_a_restart_recovers() {
    let dir = TempDir::new("lcds-kill");
    let cores = dir.path().join("cores");
    let guard = CorePatternGuard::acquire();
    let socket = unique_socket();
    let config = dir.path().join("config.toml");
    fs::write(&config, config_for(&cores, "")).unwrap();
    let log = dir.path().join("serve.log");
    let backup = dir.path().join("none.bkp");
    let mut service = Service::start_with(handler_binary!(), &config, &socket, &backup, &log);
    guard.set_pipe_limit(16);
    let socket_line = format!("@@{}", socket.display());
    guard.set(&socket_line);

    // 1) Killed with a crash in its queue: the service is stopped
    // (SIGSTOP), the kernel connects and waits for the answer to its
    // request, holding the process; then SIGKILL.
    // Our own child, not yet reaped.
    assert!(testsupport::process::signal(
        service.pid() as i32,
        libc::SIGSTOP
    ));
    let crasher = std::thread::spawn(crash);
    let deadline = Instant::now() + Duration::from_secs(120);
    while queued_connections(&socket) == 0 {
        assert!(Instant::now() < deadline, "the kernel never connected");
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = service.signal_and_wait(libc::SIGKILL);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&killed),
        Some(9)
    );
    // The kernel got no answer: the process died without a core, and
    // nothing was written.
    let (_, output) = crasher.join().unwrap();
    assert!(!core_dumped(&output.status), "{:?}", output.status);
    assert!(names_in(&cores).is_empty(), "{:?}", names_in(&cores));

    // 2) While nothing listens, the kernel cannot connect (the socket file
    // is stale: SIGKILL left no time to put the pipe line back) and the
    // core is lost.
    assert_eq!(core_pattern(), socket_line);
    assert!(socket.exists());
    let (_, output) = crash();
    assert!(!core_dumped(&output.status), "{:?}", output.status);
    assert!(names_in(&cores).is_empty(), "{:?}", names_in(&cores));

    // 3) Restarted, it replaces the stale socket and takes crashes again.
    let mut service = Service::start_with(handler_binary!(), &config, &socket, &backup, &log);
    let (pid, output) = crash();
    let (_, record) = wait_for_record(&cores, pid);
    assert_eq!(record["core"]["complete"], true, "{record:#}");
    assert!(core_dumped(&output.status));

    // 4) Killed after the core was read, while a chained command that
    // took the whole core but never ends is waited for: the crash is
    // handled by a process of its own, which outlives the service: once
    // the chained command ends, its record is written beside the complete
    // core.
    let mark = dir.path().join("chain.pid");
    fs::write(
        &config,
        config_for(
            &cores,
            &format!(
                "[chain]\ncommand = [\"/bin/sh\", \"-c\", \"cat > /dev/null; echo $$ > {0}.tmp && mv {0}.tmp {0} && exec sleep 600\"]\n\
                 stall_timeout = 600\nexit_timeout = 600\n",
                mark.display()
            ),
        ),
    )
    .unwrap();
    let before = names_in(&cores);
    let (pid, output) = crash();
    assert!(core_dumped(&output.status), "{:?}", output.status);
    assert!(wait_for_path(&mark, Duration::from_secs(120)));
    let core_name = |pid: i32| {
        names_in(&cores)
            .into_iter()
            .find(|name| name.contains(&format!(".{pid}.")) && !name.ends_with(".json"))
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while core_name(pid).is_none() {
        assert!(Instant::now() < deadline, "{:?}", names_in(&cores));
        std::thread::sleep(Duration::from_millis(20));
    }
    service.signal_and_wait(libc::SIGKILL);
    let chain_pid: i32 = fs::read_to_string(&mark).unwrap().trim().parse().unwrap();
    // The sleep the test's own chained command became.
    testsupport::process::signal(chain_pid, libc::SIGKILL);
    let (_, record) = wait_for_record(&cores, pid);
    assert_eq!(record["core"]["complete"], true, "{record:#}");
    let after = names_in(&cores);
    assert!(after.len() > before.len() + 1, "{after:?}");
    let core = cores.join(core_name(pid).unwrap());
    assert_eq!(elf_core_identity(&fs::read(&core).unwrap()).pid, pid);
    drop(guard);
}

#[test]
fn the_unit_files_hold_the_socket_run_the_service_as_root_and_pass_systemd_analyze() {
    let units = testsupport::workspace_root().join("handler/systemd");
    let service = fs::read_to_string(units.join("lttng-coredump.service")).unwrap();
    let socket = fs::read_to_string(units.join("lttng-coredump.socket")).unwrap();
    for (text, line) in [
        (&service, "ExecStart=/usr/bin/lttng-coredump serve"),
        (&service, "User=root"),
        (&service, "Restart=always"),
        (&service, "Requires=lttng-coredump.socket"),
        (&socket, "ListenStream=/run/lttng-coredump/coredump.socket"),
        (&socket, "SocketMode=0600"),
        (&socket, "DirectoryMode=0700"),
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing");
    }
    // The socket unit's path is the service's default.
    assert!(socket.contains(&format!("ListenStream={}\n", lttng_coredump_socket())));
    // systemd checks both with the binary where this build has it.
    let dir = TempDir::new("lcds-unit");
    fs::write(
        dir.path().join("lttng-coredump.service"),
        service.replace(
            "/usr/bin/lttng-coredump",
            handler_binary!().to_str().unwrap(),
        ),
    )
    .unwrap();
    fs::write(dir.path().join("lttng-coredump.socket"), &socket).unwrap();
    let verify = run_bounded(
        // The man pages they name are the package's (its test checks them
        // installed).
        Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(dir.path().join("lttng-coredump.socket"))
            .arg(dir.path().join("lttng-coredump.service")),
        Duration::from_secs(60),
    );
    let complaints: Vec<&str> = std::str::from_utf8(&verify.stderr)
        .unwrap()
        .lines()
        // Units of other packages it names for ordering only.
        .filter(|l| {
            !l.contains("lttng-sessiond.service")
                && !l.contains("apport.service")
                && !l.contains("systemd-coredump-register.service")
        })
        .collect();
    assert!(
        verify.status.success() && complaints.is_empty(),
        "{}",
        text_of(&verify)
    );
}

/// The service's default socket, as `serve --help` says it.
fn lttng_coredump_socket() -> String {
    let help = text_of(&lttng_coredump(&["serve", "--help"]));
    let start = help.find("[default: ").expect("a default socket") + "[default: ".len();
    help[start..][..help[start..].find(']').unwrap()].to_string()
}

#[test]
fn a_clean_stop_finishes_the_crashes_already_queued() {
    let dir = TempDir::new("lcds-drain");
    let cores = dir.path().join("cores");
    let guard = CorePatternGuard::acquire();
    let socket = unique_socket();
    let config = dir.path().join("config.toml");
    fs::write(&config, config_for(&cores, "")).unwrap();
    let log = dir.path().join("serve.log");
    let mut service = Service::start_with(
        handler_binary!(),
        &config,
        &socket,
        &dir.path().join("none.bkp"),
        &log,
    );
    guard.set_pipe_limit(16);
    guard.set(&format!("@@{}", socket.display()));
    // Stopped, the service leaves the kernel's connection in its queue;
    // SIGTERM arrives while it is there.
    // Our own child, not yet reaped.
    assert!(testsupport::process::signal(
        service.pid() as i32,
        libc::SIGSTOP
    ));
    let crasher = std::thread::spawn(crash);
    let deadline = Instant::now() + Duration::from_secs(120);
    while queued_connections(&socket) == 0 {
        assert!(Instant::now() < deadline, "the kernel never connected");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(testsupport::process::signal(
        service.pid() as i32,
        libc::SIGTERM
    ));
    assert!(testsupport::process::signal(
        service.pid() as i32,
        libc::SIGCONT
    ));
    let (pid, output) = crasher.join().unwrap();
    assert!(core_dumped(&output.status), "{:?}", output.status);
    let (_, record) = wait_for_record(&cores, pid);
    assert_eq!(record["core"]["complete"], true, "{record:#}");
    let stopped = service.signal_and_wait(0);
    assert!(stopped.success(), "{stopped:?}: {}", service.log_text());
    drop(guard);
}
