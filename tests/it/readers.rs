//! The zip is accepted everywhere: the tool's real `lambda.zip` (the echo fixture, with an
//! `--include` of a file and of a directory) read back by four zip readers that share no code
//! with the `zip` crate that wrote it: Python's `zipfile`, Info-ZIP `unzip`, libarchive's
//! `bsdtar` and 7-Zip. Each must list the same entries with Lambda's modes (755 for `bootstrap`,
//! executables and directories, 644 for other files), find every CRC right, and extract the
//! same content with those modes.
//!
//! Each reader is its own test, so that a failure names the reader; under
//! `LAMBDA_BUILD_TEST_REQUIRE_ALL=1` a missing reader fails instead of skipping.

use crate::support::{self, assert_ran};

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the zip must hold, in its order: `bootstrap` first, then by name.
const EXPECTED: [(&str, u32); 6] = [
    ("bootstrap", 0o100_755),
    ("assets/", 0o040_755),
    ("assets/run.sh", 0o100_755),
    ("assets/sub/", 0o040_755),
    ("assets/sub/data.txt", 0o100_644),
    ("config.json", 0o100_644),
];

/// The fixture with its includes, built and packaged by the tool.
struct Built {
    project: tempfile::TempDir,
    zip: PathBuf,
    /// Entry name -> content, for files.
    contents: Vec<(String, Vec<u8>)>,
}

/// Includes whose modes on disk are not Lambda's, so the zip's modes show normalisation.
/// The zip, where `tool` (a reader) is installed; else a skip (a failure in CI).
fn build_for(tool: &str) -> Option<Built> {
    support::require_tool(tool).then(build)
}

fn build() -> Built {
    let project = support::copy_fixture("echo");
    let root = project.path();
    let files: [(&str, &[u8], u32); 3] = [
        ("config.json", b"{\"table\": \"orders\"}\n", 0o600),
        ("assets/run.sh", b"#!/bin/sh\necho run\n", 0o700),
        ("assets/sub/data.txt", &[0, 1, 2, 255, b'\n', b'x'], 0o640),
    ];
    for (name, content, mode) in files {
        let path = root.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, content).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    }
    for dir in ["assets", "assets/sub"] {
        fs::set_permissions(root.join(dir), fs::Permissions::from_mode(0o700)).unwrap();
    }
    let output = support::lambda_build_fixture(
        root,
        &["--zip", "--include", "config.json", "--include", "assets"],
    );
    support::assert_success(&output);

    // What cargo built, the reference for `bootstrap`.
    let executable = support::fixture_target_dir().join("x86_64-unknown-linux-gnu/release/echo");
    let mut contents = vec![("bootstrap".to_owned(), fs::read(&executable).unwrap())];
    for (name, content, _) in files {
        contents.push((name.to_owned(), content.to_vec()));
    }
    assert!(contents[0].1.starts_with(b"\x7fELF"));
    Built {
        zip: root.join("lambda.zip"),
        project,
        contents,
    }
}

impl Built {
    fn content(&self, name: &str) -> &[u8] {
        &self
            .contents
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no content for {name}"))
            .1
    }

    /// Extracts the zip with `reader` into a fresh directory inside the project copy (removed
    /// with it), `args(dir)` then the zip on its command line, and checks what it extracted.
    fn extract_with(&self, reader: &str, args: impl Fn(String) -> Vec<String>) {
        let dir = self.project.path().join(format!("extracted-{reader}"));
        fs::create_dir(&dir).unwrap();
        let args = args(dir.to_str().unwrap().to_owned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(reader, &args, &self.zip);
        self.assert_extracted(reader, &dir);
    }

    /// The extracted tree has exactly the expected entries, modes and contents.
    fn assert_extracted(&self, reader: &str, dir: &Path) {
        let mut found = Vec::new();
        walk(dir, dir, &mut found);
        found.sort();
        let mut expected: Vec<(String, u32)> = EXPECTED
            .iter()
            .map(|(name, mode)| (name.trim_end_matches('/').to_owned(), *mode))
            .collect();
        expected.sort();
        assert_eq!(found, expected, "{reader}: extracted names and modes");
        for (name, mode) in EXPECTED {
            if mode & 0o170_000 == 0o100_000 {
                assert!(
                    fs::read(dir.join(name)).unwrap() == self.content(name),
                    "{reader}: the extracted `{name}` differs from its source"
                );
            }
        }
    }
}

fn walk(root: &Path, dir: &Path, found: &mut Vec<(String, u32)>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = fs::symlink_metadata(&path).unwrap();
        let name = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        found.push((name, meta.permissions().mode()));
        if meta.is_dir() {
            walk(root, &path, found);
        }
    }
}

fn run(program: &str, args: &[&str], zip: &Path) -> String {
    let output = Command::new(program)
        .args(args)
        .arg(zip)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert_ran(program, &output);
    String::from_utf8(output.stdout).unwrap()
}

/// `-rwxr-xr-x` or `drwxr-xr-x` to a mode with its file type.
fn parse_mode(text: &str) -> u32 {
    assert_eq!(text.len(), 10, "{text:?}");
    let kind = match text.as_bytes()[0] {
        b'-' => 0o100_000,
        b'd' => 0o040_000,
        b'l' => 0o120_000,
        other => panic!("file type {:?} in {text:?}", other as char),
    };
    let bits = text[1..]
        .bytes()
        .fold(0, |mode, c| (mode << 1) | u32::from(c != b'-'));
    kind | bits
}

fn expected_listing() -> Vec<(String, u32)> {
    EXPECTED
        .iter()
        .map(|(name, mode)| ((*name).to_owned(), *mode))
        .collect()
}

#[test]
fn python_zipfile_reads_the_modes_and_content() {
    let Some(built) = build_for("python3") else {
        return;
    };
    let script = "import hashlib, json, sys, zipfile\n\
        with zipfile.ZipFile(sys.argv[1]) as z:\n\
        \x20   print(json.dumps({'bad': z.testzip(), 'entries': [[i.filename, i.external_attr >> 16, \
        i.create_system, i.compress_type, len(i.extra), list(i.date_time), \
        z.read(i).hex()] for i in z.infolist()]}))\n";
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&built.zip)
        .output()
        .unwrap();
    assert_ran("python3", &output);
    let got: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(got["bad"], serde_json::Value::Null, "a CRC is wrong");
    let entries = got["entries"].as_array().unwrap();
    let listing: Vec<(String, u32)> = entries
        .iter()
        .map(|e| {
            (
                e[0].as_str().unwrap().to_owned(),
                e[1].as_u64().unwrap() as u32,
            )
        })
        .collect();
    assert_eq!(listing, expected_listing());
    for e in entries {
        let name = e[0].as_str().unwrap();
        // Made on Unix (3), files deflated (8) and directories stored (0), no extra fields, the
        // zip epoch (no SOURCE_DATE_EPOCH).
        assert_eq!(e[2], 3, "{name}");
        assert_eq!(e[3], if name.ends_with('/') { 0 } else { 8 }, "{name}");
        assert_eq!(e[4], 0, "{name}");
        assert_eq!(e[5], serde_json::json!([1980, 1, 1, 0, 0, 0]), "{name}");
        if !name.ends_with('/') {
            let content = hex(built.content(name));
            assert!(e[6].as_str() == Some(content.as_str()), "{name} differs");
        }
    }
}

#[test]
fn info_zip_unzip_tests_lists_and_extracts_with_the_modes() {
    let Some(built) = build_for("unzip") else {
        return;
    };
    let test = run("unzip", &["-t"], &built.zip);
    assert!(test.contains("No errors detected"), "{test}");

    // zipinfo: `-rwxr-xr-x  3.0 unx   123 bx   45 defN 80-Jan-01 00:00 bootstrap`.
    let listing: Vec<(String, u32)> = run("unzip", &["-Z", "-l"], &built.zip)
        .lines()
        .filter(|line| line.starts_with(['-', 'd', 'l']))
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(fields[2], "unx", "{line}");
            (fields[fields.len() - 1].to_owned(), parse_mode(fields[0]))
        })
        .collect();
    assert_eq!(listing, expected_listing());

    built.extract_with("unzip", |dir| vec!["-q".into(), "-d".into(), dir]);
}

#[test]
fn bsdtar_lists_and_extracts_with_the_modes() {
    let Some(built) = build_for("bsdtar") else {
        return;
    };
    // `-rwxr-xr-x  0 0      0     123 Jan  1  1980 bootstrap`
    let listing: Vec<(String, u32)> = run("bsdtar", &["-tvf"], &built.zip)
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields[fields.len() - 1].to_owned(), parse_mode(fields[0]))
        })
        .collect();
    assert_eq!(listing, expected_listing());

    built.extract_with("bsdtar", |dir| vec!["-C".into(), dir, "-xpf".into()]);
}

#[test]
fn seven_zip_tests_lists_and_extracts_with_the_modes() {
    let Some(built) = build_for("7z") else { return };
    let test = run("7z", &["t"], &built.zip);
    assert!(test.contains("Everything is Ok"), "{test}");

    // `7z l -slt`: one block per entry, `Path = lib` and `Attributes = D drwxr-xr-x`. 7-Zip
    // shows directories without their trailing `/`.
    let technical = run("7z", &["l", "-slt"], &built.zip);
    let blocks = technical
        .split("\n\n")
        .filter(|block| block.contains("Attributes = "));
    let listing: Vec<(String, u32)> = blocks
        .map(|block| {
            let field = |key: &str| {
                block
                    .lines()
                    .find_map(|line| line.strip_prefix(key))
                    .unwrap_or_else(|| panic!("no `{key}` in:\n{block}"))
                    .trim()
                    .to_owned()
            };
            assert_eq!(field("Host OS = "), "Unix", "{block}");
            let attributes = field("Attributes = ");
            let mode = parse_mode(attributes.split_whitespace().last().unwrap());
            let path = field("Path = ");
            let name = if mode & 0o040_000 != 0 {
                format!("{path}/")
            } else {
                path
            };
            (name, mode)
        })
        .collect();
    assert_eq!(listing, expected_listing());

    built.extract_with("7z", |dir| vec!["x".into(), format!("-o{dir}")]);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
