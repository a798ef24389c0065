//! Choosing crashes: the MATCH arguments (PID, program name, executable
//! path, FIELD=value) and the `--since`/`--until` times, absolute in the
//! local time zone or relative to now. A relative executable path is made
//! absolute from the current directory, as coredumpctl does.

use super::Selection;
use crate::store::crashes::Crash;
use anyhow::{anyhow, bail, Result};
use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, ZonedDateTime as Zoned};
use serde_json::Value;

/// One MATCH argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    Pid(i64),
    /// The executable's path (an argument holding a `/`).
    Exe(String),
    /// The process name, or the executable's file name.
    Name(String),
    /// A record field (dotted for nested ones) and the value it must have.
    Field(String, String),
}

impl Match {
    pub fn parse(text: &str) -> Result<Match> {
        if let Some((field, value)) = text.split_once('=') {
            if field.is_empty() {
                bail!("invalid match {text:?}: no field before the \"=\"");
            }
            return Ok(Match::Field(field.to_string(), value.to_string()));
        }
        if text.contains('/') {
            return Ok(Match::Exe(text.to_string()));
        }
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return text
                .parse()
                .map(Match::Pid)
                .map_err(|_| anyhow!("invalid PID {text:?}"));
        }
        if text.is_empty() {
            bail!("an empty match");
        }
        Ok(Match::Name(text.to_string()))
    }

    /// Matches of the same kind (the same field) are alternatives.
    fn kind(&self) -> String {
        match self {
            Match::Pid(_) => "pid".into(),
            Match::Exe(_) => "exe".into(),
            Match::Name(_) => "name".into(),
            Match::Field(field, _) => format!("field {field}"),
        }
    }

    pub fn holds_for(&self, crash: &Crash) -> bool {
        match self {
            Match::Pid(pid) => crash.pid() == Some(*pid),
            Match::Exe(path) => crash.exe_path() == Some(path.as_str()),
            Match::Name(name) => {
                crash.process_name() == Some(name.as_str())
                    || crash
                        .exe_path()
                        .and_then(|exe| exe.rsplit('/').next())
                        .is_some_and(|base| base == name)
            }
            Match::Field(field_name, wanted) => {
                let record = crash.record.to_value();
                match field(&record, field_name) {
                    Value::String(text) => text == wanted,
                    Value::Null => wanted.is_empty() || wanted == "null",
                    Value::Array(items) => items.iter().any(|item| match item {
                        Value::String(text) => text == wanted,
                        other => as_text(other) == *wanted,
                    }),
                    other => as_text(other) == *wanted,
                }
            }
        }
    }
}

/// The value at the dotted path `name` of a record's JSON (`signal.name`,
/// `snapshots.0.path`); null when there is none.
pub fn field<'a>(record: &'a Value, name: &str) -> &'a Value {
    let mut value = record;
    for part in name.split('.') {
        value = match value {
            Value::Object(map) => map.get(part).unwrap_or(&Value::Null),
            Value::Array(items) => part
                .parse::<usize>()
                .ok()
                .and_then(|i| items.get(i))
                .unwrap_or(&Value::Null),
            _ => &Value::Null,
        };
    }
    value
}

/// A non-string value as its JSON text (`11`, `true`).
fn as_text(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// A parsed selection.
#[derive(Debug, Clone)]
pub struct Filter {
    matches: Vec<Match>,
    since: Option<i64>,
    until: Option<i64>,
}

impl Filter {
    pub fn new(selection: &Selection) -> Result<Filter> {
        Self::at(selection, &Zoned::now())
    }

    /// As [`Filter::new`], with relative times counted from `now`.
    pub fn at(selection: &Selection, now: &Zoned) -> Result<Filter> {
        let cwd = std::env::current_dir().ok();
        let matches = selection
            .matches
            .iter()
            .map(|text| {
                Ok(match Match::parse(text)? {
                    Match::Exe(path) if !path.starts_with('/') => {
                        let cwd = cwd.as_ref().ok_or_else(|| {
                            anyhow!("{text:?} is relative and the current directory is unknown")
                        })?;
                        Match::Exe(absolute(&path, cwd))
                    }
                    other => other,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let since = selection
            .since
            .as_deref()
            .map(|text| parse_time(text, now).map_err(|e| anyhow!("--since {text:?}: {e}")))
            .transpose()?;
        let until = selection
            .until
            .as_deref()
            .map(|text| parse_time(text, now).map_err(|e| anyhow!("--until {text:?}: {e}")))
            .transpose()?;
        Ok(Filter {
            matches,
            since,
            until,
        })
    }

    pub fn accepts(&self, crash: &Crash) -> bool {
        let time = crash.time();
        if let Some(since) = self.since {
            if time.is_none_or(|t| t < since) {
                return false;
            }
        }
        if let Some(until) = self.until {
            if time.is_none_or(|t| t > until) {
                return false;
            }
        }
        let mut kinds: Vec<String> = self.matches.iter().map(Match::kind).collect();
        kinds.dedup();
        kinds.sort();
        kinds.dedup();
        kinds.iter().all(|kind| {
            self.matches
                .iter()
                .filter(|m| &m.kind() == kind)
                .any(|m| m.holds_for(crash))
        })
    }

    /// The crashes accepted, in the order given.
    pub fn apply(&self, crashes: Vec<Crash>) -> Vec<Crash> {
        crashes.into_iter().filter(|c| self.accepts(c)).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.matches.is_empty() && self.since.is_none() && self.until.is_none()
    }
}

/// `path` (relative) from `cwd`, with `.`, `..` and repeated slashes
/// resolved in the text (no link is followed: the record holds the path
/// the kernel saw).
pub fn absolute(path: &str, cwd: &std::path::Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    let joined = format!("{}/{path}", cwd.to_string_lossy());
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other.to_string()),
        }
    }
    format!("/{}", parts.join("/"))
}

/// A time as seconds since the epoch: `YYYY-MM-DD[ HH:MM[:SS]]`, `HH:MM[:SS]`
/// (today), `today`, `yesterday`, `tomorrow`, `now`, `@SECONDS`, or a span
/// before now (`1h`, `-30min`, `2 days ago`, `+5m` for after now).
pub fn parse_time(text: &str, now: &Zoned) -> Result<i64> {
    let text = text.trim();
    let zone = now.time_zone().clone();
    let midnight = |date: Date| -> Result<i64> {
        Ok(date
            .to_zoned_datetime(zone.clone())?
            .timestamp()
            .as_second())
    };
    match text {
        "now" => return Ok(now.timestamp().as_second()),
        "today" => return midnight(now.date()),
        "yesterday" => return midnight(now.date().yesterday()?),
        "tomorrow" => return midnight(now.date().tomorrow()?),
        _ => {}
    }
    if let Some(seconds) = text.strip_prefix('@') {
        return seconds
            .parse()
            .map_err(|_| anyhow!("expected @ and seconds since the epoch"));
    }
    if let Ok(datetime) = text.replacen(' ', "T", 1).parse::<DateTime>() {
        return local(datetime, &zone);
    }
    if let Ok(date) = text.parse::<Date>() {
        return midnight(date);
    }
    if let Ok(time) = text.parse::<Time>() {
        return local(now.date().to_datetime(time), &zone);
    }
    let (span_text, after) = if let Some(rest) = text.strip_prefix('+') {
        (rest, true)
    } else {
        (text.strip_prefix('-').unwrap_or(text), false)
    };
    let span_text = span_text.trim();
    let (span_text, ago) = match span_text.strip_suffix("ago") {
        Some(rest) => (rest.trim(), true),
        None => (span_text, false),
    };
    if after && ago {
        bail!("a time cannot be both + and ago");
    }
    if let Ok(span) = span_text.parse::<Span>() {
        let span = span.abs();
        let at = if after {
            now.checked_add(span)?
        } else {
            now.checked_sub(span)?
        };
        return Ok(at.timestamp().as_second());
    }
    bail!(
        "not a time (expected YYYY-MM-DD [HH:MM[:SS]], HH:MM[:SS], today, yesterday, now, \
         @SECONDS, or a time ago such as 1h, 30min, \"2 days ago\")"
    )
}

fn local(datetime: DateTime, zone: &TimeZone) -> Result<i64> {
    Ok(datetime
        .to_zoned_datetime(zone.clone())?
        .timestamp()
        .as_second())
}

/// Seconds since the epoch as local time, `YYYY-MM-DD HH:MM:SS TZ`.
pub fn local_time(seconds: i64) -> String {
    match Timestamp::from_second(seconds) {
        Ok(timestamp) => timestamp
            .to_zoned_datetime(TimeZone::system())
            .strftime("%Y-%m-%d %H:%M:%S %Z")
            .to_string(),
        Err(_) => format!("@{seconds}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crash(json: serde_json::Value) -> Crash {
        Crash {
            record_path: "/x/core.a.1.2.json".into(),
            record: crate::store::record_read::StoredRecord::parse(json.to_string().as_bytes())
                .unwrap(),
            snapshots_seen: None,
        }
    }

    #[test]
    fn a_relative_executable_path_is_made_absolute_from_here() {
        let cwd = std::path::Path::new("/home/u/src");
        assert_eq!(absolute("./build/x", cwd), "/home/u/src/build/x");
        assert_eq!(absolute("../bin//x", cwd), "/home/u/bin/x");
        assert_eq!(absolute("build/./x", cwd), "/home/u/src/build/x");
        let here = std::env::current_dir().unwrap();
        let filter = Filter::at(
            &Selection {
                matches: vec!["./prog".into()],
                ..Default::default()
            },
            &Zoned::now(),
        )
        .unwrap();
        let at_here =
            crash(serde_json::json!({"pid": 1, "exe_path": format!("{}/prog", here.display())}));
        let elsewhere = crash(serde_json::json!({"pid": 2, "exe_path": "/usr/bin/prog"}));
        assert!(filter.accepts(&at_here) && !filter.accepts(&elsewhere));
    }

    #[test]
    fn match_kinds() {
        assert_eq!(Match::parse("1234").unwrap(), Match::Pid(1234));
        assert_eq!(
            Match::parse("/usr/bin/x").unwrap(),
            Match::Exe("/usr/bin/x".into())
        );
        assert_eq!(
            Match::parse("crasher").unwrap(),
            Match::Name("crasher".into())
        );
        assert_eq!(
            Match::parse("signal.name=SIGSEGV").unwrap(),
            Match::Field("signal.name".into(), "SIGSEGV".into())
        );
        assert_eq!(
            Match::parse("exe_path=/a=b").unwrap(),
            Match::Field("exe_path".into(), "/a=b".into())
        );
        assert!(Match::parse("=x").is_err());
        assert!(Match::parse("").is_err());
    }

    #[test]
    fn matches_of_one_kind_are_alternatives_of_different_kinds_all_hold() {
        let a = crash(serde_json::json!({"pid": 1, "uid": 1000, "time": 100,
            "process_name": "a", "exe_path": "/bin/a", "signal": {"number": 11, "name": "SIGSEGV"}}));
        let b = crash(serde_json::json!({"pid": 2, "uid": 0, "time": 200,
            "process_name": "b", "exe_path": "/usr/bin/bee", "signal": {"number": 6, "name": "SIGABRT"}}));
        let now = Zoned::now();
        let filter = |matches: &[&str]| {
            Filter::at(
                &Selection {
                    matches: matches.iter().map(|s| s.to_string()).collect(),
                    ..Default::default()
                },
                &now,
            )
            .unwrap()
        };
        assert!(filter(&["1", "2"]).accepts(&a) && filter(&["1", "2"]).accepts(&b));
        assert!(!filter(&["1", "b"]).accepts(&a));
        assert!(filter(&["bee"]).accepts(&b), "the executable's file name");
        assert!(filter(&["/usr/bin/bee"]).accepts(&b));
        assert!(!filter(&["/usr/bin/bee"]).accepts(&a));
        assert!(filter(&["signal.name=SIGABRT"]).accepts(&b));
        assert!(filter(&["uid=1000"]).accepts(&a) && !filter(&["uid=1000"]).accepts(&b));
        assert!(filter(&["signal.number=11", "a"]).accepts(&a));
        let timed = Filter::at(
            &Selection {
                since: Some("@150".into()),
                ..Default::default()
            },
            &now,
        )
        .unwrap();
        assert!(!timed.accepts(&a) && timed.accepts(&b));
    }

    #[test]
    fn times_absolute_and_relative() {
        let now: Zoned = "2026-11-26T12:30:00[UTC]".parse().unwrap();
        let at = |text: &str| parse_time(text, &now).unwrap();
        let base = now.timestamp().as_second();
        assert_eq!(at("now"), base);
        assert_eq!(at("1h"), base - 3600);
        assert_eq!(at("-1h"), base - 3600);
        assert_eq!(at("30min ago"), base - 1800);
        assert_eq!(at("2 days ago"), base - 2 * 86400);
        assert_eq!(at("+5m"), base + 300);
        assert_eq!(at("today"), base - 12 * 3600 - 1800);
        assert_eq!(at("yesterday"), base - 36 * 3600 - 1800);
        assert_eq!(at("2026-11-26 12:00"), base - 1800);
        assert_eq!(at("2026-11-26 12:00:10"), base - 1790);
        assert_eq!(at("2026-11-26T12:00:10"), base - 1790);
        assert_eq!(at("2026-11-26"), base - 12 * 3600 - 1800);
        assert_eq!(at("12:00"), base - 1800);
        assert_eq!(at("@1700000000"), 1_700_000_000);
        assert!(parse_time("soon", &now).is_err());
    }
}
