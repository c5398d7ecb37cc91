//! The crate's shape, checked: modules import downward only (no cycle between the modules of
//! one directory), no module but `env.rs` (and `main.rs`) reads the process environment, and
//! Lambda's facts (its paths, the Runtime and Invoke APIs' versions, the zip's name) are written in
//! `lambda.rs` only.
//!
//! Read from the source text: each `crate::`, `super::` and `self::` path outside `#[cfg(test)]`
//! modules is an edge from the module it is written in to the module it names. Edges between
//! the children of one parent (siblings, top-level modules included) must form no cycle; a
//! child naming its parent is the child living in its parent's house, not a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module's path below the crate root: `["build", "docker", "container"]`.
type ModPath = Vec<String>;

fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            source_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// `src/build/docker/mod.rs` is `build::docker`; `src/lib.rs` is the root.
fn module_of(file: &Path) -> Option<ModPath> {
    let rel = file.strip_prefix(src_dir()).ok()?;
    let mut parts: ModPath = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    match parts.last().map(String::as_str) {
        Some("main") if parts.len() == 1 => return None,
        Some("lib") if parts.len() == 1 => parts.clear(),
        Some("mod") => {
            parts.pop();
        }
        _ => {}
    }
    Some(parts)
}

/// The text without its test modules: tests may reach anywhere to set things up.
fn without_tests(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let line_trimmed = line.trim();
        if (line_trimmed == "#[cfg(test)]" || line_trimmed.starts_with("#[cfg(all(test,"))
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod "))
        {
            break;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every module path the text names through `crate::`, `super::` or `self::`, with the
/// first level of `use crate::{a, b::c}` groups expanded.
fn references(text: &str, module: &ModPath, is_mod_rs: bool) -> Vec<ModPath> {
    let mut found = Vec::new();
    for prefix in ["crate::", "super::", "self::"] {
        let mut rest = text;
        while let Some(at) = rest.find(prefix) {
            let before = rest[..at].chars().last();
            rest = &rest[at + prefix.len()..];
            if before.is_some_and(|c| is_ident(c) || c == ':') {
                continue;
            }
            let base: ModPath = match prefix {
                "crate::" => Vec::new(),
                // In `a/mod.rs` (module `a`), `super` is `a`'s parent; in `a/b.rs`, it is `a`.
                "super::" => {
                    let mut base = module.clone();
                    base.pop();
                    base
                }
                _ => {
                    if is_mod_rs || module.is_empty() {
                        module.clone()
                    } else {
                        // `self::` in a leaf file names its own items.
                        continue;
                    }
                }
            };
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    let names: Vec<String> = item
                        .trim()
                        .split("::")
                        .take_while(|s| !s.is_empty() && s.chars().all(is_ident))
                        .map(str::to_string)
                        .collect();
                    if !names.is_empty() {
                        found.push([base.clone(), names].concat());
                    }
                }
                continue;
            }
            let path: String = rest
                .chars()
                .take_while(|&c| is_ident(c) || c == ':')
                .collect();
            let names: Vec<String> = path
                .split("::")
                .take_while(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            found.push([base, names].concat());
        }
    }
    found
}

/// The sibling edges of the crate: parent path -> (from child, to child) -> where it was seen.
type Edges = BTreeMap<ModPath, BTreeMap<(String, String), String>>;

fn edges() -> Edges {
    let mut files = Vec::new();
    source_files(&src_dir(), &mut files);
    let modules: BTreeSet<ModPath> = files.iter().filter_map(|f| module_of(f)).collect();
    let mut edges: Edges = BTreeMap::new();
    for file in &files {
        let Some(module) = module_of(file) else {
            continue;
        };
        let text = without_tests(&std::fs::read_to_string(file).unwrap());
        let is_mod_rs = file.file_name().is_some_and(|n| n == "mod.rs");
        for reference in references(&text, &module, is_mod_rs) {
            // The longest prefix that is a module: `crate::build::BuildError` is `build`.
            let target = (0..=reference.len())
                .rev()
                .map(|n| reference[..n].to_vec())
                .find(|p| modules.contains(p))
                .unwrap_or_default();
            let common = module
                .iter()
                .zip(&target)
                .take_while(|(a, b)| a == b)
                .count();
            if common < module.len() && common < target.len() {
                let shown = file.strip_prefix(src_dir()).unwrap().display().to_string();
                edges
                    .entry(module[..common].to_vec())
                    .or_default()
                    .entry((module[common].clone(), target[common].clone()))
                    .or_insert(format!("src/{shown} names `{}`", reference.join("::")));
            }
        }
    }
    edges
}

/// A cycle in the graph, as its nodes in order, if there is one.
fn find_cycle(graph: &BTreeMap<(String, String), String>) -> Option<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in graph.keys() {
        next.entry(from.as_str()).or_default().push(to.as_str());
    }
    fn visit<'a>(
        node: &'a str,
        next: &BTreeMap<&'a str, Vec<&'a str>>,
        stack: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| *n == node) {
            let mut cycle: Vec<String> = stack[at..].iter().map(|s| s.to_string()).collect();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if !done.insert(node) {
            return None;
        }
        stack.push(node);
        for to in next.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(to, next, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    for node in next.keys() {
        if let Some(cycle) = visit(node, &next, &mut Vec::new(), &mut done) {
            return Some(cycle);
        }
    }
    None
}

#[test]
fn modules_import_downward_only() {
    let mut problems = Vec::new();
    for (parent, graph) in edges() {
        if let Some(cycle) = find_cycle(&graph) {
            let scope = if parent.is_empty() {
                "crate".to_string()
            } else {
                parent.join("::")
            };
            let steps: Vec<String> = cycle
                .windows(2)
                .map(|w| {
                    format!(
                        "  {} -> {}: {}",
                        w[0],
                        w[1],
                        graph[&(w[0].clone(), w[1].clone())]
                    )
                })
                .collect();
            problems.push(format!(
                "an import cycle among the modules of `{scope}`: {}\n{}",
                cycle.join(" -> "),
                steps.join("\n")
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn the_checker_sees_a_cycle() {
    let mut graph = BTreeMap::new();
    for (a, b) in [
        ("error", "invoke"),
        ("invoke", "report"),
        ("report", "error"),
    ] {
        graph.insert((a.to_string(), b.to_string()), String::new());
    }
    let cycle = find_cycle(&graph).expect("a cycle");
    assert_eq!(cycle.first(), cycle.last());
    assert_eq!(cycle.len(), 4);
    graph.remove(&("report".to_string(), "error".to_string()));
    assert_eq!(find_cycle(&graph), None);
    let refs = references(
        "use crate::{env::Env, plan};\nuse super::engine::x;",
        &vec!["build".into(), "docker".into(), "image".into()],
        false,
    );
    assert!(refs.contains(&vec!["env".to_string(), "Env".to_string()]));
    assert!(refs.contains(&vec!["plan".to_string()]));
    assert!(refs.contains(&vec![
        "build".to_string(),
        "docker".to_string(),
        "engine".to_string(),
        "x".to_string()
    ]));
}

/// `std::env::var*` outside `env.rs` and `main.rs` (tests aside): a process fact read behind the
/// tests' back.
#[test]
fn only_env_rs_reads_the_environment() {
    let mut files = Vec::new();
    source_files(&src_dir(), &mut files);
    let mut offenders = Vec::new();
    for file in files {
        let rel = file.strip_prefix(src_dir()).unwrap().to_path_buf();
        if rel == Path::new("env.rs") || rel == Path::new("main.rs") {
            continue;
        }
        let text = without_tests(&std::fs::read_to_string(&file).unwrap());
        let imports_env = text.contains("use std::env;");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            if code.contains("std::env::var") || (imports_env && code.contains("env::var")) {
                offenders.push(format!("src/{}:{}: {}", rel.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "read the variable through `crate::env::Env` instead:\n{}",
        offenders.join("\n")
    );
}

/// The text with its comments (line, doc and block comments) blanked, string and character
/// literals kept as they are, each line where it was.
fn without_comments(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let at = |i: usize, s: &str| {
        s.chars()
            .enumerate()
            .all(|(k, c)| chars.get(i + k) == Some(&c))
    };
    while i < chars.len() {
        let c = chars[i];
        let after_ident = i > 0 && is_ident(chars[i - 1]);
        if at(i, "//") {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if at(i, "/*") {
            let mut depth = 0;
            while i < chars.len() {
                if at(i, "/*") {
                    depth += 1;
                    i += 2;
                } else if at(i, "*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if chars[i] == '\n' {
                        out.push('\n');
                    }
                    i += 1;
                }
            }
        } else if c == 'r'
            && (!after_ident || (i >= 1 && matches!(chars[i - 1], 'b' | 'c')))
            && chars[i + 1..]
                .iter()
                .position(|c| *c != '#')
                .is_some_and(|n| chars[i + 1 + n] == '"')
        {
            // A raw string: `r"..."`, `r#"..."#`, up to the same number of `#`.
            let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
            let end: String = std::iter::once('"')
                .chain("#".repeat(hashes).chars())
                .collect();
            let start = i;
            i += 2 + hashes;
            while i < chars.len() && !at(i, &end) {
                i += 1;
            }
            i = (i + end.len()).min(chars.len());
            out.extend(&chars[start..i]);
        } else if c == '"' {
            let start = i;
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i = (i + 1).min(chars.len());
            out.extend(&chars[start..i]);
        } else if c == '\'' {
            // A character literal (`'"'`, `b'\''`), or a lifetime, which has no closing quote.
            let len = if chars.get(i + 1) == Some(&'\\') {
                chars
                    .get(i + 3..)
                    .and_then(|rest| rest.iter().position(|c| *c == '\''))
                    .map(|n| n + 4)
            } else {
                (chars.get(i + 2) == Some(&'\'')).then_some(3)
            };
            let len = len.unwrap_or(1);
            out.extend(&chars[i..(i + len).min(chars.len())]);
            i += len;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The facts that `lambda.rs` declares, with their sources, so that a change of Lambda's (a new
/// API version) or of the tool's output name is made in one place.
const LAMBDA_FACTS: &[&str] = &[
    "/var/task",
    "/opt",
    "public.ecr.aws/lambda/provided",
    "2018-06-01",
    "2015-03-31",
    "lambda.zip",
];

/// Whether `line` names `fact` as a whole (`lambda.zip`, not `cargo_lambda.zip()`).
fn names(line: &str, fact: &str) -> bool {
    line.match_indices(fact).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let after = line[at + fact.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

/// Lambda's paths, the Runtime and Invoke APIs' versions and the zip's name written outside
/// `lambda.rs` (comments and tests aside): a fact declared twice, which can change in one place
/// only.
#[test]
fn lambdas_facts_live_in_lambda_rs() {
    let mut files = Vec::new();
    source_files(&src_dir(), &mut files);
    let mut offenders = Vec::new();
    for file in files {
        let rel = file.strip_prefix(src_dir()).unwrap().to_path_buf();
        if rel == Path::new("lambda.rs") {
            continue;
        }
        let text = without_comments(&without_tests(&std::fs::read_to_string(&file).unwrap()));
        for (n, line) in text.lines().enumerate() {
            for fact in LAMBDA_FACTS.iter().filter(|fact| names(line, fact)) {
                offenders.push(format!(
                    "src/{}:{}: `{fact}` in {}",
                    rel.display(),
                    n + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "use the constant of `crate::lambda` (or `lambda::literal!` in a `concat!`) instead:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_checker_sees_facts_in_code_only() {
    let text = "let a = \"/opt/x\"; // in /opt\n/* /var/task /* nested */ lambda.zip */ let b = ('\"', b'\\'', '\\u{22}');\n\
                let c = r#\"2018-06-01 \"quoted\"\"#; let d: &'static str = \"x\"; // lambda.zip\n";
    let code = without_comments(text);
    assert_eq!(code.lines().count(), 3, "{code}");
    assert!(code.contains("\"/opt/x\";"), "{code}");
    assert!(!code.contains("in /opt"), "{code}");
    assert!(
        !code.contains("/var/task") && !code.contains("nested"),
        "{code}"
    );
    assert!(
        code.contains("let b = ('\"', b'\\'', '\\u{22}');"),
        "{code}"
    );
    assert!(code.contains("r#\"2018-06-01 \"quoted\"\"#"), "{code}");
    assert!(code.contains("&'static str = \"x\";"), "{code}");
    assert!(!code.contains("lambda.zip"), "{code}");
    assert!(names("fileb://lambda.zip ...", "lambda.zip"));
    assert!(names("\"/opt/lib\"", "/opt") && names("\"/opt\"", "/opt"));
    assert!(!names("args.cargo_lambda.zip()", "lambda.zip") && !names("/options", "/opt"));
    let tests = without_tests("fn f() {}\n#[cfg(all(test, unix))]\nmod tests {\n    \"/opt\"\n}\n");
    assert!(!tests.contains("/opt"), "{tests}");
}

/// The text with comments, string and character literals blanked to spaces (line breaks kept),
/// so braces and names inside them do not count.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && !chars[..i].last().is_some_and(|&p| is_ident(p))
        {
            // A raw string: r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let close: Vec<char> = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            out.extend(std::iter::repeat_n(' ', j + 1 - i));
            i = j + 1;
            while i < chars.len() && !chars[i..].starts_with(&close) {
                out.push(blank(chars[i]));
                i += 1;
            }
            out.extend(std::iter::repeat_n(' ', close.len()));
            i += close.len();
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < chars.len() {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' {
            // A character literal ('{', '\n', '\u{7f}'), not a lifetime ('a).
            let end = if next == Some('\\') {
                chars[i + 2..]
                    .iter()
                    .position(|&c| c == '\'')
                    .map(|p| i + 2 + p)
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(end) => {
                    out.extend(std::iter::repeat_n(' ', end + 1 - i));
                    i = end + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Every function of the source outside its test modules, as (name, first line, line count),
/// the count running from the `fn` line to its closing brace.
fn function_lengths(text: &str) -> Vec<(String, usize, usize)> {
    let code = code_only(&without_tests(text));
    let lines: Vec<&str> = code.lines().collect();
    let mut found = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(at) = words.iter().position(|w| *w == "fn") else {
            continue;
        };
        let qualifiers = ["pub", "const", "async", "unsafe", "extern", "default"];
        if !words[..at]
            .iter()
            .all(|w| qualifiers.contains(w) || w.starts_with("pub(") || w.starts_with("fn"))
        {
            continue;
        }
        let Some(name) = words.get(at + 1) else {
            continue;
        };
        let name: String = name.chars().take_while(|&c| is_ident(c)).collect();
        // Find the body's opening brace (a `;` first means a declaration without one), then
        // count braces to its end.
        let mut depth = 0usize;
        let mut opened = false;
        let mut end = None;
        'lines: for (n, text) in lines.iter().enumerate().skip(start) {
            for c in text.chars() {
                match c {
                    ';' if !opened => break 'lines,
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' if opened => {
                        depth -= 1;
                        if depth == 0 {
                            end = Some(n);
                            break 'lines;
                        }
                    }
                    _ => {}
                }
            }
        }
        if let Some(end) = end {
            found.push((name, start + 1, end - start + 1));
        }
    }
    found
}

/// Issue 21: a function a reader must hold in mind at once stays short. None over 150 lines,
/// and at most three over 100, outside tests.
#[test]
fn functions_stay_short() {
    let mut files = Vec::new();
    source_files(&src_dir(), &mut files);
    files.sort();
    let mut over_150 = Vec::new();
    let mut over_100 = Vec::new();
    for file in files {
        let rel = file.strip_prefix(src_dir()).unwrap().display().to_string();
        for (name, line, count) in function_lengths(&std::fs::read_to_string(&file).unwrap()) {
            let shown = format!("src/{rel}:{line} `{name}`: {count} lines");
            if count > 150 {
                over_150.push(shown.clone());
            }
            if count > 100 {
                over_100.push(shown);
            }
        }
    }
    assert!(
        over_150.is_empty(),
        "split these functions along their steps (at most 150 lines):\n{}",
        over_150.join("\n")
    );
    assert!(
        over_100.len() <= 3,
        "at most three functions over 100 lines, found {}:\n{}",
        over_100.len(),
        over_100.join("\n")
    );
}

#[test]
fn the_length_checker_counts_bodies_not_strings() {
    let text = "fn a() {\n    let s = \"}}}\";\n    let c = '{';\n    // }\n}\n\
                pub(crate) async fn b<'x>(v: &'x str) -> usize {\n    let r = r#\"{\"#;\n    \
                if true {\n        1\n    } else {\n        2\n    }\n}\n\
                fn decl();\n#[cfg(test)]\nmod tests {\n    fn c() {\n    }\n}\n";
    assert_eq!(
        function_lengths(text),
        vec![("a".to_string(), 1, 5), ("b".to_string(), 6, 8)]
    );
}

/// Issue 21: the core does not depend on clap; `cli.rs` maps flags to domain types.
#[test]
fn only_the_command_line_modules_use_clap() {
    let mut files = Vec::new();
    source_files(&src_dir(), &mut files);
    let allowed = ["cli.rs", "main.rs", "generate.rs"].map(Path::new);
    let mut offenders = Vec::new();
    for file in files {
        let rel = file.strip_prefix(src_dir()).unwrap().to_path_buf();
        if allowed.contains(&rel.as_path()) {
            continue;
        }
        let code = code_only(&without_tests(&std::fs::read_to_string(&file).unwrap()));
        for (n, line) in code.lines().enumerate() {
            let names_clap = line.match_indices("clap").any(|(at, _)| {
                let before = line[..at].chars().last();
                let after = &line[at + 4..];
                !before.is_some_and(is_ident)
                    && (after.starts_with("::")
                        || after.starts_with("_cargo::")
                        || after.starts_with("_complete::")
                        || after.starts_with("_mangen::"))
            });
            if names_clap {
                offenders.push(format!("src/{}:{}: {}", rel.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "define the type in its domain module and map the flag to it in cli.rs:\n{}",
        offenders.join("\n")
    );
}

/// docs/development.md's source layout names every file of `src/` (by its path below `src/`),
/// and no file that is gone: a reader finds each module's purpose there.
#[test]
fn the_development_guide_lists_every_source_file() {
    let guide =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/development.md"))
            .unwrap();
    let layout: BTreeSet<&str> = guide
        .split("<!-- source-layout -->")
        .nth(1)
        .expect("docs/development.md has a <!-- source-layout --> block")
        .lines()
        .skip_while(|line| line.trim().is_empty())
        .take_while(|line| line.starts_with("    "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|word| word.ends_with(".rs"))
        .collect();
    let mut files = Vec::new();
    source_files(&src_dir(), &mut files);
    let files: BTreeSet<String> = files
        .iter()
        .map(|f| {
            f.strip_prefix(src_dir())
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect();
    let missing: Vec<&String> = files
        .iter()
        .filter(|f| !layout.contains(f.as_str()))
        .collect();
    let gone: Vec<&&str> = layout.iter().filter(|f| !files.contains(**f)).collect();
    assert!(
        missing.is_empty() && gone.is_empty(),
        "docs/development.md's source layout: add {missing:?}, remove {gone:?}"
    );
}
