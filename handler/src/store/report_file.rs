//! The crash's report as a file of its own beside its record: the record
//! `STEM.json` names `STEM.report.json` (root's, as the record), and the
//! crashing user's copy `STEM.user.json`, when there is one, names
//! `STEM.report.user.json` (readable by that user, as their copy).
//!
//! Why a file: a report of every thread of a process with many threads is
//! megabytes of JSON; embedded in the record, every `list`, `problems` and
//! `status` parsed all of it for the one line they print. The record keeps
//! what those need (whether it was analyzed, why not, as whom, the
//! signature, the title, the counts); `info` and `info --json` read the
//! file ([`load`]). Records written before the file (the report embedded
//! in their `report` section) are read as they are.
//!
//! Written by `CrashRecord::write_within` (`store/record.rs`) under the same
//! space lock as the record, with the same safety: an unnamed file made in
//! the trusted core directory (`base/safefile.rs`), linked without
//! replacing anything, root-only (the user's copy: a read ACL for the
//! crashing user only), marked as the crash's owner's; counted with its
//! crash by `space::crash_stem`, so that making room and retention remove it
//! with the core and the record.

use crate::store::record::ReportSection;
use lttng_coredump_report::Report;
use std::path::Path;

/// Root's report file of the record `STEM.json`: `STEM.report.json`.
const ROOT_SUFFIX: &str = ".report.json";
/// The user's copy: `STEM.report.user.json`, or `STEM.report.user.N.json`.
const USER_INFIX: &str = ".report.user.";

/// The largest report file read (the analysis child answers at most 4 MiB
/// by default, pretty-printed here).
pub const MAX_REPORT_BYTES: u64 = 64 * 1024 * 1024;

/// The report file's name beside the record named `record` (`STEM.json`).
pub fn root_name(record: &str) -> String {
    format!(
        "{}{ROOT_SUFFIX}",
        record.strip_suffix(".json").unwrap_or(record)
    )
}

/// The user's copy's name beside root's record named `record`, the `n`th
/// candidate.
pub fn user_name(record: &str, n: u32) -> String {
    let stem = record.strip_suffix(".json").unwrap_or(record);
    if n == 0 {
        format!("{stem}{USER_INFIX}json")
    } else {
        format!("{stem}{USER_INFIX}{n}.json")
    }
}

/// The record's stem a report file belongs to (`STEM.report.json`,
/// `STEM.report.user[.N].json` → `STEM`); `None` for any other name.
pub fn stem_of(name: &[u8]) -> Option<&[u8]> {
    if let Some(stem) = name.strip_suffix(ROOT_SUFFIX.as_bytes()) {
        return Some(stem);
    }
    let rest = name.strip_suffix(b".json")?;
    let at = rest
        .windows(USER_INFIX.len() - 1)
        .rposition(|w| w == &USER_INFIX.as_bytes()[..USER_INFIX.len() - 1])?;
    let tail = &rest[at + USER_INFIX.len() - 1..];
    let numbered =
        tail.first() == Some(&b'.') && tail.len() > 1 && tail[1..].iter().all(u8::is_ascii_digit);
    (tail.is_empty() || numbered).then(|| &name[..at])
}

/// Whether a file of the core directory is a report file (not a record).
pub fn is_report_name(name: &str) -> bool {
    stem_of(name.as_bytes()).is_some()
}

/// The report as its file holds it.
pub fn to_json(report: &Report) -> Vec<u8> {
    let mut json = serde_json::to_vec_pretty(report).expect("a report serializes");
    json.push(b'\n');
    json
}

/// The report of the record at `record_path` whose section is `section`:
/// the embedded one (records from before the file), else its file's
/// (beside the record, with the caller's rights). `Ok(None)` when it has
/// none, or the caller may not read it.
pub fn load(record_path: &Path, section: &ReportSection) -> Result<Option<Report>, String> {
    if let Some(report) = &section.report {
        return Ok(Some(report.clone()));
    }
    let Some(file) = &section.file else {
        return Ok(None);
    };
    // The record names a file beside itself, nothing else.
    if file.contains('/') || !is_report_name(file) {
        return Err(format!(
            "the record names {file:?} as its report: not a report file beside it"
        ));
    }
    let path = record_path.with_file_name(file);
    let Some(bytes) =
        crate::store::record_read::read_regular_file(&path, MAX_REPORT_BYTES, "the report")?
    else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|err| format!("the report {file} cannot be read: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::crashes::Crash;

    /// `record` written into `dir` by `write_within` as the crash `stem` of
    /// uid 1000, with that user's copy, no limit on room.
    fn write_analyzed(
        record: &crate::store::record::CrashRecord,
        dir: &Path,
        stem: &str,
    ) -> crate::store::record::Written {
        let dirfd = std::fs::File::open(dir).unwrap();
        let policy = crate::store::space::SpacePolicy {
            max_dir_size: u64::MAX,
            min_free: 0,
        };
        record
            .write_within(
                std::os::fd::AsFd::as_fd(&dirfd),
                policy,
                Some(1000),
                Some(1000),
                |n| record_name(stem, n),
            )
            .unwrap()
    }

    /// The `n`th name the record of crash `stem` may take.
    fn record_name(stem: &str, n: u32) -> String {
        if n == 0 {
            format!("{stem}.json")
        } else {
            format!("{stem}.{n}.json")
        }
    }

    /// A new directory `name` under the temporary one, the report sample,
    /// and an analyzed record holding it.
    fn analyzed(
        name: &str,
    ) -> (
        std::path::PathBuf,
        Report,
        crate::store::record::CrashRecord,
    ) {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let report = crate::store::record_read::tests::report_sample();
        let mut record = crate::store::record::tests::sample();
        record.report.analyzed = true;
        record.report.signature = Some("5f".repeat(16));
        record.report.report = Some(report.clone());
        (dir, report, record)
    }

    /// The JSON file `name` of `dir`.
    fn json_in(dir: &Path, name: &str) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join(name)).unwrap()).unwrap()
    }

    #[test]
    fn the_report_is_a_file_beside_the_record_which_names_it_and_info_reads_it() {
        let (dir, report, record) = analyzed("handler-report-file");
        let stem = "core.x.42.1700000000";
        let written = write_analyzed(&record, &dir, stem);
        assert!(written.errors.is_empty(), "{:?}", written.errors);
        assert_eq!(written.name, format!("{stem}.json"));
        assert_eq!(written.report, Some(format!("{stem}.report.json")));

        // Root's record names root's report file and holds no report.
        let json = |name: &str| json_in(&dir, name);
        let root = json(&written.name);
        assert_eq!(root["report"]["file"], format!("{stem}.report.json"));
        assert!(root["report"].get("report").is_none(), "{root:#}");
        assert_eq!(root["report"]["signature"], "5f".repeat(16));
        // As private as the record; the user's copy names the user's file.
        let open = |name: &str| std::fs::File::open(dir.join(name)).unwrap();
        let readers = |name: &str| crate::base::acl::users_with_read(open(name)).unwrap();
        assert!(readers(&format!("{stem}.report.json")).is_empty());
        let copy = json(&format!("{stem}.user.json"));
        assert_eq!(copy["report"]["file"], format!("{stem}.report.user.json"));
        assert!(copy["report"].get("report").is_none(), "{copy:#}");
        assert_eq!(readers(&format!("{stem}.report.user.json")), [1000]);

        // info reads it back, from root's record and from the copy.
        for name in [written.name.clone(), format!("{stem}.user.json")] {
            let mut crash = Crash::read(&dir.join(&name)).unwrap().unwrap();
            assert_eq!(crash.record.report().report, None);
            crash.load_report();
            assert_eq!(
                crash.record.report().report.as_ref(),
                Some(&report),
                "{name}"
            );
        }
        // list does not take them for crashes; they go with their crash.
        let (crashes, skipped) = crate::store::crashes::Store::at(&dir).crashes().unwrap();
        assert_eq!((crashes.len(), skipped.len()), (1, 0), "{skipped:?}");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name();
            assert_eq!(
                crate::store::space::crash_stem(name.as_encoded_bytes()),
                Some(stem.as_bytes()),
                "{name:?}"
            );
        }
        // An older record, the report embedded: read as it is.
        let mut old = crate::store::record::ReportSection {
            report: Some(report.clone()),
            ..Default::default()
        };
        assert_eq!(load(&dir.join("none.json"), &old).unwrap(), Some(report));
        // A record naming anything but a report file beside it: refused.
        old.report = None;
        old.file = Some("../etc/passwd".into());
        assert!(load(&dir.join(&written.name), &old).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn when_the_users_copy_of_the_report_cannot_be_written_their_copy_of_the_record_says_why() {
        let (dir, _, mut record) = analyzed("handler-report-file-fails");
        record.report.title = Some("x: SIGSEGV in f".into());
        let stem = "core.x.42.1700000000";
        // The failure made certain: every name the user's copy of the
        // report may take is taken (root's report, the record and the
        // user's copy of the record have theirs free).
        for n in 0..crate::base::safefile::MAX_NAME_ATTEMPTS {
            std::fs::write(dir.join(user_name(&format!("{stem}.json"), n)), "").unwrap();
        }
        let written = write_analyzed(&record, &dir, stem);
        assert_eq!(written.name, format!("{stem}.json"));
        assert_eq!(written.user_copy, Some(format!("{stem}.user.json")));
        // Root's log says it (as before)...
        assert_eq!(written.errors.len(), 1, "{:?}", written.errors);
        assert!(
            written.errors[0].contains("cannot write uid 1000's copy of the report"),
            "{:?}",
            written.errors
        );
        // ... and so does the user's copy of the record, which names no
        // report; root's is whole.
        let json = |name: &str| json_in(&dir, name);
        let copy = json(&format!("{stem}.user.json"));
        assert!(copy["report"].get("file").is_none(), "{copy:#}");
        let why = copy["report"]["file_error"].as_str().unwrap_or_default();
        assert!(
            why.starts_with("the user's copy of the report could not be written: ")
                && why.contains("names taken"),
            "{copy:#}"
        );
        let root = json(&written.name);
        assert_eq!(root["report"]["file"], format!("{stem}.report.json"));
        assert!(root["report"].get("file_error").is_none(), "{root:#}");
        // Read back by the user's tools (info: `tools/show.rs`).
        let mut crash = Crash::read(&dir.join(format!("{stem}.user.json")))
            .unwrap()
            .unwrap();
        crash.load_report();
        let section = crash.record.report();
        assert_eq!(section.report, None);
        assert_eq!(section.file_error.as_deref(), Some(why));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn when_roots_report_file_cannot_be_written_roots_record_holds_the_report_and_says_why() {
        let (dir, report, record) = analyzed("handler-root-report-file-fails");
        let stem = "core.x.42.1700000000";
        // The failure made certain: every name root's report may take is
        // taken (as directories, which the record's own names are not).
        for n in 0..crate::base::safefile::MAX_NAME_ATTEMPTS {
            std::fs::create_dir(dir.join(root_name(&record_name(stem, n)))).unwrap();
        }
        let written = write_analyzed(&record, &dir, stem);
        assert_eq!(written.name, format!("{stem}.json"));
        assert_eq!(written.report, None);
        assert!(
            written
                .errors
                .iter()
                .any(|e| e.contains("cannot write the report's file")),
            "{:?}",
            written.errors
        );
        // Root's record holds the report and says why; so does `info`'s
        // reading of it.
        let json = json_in(&dir, &written.name);
        assert!(json["report"].get("file").is_none(), "{json:#}");
        assert!(json["report"].get("report").is_some(), "{json:#}");
        let why = json["report"]["file_error"].as_str().unwrap_or_default();
        assert!(
            why.starts_with("the report's file could not be written: ")
                && why.contains("this record"),
            "{json:#}"
        );
        let mut crash = Crash::read(&dir.join(&written.name)).unwrap().unwrap();
        crash.load_report();
        assert_eq!(crash.record.report().report.as_ref(), Some(&report));
        assert_eq!(crash.record.report().file_error.as_deref(), Some(why));
        // The user's copy embeds the report too (no file of theirs named).
        let copy = json_in(&dir, &format!("{stem}.user.json"));
        assert!(copy["report"].get("report").is_some(), "{copy:#}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn report_files_are_named_after_their_record_and_belong_to_its_crash() {
        assert_eq!(root_name("core.x.1.2.json"), "core.x.1.2.report.json");
        assert_eq!(
            user_name("core.x.1.2.json", 0),
            "core.x.1.2.report.user.json"
        );
        assert_eq!(
            user_name("core.x.1.2.3.json", 4),
            "core.x.1.2.3.report.user.4.json"
        );
        for (name, stem) in [
            ("core.x.1.2.report.json", Some("core.x.1.2")),
            ("core.x.1.2.report.user.json", Some("core.x.1.2")),
            ("core.x.1.2.3.report.user.4.json", Some("core.x.1.2.3")),
            ("core.x.1.2.json", None),
            ("core.x.1.2.user.json", None),
            ("core.report.1.2.json", None),
            ("core.x.1.2.report.user.x.json", None),
            ("core.x.1.2", None),
        ] {
            assert_eq!(
                stem_of(name.as_bytes()).map(|s| std::str::from_utf8(s).unwrap()),
                stem,
                "{name}"
            );
        }
    }
}
