//! Whether the crashing user may read the core (and their copy of the
//! record): only when the process was the user's own in every respect.
//!
//! The kernel's `%d` = 1 says the process was dumpable, but a set-uid-root
//! program that calls `prctl(PR_SET_DUMPABLE, 1)` is dumped with `%d` = 1
//! and `%u` its caller while its memory holds what it read as root. So the
//! handler grants access only when, besides `%d` = 1 and a non-root `%u`:
//! the process's real, effective, saved and file-system uids all are `%u`
//! and its gids all are `%g` (from `/proc/PID/status`, read while the
//! kernel held it and verified by its pidfd), and `AT_SECURE` was 0 in its
//! auxiliary vector (it was not started with more privileges than its
//! caller, whatever it did with them since). systemd-coredump checks the
//! same before it hands a core to its user.
//!
//! And the kernel's own rule for letting one process read another's memory
//! (`ptrace_may_access`): the target's permitted capabilities must be a
//! subset of the caller's. An unprivileged user has none, so a process of
//! theirs that holds any (a service run with `User=` and
//! `AmbientCapabilities=`: `AT_SECURE` 0, every id the user's, dumpable)
//! keeps its core root-only: it may hold what only those capabilities
//! could read.

use crate::crash::context::CrashContext;
use crate::crash::procinfo::Gathered;
use crate::store::record::Identity;

/// Who besides root may read the core: `Ok(uid)`, or why nobody may.
pub fn reader_of_core(context: &CrashContext, gathered: &Gathered) -> Result<u32, String> {
    let uid = context.uid.ok_or("the kernel gave no uid (%u)")?;
    let gid = context.gid.ok_or("the kernel gave no gid (%g)")?;
    match context.dump_mode {
        Some(1) => {}
        Some(mode) => return Err(format!("the dump mode (%d) is {mode}, not 1")),
        None => return Err("the kernel gave no dump mode (%d)".into()),
    }
    if uid == 0 {
        return Err("the process is root's".into());
    }
    if let Identity::CouldNotTell(reason) = &gathered.identity {
        return Err(format!("the process's ids could not be read: {reason}"));
    }
    let info = &gathered.info;
    match info.at_secure {
        Some(false) => {}
        Some(true) => {
            return Err(
                "AT_SECURE is set in its auxiliary vector (started set-uid, set-gid or with \
                 file capabilities)"
                    .into(),
            )
        }
        None => return Err("AT_SECURE could not be read from its auxiliary vector".into()),
    }
    match info.uids {
        Some(uids) if uids.iter().all(|&id| id == uid) => {}
        Some(uids) => {
            return Err(format!(
                "its uids (real, effective, saved, fs) {uids:?} are not all {uid}"
            ))
        }
        None => return Err("its uids could not be read".into()),
    }
    match info.gids {
        Some(gids) if gids.iter().all(|&id| id == gid) => {}
        Some(gids) => {
            return Err(format!(
                "its gids (real, effective, saved, fs) {gids:?} are not all {gid}"
            ))
        }
        None => return Err("its gids could not be read".into()),
    }
    match info.caps {
        Some(caps) if caps.permitted == 0 && caps.effective == 0 && caps.ambient == 0 => {}
        Some(caps) => {
            return Err(format!(
                "it holds capabilities its user does not have (permitted {:#x}, effective {:#x},                  ambient {:#x}): the kernel would not let that user read its memory either",
                caps.permitted, caps.effective, caps.ambient
            ))
        }
        None => return Err("its capabilities could not be read".into()),
    }
    Ok(uid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crash::procinfo::{Capabilities, ProcessInfo};

    fn crash(uids: [u32; 4], gids: [u32; 4], at_secure: bool) -> (CrashContext, Gathered) {
        let args = CrashContext {
            uid: Some(1000),
            gid: Some(100),
            dump_mode: Some(1),
            ..CrashContext::default()
        };
        let gathered = Gathered {
            info: ProcessInfo {
                uids: Some(uids),
                gids: Some(gids),
                at_secure: Some(at_secure),
                caps: Some(Capabilities::default()),
                ..ProcessInfo::default()
            },
            identity: Identity::VerifiedByPidfd,
            errors: vec![],
        };
        (args, gathered)
    }

    #[test]
    fn only_a_process_that_was_the_users_own_in_every_respect() {
        let (args, gathered) = crash([1000; 4], [100; 4], false);
        assert_eq!(reader_of_core(&args, &gathered), Ok(1000));

        let (args, gathered) = crash([1000, 0, 0, 0], [100; 4], false);
        assert!(reader_of_core(&args, &gathered)
            .unwrap_err()
            .contains("uids"));
        let (args, gathered) = crash([1000, 1000, 0, 1000], [100; 4], false);
        assert!(reader_of_core(&args, &gathered).is_err());
        let (args, gathered) = crash([1000; 4], [100, 0, 100, 100], false);
        assert!(reader_of_core(&args, &gathered)
            .unwrap_err()
            .contains("gids"));
        // Dropped every privilege for good, but started set-uid.
        let (args, gathered) = crash([1000; 4], [100; 4], true);
        assert!(reader_of_core(&args, &gathered)
            .unwrap_err()
            .contains("AT_SECURE"));

        let (mut args, gathered) = crash([1000; 4], [100; 4], false);
        args.dump_mode = Some(2);
        assert!(reader_of_core(&args, &gathered).is_err());
        args.dump_mode = None;
        assert!(reader_of_core(&args, &gathered).is_err());
        let (args, mut gathered) = crash([1000; 4], [100; 4], false);
        gathered.identity = Identity::CouldNotTell("gone".into());
        gathered.info = ProcessInfo::default();
        assert!(reader_of_core(&args, &gathered).is_err());
        let (args, mut gathered) = crash([1000; 4], [100; 4], false);
        gathered.info.at_secure = None;
        assert!(reader_of_core(&args, &gathered).is_err());
        // A process of the user's uid holding capabilities (ambient ones:
        // AT_SECURE 0, every id the user's): the kernel's ptrace rule.
        for caps in [
            Capabilities {
                permitted: 1 << 13,
                effective: 1 << 13,
                ambient: 1 << 13,
            },
            Capabilities {
                permitted: 1 << 13,
                ..Capabilities::default()
            },
        ] {
            let (args, mut gathered) = crash([1000; 4], [100; 4], false);
            gathered.info.caps = Some(caps);
            assert!(reader_of_core(&args, &gathered)
                .unwrap_err()
                .contains("capabilities"));
        }
        let (args, mut gathered) = crash([1000; 4], [100; 4], false);
        gathered.info.caps = None;
        assert!(reader_of_core(&args, &gathered).is_err());
        let (mut args, gathered) = crash([0; 4], [0; 4], false);
        args.uid = Some(0);
        args.gid = Some(0);
        assert!(reader_of_core(&args, &gathered).is_err());
    }
}
