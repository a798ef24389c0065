//! The bash and zsh completions, generated from the command-line
//! definition by clap_complete and made to work for this program:
//! - hidden subcommands (`generate-docs`) are not offered;
//! - bash: clap_complete names the subcommands' cases after a program name
//!   with its `-` turned into `__subcmd__` while it dispatches with `__`, so
//!   that no subcommand's options complete (`list --<TAB>`): the names are
//!   made to agree;
//! - the MATCH arguments of the verbs that select crashes complete to the
//!   PIDs and program names of the crashes the user may see, from the
//!   records (`lttng-coredump list -q -F pid`, `-F process_name`, with the
//!   line's own `--dir` and `--config`).

use clap::Command;

/// The verbs whose free arguments are MATCHes (with their aliases).
const SELECTING: [&str; 6] = ["list", "info", "debug", "gdb", "dump", "trace"];

/// `command` without its hidden subcommands, as completions show it.
fn visible(command: &Command) -> Command {
    let mut shown = Command::new(command.get_name().to_string())
        .version(
            command
                .get_version()
                .map(str::to_string)
                .unwrap_or_default(),
        )
        .about(command.get_about().cloned().unwrap_or_default());
    for arg in command.get_arguments() {
        if !matches!(arg.get_id().as_str(), "help" | "version") {
            shown = shown.arg(arg.clone());
        }
    }
    for sub in command.get_subcommands() {
        if !sub.is_hide_set() && sub.get_name() != "help" {
            shown = shown.subcommand(sub.clone());
        }
    }
    shown.subcommand_required(command.is_subcommand_required_set())
}

/// The options of the selecting verbs that take a value (so that the word
/// after them is not a MATCH), as `-S|--since|...`.
fn options_with_values(command: &Command) -> String {
    let mut names: Vec<String> = Vec::new();
    for sub in command
        .get_subcommands()
        .filter(|s| SELECTING.contains(&s.get_name()))
    {
        for arg in sub.get_arguments() {
            if !arg.get_action().takes_values() || arg.is_positional() {
                continue;
            }
            // `--json[=MODE]` takes its value after `=` only.
            if arg.is_require_equals_set() {
                continue;
            }
            let short = arg.get_short().map(|c| format!("-{c}"));
            let long = arg.get_long().map(|l| format!("--{l}"));
            for name in short.into_iter().chain(long) {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
    }
    names.join("|")
}

/// The bash completion of `command` (named `name`).
pub fn bash(command: &Command, name: &str) -> String {
    let mut shown = visible(command);
    let mut out = Vec::new();
    clap_complete::generate(clap_complete::Shell::Bash, &mut shown, name, &mut out);
    let generated = String::from_utf8_lossy(&out).into_owned();
    let function = format!("_{}", name.replace('-', "__"));
    let fixed = generated.replace(
        &format!("{}__subcmd__", name.replace('-', "__subcmd__")),
        &format!("{}__subcmd__", name.replace('-', "__")),
    );
    let wrapper = format!("{function}_records");
    // The generated `complete` lines name the generated function: they are
    // kept, then replaced by the same with the wrapper.
    let records = format!(
        r#"
# MATCH arguments: the PIDs and program names of the crashes this user may
# see, from the records (the line's own --dir and --config are used).
{wrapper}() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    local verb="" i source=()
    for (( i = 1; i < COMP_CWORD; i++ )); do
        case "${{COMP_WORDS[i]}}" in
            --dir|--config) source+=("${{COMP_WORDS[i]}}" "${{COMP_WORDS[i+1]}}") ;;
            --dir=*|--config=*) source+=("${{COMP_WORDS[i]}}") ;;
            -*) ;;
            *) [[ -z $verb ]] && verb="${{COMP_WORDS[i]}}" ;;
        esac
    done
    case "$verb" in
        {selecting})
            case "$prev" in
                {with_values}) ;;
                *)
                    if [[ $cur != -* ]]; then
                        local IFS=$'\n' tool="${{COMP_WORDS[0]}}"
                        COMPREPLY=( $(compgen -W "$("$tool" list -q --no-pager "${{source[@]}}" -F pid 2>/dev/null; "$tool" list -q --no-pager "${{source[@]}}" -F process_name 2>/dev/null)" -- "$cur") )
                        return 0
                    fi
                    ;;
            esac
            ;;
    esac
    {function} "$@"
}}

if [[ "${{BASH_VERSINFO[0]}}" -eq 4 && "${{BASH_VERSINFO[1]}}" -ge 4 || "${{BASH_VERSINFO[0]}}" -gt 4 ]]; then
    complete -F {wrapper} -o nosort -o bashdefault -o default {name}
else
    complete -F {wrapper} -o bashdefault -o default {name}
fi
"#,
        selecting = SELECTING.join("|"),
        with_values = options_with_values(&shown),
    );
    fixed + &records
}

/// The zsh completion of `command` (named `name`).
pub fn zsh(command: &Command, name: &str) -> String {
    let mut shown = visible(command);
    let mut out = Vec::new();
    clap_complete::generate(clap_complete::Shell::Zsh, &mut shown, name, &mut out);
    let generated = String::from_utf8_lossy(&out).into_owned();
    let matches = format!("_{}_matches", name.replace('-', "_"));
    // The MATCH positionals' action: the records' PIDs and names.
    let mut fixed = String::new();
    for line in generated.split_inclusive('\n') {
        if line.starts_with("'*::matches") {
            fixed.push_str(&line.replacen(":_default'", &format!(":{matches}'"), 1));
        } else {
            fixed.push_str(line);
        }
    }
    let function = format!(
        r#"
# MATCH arguments: the PIDs and program names of the crashes this user may
# see, from the records (the line's own --dir and --config are used).
(( $+functions[{matches}] )) ||
{matches}() {{
    local -a source pids names
    [[ -n ${{opt_args[--dir]}} ]] && source+=(--dir "${{opt_args[--dir]}}")
    [[ -n ${{opt_args[--config]}} ]] && source+=(--config "${{opt_args[--config]}}")
    pids=(${{(f)"$({name} list -q --no-pager $source -F pid 2>/dev/null)"}})
    names=(${{(f)"$({name} list -q --no-pager $source -F process_name 2>/dev/null)"}})
    _describe -t pids 'PID of a crash' pids
    _describe -t names 'program of a crash' names
}}
"#
    );
    let tail = format!("\nif [ \"$funcstack[1]\" = \"_{name}\" ]; then");
    match fixed.find(&tail) {
        Some(at) => {
            fixed.insert_str(at, &function);
            fixed
        }
        None => fixed + &function,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Command {
        Command::new("lttng-coredump")
            .subcommand(
                Command::new("list")
                    .arg(clap::Arg::new("since").short('S').long("since"))
                    .arg(
                        clap::Arg::new("json")
                            .long("json")
                            .require_equals(true)
                            .num_args(0..=1),
                    )
                    .arg(clap::Arg::new("matches").num_args(0..)),
            )
            .subcommand(Command::new("generate-docs").hide(true))
    }

    #[test]
    fn the_bash_functions_agree_and_hidden_commands_are_not_offered() {
        let text = bash(&sample(), "lttng-coredump");
        assert!(!text.contains("lttng__subcmd__coredump"), "{text}");
        assert!(text.contains("lttng__coredump__subcmd__list)"), "{text}");
        assert!(!text.contains("generate-docs"), "{text}");
        assert!(text.contains("-S|--since)"), "{text}");
        assert!(!text.contains("|--json"), "{text}");
        assert!(
            text.contains("complete -F _lttng__coredump_records"),
            "{text}"
        );
    }

    #[test]
    fn the_zsh_matches_complete_from_the_records() {
        let text = zsh(&sample(), "lttng-coredump");
        assert!(!text.contains("generate-docs"), "{text}");
        assert!(text.contains(":_lttng_coredump_matches'"), "{text}");
        let function = text.find("_lttng_coredump_matches() {").unwrap();
        assert!(function < text.find("if [ \"$funcstack[1]\"").unwrap());
    }
}
