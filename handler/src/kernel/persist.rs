//! Keeping the handler across reboots and living with the other handlers:
//! the `sysctl.d` file `install --persist` writes (named to sort after
//! systemd's `50-coredump.conf`: sysctl.d(5) applies the files of every
//! sysctl.d directory in the order of their names, and a later setting
//! wins), what else on the machine will put another core_pattern line back
//! at boot (a later-sorting sysctl.d entry, /etc/sysctl.conf; the services
//! that write their own line are [`crate::kernel::other_handlers`]'), and the `[chain]` section that hands cores on to the
//! handler a line ran before (systemd-coredump, apport).

use anyhow::{anyhow, Context};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Where `install --persist` writes the settings: `/etc` is the
/// administrator's (a package never ships it), and `90-` sorts after
/// systemd's `50-coredump.conf` and before `99-sysctl.conf`, the link to
/// /etc/sysctl.conf where an administrator's own choice still wins.
pub const DEFAULT_SYSCTL_FILE: &str = "/etc/sysctl.d/90-lttng-coredump.conf";

/// The sysctl.d directories, the earlier hiding a file of the same name in
/// a later one (sysctl.d(5)).
pub const SYSCTL_DIRS: [&str; 5] = [
    "/etc/sysctl.d",
    "/run/sysctl.d",
    "/usr/local/lib/sysctl.d",
    "/usr/lib/sysctl.d",
    "/lib/sysctl.d",
];

/// procps' `sysctl --system` applies this one after every sysctl.d file.
pub const SYSCTL_CONF: &str = "/etc/sysctl.conf";

const KEYS: [&str; 2] = ["kernel.core_pattern", "kernel.core_pipe_limit"];

/// The file's text.
pub fn sysctl_text(pattern: &str, pipe_limit: &str) -> String {
    format!(
        "# Written by `lttng-coredump install --persist`; removed by `lttng-coredump uninstall`.\n\
         # Named to sort after systemd's 50-coredump.conf, so that this line wins at boot.\n\
         kernel.core_pattern = {pattern}\n\
         kernel.core_pipe_limit = {pipe_limit}\n"
    )
}

/// The sysctl key of the kernel's bound on FUSE requests
/// ([`crate::kernel::fuse_timeout`]); written with sysctl.d's `-` (a
/// kernel without it, or without the fuse module loaded yet, logs it and
/// goes on).
const FUSE_KEY: &str = "fs.fuse.max_request_timeout";

/// The text with the FUSE request bound too, when there is one to keep.
fn full_text(pattern: &str, pipe_limit: &str, fuse_timeout: Option<u64>) -> String {
    let mut text = sysctl_text(pattern, pipe_limit);
    if let Some(seconds) = fuse_timeout {
        text.push_str(&format!(
            "# A FUSE file system that never answers would hold a crash's dump (and its\n\
             # core_pipe_limit slot) for good: the kernel aborts a request older than this.\n\
             -{FUSE_KEY} = {seconds}\n"
        ));
    }
    text
}

/// The FUSE request bound the file at `path` keeps, if it keeps one.
pub fn persisted_fuse_timeout(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|line| {
        let (key, value) = line.trim().split_once('=')?;
        (key.trim().trim_start_matches('-') == FUSE_KEY)
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

/// Writes the sysctl.d file (whole or not at all), with the FUSE request
/// bound `fuse_timeout` when given; says what was done.
pub fn write(
    path: &Path,
    pattern: &str,
    pipe_limit: &str,
    fuse_timeout: Option<u64>,
) -> anyhow::Result<String> {
    let dir = path
        .parent()
        .ok_or_else(|| anyhow!("{} has no directory", path.display()))?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let temporary = dir.join(format!(
        ".{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    let _ = std::fs::remove_file(&temporary);
    std::fs::write(&temporary, full_text(pattern, pipe_limit, fuse_timeout))
        .and_then(|()| std::fs::rename(&temporary, path))
        .with_context(|| format!("cannot write {}", path.display()))?;
    let also = match fuse_timeout {
        Some(seconds) => format!(", and {FUSE_KEY} = {seconds}"),
        None => String::new(),
    };
    Ok(format!(
        "persistent: {} sets the same core_pattern and core_pipe_limit at every boot{also}\n",
        path.display()
    ))
}

/// Removes the sysctl.d file when there is one; says so.
pub fn remove(path: &Path) -> anyhow::Result<String> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(format!("removed {}\n", path.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(err) => Err(err).with_context(|| format!("cannot remove {}", path.display())),
    }
}

/// One setting a file makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub file: PathBuf,
    pub key: String,
    pub value: String,
}

/// The core_pattern and core_pipe_limit settings of a sysctl.d file.
fn settings_in(file: &Path) -> Vec<Setting> {
    let Ok(text) = std::fs::read_to_string(file) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                return None;
            }
            let (key, value) = line.split_once('=')?;
            // "-key" ignores errors; "/" separates like ".".
            let key = key.trim().trim_start_matches('-').replace('/', ".");
            KEYS.contains(&key.as_str()).then(|| Setting {
                file: file.to_path_buf(),
                key,
                value: value.trim().to_string(),
            })
        })
        .collect()
}

/// The sysctl.d files the boot applies, by name (the first directory
/// holding a name wins), then /etc/sysctl.conf, each once (a link to
/// another is read once).
fn boot_files(dirs: &[PathBuf], sysctl_conf: &Path) -> Vec<(std::ffi::OsString, PathBuf)> {
    let mut files: BTreeMap<std::ffi::OsString, PathBuf> = BTreeMap::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if !name.to_string_lossy().ends_with(".conf") {
                continue;
            }
            files.entry(name).or_insert_with(|| entry.path());
        }
    }
    let mut ordered: Vec<(std::ffi::OsString, PathBuf)> = files.into_iter().collect();
    ordered.push((
        std::ffi::OsString::from("\u{10ffff}"),
        sysctl_conf.to_path_buf(),
    ));
    let mut seen = Vec::new();
    ordered.retain(|(_, file)| {
        // /etc/sysctl.d/99-sysctl.conf is a link to /etc/sysctl.conf.
        let real = std::fs::canonicalize(file).unwrap_or_else(|_| file.clone());
        if seen.contains(&real) {
            return false;
        }
        seen.push(real);
        true
    });
    ordered
}

/// Every core_pattern and core_pipe_limit setting the boot applies, in
/// the order it applies them (the last of a key wins).
pub fn settings_of_all(dirs: &[PathBuf], sysctl_conf: &Path) -> Vec<Setting> {
    boot_files(dirs, sysctl_conf)
        .iter()
        .flat_map(|(_, file)| settings_in(file))
        .collect()
}

/// The settings of core_pattern and core_pipe_limit applied at boot after
/// `ours` (by file name, as sysctl.d(5) orders them; /etc/sysctl.conf
/// last), which put other values back.
pub fn later_settings(ours: &Path, dirs: &[PathBuf], sysctl_conf: &Path) -> Vec<Setting> {
    let our_name = ours
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    boot_files(dirs, sysctl_conf)
        .iter()
        .filter(|(name, _)| *name > our_name)
        .flat_map(|(_, file)| settings_in(file))
        .collect()
}

/// Warnings about what will replace the handler's line at boot.
pub fn boot_warnings(
    ours: &Path,
    installed: bool,
    files: &crate::kernel::other_handlers::BootFiles,
) -> String {
    let mut out = String::new();
    let persistent = ours.is_file();
    if installed && !persistent {
        writeln!(
            out,
            "warning: not persistent: at the next boot core_pattern goes back to what the \
             sysctl.d files say (install --persist writes {})",
            ours.display()
        )
        .expect("String");
    }
    for setting in later_settings(ours, &files.sysctl_dirs, &files.sysctl_conf) {
        writeln!(
            out,
            "warning: {} sets {} = {} after {} at boot: it wins",
            setting.file.display(),
            setting.key,
            setting.value,
            ours.display()
        )
        .expect("String");
    }
    out
}

/// The handler a core_pattern line runs, when it is one people know.
pub fn known_handler(pattern: &str) -> Option<&'static str> {
    let program = pattern.strip_prefix('|')?.split_whitespace().next()?;
    let name = Path::new(program).file_name()?.to_str()?;
    match name {
        "systemd-coredump" => Some("systemd-coredump"),
        "apport" => Some("apport"),
        _ => None,
    }
}

/// The `[chain]` section that hands every core on to the program a pipe
/// core_pattern line runs, with the same arguments (the kernel's `%`
/// specifiers become the handler's `{}` fields).
pub fn chain_section(pattern: &str) -> anyhow::Result<String> {
    let line = pattern.strip_prefix('|').ok_or_else(|| {
        anyhow!(
            "core_pattern {pattern:?} is a file name, not a program: there is nothing to chain to"
        )
    })?;
    let mut words = Vec::new();
    for word in line.split_whitespace() {
        words.push(translate(word)?);
    }
    if words
        .first()
        .is_none_or(|program| !program.starts_with('/'))
    {
        return Err(anyhow!(
            "core_pattern {pattern:?} does not run a program by its absolute path"
        ));
    }
    let quoted: Vec<String> = words
        .iter()
        .map(|w| toml::Value::String(w.clone()).to_string())
        .collect();
    Ok(format!(
        "\n# Written by `lttng-coredump install --chain-previous`: every core is also\n\
         # handed to what core_pattern ran before.\n[chain]\ncommand = [{}]\n",
        quoted.join(", ")
    ))
}

fn translate(word: &str) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let field = match chars.next() {
            Some('%') => "%",
            Some('p' | 'P') => "{pid}",
            Some('u') => "{uid}",
            Some('g') => "{gid}",
            Some('s') => "{signal}",
            Some('t') => "{time}",
            Some('c') => "{core_limit}",
            Some('d') => "{dump_mode}",
            Some('h') => "{hostname}",
            Some('e') => "{comm}",
            Some('E') => "{exe}",
            Some('F') => "{pidfd}",
            Some(other) => {
                return Err(anyhow!(
                    "the specifier %{other} in {word:?} has no counterpart in the handler's chain \
                     fields"
                ))
            }
            None => "%",
        };
        out.push_str(field);
    }
    Ok(out)
}

/// Appends the `[chain]` section to the configuration at `path` (created
/// root-only-writable when missing); refuses when it already has one.
pub fn add_chain(path: &Path, section: &str) -> anyhow::Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };
    let parsed: toml::Table = existing
        .parse()
        .with_context(|| format!("{} does not parse", path.display()))?;
    if parsed.contains_key("chain") {
        return Err(anyhow!(
            "{} already has a [chain] section: not adding another (edit it by hand)",
            path.display()
        ));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut text = existing;
    text.push_str(section);
    let temporary = path.with_extension("toml.tmp");
    let _ = std::fs::remove_file(&temporary);
    std::fs::write(&temporary, &text)
        .and_then(|()| std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o644)))
        .and_then(|()| std::fs::rename(&temporary, path))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(format!(
        "chained: every core is also handed to the previous handler ([chain] in {})\n",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "handler-persist-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn our_file_sorts_after_systemds_and_before_sysctl_conf() {
        let name = Path::new(DEFAULT_SYSCTL_FILE).file_name().unwrap();
        assert!(name > std::ffi::OsStr::new("50-coredump.conf"));
        assert!(name < std::ffi::OsStr::new("99-sysctl.conf"));
    }

    #[test]
    fn later_files_that_set_the_pattern_are_found() {
        let root = scratch("later");
        let (etc, usr) = (root.join("etc"), root.join("usr"));
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::create_dir_all(&usr).unwrap();
        let ours = etc.join("90-lttng-coredump.conf");
        std::fs::write(&ours, sysctl_text("|/x handle", "64")).unwrap();
        std::fs::write(
            usr.join("50-coredump.conf"),
            "kernel.core_pattern=|/lib/systemd/systemd-coredump %P\n",
        )
        .unwrap();
        std::fs::write(
            usr.join("95-apport.conf"),
            "# x\n-kernel/core_pattern = |/usr/share/apport/apport %p\n",
        )
        .unwrap();
        std::fs::write(usr.join("96-other.conf"), "vm.swappiness = 1\n").unwrap();
        // Hidden by /etc's file of the same name, which sets nothing.
        std::fs::write(usr.join("97-hidden.conf"), "kernel.core_pattern = core\n").unwrap();
        std::fs::write(etc.join("97-hidden.conf"), "\n").unwrap();
        let conf = root.join("sysctl.conf");
        std::fs::write(&conf, "kernel.core_pipe_limit = 2\n").unwrap();
        let settings = later_settings(&ours, &[etc.clone(), usr.clone()], &conf);
        assert_eq!(
            settings,
            [
                Setting {
                    file: usr.join("95-apport.conf"),
                    key: "kernel.core_pattern".into(),
                    value: "|/usr/share/apport/apport %p".into()
                },
                Setting {
                    file: conf.clone(),
                    key: "kernel.core_pipe_limit".into(),
                    value: "2".into()
                }
            ]
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn known_handlers_and_their_chain_sections() {
        let systemd = "|/lib/systemd/systemd-coredump %P %u %g %s %t 9223372036854775808 %h";
        assert_eq!(known_handler(systemd), Some("systemd-coredump"));
        let apport = "|/usr/share/apport/apport -p%p -s%s -c%c -d%d -P%P -u%u -g%g -- %E";
        assert_eq!(known_handler(apport), Some("apport"));
        assert_eq!(known_handler("core"), None);
        assert_eq!(known_handler("|/usr/bin/other %p"), None);

        let section = chain_section(systemd).unwrap();
        let table: toml::Table = section.parse().unwrap();
        let command: Vec<&str> = table["chain"]["command"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(
            command,
            [
                "/lib/systemd/systemd-coredump",
                "{pid}",
                "{uid}",
                "{gid}",
                "{signal}",
                "{time}",
                "9223372036854775808",
                "{hostname}"
            ]
        );
        // And the handler's own configuration reader takes it.
        let config = crate::base::config::Config::parse(&section).unwrap();
        assert_eq!(config.chain.unwrap().command.len(), 8);
        let apport_chain: toml::Table = chain_section(apport).unwrap().parse().unwrap();
        assert_eq!(
            apport_chain["chain"]["command"][1].as_str(),
            Some("-p{pid}")
        );
        assert_eq!(apport_chain["chain"]["command"][9].as_str(), Some("{exe}"));
        assert!(chain_section("core.%p")
            .unwrap_err()
            .to_string()
            .contains("file name"));
        assert!(chain_section("|/x %i")
            .unwrap_err()
            .to_string()
            .contains("%i"));
    }

    #[test]
    fn chain_is_added_once() {
        let root = scratch("chain");
        let path = root.join("lttng-coredump/config.toml");
        let section = chain_section("|/lib/systemd/systemd-coredump %P").unwrap();
        add_chain(&path, &section).unwrap();
        assert!(add_chain(&path, &section)
            .unwrap_err()
            .to_string()
            .contains("already has"));
        std::fs::write(&path, "compression = \"zstd\"\n").unwrap();
        add_chain(&path, &section).unwrap();
        let config =
            crate::base::config::Config::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(config.compression, crate::base::config::Compression::Zstd);
        assert!(config.chain.is_some());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
