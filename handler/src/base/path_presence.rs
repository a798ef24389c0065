//! Whether the directories a record names are still there (a crash's
//! snapshots), looked at by a child ([`crate::base::user_child`]), never
//! by the tool itself: those paths came from a session daemon, the crashing
//! user's own or a root daemon session of a `tracing` group member, and may
//! lie on a FUSE file system of that user's that never answers. A `stat`
//! there waits for good, and once the file system has read the request not
//! even SIGKILL ends the wait: done by `list` or `info` run as root, it
//! would hang root's tool (and the shell that waits for it). Each group of
//! paths is looked at by one child, acting as the identity given (the
//! crashing user for their own daemon's snapshots; the caller's ids
//! otherwise), all groups at once, within [`DEADLINE`]; the child answers
//! path by path, so that the paths before one that hangs are still known.
//! A path the child did not answer for is unknown, and the child that hangs
//! is killed and left behind (it holds nothing of the tool's).

use crate::base::user_child::{Input, UserCommand, Who};
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// The user-side task's name (registered in `tools::user_side::TASKS`).
pub const TASK: &str = "dirs-present";
/// How long the look may take in all.
pub const DEADLINE: Duration = Duration::from_secs(10);
/// The most bytes of paths one child is given.
const MAX_INPUT: u64 = 16 << 20;

/// The task: the paths on standard input, each ended by a NUL; for each, in
/// order, `y` (a directory) or `n` (anything else, or nothing) on standard
/// output, written at once.
pub fn task(_args: &[OsString]) -> ExitCode {
    let mut input = Vec::new();
    if std::io::stdin()
        .take(MAX_INPUT)
        .read_to_end(&mut input)
        .is_err()
    {
        return ExitCode::from(2);
    }
    let mut out = std::io::stdout().lock();
    for path in input.split(|b| *b == 0).filter(|p| !p.is_empty()) {
        let path = Path::new(OsStr::from_bytes(path));
        let answer = if std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
            b'y'
        } else {
            b'n'
        };
        if out.write_all(&[answer]).and_then(|()| out.flush()).is_err() {
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}

/// For each group (an identity, `None`: the caller's own, and its paths),
/// whether each path is a directory: `None` where its child gave no
/// answer within `deadline`.
pub fn look(groups: &[(Option<Who>, Vec<PathBuf>)], deadline: Duration) -> Vec<Vec<Option<bool>>> {
    std::thread::scope(|scope| {
        let looks: Vec<_> = groups
            .iter()
            .map(|(who, paths)| scope.spawn(move || look_as(who.clone(), paths, deadline)))
            .collect();
        looks
            .into_iter()
            .zip(groups)
            .map(|(look, (_, paths))| look.join().unwrap_or_else(|_| vec![None; paths.len()]))
            .collect()
    })
}

/// One child's look at `paths`.
fn look_as(who: Option<Who>, paths: &[PathBuf], deadline: Duration) -> Vec<Option<bool>> {
    let mut answers = vec![None; paths.len()];
    if paths.is_empty() {
        return answers;
    }
    let mut input = Vec::new();
    for path in paths {
        input.extend_from_slice(path.as_os_str().as_bytes());
        input.push(0);
    }
    let Ok(mut running) = UserCommand::task(who, TASK)
        .deadline(deadline)
        .max_output(paths.len() as u64)
        .spawn(Input::Bytes(input))
    else {
        return answers;
    };
    let mut got = 0;
    let mut buffer = [0u8; 4096];
    while got < paths.len() {
        match running.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                for byte in &buffer[..n] {
                    if let Some(answer) = answers.get_mut(got) {
                        *answer = Some(*byte == b'y');
                        got += 1;
                    }
                }
            }
        }
    }
    // Killed and left behind if it hangs; what it said stands.
    let _ = running.finish();
    answers
}
