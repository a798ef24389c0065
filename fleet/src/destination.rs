//! The destinations a spool item is delivered to, each acknowledging in its
//! own way:
//! - **systemd-journal-remote**: the entries, in the journal export format,
//!   POSTed to `/upload` (`Content-Type: application/vnd.fdo.journal`), as
//!   systemd-journal-upload does. journal-remote answers `202 Accepted`
//!   only once it has read the whole body and written every entry of it to
//!   its journal file; on a malformed or too large entry it drops the
//!   connection without an answer. So 2xx (journal-upload's own test) is
//!   the acknowledgement of every entry of the POST, and anything else
//!   acknowledges none: they are sent again, and any that were written
//!   before the failure arrive twice (readers count them once by crash
//!   ID). journal-remote ignores an entry it finds invalid and still
//!   answers 202: the entry is built so that it is valid (checked field
//!   names, the timestamps and boot ID it requires).
//! - **a webhook**: the crash as JSON (no core), one POST a crash, with an
//!   `Idempotency-Key` header holding the crash ID; 2xx acknowledges it.

use crate::entry;
use crate::http::{Client, Failure, FailureKind, TlsFiles};
use crate::spool::LoadedItem;
use std::time::Duration;

/// A destination of the spool's items.
pub trait Destination {
    /// Its name in the spool (`done.NAME`) and in `status`.
    fn name(&self) -> &'static str;
    /// Where it sends (a URL), for `status`.
    fn target(&self) -> &str;
    /// The most items one delivery takes.
    fn max_batch(&self) -> usize;
    /// Whether it sends the report (else the report is not read).
    fn sends_report(&self) -> bool {
        false
    }
    /// Delivers `items` in order. On failure, says how many of the first
    /// items were acknowledged before it.
    fn deliver(&mut self, items: &mut [LoadedItem]) -> Result<(), (usize, Failure)>;
}

/// systemd-journal-remote's `/upload`.
pub struct JournalRemote {
    url: String,
    client: Result<Client, Failure>,
    core_max: u64,
    max_body: usize,
}

/// The media type of the journal export format.
pub const JOURNAL_CONTENT_TYPE: &str = "application/vnd.fdo.journal";

impl JournalRemote {
    /// `url` is journal-remote's (`https://collector:19532`); `/upload` is
    /// added unless it ends with it. A client that cannot be built (an
    /// unreadable CA) is kept as the failure every delivery reports.
    pub fn new(url: &str, tls: &TlsFiles, timeout: Duration, core_max: u64) -> JournalRemote {
        JournalRemote {
            url: upload_url(url),
            client: Client::new(tls, timeout),
            core_max,
            max_body: 32 << 20,
        }
    }
}

/// journal-remote's upload URL for a configured base URL.
pub fn upload_url(url: &str) -> String {
    let trimmed = url.trim_end_matches('/');
    if trimmed.ends_with("/upload") {
        trimmed.to_owned()
    } else {
        format!("{trimmed}/upload")
    }
}

impl Destination for JournalRemote {
    fn name(&self) -> &'static str {
        "journal-remote"
    }

    fn target(&self) -> &str {
        &self.url
    }

    fn max_batch(&self) -> usize {
        64
    }

    fn deliver(&mut self, items: &mut [LoadedItem]) -> Result<(), (usize, Failure)> {
        let client = self.client.as_ref().map_err(|f| (0, f.clone()))?;
        let mut acknowledged = 0;
        let mut body = Vec::new();
        let mut in_body = 0;
        for item in items.iter_mut() {
            let bytes = entry::journal_entry(item, self.core_max).map_err(|e| {
                (
                    acknowledged,
                    Failure::new(
                        FailureKind::Other,
                        format!("building the entry of crash {}: {e}", item.meta.crash_id),
                    ),
                )
            })?;
            if in_body > 0 && body.len() + bytes.len() > self.max_body {
                client
                    .post(&self.url, JOURNAL_CONTENT_TYPE, &[], &body)
                    .map_err(|f| (acknowledged, f))?;
                acknowledged += in_body;
                body.clear();
                in_body = 0;
            }
            body.extend_from_slice(&bytes);
            in_body += 1;
        }
        if in_body > 0 {
            client
                .post(&self.url, JOURNAL_CONTENT_TYPE, &[], &body)
                .map_err(|f| (acknowledged, f))?;
        }
        Ok(())
    }
}

/// A webhook: the crash as JSON.
pub struct Webhook {
    url: String,
    client: Result<Client, Failure>,
}

impl Webhook {
    pub fn new(url: &str, tls: &TlsFiles, timeout: Duration) -> Webhook {
        Webhook {
            url: url.to_owned(),
            client: Client::new(tls, timeout),
        }
    }
}

impl Destination for Webhook {
    fn name(&self) -> &'static str {
        "webhook"
    }

    fn target(&self) -> &str {
        &self.url
    }

    fn max_batch(&self) -> usize {
        16
    }

    fn sends_report(&self) -> bool {
        true
    }

    fn deliver(&mut self, items: &mut [LoadedItem]) -> Result<(), (usize, Failure)> {
        let client = self.client.as_ref().map_err(|f| (0, f.clone()))?;
        for (i, item) in items.iter().enumerate() {
            let body = serde_json::to_vec(&entry::webhook_json(item)).expect("JSON serializes");
            client
                .post(
                    &self.url,
                    "application/json",
                    &[
                        ("Idempotency-Key", &item.meta.crash_id),
                        ("X-Lttng-Coredump-Crash-Id", &item.meta.crash_id),
                    ],
                    &body,
                )
                .map_err(|f| (i, f))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upload_path_is_added_once() {
        assert_eq!(upload_url("https://c:19532"), "https://c:19532/upload");
        assert_eq!(upload_url("https://c:19532/"), "https://c:19532/upload");
        assert_eq!(upload_url("http://c/upload"), "http://c/upload");
    }
}
