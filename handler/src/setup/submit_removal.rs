//! `uninstall`'s part for the spool of crashes shipped to the collector:
//! what `install` made for `[submit]` (`setup/submit_setup.rs`) goes, as
//! far as nothing is lost by it.
//!
//! - **The spool** (`[submit] spool_dir`) is removed when no crash in it
//!   waits for a destination. With crashes still queued it stays, and so
//!   does its user, and the report says how many and how to send them
//!   (`lttng-coredump submit`, then `uninstall` again). Only a directory
//!   that is a spool is removed (root's, not a link, with `queue/` and
//!   `incoming/`); a wrong `spool_dir` (`/var`) is refused, not emptied.
//!   Its files are removed without following any link in it (std's
//!   `remove_dir_all`): the submitter's user owns parts of it.
//! - **The user** (`[submit] user`) is removed (`userdel`) once the spool
//!   is gone, and only when it is the system user `install` or the package
//!   made (its comment is [`USER_COMMENT`]): a user that was there before is
//!   never touched. One still running a process (a submitter) stays, said.
//! - **The crashes** themselves, their cores and records in the core
//!   directory, always stay (the spool only held copies of them to send);
//!   purging the package removes the default core directory.
//!
//! The package's prerm (`uninstall --removing`, the package removed but
//! not purged) keeps all of this, as it keeps the configuration; its
//! postrm removes it on purge, the same way, in shell (the binary is gone
//! by then).

use super::submit_setup::USER_COMMENT;
use crate::base::config::Config;
use anyhow::Result;
use lttng_coredump_fleet::config::SubmitConfig;
use std::fmt::Write as _;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// What `uninstall` does for `[submit]` in the configuration at `config`
/// (the default file when `None`); a report for a person, empty when
/// there is no `[submit]`.
pub fn remove(config: Option<&Path>) -> Result<String> {
    let loaded = Config::load(config);
    let Some(submit) = &loaded.config.submit else {
        return Ok(String::new());
    };
    Ok(remove_submit(submit, &loaded.config.core_dir))
}

/// The passwd entry of `name`: (uid, comment).
fn passwd_entry(name: &str) -> Option<(u32, String)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() >= 5 && fields[0] == name)
            .then(|| Some((fields[2].parse().ok()?, fields[4].to_owned())))?
    })
}

fn remove_submit(submit: &SubmitConfig, core_dir: &Path) -> String {
    let mut report = String::new();
    let spool = &submit.spool_dir;
    let spool_gone = match remove_spool(spool) {
        Ok(said) => {
            report.push_str(&said.0);
            said.1
        }
        Err(why) => {
            writeln!(report, "the spool {} stays: {why}", spool.display()).expect("String");
            false
        }
    };
    if spool_gone {
        report.push_str(&remove_user(&submit.user));
    } else if passwd_entry(&submit.user).is_some() {
        writeln!(
            report,
            "the user {} stays with its spool",
            crate::base::human::escape(&submit.user)
        )
        .expect("String");
    }
    writeln!(
        report,
        "the crashes' cores and records stay in {} (purging the package removes \
         /var/lib/lttng-coredump/cores)",
        core_dir.display()
    )
    .expect("String");
    report
}

/// Removes the spool when nothing in it waits to be sent: (what was
/// done, whether it is gone).
fn remove_spool(spool: &Path) -> Result<(String, bool), String> {
    let meta = match std::fs::symlink_metadata(spool) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((format!("no spool at {}\n", spool.display()), true))
        }
        Err(e) => return Err(e.to_string()),
    };
    if !meta.is_dir() || meta.uid() != 0 {
        return Err("not a directory of root's (a link, or someone else's)".into());
    }
    let is_dir = |name: &str| std::fs::symlink_metadata(spool.join(name)).is_ok_and(|m| m.is_dir());
    if !is_dir("queue") || !is_dir("incoming") {
        return Err("not a spool (no queue/ and incoming/ in it)".into());
    }
    let queued = std::fs::read_dir(spool.join("queue"))
        .map_err(|e| format!("its queue cannot be read: {e}"))?
        .count();
    if queued > 0 {
        return Ok((
            format!(
                "the spool {} stays: {queued} crash{} not yet sent to the collector (`lttng-coredump \
                 submit` sends them; then uninstall again, or remove it by hand)\n",
                spool.display(),
                if queued == 1 { "" } else { "es" }
            ),
            false,
        ));
    }
    std::fs::remove_dir_all(spool).map_err(|e| format!("cannot remove it: {e}"))?;
    Ok((
        format!(
            "removed the spool {} (no crash was waiting to be sent)\n",
            spool.display()
        ),
        true,
    ))
}

/// Removes the submitter's user when it is the one install made.
fn remove_user(name: &str) -> String {
    let shown = crate::base::human::escape(name);
    let Some((uid, comment)) = passwd_entry(name) else {
        return String::new();
    };
    if comment != USER_COMMENT || uid == 0 || uid >= 1000 {
        return format!(
            "the user {shown} stays: lttng-coredump did not make it (its comment is not \
             {USER_COMMENT:?})\n"
        );
    }
    let out = std::process::Command::new("userdel")
        .arg("--")
        .arg(name)
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(std::process::Stdio::null())
        .output();
    match out {
        Ok(out) if out.status.success() => format!("removed the system user {shown}\n"),
        Ok(out) => format!(
            "the user {shown} stays: userdel: {} (a submitter still running? stop it, then \
             userdel {shown})\n",
            crate::base::human::escape(String::from_utf8_lossy(&out.stderr).trim())
        ),
        Err(err) => format!("the user {shown} stays: userdel: {err}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_not_a_spool_is_never_removed() {
        let dir = std::env::temp_dir().join(format!("lcd-spool-rm-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let err = remove_spool(&dir).unwrap_err();
        assert!(
            err.contains("not a spool") || err.contains("root's"),
            "{err}"
        );
        assert!(dir.join("data").is_dir());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
