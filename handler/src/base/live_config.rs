//! The `[live]` table: the LTTng triggers whose notifications make `serve`
//! take a live core of the process that emitted the event
//! (`service/live_events.rs`), and the rate limits of those cores.
//!
//! Triggers are named one by one (`triggers = ["name", ...]`), not by a
//! prefix: a trigger named here opts its events in, and nobody but the
//! administrator writing this file adds one (with a prefix, whoever can
//! register a trigger under it would). A name matches the triggers of that
//! name of every owner the service follows; each owner's trigger only ever
//! gets cores of that owner's own processes.

use std::time::Duration;
use toml::Value;

/// The keys of `[live]`.
pub const LIVE_KEYS: [&str; 6] = [
    "triggers",
    "users",
    "trigger_interval",
    "process_interval",
    "max_dumps",
    "max_pending_per_user",
];

/// The most live cores on events taken at once (`max_dumps`).
pub const MAX_DUMPS: usize = 8;

/// The most events of one user that may wait for a dump
/// (`max_pending_per_user`).
pub const MAX_PENDING_PER_USER: usize = 64;

/// The most users whose own triggers are followed (a child each).
pub const MAX_USERS: usize = 32;

/// The most trigger names followed.
pub const MAX_TRIGGERS: usize = 32;

/// What `[live]` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveEventsConfig {
    /// The names of the triggers followed.
    pub triggers: Vec<String>,
    /// The uids (not root) whose own triggers of those names are followed
    /// too, each by a notification child acting as that user
    /// (`service/user_notifications.rs`).
    pub users: Vec<u32>,
    /// At most one live core per trigger (owner and name) this often.
    pub trigger_interval: Duration,
    /// At most one live core per process this often.
    pub process_interval: Duration,
    /// Live cores taken at once, at most (each by a thread of its own; one
    /// per user at a time, whatever this says).
    pub max_dumps: usize,
    /// Events of one user (root's triggers are root's) that may wait for
    /// a dump while that user's dump is under way or no dump slot is
    /// free; past it, the user's events are refused (logged and counted).
    pub max_pending_per_user: usize,
}

impl Default for LiveEventsConfig {
    fn default() -> Self {
        LiveEventsConfig {
            triggers: Vec::new(),
            users: Vec::new(),
            trigger_interval: Duration::from_secs(60),
            process_interval: Duration::from_secs(600),
            max_dumps: 2,
            max_pending_per_user: 4,
        }
    }
}

/// A duration as the rest of the file writes one: seconds, or a string
/// with a unit; at most a day.
fn duration(value: &Value) -> Option<Duration> {
    let parsed = match value {
        Value::Integer(seconds) => u64::try_from(*seconds).ok().map(Duration::from_secs),
        Value::String(text) => crate::base::config_parse::parse_duration(text).ok(),
        _ => None,
    };
    parsed.filter(|d| d.as_secs() <= 86_400)
}

/// Reads the `[live]` table; a bad key keeps its default (each problem
/// names it as `live.KEY`). No usable trigger name: `None`, nothing is
/// followed.
pub fn parse(value: &Value, problem: &mut impl FnMut(&str, String)) -> Option<LiveEventsConfig> {
    let Some(table) = value.as_table() else {
        problem(
            "live",
            format!("expected a [live] table, not {value}; no live core is taken on an event"),
        );
        return None;
    };
    let mut config = LiveEventsConfig::default();
    for (key, value) in table {
        let full = format!("live.{key}");
        match key.as_str() {
            "triggers" => {
                let names: Option<Vec<String>> = value.as_array().and_then(|items| {
                    items
                        .iter()
                        .map(|item| item.as_str().map(str::to_string))
                        .collect()
                });
                match names {
                    Some(names)
                        if names.len() <= MAX_TRIGGERS
                            && names
                                .iter()
                                .all(|n| !n.is_empty() && n.len() < 256 && !n.contains('\0')) =>
                    {
                        config.triggers = names
                    }
                    _ => problem(
                        &full,
                        format!(
                            "expected a list of at most {MAX_TRIGGERS} trigger names \
                             ([\"a\", \"b\"]), not {value}; following none"
                        ),
                    ),
                }
            }
            "users" => {
                let uids: Option<Vec<u32>> = value.as_array().and_then(|items| {
                    items
                        .iter()
                        .map(|item| item.as_integer().and_then(|n| u32::try_from(n).ok()))
                        .collect()
                });
                match uids {
                    Some(mut uids)
                        if uids.len() <= MAX_USERS
                            && uids.iter().all(|&u| u != 0 && u != u32::MAX) =>
                    {
                        uids.sort_unstable();
                        uids.dedup();
                        config.users = uids
                    }
                    _ => problem(
                        &full,
                        format!(
                            "expected a list of at most {MAX_USERS} uids other than root's \
                             ([1000, 1001]), not {value}; following root's triggers only"
                        ),
                    ),
                }
            }
            "trigger_interval" | "process_interval" => match duration(value) {
                Some(d) if key == "trigger_interval" => config.trigger_interval = d,
                Some(d) => config.process_interval = d,
                None => problem(
                    &full,
                    format!(
                        "expected a duration of at most a day (seconds, or \"10s\", \"5min\"), \
                         not {value}; using the default"
                    ),
                ),
            },
            "max_dumps" | "max_pending_per_user" => {
                let (least, most) = if key == "max_dumps" {
                    (1, MAX_DUMPS)
                } else {
                    (0, MAX_PENDING_PER_USER)
                };
                match value
                    .as_integer()
                    .and_then(|n| usize::try_from(n).ok())
                    .filter(|n| (least..=most).contains(n))
                {
                    Some(n) if key == "max_dumps" => config.max_dumps = n,
                    Some(n) => config.max_pending_per_user = n,
                    None => problem(
                        &full,
                        format!(
                            "expected a number from {least} to {most}, not {value}; using the \
                             default"
                        ),
                    ),
                }
            }
            _ => problem(
                &full,
                crate::base::config_parse::unknown_key(key, &LIVE_KEYS),
            ),
        }
    }
    (!config.triggers.is_empty()).then_some(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> (Option<LiveEventsConfig>, Vec<String>) {
        let table: toml::Table = text.parse().unwrap();
        let mut problems = Vec::new();
        let config = parse(&table["live"], &mut |key: &str, message: String| {
            problems.push(format!("{key}: {message}"))
        });
        (config, problems)
    }

    #[test]
    fn the_live_table_names_triggers_and_intervals() {
        let (config, problems) = parsed(
            "[live]\ntriggers = [\"hang\", \"watchdog\"]\ntrigger_interval = \"10s\"\nprocess_interval = 30\n",
        );
        assert!(problems.is_empty(), "{problems:?}");
        let config = config.unwrap();
        assert_eq!(config.triggers, ["hang", "watchdog"]);
        assert_eq!(config.trigger_interval, Duration::from_secs(10));
        assert_eq!(config.process_interval, Duration::from_secs(30));
        assert!(config.users.is_empty());
        let (config, problems) = parsed("[live]\ntriggers = [\"a\"]\nusers = [1001, 1000, 1001]\n");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(config.unwrap().users, [1000, 1001]);
        let (config, problems) = parsed("[live]\ntriggers = [\"a\"]\nusers = [0]\n");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(config.unwrap().users.is_empty());
    }

    #[test]
    fn the_dump_limits_are_bounded() {
        let (config, problems) =
            parsed("[live]\ntriggers = [\"a\"]\nmax_dumps = 3\nmax_pending_per_user = 0\n");
        assert!(problems.is_empty(), "{problems:?}");
        let config = config.unwrap();
        assert_eq!((config.max_dumps, config.max_pending_per_user), (3, 0));
        let (config, problems) =
            parsed("[live]\ntriggers = [\"a\"]\nmax_dumps = 0\nmax_pending_per_user = 65\n");
        assert_eq!(problems.len(), 2, "{problems:?}");
        let config = config.unwrap();
        let default = LiveEventsConfig::default();
        assert_eq!(
            (config.max_dumps, config.max_pending_per_user),
            (default.max_dumps, default.max_pending_per_user)
        );
    }

    #[test]
    fn bad_keys_keep_their_defaults_and_no_name_follows_nothing() {
        let (config, problems) =
            parsed("[live]\ntriggers = [\"a\"]\ntrigger_interval = \"2d\"\ncolour = 1\n");
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(
            config.unwrap().trigger_interval,
            LiveEventsConfig::default().trigger_interval
        );
        let (config, problems) = parsed("[live]\ntriggers = [1]\n");
        assert!(config.is_none());
        assert_eq!(problems.len(), 1);
        let many: Vec<String> = (0..40).map(|i| format!("\"t{i}\"")).collect();
        let (config, _) = parsed(&format!("[live]\ntriggers = [{}]\n", many.join(",")));
        assert!(config.is_none());
    }
}
