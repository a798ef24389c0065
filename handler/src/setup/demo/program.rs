//! The program the demo crashes: the project's traced crashing program
//! (`programs/crasher.c`), built apart from the handler so that the
//! root-run binary builds with liblttng-ctl alone (no C compiler, no
//! liblttng-ust-dev). Run with no arguments, it plays the demo's story and
//! crashes. This module finds it at run time and copies it into the demo's
//! own directory under the name the crash is reported with.

use std::path::{Path, PathBuf};

/// The name of the demo's copy, which becomes the crashing process's name
/// (`comm`).
pub const PROGRAM_NAME: &str = "crashing-demo";

/// The events it emits for the demo (`lttng_coredump:story`).
pub const EVENTS: &str = "lttng_coredump:story";

/// Names the program's path explicitly (overrides the places below).
pub const PROGRAM_ENV: &str = "LTTNG_COREDUMP_DEMO_PROGRAM";

/// Its name next to the `lttng-coredump` binary (where `scripts/demo`
/// builds it: `make -C programs OUT=target/release`).
const BESIDE_BINARY: &str = "lttng-coredump-crasher";

/// Where `make -C programs install` puts it.
const INSTALLED: &str = "/usr/lib/lttng-coredump/crasher";

/// The places looked at, in order: `$LTTNG_COREDUMP_DEMO_PROGRAM` when
/// set, else beside the running binary, then the installed location.
fn candidates(explicit: Option<PathBuf>, binary: Option<PathBuf>) -> Vec<PathBuf> {
    if let Some(path) = explicit {
        return vec![path];
    }
    let beside = binary
        .as_deref()
        .and_then(Path::parent)
        .map(|dir| dir.join(BESIDE_BINARY));
    beside
        .into_iter()
        .chain([PathBuf::from(INSTALLED)])
        .collect()
}

/// The first candidate that is a file, or a message that says where we
/// looked and exactly how to get the program.
fn find(candidates: &[PathBuf]) -> Result<PathBuf, String> {
    if let Some(found) = candidates.iter().find(|path| path.is_file()) {
        return Ok(found.clone());
    }
    let looked: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    Err(format!(
        "the demo's traced program is missing (looked for {}). Get it with one of:\n  \
         scripts/demo                                  (from the source tree: builds it and runs the demo)\n  \
         make -C programs install                      (as root, from the source tree: {INSTALLED})\n  \
         {PROGRAM_ENV}=/path/to/crasher lttng-coredump demo\n\
         (it needs liblttng-ust-dev and a C compiler: apt-get install -y liblttng-ust-dev gcc make)",
        looked.join(", ")
    ))
}

/// Copies the program into `dir` (a fresh directory of the demo's own)
/// under [`PROGRAM_NAME`].
pub fn write_program(dir: &Path) -> Result<PathBuf, String> {
    let program = find(&candidates(
        std::env::var_os(PROGRAM_ENV).map(PathBuf::from),
        std::env::current_exe().ok(),
    ))?;
    let path = dir.join(PROGRAM_NAME);
    std::fs::copy(&program, &path).map_err(|err| {
        format!(
            "cannot copy {} to {}: {err}",
            program.display(),
            path.display()
        )
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_program_is_looked_for_beside_the_binary_then_where_it_installs() {
        assert_eq!(
            candidates(None, Some(PathBuf::from("/opt/x/lttng-coredump"))),
            vec![
                PathBuf::from("/opt/x/lttng-coredump-crasher"),
                PathBuf::from(INSTALLED)
            ]
        );
        assert_eq!(
            candidates(
                Some(PathBuf::from("/p/crasher")),
                Some(PathBuf::from("/opt/x/lttng-coredump"))
            ),
            vec![PathBuf::from("/p/crasher")]
        );
    }

    #[test]
    fn a_missing_program_says_how_to_get_it() {
        let missing = PathBuf::from("/nonexistent/lttng-coredump-crasher");
        let message = find(std::slice::from_ref(&missing)).unwrap_err();
        assert!(
            message.contains("/nonexistent/lttng-coredump-crasher"),
            "{message}"
        );
        assert!(message.contains("scripts/demo"), "{message}");
        assert!(message.contains("make -C programs install"), "{message}");
        assert!(message.contains(PROGRAM_ENV), "{message}");
    }
}
