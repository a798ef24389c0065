//! Handing the core to another handler too (for example systemd-coredump):
//! the configured command gets the very bytes the handler reads, on its
//! stdin, through a non-blocking pipe. A chained command that is slow,
//! stops reading or fails costs at most its stall timeout and never the
//! handler's own copy: it is given up on and the handler goes on.

use crate::base::config::ChainConfig;
use crate::crash::context::CrashContext;
use crate::store::record::ChainOutcome;
use rustix::event::{PollFd, PollFlags};
use std::ffi::OsString;
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// A running chained command.
pub struct Chain {
    command: Vec<String>,
    child: Child,
    stdin: Option<ChildStdin>,
    stall_timeout: Duration,
    exit_timeout: Duration,
    bytes_given: u64,
    /// Why it stopped receiving data before the end, if it did.
    stopped: Option<String>,
    /// Whether it must be killed at the end (it was given up on).
    abandoned: bool,
    errors: Vec<String>,
}

/// Fills `{pid}`, `{uid}`... in one argument from the crash; an unknown or
/// empty field gives an empty string.
///
/// The crashing process chooses its name (`{comm}`), its host name (in a
/// UTS namespace of its own: `{hostname}`) and its executable's name: a
/// filled argument whose template does not itself start with `-` never
/// starts with `-`, so that no value can become an option of the chained
/// command (`--help`, `-o/etc/x`). Such an argument gets a `_` in front
/// (`_--help`): the value stays readable and is never cut.
pub fn fill_template(template: &str, context: &CrashContext) -> OsString {
    let mut filled = fill_placeholders(template, context).into_vec();
    if filled.first() == Some(&b'-') && !template.starts_with('-') {
        filled.insert(0, b'_');
    }
    OsString::from_vec(filled)
}

fn fill_placeholders(template: &str, context: &CrashContext) -> OsString {
    let number = |value: Option<String>| value.map(String::into_bytes).unwrap_or_default();
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.extend_from_slice(&rest.as_bytes()[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.extend_from_slice(&rest.as_bytes()[open..]);
            rest = "";
            break;
        };
        let value = match &after[..close] {
            "pid" => Some(number(context.pid.map(|v| v.to_string()))),
            "uid" => Some(number(context.uid.map(|v| v.to_string()))),
            "gid" => Some(number(context.gid.map(|v| v.to_string()))),
            "signal" => Some(number(context.signal.map(|v| v.to_string()))),
            "time" => Some(number(context.time.map(|v| v.to_string()))),
            "core_limit" => Some(number(context.core_limit.map(|v| v.to_string()))),
            "dump_mode" => Some(number(context.dump_mode.map(|v| v.to_string()))),
            "pidfd" => Some(number(context.pidfd.map(|v| v.to_string()))),
            "comm" => Some(context.comm.clone().unwrap_or_default()),
            "hostname" => Some(context.hostname.clone().unwrap_or_default()),
            "exe" => Some(context.exe_path_from_kernel().unwrap_or_default()),
            _ => None,
        };
        match value {
            Some(value) => out.extend_from_slice(&value),
            None => out.extend_from_slice(&rest.as_bytes()[open..open + close + 2]),
        }
        rest = &after[close + 1..];
    }
    out.extend_from_slice(rest.as_bytes());
    OsString::from_vec(out)
}

impl Chain {
    /// Starts the configured command with its arguments filled in.
    pub fn start(config: &ChainConfig, context: &CrashContext) -> Result<Chain, String> {
        let filled: Vec<OsString> = config
            .command
            .iter()
            .map(|part| fill_template(part, context))
            .collect();
        let display: Vec<String> = filled
            .iter()
            .map(|part| crate::base::sanitize::for_log(part.as_bytes()))
            .collect();
        let (program, arguments) = filled.split_first().ok_or("empty chain command")?;
        let mut child = Command::new(program)
            .args(arguments)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .current_dir("/")
            .spawn()
            .map_err(|err| format!("cannot start chained command {display:?}: {err}"))?;
        let stdin = child.stdin.take().expect("stdin was piped");
        let mut errors = Vec::new();
        if let Err(err) = rustix::io::ioctl_fionbio(&stdin, true) {
            // A blocking pipe could hang the handler on a command that stops
            // reading: better to hand it nothing.
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "cannot make the pipe to {display:?} non-blocking: {err}"
            ));
        }
        // A bigger pipe means fewer wake-ups; the default size works too.
        if let Err(err) = rustix::pipe::fcntl_setpipe_size(&stdin, 1 << 20) {
            errors.push(format!(
                "pipe to the chained command keeps its default size: {err}"
            ));
        }
        Ok(Chain {
            command: display,
            child,
            stdin: Some(stdin),
            stall_timeout: config.stall_timeout,
            exit_timeout: config.exit_timeout,
            bytes_given: 0,
            stopped: None,
            abandoned: false,
            errors,
        })
    }

    /// Whether it still takes data.
    pub fn wants_more(&self) -> bool {
        self.stdin.is_some()
    }

    /// Hands `data` over, waiting while the pipe is full for at most the
    /// stall timeout without progress; gives up on the command then.
    pub fn offer(&mut self, mut data: &[u8]) {
        let Some(stdin) = self.stdin.as_mut() else {
            return;
        };
        let mut last_progress = Instant::now();
        while !data.is_empty() {
            match stdin.write(data) {
                Ok(0) => {
                    self.stop("its input accepted no more data".into(), true);
                    return;
                }
                Ok(written) => {
                    data = &data[written..];
                    self.bytes_given += written as u64;
                    last_progress = Instant::now();
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    let waited = last_progress.elapsed();
                    if waited >= self.stall_timeout {
                        self.stop(
                            format!("it accepted no data for {:.1} s", waited.as_secs_f64()),
                            true,
                        );
                        return;
                    }
                    let timeout = rustix::event::Timespec::try_from(self.stall_timeout - waited)
                        .unwrap_or(rustix::event::Timespec {
                            tv_sec: 1,
                            tv_nsec: 0,
                        });
                    let mut fds = [PollFd::new(stdin, PollFlags::OUT)];
                    let _ = rustix::event::poll(&mut fds, Some(&timeout));
                }
                Err(err) if err.kind() == io::ErrorKind::BrokenPipe => {
                    // The command closed its input (exited or finished early).
                    self.stop("it closed its input".into(), false);
                    return;
                }
                Err(err) => {
                    self.stop(format!("writing to it failed: {err}"), true);
                    return;
                }
            }
        }
    }

    fn stop(&mut self, reason: String, abandon: bool) {
        self.stdin = None;
        self.abandoned = abandon;
        self.stopped = Some(format!("after {} bytes, {reason}", self.bytes_given));
    }

    /// Closes its input and waits for it to exit (at most the exit timeout;
    /// a command given up on, or still running then, is killed).
    pub fn finish(mut self, whole_core_len: Option<u64>) -> ChainOutcome {
        self.stdin = None;
        if let Some(stopped) = &self.stopped {
            self.errors.push(format!(
                "chained command stopped receiving the core {stopped}"
            ));
        }
        let ended = if self.abandoned {
            self.kill("it was given up on")
        } else {
            let deadline = Instant::now() + self.exit_timeout;
            loop {
                match self.child.try_wait() {
                    Ok(Some(status)) => break describe_status(status),
                    Ok(None) if Instant::now() >= deadline => {
                        let ended = self.kill(&format!(
                            "still running {:.1} s after the end of the core",
                            self.exit_timeout.as_secs_f64()
                        ));
                        self.errors.push(format!("chained command {ended}"));
                        break ended;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                    Err(err) => break format!("cannot wait for it: {err}"),
                }
            }
        };
        if !ended.ends_with("exit status 0") && !self.errors.iter().any(|e| e.contains(&ended)) {
            self.errors.push(format!("chained command ended: {ended}"));
        }
        ChainOutcome {
            command: self.command,
            bytes_given: self.bytes_given,
            complete: self.stopped.is_none()
                && whole_core_len.is_some_and(|len| len == self.bytes_given),
            ended,
            errors: self.errors,
        }
    }

    fn kill(&mut self, why: &str) -> String {
        let _ = self.child.kill();
        match self.child.wait() {
            Ok(status) => format!("killed ({why}): {}", describe_status(status)),
            Err(err) => format!("killed ({why}), cannot wait for it: {err}"),
        }
    }
}

fn describe_status(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!(
            "killed by signal {signal} ({})",
            crate::crash::context::signal_name(signal).unwrap_or("?")
        ),
        _ => format!("{status}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crash() -> CrashContext {
        CrashContext {
            pid: Some(42),
            uid: Some(1000),
            gid: Some(100),
            signal: Some(11),
            time: Some(1_700_000_000),
            comm: Some(b"we ird\n\xff".to_vec()),
            exe_path_bang: Some(b"!usr!bin!x".to_vec()),
            ..CrashContext::default()
        }
    }

    fn config(command: &[&str], stall_ms: u64) -> ChainConfig {
        ChainConfig {
            command: command.iter().map(|s| s.to_string()).collect(),
            stall_timeout: Duration::from_millis(stall_ms),
            exit_timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn templates_are_filled() {
        let args = crash();
        assert_eq!(fill_template("{pid}", &args), "42");
        assert_eq!(fill_template("--uid={uid}:{gid}", &args), "--uid=1000:100");
        assert_eq!(fill_template("{signal} {time}", &args), "11 1700000000");
        assert_eq!(fill_template("{exe}", &args), "/usr/bin/x");
        assert_eq!(fill_template("{comm}", &args).as_bytes(), b"we ird\n\xff");
        assert_eq!(fill_template("{hostname}{core_limit}", &args), "");
        assert_eq!(fill_template("{nope} {pid", &args), "{nope} {pid");
        assert_eq!(fill_template("plain", &args), "plain");
        // Values never become options; templates that are options stay so.
        let hostile = CrashContext {
            comm: Some(b"--help".to_vec()),
            hostname: Some(b"-oevil".to_vec()),
            ..crash()
        };
        assert_eq!(fill_template("{comm}", &hostile), "_--help");
        assert_eq!(fill_template("{hostname}", &hostile), "_-oevil");
        assert_eq!(fill_template("{comm}{pid}", &hostile), "_--help42");
        assert_eq!(fill_template("x{comm}", &hostile), "x--help");
        assert_eq!(fill_template("--name={comm}", &hostile), "--name=--help");
        assert_eq!(fill_template("-", &hostile), "-");
    }

    fn scratch(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("handler-chain-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_chained_command_gets_every_byte_and_its_arguments() {
        let dir = scratch("copy");
        let out = dir.join("out");
        let script = format!(
            "cat > {}; echo \"$1 $2\" > {}.args",
            out.display(),
            out.display()
        );
        let mut chain = Chain::start(
            &config(&["/bin/sh", "-c", &script, "sh", "{pid}", "{comm}"], 5000),
            &crash(),
        )
        .unwrap();
        let data: Vec<u8> = (0..(3 << 20)).map(|i| (i % 256) as u8).collect();
        for piece in data.chunks(1 << 20) {
            chain.offer(piece);
        }
        let outcome = chain.finish(Some(data.len() as u64));
        assert!(outcome.complete, "{outcome:?}");
        assert_eq!(outcome.ended, "exit status 0");
        assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
        assert_eq!(std::fs::read(&out).unwrap(), data);
        assert_eq!(
            std::fs::read(dir.join("out.args")).unwrap(),
            b"42 we ird\n\xff\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_command_that_never_reads_is_given_up_after_its_stall_timeout() {
        let mut chain = Chain::start(&config(&["/bin/sleep", "60"], 300), &crash()).unwrap();
        let started = Instant::now();
        let data = vec![7u8; 8 << 20];
        for piece in data.chunks(1 << 20) {
            chain.offer(piece);
        }
        assert!(!chain.wants_more());
        let outcome = chain.finish(Some(data.len() as u64));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(!outcome.complete);
        assert!(outcome.ended.starts_with("killed"), "{}", outcome.ended);
        assert!(
            outcome
                .errors
                .iter()
                .any(|e| e.contains("accepted no data")),
            "{:?}",
            outcome.errors
        );
    }

    #[test]
    fn a_command_that_fails_at_once_costs_nothing() {
        let mut chain = Chain::start(&config(&["/bin/false"], 5000), &crash()).unwrap();
        let data = vec![1u8; 4 << 20];
        for piece in data.chunks(1 << 20) {
            chain.offer(piece);
        }
        let outcome = chain.finish(Some(data.len() as u64));
        assert!(!outcome.complete);
        assert_eq!(outcome.ended, "exit status 1");
        assert!(!outcome.errors.is_empty());

        let err = Chain::start(&config(&["/nonexistent/handler"], 5000), &crash())
            .err()
            .unwrap();
        assert!(err.contains("cannot start"), "{err}");
    }
}
