//! Projects written carelessly or by someone else: what ends up in the zip stays inside the
//! package, under relative names, and `-v` does not print the secrets in the environment. (The
//! build container's environment and mounts are checked in `docker.rs`.)

use crate::support;

use std::fs;
use std::io::Read;
use std::os::unix::fs::symlink;

use support::{MAIN, crate_with, lambda_build_command, read_zip, stderr};

/// Names that trip up shells and unzip tools, a link that stays inside (followed: its content is
/// stored under its own name), and nested directories: every entry name is relative, has no
/// `.`/`..` part, no backslash, and no entry is a symbolic link.
#[test]
fn zip_entries_are_relative_names_of_regular_files_and_directories() {
    let project = crate_with("careless", &[("src/main.rs", MAIN)], "");
    let root = project.path();
    for (path, content) in [
        ("assets/-rf", "dash"),
        ("assets/a b/ü ñ.txt", "unicode"),
        ("assets/deep/er/still.json", "{}"),
        ("assets/..hidden", "dots in a name are fine"),
    ] {
        fs::create_dir_all(root.join(path).parent().unwrap()).unwrap();
        fs::write(root.join(path), content).unwrap();
    }
    symlink("deep/er/still.json", root.join("assets/link.json")).unwrap();
    symlink("deep", root.join("assets/deep-link")).unwrap();

    let output = lambda_build_command(root, &["--zip", "--include", "assets"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));

    let mut zip = read_zip(&root.join("lambda.zip"));
    let mut names = Vec::new();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).unwrap();
        let name = entry.name().unwrap().to_string();
        assert!(!name.starts_with('/') && !name.contains('\\'), "{name}");
        let parts: Vec<&str> = name.trim_end_matches('/').split('/').collect();
        assert!(
            parts.iter().all(|p| !matches!(*p, "" | "." | "..")),
            "{name}"
        );
        let mode = entry.unix_mode().unwrap();
        let kind = mode & 0o170000;
        assert!(
            kind == 0o100000 || kind == 0o040000,
            "{name}: mode {mode:o}"
        );
        if name == "assets/link.json" {
            let mut content = String::new();
            entry.read_to_string(&mut content).unwrap();
            assert_eq!(content, "{}");
        }
        names.push(name);
    }
    support::assert_lists_all(
        &names,
        &[
            "bootstrap",
            "assets/-rf",
            "assets/a b/ü ñ.txt",
            "assets/..hidden",
            "assets/link.json",
            "assets/deep-link/er/still.json",
        ],
    );
}

/// `-v` shows the commands it runs; values of variables whose names look secret are masked
/// wherever they would appear, and the build and the function still get them.
#[test]
fn verbose_output_masks_secret_looking_variables() {
    let secrets = [
        ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI-aws-secret"),
        ("AWS_ACCESS_KEY_ID", "AKIA-access-key-id"),
        ("AWS_SESSION_TOKEN", "session-token-value"),
        ("GITHUB_TOKEN", "ghp_github-token-value"),
        ("CARGO_REGISTRY_TOKEN", "cargo-registry-token-value"),
        ("DATABASE_PASSWORD", "database-password-value"),
        ("MY_API_SECRET", "api-secret-value"),
    ];
    // The build script proves the variables reached the build: it fails without them.
    let build_rs = "fn main() {\n\
        for name in [\"GITHUB_TOKEN\", \"DATABASE_PASSWORD\"] {\n\
            assert!(std::env::var(name).is_ok(), \"{name} did not reach the build\");\n\
        }\n\
        println!(\"cargo::rerun-if-env-changed=GITHUB_TOKEN\");\n\
    }\n";
    let project = support::copy_fixture("echo");
    fs::write(project.path().join("build.rs"), build_rs).unwrap();
    fs::write(project.path().join("events.json"), "{\"name\":\"x\"}").unwrap();
    // `--invoke-with` runs the function as `invoke` does, with this machine's AWS credentials
    // (the function may call AWS): `-v` prints that launch too.
    let output = support::lambda_build_fixture_command(
        project.path(),
        &["--zip", "-vv", "--invoke-with", "events.json"],
    )
    .envs(secrets)
    .output()
    .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        stderr(&output)
    );
    // -v really shows the command cargo runs, and the launch with the credentials, masked.
    assert!(all.contains("cargo") && all.contains("build"), "{all}");
    for name in [
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SESSION_TOKEN",
    ] {
        assert!(
            all.contains(&format!("{name}='***'")),
            "{name} not shown masked:\n{all}"
        );
    }
    for (name, value) in secrets {
        assert!(
            !all.contains(value),
            "the value of {name} is in the output:\n{all}"
        );
    }
}
