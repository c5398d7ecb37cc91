//! `completions SHELL` and `man`: the scripts load in the real shells and complete
//! `cargo lambda-build` (alone, and beside cargo's own completion from rustup, which must keep
//! completing the other cargo commands); the man pages render with `man -l` without warnings.
//!
//! `.ci/run` installs zsh, fish and bash-completion (rustup's cargo completion for bash needs it).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{self, assert_success, stdout};

/// The script `completions SHELL` prints, in a file.
fn script(dir: &Path, shell: &str) -> PathBuf {
    let output = support::tool()
        .args(["completions", shell])
        .output()
        .unwrap();
    assert_success(&output);
    assert!(!output.stdout.is_empty(), "{shell}: an empty script");
    let path = dir.join(format!("completions.{shell}"));
    std::fs::write(&path, &output.stdout).unwrap();
    path
}

/// [`script`] for `shell` in a fresh directory, when `shell` is installed to load it (the test
/// is skipped, or fails in CI, when not).
fn script_for_installed(shell: &str) -> Option<(tempfile::TempDir, PathBuf)> {
    if !support::require_tool(shell) {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = script(dir.path(), shell);
    Some((dir, path))
}

/// rustup's completion of cargo for `shell_dir` (`etc/bash_completion.d/cargo`,
/// `share/zsh/site-functions/_cargo`), from the toolchain's sysroot.
fn rustup_cargo_completion(relative: &str) -> Option<PathBuf> {
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .unwrap();
    let path = Path::new(stdout(&sysroot).trim()).join(relative);
    if path.is_file() {
        return Some(path);
    }
    support::skip_or_fail(&format!(
        "rustup's cargo completion `{}` is missing (a toolchain installed without rustup?)",
        path.display()
    ));
    None
}

/// The candidates bash offers for the last word of each line, after running `setup`: one
/// `==> LINE` header, then a candidate a line.
fn bash_candidates(setup: &str, lines: &[&str]) -> String {
    const COMPLETE: &str = r#"
complete_line() {
    read -ra COMP_WORDS <<<"$1"
    [[ $1 == *' ' ]] && COMP_WORDS+=("")
    COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMP_LINE=$1; COMP_POINT=${#COMP_LINE}
    local fn; fn=$(complete -p cargo | sed -n 's/.* -F \([^ ]*\) .*/\1/p')
    COMPREPLY=()
    "$fn" cargo "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    echo "==> $1"
    printf '%s\n' "${COMPREPLY[@]}"
}
"#;
    let mut program = format!("set -e\n{setup}\n{COMPLETE}\n");
    for line in lines {
        program.push_str(&format!("complete_line '{line}'\n"));
    }
    let output = Command::new("bash")
        .args(["--norc", "-c", &program])
        .output()
        .unwrap();
    assert_success(&output);
    stdout(&output)
}

/// The candidates after the line headed `==> line`.
fn section<'a>(all: &'a str, line: &str) -> Vec<&'a str> {
    let header = format!("==> {line}\n");
    let start = all.find(&header).unwrap_or_else(|| panic!("{line}: {all}")) + header.len();
    all[start..]
        .lines()
        .take_while(|l| !l.starts_with("==> "))
        .collect()
}

#[test]
fn bash_completes_cargo_lambda_build_and_keeps_cargos_completion() {
    let dir = tempfile::tempdir().unwrap();
    let bash = script(dir.path(), "bash");
    // As the README says to load it.
    let setup = format!(
        "source <({} lambda-build completions bash)",
        env!("CARGO_BIN_EXE_cargo-lambda-build")
    );
    let lines = [
        "cargo lambda-build --zi",
        "cargo lambda-build --arch ",
        "cargo lambda-build completions ",
        "cargo lambda-b",
    ];
    let alone = bash_candidates(&setup, &lines);
    assert_eq!(section(&alone, lines[0]), ["--zip"], "{alone}");
    assert_eq!(section(&alone, lines[1]), ["x86_64", "arm64"], "{alone}");
    let shells = section(&alone, lines[2]);
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        assert!(shells.contains(&shell), "{shell}: {alone}");
    }
    assert_eq!(section(&alone, lines[3]), ["lambda-build"], "{alone}");

    // After rustup's completion of cargo (which needs bash-completion), loaded twice as a
    // ~/.bashrc sourced again would.
    let Some(cargo) = rustup_cargo_completion("etc/bash_completion.d/cargo") else {
        return;
    };
    let bash_completion = Path::new("/usr/share/bash-completion/bash_completion");
    if !bash_completion.is_file() {
        support::skip_or_fail(
            "bash-completion is not installed (`apt-get install bash-completion`)",
        );
        return;
    }
    let setup = format!(
        "source {}; source {}; source {}; source {}",
        bash_completion.display(),
        cargo.display(),
        bash.display(),
        bash.display()
    );
    let lines = [
        "cargo lambda-build --zi",
        "cargo bui",
        "cargo build --relea",
    ];
    let both = bash_candidates(&setup, &lines);
    assert_eq!(section(&both, lines[0]), ["--zip"], "{both}");
    assert_eq!(section(&both, lines[1]), ["build"], "cargo's own: {both}");
    assert_eq!(
        section(&both, lines[2]),
        ["--release"],
        "cargo's own: {both}"
    );
}

/// zsh's completion runs only in its line editor: an interactive zsh in a pseudo-terminal
/// (zsh/zpty) gets `setup`, a `compadd` that also records what it is given, then LINE and a
/// tab. Prints the candidates, one a line.
const ZSH_DRIVER: &str = r#"
zmodload zsh/zpty
zpty -b z zsh -f -i
zpty -w z 'PROMPT= ; RPROMPT='
zpty -w z "$1"
zpty -w z 'compadd() { local -a hits; builtin compadd -A hits "$@"; (( $#hits )) && print -rl -- $hits >> $out; builtin compadd "$@"; }'
zpty -w z "out=$3"
zpty -w -n z "$2"$'\t'
# Typed ahead, the next keys would interrupt the completion.
sleep 1
zpty -w z $'\C-u'
zpty -w z 'print -r done > $out.done'
for i in {1..300}; do [[ -e $3.done ]] && break; sleep 0.1; done
zpty -d z
[[ -e $3.done ]] || { print -u2 "zsh did not finish"; exit 1; }
[[ -e $3 ]] && cat $3
exit 0
"#;

fn zsh_candidates(dir: &Path, setup: &str, line: &str) -> Vec<String> {
    let out = tempfile::NamedTempFile::new_in(dir)
        .unwrap()
        .into_temp_path();
    let out = out.to_path_buf();
    let output = Command::new("zsh")
        .args(["-f", "-c", ZSH_DRIVER, "driver", setup, line])
        .arg(&out)
        .output()
        .unwrap();
    assert_success(&output);
    // `_describe` offers its matches twice (with and without descriptions).
    let mut candidates: Vec<String> = Vec::new();
    for line in stdout(&output).lines() {
        if !candidates.iter().any(|c| c == line) {
            candidates.push(line.to_string());
        }
    }
    candidates
}

#[test]
fn zsh_completes_cargo_lambda_build_sourced_or_from_fpath() {
    let Some((dir, zsh)) = script_for_installed("zsh") else {
        return;
    };
    let compinit = "autoload -Uz compinit && compinit -u -D";
    // Sourced, with no completion for cargo: it completes `cargo` too.
    let sourced = format!("{compinit}; source {}", zsh.display());
    assert_eq!(
        zsh_candidates(dir.path(), &sourced, "cargo lambda-build --zi"),
        ["--zip"]
    );
    assert_eq!(
        zsh_candidates(dir.path(), &sourced, "cargo lambda-b"),
        ["lambda-build"]
    );

    // Installed as `_cargo-lambda-build` in $fpath beside rustup's `_cargo`, which hands it
    // `lambda-build` and keeps completing its own commands.
    let Some(cargo) = rustup_cargo_completion("share/zsh/site-functions/_cargo") else {
        return;
    };
    let functions = dir.path().join("functions");
    std::fs::create_dir(&functions).unwrap();
    std::fs::copy(&zsh, functions.join("_cargo-lambda-build")).unwrap();
    let fpath = format!(
        "fpath=({} {} $fpath); {compinit}",
        functions.display(),
        cargo.parent().unwrap().display()
    );
    let arch = zsh_candidates(dir.path(), &fpath, "cargo lambda-build --arch ");
    assert_eq!(arch, ["x86_64", "arm64"]);
    assert_eq!(zsh_candidates(dir.path(), &fpath, "cargo bui"), ["build"]);
}

#[test]
fn fish_completes_cargo_lambda_build_beside_its_cargo_completion() {
    let Some((dir, fish)) = script_for_installed("fish") else {
        return;
    };
    let complete = |line: &str| -> Vec<String> {
        // Not `--no-config`, which also leaves out fish's own completions: a config of nobody's.
        let output = Command::new("fish")
            .arg("-c")
            .arg(format!("source {}; complete -C '{line}'", fish.display()))
            .env("XDG_CONFIG_HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path())
            .output()
            .unwrap();
        assert_success(&output);
        // `candidate<TAB>description`
        stdout(&output)
            .lines()
            .map(|l| l.split('\t').next().unwrap().to_string())
            .collect()
    };
    assert_eq!(complete("cargo lambda-build --zi"), ["--zip"]);
    assert_eq!(complete("cargo lambda-build --arch "), ["arm64", "x86_64"]);
    // fish's own completion of cargo still answers.
    assert!(complete("cargo bui").contains(&"build".to_string()));
}

#[test]
fn every_shell_gets_a_script_naming_the_build_flags() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let text = std::fs::read_to_string(script(dir.path(), shell)).unwrap();
        assert!(
            text.contains("lambda-build") && text.contains("--zip") && text.contains("--arch"),
            "{shell}:\n{text}"
        );
    }
    let output = support::tool()
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

/// `man -l FILE` as a reader would see it (plain text), and groff's warnings.
fn render(page: &Path) -> (String, String) {
    let output = Command::new("man")
        .args(["--warnings", "-l"])
        .arg(page)
        .env("MANWIDTH", "100")
        .env("MANPAGER", "cat")
        .output()
        .unwrap();
    assert_success(&output);
    // grotty's bold and underline are overstrikes: `X\bX`, `_\bX`.
    let mut text = String::new();
    for c in stdout(&output).chars() {
        if c == '\u{8}' {
            text.pop();
        } else {
            text.push(c);
        }
    }
    // Justified lines have runs of spaces.
    let text = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n");
    (text, support::stderr(&output))
}

#[test]
fn the_man_pages_render_with_man() {
    if !support::require_tool("man") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let output = support::tool().arg("man").output().unwrap();
    assert_success(&output);
    let main_page = dir.path().join("stdout.1");
    std::fs::write(&main_page, &output.stdout).unwrap();
    let (text, warnings) = render(&main_page);
    assert_eq!(warnings, "", "groff warns about the main page");
    for needed in [
        "cargo-lambda-build - Build a Rust AWS Lambda function",
        "cargo lambda-build [-z|--zip]",
        "--arch <ARCH>",
        "cargo-lambda-build-invoke(1)",
        "EXIT STATUS",
        "101",
    ] {
        assert!(text.contains(needed), "`{needed}` missing:\n{text}");
    }

    // Every page the main one names exists, renders and names no page that does not.
    let pages = dir.path().join("man1");
    assert_success(
        &support::tool()
            .arg("man")
            .arg("--dir")
            .arg(&pages)
            .output()
            .unwrap(),
    );
    let names: Vec<String> = std::fs::read_dir(&pages)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        std::fs::read(pages.join("cargo-lambda-build.1")).unwrap(),
        output.stdout,
        "--dir writes the page stdout gets"
    );
    for name in &names {
        let (text, warnings) = render(&pages.join(name));
        assert_eq!(warnings, "", "groff warns about {name}");
        for named in text
            .split_whitespace()
            .filter_map(|w| w.strip_suffix("(1)"))
        {
            if named.starts_with("cargo-lambda-build") {
                assert!(
                    names.contains(&format!("{named}.1")),
                    "{name} names {named}(1)"
                );
            }
        }
    }
    for needed in ["new", "invoke", "docker-ls", "doctor", "completions", "man"] {
        assert!(
            names.contains(&format!("cargo-lambda-build-{needed}.1")),
            "{names:?}"
        );
    }
}
