//! The submitter: sends what the spool holds (`crash/submit.rs` queues
//! it) to the `[submit]` destinations, once (`lttng-coredump submit`) or
//! for good (`submit --follow`: what the unit runs, and the child `serve`
//! starts), always as the unprivileged `[submit] user` (`lttng-coredump`),
//! never as root: started as root, it takes that user's ids first thing,
//! before anything else runs. The fleet crate's `Submitter` does the work
//! (acknowledgements, back-off, the state of each destination).

use crate::base::config::{Config, SubmitConfig};
use anyhow::{anyhow, bail, Context, Result};
use lttng_coredump_fleet::submit::{Level, Submitter};
use lttng_coredump_fleet::{Spool, SpoolOwner};
use std::path::Path;
use std::sync::atomic::AtomicBool;

/// The `[submit]` section of the configuration at `config` (the default
/// file when `None`), read as the handler reads it; an error when there is
/// none.
pub fn submit_config(config: Option<&Path>) -> Result<SubmitConfig> {
    let loaded = Config::load(config);
    if let Some(error) = &loaded.error {
        eprintln!("lttng-coredump: {error}");
    }
    loaded.config.submit.ok_or_else(|| {
        anyhow!(
            "the configuration {} has no [submit] section: nothing is shipped",
            config
                .unwrap_or(Path::new(crate::base::config::DEFAULT_CONFIG_PATH))
                .display()
        )
    })
}

/// The user `name`'s uid and primary gid, from the user database
/// (`/etc/passwd`: the system user install creates is there).
pub fn user_ids(name: &str) -> Option<SpoolOwner> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name).then_some(())?;
        let _password = fields.next()?;
        let uid = fields.next()?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some(SpoolOwner { uid, gid })
    })
}

/// Becomes `[submit] user` when running as root (its groups, its gid, its
/// uid, for good); as anyone else, stays as it is (the spool's permissions
/// decide). Must be called while the process has one thread.
pub fn become_submitter(submit: &SubmitConfig) -> Result<()> {
    if !rustix::process::geteuid().is_root() {
        return Ok(());
    }
    let owner = user_ids(&submit.user).ok_or_else(|| {
        anyhow!(
            "no user {:?} (install creates it): the submitter never runs as root",
            submit.user
        )
    })?;
    if owner.uid == 0 {
        bail!(
            "[submit] user {:?} is root: the submitter never runs as root",
            submit.user
        );
    }
    let groups = lttng_coredump_engine::identity::Identity::of_user(owner.uid)
        .map(|id| id.groups().to_vec())
        .unwrap_or_else(|_| vec![owner.gid]);
    if !crate::base::user_child::single_threaded()? {
        bail!("the submitter is not single-threaded: it cannot take its user's ids");
    }
    crate::base::user_child::become_ids(owner.uid, owner.gid, &groups)
        .with_context(|| format!("becoming the user {}", submit.user))?;
    rustix::thread::set_no_new_privs(true).context("no_new_privs")?;
    Ok(())
}

/// What one pass (or a `--follow` run, when it ends) did.
pub struct Outcome {
    pub report: String,
    /// Some destination failed (the crash stays queued, sent later).
    pub failed: bool,
}

/// Sends the queue once, or keeps sending (`follow`, until killed:
/// every state is on disk, and a crash sent but not yet marked is sent
/// again by the next run).
/// `parent`: the process this one is the child of (`serve`), whose end
/// ends it too.
pub fn run(submit: &SubmitConfig, follow: bool, parent: Option<u32>) -> Result<Outcome> {
    become_submitter(submit)?;
    if let Some(parent) = parent {
        // Set after the ids changed (a change of ids clears it), then the
        // parent checked: it may have ended before.
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
            .context("PR_SET_PDEATHSIG")?;
        let now = rustix::process::getppid().map(|p| p.as_raw_nonzero().get() as u32);
        if now != Some(parent) {
            bail!("the parent process {parent} is gone");
        }
    }
    let spool = Spool::open(&submit.spool_dir)
        .map_err(|e| anyhow!("{e} (install creates the spool when [submit] is configured)"))?;
    let Some(_lock) = spool.lock_submitter(false)? else {
        return Ok(Outcome {
            report: format!(
                "another submitter is running on {}: it sends the queue\n",
                spool.path().display()
            ),
            failed: false,
        });
    };
    let log = Box::new(|level: Level, message: &str| {
        eprintln!("lttng-coredump submit: {level:?}: {message}");
    });
    let mut submitter = Submitter::new(
        spool,
        submit.destinations(),
        submit.limits,
        submit.retry,
        log,
    );
    if follow {
        let stop = AtomicBool::new(false);
        submitter.follow(&stop)?;
        return Ok(Outcome {
            report: String::new(),
            failed: false,
        });
    }
    let pass = submitter.submit_queued()?;
    let mut report = format!(
        "delivered {} acknowledgements, {} crashes fully sent, {} still queued\n",
        pass.acknowledged, pass.completed, pass.remaining
    );
    for (destination, error) in &pass.failures {
        report.push_str(&format!("failed: {destination}: {error}\n"));
    }
    Ok(Outcome {
        report,
        failed: !pass.failures.is_empty(),
    })
}

/// `serve`'s submitter: `lttng-coredump submit --follow` run as a child
/// (which takes `[submit] user`'s ids itself, first thing), started again
/// a few seconds after it dies, killed when this is dropped (the service
/// stops). Every state is on disk: a child killed at any point loses
/// nothing.
///
/// `[submit]` follows the configuration file as the crashes' keys do
/// (each crash reads the file; the service has no reload): the section
/// is read again every [`CONFIG_INTERVAL`], and when it changed the child
/// is stopped and, while there is a section, started with the new one
/// (a section added after the service started starts one, a section
/// removed stops it).
pub struct SubmitterChild {
    stop: std::sync::Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How long the supervisor waits before starting a child that died.
const RESTART_DELAY: std::time::Duration = std::time::Duration::from_secs(5);
/// How often it looks at the child and at the stop flag.
const CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);
/// How often it reads `[submit]` again.
pub const CONFIG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

impl SubmitterChild {
    /// Starts the supervisor of the submitter of the configuration at
    /// `config` (the default file when `None`): a child runs while that
    /// file has a `[submit]` section.
    pub fn start(config: Option<&Path>, log: &mut crate::base::syslog::Log) -> Option<Self> {
        let exe = match std::env::current_exe() {
            Ok(exe) => exe,
            Err(err) => {
                log.warning(format!(
                    "cannot start the submitter: this program's path: {err}"
                ));
                return None;
            }
        };
        if Config::load(config).config.submit.is_some() {
            log.notice("the submitter of the spool runs as a child of the service".to_string());
        }
        let config = config.map(Path::to_path_buf);
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("submitter".into())
            .spawn(move || {
                let read = || Config::load(config.as_deref()).config.submit;
                let spawn = |_: &SubmitConfig| submitter_command(&exe, config.as_deref()).spawn();
                supervise(read, spawn, &stopping, RESTART_DELAY);
            })
            .map_err(|err| log.warning(format!("cannot start the submitter: {err}")))
            .ok()?;
        Some(SubmitterChild {
            stop,
            thread: Some(thread),
        })
    }
}

/// `lttng-coredump submit --follow`, this process its parent.
fn submitter_command(exe: &Path, config: Option<&Path>) -> std::process::Command {
    let mut command = std::process::Command::new(exe);
    command
        .args(["submit", "--follow", "--parent"])
        .arg(std::process::id().to_string());
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    command.stdin(std::process::Stdio::null());
    command
}

/// Keeps one child started by `spawn` running while `read` (the
/// configuration's `[submit]`, read again every [`CONFIG_INTERVAL`]) gives
/// a section, started again `restart_delay` after it dies, and started
/// anew at once when the section changes; until `stop`.
fn supervise(
    read: impl Fn() -> Option<SubmitConfig>,
    mut spawn: impl FnMut(&SubmitConfig) -> std::io::Result<std::process::Child>,
    stop: &AtomicBool,
    restart_delay: std::time::Duration,
) {
    use std::sync::atomic::Ordering;
    use std::time::Instant;
    let end = |child: &mut Option<std::process::Child>| {
        if let Some(mut child) = child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    };
    let mut wanted = read();
    let mut read_at = Instant::now() + CONFIG_INTERVAL;
    let mut child: Option<std::process::Child> = None;
    let mut start_at = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        if Instant::now() >= read_at {
            read_at = Instant::now() + CONFIG_INTERVAL;
            let now = read();
            if now != wanted {
                eprintln!(
                    "lttng-coredump serve: [submit] {} in the configuration: the submitter {}",
                    if wanted.is_none() {
                        "added"
                    } else if now.is_none() {
                        "removed"
                    } else {
                        "changed"
                    },
                    if now.is_some() {
                        "starts with it"
                    } else {
                        "stops"
                    }
                );
                wanted = now;
                end(&mut child);
                start_at = Instant::now();
            }
        }
        if let Some(running) = &mut child {
            match running.try_wait() {
                Ok(None) => {}
                Ok(Some(status)) => {
                    eprintln!(
                        "lttng-coredump serve: the submitter ended ({status}); started again in \
                         {} s",
                        restart_delay.as_secs()
                    );
                    child = None;
                    start_at = Instant::now() + restart_delay;
                }
                Err(_) => {
                    end(&mut child);
                    start_at = Instant::now() + restart_delay;
                }
            }
        } else if let Some(submit) = &wanted {
            if Instant::now() >= start_at {
                match spawn(submit) {
                    Ok(started) => child = Some(started),
                    Err(err) => {
                        eprintln!("lttng-coredump serve: cannot start the submitter: {err}");
                        start_at = Instant::now() + restart_delay;
                    }
                }
            }
        }
        std::thread::sleep(CHECK_INTERVAL);
    }
    end(&mut child);
}

impl Drop for SubmitterChild {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn root_is_found_and_nobody_invented() {
        assert_eq!(user_ids("root"), Some(SpoolOwner { uid: 0, gid: 0 }));
        assert_eq!(user_ids("no-such-user-of-lttng-coredump"), None);
    }

    /// A stand-in submitter: `sleep` with its standard output the write
    /// end of a pipe, whose read end (returned) reads end of file once the
    /// child is gone.
    fn stand_in() -> std::io::Result<(std::process::Child, std::fs::File)> {
        let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        let child = std::process::Command::new("sleep")
            .arg("3600")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::from(write))
            .spawn()?;
        Ok((child, std::fs::File::from(read)))
    }

    /// Blocks until the stand-in behind `read` has ended.
    fn ended(read: std::fs::File) {
        use std::io::Read;
        let mut rest = Vec::new();
        (&read).read_to_end(&mut rest).unwrap();
    }

    #[test]
    fn a_changed_submit_section_restarts_the_submitter_an_added_one_starts_it_a_removed_one_stops_it(
    ) {
        use std::sync::mpsc;
        use std::sync::{Arc, Mutex};
        let section = |spool: &str| SubmitConfig {
            spool_dir: spool.into(),
            ..SubmitConfig::default()
        };
        let config: Arc<Mutex<Option<SubmitConfig>>> = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        // Each start: the section it was given, and its stand-in's pipe.
        let (started, starts) = mpsc::channel::<(PathBuf, std::fs::File)>();
        let thread = {
            let (config, stop) = (config.clone(), stop.clone());
            std::thread::spawn(move || {
                supervise(
                    || config.lock().unwrap().clone(),
                    |submit| {
                        let (child, read) = stand_in()?;
                        started.send((submit.spool_dir.clone(), read)).unwrap();
                        Ok(child)
                    },
                    &stop,
                    // A dead child is not part of this test.
                    std::time::Duration::from_secs(3600),
                )
            })
        };
        // No section: nothing starts (the supervisor reads the section at
        // least twice before it is added).
        std::thread::sleep(3 * CONFIG_INTERVAL);
        assert!(starts.try_recv().is_err());
        // Added: started with it.
        *config.lock().unwrap() = Some(section("/spool/a"));
        let (spool, first) = starts.recv().unwrap();
        assert_eq!(spool, PathBuf::from("/spool/a"));
        // Changed: the first one ends and another starts with the new one.
        *config.lock().unwrap() = Some(section("/spool/b"));
        ended(first);
        let (spool, second) = starts.recv().unwrap();
        assert_eq!(spool, PathBuf::from("/spool/b"));
        // Removed: it ends, and none starts.
        *config.lock().unwrap() = None;
        ended(second);
        std::thread::sleep(3 * CONFIG_INTERVAL);
        assert!(starts.try_recv().is_err());
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        thread.join().unwrap();
    }
}
