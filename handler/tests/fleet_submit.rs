//! The fleet wired into the handler, end to end: the handler installed in
//! the kernel's core_pattern with a `[submit]` section, a program that
//! crashes, the crash put in the spool under its record's crash_id, and
//! `lttng-coredump submit` (started as root, running as the spool's user)
//! in a host's network namespace sending it to a real
//! systemd-journal-remote on the collector's namespace; with the collector
//! unreachable the crash stays queued (and `status` says why), and once it
//! is back the crash arrives, counted once; with `relayd` set, the
//! crash's snapshot goes to a real lttng-relayd on the collector, named by
//! the crash's ID, and the entry says where.

use lttng_coredump_fleet::collector::{self, ReadOptions};
use lttng_coredump_fleet::relayd;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;
use testsupport::collector::{JournalRemote, Relayd};
use testsupport::crasher::*;
use testsupport::handler::*;
use testsupport::handler_binary;
use testsupport::netns::TestNetwork;
use testsupport::process::run_bounded;
use testsupport::{babeltrace_events, fixture_seqs, unique_name, TempDir, TestUser};

/// `lttng-coredump ARGS` run as root in namespace `ns`.
fn in_netns(network: &TestNetwork, ns: &str, binary: &Path, args: &[&str]) -> Output {
    run_bounded(
        network.command(ns, binary).args(args),
        Duration::from_secs(300),
    )
}

/// The items in the spool's queue once there are `n` (bounded: the
/// handler queues the crash after its record is written, after the kernel
/// let the process go, so the crash's end does not wait for it).
fn wait_for_queued(spool_dir: &Path, n: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + CRASH_TIMEOUT;
    loop {
        let items: Vec<String> = fs::read_dir(spool_dir.join("queue"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        if items.len() >= n || std::time::Instant::now() > deadline {
            return items;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn status_json(binary: &Path, config: &Path, kernel: &Path) -> serde_json::Value {
    let out = run_bounded(
        Command::new(binary)
            .args(["status", "--json", "--config"])
            .arg(config)
            .arg("--proc-sys-kernel")
            .arg(kernel)
            .arg("--backup")
            .arg(kernel.join("backup.json")),
        Duration::from_secs(120),
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

/// One test's collector and host: a network (one host), systemd-journal-remote
/// on the collector, the spool's user, and a directory for the cores and
/// the spool. Dropped in this order: the network's teardown kills what
/// runs in it (the user's daemons) before the user is deleted.
struct Lab {
    remote: JournalRemote,
    network: TestNetwork,
    user: TestUser,
    cores: std::path::PathBuf,
    spool_dir: std::path::PathBuf,
    dir: TempDir,
}

impl Lab {
    fn new(prefix: &str, user: &str, port: u16) -> Lab {
        let dir = TempDir::new(prefix);
        let user = TestUser::create(user, false);
        let network = TestNetwork::new(1);
        let remote = JournalRemote::http(&network, dir.path(), port);
        Lab {
            remote,
            network,
            user,
            cores: dir.path().join("cores"),
            spool_dir: dir.path().join("spool"),
            dir,
        }
    }

    /// The handler's configuration: its cores here, a `[submit]` section
    /// shipping to journal-remote, plus `extra` keys of that section.
    fn config(&self, extra: &str) -> String {
        config_for(
            &self.cores,
            &format!(
                "[submit]\nspool_dir = \"{}\"\nuser = \"{}\"\njournal_remote = \"{}\"\n{extra}\n",
                self.spool_dir.display(),
                self.user.name,
                self.remote.url
            ),
        )
    }

    /// The spool, as install makes it.
    fn create_spool(&self) {
        lttng_coredump_fleet::Spool::create(
            &self.spool_dir,
            lttng_coredump_fleet::SpoolOwner {
                uid: self.user.uid,
                gid: self.user.gid,
            },
        )
        .unwrap();
    }

    /// The crashes journal-remote stored, each counted once.
    fn collected(&self) -> Vec<collector::CollectedCrash> {
        collector::read_journal_dir(&self.remote.journal_dir, &ReadOptions::default())
            .expect("journal-remote's files read")
    }
}

#[test]
fn a_crash_is_spooled_under_its_crash_id_and_reaches_journal_remote_once_even_after_an_outage() {
    let lab = Lab::new("lcd-fleet-wire", "lcdfwire", 19541);
    let (dir, user, network, spool_dir) = (&lab.dir, &lab.user, &lab.network, &lab.spool_dir);
    let handler = InstalledHandler::new(
        handler_binary!(),
        &lab.config("retry_initial = 1\nretry_max = 2\ntimeout = 5"),
    );
    let config = handler.config.to_str().unwrap();

    // install (kernel settings of the test's own) makes the spool, its
    // queue the submitter's user's.
    let kernel = dir.path().join("kernel");
    fs::create_dir_all(&kernel).unwrap();
    fs::write(kernel.join("core_pattern"), "core\n").unwrap();
    fs::write(kernel.join("core_pipe_limit"), "0\n").unwrap();
    let out = run_bounded(
        Command::new(&handler.binary)
            .args(["install", "--config", config, "--proc-sys-kernel"])
            .arg(&kernel)
            .arg("--backup")
            .arg(kernel.join("backup.json")),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "install: {out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("spool"),
        "{out:?}"
    );
    let queue = spool_dir.join("queue");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(fs::metadata(&queue).unwrap().uid(), user.uid);
    assert_eq!(fs::metadata(spool_dir).unwrap().uid(), 0);

    // The crash, through the real core_pattern.
    let tag = unique_name("fw");
    let output = run_bounded(crasher_command().args([&tag, "3", "segv"]), CRASH_TIMEOUT);
    assert!(!output.status.success());
    let pid = ready_pid(&output);
    let (_, record) = wait_for_record(&lab.cores, pid);
    let crash_id = record["crash_id"].as_str().unwrap().to_owned();
    // In the queue under its crash_id, its core kept on this host.
    let items = wait_for_queued(spool_dir, 1);
    assert_eq!(items.len(), 1, "{items:?}");
    assert!(items[0].ends_with(&crash_id), "{items:?} {crash_id}");
    assert!(Path::new(record["core"]["path"].as_str().unwrap()).is_file());

    // The collector unreachable: the submitter (as its user) fails, the
    // crash stays queued, and status says so.
    network.set_collector_link(false);
    let host = network.host(0).to_owned();
    let binary = handler.binary.clone();
    let out = in_netns(network, &host, &binary, &["submit", "--config", config]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(fs::read_dir(&queue).unwrap().count(), 1);
    let status = status_json(&binary, &handler.config, &kernel);
    let spool = &status["spool"]["status"];
    assert_eq!(spool["queued"], 1, "{status}");
    assert_eq!(spool["oldest_unsent"]["crash_id"], crash_id.as_str());
    let destination = &spool["destinations"][0];
    assert!(
        destination["consecutive_failures"].as_u64().unwrap() >= 1,
        "{status}"
    );
    assert!(!destination["last_error"].is_null(), "{status}");
    // The submitter's state is its user's: it never ran as root.
    let state = spool_dir.join("state");
    for entry in fs::read_dir(&state).unwrap() {
        assert_eq!(entry.unwrap().metadata().unwrap().uid(), user.uid);
    }

    // Back: the crash arrives; a second pass sends nothing more.
    network.set_collector_link(true);
    let out = in_netns(network, &host, &binary, &["submit", "--config", config]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(fs::read_dir(&queue).unwrap().count(), 0);
    let out = in_netns(network, &host, &binary, &["submit", "--config", config]);
    assert!(out.status.success(), "{out:?}");
    let crashes = lab.collected();
    let ours: Vec<_> = crashes
        .iter()
        .filter(|c| c.key == crash_id || c.crash_id.as_deref() == Some(crash_id.as_str()))
        .collect();
    assert_eq!(ours.len(), 1, "{crashes:?}");
    assert_eq!(ours[0].copies, 1, "{crashes:?}");
    // The entry is the local journal's: the report's signature groups it.
    assert_eq!(
        ours[0].signature.as_deref(),
        record["report"]["signature"].as_str(),
        "{record}"
    );
    assert_eq!(ours[0].pid.as_deref(), Some(pid.to_string().as_str()));
    // coredumpctl on the collector lists it; the entry says where its core is.
    let list = run_bounded(
        Command::new("coredumpctl")
            .arg("-D")
            .arg(&lab.remote.journal_dir)
            .args(["list", "--no-pager", "--no-legend"]),
        Duration::from_secs(120),
    );
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(listed.contains(&format!(" {pid} ")), "{list:?}");
    assert!(ours[0].core_storage.is_some(), "{:?}", ours[0]);
    let status = status_json(&binary, &handler.config, &kernel);
    assert_eq!(status["spool"]["status"]["queued"], 0, "{status}");
}

#[test]
fn a_crash_snapshot_goes_to_the_collectors_relayd_named_by_crash_id_and_its_entry_says_where() {
    let lab = Lab::new("lcd-fleet-relay", "lcdfwire2", 19551);
    let (user, network) = (&lab.user, &lab.network);
    let relay = Relayd::start(network, lab.dir.path(), 5352);
    // The user's own session daemon runs in the host's namespace: its
    // consumer reaches the collector's relay from there.
    user.start_sessiond_in(network, network.host(0));
    let session = "fleet-wire-flight";
    let local = user.home.join("fleet-wire-snapshots");
    user.start_snapshot_session(session, &local);
    user.set_trigger_in_own_daemon(session, lttng_coredump_engine::ActionKind::Snapshot);

    let handler = InstalledHandler::new(
        handler_binary!(),
        &lab.config(&format!("relayd = \"{}\"\ntimeout = 20", relay.url)),
    );
    lab.create_spool();

    let tag = unique_name("fwr");
    let output = run_bounded(
        user.crasher_command().args([&tag, "30", "segv"]),
        CRASH_TIMEOUT,
    );
    assert!(!output.status.success());
    let pid = ready_pid(&output);
    let (_, record) = wait_for_record(&lab.cores, pid);
    let crash_id = record["crash_id"].as_str().unwrap().to_owned();
    let log = record["log"].to_string();
    assert!(
        log.contains(&format!("crash-{crash_id}")),
        "{log}\nrelay: {}",
        relay.server.log_text()
    );

    assert_eq!(wait_for_queued(&lab.spool_dir, 1).len(), 1);
    let out = in_netns(
        network,
        network.host(0),
        &handler.binary,
        &["submit", "--config", handler.config.to_str().unwrap()],
    );
    assert!(out.status.success(), "{out:?}");
    let crashes = lab.collected();
    assert_eq!(crashes.len(), 1, "{crashes:?}");
    assert_eq!(crashes[0].crash_id.as_deref(), Some(crash_id.as_str()));
    assert_eq!(crashes[0].snapshot_session.as_deref(), Some(session));
    let pattern = crashes[0].snapshot_path.as_deref().unwrap();
    assert!(pattern.contains(&crash_id), "{pattern}");
    let path = relayd::resolve_snapshot_path(&relay.output, pattern)
        .unwrap_or_else(|| panic!("no {pattern} under {}", relay.output.display()));
    // The crash's events are in the relay's copy, read on the collector.
    let events = babeltrace_events(&path);
    assert_eq!(fixture_seqs(&events, &tag), (0..30).collect::<Vec<i64>>());
}

/// The processes of `uid` running this handler binary's `submit`.
fn submitters_of(uid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let status = fs::read_to_string(entry.path().join("status")).unwrap_or_default();
        let owner = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().next())
            .and_then(|id| id.parse::<u32>().ok());
        let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if owner == Some(uid) && cmdline.split(|&b| b == 0).any(|arg| arg == b"submit") {
            found.push(pid);
        }
    }
    found
}

#[test]
fn serve_runs_the_submitter_as_its_user_and_the_crash_reaches_journal_remote() {
    let lab = Lab::new("lcd-fleet-serve", "lcdfwire3", 19561);
    let (dir, user, network) = (&lab.dir, &lab.user, &lab.network);
    lab.create_spool();
    let config = dir.path().join("config.toml");
    // Cores kept compressed: the spool reads the .zst through its
    // descriptor, and the core travels inside the entry.
    fs::write(
        &config,
        format!(
            "compression = \"zstd\"\n{}",
            lab.config("poll = 1\ntimeout = 20\ncore_in_entry_max = \"64M\"")
        ),
    )
    .unwrap();

    // The service in the host's namespace (its submitter child reaches the
    // collector from there; the kernel reaches its socket by its path).
    let guard = testsupport::CorePatternGuard::acquire();
    let socket = testsupport::service::unique_socket();
    let mut service = testsupport::service::Service::start_command(
        network.command(network.host(0), handler_binary!()),
        &config,
        &socket,
        &dir.path().join("no-install.bkp"),
        &dir.path().join("serve.log"),
        &[],
    );
    guard.set_pipe_limit(16);
    guard.set(&format!("@@{}", socket.display()));
    // Its submitter runs, as the spool's user.
    let deadline = std::time::Instant::now() + CRASH_TIMEOUT;
    while submitters_of(user.uid).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no submitter as {}: {}",
            user.name,
            service.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let tag = unique_name("fws");
    let output = run_bounded(crasher_command().args([&tag, "3", "segv"]), CRASH_TIMEOUT);
    assert!(!output.status.success());
    let pid = ready_pid(&output);
    let (_, record) = wait_for_record(&lab.cores, pid);
    let crash_id = record["crash_id"].as_str().unwrap().to_owned();
    // Sent by the service's submitter, nothing else running one.
    let crashes = loop {
        let crashes = lab.collected();
        if !crashes.is_empty() {
            break crashes;
        }
        assert!(
            std::time::Instant::now() < deadline + CRASH_TIMEOUT,
            "nothing reached journal-remote: {}",
            service.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(crashes.len(), 1, "{crashes:?}");
    assert_eq!(crashes[0].crash_id.as_deref(), Some(crash_id.as_str()));
    assert_eq!(crashes[0].copies, 1);
    // coredumpctl on the collector writes out the very core kept here.
    let kept = record["core"]["path"].as_str().unwrap();
    assert!(kept.ends_with(".zst"), "{kept}");
    assert!(record["core"]["size"].as_u64().unwrap() <= 64 << 20);
    assert_eq!(crashes[0].core_storage.as_deref(), Some("journal"));
    let here = run_bounded(
        Command::new("zstd").args(["-dc", kept]),
        Duration::from_secs(120),
    );
    assert!(here.status.success(), "{here:?}");
    let dumped = dir.path().join("dumped-core");
    let out = run_bounded(
        Command::new("coredumpctl")
            .arg("-D")
            .arg(&lab.remote.journal_dir)
            .args(["dump", "--no-pager", "-o"])
            .arg(&dumped)
            .arg(pid.to_string()),
        Duration::from_secs(120),
    );
    assert!(out.status.success(), "{out:?}");
    assert!(
        fs::read(&dumped).unwrap() == here.stdout,
        "the core differs"
    );

    // A submitter killed is started again; the service killed outright
    // takes its submitter with it (its parent-death signal).
    let first = submitters_of(user.uid);
    assert_eq!(first.len(), 1, "{first:?}");
    testsupport::process::signal(first[0] as i32, libc::SIGKILL);
    let restarted = loop {
        let now = submitters_of(user.uid);
        if !now.is_empty() && !now.contains(&first[0]) {
            break now;
        }
        assert!(
            std::time::Instant::now() < deadline + 2 * CRASH_TIMEOUT,
            "the submitter was not started again: {}",
            service.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(restarted.len(), 1, "{restarted:?}");
    drop(guard);
    service.signal_and_wait(libc::SIGKILL);
    let end = std::time::Instant::now() + CRASH_TIMEOUT;
    while !submitters_of(user.uid).is_empty() {
        assert!(
            std::time::Instant::now() < end,
            "the submitter outlived the service"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Deletes the user `0` when dropped (the test made it through install).
struct DeleteUser(&'static str);

impl Drop for DeleteUser {
    fn drop(&mut self) {
        let _ = run_bounded(Command::new("userdel").arg(self.0), Duration::from_secs(60));
    }
}

#[test]
fn install_creates_the_submitters_system_user_and_the_spool_and_config_check_knows_submit() {
    // A user of this test's own, which install must create.
    let name = "lcdfwsys";
    let _lock = testsupport::FileLock::acquire(&format!("user-{name}"));
    let _ = run_bounded(Command::new("userdel").arg(name), Duration::from_secs(60));
    let _delete = DeleteUser(name);
    let dir = TempDir::new("lcd-fleet-install");
    let spool_dir = dir.path().join("spool");
    let text = format!(
        "[submit]\nspool_dir = \"{}\"\nuser = \"{name}\"\njournal_remote = \"http://10.213.0.1:9\"\n",
        spool_dir.display()
    );
    let (binary, config) = short_handler_copy(handler_binary!(), &text);
    let kernel = dir.path().join("kernel");
    fs::create_dir_all(&kernel).unwrap();
    fs::write(kernel.join("core_pattern"), "core\n").unwrap();
    fs::write(kernel.join("core_pipe_limit"), "0\n").unwrap();
    // The submitter unit's directory: install writes its drop-in naming
    // this test's spool there, uninstall removes it with the spool.
    let units = dir.path().join("units");
    fs::create_dir_all(&units).unwrap();
    let drop_in = units.join("lttng-coredump-submit.service.d/spool-dir.conf");
    let install = || {
        run_bounded(
            Command::new(&binary)
                .arg("install")
                .arg("--config")
                .arg(&config)
                .arg("--proc-sys-kernel")
                .arg(&kernel)
                .arg("--backup")
                .arg(kernel.join("backup.json"))
                .arg("--unit-dir")
                .arg(&units),
            Duration::from_secs(60),
        )
    };
    let out = install();
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        said.contains(&format!("created the system user {name}")),
        "{said}"
    );
    // A system user with no login.
    let passwd = fs::read_to_string("/etc/passwd").unwrap();
    let entry: Vec<&str> = passwd
        .lines()
        .find(|l| l.starts_with(&format!("{name}:")))
        .expect("the user made")
        .split(':')
        .collect();
    let uid: u32 = entry[2].parse().unwrap();
    assert!(uid > 0 && uid < 1000, "{entry:?}");
    assert!(
        entry[6].ends_with("nologin") || entry[6] == "/bin/false",
        "{entry:?}"
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(fs::metadata(spool_dir.join("queue")).unwrap().uid(), uid);
    assert_eq!(fs::metadata(&spool_dir).unwrap().uid(), 0);
    assert!(
        fs::read_to_string(&drop_in)
            .unwrap()
            .contains(&format!("ReadWritePaths={}\n", spool_dir.display())),
        "{said}"
    );
    // Again: the same user, nothing created.
    let out = install();
    assert!(out.status.success(), "{out:?}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("created the system user"));

    // config shows [submit]; --check names a bad key of it.
    let out = run_bounded(
        Command::new(&binary).args(["config", "--config", config.to_str().unwrap()]),
        Duration::from_secs(60),
    );
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("[submit]") && shown.contains(&format!("user = \"{name}\"")),
        "{out:?}"
    );
    fs::write(&config, format!("{text}max_spool_size = \"lots\"\n")).unwrap();
    let out = run_bounded(
        Command::new(&binary).args(["config", "--check", "--config", config.to_str().unwrap()]),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        all.contains("line 5") && all.contains("max_spool_size"),
        "{all}"
    );

    // uninstall: a crash still queued keeps the spool and its user, said;
    // once the queue is empty, both go (the user being the one install
    // made); the crashes' cores and records always stay.
    fs::write(&config, &text).unwrap();
    let uninstall = || {
        run_bounded(
            Command::new(&binary)
                .args(["uninstall", "--config", config.to_str().unwrap()])
                .arg("--proc-sys-kernel")
                .arg(&kernel)
                .arg("--backup")
                .arg(kernel.join("backup.json"))
                .arg("--unit-dir")
                .arg(&units),
            Duration::from_secs(60),
        )
    };
    let waiting = spool_dir
        .join("queue")
        .join("1800000000-00112233445566778899aabbccddeeff");
    fs::create_dir(&waiting).unwrap();
    let out = uninstall();
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(said.contains("restored core_pattern \"core\""), "{said}");
    assert!(
        said.contains("stays: 1 crash not yet sent")
            && said.contains(&format!("the user {name} stays")),
        "{said}"
    );
    assert!(said.contains("cores and records stay in"), "{said}");
    assert!(spool_dir.join("queue").is_dir());
    assert!(drop_in.exists(), "the spool stays, its drop-in too");
    assert!(passwd.contains(&format!("{name}:")));
    assert!(fs::read_to_string("/etc/passwd")
        .unwrap()
        .contains(&format!("\n{name}:")));
    fs::remove_dir(&waiting).unwrap();
    // Again (core_pattern is already back: nothing to restore there).
    let out = uninstall();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(said.contains("removed the spool"), "{out:?}");
    assert!(
        said.contains(&format!("removed the system user {name}")),
        "{out:?}"
    );
    assert!(!spool_dir.exists());
    assert!(said.contains("removed") && !drop_in.exists(), "{said}");
    assert!(!fs::read_to_string("/etc/passwd")
        .unwrap()
        .contains(&format!("\n{name}:")));

    // A user install did not make is never removed.
    let _ = run_bounded(
        Command::new("useradd").args(["--system", "--no-create-home", name]),
        Duration::from_secs(60),
    );
    let out = install();
    assert!(out.status.success(), "{out:?}");
    let out = uninstall();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        said.contains("removed the spool") && said.contains("lttng-coredump did not make it"),
        "{out:?}"
    );
    assert!(fs::read_to_string("/etc/passwd")
        .unwrap()
        .contains(&format!("\n{name}:")));
    let _ = fs::remove_file(&binary);
    let _ = fs::remove_file(&config);
}
