//! What the man pages say beyond the options clap_mangen renders from the
//! command line ([`crate::cli::generate_docs`]): each page's EXIT STATUS, FILES, EXAMPLES
//! and SEE ALSO, and the page of the configuration file,
//! lttng-coredump.conf(5), made from the commented example configuration
//! the package installs (`config.example.toml`), so that the page and the
//! file say the same, and a test checks it names every key the handler
//! reads.

use std::fmt::Write as _;

/// The example configuration (installed as /etc/lttng-coredump/config.toml).
pub const EXAMPLE_CONFIG: &str = include_str!("../../../config.example.toml");

/// Text for roff: backslashes and hyphens escaped, no line starting with a
/// control character.
fn roff(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

fn section(out: &mut String, title: &str) {
    writeln!(out, ".SH \"{title}\"").expect("String");
}

fn item(out: &mut String, term: &str, text: &str) {
    writeln!(out, ".TP\n\\fB{}\\fR\n{}", roff(term), roff(text)).expect("String");
}

fn example(out: &mut String, what: &str, commands: &[&str]) {
    writeln!(out, ".PP\n{}\n.PP\n.nf\n.RS 4", roff(what)).expect("String");
    for command in commands {
        writeln!(out, "{}", roff(command)).expect("String");
    }
    writeln!(out, ".RE\n.fi").expect("String");
}

/// The files a page names.
const FILES: [(&str, &str); 10] = [
    (
        "/etc/lttng-coredump/config.toml",
        "The configuration (lttng-coredump.conf(5)); every key is optional.",
    ),
    (
        "/var/lib/lttng-coredump/cores/",
        "The cores and their JSON crash records (the configuration's core_dir).",
    ),
    (
        "/var/lib/lttng-coredump/core_pattern.bkp",
        "What install replaced (core_pattern, core_pipe_limit, the services it masked); uninstall puts it back.",
    ),
    (
        "/etc/sysctl.d/90-lttng-coredump.conf",
        "Written by install --persist: the handler's line at every boot (it sorts after systemd-coredump's 50-coredump.conf).",
    ),
    (
        "/proc/sys/kernel/core_pattern",
        "What the kernel runs on a crash: the handler's pipe line, or the crash service's socket line.",
    ),
    (
        "/proc/sys/kernel/core_pipe_limit",
        "How many crashes the kernel hands to handlers at once (install sets 64 when it is 0).",
    ),
    (
        "/run/lttng-coredump/coredump.socket",
        "The crash service's socket (serve, lttng-coredump.socket).",
    ),
    (
        "/var/spool/lttng-coredump/",
        "The spool of crashes shipped to a collector ([submit] spool_dir): made by install, sent by submit as the lttng-coredump user.",
    ),
    (
        "/lib/systemd/system/lttng-coredump.socket, lttng-coredump.service",
        "The crash service's units: the socket is held by systemd while the service restarts.",
    ),
    (
        "/lib/systemd/system/lttng-coredump-submit.service",
        "The spool's submitter (submit --follow as the lttng-coredump user), for the pipe handler (serve runs its own).",
    ),
];

/// The exit statuses of a page (None: the main page).
fn exit_status(sub: Option<&str>) -> Vec<(&'static str, &'static str)> {
    match sub {
        None => vec![
            ("0", "Success."),
            ("1", "Failure; the message on standard error says what was attempted and why."),
            ("2", "Bad usage (an unknown option, a missing argument). Each command's page gives its own."),
        ],
        Some("handle") => vec![
            ("0", "The crash was handled (its core saved, or not meant to be)."),
            ("1", "A core was meant to be saved and nothing of it could be (the record and the log say why)."),
            ("2", "Not run by the kernel: the usage is printed and nothing is done."),
        ],
        Some("status") => vec![
            ("0", "Installed, and a crash would be handled as configured."),
            ("1", "Not installed: core_pattern does not run the handler."),
            ("2", "Installed, but something is wrong (each printed as \"problem:\")."),
        ],
        Some("serve") => vec![
            ("0", "Stopped by SIGTERM, SIGINT or SIGHUP, after putting the pipe line back and finishing the crashes in hand."),
            ("1", "Could not start (the socket, its directory, the configuration); the message says why."),
        ],
        Some("submit") => vec![
            ("0", "Everything queued was sent, or nothing was queued, or another submitter runs on the spool."),
            ("1", "No [submit] section, no spool, or the submitter's user could not be taken; the message says why."),
            ("2", "Some destination failed: its crashes stay queued and a later run sends them."),
        ],
        Some("recover") => vec![
            ("0", "The trace was recovered."),
            ("1", "No LTTng buffer with data in the core (it says why)."),
            ("2", "Bad usage or input."),
            ("3", "Streams written but their metadata is missing (it says how to supply it)."),
        ],
        Some("gcore") => vec![
            ("0", "The core was written (and, into the crash store, its record)."),
            ("1", "An internal error."),
            ("2", "Bad usage: the file named with -o exists, the configuration named with --config cannot be used."),
            ("3", "No such process, or a zombie, or a kernel thread."),
            ("4", "Not allowed: another user's process, a set-uid or non-dumpable one, one already traced, the crash store for a non-root caller."),
            ("5", "The process exited during the dump."),
            ("6", "The core could not be written."),
            ("7", "The dump's deadline passed (the process was let go)."),
            ("8", "Not supported: a 32-bit process, or --method cow where it cannot be used."),
        ],
        Some("list" | "info" | "debug" | "dump" | "trace") => vec![
            ("0", "A crash matched and the command did its work."),
            ("1", "No crash matched, or the command failed (the message says which)."),
            ("2", "Bad usage."),
        ],
        Some(_) => vec![
            ("0", "Success."),
            ("1", "Refused or failed; the message on standard error says why, and nothing was half done."),
            ("2", "Bad usage."),
        ],
    }
}

/// The examples of a page.
fn examples(sub: Option<&str>) -> Vec<(&'static str, Vec<&'static str>)> {
    match sub {
        None | Some("install") => vec![
            (
                "Put the handler in place now and at every boot, then crash a program and look at it:",
                vec![
                    "lttng-coredump install --persist",
                    "lttng-coredump status",
                    "sh -c 'ulimit -c unlimited; kill -SEGV $$'",
                    "lttng-coredump info",
                ],
            ),
            (
                "Keep handing every core to systemd-coredump too (coredumpctl keeps working):",
                vec!["lttng-coredump install --persist --chain-previous"],
            ),
            (
                "Socket mode, with systemd holding the socket while the service restarts:",
                vec![
                    "systemctl enable --now lttng-coredump.socket lttng-coredump.service",
                    "lttng-coredump install --socket --persist",
                ],
            ),
        ],
        Some("serve") => vec![
            (
                "With systemd (the socket unit keeps every crash waiting while the service restarts):",
                vec!["systemctl enable --now lttng-coredump.socket lttng-coredump.service"],
            ),
            (
                "Without systemd, under an init that starts it at boot:",
                vec!["lttng-coredump serve --hold", "lttng-coredump install --socket"],
            ),
        ],
        Some("submit") => vec![
            (
                "Ship the crashes to a collector: set [submit] in the configuration, then:",
                vec![
                    "lttng-coredump install",
                    "systemctl enable --now lttng-coredump-submit.service",
                    "lttng-coredump status",
                ],
            ),
            (
                "Send what is queued now (as root, it runs as the [submit] user):",
                vec!["lttng-coredump submit"],
            ),
        ],
        Some("uninstall") => vec![(
            "Put back what install replaced, and the services it masked:",
            vec!["lttng-coredump uninstall"],
        )],
        Some("status") => vec![(
            "What is in place, what owns core_pattern after the next boot, and the exit status for a script:",
            vec!["lttng-coredump status", "lttng-coredump status --json"],
        )],
        Some("list") => vec![(
            "The crashes of the last hour, newest first:",
            vec!["lttng-coredump list --since '1 hour ago' -r"],
        )],
        Some("info") => vec![(
            "Everything about the latest crash of a program:",
            vec!["lttng-coredump info -1 webshop"],
        )],
        Some("debug") => vec![(
            "gdb on the latest crash of PID 1234:",
            vec!["lttng-coredump debug 1234"],
        )],
        Some("dump") => vec![(
            "The latest core, decompressed, to a file:",
            vec!["lttng-coredump dump -o core.webshop webshop"],
        )],
        Some("trace") => vec![(
            "The crashing process's last 20 events, or the trace kept in its core:",
            vec!["lttng-coredump trace --last 20", "lttng-coredump trace 1234 --from-core"],
        )],
        Some("vacuum") => vec![(
            "Apply the retention rules now:",
            vec!["lttng-coredump vacuum"],
        )],
        Some("config") => vec![(
            "The configuration in effect, and where each value comes from:",
            vec!["lttng-coredump config"],
        )],
        Some("recover") => vec![(
            "The trace of a crash whose snapshot failed, from its core:",
            vec![
                "lttng-coredump recover /var/lib/lttng-coredump/cores/core.webshop.1234.1700000000 -o trace",
                "babeltrace2 trace",
            ],
        )],
        Some("gcore") => vec![
            (
                "As root, the core of a hung service and its trace of the same instant, then what it was doing:",
                vec!["lttng-coredump gcore 1234", "lttng-coredump info 1234", "lttng-coredump trace 1234"],
            ),
            (
                "As a user, the core of one's own process to a file, the threads stopped only while memory is copied:",
                vec!["lttng-coredump gcore 1234 -o service.core --method stop --no-snapshot"],
            ),
        ],
        Some("demo") => vec![("The whole chain on this machine:", vec!["lttng-coredump demo"])],
        Some(_) => Vec::new(),
    }
}

/// The pages a page points to.
fn see_also(sub: Option<&str>, subcommands: &[String]) -> Vec<String> {
    let mut pages = Vec::new();
    if sub.is_some() {
        pages.push("lttng-coredump(1)".to_string());
    } else {
        pages.extend(subcommands.iter().map(|s| format!("lttng-coredump-{s}(1)")));
    }
    pages.push("lttng-coredump.conf(5)".into());
    pages.extend(
        [
            "core(5)",
            "sysctl.d(5)",
            "lttng(1)",
            "lttng-sessiond(8)",
            "systemd-coredump(8)",
            "coredumpctl(1)",
            "babeltrace2(1)",
            "gdb(1)",
        ]
        .map(String::from),
    );
    pages
}

/// The sections appended to a generated page: `sub` is the subcommand
/// (None for lttng-coredump(1)), `subcommands` the visible ones.
pub fn extra_sections(sub: Option<&str>, subcommands: &[String]) -> String {
    let mut out = String::new();
    section(&mut out, "EXIT STATUS");
    for (code, text) in exit_status(sub) {
        item(&mut out, code, text);
    }
    if matches!(
        sub,
        None | Some(
            "install"
                | "uninstall"
                | "status"
                | "serve"
                | "handle"
                | "config"
                | "vacuum"
                | "submit"
        )
    ) {
        section(&mut out, "FILES");
        for (file, text) in FILES {
            item(&mut out, file, text);
        }
    }
    let examples = examples(sub);
    if !examples.is_empty() {
        section(&mut out, "EXAMPLES");
        for (what, commands) in examples {
            example(&mut out, what, &commands);
        }
    }
    section(&mut out, "SEE ALSO");
    let pages: Vec<String> = see_also(sub, subcommands)
        .iter()
        .map(|page| {
            let (name, number) = page.split_once('(').expect("name(N)");
            format!("\\fB{}\\fR({number}", roff(name))
        })
        .collect();
    writeln!(out, "{}", pages.join(",\n")).expect("String");
    out
}

/// lttng-coredump.conf(5), from the example configuration: its opening
/// comment is the description, each commented block the text of the keys
/// that follow it.
pub fn config_page(version: &str) -> String {
    let mut out = String::new();
    writeln!(
        out,
        ".TH LTTNG\\-COREDUMP.CONF 5 \"\" \"lttng-coredump {}\" \"File Formats\"",
        roff(version)
    )
    .expect("String");
    section(&mut out, "NAME");
    writeln!(
        out,
        "lttng\\-coredump.conf \\- configuration of the lttng\\-coredump crash handler"
    )
    .expect("String");
    section(&mut out, "SYNOPSIS");
    writeln!(out, "\\fI/etc/lttng\\-coredump/config.toml\\fR").expect("String");
    section(&mut out, "DESCRIPTION");
    let mut lines = EXAMPLE_CONFIG.lines().peekable();
    // The opening comment, without its first line (the file's name).
    let _ = lines.next();
    let mut paragraph = Vec::new();
    for line in lines.by_ref() {
        let Some(text) = line.strip_prefix('#') else {
            break;
        };
        let text = text.trim();
        if text.is_empty() {
            if !paragraph.is_empty() {
                writeln!(out, ".PP\n{}", roff(&paragraph.join(" "))).expect("String");
                paragraph.clear();
            }
        } else {
            paragraph.push(text.to_string());
        }
    }
    if !paragraph.is_empty() {
        writeln!(out, ".PP\n{}", roff(&paragraph.join(" "))).expect("String");
    }
    writeln!(
        out,
        ".PP\n{}",
        roff(
            "The handler reads it on every crash, from the path given with --config in the \
             core_pattern line, else /etc/lttng-coredump/config.toml. It must be a regular file \
             owned by root and not writable by group or others, in directories owned by root; an \
             untrusted or unreadable file gives the defaults, and the record and the log say so."
        )
    )
    .expect("String");
    section(&mut out, "OPTIONS");
    let mut text: Vec<String> = Vec::new();
    // Keys that follow one another share the text before the first.
    let mut shared: Vec<String> = Vec::new();
    let mut table = String::new();
    for line in lines {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let body = line.trim_start_matches('#');
        // A commented-out key (`#key = value`) or table (`#[chain]`).
        let is_key = line.starts_with('#')
            && !line.starts_with("# ")
            && (body.starts_with('[') || body.contains(" = "));
        if !is_key {
            text.push(body.trim().to_string());
            continue;
        }
        if text.is_empty() {
            text = shared.clone();
        }
        if body.starts_with('[') {
            table = body.trim_matches(|c| c == '[' || c == ']').to_string();
            writeln!(out, ".SS \"[{}]\"\n.PP\n{}", table, roff(&text.join(" "))).expect("String");
            text.clear();
            continue;
        }
        let (key, value) = body.split_once(" = ").expect("checked");
        let name = if table.is_empty() {
            key.to_string()
        } else {
            format!("{table}.{key}")
        };
        writeln!(
            out,
            ".TP\n\\fB{}\\fR = \\fI{}\\fR\n{}",
            roff(&name),
            roff(value),
            roff(&text.join(" "))
        )
        .expect("String");
        shared = std::mem::take(&mut text);
    }
    section(&mut out, "FILES");
    item(
        &mut out,
        "/etc/lttng-coredump/config.toml",
        "The configuration; the package installs this file with every key commented out.",
    );
    item(
        &mut out,
        "/usr/share/doc/lttng-coredump/config.example.toml",
        "The same, as shipped.",
    );
    section(&mut out, "EXAMPLES");
    example(
        &mut out,
        "Compressed cores, kept 30 days, and every crash snapshotting one session:",
        &[
            "compression = \"zstd\"",
            "max_age = \"30d\"",
            "snapshot_sessions = [\"webshop\"]",
        ],
    );
    example(
        &mut out,
        "The configuration in effect, and where each value comes from:",
        &["lttng-coredump config"],
    );
    section(&mut out, "SEE ALSO");
    writeln!(
        out,
        "\\fBlttng\\-coredump\\fR(1), \\fBlttng\\-coredump\\-config\\fR(1), \\fBlttng\\-coredump\\-install\\fR(1), \\fBsystemd\\-coredump\\fR(8)"
    )
    .expect("String");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_page_names_every_key_the_handler_reads() {
        let page = config_page("0.1.0");
        assert!(page.contains(".SS \"[chain]\""), "{page}");
        for key in crate::base::config_parse::KEYS
            .into_iter()
            .filter(|k| *k != "chain" && *k != "submit" && *k != "live")
        {
            assert!(
                page.contains(&format!("\\fB{}\\fR = ", roff(key))),
                "{key} missing from lttng-coredump.conf(5)"
            );
        }
        for key in crate::base::config_parse::CHAIN_KEYS {
            assert!(
                page.contains(&format!("\\fBchain.{}\\fR = ", roff(key))),
                "[chain] {key} missing from lttng-coredump.conf(5)"
            );
        }
        for key in crate::base::config_parse::SUBMIT_KEYS {
            assert!(
                page.contains(&format!("\\fBsubmit.{}\\fR = ", roff(key))),
                "[submit] {key} missing from lttng-coredump.conf(5)"
            );
        }
        for key in crate::base::live_config::LIVE_KEYS {
            assert!(
                page.contains(&format!("\\fBlive.{}\\fR = ", roff(key))),
                "[live] {key} missing from lttng-coredump.conf(5)"
            );
        }
        assert!(page.contains(".SH \"DESCRIPTION\""));
        assert!(!page.contains("\n# "), "a comment marker left in: {page}");
    }

    #[test]
    fn every_page_has_its_exit_status_examples_and_see_also() {
        let subs = vec!["list".to_string(), "status".to_string()];
        let main = extra_sections(None, &subs);
        for title in ["EXIT STATUS", "FILES", "EXAMPLES", "SEE ALSO"] {
            assert!(
                main.contains(&format!(".SH \"{title}\"")),
                "{title}: {main}"
            );
        }
        assert!(
            main.contains("\\fBlttng\\-coredump\\-list\\fR(1)"),
            "{main}"
        );
        let status = extra_sections(Some("status"), &subs);
        assert!(status.contains("Not installed"), "{status}");
        assert!(
            status.contains("\\fBlttng\\-coredump.conf\\fR(5)"),
            "{status}"
        );
    }
}
