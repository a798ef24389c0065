//! The fleet benchmark through the installed handler (issue 21): a storm of
//! real crashes on two hosts (network namespaces of its own, each host's
//! processes in a UTS namespace named as the host), each handled by the
//! handler the real kernel core_pattern runs (record, report, journal
//! entry, enqueued in the spool) while the collector is unreachable; then
//! the collector comes back and `lttng-coredump submit` (as the spool's
//! user) ships the spool to the real systemd-journal-remote. Measured: how
//! long until every entry is on the collector once it is reachable, the
//! bytes on the wire per crash (the hosts' veth links, both ways, headers
//! and all), the submitter's CPU time and peak RSS (GNU time), the size of
//! each crash's entry, report and core copy in the spool, and the storm's
//! own pace (crashes handled and queued a second). Checked: every crash is
//! on the collector once, with its host. Prints Markdown (progress on
//! stderr). Run by `bench/fleet-handler` (as root; a release build).
//!
//!   bench/fleet-handler [--crashes N] [--parallel P] [--small-cores]
//!
//! The crashing program is the project's crasher (traced with LTTng-UST:
//! a 22 MiB core, larger than `core_in_entry_max`, which stays on the
//! host), or with `--small-cores` the shell (`ulimit -c unlimited; kill -SEGV $$`, a
//! small core that travels inside its entry).

use lttng_coredump_fleet::collector::{self, ReadOptions};
use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use testsupport::collector::JournalRemote;
use testsupport::crasher::{crasher_command, ready_pid};
use testsupport::handler::{config_for, InstalledHandler, CRASH_TIMEOUT};
use testsupport::netns::TestNetwork;
use testsupport::process::run_bounded;
use testsupport::{TempDir, TestUser};

const HOSTS: [&str; 2] = ["storm-web1", "storm-db2"];

fn median(values: &mut [u64]) -> u64 {
    values.sort_unstable();
    values[values.len() / 2]
}

fn kib(bytes: f64) -> String {
    if bytes >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", bytes / 1024.0 / 1024.0)
    } else {
        format!("{:.1} KiB", bytes / 1024.0)
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut crashes, mut parallel, mut small_cores) = (500usize, 4usize, false);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--crashes" => crashes = args.next().unwrap().parse().unwrap(),
            "--parallel" => parallel = args.next().unwrap().parse().unwrap(),
            "--small-cores" => small_cores = true,
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(
        parallel >= 2 && parallel % 2 == 0,
        "--parallel: an even number"
    );
    let per_host = crashes / 2;
    let crashes = per_host * 2;
    let dir = TempDir::new("fleet-handler-storm");
    let user = TestUser::create("lcdfhbench", false);
    let network = TestNetwork::new(2);
    let remote = JournalRemote::http(&network, dir.path(), 19591);
    let cores = dir.path().join("cores");
    let spool_dir = dir.path().join("spool");
    lttng_coredump_fleet::Spool::create(
        &spool_dir,
        lttng_coredump_fleet::SpoolOwner {
            uid: user.uid,
            gid: user.gid,
        },
    )
    .unwrap();
    // No limit on cores a minute (every crash keeps its core), the spool
    // big enough for the storm, no snapshot.
    let config = config_for(
        &cores,
        &format!(
            "max_cores_per_minute = 0\nmax_cores_per_user_per_minute = 0\n\
             max_snapshots_per_minute = 0\n[submit]\nspool_dir = \"{}\"\nuser = \"{}\"\n\
             journal_remote = \"{}\"\nmax_spool_size = \"8G\"\nkeep_sent = 0\ntimeout = 60\n",
            spool_dir.display(),
            user.name,
            remote.url
        ),
    );
    let handler = InstalledHandler::new(env!("CARGO_BIN_EXE_lttng-coredump").as_ref(), &config);

    // The storm, the collector unreachable: `parallel` crashing programs
    // at a time, half of them on each host.
    network.set_collector_link(false);
    eprintln!("storm: {crashes} crashes, {parallel} at a time");
    let started = Instant::now();
    std::thread::scope(|scope| {
        for worker in 0..parallel {
            let network = &network;
            scope.spawn(move || {
                let host = worker % 2;
                let mine = (0..per_host).filter(|n| n % parallel.div_ceil(2) == worker / 2);
                for n in mine {
                    let crasher = crasher_command();
                    let mut command = network.command(network.host(host), "unshare");
                    command.args(["--uts", "--", "sh", "-c"]);
                    if small_cores {
                        command.args([
                            "hostname \"$0\" && ulimit -c unlimited && kill -SEGV $$",
                            HOSTS[host],
                        ]);
                    } else {
                        command
                            .args(["hostname \"$0\" && exec \"$@\"", HOSTS[host]])
                            .arg(crasher.get_program())
                            .args([format!("storm{host}-{n}").as_str(), "1", "segv"])
                            .envs(crasher.get_envs().filter_map(|(k, v)| Some((k, v?))));
                    }
                    let output = run_bounded(&mut command, CRASH_TIMEOUT);
                    assert!(!output.status.success(), "{output:?}");
                    if !small_cores {
                        let _ = ready_pid(&output);
                    }
                }
            });
        }
    });
    let crashed = started.elapsed();
    let queue = spool_dir.join("queue");
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let queued = fs::read_dir(&queue).unwrap().count();
        if queued >= crashes {
            break;
        }
        let drops = fs::read_to_string(spool_dir.join("drops.log")).unwrap_or_default();
        assert!(
            Instant::now() < deadline && drops.is_empty(),
            "{queued} of {crashes} crashes queued; drops: {drops}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let queued_after = started.elapsed();
    // Nothing dropped on the way into the spool.
    let drops = fs::read_to_string(spool_dir.join("drops.log")).unwrap_or_default();
    assert!(drops.is_empty(), "drops: {drops}");
    eprintln!("storm: crashed in {crashed:?}, all queued after {queued_after:?}");

    // What each crash is in the spool: its entry (the fields, no core),
    // its report, its core's copy (zstd) and the core itself.
    let (mut entries, mut reports, mut core_copies, mut core_sizes) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for item in fs::read_dir(&queue).unwrap().flatten() {
        let size = |name: &str| fs::metadata(item.path().join(name)).map_or(0, |m| m.len());
        entries.push(size("fields"));
        reports.push(size("report.json"));
        core_copies.push(size("core.zst"));
        let meta: serde_json::Value =
            serde_json::from_slice(&fs::read(item.path().join("meta.json")).unwrap()).unwrap();
        core_sizes.push(meta["core"]["size"].as_u64().unwrap_or(0));
    }
    let in_entry = core_copies.iter().filter(|&&c| c > 0).count();

    // The collector back: the submitter ships everything.
    network.set_collector_link(true);
    let before: Vec<(u64, u64)> = (0..2).map(|h| network.host_link_bytes(h)).collect();
    let times = dir.path().join("time");
    let shipped = Instant::now();
    let status = network
        .command(network.host(0), "/usr/bin/time")
        .arg("-o")
        .arg(&times)
        .args(["-f", "%U %S %M"])
        .arg(&handler.binary)
        .args(["submit", "--config", handler.config.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    let seconds = shipped.elapsed().as_secs_f64();
    assert!(status.success(), "submit: {status}");
    let wire: u64 = before
        .into_iter()
        .enumerate()
        .map(|(h, (rx, tx))| {
            let (rx2, tx2) = network.host_link_bytes(h);
            (rx2 - rx) + (tx2 - tx)
        })
        .sum();
    let numbers: Vec<f64> = fs::read_to_string(&times)
        .unwrap()
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    let (cpu, rss_kib) = (numbers[0] + numbers[1], numbers[2]);

    // Every crash on the collector once, with its host.
    let got = collector::read_journal_dir(&remote.journal_dir, &ReadOptions::default()).unwrap();
    assert_eq!(got.len(), crashes, "crashes on the collector");
    assert!(got.iter().all(|c| c.copies == 1));
    for host in HOSTS {
        let n = got
            .iter()
            .filter(|c| c.hostname.as_deref() == Some(host))
            .count();
        assert_eq!(n, per_host, "{host}");
    }
    let out = run_bounded(
        Command::new("coredumpctl")
            .arg("-D")
            .arg(&remote.journal_dir)
            .args(["list", "--no-pager", "--no-legend"]),
        Duration::from_secs(300),
    );
    let listed = String::from_utf8_lossy(&out.stdout).lines().count();

    println!(
        "Storm of {crashes} real crashes of {} on 2 hosts ({per_host} each, {parallel} at a \
         time), each handled by the installed handler (real core_pattern) while the collector was \
         unreachable, then shipped by `lttng-coredump submit` once it was.\n",
        if small_cores {
            "the shell (`sh -c 'ulimit -c unlimited; kill -SEGV $$'`)"
        } else {
            "the traced crasher"
        }
    );
    println!("| measure | value |\n|---|---|");
    println!("| time until all are on the collector | {seconds:.3} s |");
    println!(
        "| bytes on the wire per crash (both directions, headers and all) | {} |",
        kib(wire as f64 / crashes as f64)
    );
    println!("| CPU time of the submitter (user+sys) | {cpu:.3} s |");
    println!(
        "| peak RSS of the submitter | {:.1} MiB |",
        rss_kib / 1024.0
    );
    println!(
        "| the storm: crashes handled and queued a second | {:.1} |",
        crashes as f64 / queued_after.as_secs_f64()
    );
    println!(
        "| on the collector | {} crashes, each once ({} listed by coredumpctl -D) |",
        got.len(),
        listed
    );
    println!();
    let mut sum: Vec<u64> = entries.iter().zip(&reports).map(|(e, r)| e + r).collect();
    let max = |v: &[u64]| *v.iter().max().unwrap();
    println!("| per crash | median | max |\n|---|---|---|");
    for (name, values) in [
        ("journal entry without the core", &mut entries),
        ("report (JSON)", &mut reports),
        ("entry + report (target: under 64 KiB)", &mut sum),
        ("core", &mut core_sizes),
        (
            "core's copy in the spool and the entry (zstd)",
            &mut core_copies,
        ),
    ] {
        let m = max(values);
        println!(
            "| {name} | {} | {} |",
            kib(median(values) as f64),
            kib(m as f64)
        );
    }
    println!("\n{in_entry} of {crashes} cores travelled inside their entry (core_in_entry_max).");
    drop(handler);
}
