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

/// The crash report's fixtures (`tests/fixtures/report`): a shared
/// library, a program crashing in every way the report must read (built
/// with and without debug information, linked to the library), and a Rust
/// program built with `panic=abort`.
fn build_report_fixtures() {
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dir = format!("{ROOT}/tests/fixtures/report");
    for file in [
        "report_crasher.c",
        "report_library.c",
        "report_fixture.h",
        "report_panic.rs",
    ] {
        println!("cargo:rerun-if-changed={dir}/{file}");
    }
    let compiler = cc::Build::new().cargo_metadata(false).get_compiler();
    let run = |what: &str, mut cmd: std::process::Command| {
        let status = cmd
            .status()
            .unwrap_or_else(|e| panic!("could not run the compiler for {what}: {e}"));
        assert!(
            status.success(),
            "compiling the {what} fixture failed: {cmd:?}"
        );
    };
    // The compiler alone, without the cc crate's flags for the build
    // profile (-g, -fno-omit-frame-pointer): built as a distribution would.
    let cc = || std::process::Command::new(compiler.path());
    let library = out_dir.join("libreport_fixture.so");
    let mut cmd = cc();
    cmd.args(CFLAGS)
        .args(["-shared", "-fPIC", "-Wl,-soname,libreport_fixture.so", "-o"])
        .arg(&library)
        .arg(format!("{dir}/report_library.c"));
    run("libreport_fixture.so", cmd);
    export("FIXTURE_REPORT_LIBRARY", &library);
    // With debug information; without (symbols only); and unoptimized with
    // frame pointers (rbp-based unwind tables, which the hostile-core test
    // turns into a frame chain that loops).
    for (name, flags) in [
        ("report_crasher", &["-O1", "-g"][..]),
        ("report_crasher_nodebug", &["-O1"][..]),
        (
            "report_crasher_fp",
            &["-O0", "-g", "-fno-omit-frame-pointer"][..],
        ),
    ] {
        let exe = out_dir.join(name);
        let mut cmd = cc();
        cmd.args(["-Wall", "-Wextra", "-Werror", "-pthread"])
            .args(flags)
            .arg(format!("-I{dir}"))
            .arg("-o")
            .arg(&exe)
            .arg(format!("{dir}/report_crasher.c"))
            .arg(format!("-L{}", out_dir.display()))
            .args(["-lreport_fixture", "-Wl,-rpath,$ORIGIN"]);
        run(name, cmd);
        export(&format!("FIXTURE_{}", name.to_uppercase()), &exe);
    }
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let panic = out_dir.join("report_panic");
    let mut cmd = std::process::Command::new(rustc);
    cmd.args([
        "--edition",
        "2021",
        "-C",
        "panic=abort",
        "-g",
        "-C",
        "opt-level=1",
        "-o",
    ])
    .arg(&panic)
    .arg(format!("{dir}/report_panic.rs"));
    run("report_panic", cmd);
    export("FIXTURE_REPORT_PANIC", &panic);
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
    // A traced program that answers getpid() itself: the $ctx.vpid it
    // sends in a notification is the pid it chooses.
    let forged_vpid = build_executable(
        "forged_vpid",
        &["tests/fixtures/forged_vpid.c"],
        &["lttng-ust"],
    );
    export("FIXTURE_FORGED_VPID", &forged_vpid);
    build_report_fixtures();
}
