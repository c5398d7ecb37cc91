//! The docs name only what exists. Every flag, settings key, file name and volume name that
//! README.md and docs/*.md write in a code span (and every `cargo lambda-build` command line of
//! their code blocks) is checked against the code: flags against clap's definition of each
//! subcommand (what `--help` prints, hidden flags included), keys against the keys `config.rs`
//! reads, file names against the code's own text and the repository, volume names against what
//! `build::docker::sync::Volumes` makes. A failure names the doc file, the line and the name.
//!
//! Names that are not this tool's (cargo's, rustc's, the AWS CLI's, other tools' files) pass
//! only through the short lists below, each with why.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cargo_lambda_build::build::docker::sync::Volumes;
use cargo_lambda_build::cli::Cli;
use cargo_lambda_build::config::{CARGO_LAMBDA_KEYS, per_binary_keys, settings_keys};
use clap::CommandFactory;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Flags of other programs that the docs name on their own (a command line of another program,
/// `cargo build ...`, `aws lambda ...`, is not checked at all).
const FOREIGN_FLAGS: &[&str] = &[
    // rustc's: the `target-cpu` refusal and the path remapping of reproducible builds.
    "-C",
    "-Ctarget-cpu",
    "--codegen",
    "--remap-path-prefix",
    // C compilers' CPU flags, refused in CFLAGS like `target-cpu=native`.
    "-march",
    "-mcpu",
    "-mtune",
    // cargo's own `--config`, through which the tool hands cargo its rustflags.
    "--config",
    // The AWS CLI's `create-function --architectures`, which the deploy steps pass.
    "--architectures",
    // qemu-user's sysroot flag, which `QEMU_LD_PREFIX` stands for.
    "-L",
];

/// Keys of other files' TOML tables, written as `key = value`.
const FOREIGN_TOML_KEYS: &[&str] = &[
    // cargo's profile keys (`--small`'s settings, and why `panic = "abort"` is not set).
    "opt-level",
    "codegen-units",
    "panic",
    // A path dependency in Cargo.toml.
    "path",
    // GitLab runner's config.toml for Docker-in-Docker.
    "privileged",
    "volumes",
    // Terraform's `aws_lambda_function`.
    "filename",
    "source_code_hash",
];

/// Tables of other tools with a dotted name, written as `[table]` (cargo's own, `[build]`,
/// `[target.<triple>]`, pass without a list).
const FOREIGN_TABLES: &[&str] = &[
    // cargo-binstall's, in this package's Cargo.toml.
    "[package.metadata.binstall]",
    // cargo-lambda's `env` tables, named to say they are not read and what replaces them.
    "[package.metadata.lambda.env]",
    "[package.metadata.lambda.bin.NAME.env]",
];

/// Files that are not the tool's: cargo-lambda's output, elvish's rc file, Podman's configs,
/// and the shared library a layer of the user's carries in the examples.
const FOREIGN_FILES: &[&str] = &[
    "bootstrap.zip",
    "rc.elv",
    "storage.conf",
    "containers.conf",
    "libpq.so",
];

/// One code span of a doc, or one command line of a fenced block.
struct Span {
    file: String,
    line: usize,
    text: String,
    fenced: bool,
}

impl Span {
    fn at(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

/// README.md and docs/*.md, as (path from the repository, text).
fn docs() -> Vec<(String, String)> {
    let mut files = vec!["README.md".to_string()];
    let mut pages: Vec<String> = std::fs::read_dir(Path::new(REPO).join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    pages.sort();
    files.extend(pages);
    files
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(Path::new(REPO).join(&file)).unwrap();
            (file, text)
        })
        .collect()
}

/// The inline code spans of a Markdown text (a span may wrap across lines), each with its first
/// line, and the lines of its code blocks (fenced, or indented) that run `cargo lambda-build`
/// or show a volume.
fn spans(file: &str, text: &str) -> Vec<Span> {
    let mut spans = Vec::new();
    let mut fenced = false;
    // Each line outside the fences, with its number.
    let mut prose: Vec<(usize, &str)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            prose.push((n + 1, ""));
            continue;
        }
        if fenced {
            // Command lines, and listings that show volume names.
            if line.contains("cargo lambda-build") || line.contains("cargo-lambda-build-") {
                spans.push(Span {
                    file: file.into(),
                    line: n + 1,
                    text: line.trim_start_matches("$ ").to_string(),
                    fenced: true,
                });
            }
            continue;
        }
        if line.starts_with("    ") && line.trim_start().starts_with("cargo lambda-build") {
            // An indented code block's command line.
            spans.push(Span {
                file: file.into(),
                line: n + 1,
                text: line.trim_start().to_string(),
                fenced: true,
            });
            continue;
        }
        prose.push((n + 1, line));
    }
    let mut open: Option<(usize, String)> = None;
    for (n, line) in prose {
        let mut rest = line;
        if line.is_empty() {
            // A blank line ends a paragraph: an unclosed backtick is a literal one.
            open = None;
        }
        while !rest.is_empty() {
            match (&mut open, rest.find('`')) {
                (Some((start, span)), Some(end)) => {
                    span.push_str(&rest[..end]);
                    let text = span.replace("\\|", "|");
                    spans.push(Span {
                        file: file.into(),
                        line: *start,
                        text: text.split_whitespace().collect::<Vec<_>>().join(" "),
                        fenced: false,
                    });
                    open = None;
                    rest = &rest[end + 1..];
                }
                (Some((_, span)), None) => {
                    span.push_str(rest);
                    span.push(' ');
                    rest = "";
                }
                (None, Some(start)) => {
                    open = Some((n, String::new()));
                    rest = &rest[start + 1..];
                }
                (None, None) => rest = "",
            }
        }
    }
    spans.sort_by_key(|span| span.line);
    spans
}

/// The flags of one command: long names and aliases (`--zip`), short ones (`-z`).
fn flags_of(command: &clap::Command) -> BTreeSet<String> {
    let mut flags = BTreeSet::new();
    for arg in command.get_arguments() {
        for long in arg
            .get_long()
            .into_iter()
            .chain(arg.get_all_aliases().unwrap_or_default())
        {
            flags.insert(format!("--{long}"));
        }
        for short in
            (arg.get_short().into_iter()).chain(arg.get_all_short_aliases().unwrap_or_default())
        {
            flags.insert(format!("-{short}"));
        }
    }
    flags
}

/// `cargo lambda-build`, as clap completes it (`--help`, `--version` and globals included).
fn lambda_build() -> clap::Command {
    let mut cli = Cli::command();
    cli.build();
    cli.find_subcommand("lambda-build").unwrap().clone()
}

/// Every flag of every subcommand, for a flag the docs name on its own.
fn all_flags(command: &clap::Command) -> BTreeSet<String> {
    let mut flags = flags_of(command);
    for sub in command.get_subcommands() {
        flags.extend(all_flags(sub));
    }
    flags
}

/// The words of a command line up to its end (`&&`, a pipe outside brackets, a comment, a
/// redirection), with the brackets and quotes of a usage line taken off.
fn command_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut depth = 0i32;
    for word in text.split_whitespace() {
        if ["&&", "||", ";", ">", "#"].contains(&word)
            || word.starts_with('#')
            || (word == "|" && depth == 0)
        {
            break;
        }
        depth += word.matches('[').count() as i32 - word.matches(']').count() as i32;
        // `$(cargo lambda-build --print-image-tag)` ends at its parenthesis.
        let (word, last) = match word.split_once(')') {
            Some((word, _)) => (word, true),
            None => (word, false),
        };
        let word = word.trim_matches(|c| "[]\"'`,".contains(c));
        if !word.is_empty() && word != "|" {
            words.push(word.to_string());
        }
        if last {
            break;
        }
    }
    words
}

/// Checks the flags of `words` (what follows `cargo lambda-build`) against the subcommand they
/// reach: unknown ones are pushed to `errors`.
fn check_command(root: &clap::Command, words: &[String], span: &Span, errors: &mut Vec<String>) {
    let mut command = root.clone();
    let mut path = vec!["cargo lambda-build".to_string()];
    for word in words {
        if word == "--" {
            break;
        }
        if let Some(flag) = word.strip_prefix('-').filter(|f| !f.is_empty()) {
            let known = flags_of(&command);
            let name = word.split('=').next().unwrap();
            let ok = if flag.starts_with('-') {
                known.contains(name)
            } else {
                // A cluster of short flags (`-vv`), or one with its value (`-odist`).
                known.contains(&format!("-{}", &flag[..1]))
            };
            if !ok {
                errors.push(format!(
                    "{}: `{}` has no flag `{name}` (in `{}`)",
                    span.at(),
                    path.join(" "),
                    span.text
                ));
            }
            continue;
        }
        if let Some(sub) = command.find_subcommand(word) {
            path.push(word.clone());
            command = sub.clone();
        }
    }
}

/// A flag the docs name on their own: one of the tool's, or of the lists above.
fn check_bare_flags(all: &BTreeSet<String>, span: &Span, errors: &mut Vec<String>) {
    for word in command_words(&span.text) {
        if !word.starts_with('-') || word == "-" {
            continue;
        }
        let name = word.split('=').next().unwrap();
        let short_cluster = !name.starts_with("--")
            && name.len() > 2
            && name[1..].chars().all(|c| all.contains(&format!("-{c}")));
        if !all.contains(name) && !short_cluster && !FOREIGN_FLAGS.contains(&name) {
            errors.push(format!(
                "{}: no command of cargo lambda-build has the flag `{name}` (in `{}`)",
                span.at(),
                span.text
            ));
        }
    }
}

/// The text of the code and of what it embeds (templates, Dockerfiles), where a file name the
/// tool reads or writes is spelled.
fn code_text() -> String {
    let mut text = String::new();
    let mut stack: Vec<PathBuf> = ["src", "templates", "docker", "lambda.Dockerfile"]
        .iter()
        .map(|p| Path::new(REPO).join(p))
        .collect();
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if let Ok(content) = std::fs::read_to_string(&path) {
            text.push_str(&content);
        }
    }
    text
}

/// Every path of the repository (below it, `/`-separated), build outputs and git aside.
fn repository_paths() -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    let mut stack = vec![PathBuf::from(REPO)];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name == "target" || name == ".git" {
                continue;
            }
            let relative = path
                .strip_prefix(REPO)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            paths.insert(relative);
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
    paths
}

/// Where a file name the docs spell is found.
struct Files {
    /// The code's text: [`code_text`].
    code: String,
    /// The repository's paths: [`repository_paths`].
    repo: BTreeSet<String>,
    /// The man pages `man --dir` writes, named as clap_mangen names them.
    man: BTreeSet<String>,
}

/// Whether a span names a file or a path of one (`lambda.zip`, `<outdir>/<binary>/lambda.zip`,
/// `.gitlab-ci.yml`), not a URL, an absolute path of Lambda's or a container's, nor a value.
fn is_file_name(text: &str) -> bool {
    const EXTENSIONS: &[&str] = &[
        ".toml",
        ".zip",
        ".json",
        ".yml",
        ".yaml",
        ".Dockerfile",
        ".tmp",
        ".sh",
        ".rs",
        ".lock",
        ".conf",
        ".1",
        ".gz",
        ".elv",
        ".fish",
        ".py",
        ".md",
    ];
    let foreign_place = text.starts_with(['/', '~', '-']);
    !text.contains(char::is_whitespace)
        && !text.contains("://")
        && !text.contains(['=', ':', '(', '"', '$', '%', '\\', '@'])
        && !foreign_place
        && (text.contains('/') || EXTENSIONS.iter().any(|e| text.ends_with(e)))
}

/// Each component of a file name that is spelled out (no placeholder) must be spelled in the
/// code, be a path of the repository, or be another program's file.
fn check_file_name(code: &Files, span: &Span, errors: &mut Vec<String>) {
    let text = span.text.trim_end_matches('/');
    let Files { code, repo, man } = code;
    if repo.contains(text) {
        return;
    }
    for component in text.split('/') {
        let placeholder =
            component.contains(['<', '*', '{', '[', '…']) || component.contains("...");
        if placeholder || component.is_empty() || component == "." || component == ".." {
            continue;
        }
        let in_repo = repo
            .iter()
            .any(|path| path.split('/').any(|part| part == component));
        if !spells(code, component)
            && !in_repo
            && !man.contains(component)
            && !FOREIGN_FILES.contains(&component)
        {
            errors.push(format!(
                "{}: the code never names the file `{component}` (in `{}`)",
                span.at(),
                span.text
            ));
        }
    }
}

/// Whether `code` spells `name` as a whole name (`lambda.Dockerfile` does not spell
/// `lambda.Dockerfil`).
fn spells(code: &str, name: &str) -> bool {
    let part_of_name = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
    code.match_indices(name).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = code[at + name.len()..].chars().next();
        !before.is_some_and(part_of_name) && !after.is_some_and(part_of_name)
    })
}

/// What a volume name says once its hashes and architecture are placeholders:
/// `cargo-lambda-build-<key>-<arch>-state`.
fn volume_shape(name: &str) -> String {
    let mut shape = String::new();
    for (i, part) in name.split('-').enumerate() {
        if i > 0 {
            shape.push('-');
        }
        let hash = part.len() == 16 && part.chars().all(|c| c.is_ascii_hexdigit());
        shape.push_str(match part {
            _ if hash => "<key>",
            "x86_64" | "arm64" | "<arch>" => "<arch>",
            "<root key>" | "<key>" => "<key>",
            part => part,
        });
    }
    shape
}

/// The volume names the docs spell (`cargo-lambda-build-<key>-<arch>-state`, a listing's
/// `cargo-lambda-build-ce5334744ebfebfd-x86_64-state`, or a suffix `…-state`) against those
/// `Volumes` makes.
fn check_volumes(text: &str, span: &Span, errors: &mut Vec<String>) {
    let volumes = Volumes::new(Path::new("/p"), "x86_64", &["/p".into()]);
    let made: BTreeSet<String> = [&volumes.state, &volumes.registry, &volumes.target]
        .into_iter()
        .chain(volumes.sources.iter().map(|(_, name)| name))
        .map(|name| volume_shape(name))
        .collect();
    let text = text.replace("<root key>", "<key>");
    for word in text.split(|c: char| c.is_whitespace() || c == '`') {
        let suffix = word.strip_prefix('…').or_else(|| {
            (word.starts_with('-') && made.iter().any(|m| m.ends_with(word))).then_some(word)
        });
        let named = if let Some(suffix) = suffix {
            made.iter().any(|m| m.ends_with(suffix))
        } else if word.starts_with("cargo-lambda-build-")
            && ["x86_64", "arm64", "<arch>"]
                .iter()
                .any(|a| word.contains(a))
        {
            made.contains(&volume_shape(word))
        } else {
            continue;
        };
        if !named {
            errors.push(format!(
                "{}: no volume is named like `{word}`; the volumes are {made:?}",
                span.at()
            ));
        }
    }
}

/// `key = value` in TOML, `[table]`, `CARGO_LAMBDA_BUILD_KEY`: the settings the span names.
fn check_settings(span: &Span, errors: &mut Vec<String>) {
    let keys = settings_keys();
    let cargo_lambda = |key: &str| CARGO_LAMBDA_KEYS.contains(&key.replace('-', "_").as_str());
    let text = span.text.as_str();
    if let Some((key, _)) = text.split_once(" = ") {
        let key = key.trim();
        let ours = keys.contains(&key) || cargo_lambda(key);
        if key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
            && !ours
            && !FOREIGN_TOML_KEYS.contains(&key)
        {
            errors.push(format!(
                "{}: no settings table takes the key `{key}` (in `{text}`); the keys are {keys:?}, \
                 and cargo-lambda's read are {CARGO_LAMBDA_KEYS:?}",
                span.at()
            ));
        }
    }
    if let Some(table) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        let ours = [
            "package.metadata.lambda-build",
            "workspace.metadata.lambda-build",
            "package.metadata.lambda-build.bin.NAME",
            // cargo-lambda's, read below this tool's own.
            "package.metadata.lambda.build",
            "workspace.metadata.lambda.build",
        ];
        // A table-valued setting (`env`) is a table below one of ours.
        let setting_table = table
            .rsplit_once('.')
            .is_some_and(|(parent, key)| ours.contains(&parent) && settings_keys().contains(&key));
        let named = ours.contains(&table)
            || setting_table
            || FOREIGN_TABLES.contains(&text)
            || table.starts_with("target.")
            || !table.contains('.');
        if !named {
            errors.push(format!(
                "{}: the tool reads no table `{text}`; it reads {ours:?}",
                span.at()
            ));
        }
    }
    for word in text.split(|c: char| {
        !(c.is_ascii_alphanumeric() || c == '_' || c == '*' || c == '<' || c == '>')
    }) {
        let Some(key) = word.strip_prefix("CARGO_LAMBDA_BUILD_") else {
            continue;
        };
        let key = key.to_lowercase().replace('_', "-");
        if !keys.contains(&key.as_str()) && key != "*" && key != "<key>" {
            errors.push(format!(
                "{}: `{word}` sets no key; the keys are {keys:?}",
                span.at()
            ));
        }
    }
}

#[test]
fn docs_name_only_the_flags_keys_files_and_volumes_the_code_has() {
    let root = lambda_build();
    let all = all_flags(&root);
    let subcommands: Vec<String> = root
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    let files = Files {
        code: code_text(),
        repo: repository_paths(),
        man: (cargo_lambda_build::generate::man_pages().into_iter())
            .map(|(name, _)| name)
            .collect(),
    };
    let mut errors = Vec::new();
    for (file, text) in docs() {
        for span in spans(&file, &text) {
            // A command line of this tool, anywhere in a fenced line.
            let mut rest = span.text.as_str();
            let mut checked = false;
            while let Some(at) = rest.find("cargo lambda-build") {
                rest = &rest[at + "cargo lambda-build".len()..];
                check_command(&root, &command_words(rest), &span, &mut errors);
                checked = true;
            }
            check_volumes(&span.text, &span, &mut errors);
            if span.fenced || checked {
                continue;
            }
            let words = command_words(&span.text);
            let first = words.first().map(String::as_str).unwrap_or_default();
            // `invoke --native`, `docker clean`; but `docker run` is Docker's.
            let subcommand = subcommands.iter().any(|s| s == first)
                && words.len() > 1
                && match first {
                    "docker" => root
                        .find_subcommand("docker")
                        .unwrap()
                        .find_subcommand(&words[1])
                        .is_some(),
                    _ => true,
                };
            if subcommand {
                check_command(&root, &words, &span, &mut errors);
            } else if first.starts_with('-') && !span.text.starts_with('…') {
                let volume_suffix =
                    ["-registry", "-state", "-target"].contains(&span.text.as_str());
                if !volume_suffix {
                    check_bare_flags(&all, &span, &mut errors);
                }
            }
            check_settings(&span, &mut errors);
            if is_file_name(&span.text) {
                check_file_name(&files, &span, &mut errors);
            }
        }
    }
    assert!(
        errors.is_empty(),
        "the docs name what the code does not have:\n{}",
        errors.join("\n")
    );
}

/// docs/configuration.md's table has one row per key the tables and variables take, and the
/// per-binary table's keys are listed where the page says which they are.
#[test]
fn docs_configuration_lists_every_key() {
    let text = std::fs::read_to_string(Path::new(REPO).join("docs/configuration.md")).unwrap();
    let rows: Vec<String> = text
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|row| row.split_once('`'))
        .map(|(key, _)| key.to_string())
        .collect();
    let keys: Vec<String> = settings_keys().iter().map(|k| k.to_string()).collect();
    let (mut rows_sorted, mut keys_sorted) = (rows.clone(), keys.clone());
    rows_sorted.sort();
    keys_sorted.sort();
    assert_eq!(
        rows_sorted, keys_sorted,
        "docs/configuration.md: its table of keys must have one row per key config.rs reads"
    );
    // Each key's variable is named where the page lists them.
    for key in &keys {
        let var = format!(
            "CARGO_LAMBDA_BUILD_{}",
            key.to_uppercase().replace('-', "_")
        );
        assert!(
            text.contains(&format!("`{var}`")) || text.contains(&format!("`{var}=")),
            "docs/configuration.md: `{var}` is not named"
        );
    }
    // The paragraph that says which keys a per-binary table takes names exactly those.
    let start = text
        .find("A per-binary table")
        .expect("docs/configuration.md: a paragraph starts with \"A per-binary table\"");
    let paragraph = text[start..].split("\n\n").next().unwrap();
    let named: BTreeSet<&str> = (paragraph.split('`').skip(1).step_by(2))
        .filter(|span| keys.iter().any(|key| key == span))
        .collect();
    let expected: BTreeSet<&str> = per_binary_keys().iter().copied().collect();
    assert_eq!(
        named, expected,
        "docs/configuration.md: the keys of a per-binary table, after \"A per-binary table\""
    );
}

/// The pages that say which of cargo-lambda's keys are read name each one: the table of
/// docs/coming-from-cargo-lambda.md, and the README's row for cargo-lambda's tables.
#[test]
fn docs_name_every_cargo_lambda_key_read() {
    let docs = docs();
    let page = |name: &str| &docs.iter().find(|(file, _)| file == name).unwrap().1;
    let places = [
        ("docs/coming-from-cargo-lambda.md", "| cargo-lambda key"),
        ("README.md", "| `[package.metadata.lambda.build]`"),
    ];
    for (file, marker) in places {
        let text = page(file);
        let start = text
            .find(marker)
            .unwrap_or_else(|| panic!("{file}: no line starting with `{marker}`"));
        // The page's table from the marker on; the README's one row.
        let rows = text[start..].lines().take_while(|l| l.starts_with('|'));
        let table: Vec<&str> = rows
            .take(if file == "README.md" { 1 } else { usize::MAX })
            .collect();
        let named: BTreeSet<String> = table
            .iter()
            .flat_map(|row| row.split('`').skip(1).step_by(2))
            .flat_map(|span| span.split([',', ' ', '=']))
            .map(|word| word.trim().to_string())
            .collect();
        let missing: Vec<&str> = (CARGO_LAMBDA_KEYS.iter().copied())
            .filter(|key| !named.contains(*key))
            .collect();
        assert!(
            missing.is_empty(),
            "{file}: the table of cargo-lambda's keys read leaves out {missing:?} (config.rs \
             reads {CARGO_LAMBDA_KEYS:?})"
        );
    }
}

/// The README stays a page a newcomer reads through: the rest goes to docs/.
#[test]
fn docs_readme_stays_under_200_lines() {
    let lines = std::fs::read_to_string(Path::new(REPO).join("README.md"))
        .unwrap()
        .lines()
        .count();
    assert!(
        lines < 200,
        "README.md has {lines} lines: move details to docs/"
    );
}

/// The flag tables (the build's in docs/usage.md, `invoke`'s and `serve`'s in their pages) name
/// every flag `--help` lists for that command, in the table or in the section's text.
#[test]
fn docs_flag_tables_list_every_flag() {
    let root = lambda_build();
    let sections = [
        ("docs/usage.md", "## Build flags", None),
        ("docs/invoke.md", "## Flags", Some("invoke")),
        ("docs/serve.md", "## Flags", Some("serve")),
    ];
    let docs = docs();
    let mut errors = Vec::new();
    for (file, heading, subcommand) in sections {
        let text = &docs.iter().find(|(name, _)| name == file).unwrap().1;
        let start = (text.find(&format!("{heading}\n")))
            .unwrap_or_else(|| panic!("{file}: no section `{heading}`"));
        let section = &text[start..];
        let section = &section[..section[1..]
            .find("\n## ")
            .map_or(section.len(), |end| end + 1)];
        let named: BTreeSet<String> = spans(file, section)
            .iter()
            .flat_map(|span| command_words(&span.text))
            .map(|word| word.split('=').next().unwrap().to_string())
            .collect();
        let command = match subcommand {
            Some(name) => root.find_subcommand(name).unwrap().clone(),
            None => root.clone(),
        };
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if arg.is_hide_set() || ["help", "version"].contains(&long) {
                continue;
            }
            let short = arg.get_short().map(|short| format!("-{short}"));
            if !named.contains(&format!("--{long}")) && !short.is_some_and(|s| named.contains(&s)) {
                errors.push(format!("{file}, {heading}: `--{long}` is not listed"));
            }
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}
