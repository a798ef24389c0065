//! The Debian packages (`scripts/package`): built from the workspace,
//! installed with dpkg on this machine, used (`lttng-coredump status`,
//! `config`, `man lttng-coredump`, the bash completion, a C program built
//! against the installed -dev package with pkg-config), then purged, after
//! which nothing of them is left. Installing and removing them never
//! changes core_pattern.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use testsupport::{workspace_root, CorePatternGuard, FileLock, TempDir};

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
        .filter(|p| fs::symlink_metadata(p).is_ok_and(|m| !m.is_dir()))
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
    let _guard = CorePatternGuard::acquire();
    let dir = TempDir::new("lcdt-deb");
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
    let installed: Vec<PathBuf> = PACKAGES.iter().flat_map(|p| files_of(p)).collect();
    for expected in [
        "/usr/bin/lttng-coredump",
        "/etc/lttng-coredump/config.toml",
        "/usr/share/man/man1/lttng-coredump.1.gz",
        "/usr/share/man/man1/lttng-coredump-trace.1.gz",
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

    // Purged: nothing of them is left, and the kernel is as it was.
    std::mem::forget(purge_on_drop);
    let output = purge();
    assert!(output.status.success(), "dpkg --purge: {output:?}");
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

fn arch() -> String {
    ok(Command::new("dpkg").arg("--print-architecture"))
        .trim()
        .to_string()
}
