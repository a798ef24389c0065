//! Finds elfutils (libdw, libelf, libdebuginfod) with pkg-config and
//! generates the bindings with bindgen, restricted to elfutils' own API.
//!
//! Failures that a user can fix by installing packages are reported as such,
//! instead of as a pkg-config or bindgen backtrace.

use std::env;
use std::path::PathBuf;

/// `dwfl_frame_reg` (the unwinder's stack pointer of each frame, which the
/// loop check needs) first appears in elfutils 0.188.
const MIN_VERSION: &str = "0.188";
const DEBIAN_PACKAGES: &str = "libdw-dev libelf-dev libdebuginfod-dev pkg-config libclang-dev";

fn fail(what: &str, detail: &dyn std::fmt::Display) -> ! {
    // cargo shows the build script's stderr when it fails.
    eprintln!(
        "\nerror: elfutils-sys: {what}\n  {detail}\n  \
         On Debian or Ubuntu, install: apt-get install -y {DEBIAN_PACKAGES}\n  \
         (elfutils >= {MIN_VERSION} is needed)\n"
    );
    std::process::exit(1);
}

fn main() {
    println!("cargo:rerun-if-env-changed=LIBCLANG_PATH");
    println!("cargo:rerun-if-changed=wrapper.h");

    let mut include_dirs: Vec<PathBuf> = Vec::new();
    // libdebuginfod is probed for its header only, never linked: libdw
    // loads it itself (dlopen) when debuginfod is used, and linking it would
    // load libcurl and its dozens of libraries into every program that
    // links libdw (the crash handler, on the crash's clock).
    for (lib, link) in [("libdw", true), ("libelf", true), ("libdebuginfod", false)] {
        match pkg_config::Config::new()
            .atleast_version(MIN_VERSION)
            .cargo_metadata(link)
            .probe(lib)
        {
            Ok(found) => {
                for dir in found.include_paths {
                    if !include_dirs.contains(&dir) {
                        include_dirs.push(dir);
                    }
                }
            }
            Err(e) => fail(
                &format!("{lib} >= {MIN_VERSION} was not found by pkg-config"),
                &e,
            ),
        }
    }
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
            .allowlist_function("(dwfl|dwarf|dwelf|elf|gelf)_.*")
            .allowlist_type("(Dwfl|Dwarf|Elf|GElf|debuginfod)_?.*")
            .allowlist_var(
                "(DWARF_CB|DWFL|_ELFUTILS|EV|ELF_C|ELF_K|ET|EM|ELFCLASS|SHT|SHF|NT|PT)_.*",
            )
            // libdw's variadic and va_list helpers are of no use here.
            .blocklist_function(".*_v?printf.*")
            .default_enum_style(bindgen::EnumVariation::Consts)
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
    match generated {
        Ok(bindings) => {
            let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
            bindings
                .write_to_file(out.join("bindings.rs"))
                .unwrap_or_else(|e| fail("could not write the generated bindings", &e));
        }
        Err(e) => fail(
            "bindgen could not generate bindings for elfutils' headers (is libclang installed?)",
            &e,
        ),
    }
}
