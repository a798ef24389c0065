//! Keeping a crash loop from filling the disk: cores per program and per
//! user per minute. A program is its executable path (a process renames
//! itself at will with `PR_SET_NAME`, not its executable), counted per
//! user, so that one user's loop never costs another user their cores.
//! The count and the reservation of a place are one step under the lock of
//! the core directory's ledger (see `ledger`), so the limits are exact
//! under a storm of simultaneous crashes. Past a limit, the crash still
//! gets its snapshots and its record, but no core file.

use crate::store::ledger::{self, CoreLimits, Ledger};
use std::os::fd::BorrowedFd;

/// Stands for a uid the kernel did not give.
const UNKNOWN_UID: u32 = u32::MAX;

/// Counts this crash's core against the limits and reserves its place
/// when they allow it. `Ok(None)`: keep the core; `Ok(Some(reason))`:
/// the limits say no; `Err`: the ledger could not be used (the core is
/// then kept: a core is never dropped for want of bookkeeping).
pub fn admit(
    dir: BorrowedFd<'_>,
    now: i64,
    uid: Option<u32>,
    program: &[u8],
    shown: &str,
    limits: CoreLimits,
) -> Result<Option<String>, String> {
    if limits.per_program == 0 && limits.per_user == 0 {
        return Ok(None);
    }
    let mut ledger = Ledger::lock(dir).map_err(|err| {
        format!("cannot use the core directory's ledger for the rate limits: {err}")
    })?;
    ledger::admit_core(
        &mut ledger,
        now,
        uid.unwrap_or(UNKNOWN_UID),
        program,
        shown,
        limits,
    )
    .map_err(|err| format!("cannot update the core directory's ledger: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::os::fd::AsFd;

    #[test]
    fn concurrent_admissions_never_exceed_the_limit() {
        let dir = std::env::temp_dir().join(format!("handler-ratelimit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let limits = CoreLimits {
            per_program: 10,
            per_user: 0,
        };
        let admitted: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..20)
                .map(|_| {
                    let dir = &dir;
                    scope.spawn(move || {
                        // Each its own open file, as separate handlers.
                        let fd = File::open(dir).unwrap();
                        let verdict =
                            admit(fd.as_fd(), 1000, Some(7), b"/bin/x", "x", limits).unwrap();
                        usize::from(verdict.is_none())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(admitted, 10);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
