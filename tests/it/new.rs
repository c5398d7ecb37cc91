//! `cargo lambda-build new NAME`, then `cargo lambda-build --zip` in it: two commands from
//! nothing to a zip that passes the provided.al2023 checks, and a SAM template that points at it.

use crate::support;

use std::path::Path;
use std::process::{Command, Output};

use yaml_rust2::{Yaml, YamlLoader};

fn run(dir: &Path, args: &[&str]) -> Output {
    let output = support::tool()
        .args(args)
        .current_dir(dir)
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("runs cargo-lambda-build");
    assert!(
        output.status.success(),
        "`cargo lambda-build {}` failed ({}):\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `--zip --locked` in a generated project (its Cargo.lock must hold as written), in the target
/// dir the other fixtures share, which already has the dependencies; the artifact's JSON.
fn build_zip(dir: &Path) -> serde_json::Value {
    let target_dir = support::fixture_target_dir();
    let args = [
        "--zip",
        "--locked",
        "--target-dir",
        target_dir.to_str().unwrap(),
    ];
    let output = run(dir, &[&args[..], &["--message-format", "json"]].concat());
    serde_json::from_str(String::from_utf8(output.stdout).unwrap().trim()).unwrap()
}

fn yaml(path: &Path) -> Yaml {
    let text = std::fs::read_to_string(path).unwrap();
    let mut docs = YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}\n{text}", path.display()));
    assert_eq!(docs.len(), 1, "{}", path.display());
    docs.remove(0)
}

#[test]
fn new_then_build_gives_a_checked_zip_that_the_sam_template_points_at() {
    let scratch = tempfile::tempdir().unwrap();
    let output = run(scratch.path(), &["new", "hello-fn", "--ci"]);
    let dir = scratch.path().join("hello-fn");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        dir.display().to_string()
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cargo lambda-build --zip"), "{stderr}");

    // The second command.
    let artifact = build_zip(&dir);
    // The build succeeded, so the ELF checks passed; their findings are in the JSON.
    assert_eq!(artifact["function"], "hello-fn");
    assert_eq!(artifact["glibc"], "2.34", "{artifact}");
    let zip = dir.join("lambda.zip");
    assert_eq!(Path::new(artifact["path"].as_str().unwrap()), zip);

    // The SAM template: provided.al2023, bootstrap, the architecture built, CodeUri at the zip.
    let template = yaml(&dir.join("template.yaml"));
    let function = &template["Resources"]["Function"];
    assert_eq!(function["Type"].as_str(), Some("AWS::Serverless::Function"));
    let properties = &function["Properties"];
    assert_eq!(properties["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(properties["Handler"].as_str(), Some("bootstrap"));
    assert_eq!(
        properties["Architectures"][0].as_str(),
        artifact["arch"].as_str()
    );
    let code_uri = properties["CodeUri"].as_str().unwrap();
    assert_eq!(
        dir.join(code_uri),
        zip,
        "CodeUri is relative to template.yaml"
    );

    // The CI workflow builds both architectures and keeps each zip where the tool writes it.
    let workflow = yaml(&dir.join(".github/workflows/lambda.yml"));
    let job = &workflow["jobs"]["build"];
    let arches: Vec<&str> = job["strategy"]["matrix"]["arch"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert_eq!(arches, ["x86_64", "arm64"]);
    let steps = format!("{:?}", job["steps"]);
    assert!(
        steps.contains("--outdir dist/${{ matrix.arch }}")
            && steps.contains("dist/${{ matrix.arch }}/lambda.zip"),
        "{steps}"
    );

    assert_unit_tests_pass(&dir, "greets_by_name_or_the_world");
}

/// The crate's own unit test passes (release and the same target as the build, with the tool's
/// strip setting: nothing to recompile but the crate itself).
fn assert_unit_tests_pass(dir: &Path, test_name: &str) {
    let target_dir = support::fixture_target_dir();
    let host = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let test = Command::new(cargo)
        .args([
            "test",
            "--release",
            "--locked",
            "--target",
            &host,
            "--target-dir",
        ])
        .arg(&target_dir)
        .current_dir(dir)
        .env_remove("CARGO_TARGET_DIR")
        .env("CARGO_PROFILE_RELEASE_STRIP", "symbols")
        .output()
        .unwrap();
    let test_out = String::from_utf8_lossy(&test.stdout);
    assert!(
        test.status.success() && test_out.contains(&format!("{test_name} ... ok")),
        "{test_out}{}",
        String::from_utf8_lossy(&test.stderr)
    );
}

#[test]
fn new_extension_then_build_gives_a_layer_that_the_sam_template_points_at() {
    let scratch = tempfile::tempdir().unwrap();
    run(scratch.path(), &["new", "--extension", "my-ext"]);
    let dir = scratch.path().join("my-ext");
    let artifact = build_zip(&dir);
    assert_eq!(artifact["extension"], true, "{artifact}");
    assert_eq!(artifact["glibc"], "2.34", "{artifact}");
    let zip = dir.join("lambda.zip");
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip).unwrap()).unwrap();
    let names: Vec<(String, Option<u32>)> = (0..archive.len())
        .map(|i| {
            let entry = archive.by_index(i).unwrap();
            (entry.name().unwrap().to_string(), entry.unix_mode())
        })
        .collect();
    assert_eq!(
        names,
        [
            ("extensions/".to_string(), Some(0o40755)),
            ("extensions/my-ext".to_string(), Some(0o100755))
        ]
    );

    let template = yaml(&dir.join("template.yaml"));
    let layer = &template["Resources"]["Extension"];
    assert_eq!(
        layer["Type"].as_str(),
        Some("AWS::Serverless::LayerVersion")
    );
    let properties = &layer["Properties"];
    assert_eq!(dir.join(properties["ContentUri"].as_str().unwrap()), zip);
    assert_eq!(
        properties["CompatibleArchitectures"][0].as_str(),
        artifact["arch"].as_str()
    );
    assert_eq!(
        properties["CompatibleRuntimes"][0].as_str(),
        Some("provided.al2023")
    );

    assert_unit_tests_pass(&dir, "describes_invocations_and_shutdowns");
}

#[test]
fn new_http_gives_a_lambda_http_function_behind_a_function_url() {
    let scratch = tempfile::tempdir().unwrap();
    let output = run(scratch.path(), &["new", "--http", "web-fn"]);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("Lambda HTTP function `web-fn`"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dir = scratch.path().join("web-fn");
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("lambda_http = "), "{manifest}");
    let template = yaml(&dir.join("template.yaml"));
    let properties = &template["Resources"]["Function"]["Properties"];
    assert_eq!(properties["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(properties["CodeUri"].as_str(), Some("lambda.zip"));
    assert_eq!(
        properties["FunctionUrlConfig"]["AuthType"].as_str(),
        Some("NONE")
    );
    assert!(!template["Outputs"]["FunctionUrl"].is_badvalue());
    // The crate's own test; `serve` runs the built zip over HTTP (tests/it/serve.rs).
    assert_unit_tests_pass(&dir, "greets_echoes_and_answers_404");
}

#[test]
fn new_refuses_an_existing_directory() {
    let scratch = tempfile::tempdir().unwrap();
    std::fs::create_dir(scratch.path().join("taken")).unwrap();
    let output = support::tool()
        .args(["new", "taken"])
        .current_dir(scratch.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: `") && stderr.contains("taken` already exists"),
        "{stderr}"
    );
    assert!(stderr.contains("help: "), "{stderr}");
}

/// Inside a workspace, `new` does what `cargo new` does: the crate joins `members` (the root's
/// comments and layout kept), gets no Cargo.lock of its own, and cargo then takes it as a member
/// (before, cargo refused with "current package believes it's in a workspace when it's not").
/// A `members` glob that already takes it in leaves the root untouched; so does `exclude`,
/// which makes it a workspace of its own, with its own lock.
#[test]
fn new_inside_a_workspace_joins_its_members() {
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path();
    let manifest = root.join("Cargo.toml");
    let original = "# the team's functions\n[workspace]\nresolver = \"3\"\n\
                    members = [\"fns/*\"]  # each function\nexclude = [\"vendored\"]\n";
    std::fs::write(&manifest, original).unwrap();

    let output = run(root, &["new", "fc"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("to the workspace's members"), "{stderr}");
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert!(
        text.starts_with("# the team's functions\n") && text.contains("# each function"),
        "the root's comments are kept:\n{text}"
    );
    let parsed: toml::Table = toml::from_str(&text).unwrap();
    let members = parsed["workspace"]["members"].as_array().unwrap();
    assert_eq!(members.len(), 2, "{text}");
    assert_eq!(members[1].as_str(), Some("fc"), "{text}");
    assert!(
        !root.join("fc/Cargo.lock").exists(),
        "a member has no lock of its own"
    );

    // cargo agrees: the crate's workspace is the root.
    let located = Command::new(env!("CARGO"))
        .args(["locate-project", "--workspace", "--message-format", "plain"])
        .current_dir(root.join("fc"))
        .output()
        .unwrap();
    assert!(
        located.status.success(),
        "{}",
        String::from_utf8_lossy(&located.stderr)
    );
    assert_eq!(
        Path::new(String::from_utf8_lossy(&located.stdout).trim()),
        manifest
    );

    // A glob already takes `fns/g` in: the root stays as it is.
    let before = std::fs::read_to_string(&manifest).unwrap();
    run(root, &["new", "fns/g"]);
    assert_eq!(std::fs::read_to_string(&manifest).unwrap(), before);
    assert!(!root.join("fns/g/Cargo.lock").exists());

    // `exclude` leaves `vendored/h` out: a crate of its own, with its lock.
    run(root, &["new", "vendored/h"]);
    assert_eq!(std::fs::read_to_string(&manifest).unwrap(), before);
    assert!(root.join("vendored/h/Cargo.lock").is_file());
}

#[test]
fn new_image_writes_a_sam_template_that_deploys_the_pushed_image() {
    let scratch = tempfile::tempdir().unwrap();
    let output = run(scratch.path(), &["new", "hello-img", "--image"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cargo lambda-build --image REGISTRY/hello-img:latest --push"),
        "{stderr}"
    );
    let template = yaml(&scratch.path().join("hello-img/template.yaml"));
    let properties = &template["Resources"]["Function"]["Properties"];
    assert_eq!(properties["PackageType"].as_str(), Some("Image"));
    assert_eq!(properties["ImageUri"]["Ref"].as_str(), Some("ImageUri"));
    assert_eq!(
        template["Parameters"]["ImageUri"]["Type"].as_str(),
        Some("String")
    );
    // An image function has neither a runtime nor a zip.
    for key in ["Runtime", "Handler", "CodeUri"] {
        assert!(properties[key].is_badvalue(), "{key} in {properties:?}");
    }
    assert_eq!(properties["Architectures"][0].as_str(), Some("x86_64"));
}
