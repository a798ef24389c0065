//! `lttng-coredump config`: the configuration the handler uses, read with
//! the handler's own loader and trust checks, every key with its value and
//! where the value comes from (the file's line, or the default, and why
//! when the file's value was refused), the core directory the handler
//! actually uses (the default, when the configured one is unsafe), and a
//! non-zero exit status when it printed a problem (`--check`: only the
//! problems, for scripts).

use crate::base::config::{self, Config};
use crate::base::config_parse;
use anyhow::Result;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use toml::Value;

/// Every key of `config` as TOML text (`chain.*` for the chain's).
pub fn values(config: &Config) -> Vec<(String, String)> {
    // Whole binary units as the file would write them ("8G"), else bytes.
    let size = |bytes: u64| {
        for (unit, scale) in [
            ("T", 1u64 << 40),
            ("G", 1 << 30),
            ("M", 1 << 20),
            ("K", 1 << 10),
        ] {
            if bytes >= scale && (bytes / scale) * scale == bytes {
                return format!("\"{}{unit}\"", bytes / scale);
            }
        }
        bytes.to_string()
    };
    let duration = |d: std::time::Duration| format!("\"{}\"", crate::base::human::duration(d));
    let text = |s: &str| Value::String(s.to_string()).to_string();
    let mut out = vec![
        ("core_dir".into(), text(&config.core_dir.to_string_lossy())),
        ("save_core".into(), config.save_core.to_string()),
        (
            "check_core_trace".into(),
            config.check_core_trace.to_string(),
        ),
        ("report".into(), config.report.to_string()),
        ("report_deadline".into(), duration(config.report_deadline)),
        ("report_memory".into(), size(config.report_memory)),
        (
            "report_last_events".into(),
            config.report_last_events.to_string(),
        ),
        (
            "debuginfod_urls".into(),
            text(config.debuginfod_urls.as_deref().unwrap_or("")),
        ),
        (
            "debuginfod_timeout".into(),
            duration(config.debuginfod_timeout),
        ),
        ("journal".into(), config.journal.to_string()),
        (
            "journal_socket".into(),
            text(&config.journal_socket.to_string_lossy()),
        ),
        ("compression".into(), text(config.compression.name())),
        ("zstd_level".into(), config.zstd_level.to_string()),
        ("max_core_size".into(), size(config.max_core_size)),
        ("max_dir_size".into(), size(config.max_dir_size)),
        ("min_free".into(), size(config.min_free)),
        (
            "max_age".into(),
            config.max_age.map(duration).unwrap_or_else(|| "0".into()),
        ),
        (
            "max_cores_per_minute".into(),
            config.max_cores_per_minute.to_string(),
        ),
        (
            "max_cores_per_user_per_minute".into(),
            config.max_cores_per_user_per_minute.to_string(),
        ),
        (
            "max_snapshots_per_minute".into(),
            config.max_snapshots_per_minute.to_string(),
        ),
        (
            "max_snapshots_per_user_per_minute".into(),
            config.max_snapshots_per_user_per_minute.to_string(),
        ),
        (
            "max_snapshot_dirs".into(),
            config.max_snapshot_dirs.to_string(),
        ),
        ("max_snapshot_size".into(), size(config.max_snapshot_size)),
        ("max_snapshot_age".into(), duration(config.max_snapshot_age)),
        (
            "snapshot_deadline".into(),
            duration(config.snapshot_deadline),
        ),
        (
            "max_crashes_in_progress_per_user".into(),
            config.max_crashes_in_progress_per_user.to_string(),
        ),
        (
            "core_stall_timeout".into(),
            duration(config.core_stall_timeout),
        ),
        (
            "abort_stalled_fuse".into(),
            config.abort_stalled_fuse.to_string(),
        ),
        (
            "snapshot_sessions".into(),
            Value::Array(
                config
                    .snapshot_sessions
                    .iter()
                    .map(|s| Value::String(s.clone()))
                    .collect(),
            )
            .to_string(),
        ),
        (
            "snapshot_active_sessions".into(),
            config.snapshot_active_sessions.to_string(),
        ),
        (
            "snapshot_user_daemon".into(),
            config.snapshot_user_daemon.to_string(),
        ),
        (
            "syslog_socket".into(),
            text(&config.syslog_socket.to_string_lossy()),
        ),
    ];
    if let Some(chain) = &config.chain {
        out.push((
            "chain.command".into(),
            Value::Array(
                chain
                    .command
                    .iter()
                    .map(|s| Value::String(s.clone()))
                    .collect(),
            )
            .to_string(),
        ));
        out.push(("chain.stall_timeout".into(), duration(chain.stall_timeout)));
        out.push(("chain.exit_timeout".into(), duration(chain.exit_timeout)));
    }
    if let Some(submit) = &config.submit {
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| text(&p.to_string_lossy()));
        let url = |u: &Option<String>| u.as_deref().map(text);
        let keys: [(&str, Option<String>); 15] = [
            ("spool_dir", Some(text(&submit.spool_dir.to_string_lossy()))),
            ("user", Some(text(&submit.user))),
            ("journal_remote", url(&submit.journal_remote)),
            ("relayd", url(&submit.relayd)),
            ("webhook", url(&submit.webhook)),
            ("ca", path(&submit.tls.ca)),
            ("client_cert", path(&submit.tls.client_cert)),
            ("client_key", path(&submit.tls.client_key)),
            ("max_spool_size", Some(size(submit.limits.max_bytes))),
            (
                "core_in_entry_max",
                Some(size(submit.limits.core_in_entry_max)),
            ),
            ("keep_sent", Some(submit.limits.keep_sent.to_string())),
            ("retry_initial", Some(duration(submit.retry.initial))),
            ("retry_max", Some(duration(submit.retry.max))),
            ("poll", Some(duration(submit.retry.poll))),
            ("timeout", Some(duration(submit.timeout))),
        ];
        for (key, value) in keys {
            if let Some(value) = value {
                out.push((format!("submit.{key}"), value));
            }
        }
    }
    if let Some(live) = &config.live {
        out.push((
            "live.triggers".into(),
            Value::Array(
                live.triggers
                    .iter()
                    .map(|s| Value::String(s.clone()))
                    .collect(),
            )
            .to_string(),
        ));
        out.push((
            "live.users".into(),
            Value::Array(
                live.users
                    .iter()
                    .map(|&u| Value::Integer(i64::from(u)))
                    .collect(),
            )
            .to_string(),
        ));
        out.push((
            "live.trigger_interval".into(),
            duration(live.trigger_interval),
        ));
        out.push((
            "live.process_interval".into(),
            duration(live.process_interval),
        ));
        out.push(("live.max_dumps".into(), live.max_dumps.to_string()));
        out.push((
            "live.max_pending_per_user".into(),
            live.max_pending_per_user.to_string(),
        ));
    }
    out
}

/// What `config` shows: the file's values (or the defaults), where each
/// comes from, the core directory the handler actually uses, and every
/// problem.
pub struct Shown {
    pub text: String,
    pub problems: Vec<String>,
}

/// The report: a heading, the problems (`# problem: ...`), then
/// `key = value  # source` for every key. `parsed`: the file as the handler
/// reads it (none: no file, or one the handler refuses, said by `heading`);
/// `core_dir`: the directory the handler uses instead of the configured
/// one, and why.
pub fn report(
    path: &Path,
    parsed: Option<&config_parse::Parsed>,
    heading: &str,
    mut problems: Vec<String>,
    core_dir: Option<(PathBuf, String)>,
) -> Shown {
    let config = parsed.map(|p| p.config.clone()).unwrap_or_default();
    let mut out = String::new();
    writeln!(out, "# {heading}").expect("String");
    if let Some(parsed) = parsed {
        problems.splice(0..0, parsed.problems.iter().cloned());
    }
    if let Some((_, why)) = &core_dir {
        problems.push(why.clone());
    }
    for problem in &problems {
        writeln!(out, "# problem: {}", crate::base::human::text(problem)).expect("String");
    }
    let mut in_chain = false;
    let mut in_submit = false;
    let mut in_live = false;
    for (key, value) in values(&config) {
        let line = parsed.and_then(|p| p.lines.get(&key).copied());
        let refused = parsed.is_some_and(|p| p.refused.contains(&key));
        let (value, source) = match (&core_dir, key.as_str()) {
            (Some((used, _)), "core_dir") => (
                Value::String(used.to_string_lossy().into_owned()).to_string(),
                format!(
                    "used by the handler instead of {} (see the problem above)",
                    config.core_dir.display()
                ),
            ),
            _ => (
                value,
                match line {
                    Some(line) if refused => {
                        format!("default ({}:{line} was refused)", path.display())
                    }
                    Some(line) => format!("{}:{line}", path.display()),
                    None => "default".into(),
                },
            ),
        };
        let shown_key = match key.strip_prefix("chain.") {
            Some(chain_key) => {
                if !in_chain {
                    writeln!(out, "[chain]").expect("String");
                    in_chain = true;
                }
                chain_key.to_string()
            }
            None => match key.strip_prefix("submit.") {
                Some(submit_key) => {
                    if !in_submit {
                        if !in_chain {
                            writeln!(out, "# [chain]: none (no core is handed on)")
                                .expect("String");
                            in_chain = true;
                        }
                        writeln!(out, "[submit]").expect("String");
                        in_submit = true;
                    }
                    submit_key.to_string()
                }
                None => match key.strip_prefix("live.") {
                    // Last of all the keys: the other tables are said before.
                    Some(live_key) => {
                        if !in_live {
                            if !in_chain {
                                writeln!(out, "# [chain]: none (no core is handed on)")
                                    .expect("String");
                                in_chain = true;
                            }
                            if !in_submit {
                                writeln!(out, "# [submit]: none (no crash is shipped)")
                                    .expect("String");
                                in_submit = true;
                            }
                            writeln!(out, "[live]").expect("String");
                            in_live = true;
                        }
                        live_key.to_string()
                    }
                    None => key,
                },
            },
        };
        writeln!(out, "{shown_key} = {value}  # {source}").expect("String");
    }
    if !in_chain {
        writeln!(out, "# [chain]: none (no core is handed on)").expect("String");
    }
    if !in_submit {
        writeln!(out, "# [submit]: none (no crash is shipped)").expect("String");
    }
    if !in_live {
        writeln!(out, "# [live]: none (serve takes no core on an event)").expect("String");
    }
    Shown {
        text: out,
        problems,
    }
}

pub fn run(args: &super::ConfigArgs) -> Result<ExitCode> {
    // A file named with --config must be the handler's to read: an error
    // otherwise (Source says why).
    let source = super::source::Source::resolve(&super::SourceArgs {
        config: args.config.clone(),
        dir: None,
    })?;
    let path = source.config_path.clone();
    let (parsed, heading, problems) = match config::read_checked(&path) {
        Ok(parsed) => (
            Some(parsed),
            format!("configuration {}", path.display()),
            Vec::new(),
        ),
        Err(_) if source.missing => (
            None,
            format!(
                "no configuration file at {}: every value is the default",
                path.display()
            ),
            Vec::new(),
        ),
        Err(error) => (
            None,
            format!(
                "configuration {}: not used by the handler, which uses the defaults",
                path.display()
            ),
            vec![format!(
                "configuration {}: {error}; the handler uses the defaults",
                path.display()
            )],
        ),
    };
    let configured = parsed
        .as_ref()
        .map(|p| p.config.core_dir.clone())
        .unwrap_or_else(|| config::DEFAULT_CORE_DIR.into());
    let (used, dir_problems) =
        crate::store::coredir::would_use(&configured, Path::new(config::DEFAULT_CORE_DIR));
    let core_dir = match used {
        Some(used) if used == configured => None,
        Some(used) => Some((used, dir_problems.join("; "))),
        None => Some((
            configured.clone(),
            format!(
                "{}: the handler has no usable core directory and saves no core",
                dir_problems.join("; ")
            ),
        )),
    };
    let shown = report(&path, parsed.as_ref(), &heading, problems, core_dir);
    if args.check {
        for problem in &shown.problems {
            println!("problem: {}", crate::base::human::text(problem));
        }
    } else {
        print!("{}", shown.text);
    }
    Ok(if shown.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::config_parse::{CHAIN_KEYS, KEYS, SUBMIT_KEYS};

    const EXAMPLE: &str = include_str!("../../config.example.toml");

    #[test]
    fn the_example_holds_every_key_with_its_default() {
        // Uncommented, every `#key = value` line is read without a problem...
        let uncommented: String = EXAMPLE
            .lines()
            .map(|line| match line.strip_prefix('#') {
                Some(rest)
                    if rest.starts_with("[chain]")
                        || rest.starts_with("[submit]")
                        || rest.starts_with("[live]")
                        || rest
                            .split_once(" = ")
                            .is_some_and(|(k, _)| !k.contains(' ') && !k.is_empty()) =>
                {
                    rest.to_string()
                }
                _ => line.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        let parsed = config_parse::parse(&uncommented);
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
        // ... sets every key...
        for key in KEYS {
            assert!(
                parsed.lines.contains_key(key),
                "{key} is not in the example"
            );
        }
        for key in CHAIN_KEYS {
            assert!(
                parsed.lines.contains_key(&format!("chain.{key}")),
                "chain.{key}"
            );
        }
        // ... and, but for the chain (none by default), to its default.
        for key in SUBMIT_KEYS {
            assert!(
                parsed.lines.contains_key(&format!("submit.{key}")),
                "submit.{key}"
            );
        }
        for key in crate::base::live_config::LIVE_KEYS {
            assert!(
                parsed.lines.contains_key(&format!("live.{key}")),
                "live.{key}"
            );
        }
        let config = Config {
            chain: None,
            submit: None,
            live: None,
            ..parsed.config
        };
        assert_eq!(config, Config::default());
    }

    #[test]
    fn the_report_says_where_each_value_comes_from() {
        let text = "save_core = false\nzstd_level = 99\n";
        let parsed = config_parse::parse(text);
        let shown = report(
            Path::new("/etc/x.toml"),
            Some(&parsed),
            "configuration /etc/x.toml",
            Vec::new(),
            None,
        );
        assert_eq!(shown.problems.len(), 1, "{:?}", shown.problems);
        let report = shown.text;
        assert!(
            report.contains("save_core = false  # /etc/x.toml:1"),
            "{report}"
        );
        assert!(
            report.contains("zstd_level = 3  # default (/etc/x.toml:2 was refused)"),
            "{report}"
        );
        assert!(
            report.contains("# problem: line 2, column 14, key zstd_level"),
            "{report}"
        );
        assert!(report.contains("min_free = \"1G\"  # default"), "{report}");
        assert!(
            report.contains("snapshot_deadline = \"5s\"  # default"),
            "{report}"
        );
        assert!(report.contains("# [chain]: none"), "{report}");
        // What it prints reads back as the same configuration.
        let body: String = report
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| format!("{}\n", l.split("  #").next().unwrap()))
            .collect();
        let back = config_parse::parse(&body);
        assert!(back.problems.is_empty(), "{:?}", back.problems);
        assert_eq!(
            back.config,
            Config {
                save_core: false,
                ..Config::default()
            }
        );
    }
}
