//! What the tool writes about itself, from its clap definition so it cannot drift from the
//! parser: `completions SHELL` (clap_complete) and `man` (clap_mangen). The release archives carry
//! both, written by the released binary itself (as ripgrep's `--generate` and jj's `util` commands
//! do), so no build script or second binary has to agree with it.
//!
//! Users type `cargo lambda-build ...`, and `cargo` has one completion per shell, rustup's or the
//! shell's own: each script completes `cargo lambda-build` and leaves every other `cargo` command
//! to that completion where the shell lets it.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;
use crate::error::{Error, Result};

/// The name of the man page and of the binary cargo runs.
pub const BIN: &str = "cargo-lambda-build";
/// The word after `cargo`.
const SUBCOMMAND: &str = "lambda-build";

fn stdout_error(e: std::io::Error) -> Error {
    anyhow::anyhow!("cannot write to stdout: {e}").into()
}

/// `cargo lambda-build completions SHELL`.
pub fn print_completions(shell: Shell) -> Result<()> {
    std::io::stdout()
        .lock()
        .write_all(completions(shell).as_bytes())
        .map_err(stdout_error)
}

/// `cargo lambda-build man`: the main page on stdout, or every page into `dir`.
pub fn man(dir: Option<&Path>) -> Result<()> {
    let pages = man_pages();
    let Some(dir) = dir else {
        return std::io::stdout()
            .lock()
            .write_all(&pages[0].1)
            .map_err(stdout_error);
    };
    let cannot_write = |path: &Path, e: std::io::Error| -> Error {
        anyhow::anyhow!("cannot write the man page `{}`: {e}", path.display()).into()
    };
    std::fs::create_dir_all(dir).map_err(|e| cannot_write(dir, e))?;
    for (name, roff) in pages {
        let path = dir.join(name);
        std::fs::write(&path, roff).map_err(|e| cannot_write(&path, e))?;
    }
    Ok(())
}

/// `cargo` with its one subcommand `lambda-build`, as the completions see it: no `help`
/// subcommand of its own (`cargo help` is cargo's).
fn cargo_command() -> clap::Command {
    Cli::command().disable_help_subcommand(true)
}

fn generated(shell: Shell, cmd: &mut clap::Command, bin_name: &str) -> String {
    let mut out = Vec::new();
    clap_complete::generate(shell, cmd, bin_name, &mut out);
    String::from_utf8(out).expect("clap_complete writes UTF-8")
}

/// The completion script of `shell` for `cargo lambda-build`.
pub fn completions(shell: Shell) -> String {
    match shell {
        Shell::Bash => bash(),
        Shell::Zsh => zsh(),
        // fish's completions add up (`complete -c cargo` adds to cargo's own), and clap's
        // conditions only fire after `cargo lambda-build`. PowerShell and elvish keep one
        // completer per command: this one replaces any other for `cargo` (docs/usage.md says so).
        _ => generated(shell, &mut cargo_command(), "cargo"),
    }
}

/// clap's function, renamed so that it does not replace rustup's `_cargo`, behind a dispatcher
/// that hands every other `cargo` command line to the completion cargo had before.
fn bash() -> String {
    let script = generated(Shell::Bash, &mut cargo_command(), "cargo");
    // clap's script is the function `_cargo`, then the `complete` lines that register it.
    let end = script
        .find("\nif [[ \"${BASH_VERSINFO[0]}\" -eq 4")
        .expect("clap_complete's bash script ends with its `complete` lines");
    let function = script[..end].replacen("_cargo() {", "_cargo_lambda_build() {", 1);
    format!("{function}\n{BASH_DISPATCH}")
}

const BASH_DISPATCH: &str = r#"
# `cargo` has one completion in bash: keep the one it had (rustup's, or bash-completion's,
# loaded now when it is loaded on demand) for every command but `cargo lambda-build`.
if ! complete -p cargo >/dev/null 2>&1; then
    if declare -F _comp_load >/dev/null; then
        _comp_load cargo >/dev/null 2>&1
    elif declare -F __load_completion >/dev/null; then
        __load_completion cargo >/dev/null 2>&1
    fi
fi
# Sourced twice, the dispatcher must not chain to itself.
_cargo_lambda_build_previous=$(complete -p cargo 2>/dev/null | sed -n 's/.* -F \([^ ]*\) .*/\1/p')
if [[ $_cargo_lambda_build_previous != _cargo_lambda_build_dispatch ]]; then
    _cargo_lambda_build_chained=$_cargo_lambda_build_previous
fi

_cargo_lambda_build_dispatch() {
    if [[ ${COMP_WORDS[1]} == lambda-build || -z $_cargo_lambda_build_chained ]]; then
        _cargo_lambda_build "$@"
    else
        "$_cargo_lambda_build_chained" "$@"
    fi
}

complete -F _cargo_lambda_build_dispatch -o bashdefault -o default cargo
"#;

/// clap's completion of the `lambda-build` command as `_cargo-lambda-build`: the function cargo's
/// zsh completion (rustup's `_cargo`) calls for a subcommand it does not know, with `words`
/// starting at `lambda-build`. Without cargo's completion, it completes `cargo` itself.
fn zsh() -> String {
    let mut cargo = cargo_command();
    cargo.build();
    let lambda_build = cargo
        .find_subcommand(SUBCOMMAND)
        .expect("the subcommand exists")
        .clone();
    let script = generated(Shell::Zsh, &mut lambda_build.name(BIN), BIN);
    // clap's last lines register the function for the binary's own name; cargo's completion
    // finds it by its name instead.
    let end = script
        .rfind("\nif [ \"$funcstack[1]\" = ")
        .expect("clap_complete's zsh script ends by registering its function");
    format!("{}\n{ZSH_REGISTER}", &script[..end])
}

const ZSH_REGISTER: &str = concat!(
    r#"
# Installed in $fpath as `_cargo-lambda-build`, this file is the function itself; sourced, it
# defines it. Without a completion for cargo, `cargo` gets one that knows `lambda-build`.
_cargo_lambda_build_cargo() {
    if (( CURRENT > 2 )) && [[ ${words[2]} == lambda-build ]]; then
        shift words
        (( CURRENT-- ))
        _cargo-lambda-build "$@"
    else
        _describe -t commands 'cargo subcommand' \
            '("lambda-build:Build a Rust AWS Lambda function into bootstrap and "#,
    crate::lambda::literal!(zip_name),
    r#"")'
    fi
}
if [ "$funcstack[1]" = "_cargo-lambda-build" ]; then
    _cargo-lambda-build "$@"
elif (( $+functions[compdef] )) && (( ! $+_comps[cargo] )); then
    compdef _cargo_lambda_build_cargo cargo
fi
"#
);

/// The man pages: `cargo-lambda-build(1)`, the build's options, the subcommands and the exit
/// codes, then one page per subcommand (`cargo-lambda-build-new(1)`, ...), which the first names;
/// as (file name, roff).
pub fn man_pages() -> Vec<(String, Vec<u8>)> {
    // Unbuilt, so that no `help` subcommand is added below it: `help X` is page X.
    let lambda_build = Cli::command()
        .find_subcommand(SUBCOMMAND)
        .expect("the subcommand exists")
        .clone()
        .bin_name(format!("cargo {SUBCOMMAND}"))
        .display_name(BIN)
        .disable_help_subcommand(true);
    let mut pages = Vec::new();
    add_pages(lambda_build, &mut pages);
    pages[0].1.extend_from_slice(MAN_EXTRA.as_bytes());
    pages
}

fn add_pages(mut cmd: clap::Command, pages: &mut Vec<(String, Vec<u8>)>) {
    cmd.build();
    let man = clap_mangen::Man::new(cmd.clone())
        .manual("Cargo Lambda Build Manual")
        .source(format!("{BIN} {}", env!("CARGO_PKG_VERSION")));
    let mut roff = Vec::new();
    man.render(&mut roff).expect("writes to memory");
    pages.push((man.get_filename(), roff));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        add_pages(sub.clone(), pages);
    }
}

/// Sections clap does not know about; the exit codes are docs/usage.md's table.
const MAN_EXTRA: &str = r#".SH "EXIT STATUS"
.TP
\fB0\fR
Success.
.TP
\fB1\fR
The tool refused or failed: bad input, a failed check, Docker unavailable.
.TP
\fB2\fR
Usage error.
.TP
\fB101\fR
The compiler failed (as cargo).
.TP
\fB130\fR, \fB143\fR
Interrupted (SIGINT), terminated (SIGTERM).
.SH "SEE ALSO"
\fBcargo\fR(1), \fBcargo\-build\fR(1).
"#;
