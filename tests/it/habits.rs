//! What users bring from cargo-lambda and from real projects (issue 17): its command lines, its
//! settings, and the output contracts a script relies on.

use std::fs;

use crate::support::{
    self, EM_AARCH64, EM_X86_64, MAIN, crate_with, elf_machine, lambda_build, stderr, tool,
};

fn bootstrap_of(zip: &std::path::Path, into: &std::path::Path) -> std::path::PathBuf {
    support::read_zip(zip).extract(into).unwrap();
    into.join("bootstrap")
}

/// The command line of AWS's READMEs, `cargo lambda build --release --arm64 --output-format zip`,
/// runs unchanged (with `lambda-build` for `lambda build`), and so do cargo-lambda's other ways
/// to choose the architecture: `--x86-64`, and a target triple for `--target`.
#[test]
fn cargo_lambda_command_lines_choose_the_architecture() {
    if !support::arm64_linker() {
        return;
    }
    let project = crate_with("habit", &[("src/main.rs", MAIN)], "");
    let built = |args: &[&str], artifact: &str| machine_built(project.path(), args, artifact);
    let args = ["--release", "--arm64", "--output-format", "zip"];
    assert_eq!(built(&args, "lambda.zip"), EM_AARCH64);
    let args = [
        "--target",
        "x86_64-unknown-linux-gnu",
        "--output-format",
        "binary",
        "--lambda-dir",
        "out",
    ];
    assert_eq!(built(&args, "out/bootstrap"), EM_X86_64);
    let args = ["--target", "aarch64-unknown-linux-gnu", "-o", "arm"];
    assert_eq!(built(&args, "arm/bootstrap"), EM_AARCH64);
    assert_eq!(
        built(&["--x86-64", "-o", "x86"], "x86/bootstrap"),
        EM_X86_64
    );
}

/// Builds with `args`, which must succeed: the ELF machine of `artifact` (a path in the
/// project; of its `bootstrap` when it is a zip).
fn machine_built(project: &std::path::Path, args: &[&str], artifact: &str) -> u16 {
    let output = lambda_build(project, args);
    assert!(output.status.success(), "{}", stderr(&output));
    let path = project.join(artifact);
    if artifact.ends_with(".zip") {
        elf_machine(&bootstrap_of(&path, &project.join("unzipped")))
    } else {
        elf_machine(&path)
    }
}

#[test]
fn a_musl_or_foreign_target_is_refused_with_the_arch_to_use() {
    let project = crate_with("habit", &[("src/main.rs", MAIN)], "");
    let output = lambda_build(project.path(), &["--target", "aarch64-unknown-linux-musl"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("--arch arm64"), "{err}");
    assert!(!err.contains("--target-dir"), "{err}");
}

/// AWS's examples keep functions under `examples/`: `--example NAME` deploys one.
#[test]
fn an_example_is_built_as_a_function() {
    let project = crate_with(
        "examples-host",
        &[
            (
                "src/lib.rs",
                "pub fn greeting() -> &'static str { \"from an example\" }\n",
            ),
            (
                "examples/basic.rs",
                "fn main() { println!(\"{}\", examples_host::greeting()); }\n",
            ),
        ],
        "",
    );
    let output = lambda_build(project.path(), &["--example", "basic", "--zip"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let bootstrap = bootstrap_of(
        &project.path().join("lambda.zip"),
        &project.path().join("x"),
    );
    let ran = support::output_of_written(&bootstrap);
    assert_eq!(String::from_utf8_lossy(&ran.stdout), "from an example\n");

    let output = lambda_build(project.path(), &["--example", "nope"]);
    support::assert_refused(&output, 1, "no example named `nope`", "--example basic");
}

/// The cargo-lambda flags work but stay out of `-h`, which lists this tool's own; `--help`
/// shows them.
#[test]
fn cargo_lambda_flags_are_in_long_help_only() {
    let help = |flag: &str| {
        let output = tool().arg(flag).output().unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let short = help("-h");
    let long = help("--help");
    let cargo_lambdas = [
        "--release",
        "--arm64",
        "--x86-64",
        "--output-format",
        "--target ",
    ];
    for flag in cargo_lambdas {
        assert!(!short.contains(flag), "{flag} in -h:\n{short}");
    }
    support::assert_contains_all(&long, &cargo_lambdas);
    assert!(long.contains("--example"), "{long}");
}

/// With `--message-format json`, stdout is JSON objects only, each with a `reason` a script
/// selects on: the artifacts (`lambda-artifact`) and `--invoke-with`'s replies
/// (`lambda-invocation`), so `jq 'select(.reason == "lambda-artifact")'` never sees a reply.
#[test]
fn json_stdout_tells_artifacts_and_replies_apart() {
    let project = support::copy_fixture("echo");
    let events = project.path().join("smoke.json");
    fs::write(&events, r#"{"name":"ci"} {"name":"again"}"#).unwrap();
    let output = support::lambda_build_fixture(
        project.path(),
        &[
            "--zip",
            "--message-format",
            "json",
            "--invoke-with",
            "smoke.json",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let reasons: Vec<&str> = lines
        .iter()
        .map(|l| l["reason"].as_str().expect("every object has a reason"))
        .collect();
    assert_eq!(
        reasons,
        ["lambda-artifact", "lambda-invocation", "lambda-invocation"],
        "{stdout}"
    );
    assert!(lines[0]["code_sha256"].is_string(), "{stdout}");
    assert_eq!(lines[1]["function"], "echo", "{stdout}");
    assert_eq!(lines[1]["outcome"], "response", "{stdout}");
    assert_eq!(
        lines[1]["payload"],
        serde_json::json!({"message": "hello, ci"}),
        "{stdout}"
    );
    assert_eq!(lines[2]["payload"]["message"], "hello, again", "{stdout}");
}

fn zip_names(zip: &std::path::Path) -> Vec<String> {
    let mut zip = support::read_zip(zip);
    (0..zip.len())
        .map(|i| zip.by_index(i).unwrap().name().unwrap().to_string())
        .collect()
}

/// `**` means everything below, as in gitignore: `src/**` is the files of `src`, and `**` the
/// package's, top-level files included.
#[test]
fn double_star_means_everything_below() {
    let project = crate_with(
        "globs",
        &[("src/main.rs", MAIN), ("src/deep/x.txt", "x")],
        "",
    );
    let output = lambda_build(project.path(), &["--zip", "--include", "src/**"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        zip_names(&project.path().join("lambda.zip")),
        [
            "bootstrap",
            "src/",
            "src/deep/",
            "src/deep/x.txt",
            "src/main.rs"
        ]
    );
    let output = lambda_build(project.path(), &["--zip", "-o", "out", "--include", "**"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let names = zip_names(&project.path().join("out/lambda.zip"));
    assert!(names.contains(&"Cargo.toml".to_string()), "{names:?}");
    assert!(names.contains(&"src/main.rs".to_string()), "{names:?}");
}

/// A directory include never packs `.git`, a cargo target dir (this build's, or one an earlier
/// build left) or the outdir with the previous zip in it, and says what it left out.
#[test]
fn directory_include_leaves_out_git_target_dirs_and_the_outdir() {
    let project = crate_with(
        "packs-dot",
        &[
            ("src/main.rs", MAIN),
            ("assets/a.txt", "a"),
            (".git/HEAD", "ref: refs/heads/main\n"),
            (
                "target/CACHEDIR.TAG",
                "Signature: 8a477f597d28d172789f06886806bc55\n",
            ),
            ("target/release/old-binary", "old"),
        ],
        "",
    );
    let run = || {
        support::lambda_build_command(
            project.path(),
            &[
                "--zip",
                "-o",
                "dist",
                "--include",
                ".",
                "--target-dir",
                "tgt",
            ],
        )
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap()
    };
    // Twice: the second run finds this build's target dir and the first zip under the root.
    assert!(run().status.success());
    let output = run();
    assert!(output.status.success(), "{}", stderr(&output));
    let names = zip_names(&project.path().join("dist/lambda.zip"));
    for left_out in [".git/", "target/", "tgt/", "dist/"] {
        assert!(
            !names.iter().any(|n| n.starts_with(left_out)),
            "{left_out} packed: {names:?}"
        );
    }
    assert!(names.contains(&"assets/a.txt".to_string()), "{names:?}");
    assert!(names.contains(&"Cargo.toml".to_string()), "{names:?}");
    let err = stderr(&output);
    for skipped in [".git", "target", "tgt", "dist"] {
        assert!(
            err.lines()
                .any(|l| l.contains("not packed") && l.contains(&format!("`{skipped}`"))),
            "no word about {skipped}:\n{err}"
        );
    }
}

/// A linker (named like a gcc, so rustc passes it gcc's arguments) that links, then puts
/// `tests/data/elf/<replacement>` where the executable goes.
fn linker_replacing_output_with(dir: &std::path::Path, replacement: &str) -> (String, String) {
    use std::os::unix::fs::PermissionsExt;
    let replacement = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/elf")
        .join(replacement);
    let script = dir.join("replacing-gcc");
    let text = format!(
        "#!/bin/sh\ncc \"$@\" || exit 1\nprev=\nfor a in \"$@\"; do\n  \
         [ \"$prev\" = -o ] && out=$a\n  prev=$a\ndone\ncp '{}' \"$out\"\n",
        replacement.display()
    );
    fs::write(&script, text).unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    (
        "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER".to_owned(),
        script.to_string_lossy().into_owned(),
    )
}

/// `Checked` means passed: a binary that needs a library provided.al2023 lacks gets no such
/// line, whether it is refused or packaged anyway with `--no-verify`.
#[cfg(target_arch = "x86_64")]
#[test]
fn checked_is_said_only_of_a_binary_that_passed() {
    let project = crate_with("needslib", &[("src/main.rs", MAIN)], "");
    let scratch = tempfile::tempdir().unwrap();
    let (var, linker) = linker_replacing_output_with(scratch.path(), "needs-libfoo");
    for (args, code) in [(&["--zip"][..], 1), (&["--zip", "--no-verify"][..], 0)] {
        let output = support::lambda_build_command(project.path(), args)
            .env(&var, &linker)
            .output()
            .unwrap();
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains("libfoo.so.1"), "{args:?}: {err}");
        assert!(
            !err.lines().any(|l| l.trim_start().starts_with("Checked")),
            "{args:?}: a failed check is said to be checked:\n{err}"
        );
    }
}

/// A virtual workspace of members (name, binary) with `src/main.rs` each.
fn virtual_workspace(members: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = members.iter().map(|(m, _)| format!("\"{m}\"")).collect();
    let root = format!(
        "[workspace]\nresolver = \"2\"\nmembers = [{}]\n",
        names.join(", ")
    );
    fs::write(dir.path().join("Cargo.toml"), root).unwrap();
    for (member, bin) in members {
        fs::create_dir_all(dir.path().join(member).join("src")).unwrap();
        let manifest = format!(
            "[package]\nname = \"{member}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
             [[bin]]\nname = \"{bin}\"\npath = \"src/main.rs\"\n"
        );
        fs::write(dir.path().join(member).join("Cargo.toml"), manifest).unwrap();
        fs::write(dir.path().join(member).join("src/main.rs"), MAIN).unwrap();
    }
    dir
}

/// The help line's first suggested command, run as written: it works (issue 17, item 4).
#[test]
fn advice_for_a_shared_binary_name_is_a_command_that_works() {
    let ws = virtual_workspace(&[("api", "handler"), ("admin", "handler")]);
    let output = lambda_build(ws.path(), &["--bin", "handler"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    let help = err.lines().find(|l| l.starts_with("help:")).expect(&err);
    assert!(help.contains("`--exclude admin`"), "{help}");
    let output = lambda_build(ws.path(), &["--bin", "handler", "--exclude", "admin"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(ws.path().join("bootstrap").is_file());

    // Excluding every function says what was excluded.
    let output = lambda_build(
        ws.path(),
        &["--workspace", "--exclude", "api", "--exclude", "admin"],
    );
    support::assert_refused(
        &output,
        1,
        "`--exclude` left out `api`, `admin`",
        "leave fewer",
    );
}

/// `invoke` on an extension's zip says what it is and what to do, not "not an ELF executable"
/// with advice to build what was just built (issue 17, item 7).
#[test]
fn invoke_on_an_extension_layer_says_it_is_one() {
    let project = crate_with("my-ext", &[("src/main.rs", MAIN)], "");
    let output = lambda_build(project.path(), &["--zip", "--extension"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let output = tool()
        .args(["invoke", "--data", "{}"])
        .current_dir(project.path())
        .output()
        .unwrap();
    let err = support::assert_refused(
        &output,
        1,
        "is an extension layer (extensions/my-ext)",
        "publish-layer-version",
    );
    assert!(!err.contains("not an ELF"), "{err}");
    assert!(!err.contains("START RequestId"), "nothing was run:\n{err}");
}

/// cargo-lambda's settings mean what they meant there; a key with no equivalent is named in a
/// warning with what to write instead (issue 17, item 11).
#[test]
fn cargo_lambda_settings_are_read_and_the_rest_named() {
    let project = crate_with(
        "configured",
        &[("src/main.rs", MAIN), ("data/v.txt", "1")],
        "[package.metadata.lambda.build]\noutput_format = \"zip\"\ninclude = [\"data/v.txt\"]\n\
         compiler = { type = \"cargo\" }\n",
    );
    let output = lambda_build(project.path(), &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        zip_names(&project.path().join("lambda.zip")),
        ["bootstrap", "data/", "data/v.txt"]
    );
    let err = stderr(&output);
    assert!(
        err.lines().any(|l| l.starts_with("warning:")
            && l.contains("`compiler`")
            && l.contains("ignored")),
        "{err}"
    );

    // CargoLambda.toml's [build], at the workspace root.
    let project = crate_with("filed", &[("src/main.rs", MAIN)], "");
    fs::write(
        project.path().join("CargoLambda.toml"),
        "[build]\noutput_format = \"zip\"\nlambda_dir = \"out\"\n",
    )
    .unwrap();
    let output = lambda_build(project.path(), &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        project.path().join("out/lambda.zip").is_file(),
        "{}",
        stderr(&output)
    );
}

/// A workspace whose two functions use one library, `beta` with a feature `alpha` does not
/// ask for: in one cargo run, cargo unifies the feature into `alpha` too.
fn unified_features_workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let path = dir.path().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    };
    write(
        "Cargo.toml",
        "[workspace]\nresolver = \"2\"\nmembers = [\"alpha\", \"beta\", \"shared\"]\n",
    );
    write(
        "shared/Cargo.toml",
        "[package]\nname = \"shared\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[features]\nloud = []\n",
    );
    write(
        "shared/src/lib.rs",
        "pub fn greeting() -> &'static str { if cfg!(feature = \"loud\") { \"HELLO\" } else { \"hello\" } }\n",
    );
    for (name, features) in [("alpha", ""), ("beta", ", features = [\"loud\"]")] {
        write(
            &format!("{name}/Cargo.toml"),
            &format!(
                "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
                 [dependencies]\nshared = {{ path = \"../shared\"{features} }}\n"
            ),
        );
        write(
            &format!("{name}/src/main.rs"),
            "fn main() { println!(\"{}\", shared::greeting()); }\n",
        );
    }
    dir
}

/// `--per-package` builds each package in its own cargo run: a function's zip is the same
/// bytes as when it is built alone, which one `--workspace` run does not give (issue 17,
/// item 14).
#[test]
fn per_package_builds_give_the_bytes_of_a_build_alone() {
    let ws = unified_features_workspace();
    let build = |args: &[&str]| {
        let output = support::lambda_build_command(ws.path(), args)
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    };
    build(&["--zip", "-p", "alpha", "-o", "alone"]);
    build(&["--zip", "--workspace", "-o", "together"]);
    build(&["--zip", "--workspace", "--per-package", "-o", "each"]);
    let alone = fs::read(ws.path().join("alone/lambda.zip")).unwrap();
    let together = fs::read(ws.path().join("together/alpha/lambda.zip")).unwrap();
    let each = fs::read(ws.path().join("each/alpha/lambda.zip")).unwrap();
    // What the documentation warns about: cargo unified `loud` into alpha.
    assert!(alone != together, "one run no longer unifies features");
    assert!(
        alone == each,
        "--per-package gave other bytes than a build alone"
    );
    // beta keeps its feature.
    let beta = bootstrap_of(
        &ws.path().join("each/beta/lambda.zip"),
        &ws.path().join("x-beta"),
    );
    let ran = support::output_of_written(&beta);
    assert_eq!(String::from_utf8_lossy(&ran.stdout), "HELLO\n");
}
