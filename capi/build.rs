//! Gives the shared library its SONAME, so that programs linked against
//! `liblttng-coredump.so` load `liblttng-coredump.so.0` (the name the
//! install step gives it) and keep working across compatible updates.

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,liblttng-coredump.so.0");
}
