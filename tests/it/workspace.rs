//! Many functions in one run, on the workspace fixture (`tests/fixtures/workspace`: functions
//! `alpha` and `beta`, and `tools`, whose ordinary binary `migrate` its Cargo.toml packages as an
//! extension). One compile serves every assertion: the later runs find everything fresh.

use crate::support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use base64::Engine as _;
use sha2::Digest as _;

fn succeeded(output: Output) -> Output {
    assert!(
        output.status.success(),
        "cargo-lambda-build failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Every file under `dir`, relative, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path.strip_prefix(dir).unwrap();
                found.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    found.sort();
    found
}

/// The zip's entries: name -> Unix mode (file type bits included).
fn zip_modes(path: &Path) -> BTreeMap<String, u32> {
    let mut zip = zip::ZipArchive::new(fs::File::open(path).unwrap()).unwrap();
    (0..zip.len())
        .map(|i| {
            let entry = zip.by_index(i).unwrap();
            (
                entry.name().unwrap().to_string(),
                entry.unix_mode().unwrap(),
            )
        })
        .collect()
}

/// The JSON objects on stdout, one per line; nothing else may be there.
fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"))
        })
        .collect()
}

fn invoke(bootstrap: &Path, payload: &str) -> Option<serde_json::Value> {
    let emulator = support::Emulator::start()?;
    let function = emulator.run_bootstrap(bootstrap, None);
    let (status, body) = emulator.invoke(payload);
    assert_eq!(status, 200, "{body}\n{}", function.output());
    Some(serde_json::from_str(&body).unwrap())
}

#[test]
fn a_workspace_builds_one_zip_per_function_in_one_command() {
    if !support::require_tools(&["cargo-lambda", "unzip"]) {
        return;
    }
    let workspace = support::copy_fixture("workspace");
    let root = workspace.path();

    // --workspace: all three binaries; `migrate` as an extension, from its bin table. This is
    // also the earlier build that leaves every binary in the target dir for the next run.
    let output = succeeded(support::lambda_build_fixture(
        root,
        &["--workspace", "-o", "all"],
    ));
    assert_eq!(
        files_under(&root.join("all")),
        ["alpha/lambda.zip", "beta/lambda.zip", "migrate/lambda.zip"]
    );
    let extension = zip_modes(&root.join("all/migrate/lambda.zip"));
    assert_eq!(
        extension.into_iter().collect::<Vec<_>>(),
        [
            ("extensions/".to_string(), 0o40755),
            ("extensions/migrate".to_string(), 0o100755)
        ]
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("extension     migrate (package tools)"),
        "{stdout}"
    );

    // Two functions by name, from the workspace root (a virtual manifest). `zip = true` comes
    // from [workspace.metadata.lambda-build], alpha's includes from its package table. `migrate`,
    // left in the target dir by the run above, is not packaged.
    let output = succeeded(support::lambda_build_fixture(
        root,
        &[
            "--bin",
            "alpha",
            "--bin",
            "beta",
            "-o",
            "dist",
            "--message-format",
            "json",
        ],
    ));
    assert_eq!(
        files_under(&root.join("dist")),
        ["alpha/lambda.zip", "beta/lambda.zip"]
    );

    // JSON on stdout, one object per artifact, matching the files; people's text on stderr.
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 2, "{lines:?}");
    for (line, function) in lines.iter().zip(["alpha", "beta"]) {
        let path = root.join("dist").join(function).join("lambda.zip");
        let bytes = fs::read(&path).unwrap();
        let digest = sha2::Sha256::digest(&bytes);
        assert_eq!(line["function"], function);
        assert_eq!(line["package"], function);
        assert_eq!(line["arch"], "x86_64");
        assert_eq!(line["extension"], false);
        assert_eq!(Path::new(line["path"].as_str().unwrap()), path);
        assert_eq!(line["size"], bytes.len() as u64);
        assert!(line["unzipped_size"].as_u64().unwrap() > bytes.len() as u64);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(line["sha256"], hex);
        assert_eq!(
            line["code_sha256"],
            base64::engine::general_purpose::STANDARD.encode(digest)
        );
        assert_eq!(line["glibc"], "2.34", "{line}");
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Packaged"), "{stderr}");

    // alpha carries its includes: a directory, a glob, an executable file, modes normalised.
    let alpha_zip = root.join("dist/alpha/lambda.zip");
    let modes = zip_modes(&alpha_zip);
    let expected: BTreeMap<String, u32> = [
        ("bootstrap", 0o100755),
        ("bin/", 0o40755),
        ("bin/hook.sh", 0o100755),
        ("config/", 0o40755),
        ("config/greeting.txt", 0o100644),
        ("config/nested/", 0o40755),
        ("config/nested/log.json", 0o100644),
        ("static/", 0o40755),
        ("static/a.txt", 0o100644),
        ("static/b.txt", 0o100644),
    ]
    .into_iter()
    .map(|(name, mode)| (name.to_string(), mode))
    .collect();
    assert_eq!(modes, expected);
    assert_eq!(
        zip_modes(&root.join("dist/beta/lambda.zip"))
            .into_keys()
            .collect::<Vec<_>>(),
        ["bootstrap"]
    );

    // Each zip answers as its own function; alpha reads the file it carries.
    let unzipped = root.join("unzipped");
    let alpha = support::extract_bootstrap(&alpha_zip, &unzipped.join("alpha"));
    let mode = fs::metadata(unzipped.join("alpha/bin/hook.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    if let Some(answer) = invoke(&alpha, r#"{"name": "Ferris"}"#) {
        assert_eq!(
            answer,
            serde_json::json!({"function": "alpha", "message": "bonjour, Ferris"})
        );
    }
    let beta =
        support::extract_bootstrap(&root.join("dist/beta/lambda.zip"), &unzipped.join("beta"));
    if let Some(answer) = invoke(&beta, r#"{"name": "Ferris"}"#) {
        assert_eq!(
            answer,
            serde_json::json!({"function": "beta", "message": "hello, Ferris"})
        );
    }

    // The same inputs give the same bytes.
    assert_eq!(
        fs::read(root.join("all/alpha/lambda.zip")).unwrap(),
        fs::read(&alpha_zip).unwrap()
    );

    // --exclude, and one function: the single-function layout, `--extension` from the command
    // line, command-line includes replacing the package's.
    succeeded(support::lambda_build_fixture(
        root,
        &["--workspace", "--exclude", "tools", "-o", "ex"],
    ));
    assert_eq!(
        files_under(&root.join("ex")),
        ["alpha/lambda.zip", "beta/lambda.zip"]
    );
    succeeded(support::lambda_build_fixture(
        root,
        &["-p", "beta", "--extension", "-o", "one"],
    ));
    assert_eq!(
        zip_modes(&root.join("one/lambda.zip"))
            .into_keys()
            .collect::<Vec<_>>(),
        ["extensions/", "extensions/beta"]
    );
    succeeded(support::lambda_build_fixture(
        root,
        &["-p", "alpha", "--include", "static/*.txt", "-o", "inc"],
    ));
    assert_eq!(
        zip_modes(&root.join("inc/lambda.zip"))
            .into_keys()
            .collect::<Vec<_>>(),
        ["bootstrap", "static/", "static/a.txt", "static/b.txt"]
    );
    // The environment over Cargo.toml: no zip, so the executables themselves.
    let output = support::tool()
        .args(["--bin", "alpha", "--bin", "beta", "-o", "plain", "-q"])
        .args(["--locked", "--target-dir"])
        .arg(support::fixture_target_dir())
        .current_dir(root)
        .env("CARGO_LAMBDA_BUILD_ZIP", "false")
        .output()
        .unwrap();
    let output = succeeded(output);
    assert_eq!(
        files_under(&root.join("plain")),
        ["alpha/bootstrap", "beta/bootstrap"]
    );
    // Includes go only into a zip: a warning says so.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("includes are packaged only into a zip"),
        "{stderr}"
    );
}

#[test]
fn a_binary_name_in_two_selected_packages_is_refused_naming_both() {
    let workspace = support::copy_fixture("workspace");
    let root = workspace.path();
    // A second package with a binary named `alpha`.
    let twin = root.join("twin");
    fs::create_dir_all(twin.join("src/bin")).unwrap();
    fs::write(
        twin.join("Cargo.toml"),
        "[package]\nname = \"twin\"\nversion = \"0.1.0\"\nedition = \"2024\"\n",
    )
    .unwrap();
    fs::write(twin.join("src/bin/alpha.rs"), "fn main() {}\n").unwrap();
    let manifest = fs::read_to_string(root.join("Cargo.toml")).unwrap();
    fs::write(
        root.join("Cargo.toml"),
        manifest.replace(r#""tools"]"#, r#""tools", "twin"]"#),
    )
    .unwrap();

    let output = support::tool()
        .args(["--workspace"])
        .current_dir(root)
        .env(
            "CARGO_TARGET_DIR",
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("unused"),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "error: two selected binaries are named `alpha`: one in package `alpha`, one in package `twin`"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("help: "), "{stderr}");
    assert!(!stderr.contains("Compiling"), "{stderr}");
}
