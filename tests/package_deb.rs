//! The Debian packages (`scripts/package`): built from the workspace,
//! checked by lintian (no error), installed with dpkg on this machine, used
//! (`lttng-coredump status`, `config`, the man pages with their EXIT
//! STATUS, FILES, EXAMPLES and SEE ALSO and lttng-coredump.conf(5), the
//! units as systemd-analyze reads them, the bash completion, a C program
//! built against the installed -dev package with pkg-config), then purged,
//! after which nothing of them is left. Installing and removing them never
//! changes core_pattern by itself.
//!
//! The package makes the submitter's system user `lttng-coredump` and the
//! spool `/var/spool/lttng-coredump` (as `install` does); removing it keeps
//! them and the crashes, purging it removes them all (the crashes of the
//! default core directory too) and says so.
//!
//! Removing the handler's package leaves a working core_pattern, at once
//! and after a (simulated) reboot, whatever was done with it: `install
//! --persist` (a crash handled by the packaged binary first), `install
//! --socket` with the service running (`serve --hold`), and a line someone
//! else wrote since the install.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use testsupport::core_pattern::kernel_core_pattern;
use testsupport::handler::{config_for, crash_and_record};
use testsupport::{
    crasher_command, unique_name, workspace_root, CorePatternGuard, FileLock, MachineStateAside,
    TempDir,
};

/// What a purge removes at the package's default paths: the machine's own,
/// set aside while a test installs and purges (see [`MachineStateAside`]).
const DEFAULT_PATHS: [&str; 3] = [
    "/var/lib/lttng-coredump",
    "/var/spool/lttng-coredump",
    "/etc/lttng-coredump",
];

const PACKAGES: [&str; 3] = [
    "lttng-coredump",
    "liblttng-coredump0",
    "liblttng-coredump-dev",
];

fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

fn ok(command: &mut Command) -> String {
    let output = run(command);
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// dpkg, waiting while another dpkg or apt holds its lock.
fn dpkg(args: &[&str]) -> Output {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let output = run(Command::new("dpkg").args(args));
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() || !stderr.contains("lock") || Instant::now() > deadline {
            return output;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The spool the package makes, and its submitter's user.
const SPOOL: &str = "/var/spool/lttng-coredump";
const SUBMIT_USER: &str = "lttng-coredump";

/// The passwd entry of the submitter's user, split, if there is one.
fn submit_user() -> Option<Vec<String>> {
    fs::read_to_string("/etc/passwd")
        .unwrap()
        .lines()
        .find(|l| l.starts_with(&format!("{SUBMIT_USER}:")))
        .map(|l| l.split(':').map(str::to_owned).collect())
}

/// The package made the submitter's system user (no login) and the spool,
/// root's, its queue that user's.
fn assert_user_and_spool_made(when: &str) {
    let entry = submit_user().unwrap_or_else(|| panic!("{when}: no user {SUBMIT_USER}"));
    let uid: u32 = entry[2].parse().unwrap();
    assert!(uid > 0 && uid < 1000, "{when}: {entry:?}");
    assert_eq!(entry[4], "lttng-coredump crash submitter", "{when}");
    assert!(
        entry[6].ends_with("nologin") || entry[6] == "/bin/false",
        "{when}: {entry:?}"
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(fs::metadata(SPOOL).unwrap().uid(), 0, "{when}");
    assert_eq!(
        fs::metadata(format!("{SPOOL}/queue")).unwrap().uid(),
        uid,
        "{when}"
    );
}

/// Purged: the user and the spool are gone.
fn assert_user_and_spool_gone(when: &str) {
    assert!(submit_user().is_none(), "{when}: {SUBMIT_USER} is left");
    assert!(!Path::new(SPOOL).exists(), "{when}: {SPOOL} is left");
}

fn kernel_settings() -> (String, String) {
    (
        fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(),
        fs::read_to_string("/proc/sys/kernel/core_pipe_limit").unwrap(),
    )
}

/// The files (not directories) a package installed.
fn files_of(package: &str) -> Vec<PathBuf> {
    let output = dpkg(&["-L", package]);
    assert!(output.status.success(), "dpkg -L {package}: {output:?}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(PathBuf::from)
        // Not directories, nor links to one (/lib on a merged-/usr system).
        .filter(|p| fs::symlink_metadata(p).is_ok() && !fs::metadata(p).is_ok_and(|m| m.is_dir()))
        .collect()
}

/// Purges the packages when dropped (a failed test leaves none behind).
struct PurgeOnDrop;

impl Drop for PurgeOnDrop {
    fn drop(&mut self) {
        let _ = purge();
    }
}

/// Purges the packages (also what an earlier, failed run left).
fn purge() -> Output {
    let mut args = vec!["--purge"];
    args.extend(PACKAGES);
    dpkg(&args)
}

#[test]
fn the_debian_packages_install_work_and_purge_without_a_trace() {
    // One packaging test at a time on the machine; and none of the tests
    // that set core_pattern meanwhile, so that an unchanged core_pattern
    // means the packages did not change it.
    let _lock = FileLock::acquire("dpkg-packages");
    let _aside = MachineStateAside::take(&DEFAULT_PATHS);
    let _guard = CorePatternGuard::acquire();
    let dir = TempDir::new("lcdt-deb");
    let debs = build(&dir);
    // lintian: no error (warnings are printed).
    let lintian = run(Command::new("lintian")
        .args(["--tag-display-limit", "0"])
        .args(&debs));
    let findings = String::from_utf8_lossy(&lintian.stdout).into_owned();
    println!("lintian: {findings}");
    assert!(
        !findings.lines().any(|l| l.starts_with("E: ")),
        "lintian found errors:\n{findings}{}",
        String::from_utf8_lossy(&lintian.stderr)
    );

    let _ = purge();
    let before = kernel_settings();
    let mut args = vec!["-i"];
    args.extend(debs.iter().map(|d| d.to_str().unwrap()));
    let purge_on_drop = PurgeOnDrop;
    let output = dpkg(&args);
    assert!(output.status.success(), "dpkg -i: {output:?}");
    assert_eq!(
        kernel_settings(),
        before,
        "installing changed the kernel settings"
    );
    assert_user_and_spool_made("installed");
    let installed: Vec<PathBuf> = PACKAGES.iter().flat_map(|p| files_of(p)).collect();
    for expected in [
        "/usr/bin/lttng-coredump",
        "/etc/lttng-coredump/config.toml",
        "/usr/share/man/man1/lttng-coredump.1.gz",
        "/usr/share/man/man1/lttng-coredump-trace.1.gz",
        "/usr/share/man/man5/lttng-coredump.conf.5.gz",
        "/lib/systemd/system/lttng-coredump.socket",
        "/lib/systemd/system/lttng-coredump.service",
        "/usr/share/doc/lttng-coredump/changelog.Debian.gz",
        "/usr/share/doc/liblttng-coredump0/copyright",
        "/usr/share/bash-completion/completions/lttng-coredump",
        "/usr/share/zsh/vendor-completions/_lttng-coredump",
        "/usr/share/doc/lttng-coredump/copyright",
        "/usr/include/lttng-coredump.h",
    ] {
        assert!(
            installed.contains(&PathBuf::from(expected)),
            "{expected} not installed"
        );
    }
    let conffiles =
        ok(Command::new("dpkg-query").args(["-W", "-f=${Conffiles}", "lttng-coredump"]));
    assert!(
        conffiles.contains("/etc/lttng-coredump/config.toml"),
        "{conffiles}"
    );

    // Every file as its md5sums say, a maintainer, the crates' licences.
    for package in PACKAGES {
        let verify = dpkg(&["--verify", package]);
        assert!(
            verify.status.success() && verify.stdout.is_empty(),
            "dpkg --verify {package}: {verify:?}"
        );
        assert!(
            Path::new(&format!("/var/lib/dpkg/info/{package}.md5sums")).is_file()
                || Path::new(&format!("/var/lib/dpkg/info/{package}:{}.md5sums", arch())).is_file(),
            "{package} has no md5sums"
        );
        let maintainer = ok(Command::new("dpkg-query").args(["-W", "-f=${Maintainer}", package]));
        assert!(
            maintainer.contains(" <")
                && maintainer.ends_with('>')
                && !maintainer.contains("example.invalid"),
            "{package}: Maintainer: {maintainer}"
        );
    }
    let copyright = fs::read_to_string("/usr/share/doc/lttng-coredump/copyright").unwrap();
    for needle in [
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/",
        "Files: rust-crates/serde_json-",
        "Files: rust-crates/zstd-sys-",
        "License: MIT\n",
        "License: BSD-3-clause\n",
        "/usr/share/common-licenses/Apache-2.0",
        "/usr/share/common-licenses/LGPL-2.1",
    ] {
        assert!(copyright.contains(needle), "{needle} missing:\n{copyright}");
    }

    // The installed program.
    let status = run(Command::new("/usr/bin/lttng-coredump").arg("status"));
    let status_text = String::from_utf8_lossy(&status.stdout);
    assert!(status_text.contains("core_pattern:"), "{status:?}");
    let config = ok(Command::new("/usr/bin/lttng-coredump").args([
        "config",
        "--config",
        "/etc/lttng-coredump/config.toml",
    ]));
    assert!(
        config.contains("# configuration /etc/lttng-coredump/config.toml")
            && config.contains("core_dir = \"/var/lib/lttng-coredump/cores\"  # default")
            && !config.contains("problem"),
        "{config}"
    );
    let man = ok(Command::new("man")
        .args(["lttng-coredump"])
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100"));
    assert!(
        man.contains("SYNOPSIS") && man.contains("lttng-coredump"),
        "{man}"
    );
    let man_trace = ok(Command::new("man")
        .args(["lttng-coredump-trace"])
        .env("MANPAGER", "cat"));
    assert!(man_trace.contains("--last"), "{man_trace}");
    let man_status = ok(Command::new("man")
        .args(["lttng-coredump-status"])
        .env("MANPAGER", "cat"));
    for section in ["EXIT STATUS", "FILES", "EXAMPLES", "SEE ALSO"] {
        assert!(man_status.contains(section), "{section}: {man_status}");
    }
    let man_conf = ok(Command::new("man")
        .args(["5", "lttng-coredump.conf"])
        .env("MANPAGER", "cat"));
    assert!(
        man_conf.contains("max_core_size") && man_conf.contains("chain.command"),
        "{man_conf}"
    );
    // The units as systemd reads them, the man pages they name installed.
    let verify = run(Command::new("systemd-analyze").args([
        "verify",
        "/lib/systemd/system/lttng-coredump.socket",
        "/lib/systemd/system/lttng-coredump.service",
    ]));
    let complaints: Vec<String> = String::from_utf8_lossy(&verify.stderr)
        .lines()
        // Units of other packages named for ordering only.
        .filter(|l| {
            ![
                "lttng-sessiond.service",
                "apport.service",
                "systemd-coredump-register",
            ]
            .iter()
            .any(|other| l.contains(other))
        })
        .map(str::to_string)
        .collect();
    assert!(
        verify.status.success() && complaints.is_empty(),
        "{complaints:?}"
    );
    let completion = ok(Command::new("bash").args([
        "-c",
        "source /usr/share/bash-completion/completions/lttng-coredump && complete -p lttng-coredump",
    ]));
    assert!(completion.contains("lttng-coredump"), "{completion}");

    // A C program against the installed -dev package.
    let source = dir.path().join("app.c");
    fs::write(
        &source,
        r#"#include <stdio.h>
#include <lttng/lttng.h>
#include <lttng-coredump.h>

int main(void)
{
	int set = lttng_coredump_set_fire_timeout_ms(2000);
	int bad = lttng_trigger_set(NULL, LTTNG_TRIGGER_TYPE_ONANYCOREDUMP,
				    LTTNG_TRIGGER_ACTION_SNAPSHOT, NULL, 0);

	printf("timeout %d %u, NULL handle %d\n", set, lttng_coredump_get_fire_timeout_ms(), bad);
	return set == 0 && bad < 0 ? 0 : 1;
}
"#,
    )
    .unwrap();
    let flags = ok(Command::new("pkg-config").args(["--cflags", "--libs", "lttng-coredump"]));
    let program = dir.path().join("app");
    ok(Command::new("cc")
        .args(["-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&program)
        .arg(&source)
        .args(flags.split_whitespace()));
    let ran = ok(&mut Command::new(&program));
    assert!(ran.starts_with("timeout 0 2000, NULL handle -"), "{ran}");
    let linked = ok(Command::new("ldd").arg(&program));
    assert!(
        linked
            .lines()
            .any(|l| l.contains("liblttng-coredump.so.0 => /")
                && l.contains("lib/x86_64-linux-gnu/liblttng-coredump.so.0")),
        "{linked}"
    );

    // A crash kept in the default core directory: the purge removes it
    // (with the user and the spool) and says so.
    let cores = Path::new("/var/lib/lttng-coredump/cores");
    fs::create_dir_all(cores).unwrap();
    fs::write(cores.join("core.deb.1.2.json"), "{}").unwrap();
    fs::write(cores.join("core.deb.1.2"), "core").unwrap();

    // Purged: nothing of them is left, and the kernel is as it was.
    std::mem::forget(purge_on_drop);
    let output = purge();
    assert!(output.status.success(), "dpkg --purge: {output:?}");
    let said = String::from_utf8_lossy(&output.stderr);
    for needle in [
        "removed /var/lib/lttng-coredump/cores: the crashes kept there (1 records",
        "removed the spool /var/spool/lttng-coredump (0 crashes not yet sent",
        "removed the system user lttng-coredump",
    ] {
        assert!(said.contains(needle), "{needle}: {output:?}");
    }
    assert_user_and_spool_gone("purged");
    assert!(!cores.exists());
    for file in &installed {
        assert!(
            fs::symlink_metadata(file).is_err(),
            "{} is left after the purge",
            file.display()
        );
    }
    assert!(!Path::new("/etc/lttng-coredump").exists());
    assert_eq!(
        kernel_settings(),
        before,
        "removing changed the kernel settings"
    );
    let pc = run(Command::new("pkg-config").args(["--exists", "lttng-coredump"]));
    assert!(!pc.status.success(), "lttng-coredump.pc is still found");
}

/// Builds the packages into `dir`; their paths, in [`PACKAGES`]' order.
fn build(dir: &TempDir) -> Vec<PathBuf> {
    let out = dir.path().join("debs");
    ok(Command::new(workspace_root().join("scripts/package"))
        .args(["--profile", "dev"])
        .arg(&out));
    let debs: Vec<PathBuf> = PACKAGES
        .iter()
        .map(|name| out.join(format!("{name}_0.1.0-1_{}.deb", arch())))
        .collect();
    for deb in &debs {
        assert!(deb.is_file(), "{} was not built", deb.display());
    }
    debs
}

/// A core_pattern that works: a program that exists, a socket something
/// listens on, or a file name; never the removed handler.
fn assert_working(when: &str) {
    let pattern = kernel_core_pattern();
    assert!(
        !pattern.contains("lttng-coredump"),
        "{when}: core_pattern still runs the removed handler: {pattern}"
    );
    if let Some(line) = pattern.strip_prefix('|') {
        let program = line.split_whitespace().next().unwrap_or_default();
        assert!(
            Path::new(program).is_file(),
            "{when}: core_pattern runs {program}, which does not exist"
        );
    } else if let Some(socket) = pattern.strip_prefix("@@").or(pattern.strip_prefix('@')) {
        assert!(
            std::os::unix::net::UnixStream::connect(socket).is_ok(),
            "{when}: core_pattern sends cores to {socket}, where nothing listens"
        );
    }
}

/// The holder of the packaged crash service (`serve --hold`), stopped when
/// dropped (it runs the removed binary once the package is gone).
struct Holder(std::process::Child);

impl Drop for Holder {
    fn drop(&mut self) {
        // SAFETY: kill(2) of our own child, not yet reaped.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.0.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
        // The socket's directory it made, when nothing else is in it.
        let _ = fs::remove_dir("/run/lttng-coredump");
    }
}

#[test]
fn removing_the_package_leaves_a_working_core_pattern_now_and_after_a_reboot() {
    let _lock = FileLock::acquire("dpkg-packages");
    let _aside = MachineStateAside::take(&DEFAULT_PATHS);
    let guard = CorePatternGuard::acquire();
    let dir = TempDir::new("lcdt-deb-rm");
    let debs = build(&dir);
    let deb = debs[0].to_str().unwrap();
    let _ = purge();
    let purge_on_drop = PurgeOnDrop;
    let handler = "/usr/bin/lttng-coredump";
    // A configuration of this test's own, at a short path (the line must
    // fit the kernel's 127 bytes), in a directory only root writes.
    let cores = dir.path().join("cores");
    fs::create_dir_all("/run/lcdh").unwrap();
    let config = PathBuf::from(format!("/run/lcdh/p.{}.toml", std::process::id()));
    fs::write(&config, config_for(&cores, "")).unwrap();
    let _remove_config = testsupport::temp::RemoveOnDrop(vec![config.clone()]);
    let install = |options: &[&str]| {
        let mut args = vec!["install", "--config", config.to_str().unwrap()];
        args.extend(options);
        let output = run(Command::new(handler).args(&args));
        assert!(output.status.success(), "install {options:?}: {output:?}");
    };
    let remove_and_reboot = |case: &str| {
        let output = dpkg(&["-r", "lttng-coredump"]);
        assert!(output.status.success(), "{case}: dpkg -r: {output:?}");
        assert!(!Path::new(handler).exists());
        assert_working(&format!("{case}, once removed"));
        assert!(!Path::new("/etc/sysctl.d/90-lttng-coredump.conf").exists());
        // Removed, not purged: the user and the spool stay.
        assert_user_and_spool_made(&format!("{case}, once removed"));
        guard.simulate_boot();
        assert_working(&format!("{case}, after a reboot"));
        let output = dpkg(&["--purge", "lttng-coredump"]);
        assert!(output.status.success(), "{case}: dpkg --purge: {output:?}");
        assert!(!Path::new("/var/lib/lttng-coredump/core_pattern.bkp").exists());
        assert_user_and_spool_gone(&format!("{case}, once purged"));
    };

    // 1) install --persist, and a crash handled by the packaged handler.
    guard.simulate_boot();
    let before = kernel_core_pattern();
    assert!(dpkg(&["-i", deb]).status.success());
    install(&["--persist"]);
    assert!(kernel_core_pattern().starts_with(&format!("|{handler} handle")));
    let (_, record) = crash_and_record(
        crasher_command().args([&unique_name("deb"), "1", "segv"]),
        &cores,
    );
    assert_eq!(record["core"]["complete"], true, "{record:#}");
    remove_and_reboot("install --persist");
    assert_eq!(kernel_core_pattern(), before);

    // 2) install --socket --persist, the service running under its holder.
    assert!(dpkg(&["-i", deb]).status.success());
    let holder = Holder(
        Command::new(handler)
            .args(["serve", "--hold", "--config", config.to_str().unwrap()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let output = run(Command::new(handler).args([
            "install",
            "--socket",
            "--persist",
            "--config",
            config.to_str().unwrap(),
        ]));
        if output.status.success() {
            break;
        }
        assert!(Instant::now() < deadline, "install --socket: {output:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(kernel_core_pattern().starts_with("@"));
    remove_and_reboot("install --socket");
    drop(holder);

    // 3) a line someone else wrote since the install: theirs, it stays.
    assert!(dpkg(&["-i", deb]).status.success());
    install(&["--persist"]);
    guard.set("|/bin/true someone-else");
    remove_and_reboot("a line changed since the install");

    std::mem::forget(purge_on_drop);
    assert!(purge().status.success());
    drop(guard);
}

fn arch() -> String {
    ok(Command::new("dpkg").arg("--print-architecture"))
        .trim()
        .to_string()
}
