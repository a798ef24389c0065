//! Putting the handler into the kernel's `core_pattern` and taking it out:
//! `install` backs up `core_pattern` and `core_pipe_limit` (once: never its
//! own line), then writes the handler's line; `uninstall` restores exactly
//! what the backup holds; `status` says what is in place. The kernel files
//! and the backup are paths so that tests and packagers can point
//! elsewhere.

use crate::base::config::{self, Config};
use crate::kernel::backup::Backup;
use crate::kernel::pattern::{handler_line, is_our_line, MAX_PATTERN_LEN};
use crate::kernel::settings::{write_setting, KernelFeatures, KernelFiles, DEFAULT_PIPE_LIMIT};
use anyhow::{anyhow, Context as _};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct InstallOptions {
    pub binary: PathBuf,
    pub config: Option<PathBuf>,
    pub backup: PathBuf,
    /// core_pipe_limit to set: always when given, else only when it is 0
    /// (to [`DEFAULT_PIPE_LIMIT`]).
    pub pipe_limit: Option<u32>,
    pub kernel: KernelFiles,
    pub features: KernelFeatures,
    /// `--socket`: send cores to the service listening there (`serve`),
    /// with the pipe line as the fallback when the kernel has no socket
    /// mode.
    pub socket: Option<PathBuf>,
    /// The sysctl.d file that makes the installation survive a reboot.
    pub persist: Option<PathBuf>,
    /// Hand every core on to the handler the replaced line ran (`[chain]`).
    pub chain_previous: bool,
    /// Where the boot's settings are read ([`crate::kernel::other_handlers`]), and whether
    /// `--persist` may mask the services that would write over the line.
    pub boot: crate::kernel::other_handlers::BootFiles,
    pub mask: bool,
}

/// Installs the handler; returns what was done, for a person.
pub fn install(options: &InstallOptions) -> anyhow::Result<String> {
    let line = handler_line(&options.binary, options.config.as_deref(), options.features)?;
    let mut report = String::new();
    if let Some(socket) = &options.socket {
        let fits = socket.to_str().is_some_and(|text| {
            text.starts_with('/')
                && !text.contains(|c: char| c.is_whitespace() || c == '%' || c.is_control())
                && text.len() <= 107
                && text.len() + 2 <= MAX_PATTERN_LEN
        });
        if !fits {
            return Err(anyhow!(
                "the socket path {} must be absolute, UTF-8, without spaces, control characters \
                 or %, and at most 107 bytes (a Unix socket's limit)",
                socket.display()
            ));
        }
        // The kernel drops a core nothing accepts: never point it at a
        // socket no service answers on.
        let greeting = crate::service::probe::probe(socket).map_err(|err| {
            anyhow!(
                "refusing to send cores to {}: {err}. Start the service first (systemctl start \
                 lttng-coredump, or lttng-coredump serve --socket {0}) and install again",
                socket.display()
            )
        })?;
        writeln!(
            report,
            "the service answers on {}: {greeting}",
            socket.display()
        )
        .expect("String");
    }
    let metadata = std::fs::metadata(&options.binary)
        .with_context(|| format!("the handler binary {}", options.binary.display()))?;
    if !metadata.is_file()
        || std::os::unix::fs::PermissionsExt::mode(&metadata.permissions()) & 0o111 == 0
    {
        return Err(anyhow!(
            "the handler binary {} is not an executable file",
            options.binary.display()
        ));
    }
    // The kernel runs it as root on every crash: nobody else may be able to
    // replace it, nor any directory on the way to it.
    crate::base::trusted_path::check_only_root_can_change(&options.binary).map_err(|why| {
        anyhow!(
            "refusing to install {}: {why}. Install a copy owned by root in directories only \
             root can write (for example /usr/local/sbin)",
            options.binary.display()
        )
    })?;
    if let Some(config) = &options.config {
        if let Some(error) = Config::load(Some(config)).error {
            return Err(anyhow!(error.replace("; using the defaults", "")));
        }
    }
    report.push_str(&crate::setup::submit_setup::prepare(
        options.config.as_deref(),
        options.boot.mask_dir().filter(|_| options.mask),
    )?);
    let pattern = options.kernel.read_pattern()?;
    let pipe_limit = options.kernel.read_pipe_limit()?;
    let backup = Backup::read(&options.backup)?;
    // The line the handler replaces (or replaced, at the first install).
    let ours = is_our_line(&pattern, backup.as_ref());
    let previous = match (&backup, ours) {
        (Some(backup), true) => backup.core_pattern.clone(),
        _ => pattern.clone(),
    };
    if options.chain_previous {
        let chained = crate::kernel::other_handlers::chain_line(&previous, &options.boot)?;
        if chained != previous {
            writeln!(
                report,
                "the replaced core_pattern {previous:?} is systemd-coredump's kernel socket: \
                 chaining to its pipe helper {chained:?}, which hands each core on to \
                 systemd-coredump (coredumpctl lists it)"
            )
            .expect("String");
        }
        let section = crate::kernel::persist::chain_section(&chained)?;
        let config = options
            .config
            .clone()
            .unwrap_or_else(|| config::DEFAULT_CONFIG_PATH.into());
        report.push_str(&crate::kernel::persist::add_chain(&config, &section)?);
    } else if let Some(name) = crate::kernel::persist::known_handler(&previous).or((previous
        == crate::kernel::other_handlers::SYSTEMD_SOCKET_LINE)
        .then_some("systemd-coredump"))
    {
        writeln!(
            report,
            "note: the replaced core_pattern runs {name}; its cores now go to lttng-coredump only \
             (install --chain-previous also hands each core on to {name})"
        )
        .expect("String");
    }
    if ours {
        if backup.is_none() {
            return Err(anyhow!(
                "core_pattern already runs a handler ({pattern:?}) and there is no backup at {}: \
                 refusing to back up the handler's own line. Put back the pattern you want restored \
                 later (for example `echo core > {}`) and install again",
                options.backup.display(),
                options.kernel.core_pattern.display()
            ));
        }
        if pattern != line && options.socket.is_none() {
            writeln!(
                report,
                "replacing the handler line {pattern:?}; the backup is kept"
            )
            .expect("String");
        }
    } else {
        let new_backup = Backup {
            core_pattern: pattern.clone(),
            core_pipe_limit: pipe_limit.clone(),
            masked_units: Vec::new(),
            socket_line: None,
            pipe_line: None,
        };
        new_backup.write(&options.backup)?;
        writeln!(
            report,
            "backed up core_pattern {pattern:?} and core_pipe_limit {pipe_limit} in {}",
            options.backup.display()
        )
        .expect("String");
    }
    let wanted_limit = match options.pipe_limit {
        Some(limit) => Some(limit),
        None if pipe_limit.trim() == "0" => Some(DEFAULT_PIPE_LIMIT),
        None => None,
    };
    if let Some(limit) = wanted_limit.filter(|limit| limit.to_string() != pipe_limit.trim()) {
        write_setting(&options.kernel.core_pipe_limit, &limit.to_string())?;
        writeln!(
            report,
            "core_pipe_limit set to {limit} (at most {limit} crashes handled at once; the kernel \
             keeps each crashed process until the handler is done)"
        )
        .expect("String");
    }
    let mut backup = Backup::read(&options.backup)?
        .with_context(|| format!("the backup {} vanished", options.backup.display()))?;
    let chosen = match &options.socket {
        Some(socket) => choose_socket_line(&options.kernel, socket, &line, &pattern, &mut report)?,
        None => {
            if pattern == line {
                writeln!(report, "already installed: {line}").expect("String");
            } else {
                set_pattern(&options.kernel, &line)?;
                writeln!(report, "installed: {line}").expect("String");
            }
            line.clone()
        }
    };
    // What `serve` needs to take core_pattern over when it starts and give
    // it back when it stops: only for a socket line.
    let (socket_line, pipe_line) = if chosen.starts_with('@') {
        (Some(chosen), Some(line.clone()))
    } else {
        (None, None)
    };
    if backup.socket_line != socket_line || backup.pipe_line != pipe_line {
        backup.socket_line = socket_line;
        backup.pipe_line = pipe_line;
        backup.write(&options.backup)?;
    }
    // At boot the pipe line, also in socket mode: the service puts its
    // socket line in place once it listens, never before.
    if let Some(file) = &options.persist {
        let limit = options.kernel.read_pipe_limit()?;
        let fuse = crate::kernel::fuse_timeout::to_persist(&options.kernel, file, &mut report);
        report.push_str(&crate::kernel::persist::write(file, &line, &limit, fuse)?);
        // The services that write their own line at boot write it after
        // every sysctl.d file: masked, so that ours stays.
        if options.mask {
            let masked = crate::kernel::other_handlers::mask_writers(&options.boot, &mut report)?;
            if !masked.is_empty() {
                backup.masked_units.extend(masked);
                backup.write(&options.backup)?;
            }
        }
    }
    let outlook = crate::kernel::other_handlers::after_boot(&options.boot, Some(&backup));
    writeln!(report, "{}", outlook.describe()).expect("String");
    if !outlook.ours {
        writeln!(
            report,
            "warning: at the next boot {} takes core_pattern back (install --persist keeps the \
             handler's line)",
            outlook.owner
        )
        .expect("String");
    }
    if let Some(advice) = crate::kernel::fuse_timeout::advice(&options.kernel) {
        writeln!(report, "recommended: {advice}").expect("String");
    }
    Ok(report)
}

/// Writes `line` to core_pattern and checks the kernel kept it.
fn set_pattern(kernel: &KernelFiles, line: &str) -> anyhow::Result<()> {
    write_setting(&kernel.core_pattern, line)?;
    let written = kernel.read_pattern()?;
    if written != line {
        return Err(anyhow!("the kernel kept {written:?} instead of {line:?}"));
    }
    Ok(())
}

/// Tries `@@SOCKET` (Linux 6.17: the request protocol, so that a core that
/// would be refused is never dumped), then `@SOCKET` (6.16), then the pipe
/// line (older kernels refuse both); says which it chose and returns it.
fn choose_socket_line(
    kernel: &KernelFiles,
    socket: &Path,
    pipe_line: &str,
    current: &str,
    report: &mut String,
) -> anyhow::Result<String> {
    let text = socket.to_string_lossy();
    let mut refusals = Vec::new();
    for (line, what) in [
        (format!("@@{text}"), "the request protocol (Linux 6.17+)"),
        (format!("@{text}"), "the plain socket (Linux 6.16)"),
    ] {
        if *current == line {
            writeln!(report, "already installed: {line} ({what})").expect("String");
            return Ok(line);
        }
        match set_pattern(kernel, &line) {
            Ok(()) => {
                writeln!(report, "installed: {line} ({what})").expect("String");
                return Ok(line);
            }
            Err(err) => refusals.push(format!("{err:#}")),
        }
    }
    set_pattern(kernel, pipe_line)?;
    writeln!(
        report,
        "this kernel has no coredump socket ({}): installed the pipe line instead: {pipe_line}",
        refusals.join("; ")
    )
    .expect("String");
    Ok(pipe_line.to_string())
}

/// Restores what the backup holds, unless core_pattern no longer runs the
/// handler (someone changed it since) and `force` is not set.
pub fn uninstall(
    kernel: &KernelFiles,
    backup_path: &Path,
    sysctl_file: Option<&Path>,
    force: bool,
) -> anyhow::Result<String> {
    let removed = match sysctl_file {
        Some(file) => crate::kernel::persist::remove(file)?,
        None => String::new(),
    };
    let backup = Backup::read(backup_path)?.with_context(|| {
        format!(
            "{removed}nothing to restore: no backup at {}",
            backup_path.display()
        )
    })?;
    let pattern = kernel.read_pattern()?;
    let mut removed = removed;
    if pattern == backup.core_pattern {
        // Already back (a reboot without --persist): only the backup goes.
        crate::kernel::other_handlers::unmask(&backup.masked_units, &mut removed);
        std::fs::remove_file(backup_path)
            .with_context(|| format!("cannot remove the backup {}", backup_path.display()))?;
        return Ok(format!(
            "{removed}core_pattern is already {:?}, as before the install; removed the backup\n",
            backup.core_pattern
        ));
    }
    if !is_our_line(&pattern, Some(&backup)) && !force {
        return Err(anyhow!(
            "core_pattern is {pattern:?}, not the handler's line: it was changed since the install; \
             not overwriting it (use --force to restore {:?} anyway)",
            backup.core_pattern
        ));
    }
    write_setting(&kernel.core_pattern, &backup.core_pattern)?;
    write_setting(&kernel.core_pipe_limit, &backup.core_pipe_limit)?;
    crate::kernel::other_handlers::unmask(&backup.masked_units, &mut removed);
    std::fs::remove_file(backup_path).with_context(|| {
        format!(
            "restored, but cannot remove the backup {}",
            backup_path.display()
        )
    })?;
    Ok(format!(
        "{removed}restored core_pattern {:?} and core_pipe_limit {}\n",
        backup.core_pattern, backup.core_pipe_limit
    ))
}

/// A report of what is in place, for a person (see `status`).
pub fn status(
    kernel: &KernelFiles,
    backup_path: &Path,
    config_path: Option<&Path>,
    sessiond_socket: &Path,
) -> String {
    crate::setup::status::gather(kernel, backup_path, config_path, sessiond_socket).text()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::kernel::backup::Backup;
    use crate::kernel::pattern::is_handler_line;
    use crate::kernel::settings::tests::{fake_kernel, NEW};

    #[test]
    fn install_socket_refuses_a_socket_no_service_answers() {
        let (dir, kernel) = fake_kernel("core", "0");
        let options = InstallOptions {
            pipe_limit: Some(16),
            socket: Some(dir.join("no-service")),
            ..options(&dir, &kernel)
        };
        let err = format!("{:#}", install(&options).unwrap_err());
        assert!(err.contains("refusing to send cores to"), "{err}");
        assert_eq!(kernel.read_pattern().unwrap(), "core");
        assert!(!options.backup.exists());
        let long = InstallOptions {
            socket: Some(PathBuf::from(format!("/run/{}", "x".repeat(120)))),
            ..options
        };
        assert!(format!("{:#}", install(&long).unwrap_err()).contains("107 bytes"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// What every install test starts from: the handler `/bin/true`, no
    /// configuration, socket, persistence or chaining, the backup in `dir`,
    /// the pipe limit left to install's default; each test changes what it
    /// is about.
    fn options(dir: &Path, kernel: &KernelFiles) -> InstallOptions {
        InstallOptions {
            binary: PathBuf::from("/bin/true"),
            config: None,
            backup: dir.join("core_pattern.bkp"),
            pipe_limit: None,
            kernel: kernel.clone(),
            features: NEW,
            socket: None,
            persist: None,
            chain_previous: false,
            boot: crate::kernel::other_handlers::BootFiles::system(),
            mask: false,
        }
    }

    #[test]
    fn install_is_idempotent_and_uninstall_restores_exactly() {
        let (dir, kernel) = fake_kernel("|/usr/lib/systemd/systemd-coredump %P %u", "0");
        let options = InstallOptions {
            backup: dir.join("state/core_pattern.bkp"),
            pipe_limit: Some(16),
            ..options(&dir, &kernel)
        };
        let report = install(&options).unwrap();
        assert!(report.contains("backed up"), "{report}");
        // Each line of the report is one sentence, without a run of spaces
        // a broken line continuation would leave in it.
        assert!(
            report.contains(
                "core_pipe_limit set to 16 (at most 16 crashes handled at once; the kernel keeps"
            ),
            "{report}"
        );
        assert!(!report.contains("  "), "{report}");
        assert!(is_handler_line(&kernel.read_pattern().unwrap()));
        assert_eq!(kernel.read_pipe_limit().unwrap(), "16");

        let report = install(&options).unwrap();
        assert!(report.contains("already installed"), "{report}");
        let backup = Backup::read(&options.backup).unwrap().unwrap();
        assert_eq!(
            backup.core_pattern,
            "|/usr/lib/systemd/systemd-coredump %P %u"
        );
        assert_eq!(backup.core_pipe_limit, "0");

        // Someone changed core_pattern meanwhile: uninstall leaves it.
        std::fs::write(&kernel.core_pattern, "other\n").unwrap();
        assert!(uninstall(&kernel, &options.backup, None, false)
            .map_err(|err| format!("{err:#}"))
            .unwrap_err()
            .contains("changed since"));
        install(&options).unwrap();
        let backup = Backup::read(&options.backup).unwrap().unwrap();
        assert_eq!(backup.core_pattern, "other");
        assert_eq!(backup.core_pipe_limit, "16");

        let report = uninstall(&kernel, &options.backup, None, false).unwrap();
        assert!(report.contains("restored"), "{report}");
        assert_eq!(kernel.read_pattern().unwrap(), "other");
        assert!(!options.backup.exists());
        assert!(uninstall(&kernel, &options.backup, None, false)
            .map_err(|err| format!("{err:#}"))
            .unwrap_err()
            .contains("no backup"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn persist_chain_previous_and_an_explicit_pipe_limit() {
        let systemd = "|/lib/systemd/systemd-coredump %P %u %g %s %t 9223372036854775808 %h";
        let (dir, kernel) = fake_kernel(systemd, "4");
        let sysctl = dir.join("sysctl.d/90-lttng-coredump.conf");
        // Short: the whole line must fit the kernel's 127 bytes.
        let config = PathBuf::from(format!("/tmp/lcd-c{}.toml", std::process::id()));
        let options = options(&dir, &kernel);
        // Without --chain-previous, install says what it replaces.
        let report = install(&options).unwrap();
        assert!(report.contains("runs systemd-coredump"), "{report}");
        assert!(report.contains("--chain-previous"), "{report}");
        // A non-zero limit is left alone unless one is asked for.
        assert_eq!(kernel.read_pipe_limit().unwrap(), "4");
        let options = InstallOptions {
            config: Some(config.clone()),
            pipe_limit: Some(32),
            persist: Some(sysctl.clone()),
            chain_previous: true,
            ..options
        };
        // The configuration must exist and be valid before the install.
        std::fs::write(&config, "save_core = true\n").unwrap();
        let report = install(&options).unwrap();
        assert!(report.contains("chained"), "{report}");
        assert_eq!(kernel.read_pipe_limit().unwrap(), "32");
        let line = kernel.read_pattern().unwrap();
        let text = std::fs::read_to_string(&sysctl).unwrap();
        assert!(
            text.contains(&format!("kernel.core_pattern = {line}\n")),
            "{text}"
        );
        assert!(text.contains("kernel.core_pipe_limit = 32\n"), "{text}");
        let chain = Config::parse(&std::fs::read_to_string(&config).unwrap())
            .unwrap()
            .chain
            .unwrap();
        assert_eq!(chain.command[0], "/lib/systemd/systemd-coredump");
        assert_eq!(chain.command[1], "{pid}");

        let report = uninstall(&kernel, &options.backup, Some(&sysctl), false).unwrap();
        assert!(
            report.contains("removed") && report.contains("restored"),
            "{report}"
        );
        assert!(!sysctl.exists());
        assert_eq!(kernel.read_pattern().unwrap(), systemd);
        assert_eq!(kernel.read_pipe_limit().unwrap(), "4");
        std::fs::remove_file(&config).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn uninstall_after_a_reboot_that_put_the_old_line_back_cleans_up() {
        let (dir, kernel) = fake_kernel("core", "0");
        let options = options(&dir, &kernel);
        install(&options).unwrap();
        write_setting(&kernel.core_pattern, "core").unwrap();
        let report = uninstall(&kernel, &options.backup, None, false).unwrap();
        assert!(report.contains("already"), "{report}");
        assert!(!options.backup.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn install_never_backs_up_its_own_line() {
        let line = handler_line(Path::new("/bin/true"), None, NEW).unwrap();
        let (dir, kernel) = fake_kernel(&line, "4");
        let options = InstallOptions {
            pipe_limit: Some(16),
            ..options(&dir, &kernel)
        };
        let err = install(&options)
            .map_err(|err| format!("{err:#}"))
            .unwrap_err();
        assert!(err.contains("refusing to back up"), "{err}");
        assert!(!options.backup.exists());

        let missing = InstallOptions {
            binary: PathBuf::from("/nonexistent/lttng-coredump"),
            ..options.clone()
        };
        assert!(install(&missing)
            .map_err(|err| format!("{err:#}"))
            .unwrap_err()
            .contains("/nonexistent/lttng-coredump"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn status_says_what_is_in_place() {
        let (dir, kernel) = fake_kernel("core", "0");
        let report = status(
            &kernel,
            &dir.join("none.bkp"),
            Some(&dir.join("missing.toml")),
            &dir.join("no-socket"),
        );
        assert!(report.contains("handler: not installed"), "{report}");
        assert!(report.contains("core_pattern: core"), "{report}");
        assert!(report.contains("backup: none"), "{report}");
        assert!(
            report.contains("configuration:") && report.contains("BAD"),
            "{report}"
        );
        assert!(
            report.contains("root session daemon: not running"),
            "{report}"
        );
        assert!(report.contains("cores go to:"), "{report}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// `fs.fuse.max_request_timeout` ([`crate::kernel::fuse_timeout`]).
    #[test]
    fn install_recommends_it_and_status_warns_while_it_is_0() {
        use crate::kernel::settings::KernelFeatures;
        use crate::setup::install::{install, InstallOptions};
        let root = std::env::temp_dir().join(format!("handler-fuse-advice-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("kernel")).unwrap();
        std::fs::create_dir_all(root.join("fs/fuse")).unwrap();
        std::fs::write(root.join("kernel/core_pattern"), "core\n").unwrap();
        std::fs::write(root.join("kernel/core_pipe_limit"), "0\n").unwrap();
        std::fs::write(root.join("fs/fuse/max_request_timeout"), "0\n").unwrap();
        let kernel = KernelFiles::under(&root.join("kernel"));
        let report = install(&InstallOptions {
            binary: PathBuf::from("/bin/true"),
            config: None,
            backup: root.join("core_pattern.bkp"),
            pipe_limit: None,
            kernel: kernel.clone(),
            features: KernelFeatures {
                pidfd: true,
                dump_mode: true,
            },
            socket: None,
            persist: None,
            chain_previous: false,
            boot: crate::kernel::other_handlers::BootFiles::system(),
            mask: false,
        })
        .unwrap();
        assert!(
            report.contains("recommended: fs.fuse.max_request_timeout is 0"),
            "{report}"
        );
        let status = crate::setup::status::gather(
            &kernel,
            &root.join("core_pattern.bkp"),
            Some(&root.join("no-config.toml")),
            &root.join("no-sessiond"),
        );
        assert!(
            status
                .warnings
                .iter()
                .any(|w| w.starts_with("fs.fuse.max_request_timeout is 0")),
            "{:?}",
            status.warnings
        );
        std::fs::write(root.join("fs/fuse/max_request_timeout"), "300\n").unwrap();
        let status = crate::setup::status::gather(
            &kernel,
            &root.join("core_pattern.bkp"),
            Some(&root.join("no-config.toml")),
            &root.join("no-sessiond"),
        );
        assert!(!status
            .warnings
            .iter()
            .any(|w| w.contains("max_request_timeout")));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
