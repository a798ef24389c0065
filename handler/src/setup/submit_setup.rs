//! `install`'s part for the spool of crashes shipped to the collector,
//! when the configuration has a `[submit]` section: the system user the
//! submitter runs as (`[submit] user`, `lttng-coredump` by default: no
//! login, no home) and the spool, root's with its states that user's
//! (the fleet crate's `Spool::create`, which also repairs owners and modes
//! when run again). The package's postinst does the same with the
//! defaults when there is no `[submit]` yet (`submit --prepare`,
//! [`prepare_for_package`]); `uninstall` undoes it
//! (`setup/submit_removal.rs`).

use crate::base::config::Config;
use anyhow::{anyhow, Context, Result};
use lttng_coredump_fleet::config::SubmitConfig;
use lttng_coredump_fleet::Spool;
use std::fmt::Write as _;
use std::path::Path;

/// The comment (GECOS) of the system user made here and by the package:
/// what tells `uninstall` and the package's purge that the user is theirs
/// to remove (a `[submit] user` that was already there is never removed).
pub const USER_COMMENT: &str = "lttng-coredump crash submitter";

/// Makes the submitter's user and the spool when `[submit]` is configured
/// in the file at `config` (the default file when `None`), and, with
/// `unit_dir` (the first systemd unit directory), the submitter unit's
/// drop-in for a spool that is not the default (`submit_unit`); says what
/// it did, nothing when there is nothing to do.
pub fn prepare(config: Option<&Path>, unit_dir: Option<&Path>) -> Result<String> {
    let loaded = Config::load(config);
    let unit = |spool: Option<&Path>| match unit_dir {
        None => String::new(),
        Some(dir) => crate::setup::submit_unit::sync(dir, spool).unwrap_or_else(|err| {
            format!(
                "note: the drop-in of {}: {err:#}\n",
                crate::setup::submit_unit::SUBMIT_UNIT
            )
        }),
    };
    let Some(submit) = loaded.config.submit else {
        return Ok(unit(None));
    };
    let mut report = prepare_submit(&submit)?;
    report.push_str(&unit(Some(&submit.spool_dir)));
    Ok(report)
}

/// The package's postinst (`submit --prepare`): the user and the spool of
/// `[submit]`, or the defaults (`lttng-coredump`,
/// `/var/spool/lttng-coredump`) when the configuration has none yet, so
/// that uncommenting `[submit]` is all it takes.
pub fn prepare_for_package(config: Option<&Path>) -> Result<String> {
    let loaded = Config::load(config);
    prepare_submit(&loaded.config.submit.unwrap_or_default())
}

fn prepare_submit(submit: &SubmitConfig) -> Result<String> {
    let mut report = String::new();
    let owner = match crate::service::submitter::user_ids(&submit.user) {
        Some(owner) => owner,
        None => {
            create_system_user(&submit.user)?;
            writeln!(report, "created the system user {} (no login)", submit.user).expect("String");
            crate::service::submitter::user_ids(&submit.user)
                .ok_or_else(|| anyhow!("useradd made no user {:?}", submit.user))?
        }
    };
    if owner.uid == 0 {
        return Err(anyhow!(
            "[submit] user {:?} is root: the submitter never runs as root",
            submit.user
        ));
    }
    let spool = Spool::create(&submit.spool_dir, owner)
        .with_context(|| format!("creating the spool {}", submit.spool_dir.display()))?;
    writeln!(
        report,
        "spool {} ready, its queue owned by {} (uid {}); send it with `lttng-coredump submit \
         --follow` (systemctl enable --now lttng-coredump-submit, or serve's own child)",
        spool.path().display(),
        submit.user,
        owner.uid
    )
    .expect("String");
    for (what, path) in [
        ("ca", &submit.tls.ca),
        ("client_cert", &submit.tls.client_cert),
        ("client_key", &submit.tls.client_key),
    ] {
        if let Some(path) = path {
            writeln!(
                report,
                "note: [submit] {what} {} must be readable by {}",
                path.display(),
                submit.user
            )
            .expect("String");
        }
    }
    Ok(report)
}

/// `useradd --system`: no home, no login shell, a group of its own.
fn create_system_user(name: &str) -> Result<()> {
    let nologin = ["/usr/sbin/nologin", "/sbin/nologin", "/bin/false"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("/bin/false");
    let mut command = std::process::Command::new("useradd");
    command
        .args(["--system", "--user-group", "--no-create-home"])
        .args(["--home-dir", "/nonexistent", "--shell", nologin])
        .args(["--comment", USER_COMMENT, "--"])
        .arg(name)
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    let output = command.stdin(std::process::Stdio::null()).output();
    match output {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(anyhow!(
            "useradd {name}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(err) => Err(anyhow!("useradd {name}: {err}")),
    }
}
