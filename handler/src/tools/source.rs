//! Which configuration and which core directory a crash tool acts on.
//!
//! A `--config PATH` a person typed must be usable as it is: a relative,
//! missing, untrusted or unreadable file is an error naming why, never a
//! silent fall-back to the defaults (which would make `list` or `vacuum`
//! act on the machine's real core directory). Without `--config`, the
//! tools read what the handler reads: the configuration the installed
//! core_pattern line names, else the default file, with the handler's own
//! fall-back to the defaults (said in a warning). Either way the core
//! directory is the one the handler would use (`coredir::would_use`): the
//! configured one, or the default when the configured one is unsafe.

use super::SourceArgs;
use crate::base::config::{self, Config};
use crate::kernel::settings::KernelFiles;
use anyhow::{anyhow, bail, Result};
use std::path::{Path, PathBuf};

/// The configuration in effect and the crashes' directory.
#[derive(Debug, Clone)]
pub struct Source {
    /// Where the crashes are: `--dir`, else where the handler puts them.
    pub dir: PathBuf,
    pub config: Config,
    /// The file the configuration comes from (it may not exist).
    pub config_path: PathBuf,
    /// Whether a person named that file (`--config`).
    pub explicit: bool,
    /// What was wrong with the file (keys refused, the whole file), and
    /// with the configured core directory: each a line for a warning.
    pub problems: Vec<String>,
    /// The file does not exist (the default path only): every value is the
    /// default, as for the handler.
    pub missing: bool,
}

impl Source {
    /// The configuration `args` name (see the module's documentation).
    pub fn resolve(args: &SourceArgs) -> Result<Source> {
        let (config, config_path, explicit, mut problems, missing) = match &args.config {
            Some(path) => {
                let (config, problems) = typed(path, args.dir.is_some())?;
                (config, path.clone(), true, problems, false)
            }
            None => {
                let installed = installed_config();
                let path = installed
                    .clone()
                    .unwrap_or_else(|| config::DEFAULT_CONFIG_PATH.into());
                let missing = std::fs::symlink_metadata(&path)
                    .is_err_and(|err| err.kind() == std::io::ErrorKind::NotFound);
                let loaded = Config::load(installed.as_deref());
                (
                    loaded.config,
                    path,
                    false,
                    loaded.error.into_iter().collect(),
                    missing,
                )
            }
        };
        let dir = match &args.dir {
            Some(dir) => dir.clone(),
            None => {
                let (used, dir_problems) = crate::store::coredir::would_use(
                    &config.core_dir,
                    Path::new(config::DEFAULT_CORE_DIR),
                );
                problems.extend(dir_problems);
                used.unwrap_or_else(|| config.core_dir.clone())
            }
        };
        Ok(Source {
            dir,
            config,
            config_path,
            explicit,
            problems,
            missing,
        })
    }

    /// Prints the problems as warnings, unless `quiet`.
    pub fn warn(&self, quiet: bool) {
        if !quiet {
            for problem in &self.problems {
                eprintln!("lttng-coredump: warning: {problem}");
            }
        }
    }
}

/// The configuration named in the installed core_pattern line, if any.
pub fn installed_config() -> Option<PathBuf> {
    KernelFiles::under(Path::new(crate::kernel::settings::DEFAULT_PROC_SYS_KERNEL))
        .read_pattern()
        .ok()
        .filter(|pattern| crate::kernel::pattern::is_handler_line(pattern))
        .and_then(|pattern| crate::kernel::pattern::config_in_line(&pattern))
}

/// A `--config PATH` a person typed: read with the handler's trust checks,
/// or an error. A key it refuses is a warning, but for `core_dir` (unless
/// `--dir` says where the crashes are): the defaults' directory is the one
/// a person naming a file did not mean.
fn typed(path: &Path, dir_given: bool) -> Result<(Config, Vec<String>)> {
    if !path.is_absolute() {
        let absolute = std::env::current_dir()
            .map(|cwd| cwd.join(path).display().to_string())
            .unwrap_or_else(|_| "/...".into());
        bail!(
            "--config {}: a relative path; the handler reads its configuration from an absolute \
             path (did you mean --config {absolute}?)",
            path.display()
        );
    }
    let parsed = config::read_checked(path)
        .map_err(|error| anyhow!("--config {}: {error}", path.display()))?;
    if parsed.unreadable {
        bail!(
            "--config {}: {}",
            path.display(),
            parsed.problems.join("; ")
        );
    }
    if !dir_given && parsed.refused.contains("core_dir") {
        let why = parsed
            .problems
            .iter()
            .find(|p| p.contains("key core_dir"))
            .cloned()
            .unwrap_or_default();
        bail!(
            "--config {}: its core_dir is refused ({why}): fix it, or say where the crashes are \
             with --dir DIR",
            path.display()
        );
    }
    let problems = parsed
        .problems
        .iter()
        .map(|p| format!("configuration {}: {p}", path.display()))
        .collect();
    Ok((parsed.config, problems))
}
