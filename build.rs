//! Compiles the C program of the root package's own tests: the layout probe
//! (`tests/fixtures/lttng_ctl_layout.c`, the sizes and offsets of
//! liblttng-ctl's structs as C sees them, which `tests/lttng_ctl_layout.rs`
//! compares with the bindings), with warnings as errors, and tells the test
//! where it is (`FIXTURE_LTTNG_CTL_LAYOUT`). The C programs the test
//! support runs are compiled by `testsupport/build.rs`.

use std::path::PathBuf;

fn main() {
    let source = "tests/fixtures/lttng_ctl_layout.c";
    println!("cargo:rerun-if-changed={source}");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let exe = out_dir.join("lttng_ctl_layout");
    let probed = pkg_config::Config::new()
        .cargo_metadata(false)
        .probe("lttng-ctl")
        .unwrap_or_else(|e| {
            panic!("pkg-config could not find lttng-ctl (apt-get install -y liblttng-ctl-dev): {e}")
        });
    let compiler = cc::Build::new().cargo_metadata(false).get_compiler();
    let mut cmd = compiler.to_command();
    cmd.args(["-Wall", "-Wextra", "-Werror", "-O1", "-g", "-o"])
        .arg(&exe)
        .arg(source);
    for dir in &probed.include_paths {
        cmd.arg(format!("-I{}", dir.display()));
    }
    for dir in &probed.link_paths {
        cmd.arg(format!("-L{}", dir.display()));
    }
    for lib in &probed.libs {
        cmd.arg(format!("-l{lib}"));
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("could not run the C compiler for the layout probe: {e}"));
    assert!(
        status.success(),
        "compiling the layout probe failed: {cmd:?}"
    );
    println!("cargo:rustc-env=FIXTURE_LTTNG_CTL_LAYOUT={}", exe.display());
}
