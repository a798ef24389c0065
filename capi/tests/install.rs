//! What `make -C capi install` puts where, by default: the libraries and the
//! pkg-config file in the multiarch library directory, the header in
//! include/. (The system tests in tests/capi_* install for real into a
//! private prefix and build C programs against it.)

use std::path::Path;
use std::process::Command;

fn multiarch() -> String {
    let out = Command::new("dpkg-architecture")
        .arg("-qDEB_HOST_MULTIARCH")
        .output()
        .expect("running dpkg-architecture (apt-get install -y dpkg-dev)");
    assert!(out.status.success(), "dpkg-architecture failed");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn install_goes_to_the_multiarch_library_directory_by_default() {
    let capi = Path::new(env!("CARGO_MANIFEST_DIR"));
    // -n: print the commands without running them (no build, no install).
    let out = Command::new("make")
        .args(["-n", "-C"])
        .arg(capi)
        .args([
            "install",
            "PREFIX=/opt/lttng-coredump-test",
            "DESTDIR=/nonexistent",
        ])
        .env_remove("LIBDIR")
        .env_remove("MULTIARCH")
        .output()
        .expect("running make");
    let commands = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "make -n install failed: {commands}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let libdir = format!("/nonexistent/opt/lttng-coredump-test/lib/{}", multiarch());
    for installed in [
        format!("{libdir}/liblttng-coredump.so.0.1.0"),
        format!("{libdir}/liblttng-coredump.so.0"),
        format!("{libdir}/liblttng-coredump.a"),
        format!("{libdir}/pkgconfig/lttng-coredump.pc"),
        "/nonexistent/opt/lttng-coredump-test/include/lttng-coredump.h".to_string(),
    ] {
        assert!(
            commands.contains(&installed),
            "make install does not install {installed}:\n{commands}"
        );
    }
    // Libs.private comes from what rustc printed, not from a fixed list.
    assert!(commands.contains("native-static-libs"), "{commands}");
}
