//! The fleet benchmark (issue 21): a storm of crashes on two hosts, queued
//! while the collector is unreachable, then shipped to
//! systemd-journal-remote once it is: how long until every entry is on the
//! collector, the bytes on the wire per crash, the submitters' CPU time and
//! peak RSS; against systemd-journal-upload shipping the very same entries
//! (from a journal file holding them) in the same run, rounds interleaved.
//! Run by `bench/fleet` (as root; `cargo bench`, so a release build);
//! prints Markdown tables.
//!
//!   bench/fleet [--crashes N] [--rounds R]

use lttng_coredump_fleet::collector::{self, ReadOptions};
use lttng_coredump_fleet::export::Field;
use lttng_coredump_fleet::{
    entry, CoreSource, HostIdentity, NewCrash, Spool, SpoolLimits, SpoolOwner,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;
use testsupport::collector::JournalRemote;
use testsupport::netns::TestNetwork;
use testsupport::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_lttng-coredump-fleet");
const JOURNAL_UPLOAD: &str = "/lib/systemd/systemd-journal-upload";
const SMALL_CORE: usize = 256 << 10;
const CORE_IN_ENTRY_MAX: u64 = 1 << 20;

/// What one shipping of the storm cost.
#[derive(Debug, Clone, Default)]
struct Run {
    seconds: f64,
    wire_bytes: u64,
    cpu_seconds: f64,
    max_rss_kib: u64,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    values[values.len() / 2]
}

/// A backtrace-like text of `threads` threads.
fn backtrace(pid: u32, comm: &str) -> String {
    let mut text = format!("Process {pid} ({comm}) of user 1000 dumped core.\n\nModule /usr/bin/{comm} with build-id 4f2c9d0e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d\n");
    for thread in 0..3 {
        text += &format!("\nStack trace of thread {}:\n", pid + thread);
        for frame in 0..16 {
            text += &format!(
                "#{frame:<2} 0x00007f3a2b{:06x} worker_step_{frame} (lib{comm}.so.1 + 0x{:05x})\n",
                frame * 4096 + thread as usize,
                frame * 331
            );
        }
    }
    text
}

/// systemd-coredump's fields for a crash, at their usual sizes.
fn fields(host: &str, pid: u32, core: Option<&Path>) -> Vec<Field> {
    let comm = format!("service{}", pid % 7);
    let maps: String = (0..60)
        .map(|i| format!("7f3a2b{i:02x}0000-7f3a2b{i:02x}f000 r-xp 00000000 fe:01 {} /usr/lib/x86_64-linux-gnu/lib{i}.so.1\n", 100000 + i))
        .collect();
    let status: String = (0..50)
        .map(|i| format!("Field{i}:\t{}\n", i * 17))
        .collect();
    let mut fields: Vec<(&str, Vec<u8>)> = vec![
        (
            "MESSAGE_ID",
            lttng_coredump_fleet::fields::COREDUMP_MESSAGE_ID.into(),
        ),
        ("PRIORITY", b"2".to_vec()),
        ("MESSAGE", backtrace(pid, &comm).into_bytes()),
        ("COREDUMP_PID", pid.to_string().into_bytes()),
        ("COREDUMP_UID", b"1000".to_vec()),
        ("COREDUMP_GID", b"1000".to_vec()),
        ("COREDUMP_SIGNAL", b"11".to_vec()),
        ("COREDUMP_SIGNAL_NAME", b"SIGSEGV".to_vec()),
        (
            "COREDUMP_TIMESTAMP",
            lttng_coredump_fleet::spool::now_us()
                .to_string()
                .into_bytes(),
        ),
        ("COREDUMP_RLIMIT", b"18446744073709551615".to_vec()),
        ("COREDUMP_HOSTNAME", host.as_bytes().to_vec()),
        ("COREDUMP_COMM", comm.clone().into_bytes()),
        ("COREDUMP_EXE", format!("/usr/bin/{comm}").into_bytes()),
        (
            "COREDUMP_CMDLINE",
            format!("/usr/bin/{comm} --config /etc/{comm}.conf").into_bytes(),
        ),
        (
            "COREDUMP_CGROUP",
            format!("/system.slice/{comm}.service").into_bytes(),
        ),
        ("COREDUMP_PROC_MAPS", maps.into_bytes()),
        ("COREDUMP_PROC_STATUS", status.into_bytes()),
        (
            "COREDUMP_ENVIRON",
            b"LANG=C.UTF-8\0PATH=/usr/bin:/bin\0HOME=/var/lib/service\0".repeat(8),
        ),
        (
            "LTTNG_COREDUMP_SIGNATURE",
            format!("{:016x}", (pid % 5) * 0x9e37_79b9).into_bytes(),
        ),
        (
            "LTTNG_COREDUMP_SNAPSHOT_PATH",
            format!("/var/lib/lttng-coredump/cores/snapshots/{comm}-{pid}").into_bytes(),
        ),
    ];
    if let Some(core) = core {
        fields.push(("COREDUMP_FILENAME", core.display().to_string().into_bytes()));
    }
    fields
        .into_iter()
        .map(|(n, v)| (n.to_string(), v))
        .collect()
}

/// A report of the usual size: every thread's frames, the modules, the
/// last events.
fn report(pid: u32) -> Vec<u8> {
    let frames: Vec<serde_json::Value> = (0..16)
        .map(|f| serde_json::json!({"function": format!("worker_step_{f}"), "module": "libservice.so.1", "offset": f * 331, "file": "src/worker.c", "line": 100 + f}))
        .collect();
    let threads: Vec<serde_json::Value> = (0..3)
        .map(|t| serde_json::json!({"tid": pid + t, "crashed": t == 0, "frames": frames}))
        .collect();
    let modules: Vec<serde_json::Value> = (0..60)
        .map(|m| serde_json::json!({"path": format!("/usr/lib/x86_64-linux-gnu/lib{m}.so.1"), "build_id": format!("{m:040x}")}))
        .collect();
    let events: Vec<String> = (0..50)
        .map(|e| format!("[12:00:{e:02}.000000000] lttng_coredump:step: {{ cpu_id = 0 }}, {{ seq = {e}, tag = \"storm\" }}"))
        .collect();
    serde_json::to_vec(&serde_json::json!({"pid": pid, "threads": threads, "modules": modules, "last_events": events})).unwrap()
}

/// A small core as cores are: most pages zero or nearly, one in four
/// incompressible (data, pointers).
fn small_core(dir: &Path) -> PathBuf {
    let path = dir.join("small-core");
    let mut bytes = Vec::with_capacity(SMALL_CORE);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut page = 0;
    while bytes.len() < SMALL_CORE {
        if page % 4 == 0 {
            for _ in 0..4096 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                bytes.push(state as u8);
            }
        } else {
            bytes.extend_from_slice(format!("page {page} of a small core").as_bytes());
            bytes.resize(bytes.len().next_multiple_of(4096), 0);
        }
        page += 1;
    }
    bytes.truncate(SMALL_CORE);
    std::fs::write(&path, bytes).unwrap();
    path
}

struct Storm {
    spools: Vec<PathBuf>,
    configs: Vec<PathBuf>,
    /// The entries as they go to journal-remote, per host (for the
    /// baseline's journal files).
    journal_files: Vec<PathBuf>,
    entry_sizes: Vec<u64>,
    report_sizes: Vec<u64>,
    spool_core_bytes: u64,
    small_cores: u64,
    /// Time to enqueue the storm (the handler's part), in seconds.
    enqueue_seconds: f64,
}

/// Queues `per_host` crashes in a fresh spool on each host: one in four
/// with a small core that travels in the entry, the others with a core too
/// large for it.
fn queue_storm(
    dir: &Path,
    per_host: u32,
    url: &str,
    owner: SpoolOwner,
    with_small_cores: bool,
) -> Storm {
    let small = small_core(dir);
    let large = dir.join("large-core");
    std::fs::File::create(&large)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let limits = SpoolLimits {
        max_bytes: 4 << 30,
        core_in_entry_max: CORE_IN_ENTRY_MAX,
        keep_sent: 0,
    };
    let mut storm = Storm {
        spools: Vec::new(),
        configs: Vec::new(),
        journal_files: Vec::new(),
        entry_sizes: Vec::new(),
        report_sizes: Vec::new(),
        spool_core_bytes: 0,
        small_cores: 0,
        enqueue_seconds: 0.0,
    };
    for h in 0..2 {
        let host = format!("host{}", h + 1);
        let spool_dir = dir.join(format!("spool-{host}"));
        let spool = Spool::create(&spool_dir, owner).unwrap();
        let config = dir.join(format!("{host}.toml"));
        std::fs::write(
            &config,
            format!(
                "[submit]\nspool_dir = \"{}\"\njournal_remote = \"{url}\"\ncore_in_entry_max = {CORE_IN_ENTRY_MAX}\nkeep_sent = 0\ntimeout = 30\n",
                spool_dir.display()
            ),
        )
        .unwrap();
        let mut stream = Vec::new();
        for i in 0..per_host {
            let pid = 10_000 * (h + 1) + i;
            let (core_path, size) = if with_small_cores && i % 4 == 0 {
                (&small, SMALL_CORE as u64)
            } else {
                (&large, 64 << 20)
            };
            let mut identity = HostIdentity::now();
            identity.hostname = host.clone();
            let report = report(pid);
            storm.report_sizes.push(report.len() as u64);
            let started = Instant::now();
            let enqueued = spool
                .enqueue(
                    NewCrash {
                        crash_id: None,
                        fields: fields(&host, pid, Some(core_path)),
                        report_json: Some(report),
                        core: Some(CoreSource {
                            file: std::fs::File::open(core_path).unwrap(),
                            zstd: false,
                            size,
                            host_path: core_path.clone(),
                        }),
                        host: identity,
                    },
                    &limits,
                )
                .unwrap();
            storm.enqueue_seconds += started.elapsed().as_secs_f64();
            let mut item = spool.load(&enqueued.item).unwrap();
            if let Some(core) = &item.core {
                storm.spool_core_bytes += core.metadata().unwrap().len();
                storm.small_cores += 1;
            }
            let bytes = entry::journal_entry(&mut item, CORE_IN_ENTRY_MAX).unwrap();
            let core_len = if item.core.is_some() {
                SMALL_CORE as u64 + 18
            } else {
                0
            };
            storm.entry_sizes.push(bytes.len() as u64 - core_len);
            stream.extend_from_slice(&bytes);
        }
        // The baseline's journal: the same entries, written by journal-remote
        // itself from the same export stream.
        let journal = dir.join(format!("baseline-{host}.journal"));
        let mut child = Command::new(testsupport::collector::JOURNAL_REMOTE)
            .arg(format!("--output={}", journal.display()))
            .args(["--split-mode=none", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&stream).unwrap();
        assert!(child.wait().unwrap().success());
        storm.spools.push(spool_dir);
        storm.configs.push(config);
        storm.journal_files.push(journal);
    }
    storm
}

/// Runs `commands` (one per host, each under GNU time) at once; returns
/// the wall time until all ended, and their summed CPU and largest RSS.
fn ship(network: &TestNetwork, commands: Vec<Vec<String>>, dir: &Path) -> Run {
    let before: Vec<(u64, u64)> = (0..2).map(|h| network.host_link_bytes(h)).collect();
    let started = Instant::now();
    let children: Vec<_> = commands
        .into_iter()
        .enumerate()
        .map(|(h, args)| {
            let times = dir.join(format!("time-{h}"));
            let child = network
                .command(network.host(h), "/usr/bin/time")
                .arg("-o")
                .arg(&times)
                .args(["-f", "%U %S %M"])
                .args(&args)
                .env_remove("http_proxy")
                .env_remove("https_proxy")
                .env_remove("HTTP_PROXY")
                .env_remove("HTTPS_PROXY")
                .env_remove("all_proxy")
                .env_remove("ALL_PROXY")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            (child, times)
        })
        .collect();
    let mut run = Run::default();
    for (mut child, times) in children {
        let status = child.wait().unwrap();
        assert!(status.success(), "{args:?} failed: {status}", args = times);
        let text = std::fs::read_to_string(&times).unwrap();
        let numbers: Vec<f64> = text
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        run.cpu_seconds += numbers[0] + numbers[1];
        run.max_rss_kib = run.max_rss_kib.max(numbers[2] as u64);
    }
    run.seconds = started.elapsed().as_secs_f64();
    for (h, (rx, tx)) in before.into_iter().enumerate() {
        let (rx2, tx2) = network.host_link_bytes(h);
        run.wire_bytes += (rx2 - rx) + (tx2 - tx);
    }
    run
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut per_host, mut rounds) = (250u32, 3usize);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--crashes" => per_host = args.next().unwrap().parse::<u32>().unwrap() / 2,
            "--rounds" => rounds = args.next().unwrap().parse().unwrap(),
            // What `cargo bench` adds.
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    let crashes = per_host as usize * 2;
    let user = testsupport::TestUser::create("lcdfleetbench", false);
    let (uid, gid) = (user.uid, user.gid);
    let owner = SpoolOwner { uid, gid };
    let network = TestNetwork::new(2);
    println!(
        "Storm of {crashes} crashes on 2 hosts, queued while the collector was unreachable, then shipped to systemd-journal-remote over HTTP once it was; the median of {rounds} rounds, ours and systemd-journal-upload (the same entries, from a journal file) interleaved in one run.\n"
    );
    let mut port = 19531u16;
    for (scenario, with_small_cores) in [
        (
            "entries only (every core too large for the entry: it stays on the host)",
            false,
        ),
        ("1 crash in 4 with a 256 KiB core inside its entry", true),
    ] {
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        let mut enqueue = Vec::new();
        let mut facts = None;
        for round in 0..rounds {
            for which in ["ours", "journal-upload"] {
                let dir = TempDir::new("fleet-storm");
                // A port of its own each time: no wait for the last one's
                // connections to close.
                port += 1;
                let remote = JournalRemote::http(&network, dir.path(), port);
                // The storm builds up while the collector cannot be reached.
                network.set_collector_link(false);
                let storm = queue_storm(dir.path(), per_host, &remote.url, owner, with_small_cores);
                network.set_collector_link(true);
                let commands: Vec<Vec<String>> = (0..2)
                    .map(|h| match which {
                        "ours" => vec![
                            "setpriv".into(),
                            format!("--reuid={uid}"),
                            format!("--regid={gid}"),
                            "--clear-groups".into(),
                            BIN.into(),
                            "submit".into(),
                            "--config".into(),
                            storm.configs[h].display().to_string(),
                        ],
                        _ => vec![
                            JOURNAL_UPLOAD.into(),
                            format!("--url={}", remote.url),
                            format!("--file={}", storm.journal_files[h].display()),
                            format!("--save-state={}/upload-state-{h}", dir.path().display()),
                            "--follow=no".into(),
                        ],
                    })
                    .collect();
                let run = ship(&network, commands, dir.path());
                let got = collector::read_journal_dir(&remote.journal_dir, &ReadOptions::default())
                    .unwrap();
                assert_eq!(
                    got.len(),
                    crashes,
                    "{which}: {} crashes on the collector",
                    got.len()
                );
                let collector_bytes: u64 = std::fs::read_dir(&remote.journal_dir)
                    .unwrap()
                    .flatten()
                    .map(|e| std::os::unix::fs::MetadataExt::blocks(&e.metadata().unwrap()) * 512)
                    .sum();
                eprintln!("{scenario}, round {round}, {which}: {run:?}, collector journal {collector_bytes} bytes");
                if which == "ours" {
                    ours.push(run);
                    enqueue.push(storm.enqueue_seconds);
                    facts.get_or_insert((
                        storm.entry_sizes,
                        storm.report_sizes,
                        storm.spool_core_bytes,
                        storm.small_cores,
                    ));
                } else {
                    theirs.push(run);
                }
            }
        }
        let m = |runs: &[Run], f: fn(&Run) -> f64| median(runs.iter().map(f).collect());
        let row = |name: &str, f: fn(&Run) -> f64, unit: &str, scale: f64| {
            let (a, b) = (m(&ours, f) * scale, m(&theirs, f) * scale);
            println!("| {name} | {a:.3} {unit} | {b:.3} {unit} | {:.2}x |", a / b);
        };
        println!("### {scenario}\n");
        println!("| measure | ours (`submit`) | systemd-journal-upload | ours ÷ journal-upload |");
        println!("|---|---|---|---|");
        row(
            "time until all are on the collector",
            |r| r.seconds,
            "s",
            1.0,
        );
        row(
            "bytes on the wire per crash (both directions, headers and all)",
            |r| r.wire_bytes as f64,
            "KiB",
            1.0 / 1024.0 / crashes as f64,
        );
        row(
            "CPU time of the two submitters (user+sys)",
            |r| r.cpu_seconds,
            "s",
            1.0,
        );
        row(
            "peak RSS of a submitter",
            |r| r.max_rss_kib as f64,
            "MiB",
            1.0 / 1024.0,
        );
        println!(
            "\nEnqueuing (the handler's part, every state fsync'd): {:.2} ms per crash.",
            median(enqueue) * 1000.0 / crashes as f64
        );
        let (mut entries, mut reports, spool_core_bytes, small_cores) = facts.unwrap();
        entries.sort();
        reports.sort();
        let with_report: Vec<u64> = entries.iter().zip(&reports).map(|(e, r)| e + r).collect();
        println!();
        println!("| per crash | median | max |");
        println!("|---|---|---|");
        println!(
            "| journal entry without the core | {:.1} KiB | {:.1} KiB |",
            entries[entries.len() / 2] as f64 / 1024.0,
            *entries.last().unwrap() as f64 / 1024.0
        );
        println!(
            "| report (JSON) | {:.1} KiB | {:.1} KiB |",
            reports[reports.len() / 2] as f64 / 1024.0,
            *reports.last().unwrap() as f64 / 1024.0
        );
        println!(
            "| entry + report (target: under 64 KiB) | {:.1} KiB | {:.1} KiB |",
            with_report[with_report.len() / 2] as f64 / 1024.0,
            *with_report.iter().max().unwrap() as f64 / 1024.0
        );
        if small_cores > 0 {
            println!(
                "\nSmall cores: {} KiB each, {:.1} KiB in the spool (zstd, {:.1}x smaller).",
                SMALL_CORE >> 10,
                spool_core_bytes as f64 / small_cores as f64 / 1024.0,
                SMALL_CORE as f64 * small_cores as f64 / spool_core_bytes as f64
            );
        }
        println!();
    }
}
