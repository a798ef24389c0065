//! Man pages and shell completions generated from the command-line
//! definition (clap_mangen, clap_complete), so that they always say what
//! the program accepts: `lttng-coredump generate-docs DIR` (hidden; run by
//! `scripts/package`) writes `DIR/man1/*.1` (with the sections of
//! [`manpages`]), `DIR/man5/lttng-coredump.conf.5`,
//! `DIR/bash/lttng-coredump` and
//! `DIR/zsh/_lttng-coredump`.

pub mod completion;
pub mod manpages;

use anyhow::Context as _;
use std::path::{Path, PathBuf};

// The variant's doc comment in `Command` is the subcommand's help.
#[derive(clap::Args)]
pub struct GenerateDocsArgs {
    dir: PathBuf,
}

/// `generate-docs DIR`: the documentation of the whole command line; what
/// was written, one path a line.
pub fn run(args: GenerateDocsArgs) -> anyhow::Result<String> {
    let GenerateDocsArgs { dir } = args;
    generate(<super::Cli as clap::CommandFactory>::command(), &dir)
        .map(|written| written.join("\n") + "\n")
        .with_context(|| format!("cannot write the documentation in {}", dir.display()))
}

/// Writes the man pages (one for the program, one a subcommand) and the
/// bash and zsh completions of `command` under `dir`; returns what it wrote.
pub fn generate(mut command: clap::Command, dir: &Path) -> std::io::Result<Vec<String>> {
    command.build();
    let name = command.get_name().to_string();
    let mut written = Vec::new();
    let man = dir.join("man1");
    std::fs::create_dir_all(&man)?;
    let subcommands: Vec<String> = command
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .map(|s| s.get_name().to_string())
        .collect();
    let mut pages = vec![(name.clone(), command.clone())];
    for sub in command
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        // `lttng-coredump-list(1)`, as git and systemd name theirs.
        let page = sub
            .clone()
            .name(format!("{name}-{}", sub.get_name()))
            .display_name(format!("{name}-{}", sub.get_name()));
        pages.push((format!("{name}-{}", sub.get_name()), page));
    }
    for (page_name, page) in pages {
        let path = man.join(format!("{page_name}.1"));
        let mut out = Vec::new();
        clap_mangen::Man::new(page).render(&mut out)?;
        // EXIT STATUS, FILES, EXAMPLES, SEE ALSO ([`manpages`]).
        let sub = page_name.strip_prefix(&format!("{name}-"));
        out.extend(manpages::extra_sections(sub, &subcommands).into_bytes());
        std::fs::write(&path, out)?;
        written.push(path.display().to_string());
    }
    let man5 = dir.join("man5");
    std::fs::create_dir_all(&man5)?;
    let conf = man5.join(format!("{name}.conf.5"));
    let version = command.get_version().unwrap_or_default().to_string();
    std::fs::write(&conf, manpages::config_page(&version))?;
    written.push(conf.display().to_string());
    for (sub, file, text) in [
        ("bash", name.clone(), completion::bash(&command, &name)),
        ("zsh", format!("_{name}"), completion::zsh(&command, &name)),
    ] {
        let shell_dir = dir.join(sub);
        std::fs::create_dir_all(&shell_dir)?;
        let path = shell_dir.join(file);
        std::fs::write(&path, text)?;
        written.push(path.display().to_string());
    }
    Ok(written)
}
