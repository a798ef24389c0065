//! The other crash handlers of a machine, and what will own core_pattern
//! after the next boot. A boot sets core_pattern in two steps:
//!
//! 1. systemd-sysctl (or procps' `sysctl --system`) applies the sysctl.d
//!    files in the order of their names, a later setting winning
//!    ([`crate::kernel::persist`]): systemd-coredump's pipe helper comes from its
//!    `50-coredump.conf`, `install --persist`'s line from
//!    `90-lttng-coredump.conf`;
//! 2. then services write their own line when they start:
//!    systemd-coredump's socket form (`systemd-coredump-register.service`,
//!    systemd's `systemd-coredumpd` on the kernel's coredump socket, which
//!    writes `@@/run/systemd/coredump-kernel` with `systemd-sysctl --inline`
//!    at every boot), apport (`apport.service`), and lttng-coredump's own
//!    service in socket mode (ordered after both).
//!
//! The last writer owns core_pattern. A service's line wins over every
//! sysctl.d file, so `install --persist` masks the services that would
//! write over the handler's line (a link to /dev/null in
//! /etc/systemd/system, as `systemctl mask` makes; `uninstall` removes it).
//! Which unit directories are read is a parameter, so that tests own
//! theirs.

use crate::kernel::persist;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// systemd's unit directories, the earlier hiding a unit of the same name
/// in a later one; the first is where a mask goes.
pub const UNIT_DIRS: [&str; 5] = [
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

/// The unit with which systemd-coredump registers its kernel socket.
pub const SYSTEMD_REGISTER_UNIT: &str = "systemd-coredump-register.service";
/// The line it writes (systemd's `systemd-coredumpd` listens there).
pub const SYSTEMD_SOCKET_LINE: &str = "@@/run/systemd/coredump-kernel";
/// systemd-coredump's pipe helper as its `50-coredump.conf` runs it
/// (Debian 12), for when no sysctl.d file says otherwise.
pub const SYSTEMD_PIPE_LINE: &str =
    "|/lib/systemd/systemd-coredump %P %u %g %s %t 9223372036854775808 %h %d";
/// apport's service, and the line it writes when it starts.
pub const APPORT_UNIT: &str = "apport.service";
pub const APPORT_LINE: &str =
    "|/usr/share/apport/apport -p%p -s%s -c%c -d%d -P%P -u%u -g%g -F%F -- %E";
/// lttng-coredump's own service (socket mode).
pub const OUR_UNIT: &str = "lttng-coredump.service";

/// Where the boot's settings come from.
#[derive(Debug, Clone)]
pub struct BootFiles {
    pub sysctl_dirs: Vec<PathBuf>,
    pub sysctl_conf: PathBuf,
    pub unit_dirs: Vec<PathBuf>,
}

impl BootFiles {
    /// The machine's own.
    pub fn system() -> BootFiles {
        BootFiles {
            sysctl_dirs: persist::SYSCTL_DIRS.iter().map(PathBuf::from).collect(),
            sysctl_conf: PathBuf::from(persist::SYSCTL_CONF),
            unit_dirs: UNIT_DIRS.iter().map(PathBuf::from).collect(),
        }
    }

    /// The machine's sysctl.d files with other unit directories (tests).
    pub fn with_unit_dirs(unit_dirs: Vec<PathBuf>) -> BootFiles {
        BootFiles {
            unit_dirs,
            ..BootFiles::system()
        }
    }

    /// Where `systemctl mask` puts its links.
    pub fn mask_dir(&self) -> Option<&Path> {
        self.unit_dirs.first().map(PathBuf::as_path)
    }
}

/// A unit as the boot sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// Its file (the first directory holding the name wins).
    pub file: PathBuf,
    /// Masked: a link to /dev/null (or an empty file) hides it.
    pub masked: bool,
    /// Enabled: a `*.wants/` or `*.requires/` link names it.
    pub enabled: bool,
}

/// Finds a unit by name.
pub fn unit(files: &BootFiles, name: &str) -> Option<Unit> {
    let file = files
        .unit_dirs
        .iter()
        .map(|dir| dir.join(name))
        .find(|path| std::fs::symlink_metadata(path).is_ok())?;
    let masked = std::fs::read_link(&file).is_ok_and(|target| target == Path::new("/dev/null"))
        || std::fs::metadata(&file).is_ok_and(|m| m.len() == 0);
    let enabled = files.unit_dirs.iter().any(|dir| {
        std::fs::read_dir(dir).is_ok_and(|entries| {
            entries.flatten().any(|entry| {
                let wants = entry.file_name().to_string_lossy().into_owned();
                (wants.ends_with(".wants") || wants.ends_with(".requires"))
                    && std::fs::symlink_metadata(entry.path().join(name)).is_ok()
            })
        })
    });
    Some(Unit {
        file,
        masked,
        enabled,
    })
}

/// The core_pattern a register unit writes: the `kernel.core_pattern=`
/// of its `systemd-sysctl --inline` command, else systemd's line.
fn line_of_register_unit(file: &Path) -> String {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|text| {
            text.lines()
                .filter(|l| l.trim_start().starts_with("ExecStart="))
                .find_map(|l| {
                    let start = l.find("kernel.core_pattern=")? + "kernel.core_pattern=".len();
                    let rest = &l[start..];
                    let end = rest.find('"').unwrap_or(rest.len());
                    Some(rest[..end].trim().to_string())
                })
        })
        .unwrap_or_else(|| SYSTEMD_SOCKET_LINE.to_string())
}

/// Another handler that sets core_pattern at boot.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Other {
    /// For people: "systemd-coredump (pipe helper)", ...
    pub name: String,
    /// What sets its line: a sysctl.d file or a unit.
    pub source: PathBuf,
    pub line: String,
    /// A service's line is written after every sysctl.d file.
    pub service: bool,
    /// The service is masked (it writes nothing).
    pub masked: bool,
}

/// The other handlers of this machine, in the order the boot applies them.
pub fn others(files: &BootFiles) -> Vec<Other> {
    let mut found = Vec::new();
    for setting in persist::settings_of_all(&files.sysctl_dirs, &files.sysctl_conf) {
        if setting.key != "kernel.core_pattern" {
            continue;
        }
        if let Some(name) = persist::known_handler(&setting.value) {
            found.push(Other {
                name: format!("{name} (pipe helper)"),
                source: setting.file,
                line: setting.value,
                service: false,
                masked: false,
            });
        }
    }
    if let Some(unit) = unit(files, SYSTEMD_REGISTER_UNIT) {
        found.push(Other {
            name: "systemd-coredump (kernel socket)".into(),
            line: line_of_register_unit(&unit.file),
            source: unit.file,
            service: true,
            masked: unit.masked,
        });
    }
    if let Some(unit) = unit(files, APPORT_UNIT).filter(|u| u.enabled || u.masked) {
        found.push(Other {
            name: "apport".into(),
            source: unit.file,
            line: APPORT_LINE.into(),
            service: true,
            masked: unit.masked,
        });
    }
    found
}

/// What core_pattern will be after the next boot, and what sets it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Outlook {
    pub line: String,
    /// "lttng-coredump", "systemd-coredump (kernel socket)", "the kernel's
    /// default", or the sysctl.d file's name.
    pub owner: String,
    pub source: Option<PathBuf>,
    /// Whether it is this handler's line.
    pub ours: bool,
}

/// The boot's outcome: the last sysctl.d setting, then each service that
/// writes a line when it starts (systemd-coredump's register unit, apport,
/// then ours, which is ordered after both).
pub fn after_boot(files: &BootFiles, backup: Option<&crate::kernel::backup::Backup>) -> Outlook {
    let mut outlook = Outlook {
        line: "core".into(),
        owner: "the kernel's default".into(),
        source: None,
        ours: false,
    };
    for setting in persist::settings_of_all(&files.sysctl_dirs, &files.sysctl_conf) {
        if setting.key == "kernel.core_pattern" {
            let ours = crate::kernel::pattern::is_handler_line(&setting.value);
            outlook = Outlook {
                owner: if ours {
                    "lttng-coredump".into()
                } else if let Some(name) = persist::known_handler(&setting.value) {
                    format!("{name} (pipe helper)")
                } else {
                    format!("{}", setting.file.display())
                },
                line: setting.value,
                source: Some(setting.file),
                ours,
            };
        }
    }
    for other in others(files) {
        if other.service && !other.masked {
            outlook = Outlook {
                line: other.line,
                owner: other.name,
                source: Some(other.source),
                ours: false,
            };
        }
    }
    // Our service puts the socket line in place when it starts, after the
    // others, when installed with --socket.
    if let (Some(unit), Some(line)) = (
        unit(files, OUR_UNIT),
        backup.and_then(|b| b.socket_line.clone()),
    ) {
        if unit.enabled && !unit.masked {
            outlook = Outlook {
                line,
                owner: "lttng-coredump".into(),
                source: Some(unit.file),
                ours: true,
            };
        }
    }
    outlook
}

impl Outlook {
    pub fn describe(&self) -> String {
        format!(
            "after the next boot core_pattern will be {:?}, set by {}{}",
            self.line,
            self.owner,
            self.source
                .as_ref()
                .map(|s| format!(" ({})", s.display()))
                .unwrap_or_default()
        )
    }
}

/// Masks the services that would write their line over the handler's at
/// boot (a link to /dev/null in the first unit directory, as `systemctl
/// mask` makes); returns the links made, and says so.
pub fn mask_writers(files: &BootFiles, report: &mut String) -> anyhow::Result<Vec<PathBuf>> {
    use anyhow::Context as _;
    let mut made = Vec::new();
    let Some(mask_dir) = files.mask_dir() else {
        return Ok(made);
    };
    for other in others(files) {
        if !other.service || other.masked {
            continue;
        }
        let name = other
            .source
            .file_name()
            .context("a unit without a name")?
            .to_owned();
        let link = mask_dir.join(&name);
        if std::fs::symlink_metadata(&link).is_ok() {
            // The administrator's own unit file there: renamed away, never
            // replaced.
            let kept = mask_dir.join(format!(
                "{}.lttng-coredump-unmasked",
                name.to_string_lossy()
            ));
            std::fs::rename(&link, &kept)
                .with_context(|| format!("cannot move {} aside", link.display()))?;
        }
        std::fs::create_dir_all(mask_dir)
            .with_context(|| format!("cannot create {}", mask_dir.display()))?;
        std::os::unix::fs::symlink("/dev/null", &link)
            .with_context(|| format!("cannot mask {}", link.display()))?;
        writeln!(
            report,
            "masked {} ({}): at every boot it would write {:?} over the handler's line \
             (uninstall unmasks it; --chain-previous hands every core on to it)",
            name.to_string_lossy(),
            link.display(),
            other.line
        )
        .expect("String");
        made.push(link);
    }
    Ok(made)
}

/// Removes the masks `install --persist` made (those still links to
/// /dev/null), putting back a unit file it had moved aside.
pub fn unmask(links: &[PathBuf], report: &mut String) {
    for link in links {
        if std::fs::read_link(link).is_ok_and(|t| t == Path::new("/dev/null"))
            && std::fs::remove_file(link).is_ok()
        {
            let kept = PathBuf::from(format!("{}.lttng-coredump-unmasked", link.display()));
            if kept.exists() {
                let _ = std::fs::rename(&kept, link);
            }
            writeln!(report, "unmasked {}", link.display()).expect("String");
        }
    }
}

/// The pipe line that hands a core to the handler behind `pattern`: the
/// line itself for a pipe; for systemd-coredump's kernel socket, its pipe
/// helper (the line of the sysctl.d file that runs it, else Debian's),
/// which hands the core on to systemd-coredump over its own socket
/// (systemd-coredump.socket), so that coredumpctl lists it. Only the
/// kernel can send a crash to a kernel coredump socket (its service takes
/// the crash's identity from the peer process), so another socket has
/// nothing to chain to.
pub fn chain_line(pattern: &str, files: &BootFiles) -> anyhow::Result<String> {
    let Some(socket) = crate::kernel::pattern::socket_of_line(pattern) else {
        return Ok(pattern.to_string());
    };
    let systemd_socket =
        crate::kernel::pattern::socket_of_line(SYSTEMD_SOCKET_LINE).expect("a socket");
    let registered = unit(files, SYSTEMD_REGISTER_UNIT)
        .map(|u| line_of_register_unit(&u.file))
        .and_then(|line| crate::kernel::pattern::socket_of_line(&line).map(Path::to_path_buf));
    if socket != systemd_socket && registered.as_deref() != Some(socket) {
        return Err(anyhow::anyhow!(
            "core_pattern {pattern:?} sends cores to the socket {}: only the kernel can hand a \
             crash to a coredump socket (the service there identifies the crash by the process \
             at the other end), so there is no program to chain to",
            socket.display()
        ));
    }
    let helper = persist::settings_of_all(&files.sysctl_dirs, &files.sysctl_conf)
        .into_iter()
        .filter(|s| s.key == "kernel.core_pattern")
        .map(|s| s.value)
        .rfind(|line| persist::known_handler(line) == Some("systemd-coredump"))
        .unwrap_or_else(|| SYSTEMD_PIPE_LINE.to_string());
    Ok(helper)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "handler-others-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn files(root: &Path) -> BootFiles {
        BootFiles {
            sysctl_dirs: vec![root.join("etc-sysctl.d"), root.join("usr-sysctl.d")],
            sysctl_conf: root.join("sysctl.conf"),
            unit_dirs: vec![root.join("etc-units"), root.join("usr-units")],
        }
    }

    #[test]
    fn the_last_writer_at_boot_owns_core_pattern() {
        let root = scratch("boot");
        let files = files(&root);
        for dir in files.sysctl_dirs.iter().chain(&files.unit_dirs) {
            std::fs::create_dir_all(dir).unwrap();
        }
        // Nothing: the kernel's default.
        assert_eq!(after_boot(&files, None).owner, "the kernel's default");
        // systemd-coredump's pipe helper from its sysctl.d file.
        std::fs::write(
            files.sysctl_dirs[1].join("50-coredump.conf"),
            format!("kernel.core_pattern={SYSTEMD_PIPE_LINE}\n"),
        )
        .unwrap();
        let outlook = after_boot(&files, None);
        assert_eq!(outlook.owner, "systemd-coredump (pipe helper)");
        assert_eq!(outlook.line, SYSTEMD_PIPE_LINE);
        // Ours sorts after it.
        let ours = "|/usr/bin/lttng-coredump handle P=%P";
        std::fs::write(
            files.sysctl_dirs[0].join("90-lttng-coredump.conf"),
            persist::sysctl_text(ours, "64"),
        )
        .unwrap();
        assert!(after_boot(&files, None).ours);
        // The socket form's register unit writes after every sysctl.d file.
        std::fs::write(
            files.unit_dirs[1].join(SYSTEMD_REGISTER_UNIT),
            "[Service]\nExecStart=/usr/lib/systemd/systemd-sysctl --inline \
             \"kernel.core_pattern=@@/run/systemd/coredump-kernel\"\n",
        )
        .unwrap();
        let outlook = after_boot(&files, None);
        assert_eq!(outlook.owner, "systemd-coredump (kernel socket)");
        assert_eq!(outlook.line, SYSTEMD_SOCKET_LINE);
        assert_eq!(
            chain_line(SYSTEMD_SOCKET_LINE, &files).unwrap(),
            SYSTEMD_PIPE_LINE
        );
        assert!(chain_line("@@/run/other", &files)
            .unwrap_err()
            .to_string()
            .contains("only the kernel"));
        // An enabled apport writes its line too.
        std::fs::write(files.unit_dirs[1].join(APPORT_UNIT), "[Service]\n").unwrap();
        assert_eq!(
            after_boot(&files, None).owner,
            "systemd-coredump (kernel socket)"
        );
        std::fs::create_dir_all(files.unit_dirs[0].join("multi-user.target.wants")).unwrap();
        std::os::unix::fs::symlink(
            files.unit_dirs[1].join(APPORT_UNIT),
            files.unit_dirs[0]
                .join("multi-user.target.wants")
                .join(APPORT_UNIT),
        )
        .unwrap();
        assert_eq!(after_boot(&files, None).owner, "apport");

        // Masked, neither writes: ours again; unmasked, theirs again.
        let mut report = String::new();
        let links = mask_writers(&files, &mut report).unwrap();
        assert_eq!(links.len(), 2, "{report}");
        assert!(
            report.contains("masked systemd-coredump-register.service"),
            "{report}"
        );
        assert!(after_boot(&files, None).ours);
        assert!(mask_writers(&files, &mut report).unwrap().is_empty());
        unmask(&links, &mut report);
        assert_eq!(after_boot(&files, None).owner, "apport");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn an_administrators_unit_file_is_moved_aside_and_put_back() {
        let root = scratch("aside");
        let files = files(&root);
        std::fs::create_dir_all(&files.unit_dirs[0]).unwrap();
        let own = files.unit_dirs[0].join(SYSTEMD_REGISTER_UNIT);
        std::fs::write(
            &own,
            "[Service]\nExecStart=/bin/true kernel.core_pattern=@@/run/x\n",
        )
        .unwrap();
        let mut report = String::new();
        let links = mask_writers(&files, &mut report).unwrap();
        assert_eq!(std::fs::read_link(&own).unwrap(), Path::new("/dev/null"));
        unmask(&links, &mut report);
        assert!(std::fs::read_to_string(&own).unwrap().contains("@@/run/x"));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
