//! Where the tools' output goes, as coredumpctl sends it: through a pager
//! (`$PAGER`, else `less -FRSXM`) and in colour on a terminal, neither in a
//! pipe; JSON as one object a line or one pretty array; and the programs
//! the tools run (gdb, babeltrace2) named with their Debian package when
//! they are missing. SIGTERM or SIGHUP ends the pager with the tool and
//! puts the terminal back ([`super::termination`]).

use super::JsonMode;
use std::io::{IsTerminal, Write};
use std::process::{Child, Command, Stdio};

/// The output of one command: whether it is coloured, and the pager it
/// goes through (waited for when this is dropped).
pub struct Output {
    pub colour: bool,
    pager: Option<Child>,
    /// While the pager runs: what SIGTERM and SIGHUP do to it.
    on_termination: Option<super::termination::TerminalProgram>,
}

impl Output {
    /// For a command whose output is read by people: a pager and colour
    /// when standard output is a terminal (and `no_pager` is not set).
    pub fn start(no_pager: bool) -> Output {
        let terminal = std::io::stdout().is_terminal();
        let colour = terminal
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            && std::env::var_os("TERM").is_none_or(|t| t != "dumb");
        let (pager, on_termination) = if terminal && !no_pager {
            match start_pager() {
                Some((pager, on_termination)) => (Some(pager), Some(on_termination)),
                None => (None, None),
            }
        } else {
            (None, None)
        };
        Output {
            colour,
            pager,
            on_termination,
        }
    }

    /// Colour on a terminal, never a pager (`trace`, whose readers run
    /// as the crashing user and which a terminal may hold for long).
    pub fn without_pager() -> Output {
        Output {
            colour: Self::start(true).colour,
            pager: None,
            on_termination: None,
        }
    }

    /// Plain output: no pager, no colour (JSON, a core).
    pub fn plain() -> Output {
        Output {
            colour: false,
            pager: None,
            on_termination: None,
        }
    }

    /// `text` in bold, when coloured.
    pub fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }

    /// `text` in red (problems), when coloured.
    pub fn red(&self, text: &str) -> String {
        self.paint("1;31", text)
    }

    /// `text` in yellow (a warning: gone, cut), when coloured.
    pub fn yellow(&self, text: &str) -> String {
        self.paint("33", text)
    }

    /// `text` in green (there), when coloured.
    pub fn green(&self, text: &str) -> String {
        self.paint("32", text)
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.colour && !text.is_empty() {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        let Some(mut pager) = self.pager.take() else {
            return;
        };
        let _ = std::io::stdout().flush();
        // Standard output was the pager's pipe: closing it is the pager's
        // end of input; then the pager is waited for, as it has the terminal.
        if let Ok(null) = std::fs::File::options().write(true).open("/dev/null") {
            let _ = rustix::stdio::dup2_stdout(&null);
        }
        let _ = pager.wait();
        // Ended by a clean-up: the tool ends by the signal, not here.
        super::termination::hold_if_terminating();
        self.on_termination = None;
    }
}

/// The pager: `$PAGER` (run by the shell; empty or `cat`: none), else
/// `less -FRSXM` (quits when the text fits a screen, keeps colours, no
/// line wrapping); standard output is made its pipe. `None` when there is
/// none to run. SIGTERM or SIGHUP to the tool then ends the pager too and
/// puts the terminal back as it was before the pager changed it.
fn start_pager() -> Option<(Child, super::termination::TerminalProgram)> {
    let mut command = match std::env::var("PAGER") {
        Ok(pager) if pager.trim().is_empty() || pager.trim() == "cat" => return None,
        Ok(pager) => {
            let mut command = Command::new("/bin/sh");
            command.arg("-c").arg(pager);
            command
        }
        Err(_) => {
            let mut command = Command::new("less");
            command.arg("-FRSXM");
            command
        }
    };
    let on_termination = super::termination::TerminalProgram::register(|| {});
    let mut child = command.stdin(Stdio::piped()).spawn().ok()?;
    on_termination.started(child.id());
    let stdin = child.stdin.take()?;
    let _ = std::io::stdout().flush();
    if rustix::stdio::dup2_stdout(&stdin).is_err() {
        drop(stdin);
        let _ = child.wait();
        return None;
    }
    // Ctrl-C and Ctrl-\ on the terminal are the pager's (less stops a
    // search with them): this process goes on writing and waits for it.
    super::termination::hear_but_not_obey_interrupts();
    Some((child, on_termination))
}

/// Whether `err` is a write to a pipe whose reader is gone (a pager quit
/// early, `| head`): the command's output is then simply not wanted.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Writes `items` as JSON: one compact object a line (`short`), or one
/// indented array (`pretty`).
pub fn write_json(
    out: &mut impl Write,
    mode: JsonMode,
    items: &[serde_json::Value],
) -> std::io::Result<()> {
    match mode {
        JsonMode::Pretty => {
            serde_json::to_writer_pretty(&mut *out, items)?;
            writeln!(out)
        }
        JsonMode::Short | JsonMode::Off => {
            for item in items {
                serde_json::to_writer(&mut *out, item)?;
                writeln!(out)?;
            }
            Ok(())
        }
    }
}

/// [`write_json`] to standard output, flushed.
pub fn print_json(mode: JsonMode, items: &[serde_json::Value]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    write_json(&mut out, mode, items)?;
    out.flush()
}

/// The Debian package of a program the tools run, for the hint when it is
/// missing.
fn package_of(program: &str) -> Option<&'static str> {
    Some(match program {
        "gdb" => "gdb",
        "babeltrace2" => "babeltrace2",
        "lldb" => "lldb",
        "less" => "less",
        _ => return None,
    })
}

/// An error when `program` (a name looked up in PATH, or a path) cannot be
/// run, naming the package that has it.
pub fn require_program(program: &str) -> anyhow::Result<()> {
    if found(program) {
        return Ok(());
    }
    let name = std::path::Path::new(program)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| program.to_string());
    match package_of(&name) {
        Some(package) => anyhow::bail!(
            "{program} is not installed: it is in the Debian package {package} (apt-get install \
             {package})"
        ),
        None => anyhow::bail!("cannot find the program {program:?} (not in PATH)"),
    }
}

/// Whether `program` names an executable file, directly or in PATH.
fn found(program: &str) -> bool {
    let executable = |path: &std::path::Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        return executable(std::path::Path::new(program));
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path).any(|dir| executable(&dir.join(program)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_short_is_a_line_an_object_pretty_one_array() {
        let items = vec![serde_json::json!({"a": 1}), serde_json::json!({"b": [2]})];
        let mut short = Vec::new();
        write_json(&mut short, JsonMode::Short, &items).unwrap();
        assert_eq!(
            String::from_utf8(short).unwrap(),
            "{\"a\":1}\n{\"b\":[2]}\n"
        );
        let mut pretty = Vec::new();
        write_json(&mut pretty, JsonMode::Pretty, &items).unwrap();
        let back: serde_json::Value = serde_json::from_slice(&pretty).unwrap();
        assert_eq!(back, serde_json::Value::Array(items));
        assert!(String::from_utf8(pretty).unwrap().contains("\n  "));
    }

    #[test]
    fn a_missing_program_is_named_with_its_package() {
        assert!(require_program("sh").is_ok());
        let err = require_program("/nonexistent/gdb").unwrap_err().to_string();
        assert!(
            err.contains("Debian package gdb") && err.contains("apt-get install gdb"),
            "{err}"
        );
        let err = require_program("/nonexistent/babeltrace2")
            .unwrap_err()
            .to_string();
        assert!(err.contains("apt-get install babeltrace2"), "{err}");
        let err = require_program("no-such-debugger-xyz")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not in PATH"), "{err}");
    }
}
