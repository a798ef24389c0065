//! `lttng-coredump config`: the configuration in effect, every key with its
//! value and where the value comes from (the file's line, or the default,
//! and why when the file's value was refused).

use crate::config::Config;
use crate::config_parse;
use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::path::Path;
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
    let duration = |d: std::time::Duration| format!("\"{}\"", super::human::duration(d));
    let text = |s: &str| Value::String(s.to_string()).to_string();
    let mut out = vec![
        ("core_dir".into(), text(&config.core_dir.to_string_lossy())),
        ("save_core".into(), config.save_core.to_string()),
        (
            "check_core_trace".into(),
            config.check_core_trace.to_string(),
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
    out
}

/// The report: `key = value  # source`.
pub fn report(path: &Path, text: Option<&str>, load_error: Option<&str>) -> String {
    let parsed = text.map(config_parse::parse);
    let config = parsed
        .as_ref()
        .map(|p| p.config.clone())
        .unwrap_or_default();
    let mut out = String::new();
    match (text, load_error) {
        (Some(_), _) => writeln!(out, "# configuration {}", path.display()),
        (None, Some(error)) => writeln!(out, "# {error}"),
        (None, None) => writeln!(
            out,
            "# no configuration file at {}: every value is the default",
            path.display()
        ),
    }
    .expect("String");
    let problems = parsed
        .as_ref()
        .map(|p| p.problems.clone())
        .unwrap_or_default();
    for problem in &problems {
        writeln!(out, "# problem: {problem}").expect("String");
    }
    let mut in_chain = false;
    for (key, value) in values(&config) {
        let line = parsed.as_ref().and_then(|p| p.lines.get(&key).copied());
        let refused = problems
            .iter()
            .any(|p| line.is_some_and(|l| p.starts_with(&format!("line {l},"))));
        let source = match line {
            Some(line) if refused => format!("default ({}:{line} was refused)", path.display()),
            Some(line) => format!("{}:{line}", path.display()),
            None => "default".into(),
        };
        let shown_key = match key.strip_prefix("chain.") {
            Some(chain_key) => {
                if !in_chain {
                    writeln!(out, "[chain]").expect("String");
                    in_chain = true;
                }
                chain_key.to_string()
            }
            None => key,
        };
        writeln!(out, "{shown_key} = {value}  # {source}").expect("String");
    }
    if !in_chain {
        writeln!(out, "# [chain]: none (no core is handed on)").expect("String");
    }
    out
}

pub fn run(source: &super::SourceArgs) -> Result<ExitCode> {
    let store = super::store::Store::open(source);
    let path = store.config_path.clone();
    // The file's text, if this user may read it; the checks of ownership
    // and mode are the handler's (Config::load), reported as is.
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => {
            return Err(err).with_context(|| format!("cannot read {}", path.display()));
        }
    };
    let untrusted = store
        .config_error
        .as_deref()
        .filter(|e| e.contains("not trusted") || e.contains("No such file"));
    let report = match untrusted {
        Some(error) => report(&path, None, Some(error)),
        None => report(&path, text.as_deref(), None),
    };
    print!("{report}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config_parse::{CHAIN_KEYS, KEYS};

    const EXAMPLE: &str = include_str!("../../config.example.toml");

    #[test]
    fn the_example_holds_every_key_with_its_default() {
        // Uncommented, every `#key = value` line is read without a problem...
        let uncommented: String = EXAMPLE
            .lines()
            .map(|line| match line.strip_prefix('#') {
                Some(rest)
                    if rest.starts_with("[chain]")
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
        let config = Config {
            chain: None,
            ..parsed.config
        };
        assert_eq!(config, Config::default());
    }

    #[test]
    fn the_report_says_where_each_value_comes_from() {
        let text = "save_core = false\nzstd_level = 99\n";
        let report = report(Path::new("/etc/x.toml"), Some(text), None);
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
