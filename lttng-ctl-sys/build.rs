//! Finds liblttng-ctl with pkg-config and generates its bindings with bindgen.
//!
//! Failures that a user can fix by installing packages are reported as such,
//! instead of as a pkg-config or bindgen backtrace.

use std::env;
use std::path::PathBuf;

const MIN_VERSION: &str = "2.13";
const DEBIAN_PACKAGES: &str = "liblttng-ctl-dev pkg-config libclang-dev";

fn fail(what: &str, detail: &dyn std::fmt::Display) -> ! {
    // cargo shows the build script's stderr when it fails.
    eprintln!(
        "\nerror: lttng-ctl-sys: {what}\n  {detail}\n  \
         On Debian or Ubuntu, install: apt-get install -y {DEBIAN_PACKAGES}\n  \
         (or point LTTNG_CTL_INCLUDE_DIR and LTTNG_CTL_LIB_DIR at an LTTng >= {MIN_VERSION} install)\n"
    );
    std::process::exit(1);
}

fn main() {
    for var in [
        "LTTNG_CTL_INCLUDE_DIR",
        "LTTNG_CTL_LIB_DIR",
        "LTTNG_CTL_STATIC",
        "LIBCLANG_PATH",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    println!("cargo:rerun-if-changed=wrapper.h");

    let include_dirs: Vec<PathBuf> = match (
        env::var_os("LTTNG_CTL_INCLUDE_DIR"),
        env::var_os("LTTNG_CTL_LIB_DIR"),
    ) {
        (Some(inc), Some(lib)) => {
            let kind = if env::var_os("LTTNG_CTL_STATIC").is_some() {
                "static"
            } else {
                "dylib"
            };
            println!(
                "cargo:rustc-link-search=native={}",
                PathBuf::from(lib).display()
            );
            println!("cargo:rustc-link-lib={kind}=lttng-ctl");
            vec![PathBuf::from(inc)]
        }
        _ => match pkg_config::Config::new()
            .atleast_version(MIN_VERSION)
            .probe("lttng-ctl")
        {
            Ok(lib) => lib.include_paths,
            Err(e) => fail(
                &format!("liblttng-ctl >= {MIN_VERSION} was not found by pkg-config"),
                &e,
            ),
        },
    };
    for dir in &include_dirs {
        println!("cargo:include={}", dir.display());
    }

    // libclang is loaded at run time by bindgen, which panics when it is
    // missing: catch that, keep the default hook from printing the panic
    // and its backtrace, and say what to install instead.
    std::panic::set_hook(Box::new(|_| {}));
    let generated = std::panic::catch_unwind(|| {
        let mut builder = bindgen::Builder::default()
            .header("wrapper.h")
            .allowlist_function("lttng_.*")
            .allowlist_type("lttng_.*")
            .allowlist_var("LTTNG_.*")
            // The endpoints (`lttng_session_daemon_notification_endpoint`).
            .allowlist_var("lttng_session_daemon_.*_endpoint")
            .default_enum_style(bindgen::EnumVariation::NewType {
                is_bitfield: false,
                is_global: false,
            })
            .derive_default(true)
            .layout_tests(true)
            .generate_comments(false)
            .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
        for dir in &include_dirs {
            builder = builder.clang_arg(format!("-I{}", dir.display()));
        }
        builder.generate()
    })
    .map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
    .and_then(|r| r.map_err(|e| e.to_string()));
    let _ = std::panic::take_hook();
    if let Err(e) = generated.map(|bindings| {
        let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
        bindings
            .write_to_file(out.join("bindings.rs"))
            .unwrap_or_else(|e| fail("could not write the generated bindings", &e));
    }) {
        fail(
            "bindgen could not generate bindings for <lttng/lttng.h> (is libclang installed?)",
            &e,
        );
    }
}
