//! Compiles the demo's crashing program (`demo/crashing-demo.c`, traced
//! with lttng-ust) with the C compiler the `cc` crate finds, warnings as
//! errors. `src/demo/program.rs` embeds the executable, so that the
//! installed `lttng-coredump` binary carries what `demo` runs.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const CFLAGS: &[&str] = &["-Wall", "-Wextra", "-Werror", "-O0", "-g"];

fn main() {
    for input in ["demo/crashing-demo.c", "demo/crashing_demo_tp.h"] {
        println!("cargo:rerun-if-changed={input}");
    }
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let exe = out_dir.join("crashing-demo");
    let compiler = cc::Build::new()
        .cargo_metadata(false)
        .try_get_compiler()
        .unwrap_or_else(|e| {
            panic!("no C compiler for the demo program (apt-get install -y gcc): {e}")
        });
    let ust = pkg_config::Config::new()
        .cargo_metadata(false)
        .probe("lttng-ust")
        .unwrap_or_else(|e| {
            panic!("pkg-config could not find lttng-ust (apt-get install -y liblttng-ust-dev): {e}")
        });
    let mut command: Command = compiler.to_command();
    command.args(CFLAGS).arg("-Idemo");
    for dir in &ust.include_paths {
        command.arg(format!("-I{}", dir.display()));
    }
    command.arg("demo/crashing-demo.c").arg("-o").arg(&exe);
    for dir in &ust.link_paths {
        command.arg(format!("-L{}", dir.display()));
    }
    for lib in &ust.libs {
        command.arg(format!("-l{lib}"));
    }
    command.arg("-ldl");
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler for the demo program: {e}"));
    assert!(
        status.success(),
        "compiling the demo program failed: {command:?}"
    );
    println!(
        "cargo:rustc-env=LTTNG_COREDUMP_DEMO_PROGRAM={}",
        exe.display()
    );
}
