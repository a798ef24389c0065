//! What `lttng-coredump status` shows of the spool: the queue (how many
//! crashes, how many bytes, the oldest unsent one and what it waits for),
//! each destination's last error and next attempt, and what a full spool
//! dropped.

use crate::spool::{self, DropRecord, Spool, SpoolError};
use crate::submit::{read_state, DestinationState};
use serde::Serialize;
use std::fmt::Write as _;

/// How many of the latest drops the status lists.
const RECENT_DROPS: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    pub spool: String,
    pub queued: usize,
    pub queued_bytes: u64,
    pub sent_kept: usize,
    pub sent_bytes: u64,
    /// Items being written, or left by a handler that died.
    pub incoming: usize,
    pub oldest_unsent: Option<UnsentCrash>,
    pub destinations: Vec<DestinationStatus>,
    pub drops_total: usize,
    pub recent_drops: Vec<DropRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnsentCrash {
    pub crash_id: String,
    pub enqueued_us: u64,
    /// The configured destinations that have not acknowledged it.
    pub waiting_for: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DestinationStatus {
    #[serde(flatten)]
    pub state: DestinationState,
    /// Queued crashes it has not acknowledged.
    pub pending: usize,
}

/// The status of `spool` for the destinations configured (by name:
/// `journal-remote`, `webhook`).
pub fn status(spool: &Spool, destinations: &[&str]) -> Result<Status, SpoolError> {
    let queued = spool.queued()?;
    let queue_dir = spool.path().join(spool::QUEUE);
    let done = |item: &str, dest: &str| queue_dir.join(item).join(format!("done.{dest}")).exists();
    let oldest_unsent = queued.first().map(|item| UnsentCrash {
        crash_id: spool::crash_id_of(item),
        enqueued_us: item
            .split('-')
            .next()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0),
        waiting_for: destinations
            .iter()
            .filter(|d| !done(item, d))
            .map(|d| d.to_string())
            .collect(),
    });
    let state_dir = spool.state_dir()?;
    let destinations = destinations
        .iter()
        .map(|name| DestinationStatus {
            state: read_state(&state_dir, name).unwrap_or_else(|| DestinationState {
                name: name.to_string(),
                ..Default::default()
            }),
            pending: queued.iter().filter(|item| !done(item, name)).count(),
        })
        .collect();
    let (queued_bytes, sent_bytes) = spool.bytes()?;
    let drops = spool.drops();
    Ok(Status {
        spool: spool.path().display().to_string(),
        queued: queued.len(),
        queued_bytes,
        sent_kept: spool.sent()?.len(),
        sent_bytes,
        incoming: spool.incoming()?.len(),
        oldest_unsent,
        destinations,
        drops_total: drops.len(),
        recent_drops: drops[drops.len().saturating_sub(RECENT_DROPS)..].to_vec(),
    })
}

fn when(us: u64, now_us: u64) -> String {
    let ago = now_us.saturating_sub(us) / 1_000_000;
    format!("{ago} s ago")
}

impl Status {
    /// The status as a person reads it.
    pub fn render(&self) -> String {
        let now = spool::now_us();
        let mut out = String::new();
        let _ = writeln!(out, "Spool: {}", self.spool);
        let _ = writeln!(
            out,
            "  queued: {} crashes ({} bytes); sent (kept): {}",
            self.queued, self.queued_bytes, self.sent_kept
        );
        if let Some(oldest) = &self.oldest_unsent {
            let _ = writeln!(
                out,
                "  oldest unsent: {} (queued {}), waiting for {}",
                oldest.crash_id,
                when(oldest.enqueued_us, now),
                if oldest.waiting_for.is_empty() {
                    "nothing".to_string()
                } else {
                    oldest.waiting_for.join(", ")
                }
            );
        }
        if self.incoming > 0 {
            let _ = writeln!(out, "  being written: {}", self.incoming);
        }
        for dest in &self.destinations {
            let state = &dest.state;
            let health = match state.consecutive_failures {
                0 if state.last_success_us.is_some() => "ok".to_string(),
                0 => "not tried yet".to_string(),
                n => format!("FAILING ({n} attempts in a row)"),
            };
            let _ = writeln!(
                out,
                "  {} {}: {health}; {} pending, {} delivered",
                state.name, state.target, dest.pending, state.delivered
            );
            if let Some(error) = &state.last_error {
                let _ = writeln!(
                    out,
                    "    last error ({}): {}",
                    when(error.time_us, now),
                    error.message
                );
            }
            if let Some(next) = state.next_attempt_us {
                let _ = writeln!(
                    out,
                    "    next attempt in {} s",
                    next.saturating_sub(now) / 1_000_000
                );
            }
        }
        if self.drops_total > 0 {
            let _ = writeln!(out, "  dropped from the full spool: {}", self.drops_total);
            for drop in &self.recent_drops {
                let _ = writeln!(
                    out,
                    "    {} of crash {} ({} bytes, {}): {}",
                    drop.what,
                    drop.crash_id,
                    drop.bytes,
                    when(drop.time_us, now),
                    drop.reason
                );
            }
        }
        out
    }
}
