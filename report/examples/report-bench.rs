//! The measuring half of `bench/report`: for each core, analyzes it with
//! `analyze` (in this process, as the handler will: a forked child acting
//! as `--uid`), and runs `eu-stack --core` and `gdb -batch -ex 'thread
//! apply all bt'` on it, interleaved round by round (each round in another
//! order), and prints one Markdown table: p50 and p95 wall times, their
//! ratios, and the analysis child's peak resident memory (VmHWM: it
//! counts the pages it shares with this process, whose own resident size
//! is printed too).
//!
//!     report-bench --uid UID --rounds N --gdb-rounds M LABEL=CORE=EXE...

use lttng_coredump_report::{analyze, Executable, Identity, Limits};
use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq)]
enum Tool {
    Ours,
    OursNames,
    EuStackSource,
    EuStack,
    Gdb,
}

const TOOLS: [Tool; 5] = [
    Tool::Ours,
    Tool::OursNames,
    Tool::EuStackSource,
    Tool::EuStack,
    Tool::Gdb,
];

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn run(command: &mut Command) -> Duration {
    let started = Instant::now();
    let status = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"));
    let took = started.elapsed();
    // eu-stack exits 1 when some frame had a (non-fatal) error.
    assert!(
        status.code().is_some_and(|c| c <= 1),
        "{command:?}: {status}"
    );
    took
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut uid, mut rounds, mut gdb_rounds) = (65534u32, 20usize, 10usize);
    let mut cores = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--uid" => uid = args.next().unwrap().parse().unwrap(),
            "--rounds" => rounds = args.next().unwrap().parse().unwrap(),
            "--gdb-rounds" => gdb_rounds = args.next().unwrap().parse().unwrap(),
            _ => {
                let parts: Vec<&str> = arg.splitn(3, '=').collect();
                assert_eq!(parts.len(), 3, "LABEL=CORE=EXE, not {arg}");
                cores.push((
                    parts[0].to_string(),
                    parts[1].to_string(),
                    parts[2].to_string(),
                ));
            }
        }
    }
    let identity = Identity::of_user(uid).unwrap();
    println!("| core | ours p50 / p95 | eu-stack -s -b -m p50 / p95 | ratio p50 / p95 | ours, no source lines | eu-stack p50 / p95 | ratio p50 / p95 | gdb p50 / p95 | ours / gdb p50 | child peak RSS (no source lines) |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (label, core, exe) in &cores {
        let file = std::fs::File::open(core).unwrap();
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); TOOLS.len()];
        let (mut peak_kib, mut peak_names_kib) = (0u64, 0u64);
        let full = Limits::default();
        let names = Limits {
            source_lines: false,
            ..Limits::default()
        };
        // One warm-up round (page cache, first loads), not counted.
        for round in 0..=rounds {
            for k in 0..TOOLS.len() {
                let index = (k + round) % TOOLS.len();
                let tool = TOOLS[index];
                if tool == Tool::Gdb && round > gdb_rounds {
                    continue;
                }
                let took = match tool {
                    Tool::Ours | Tool::OursNames => {
                        let limits = if tool == Tool::Ours { &full } else { &names };
                        let started = Instant::now();
                        let report = analyze(
                            file.as_fd(),
                            Some(Executable::Path(Path::new(exe))),
                            Some(&identity),
                            limits,
                        )
                        .unwrap_or_else(|e| panic!("{core}: {e}"));
                        let took = started.elapsed();
                        let peak = report.analysis.peak_rss_kib.unwrap_or(0);
                        if tool == Tool::Ours {
                            peak_kib = peak_kib.max(peak);
                        } else {
                            peak_names_kib = peak_names_kib.max(peak);
                        }
                        took
                    }
                    Tool::EuStackSource => run(Command::new("eu-stack")
                        .args(["-s", "-b", "-m"])
                        .arg(format!("--core={core}"))
                        .args(["-e", exe])),
                    Tool::EuStack => run(Command::new("eu-stack")
                        .arg(format!("--core={core}"))
                        .args(["-e", exe])),
                    Tool::Gdb => run(Command::new("gdb").args([
                        "-nx",
                        "-batch",
                        "-ex",
                        "thread apply all bt",
                        exe,
                        core,
                    ])),
                };
                if round > 0 {
                    times[index].push(took.as_secs_f64() * 1000.0);
                }
            }
        }
        for t in &mut times {
            t.sort_by(|a, b| a.partial_cmp(b).unwrap());
        }
        let p = |tool: usize, q: f64| percentile(&times[tool], q);
        let pair = |tool: usize| format!("{:.1} / {:.1} ms", p(tool, 50.0), p(tool, 95.0));
        let ratio = |a: usize, b: usize| {
            format!(
                "{:.2}x / {:.2}x",
                p(a, 50.0) / p(b, 50.0),
                p(a, 95.0) / p(b, 95.0)
            )
        };
        println!(
            "| {label} | {} | {} | {} | {} | {} | {} | {} | {:.2}x | {:.1} MiB ({:.1} MiB) |",
            pair(0),
            pair(2),
            ratio(0, 2),
            pair(1),
            pair(3),
            ratio(1, 3),
            pair(4),
            p(0, 50.0) / p(4, 50.0),
            peak_kib as f64 / 1024.0,
            peak_names_kib as f64 / 1024.0
        );
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap_or("?")
        .trim();
    println!();
    println!("This process (the analysis children's parent): VmRSS {rss}.");
}
