//! The `lttng-ctl-sys` build fails with a message naming the Debian
//! packages to install, not a pkg-config or bindgen backtrace, when
//! liblttng-ctl cannot be found or libclang cannot be loaded.

use std::path::PathBuf;
use std::process::Command;
use testsupport::{workspace_root, FileLock};

/// Builds lttng-ctl-sys in a target directory of its own (the workspace's
/// is in use by the test run) with `env` added, and returns cargo's output.
fn build_sys_with(env: &[(&str, &str)]) -> (bool, String) {
    let _lock = FileLock::acquire("sys-build-errors");
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sys-build-errors");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args(["build", "--quiet", "-p", "lttng-ctl-sys", "--target-dir"])
        .arg(&target);
    for (key, value) in env {
        cmd.env(key, value);
    }
    let out = cmd.output().expect("running cargo");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn a_missing_liblttng_ctl_names_the_packages_to_install() {
    let (ok, text) = build_sys_with(&[
        ("PKG_CONFIG_LIBDIR", "/nonexistent"),
        ("PKG_CONFIG_PATH", ""),
    ]);
    assert!(!ok, "the build succeeded without liblttng-ctl.pc:\n{text}");
    assert!(
        text.contains("liblttng-ctl >= 2.13 was not found by pkg-config"),
        "{text}"
    );
    assert!(
        text.contains("apt-get install -y liblttng-ctl-dev pkg-config libclang-dev"),
        "{text}"
    );
}

#[test]
fn a_missing_libclang_names_the_packages_to_install() {
    let (ok, text) = build_sys_with(&[("LIBCLANG_PATH", "/nonexistent")]);
    assert!(!ok, "the build succeeded without libclang:\n{text}");
    assert!(text.contains("is libclang installed?"), "{text}");
    assert!(
        text.contains("apt-get install -y liblttng-ctl-dev pkg-config libclang-dev"),
        "{text}"
    );
    assert!(!text.contains("stack backtrace"), "{text}");
}
