//! The program the demo crashes: `demo/crashing-demo.c`, compiled by
//! `build.rs` and carried inside this binary, so that an installed
//! `lttng-coredump` can run the demo without the sources.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The executable, as built (dynamically linked against liblttng-ust).
const PROGRAM: &[u8] = include_bytes!(env!("LTTNG_COREDUMP_DEMO_PROGRAM"));

/// Its name, which becomes the crashing process's name (`comm`).
pub const PROGRAM_NAME: &str = "crashing-demo";

/// The events it emits.
pub const EVENTS: &str = "lttng_coredump_demo:*";

/// Writes the program into `dir` (a fresh directory of the demo's own).
pub fn write_program(dir: &Path) -> Result<PathBuf, String> {
    let path = dir.join(PROGRAM_NAME);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o755)
        .open(&path)
        .map_err(|err| format!("cannot create {}: {err}", path.display()))?;
    file.write_all(PROGRAM)
        .and_then(|()| file.sync_all())
        .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_embedded_program_is_an_elf_executable() {
        assert_eq!(&super::PROGRAM[..4], b"\x7fELF");
        assert!(super::PROGRAM.len() > 4096);
    }
}
