//! A restart of the crash service never drops a crash: its listening socket
//! is held apart from the process that serves it. With `serve --hold` (no
//! systemd), the service is SIGKILLed in the middle of a storm of real
//! crashes sent by the real kernel (`@@` core_pattern): the crashes that
//! arrive meanwhile wait in the held socket's backlog, the holder starts
//! the service again, and every crash is recorded with its complete core.
//! `status` says in words what a crash meets while no service answers.
//! Killed while it has accepted crashes (one being read, held mid-core by
//! a chained command that does not read yet, the others waiting for a
//! worker within their uid's share), the service loses none of them: each
//! accepted crash has a process of its own that outlives it.
//! With systemd's socket activation, run by systemd's own
//! `systemd-socket-activate` (it passes LISTEN_FDS as PID 1 does), the
//! service takes the socket it is given and leaves it in place when it
//! stops.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use testsupport::handler::*;
use testsupport::machine_dirs::in_private_machine_dirs;
use testsupport::process::{children_of, output_text, run_bounded, signal};
use testsupport::service::*;
use testsupport::{handler_binary, unique_name, CorePatternGuard, TempDir};

/// A traced program that crashes once told to ("go" on its stdin).
fn gated_crasher() -> (Child, i32) {
    testsupport::crasher::gated_crasher(&[&unique_name("restart"), "1", "segv"])
}

/// Lets `count` crashers go at once; their pids.
fn storm(count: usize) -> Vec<(Child, i32)> {
    let mut crashers: Vec<(Child, i32)> = (0..count).map(|_| gated_crasher()).collect();
    for (child, _) in &mut crashers {
        child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    }
    crashers
}

/// Every crasher dumped core and has its record with a complete core.
fn all_recorded(crashers: Vec<(Child, i32)>, cores: &Path) {
    for (mut child, pid) in crashers {
        let status = child.wait().unwrap();
        assert!(core_dumped(&status), "process {pid}: {status:?}");
        let (_, record) = wait_for_record(cores, pid);
        assert_eq!(record["core"]["complete"], true, "{record:#}");
    }
}

/// The crash service the holder runs now (its one child).
fn serving_child(holder: u32) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let children = children_of(holder as i32);
        if let [(pid, _)] = children.as_slice() {
            return *pid;
        }
        assert!(
            Instant::now() < deadline,
            "the holder runs {children:?}, not one service"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `status`, in a private view of the machine's configuration and core
/// directory (it reads the default ones in socket mode).
fn status_text(backup: &Path) -> String {
    in_private_machine_dirs(|| {
        output_text(&run_bounded(
            Command::new(handler_binary!()).args(["status", "--backup", backup.to_str().unwrap()]),
            Duration::from_secs(120),
        ))
    })
}

/// `serve --hold` with `workers` workers on a socket of its own (its log
/// and a backup that says nothing is installed in `dir`), and the kernel's
/// core_pattern pointed at it (`@@`) under the returned guard.
fn held_service(
    dir: &Path,
    config: &Path,
    workers: usize,
) -> (
    CorePatternGuard,
    std::path::PathBuf,
    std::path::PathBuf,
    Service,
) {
    let guard = CorePatternGuard::acquire();
    let socket = unique_socket();
    let backup = dir.join("none.bkp");
    let holder = Service::start_with_args(
        handler_binary!(),
        config,
        &socket,
        &backup,
        &dir.join("serve.log"),
        &["--hold", "--workers", &workers.to_string()],
    );
    guard.set_pipe_limit(64);
    guard.set(&format!("@@{}", socket.display()));
    (guard, socket, backup, holder)
}

#[test]
fn a_service_killed_mid_storm_loses_no_crash_while_its_socket_is_held() {
    let dir = TempDir::new("lcds-hold");
    let cores = dir.path().join("cores");
    let config = dir.path().join("config.toml");
    // No rate limit: every crash of the storm (one program) keeps its core.
    fs::write(
        &config,
        config_for(
            &cores,
            "max_cores_per_minute = 0\nmax_cores_per_user_per_minute = 0",
        ),
    )
    .unwrap();
    let (guard, socket, backup, mut holder) = held_service(dir.path(), &config, 4);

    // The storm starts with the service at work.
    all_recorded(storm(3), &cores);

    // Then the service stops answering (SIGSTOP) while crashes keep
    // coming: each waits in the backlog, its process held by the kernel.
    let first = serving_child(holder.pid());
    assert!(signal(first, libc::SIGSTOP));
    let waiting = storm(8);
    let deadline = Instant::now() + Duration::from_secs(120);
    while queued_connections(&socket) < 8 {
        assert!(
            Instant::now() < deadline,
            "{} of 8 crashes queued",
            queued_connections(&socket)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let report = status_text(&backup);
    assert!(
        report.contains("listener: NOT ANSWERING: crashes wait in the socket's backlog"),
        "{report}"
    );
    // The service is killed outright: the holder starts it again, and the
    // new service takes every crash that waited.
    assert!(signal(first, libc::SIGKILL));
    all_recorded(waiting, &cores);
    let second = serving_child(holder.pid());
    assert_ne!(second, first);
    let text = holder.log_text();
    assert!(
        text.contains(&format!(
            "the crash service (serve {first}) ended (signal: 9"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("started the crash service (serve {second})")),
        "{text}"
    );
    assert!(text.contains("held by serve --hold"), "{text}");

    // Killed again as crashes arrive: whether they come before or after
    // the restart, none is lost.
    assert!(signal(second, libc::SIGKILL));
    all_recorded(storm(4), &cores);
    let report = status_text(&backup);
    assert!(report.contains("listener: alive"), "{report}");

    // SIGTERM to the holder: the service stops, then the holder, and the
    // socket goes with it.
    let stopped = holder.signal_and_wait(libc::SIGTERM);
    assert!(stopped.success(), "{stopped:?}: {}", holder.log_text());
    assert!(!socket.exists());
    drop(guard);
}

/// Connections the service (or a process of its) accepted on `socket` and
/// still holds: the accepted ends carry the listening socket's name.
fn accepted_connections(socket: &Path) -> usize {
    let output = Command::new("ss")
        .args(["-xH", "state", "established", "src"])
        .arg(socket)
        .output()
        .expect("running ss (apt-get install -y iproute2)");
    String::from_utf8_lossy(&output.stdout).lines().count()
}

#[test]
fn a_service_killed_with_crashes_being_read_and_waiting_for_a_worker_loses_none() {
    let dir = TempDir::new("lcds-inflight");
    let cores = dir.path().join("cores");
    let config = dir.path().join("config.toml");
    let started = dir.path().join("chain-started");
    let release = dir.path().join("release");
    // One crash of the uid at a time (the others wait for a worker, in the
    // fair queue); each crash's chained command reads nothing until the
    // test says so: the crash it serves is held in the middle of its core
    // (the kernel's bytes beyond the pipe's and the socket's buffers wait).
    let chain = format!(
        "while [ ! -e {release} ]; do touch {started}; sleep 0.05; done; exec cat > /dev/null",
        release = release.display(),
        started = started.display()
    );
    fs::write(
        &config,
        config_for(
            &cores,
            &format!(
                "max_cores_per_minute = 0\nmax_cores_per_user_per_minute = 0\n\
                 max_crashes_in_progress_per_user = 1\n\
                 [chain]\ncommand = [\"/bin/sh\", \"-c\", {chain:?}]\n\
                 stall_timeout = 3600\nexit_timeout = 60\n"
            ),
        ),
    )
    .unwrap();
    let (guard, socket, _backup, mut holder) = held_service(dir.path(), &config, 2);

    // Six crashes of one uid: the first is read until its chained command
    // stops taking the core, the five others are accepted and wait for a
    // worker (their uid holds its share).
    let first_storm = storm(6);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !(started.exists() && accepted_connections(&socket) == 6) {
        assert!(
            Instant::now() < deadline,
            "{} of 6 crashes accepted, chain started: {}: {}",
            accepted_connections(&socket),
            started.exists(),
            holder.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(queued_connections(&socket), 0);
    // None is recorded yet: the first is held, the others wait.
    let records = fs::read_dir(&cores)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .count();
    assert_eq!(records, 0);

    // The service is killed outright, and the storm goes on: the next
    // crashes wait in the held socket for the service the holder starts
    // again.
    let first = serving_child(holder.pid());
    assert!(signal(first, libc::SIGKILL));
    let second_storm = storm(4);
    fs::write(&release, "").unwrap();
    all_recorded(first_storm, &cores);
    all_recorded(second_storm, &cores);
    let second = serving_child(holder.pid());
    assert_ne!(second, first);
    let text = holder.log_text();
    assert!(
        text.contains("the crash service ended while this crash waited for a worker"),
        "{text}"
    );

    let stopped = holder.signal_and_wait(libc::SIGTERM);
    assert!(stopped.success(), "{stopped:?}: {}", holder.log_text());
    drop(guard);
}

#[test]
fn socket_activation_by_systemds_own_code_passes_the_socket_the_service_keeps() {
    let dir = TempDir::new("lcds-activate");
    let cores = dir.path().join("cores");
    let config = dir.path().join("config.toml");
    fs::write(&config, config_for(&cores, "")).unwrap();
    let guard = CorePatternGuard::acquire();
    let socket = unique_socket();
    let socket_dir = socket.parent().unwrap();
    fs::create_dir_all(socket_dir).unwrap();
    fs::set_permissions(
        socket_dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let log = dir.path().join("serve.log");
    /// Killed when dropped, also when the test fails.
    struct KillOnDrop(Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    // systemd-socket-activate binds the socket, then runs the service with
    // it as descriptor 3 (LISTEN_FDS=1, LISTEN_PID its own).
    let activate = |serve_socket: &Path| {
        KillOnDrop(
            Command::new("systemd-socket-activate")
                .arg("--listen")
                .arg(&socket)
                .arg(handler_binary!())
                .arg("serve")
                .arg("--socket")
                .arg(serve_socket)
                .arg("--config")
                .arg(&config)
                .arg("--backup")
                .arg(dir.path().join("none.bkp"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(fs::File::create(&log).unwrap())
                .spawn()
                .expect("systemd-socket-activate (apt-get install -y systemd)"),
        )
    };

    // Like systemd, it starts the service on the first connection.
    let first_connection = || {
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(
                Instant::now() < deadline,
                "{}",
                fs::read_to_string(&log).unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };

    // A socket that is not the one the service is told to serve: refused.
    let mut wrong = activate(&socket_dir.join("other"));
    first_connection();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = wrong.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "{}",
            fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success());
    let text = fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("the service manager passed no listening socket on")
            && text.contains(&socket.display().to_string()),
        "{text}"
    );
    let _ = fs::remove_file(&socket);

    // The first crash starts the service, which takes it from the socket
    // it is given, then the next.
    let mut service = activate(&socket);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !socket.exists() {
        assert!(
            Instant::now() < deadline,
            "{}",
            fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    guard.set_pipe_limit(64);
    guard.set(&format!("@@{}", socket.display()));
    all_recorded(storm(2), &cores);
    let text = fs::read_to_string(&log).unwrap();
    assert!(text.contains("passed by the service manager"), "{text}");
    // Only root may connect to what the manager bound.
    let mode = fs::metadata(&socket).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );

    // Stopped, the service leaves the socket to the manager that made it.
    assert!(signal(service.0.id() as i32, libc::SIGTERM));
    let status = service.0.wait().unwrap();
    assert!(
        status.success(),
        "{status:?}: {}",
        fs::read_to_string(&log).unwrap()
    );
    assert!(socket.exists(), "the service removed the manager's socket");
    drop(guard);
    let _ = fs::remove_dir_all(socket_dir);
}
