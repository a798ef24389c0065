//! Reading the configuration file key by key, so that a mistake costs that
//! key only: a bad value or an unknown key is reported (with its line, its
//! column and the form the key expects) and the key keeps its default, the
//! rest of the file is used. Keys that guard security fall back to their
//! safe default, never to nothing: `core_dir` and `syslog_socket` to the
//! built-in paths, a bad `[chain]` to no chain at all. A line TOML itself
//! cannot read is left out and the rest is read again.

use crate::base::config::{parse_size, ChainConfig, Compression, Config};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use toml::{Table, Value};

/// The longest age limit of the snapshot budget (ten years).
const TEN_YEARS_SECS: u64 = 10 * 365 * 86_400;

/// Lines of a file TOML cannot read that are left out before giving up.
const MAX_SKIPPED_LINES: usize = 64;

/// What a file gave: the configuration, what was wrong, and the line each
/// key was set on (`chain.command` for the keys of `[chain]`).
#[derive(Debug, Clone)]
pub struct Parsed {
    pub config: Config,
    pub problems: Vec<String>,
    pub lines: BTreeMap<String, usize>,
    /// The keys whose value was refused (they keep their default), and
    /// the unknown ones (`chain.x` for those of `[chain]`).
    pub refused: std::collections::BTreeSet<String>,
    /// The file could not be read as TOML at all: every value is the default.
    pub unreadable: bool,
}

/// Every top-level key, in the order people read them.
pub const KEYS: [&str; 35] = [
    "core_dir",
    "save_core",
    "check_core_trace",
    "report",
    "report_deadline",
    "report_memory",
    "report_last_events",
    "debuginfod_urls",
    "debuginfod_timeout",
    "journal",
    "journal_socket",
    "compression",
    "zstd_level",
    "max_core_size",
    "max_dir_size",
    "min_free",
    "max_age",
    "max_cores_per_minute",
    "max_cores_per_user_per_minute",
    "max_snapshots_per_minute",
    "max_snapshots_per_user_per_minute",
    "max_snapshot_dirs",
    "max_snapshot_size",
    "max_snapshot_age",
    "snapshot_deadline",
    "max_crashes_in_progress_per_user",
    "core_stall_timeout",
    "abort_stalled_fuse",
    "snapshot_sessions",
    "snapshot_active_sessions",
    "snapshot_user_daemon",
    "syslog_socket",
    "chain",
    "submit",
    "live",
];

/// The keys of `[submit]` (the fleet crate reads them).
pub const SUBMIT_KEYS: [&str; 15] = lttng_coredump_fleet::config::KEYS;

/// The keys of `[chain]`.
pub const CHAIN_KEYS: [&str; 3] = ["command", "stall_timeout", "exit_timeout"];

pub fn parse(text: &str) -> Parsed {
    let mut problems = Vec::new();
    let (table, text) = readable_table(text, &mut problems);
    let unreadable = text.is_empty() && !problems.is_empty();
    let lines = key_lines(&text);
    let mut config = Config::default();
    let mut refused = std::collections::BTreeSet::new();
    let mut problem = |key: &str, message: String| {
        refused.insert(key.to_string());
        problems.push(located(&text, &lines, key, &message));
    };
    for (key, value) in &table {
        match key.as_str() {
            "core_dir" => match absolute_path(value) {
                Ok(path) => config.core_dir = path,
                Err(form) => problem(
                    key,
                    format!(
                        "expected {form}, not {}; using the default {}",
                        shown(value),
                        config.core_dir.display()
                    ),
                ),
            },
            "syslog_socket" => match absolute_path(value) {
                Ok(path) => config.syslog_socket = path,
                Err(form) => problem(
                    key,
                    format!(
                        "expected {form}, not {}; using the default {}",
                        shown(value),
                        config.syslog_socket.display()
                    ),
                ),
            },
            "save_core" => set_bool(&mut config.save_core, value, key, &mut problem),
            "check_core_trace" => set_bool(&mut config.check_core_trace, value, key, &mut problem),
            "report" => set_bool(&mut config.report, value, key, &mut problem),
            "journal" => set_bool(&mut config.journal, value, key, &mut problem),
            "report_memory" => set_size(&mut config.report_memory, value, key, &mut problem),
            "report_last_events" => {
                set_count(&mut config.report_last_events, value, key, &mut problem);
                config.report_last_events = config.report_last_events.min(1000);
            }
            "debuginfod_urls" => match value.as_str().map(debuginfod_urls) {
                Some(Ok(urls)) => config.debuginfod_urls = urls,
                Some(Err(why)) => problem(key, format!("{why}; asking no debuginfod server")),
                None => problem(
                    key,
                    format!(
                        "expected a string of http:// or https:// URLs, not {}; asking no \
                         debuginfod server",
                        shown(value)
                    ),
                ),
            },
            "debuginfod_timeout" => match duration(value, 3600) {
                Ok(timeout) if !timeout.is_zero() => config.debuginfod_timeout = timeout,
                _ => problem(
                    key,
                    format!(
                        "expected a duration above 0 and at most 1 h, not {}; using {} s",
                        shown(value),
                        config.debuginfod_timeout.as_secs_f64()
                    ),
                ),
            },
            "report_deadline" => match duration(value, 3600) {
                Ok(deadline) if !deadline.is_zero() => config.report_deadline = deadline,
                _ => problem(
                    key,
                    format!(
                        "expected a duration above 0 and at most 1 h, not {}; using {} s",
                        shown(value),
                        config.report_deadline.as_secs_f64()
                    ),
                ),
            },
            "journal_socket" => match absolute_path(value) {
                Ok(path) => config.journal_socket = path,
                Err(form) => problem(
                    key,
                    format!(
                        "expected {form}, not {}; using the default {}",
                        shown(value),
                        config.journal_socket.display()
                    ),
                ),
            },
            "snapshot_active_sessions" => set_bool(
                &mut config.snapshot_active_sessions,
                value,
                key,
                &mut problem,
            ),
            "snapshot_user_daemon" => {
                set_bool(&mut config.snapshot_user_daemon, value, key, &mut problem)
            }
            "abort_stalled_fuse" => {
                set_bool(&mut config.abort_stalled_fuse, value, key, &mut problem)
            }
            "max_snapshots_per_user_per_minute" => set_count(
                &mut config.max_snapshots_per_user_per_minute,
                value,
                key,
                &mut problem,
            ),
            "max_crashes_in_progress_per_user" => set_count(
                &mut config.max_crashes_in_progress_per_user,
                value,
                key,
                &mut problem,
            ),
            "core_stall_timeout" => match duration(value, 3600) {
                Ok(timeout) if !timeout.is_zero() => config.core_stall_timeout = timeout,
                Ok(_) => problem(
                    key,
                    format!(
                        "expected a duration above 0 (a read that may never wait would cut \
                         every core), not 0; using {} s",
                        config.core_stall_timeout.as_secs_f64()
                    ),
                ),
                Err(form) => problem(
                    key,
                    format!(
                        "expected {form}, not {}; using {} s",
                        shown(value),
                        config.core_stall_timeout.as_secs_f64()
                    ),
                ),
            },
            "compression" => match value.as_str() {
                Some("none") => config.compression = Compression::None,
                Some("zstd") => config.compression = Compression::Zstd,
                _ => problem(
                    key,
                    format!(
                        "expected \"none\" or \"zstd\", not {}; using \"none\"",
                        shown(value)
                    ),
                ),
            },
            "zstd_level" => match value.as_integer() {
                Some(level @ 1..=22) => config.zstd_level = level as i32,
                _ => problem(
                    key,
                    format!(
                        "expected a whole number from 1 to 22, not {}; using {}",
                        shown(value),
                        config.zstd_level
                    ),
                ),
            },
            "max_core_size" => set_size(&mut config.max_core_size, value, key, &mut problem),
            "max_dir_size" => set_size(&mut config.max_dir_size, value, key, &mut problem),
            "min_free" => set_size(&mut config.min_free, value, key, &mut problem),
            "max_age" => match duration(value, u64::MAX) {
                Ok(age) if age.is_zero() => config.max_age = None,
                Ok(age) => config.max_age = Some(age),
                Err(form) => problem(
                    key,
                    format!("expected {form}, not {}; no age limit", shown(value)),
                ),
            },
            "max_cores_per_minute" => {
                set_count(&mut config.max_cores_per_minute, value, key, &mut problem)
            }
            "max_cores_per_user_per_minute" => set_count(
                &mut config.max_cores_per_user_per_minute,
                value,
                key,
                &mut problem,
            ),
            "max_snapshots_per_minute" => set_count(
                &mut config.max_snapshots_per_minute,
                value,
                key,
                &mut problem,
            ),
            "max_snapshot_dirs" => {
                set_count(&mut config.max_snapshot_dirs, value, key, &mut problem)
            }
            "max_snapshot_size" => {
                set_size(&mut config.max_snapshot_size, value, key, &mut problem)
            }
            "max_snapshot_age" => match duration(value, TEN_YEARS_SECS) {
                Ok(age) => config.max_snapshot_age = age,
                Err(form) => problem(
                    key,
                    format!(
                        "expected {form}, not {}; using {}",
                        shown(value),
                        crate::base::human::duration(config.max_snapshot_age)
                    ),
                ),
            },
            "snapshot_deadline" => match duration(value, 3600) {
                Ok(deadline) => config.snapshot_deadline = deadline,
                Err(form) => problem(
                    key,
                    format!(
                        "expected {form}, not {}; using {} s",
                        shown(value),
                        config.snapshot_deadline.as_secs_f64()
                    ),
                ),
            },
            "snapshot_sessions" => match string_list(value) {
                Some(sessions) => config.snapshot_sessions = sessions,
                None => problem(
                    key,
                    format!(
                        "expected a list of session names ([\"a\", \"b\"]), not {}; using none",
                        shown(value)
                    ),
                ),
            },
            "chain" => config.chain = chain(value, &mut problem),
            "submit" => config.submit = submit(value, &mut problem),
            "live" => config.live = crate::base::live_config::parse(value, &mut problem),
            _ => problem(key, unknown_key(key, &KEYS)),
        }
    }
    // In the file's order (the table's is alphabetical).
    problems.sort_by_key(|problem| {
        problem
            .strip_prefix("line ")
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(usize::MAX)
    });
    Parsed {
        config,
        problems,
        lines,
        refused,
        unreadable,
    }
}

/// `unknown key (ignored)`, with the known key it most likely meant.
pub fn unknown_key(key: &str, known: &[&str]) -> String {
    match nearest(key, known) {
        Some(near) => format!("unknown key (ignored); did you mean {near}?"),
        None => "unknown key (ignored)".to_string(),
    }
}

/// The known key nearest to `key` (by edits, a third of its length at
/// most, or one that holds it or that it holds), if any is near.
pub fn nearest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    let key = key.to_ascii_lowercase().replace('-', "_");
    let best = known
        .iter()
        .map(|candidate| (edit_distance(&key, candidate), *candidate))
        .min()?;
    let near = best.0 <= (key.chars().count() / 3).max(2);
    let contained =
        |c: &str| c.len() >= 4 && key.len() >= 4 && (c.contains(&key) || key.contains(c));
    if near {
        Some(best.1)
    } else {
        known.iter().copied().find(|c| contained(c))
    }
}

/// Levenshtein distance (insertions, deletions, substitutions).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The file as a table; lines TOML cannot read are blanked (and reported)
/// until the rest reads. Returns the text actually read.
fn readable_table(text: &str, problems: &mut Vec<String>) -> (Table, String) {
    let mut text = text.to_string();
    for _ in 0..MAX_SKIPPED_LINES {
        match text.parse::<Table>() {
            Ok(table) => return (table, text),
            Err(err) => {
                let message = err.message().trim().replace('\n', " ");
                let Some(span) = err.span() else { break };
                let mut start = span.start.min(text.len());
                while !text.is_char_boundary(start) {
                    start -= 1;
                }
                let (line, column) = line_column(&text, start);
                let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
                let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
                let key = key_of_line(&text[line_start..line_end]);
                problems.push(match key {
                    Some(key) => {
                        format!("line {line}, column {column}, key {key}: {message} (line ignored)")
                    }
                    None => format!("line {line}, column {column}: {message} (line ignored)"),
                });
                if text[line_start..line_end].trim().is_empty() {
                    break;
                }
                // Spaces keep the other lines' numbers and columns.
                let blank = " ".repeat(text[line_start..line_end].len());
                text.replace_range(line_start..line_end, &blank);
            }
        }
    }
    problems.push("the file could not be read as TOML; using the defaults".into());
    (Table::new(), String::new())
}

fn line_column(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

fn key_of_line(line: &str) -> Option<&str> {
    line.split_once('=')
        .map(|(key, _)| key.trim().trim_matches('"'))
        .filter(|key| !key.is_empty() && !key.starts_with('[') && !key.starts_with('#'))
}

/// The line each key is set on: `key` at the top, `table.key` inside
/// `[table]`, and the table's own line under its name.
fn key_lines(text: &str) -> BTreeMap<String, usize> {
    let mut lines = BTreeMap::new();
    let mut section = String::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(name) = trimmed.strip_prefix('[').and_then(|r| r.split(']').next()) {
            section = name.trim().to_string();
            lines.entry(section.clone()).or_insert(index + 1);
            continue;
        }
        if let Some(key) = key_of_line(trimmed) {
            let full = if section.is_empty() {
                key.to_string()
            } else {
                format!("{section}.{key}")
            };
            lines.entry(full).or_insert(index + 1);
        }
    }
    lines
}

/// `line L, column C, key K: message` (the column of the value).
fn located(text: &str, lines: &BTreeMap<String, usize>, key: &str, message: &str) -> String {
    let Some(&line) = lines.get(key) else {
        return format!("key {key}: {message}");
    };
    let column = text
        .lines()
        .nth(line - 1)
        .and_then(|l| {
            let (before, after) = l.split_once('=')?;
            Some(before.chars().count() + 2 + (after.len() - after.trim_start().len()))
        })
        .unwrap_or(1);
    let shown_key = key.rsplit('.').next().unwrap_or(key);
    format!("line {line}, column {column}, key {shown_key}: {message}")
}

/// A value as the file wrote it, shortened, on one line: a TOML string
/// may hold newlines and control characters, and the message goes to the
/// log (escaped as every logged name is).
/// `debuginfod_urls`: space-separated `http://` or `https://` URLs (what
/// libdebuginfod takes; `file://` and the rest are refused, the analysis
/// acting as a user must not read local paths named here), printable, at
/// most 4 KiB; empty: none.
fn debuginfod_urls(text: &str) -> Result<Option<String>, String> {
    if text.len() > 4096 {
        return Err(format!("{} bytes of URLs, more than 4096", text.len()));
    }
    let urls: Vec<&str> = text.split_ascii_whitespace().collect();
    for url in &urls {
        let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
        if !scheme_ok || url.chars().any(|c| c.is_control()) {
            return Err(format!(
                "\"{}\" is not an http:// or https:// URL",
                crate::base::sanitize::for_log(url.as_bytes())
            ));
        }
    }
    Ok((!urls.is_empty()).then(|| urls.join(" ")))
}

fn shown(value: &Value) -> String {
    let mut text = crate::base::sanitize::for_log(value.to_string().as_bytes());
    if text.len() > 60 {
        let mut cut = 57;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("...");
    }
    text
}

fn set_bool(field: &mut bool, value: &Value, key: &str, problem: &mut impl FnMut(&str, String)) {
    match value.as_bool() {
        Some(flag) => *field = flag,
        None => problem(
            key,
            format!(
                "expected true or false, not {}; using {field}",
                shown(value)
            ),
        ),
    }
}

fn set_count(field: &mut u32, value: &Value, key: &str, problem: &mut impl FnMut(&str, String)) {
    match value.as_integer().map(u32::try_from) {
        Some(Ok(count)) => *field = count,
        _ => problem(
            key,
            format!(
                "expected a whole number (0 for no limit), not {}; using {field}",
                shown(value)
            ),
        ),
    }
}

fn set_size(field: &mut u64, value: &Value, key: &str, problem: &mut impl FnMut(&str, String)) {
    let parsed = match value {
        Value::Integer(bytes) => u64::try_from(*bytes).ok(),
        Value::String(text) => parse_size(text).ok(),
        _ => None,
    };
    match parsed {
        Some(bytes) => *field = bytes,
        None => problem(
            key,
            format!(
                "expected a size (bytes, or a number with K, M, G or T: \"512M\", \"2G\"), not \
                 {}; using {}",
                shown(value),
                crate::base::human::size(*field)
            ),
        ),
    }
}

fn absolute_path(value: &Value) -> Result<PathBuf, &'static str> {
    match value.as_str() {
        Some(text) if text.starts_with('/') && !text.contains('\0') => Ok(PathBuf::from(text)),
        _ => Err("an absolute path (\"/var/lib/...\")"),
    }
}

fn string_list(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|item| item.as_str().map(str::to_string))
        .collect()
}

/// Seconds as a number, or a string with a unit; at most `max_secs`.
fn duration(value: &Value, max_secs: u64) -> Result<Duration, &'static str> {
    let form =
        "a duration (seconds, or a number with ms, s, min, h, d: \"500ms\", \"5s\", \"30d\")";
    let parsed = match value {
        Value::Integer(seconds) => u64::try_from(*seconds).ok().map(Duration::from_secs),
        Value::Float(seconds) if seconds.is_finite() && *seconds >= 0.0 && *seconds < 1e15 => {
            Some(Duration::from_secs_f64(*seconds))
        }
        Value::String(text) => parse_duration(text).ok(),
        _ => None,
    };
    match parsed {
        Some(duration) if duration.as_secs() <= max_secs => Ok(duration),
        Some(_) if max_secs == 3600 => Err("a duration of at most 3600 seconds (\"1h\")"),
        _ => Err(form),
    }
}

/// `"5"` (seconds), `"500ms"`, `"5s"`, `"1.5s"`, `"2min"`, `"2m"`, `"1h"`,
/// `"30d"`, `"2w"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let factor = match unit.trim() {
        "" | "s" | "sec" | "second" | "seconds" => 1.0,
        "ms" | "msec" => 0.001,
        "us" | "µs" | "usec" => 0.000_001,
        "m" | "min" | "minute" | "minutes" => 60.0,
        "h" | "hour" | "hours" => 3600.0,
        "d" | "day" | "days" => 86_400.0,
        "w" | "week" | "weeks" => 604_800.0,
        _ => return Err(format!("invalid duration {text:?}")),
    };
    let seconds = number
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .map(|n| n * factor)
        .filter(|s| (0.0..1e15).contains(s))
        .ok_or_else(|| format!("invalid duration {text:?}"))?;
    Ok(Duration::from_secs_f64(seconds))
}

/// The `[submit]` table, read key by key by the fleet crate with this
/// file's sizes and durations; a bad key keeps its default (each problem
/// names it as `submit.KEY`).
fn submit(
    value: &Value,
    problem: &mut impl FnMut(&str, String),
) -> Option<lttng_coredump_fleet::config::SubmitConfig> {
    use lttng_coredump_fleet::config::{SubmitConfig, Units};
    let Some(table) = value.as_table() else {
        problem(
            "submit",
            format!(
                "expected a [submit] table, not {}; nothing is shipped",
                shown(value)
            ),
        );
        return None;
    };
    let units = Units {
        size: parse_size,
        duration: parse_duration,
    };
    let (config, problems) = SubmitConfig::from_table(table, &units);
    for message in problems {
        // `submit.KEY: what`, or a sentence about two keys.
        match message.split_once(": ") {
            Some((key, what)) if key.starts_with("submit.") && !key.contains(' ') => {
                problem(key, what.to_string())
            }
            _ => problem("submit", message),
        }
    }
    Some(config)
}

/// The `[chain]` table; anything wrong with its command means no chain
/// (never a command that was not meant).
fn chain(value: &Value, problem: &mut impl FnMut(&str, String)) -> Option<ChainConfig> {
    let Some(table) = value.as_table() else {
        problem(
            "chain",
            format!("expected a [chain] table, not {}; no chain", shown(value)),
        );
        return None;
    };
    let mut config = ChainConfig {
        command: Vec::new(),
        stall_timeout: Duration::from_secs(5),
        exit_timeout: Duration::from_secs(5),
    };
    for (key, value) in table {
        let full = format!("chain.{key}");
        match key.as_str() {
            "command" => {}
            "stall_timeout" | "exit_timeout" => match duration(value, 3600) {
                Ok(duration) if key == "stall_timeout" => config.stall_timeout = duration,
                Ok(duration) => config.exit_timeout = duration,
                Err(form) => problem(
                    &full,
                    format!("expected {form}, not {}; using 5 s", shown(value)),
                ),
            },
            _ => problem(&full, unknown_key(key, &CHAIN_KEYS)),
        }
    }
    let command = match table.get("command") {
        Some(command) => string_list(command),
        None => {
            problem("chain", "has no command; no chain".to_string());
            return None;
        }
    };
    match command {
        Some(command) if command.first().is_some_and(|p| p.starts_with('/')) => {
            config.command = command;
            Some(config)
        }
        // The handler runs with an empty environment: no PATH.
        _ => {
            problem(
                "chain.command",
                format!(
                    "expected a list starting with an absolute program path \
                     ([\"/lib/systemd/systemd-coredump\", \"{{pid}}\"]), not {}; no chain",
                    shown(table.get("command").expect("checked above"))
                ),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_key_names_the_nearest_known_one() {
        let parsed = parse("max_core_sise = \"1G\"\ncompresion = \"zstd\"\nfoo = 1\n[chain]\ncommand = [\"/bin/true\"]\nstall_timout = 3\n");
        let all = parsed.problems.join("\n");
        assert!(
            all.contains("key max_core_sise: unknown key (ignored); did you mean max_core_size?"),
            "{all}"
        );
        assert!(
            all.contains("key compresion: unknown key (ignored); did you mean compression?"),
            "{all}"
        );
        assert!(
            all.contains("key foo: unknown key (ignored)\n")
                || all.ends_with("key foo: unknown key (ignored)"),
            "{all}"
        );
        assert!(all.contains("did you mean stall_timeout?"), "{all}");
        assert!(
            parsed.refused.contains("max_core_sise")
                && parsed.refused.contains("chain.stall_timout")
        );
        assert!(!parsed.unreadable);
        assert_eq!(
            nearest("snapshot-deadline", &KEYS),
            Some("snapshot_deadline")
        );
        assert_eq!(nearest("coredir", &KEYS), Some("core_dir"));
        assert!(!parse("= = =").unreadable, "one bad line costs that line");
        assert!(parse(&"= = =\n".repeat(70)).unreadable);
    }

    #[test]
    fn a_bad_value_holding_newlines_is_shown_on_one_line() {
        // Found by the config fuzz target: a TOML multi-line string.
        let parsed = parse("min_free = \"\"\"\n\"\nx\u{202e}\"\"\"\n");
        assert_eq!(parsed.problems.len(), 1, "{:?}", parsed.problems);
        let problem = &parsed.problems[0];
        assert!(!problem.contains('\n'), "{problem:?}");
        assert!(!problem.contains('\u{202e}'), "{problem:?}");
        assert!(problem.contains("key min_free"), "{problem:?}");
    }

    #[test]
    fn debuginfod_servers_are_http_urls_and_anything_else_asks_none() {
        let parsed = parse(
            "debuginfod_urls = \"  https://a.example/ http://b.example:8002  \"\n\
             debuginfod_timeout = \"5s\"\n",
        );
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
        assert_eq!(
            parsed.config.debuginfod_urls.as_deref(),
            Some("https://a.example/ http://b.example:8002")
        );
        assert_eq!(parsed.config.debuginfod_timeout, Duration::from_secs(5));
        // A local path (the analysis acts as a user), another scheme, a
        // control character, a zero timeout: refused, said, none asked.
        for bad in [
            "debuginfod_urls = \"file:///etc/shadow\"",
            "debuginfod_urls = \"https://a.example/ ftp://b\"",
            "debuginfod_urls = \"https://a.example/\\u001b[2J\"",
            "debuginfod_urls = 3",
        ] {
            let parsed = parse(bad);
            assert_eq!(parsed.config.debuginfod_urls, None, "{bad}");
            assert!(
                parsed.problems.iter().any(|p| p.contains("debuginfod_urls")
                    && p.contains("asking no debuginfod server")
                    && !p.contains('\u{1b}')),
                "{bad}: {:?}",
                parsed.problems
            );
        }
        let parsed = parse("debuginfod_timeout = \"0s\"\nreport_deadline = \"2s\"\n");
        assert_eq!(parsed.problems.len(), 1, "{:?}", parsed.problems);
        assert_eq!(parsed.config.debuginfod_timeout, Duration::from_secs(10));
        // Empty: none, no problem.
        let parsed = parse("debuginfod_urls = \"  \"\n");
        assert!(parsed.problems.is_empty() && parsed.config.debuginfod_urls.is_none());
    }

    #[test]
    fn a_bad_key_costs_that_key_only() {
        let parsed = parse(
            "save_core = false\nmax_core_size = \"lots\"\ncore_dri = \"/x\"\nzstd_level = 9\n\
             compression = 7\n",
        );
        assert!(!parsed.config.save_core);
        assert_eq!(parsed.config.zstd_level, 9);
        assert_eq!(parsed.config.max_core_size, Config::default().max_core_size);
        assert_eq!(parsed.problems.len(), 3, "{:?}", parsed.problems);
        let all = parsed.problems.join("\n");
        assert!(
            all.contains("line 2, column 17, key max_core_size: expected a size"),
            "{all}"
        );
        assert!(
            all.contains("line 3, column 12, key core_dri: unknown key"),
            "{all}"
        );
        assert!(
            all.contains(
                "line 5, column 15, key compression: expected \"none\" or \"zstd\", not 7"
            ),
            "{all}"
        );
        assert!(
            !all.contains("i64") && !all.contains("invalid type"),
            "{all}"
        );
    }

    #[test]
    fn security_keys_fall_back_to_their_safe_defaults() {
        let parsed = parse(
            "core_dir = \"relative\"\nsyslog_socket = 3\n[chain]\ncommand = [\"sh\", \"-c\"]\n",
        );
        assert_eq!(parsed.config.core_dir, Config::default().core_dir);
        assert_eq!(parsed.config.syslog_socket, Config::default().syslog_socket);
        assert_eq!(parsed.config.chain, None);
        assert_eq!(parsed.problems.len(), 3, "{:?}", parsed.problems);
        assert!(
            parsed
                .problems
                .iter()
                .any(|p| p.starts_with("line 4, column 11, key command:")),
            "{:?}",
            parsed.problems
        );
        let parsed = parse("[chain]\ncommand = [\"/bin/cat\"]\nstall_timeout = \"soon\"\n");
        assert_eq!(
            parsed.config.chain.unwrap().stall_timeout,
            Duration::from_secs(5)
        );
        assert_eq!(parsed.problems.len(), 1);
    }

    #[test]
    fn a_line_toml_cannot_read_is_left_out() {
        let parsed = parse("save_core = false\nsnapshot_deadline = = 3\nzstd_level = 4\n");
        assert!(!parsed.config.save_core);
        assert_eq!(parsed.config.zstd_level, 4);
        assert_eq!(parsed.problems.len(), 1, "{:?}", parsed.problems);
        assert!(
            parsed.problems[0].starts_with("line 2, column")
                && parsed.problems[0].contains("key snapshot_deadline")
                && parsed.problems[0].ends_with("(line ignored)"),
            "{:?}",
            parsed.problems
        );
    }

    #[test]
    fn the_submit_section_is_read_with_this_files_units() {
        let parsed = parse(
            "save_core = true\n[submit]\njournal_remote = \"http://10.0.0.1:19532\"\n\
             max_spool_size = \"64M\"\nretry_max = \"2min\"\nuser = \"root\"\ncolour = 1\n",
        );
        let submit = parsed.config.submit.expect("[submit] read");
        assert_eq!(
            submit.journal_remote.as_deref(),
            Some("http://10.0.0.1:19532")
        );
        assert_eq!(submit.limits.max_bytes, 64 << 20);
        assert_eq!(submit.retry.max, Duration::from_secs(120));
        // A bad key costs that key, named with its line.
        assert_eq!(submit.user, "lttng-coredump");
        assert_eq!(parsed.problems.len(), 2, "{:?}", parsed.problems);
        assert!(
            parsed.problems[0].starts_with("line 6, column 8, key user: expected a user name"),
            "{:?}",
            parsed.problems
        );
        assert!(parsed.refused.contains("submit.colour"));
        // No section: nothing shipped.
        assert_eq!(parse("save_core = true\n").config.submit, None);
        assert!(!parse("submit = 3\n").problems.is_empty());
    }

    #[test]
    fn durations_and_sizes_with_units() {
        let parsed = parse(
            "snapshot_deadline = \"500ms\"\nmax_age = \"30d\"\nmin_free = \"2G\"\n\
             [chain]\ncommand = [\"/bin/cat\"]\nstall_timeout = \"2s\"\nexit_timeout = 1.5\n",
        );
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
        assert_eq!(parsed.config.snapshot_deadline, Duration::from_millis(500));
        assert_eq!(
            parsed.config.max_age,
            Some(Duration::from_secs(30 * 86_400))
        );
        assert_eq!(parsed.config.min_free, 2 << 30);
        let chain = parsed.config.chain.unwrap();
        assert_eq!(chain.stall_timeout, Duration::from_secs(2));
        assert_eq!(chain.exit_timeout, Duration::from_millis(1500));
        assert_eq!(parsed.lines["chain.stall_timeout"], 6);
        assert_eq!(parse_duration("2min"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-1s").is_err());
        let too_long = parse("snapshot_deadline = \"2h\"\n");
        assert!(
            too_long.problems[0].contains("at most 3600 seconds"),
            "{:?}",
            too_long.problems
        );
    }
}
