//! What `status` says of the spool of crashes shipped to the collector
//! (`[submit]`): the queue (crashes, bytes), the oldest unsent crash and
//! the destinations it waits for, each destination's last error, the
//! drops (the fleet crate's `status`, shown under `status`'s own lines).

use crate::base::config::Config;
use lttng_coredump_fleet::Spool;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct SpoolStatus {
    pub spool_dir: String,
    pub user: String,
    pub destinations: Vec<String>,
    /// The fleet crate's status of the spool, when it could be read.
    pub status: Option<lttng_coredump_fleet::status::Status>,
    /// Why it could not.
    pub error: Option<String>,
}

/// The spool's status when `[submit]` is configured; a spool that cannot
/// be read is a problem (no crash would be shipped), a destination whose
/// last attempt failed a warning (its crashes wait, and are sent later).
pub fn gather(
    config: &Config,
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Option<SpoolStatus> {
    let submit = config.submit.as_ref()?;
    let destinations = submit.destination_names();
    let read = Spool::open(&submit.spool_dir)
        .and_then(|spool| lttng_coredump_fleet::status::status(&spool, &destinations));
    let (status, error) = match read {
        Ok(status) => (Some(status), None),
        Err(error) => {
            let error = error.to_string();
            if rustix::process::geteuid().is_root() {
                problems.push(format!(
                    "[submit] is configured but its spool cannot be read ({error}): crashes are \
                     not shipped (lttng-coredump install creates it)"
                ));
            }
            (None, Some(error))
        }
    };
    if destinations.is_empty() {
        warnings.push(
            "[submit] names no destination (journal_remote, webhook): crashes are spooled, \
             never sent"
                .into(),
        );
    }
    for destination in status.iter().flat_map(|s| &s.destinations) {
        let state = &destination.state;
        if state.consecutive_failures > 0 {
            if let Some(error) = &state.last_error {
                warnings.push(format!(
                    "shipping to {} {} fails ({} attempts in a row; {} crashes wait): {}",
                    state.name,
                    state.target,
                    state.consecutive_failures,
                    destination.pending,
                    error.message
                ));
            }
        }
    }
    Some(SpoolStatus {
        spool_dir: submit.spool_dir.display().to_string(),
        user: submit.user.clone(),
        destinations: destinations.iter().map(|d| d.to_string()).collect(),
        status,
        error,
    })
}

impl SpoolStatus {
    /// For people (lines ending in a newline).
    pub fn text(&self) -> String {
        match (&self.status, &self.error) {
            (Some(status), _) => status.render(),
            (None, error) => format!(
                "Spool: {} (cannot be read: {})\n",
                self.spool_dir,
                error.as_deref().unwrap_or("?")
            ),
        }
    }
}
