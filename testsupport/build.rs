//! Compiles the C programs the test support runs (the project's one
//! crashing program, `programs/crasher.c`, and the attacker's tools in
//! `tests/fixtures`, both at the top of the workspace) with the C compiler
//! the `cc` crate finds, with warnings as errors, and tells the library
//! where they are through `FIXTURE_*` environment variables (the root
//! package's `build.rs` compiles the layout probe its own test runs).

use std::env;
use std::path::{Path, PathBuf};

const CFLAGS: &[&str] = &["-Wall", "-Wextra", "-Werror", "-O1", "-g"];

/// The workspace, where the C sources are.
const ROOT: &str = "..";

/// Builds one executable from `sources`, linking `libs` found by pkg-config.
fn build_executable(name: &str, sources: &[&str], pkg_libs: &[&str]) -> PathBuf {
    build(name, sources, pkg_libs, false)
}

/// Builds one shared library (for `LD_PRELOAD`) from `sources`.
fn build_shared(name: &str, sources: &[&str]) -> PathBuf {
    build(name, sources, &[], true)
}

fn build(name: &str, sources: &[&str], pkg_libs: &[&str], shared: bool) -> PathBuf {
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let exe = out_dir.join(name);
    let compiler = cc::Build::new().cargo_metadata(false).get_compiler();
    let mut cmd = compiler.to_command();
    cmd.args(CFLAGS)
        .arg(format!("-I{ROOT}/programs"))
        .arg("-o")
        .arg(&exe);
    if shared {
        cmd.args(["-shared", "-fPIC"]);
    }
    for src in sources {
        let src = format!("{ROOT}/{src}");
        println!("cargo:rerun-if-changed={src}");
        cmd.arg(src);
    }
    for lib in pkg_libs {
        let probed = pkg_config::Config::new()
            .cargo_metadata(false)
            .probe(lib)
            .unwrap_or_else(|e| {
                panic!("pkg-config could not find {lib} (apt-get install -y liblttng-ust-dev liblttng-ctl-dev libfuse3-dev): {e}")
            });
        for dir in probed.include_paths {
            cmd.arg(format!("-I{}", dir.display()));
        }
        for dir in probed.link_paths {
            cmd.arg(format!("-L{}", dir.display()));
        }
        for l in probed.libs {
            cmd.arg(format!("-l{l}"));
        }
    }
    cmd.arg("-ldl");
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("could not run the C compiler for {name}: {e}"));
    assert!(
        status.success(),
        "compiling the {name} fixture failed: {cmd:?}"
    );
    exe
}

fn export(var: &str, path: &Path) {
    println!("cargo:rustc-env={var}={}", path.display());
}

fn main() {
    println!("cargo:rerun-if-changed={ROOT}/programs/lttng_coredump_tp.h");
    let crasher = build_executable("crasher", &["programs/crasher.c"], &["lttng-ust"]);
    export("FIXTURE_CRASHER", &crasher);
    // The attacker's tools of the security tests: a FUSE file system that
    // never answers, a library that makes a user's own session daemon lie,
    // and a program registering a trigger owned by any uid.
    let hangfs = build_executable("hangfs", &["tests/fixtures/hangfs.c"], &["fuse3"]);
    export("FIXTURE_HANGFS", &hangfs);
    let hostile = build_shared(
        "hostile_sessiond.so",
        &["tests/fixtures/hostile_sessiond.c"],
    );
    export("FIXTURE_HOSTILE_SESSIOND", &hostile);
    let register = build_executable(
        "register_trigger",
        &["tests/fixtures/register_trigger.c"],
        &["lttng-ctl"],
    );
    export("FIXTURE_REGISTER_TRIGGER", &register);
    let setuid_dumpable = build_executable(
        "setuid_dumpable",
        &["tests/fixtures/setuid_dumpable.c"],
        &[],
    );
    export("FIXTURE_SETUID_DUMPABLE", &setuid_dumpable);
    // Crashes made to cost the handler: a dump that waits on a FUSE file
    // system, a core full of buffers that look like traces.
    let hostile_crash = build_executable("hostile_crash", &["tests/fixtures/hostile_crash.c"], &[]);
    export("FIXTURE_HOSTILE_CRASH", &hostile_crash);
}
