//! The committed C header (`include/lttng-coredump.h`) is exactly what
//! cbindgen generates from the current sources. Run with `UPDATE_HEADER=1`
//! to regenerate it after changing the C API.

use std::path::PathBuf;

fn generate() -> String {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("reading capi/cbindgen.toml");
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header")
        .write(&mut out);
    String::from_utf8(out).expect("the header is UTF-8")
}

#[test]
fn committed_header_matches_the_sources() {
    let header = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../include/lttng-coredump.h");
    let generated = generate();
    if std::env::var_os("UPDATE_HEADER").is_some() {
        std::fs::create_dir_all(header.parent().unwrap()).unwrap();
        std::fs::write(&header, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&header)
        .unwrap_or_else(|e| panic!("reading {}: {e}", header.display()));
    assert!(
        committed == generated,
        "{} is stale: regenerate it with `UPDATE_HEADER=1 cargo test -p lttng-coredump-capi --test header`",
        header.display()
    );
}

#[test]
fn header_has_the_rfc_declarations() {
    let generated = generate();
    for expected in [
        "enum lttng_trigger_type {",
        "LTTNG_TRIGGER_TYPE_ONANYCOREDUMP = 1,",
        "enum lttng_trigger_action {",
        "LTTNG_TRIGGER_ACTION_SNAPSHOT = 1,",
        "LTTNG_TRIGGER_ACTION_STOP = 2,",
        "struct lttng_handle;",
        "char exec_name[NAME_MAX];",
        "char hostname[255];",
    ] {
        assert!(
            generated.contains(expected),
            "missing {expected:?}:\n{generated}"
        );
    }
    let flat = generated.split_whitespace().collect::<Vec<_>>().join(" ");
    for prototype in [
        "int lttng_trigger_set(struct lttng_handle *handle, enum lttng_trigger_type type, enum lttng_trigger_action action, const void *opts, size_t nb_opt);",
        "int lttng_trigger(enum lttng_trigger_type type, char *socket_path, const void *opts, size_t nb_opt);",
        "int lttng_trigger_unset(struct lttng_handle *handle, enum lttng_trigger_type type, enum lttng_trigger_action action, const void *opts, size_t nb_opt);",
        "struct lttng_trigger_onanycoredump { pid_t pid; uid_t uid; gid_t gid;",
        "int lttng_coredump_live(pid_t pid, int fd, unsigned int flags);",
        "LTTNG_COREDUMP_LIVE_STOP_AND_COPY = 1, ",
        "LTTNG_COREDUMP_LIVE_NO_SNAPSHOT = 8, };",
    ] {
        assert!(flat.contains(prototype), "missing {prototype:?}:\n{generated}");
    }
}
