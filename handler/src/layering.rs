//! The check of the layering that `lib.rs` writes down: the folders in the
//! order of its map, each using only the folders listed before it. It
//! reads the sources, every path that names a folder of the crate
//! (`crate::FOLDER`, or a `super::` chain that climbs to the crate's root
//! from a folder's own files), and fails on one that names a later folder,
//! on a folder or top-level module missing from the map, and on a path to
//! the library by its name from within it. It also checks that every
//! module starts by saying what it is for (its `//!` comment).

use std::path::{Path, PathBuf};

/// The source directory, `handler/src`.
fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The folders in the order of the map in `lib.rs` (its numbered lines
/// that start with a folder name: "1. `base/`: ...").
fn layers(lib: &str) -> Vec<String> {
    lib.lines()
        .filter_map(|line| {
            let item = line.strip_prefix("//! ")?;
            let (number, rest) = item.split_once(". `")?;
            number.parse::<u32>().ok()?;
            let (folder, _) = rest.split_once("/`")?;
            Some(folder.to_string())
        })
        .collect()
}

/// The folders (and top-level modules) a file's text names, with the line
/// of each: `crate::NAME` and every name of a `crate::{...}` group, and
/// `super::...::NAME` when the `super`s climb out of the file's folder
/// (`depth` is how far below the crate's root the file's module is: 1 for
/// `crash/mod.rs`, 2 for `crash/pipeline.rs`).
fn named_folders(text: &str, depth: usize) -> Vec<(usize, String)> {
    let line_of = |at: usize| text[..at].matches('\n').count() + 1;
    let mut found = Vec::new();
    for (at, _) in text.match_indices("crate::") {
        // `lttng_coredump_crate::` is not this crate.
        if text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let after = at + "crate::".len();
        for (offset, name) in first_names(&text[after..]) {
            found.push((line_of(after + offset), name));
        }
    }
    let mut from = 0;
    while let Some(found_at) = text[from..].find("super::") {
        let at = from + found_at;
        let mut after = at;
        let mut climbs = 0;
        while text[after..].starts_with("super::") {
            climbs += 1;
            after += "super::".len();
        }
        if !text[..at].ends_with("::") && climbs >= depth {
            for (offset, name) in first_names(&text[after..]) {
                found.push((line_of(after + offset), name));
            }
        }
        from = after;
    }
    found
}

/// The first name of a path (`name::...`), or each first name of a group
/// (`{a::b, c::{d, e}}`: `a` and `c`), with its offset in `text`.
fn first_names(text: &str) -> Vec<(usize, String)> {
    if !text.starts_with('{') {
        return vec![(0, word(text))];
    }
    let mut names = Vec::new();
    let mut nesting = 0;
    let mut expecting = true;
    for (offset, c) in text.char_indices() {
        match c {
            '{' => {
                nesting += 1;
                expecting = nesting == 1;
            }
            '}' => {
                nesting -= 1;
                if nesting == 0 {
                    break;
                }
            }
            ',' if nesting == 1 => expecting = true,
            c if expecting && (c.is_alphanumeric() || c == '_') => {
                names.push((offset, word(&text[offset..])));
                expecting = false;
            }
            _ => {}
        }
    }
    names
}

/// The identifier `text` starts with.
fn word(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// Every `.rs` file under `dir`, with its path below it.
fn sources(dir: &Path, below: &Path, out: &mut Vec<(PathBuf, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("reading {}: {err}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let relative = below.join(path.file_name().expect("a name"));
        if path.is_dir() {
            sources(&path, &relative, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|err| panic!("reading {}: {err}", path.display()));
            out.push((relative, text));
        }
    }
}

/// What breaks the layering in the sources: one line per path that names
/// a later folder (or an unknown one) and per folder missing from the map.
fn violations(layers: &[String], files: &[(PathBuf, String)]) -> Vec<String> {
    let rank = |name: &str| layers.iter().position(|layer| layer == name);
    let mut problems = Vec::new();
    for (path, text) in files {
        let mut components: Vec<String> = path
            .iter()
            .map(|part| part.to_string_lossy().into_owned())
            .collect();
        let file = components.pop().expect("a file name");
        let Some(folder) = components.first() else {
            // lib.rs, main.rs and this file: a top-level module must be a
            // folder of the map.
            if !["lib.rs", "main.rs", "layering.rs"].contains(&file.as_str()) {
                problems.push(format!(
                    "{}: a top-level module; put it in a folder of the map in lib.rs",
                    path.display()
                ));
            }
            continue;
        };
        let Some(own) = rank(folder) else {
            problems.push(format!(
                "{folder}/ is not in the map of lib.rs: give it its place in the layering"
            ));
            continue;
        };
        let depth = components.len() + usize::from(file != "mod.rs");
        for (line, name) in named_folders(text, depth) {
            if name == *folder {
                continue;
            }
            match rank(&name) {
                Some(other) if other < own => {}
                Some(_) => problems.push(format!(
                    "{}:{line}: {folder}/ uses {name}/, which the map in lib.rs puts after it",
                    path.display()
                )),
                // A path to the crate's root itself (`crate::SomeItem`), or
                // to a module that is not a folder: none may be used.
                None if name.chars().next().is_some_and(char::is_lowercase) => {
                    problems.push(format!(
                        "{}:{line}: {folder}/ uses crate::{name}, which is not a folder of the map",
                        path.display()
                    ))
                }
                None => {}
            }
        }
        if text.contains("lttng_coredump_handler::") {
            problems.push(format!(
                "{}: names the library by its name; within it, write crate::",
                path.display()
            ));
        }
    }
    problems.sort();
    problems
}

#[test]
fn no_folder_uses_a_folder_the_map_puts_after_it() {
    let dir = source_dir();
    let lib = std::fs::read_to_string(dir.join("lib.rs")).expect("lib.rs");
    let layers = layers(&lib);
    assert_eq!(
        layers,
        ["base", "kernel", "store", "crash", "service", "tools", "setup", "cli"],
        "the map in lib.rs"
    );
    let mut files = Vec::new();
    sources(&dir, Path::new(""), &mut files);
    let main = files
        .iter()
        .position(|(path, _)| path == Path::new("main.rs"))
        .expect("main.rs");
    // The binary is outside the library: it uses it by its name.
    files.remove(main);
    assert!(files.len() > 50, "{} files read", files.len());
    let problems = violations(&layers, &files);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_module_starts_by_saying_what_it_is_for() {
    let mut files = Vec::new();
    sources(&source_dir(), Path::new(""), &mut files);
    let silent: Vec<String> = files
        .iter()
        .filter(|(_, text)| !text.starts_with("//! "))
        .map(|(path, _)| path.display().to_string())
        .collect();
    assert!(silent.is_empty(), "no module comment first: {silent:?}");
}

#[test]
fn the_check_sees_a_use_of_a_later_folder_and_a_folder_out_of_the_map() {
    let layers: Vec<String> = ["base", "kernel", "crash"].map(String::from).to_vec();
    let file = |path: &str, text: &str| (PathBuf::from(path), text.to_string());
    let problems = violations(
        &layers,
        &[
            file("base/a.rs", "use crate::base::b;\nuse crate::kernel::x;\n"),
            file("crash/mod.rs", "pub mod x;\nuse super::kernel::y;\n"),
            file("crash/limits/z.rs", "use super::super::w;\n"),
            file("crash/limits/mod.rs", "use super::super::base::q;\n"),
            file("kernel/mod.rs", "//! A doc.\nuse super::crash::c;\n"),
            file(
                "kernel/m.rs",
                "use crate::{\n    base::q,\n    crash::{c, d},\n};\nuse super::x;\n",
            ),
            file("kernel/n.rs", "use lttng_coredump_handler::base::q;\n"),
            file("kernel/p.rs", "/// [`crate::nowhere::x`]\nfn f() {}\n"),
            file("stray.rs", ""),
            file("other/o.rs", ""),
        ],
    );
    assert_eq!(
        problems,
        [
            "base/a.rs:2: base/ uses kernel/, which the map in lib.rs puts after it",
            "kernel/m.rs:3: kernel/ uses crash/, which the map in lib.rs puts after it",
            "kernel/mod.rs:2: kernel/ uses crash/, which the map in lib.rs puts after it",
            "kernel/n.rs: names the library by its name; within it, write crate::",
            "kernel/p.rs:1: kernel/ uses crate::nowhere, which is not a folder of the map",
            "other/ is not in the map of lib.rs: give it its place in the layering",
            "stray.rs: a top-level module; put it in a folder of the map in lib.rs",
        ],
        "{problems:#?}"
    );
}
