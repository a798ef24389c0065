//! The submitter unit's spool (`lttng-coredump-submit.service`): the unit
//! the package ships names the default spool, `/var/spool/lttng-coredump`,
//! in its sandbox (`ReadWritePaths=`, under `ProtectSystem=strict`) and in
//! its condition. When `[submit] spool_dir` is another directory,
//! `install` writes a drop-in in the first unit directory
//! (`/etc/systemd/system/lttng-coredump-submit.service.d/spool-dir.conf`)
//! that puts that directory in both instead; when it is the default again,
//! or `[submit]` is gone, `install` removes the drop-in it wrote. A spool
//! path a unit file cannot name plainly (a space, a quote, a backslash,
//! `%`, a control character) gets no drop-in: `install` says to edit the
//! unit by hand.

use anyhow::Context as _;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The submitter's unit.
pub const SUBMIT_UNIT: &str = "lttng-coredump-submit.service";
/// The drop-in's name in the unit's `.d` directory.
pub const DROP_IN: &str = "spool-dir.conf";
/// Its first line: a drop-in without it is the administrator's, never
/// replaced or removed.
const MARK: &str = "# Written by `lttng-coredump install`";

/// Where the drop-in goes under `unit_dir`.
pub fn drop_in_path(unit_dir: &Path) -> PathBuf {
    unit_dir.join(format!("{SUBMIT_UNIT}.d")).join(DROP_IN)
}

/// The drop-in for `spool`, or why a unit file cannot name it.
fn drop_in_text(spool: &Path) -> Result<String, String> {
    let text = spool
        .to_str()
        .ok_or_else(|| "the path is not UTF-8".to_owned())?;
    if !text.starts_with('/') {
        return Err("the path is not absolute".into());
    }
    if let Some(c) = text
        .chars()
        .find(|&c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '\\' | '%'))
    {
        return Err(format!("the path holds {c:?}"));
    }
    Ok(format!(
        "{MARK}: [submit] spool_dir is {text},\n\
         # not the default the unit names. `install` rewrites or removes this file.\n\
         [Unit]\n\
         ConditionPathIsDirectory=\n\
         ConditionPathIsDirectory={text}/queue\n\
         \n\
         [Service]\n\
         ReadWritePaths=\n\
         ReadWritePaths={text}\n"
    ))
}

/// Writes, rewrites or removes the drop-in under `unit_dir` for the spool
/// `spool` (`None`: no `[submit]`); says what it did, nothing when there
/// was nothing to do.
pub fn sync(unit_dir: &Path, spool: Option<&Path>) -> anyhow::Result<String> {
    let path = drop_in_path(unit_dir);
    let existing = std::fs::read_to_string(&path).ok();
    let ours = existing.as_deref().is_some_and(|t| t.starts_with(MARK));
    let mut report = String::new();
    let wanted = spool.filter(|s| *s != Path::new(lttng_coredump_fleet::config::DEFAULT_SPOOL_DIR));
    let Some(spool) = wanted else {
        if ours {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
            if let Some(dir) = path.parent() {
                // Only when empty: the administrator's drop-ins stay.
                let _ = std::fs::remove_dir(dir);
            }
            writeln!(
                report,
                "removed {} (the spool is the unit's own again; systemctl daemon-reload)",
                path.display()
            )
            .expect("String");
        }
        return Ok(report);
    };
    let text = match drop_in_text(spool) {
        Ok(text) => text,
        Err(why) => {
            writeln!(
                report,
                "note: {SUBMIT_UNIT} names /var/spool/lttng-coredump; no drop-in for [submit] \
                 spool_dir {} ({why}): put it in the unit's ReadWritePaths= and \
                 ConditionPathIsDirectory= by hand",
                spool.display()
            )
            .expect("String");
            return Ok(report);
        }
    };
    if existing.as_deref() == Some(text.as_str()) {
        return Ok(report);
    }
    if existing.is_some() && !ours {
        writeln!(
            report,
            "note: {} is not install's: left as it is; it must let {SUBMIT_UNIT} write {}",
            path.display(),
            spool.display()
        )
        .expect("String");
        return Ok(report);
    }
    let dir = path.parent().expect("a drop-in has a directory");
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let temporary = dir.join(format!(".{DROP_IN}.tmp"));
    std::fs::write(&temporary, &text)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, &path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    writeln!(
        report,
        "wrote {}: {SUBMIT_UNIT} writes the spool {} (systemctl daemon-reload)",
        path.display(),
        spool.display()
    )
    .expect("String");
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("submit-unit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn another_spool_gets_a_drop_in_naming_it_and_the_default_spool_removes_it() {
        let dir = unit_dir("sync");
        let path = drop_in_path(&dir);
        // The default spool: the unit's own, no drop-in.
        assert_eq!(
            sync(&dir, Some(Path::new("/var/spool/lttng-coredump"))).unwrap(),
            ""
        );
        assert!(!path.exists());
        // Another: the sandbox and the condition name it, the unit's own
        // values reset first.
        let said = sync(&dir, Some(Path::new("/srv/crash-spool"))).unwrap();
        assert!(said.contains("wrote"), "{said}");
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            lines,
            [
                "[Unit]",
                "ConditionPathIsDirectory=",
                "ConditionPathIsDirectory=/srv/crash-spool/queue",
                "",
                "[Service]",
                "ReadWritePaths=",
                "ReadWritePaths=/srv/crash-spool",
            ]
        );
        // Again: nothing to do.
        assert_eq!(sync(&dir, Some(Path::new("/srv/crash-spool"))).unwrap(), "");
        // Changed, then back to the default (or no [submit]): rewritten,
        // then removed with its directory.
        sync(&dir, Some(Path::new("/srv/other"))).unwrap();
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .contains("ReadWritePaths=/srv/other\n"));
        let said = sync(&dir, None).unwrap();
        assert!(said.contains("removed"), "{said}");
        assert!(!path.parent().unwrap().exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_administrators_drop_in_and_a_path_a_unit_cannot_name_are_left_alone() {
        let dir = unit_dir("alone");
        let path = drop_in_path(&dir);
        let said = sync(&dir, Some(Path::new("/srv/a spool"))).unwrap();
        assert!(said.contains("by hand"), "{said}");
        assert!(!path.exists());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "[Service]\nReadWritePaths=/srv\n").unwrap();
        let said = sync(&dir, Some(Path::new("/srv/crash-spool"))).unwrap();
        assert!(said.contains("not install's"), "{said}");
        assert_eq!(sync(&dir, None).unwrap(), "");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "[Service]\nReadWritePaths=/srv\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
