//! The spool's own tool, a thin command line over the library: set a spool
//! up, enqueue a crash, submit (once or `--follow`), show the status, and
//! on the collector list the crashes and problems of a journal directory.
//! The handler's `lttng-coredump submit/status/list/problems` are meant to
//! call the same functions; the tests and the bench run this one.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use lttng_coredump_fleet::collector::{self, ReadOptions};
use lttng_coredump_fleet::config::{SubmitConfig, Units};
use lttng_coredump_fleet::export;
use lttng_coredump_fleet::submit::{Level, Submitter};
use lttng_coredump_fleet::{status, CoreSource, HostIdentity, NewCrash, Spool, SpoolOwner};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

#[derive(Parser)]
#[command(
    name = "lttng-coredump-fleet",
    about = "The crash spool and its shipping"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Creates (or repairs) the spool, owned by USER (as root).
    Init {
        #[arg(long)]
        config: PathBuf,
        /// The submitter's user (default: the configuration's `user`).
        #[arg(long)]
        owner: Option<String>,
    },
    /// Enqueues a crash: its journal fields (one entry in the export
    /// format), its report, its core (as root).
    Enqueue {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        fields: PathBuf,
        #[arg(long)]
        report: Option<PathBuf>,
        #[arg(long)]
        core: Option<PathBuf>,
        /// The core file is zstd-compressed.
        #[arg(long, requires = "core")]
        zstd: bool,
    },
    /// Sends what is queued (and keeps sending with --follow).
    Submit {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        follow: bool,
    },
    /// The queue, each destination's last error, the drops.
    Status {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// The crashes of a collector's journal directory, each counted once.
    List {
        #[arg(long)]
        journal_dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// The problems (crashes by signature) of a journal directory.
    Problems {
        #[arg(long)]
        journal_dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

fn read_config(path: &Path) -> Result<SubmitConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("parsing {}", path.display()))?;
    let empty = toml::Table::new();
    let submit = table
        .get("submit")
        .and_then(|v| v.as_table())
        .unwrap_or(&empty);
    let (config, problems) = SubmitConfig::from_table(submit, &Units::plain());
    for problem in problems {
        eprintln!("lttng-coredump-fleet: {}: {problem}", path.display());
    }
    Ok(config)
}

fn user_ids(name: &str) -> Result<SpoolOwner> {
    let id = |flag: &str| -> Result<u32> {
        let out = std::process::Command::new("id")
            .args([flag, name])
            .output()?;
        if !out.status.success() {
            bail!("no user {name:?}");
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
    };
    Ok(SpoolOwner {
        uid: id("-u")?,
        gid: id("-g")?,
    })
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Init { config, owner } => {
            let config = read_config(&config)?;
            let owner = user_ids(owner.as_deref().unwrap_or(&config.user))?;
            let spool = Spool::create(&config.spool_dir, owner)?;
            println!("{}", spool.path().display());
        }
        Command::Enqueue {
            config,
            fields,
            report,
            core,
            zstd,
        } => {
            let config = read_config(&config)?;
            let spool = Spool::open(&config.spool_dir)?;
            let bytes =
                std::fs::read(&fields).with_context(|| format!("reading {}", fields.display()))?;
            let entry = export::Reader::new(bytes.as_slice(), export::ReadLimits::default())
                .next_entry()?
                .context("no entry in the fields file")?;
            let core = match core {
                Some(path) => {
                    let file = std::fs::File::open(&path)?;
                    let stored = file.metadata()?.len();
                    let size = if zstd {
                        let mut decoder = ::zstd::Decoder::new(std::fs::File::open(&path)?)?;
                        std::io::copy(&mut decoder, &mut std::io::sink())?
                    } else {
                        stored
                    };
                    Some(CoreSource {
                        file,
                        zstd,
                        size,
                        host_path: std::path::absolute(&path)?,
                    })
                }
                None => None,
            };
            let enqueued = spool.enqueue(
                NewCrash {
                    crash_id: None,
                    fields: entry.fields,
                    report_json: report.map(std::fs::read).transpose()?,
                    core,
                    host: HostIdentity::now(),
                },
                &config.limits,
            )?;
            for drop in &enqueued.drops {
                eprintln!(
                    "lttng-coredump-fleet: dropped the {} of crash {}: {}",
                    drop.what, drop.crash_id, drop.reason
                );
            }
            if let Some(error) = &enqueued.bound_error {
                eprintln!("lttng-coredump-fleet: {error}");
            }
            println!("{}", enqueued.crash_id);
        }
        Command::Submit { config, follow } => {
            let config = read_config(&config)?;
            let spool = Spool::open(&config.spool_dir)?;
            let Some(_lock) = spool.lock_submitter(false)? else {
                println!(
                    "another submitter is running on {}: it sends the queue",
                    spool.path().display()
                );
                return Ok(());
            };
            let log = Box::new(|level: Level, message: &str| {
                eprintln!("lttng-coredump-fleet: {level:?}: {message}");
            });
            let mut submitter = Submitter::new(
                spool,
                config.destinations(),
                config.limits,
                config.retry,
                log,
            );
            if follow {
                // SIGTERM's default action ends it: every state is on disk
                // and an unacknowledged crash is sent again by the next run.
                let stop = AtomicBool::new(false);
                submitter.follow(&stop)?;
            } else {
                let pass = submitter.submit_queued()?;
                println!(
                    "delivered {} acknowledgements, {} crashes fully sent, {} still queued",
                    pass.acknowledged, pass.completed, pass.remaining
                );
                if !pass.failures.is_empty() {
                    for (destination, error) in &pass.failures {
                        eprintln!("lttng-coredump-fleet: {destination}: {error}");
                    }
                    std::process::exit(2);
                }
            }
        }
        Command::Status { config, json } => {
            let config = read_config(&config)?;
            let spool = Spool::open(&config.spool_dir)?;
            let status = status::status(&spool, &config.destination_names())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", status.render());
            }
        }
        Command::List { journal_dir, json } => {
            let crashes = collector::read_journal_dir(&journal_dir, &ReadOptions::default())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&crashes)?);
            } else {
                for crash in &crashes {
                    println!(
                        "{}  {:<16} {:>7} {:<8} {:<10} {}{}",
                        crash.key,
                        crash.hostname.as_deref().unwrap_or("-"),
                        crash.pid.as_deref().unwrap_or("-"),
                        crash.signal.as_deref().unwrap_or("-"),
                        crash.core_storage.as_deref().unwrap_or("-"),
                        crash.exe.as_deref().unwrap_or("-"),
                        if crash.copies > 1 {
                            format!("  (received {} times)", crash.copies)
                        } else {
                            String::new()
                        }
                    );
                }
            }
        }
        Command::Problems { journal_dir, json } => {
            let crashes = collector::read_journal_dir(&journal_dir, &ReadOptions::default())?;
            let problems = collector::problems(&crashes);
            if json {
                println!("{}", serde_json::to_string_pretty(&problems)?);
            } else {
                for problem in &problems {
                    println!(
                        "{:>5}  {}  hosts: {}  programs: {}",
                        problem.count,
                        problem.signature,
                        problem.hosts.iter().cloned().collect::<Vec<_>>().join(","),
                        problem
                            .programs
                            .iter()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(",")
                    );
                }
            }
        }
    }
    Ok(())
}
