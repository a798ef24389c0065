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
pub struct SubmitterChild {
    stop: std::sync::Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How long the supervisor waits before starting a child that died.
const RESTART_DELAY: std::time::Duration = std::time::Duration::from_secs(5);
/// How often it looks at the child and at the stop flag.
const CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);

impl SubmitterChild {
    /// Starts it when the configuration at `config` has a `[submit]`
    /// section; `None` (and nothing runs) otherwise.
    pub fn start(config: Option<&Path>, log: &mut crate::base::syslog::Log) -> Option<Self> {
        Config::load(config).config.submit.as_ref()?;
        let exe = match std::env::current_exe() {
            Ok(exe) => exe,
            Err(err) => {
                log.warning(format!(
                    "cannot start the submitter: this program's path: {err}"
                ));
                return None;
            }
        };
        let config = config.map(Path::to_path_buf);
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("submitter".into())
            .spawn(move || supervise(&exe, config.as_deref(), &stopping))
            .map_err(|err| log.warning(format!("cannot start the submitter: {err}")))
            .ok()?;
        log.notice("the submitter of the spool runs as a child of the service".to_string());
        Some(SubmitterChild {
            stop,
            thread: Some(thread),
        })
    }
}

fn supervise(exe: &Path, config: Option<&Path>, stop: &AtomicBool) {
    use std::sync::atomic::Ordering;
    while !stop.load(Ordering::SeqCst) {
        let mut command = std::process::Command::new(exe);
        command
            .args(["submit", "--follow", "--parent"])
            .arg(std::process::id().to_string());
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        command.stdin(std::process::Stdio::null());
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(err) => {
                eprintln!("lttng-coredump serve: cannot start the submitter: {err}");
                sleep_unless(stop, RESTART_DELAY);
                continue;
            }
        };
        loop {
            if stop.load(Ordering::SeqCst) {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            match child.try_wait() {
                Ok(Some(status)) => {
                    eprintln!(
                        "lttng-coredump serve: the submitter ended ({status}); started again in \
                         {} s",
                        RESTART_DELAY.as_secs()
                    );
                    break;
                }
                Ok(None) => std::thread::sleep(CHECK_INTERVAL),
                Err(_) => break,
            }
        }
        sleep_unless(stop, RESTART_DELAY);
    }
}

fn sleep_unless(stop: &AtomicBool, total: std::time::Duration) {
    let end = std::time::Instant::now() + total;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) && std::time::Instant::now() < end {
        std::thread::sleep(CHECK_INTERVAL);
    }
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

    #[test]
    fn root_is_found_and_nobody_invented() {
        assert_eq!(user_ids("root"), Some(SpoolOwner { uid: 0, gid: 0 }));
        assert_eq!(user_ids("no-such-user-of-lttng-coredump"), None);
    }
}
