//! The build plan: pure data that says what will be built, how, and where it goes. Nothing here
//! runs anything, so tests can check every decision.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

use crate::arch::Arch;
use crate::config::{BuildConfig, Verbosity};
use crate::project::Project;

/// A command to run, kept as data so it can be printed and inspected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub program: OsString,
    pub args: Vec<OsString>,
    /// Variables set on top of the inherited environment.
    pub env: Vec<(OsString, OsString)>,
    pub cwd: PathBuf,
}

impl Invocation {
    pub fn command(&self) -> std::process::Command {
        let mut command = std::process::Command::new(&self.program);
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.cwd);
        command
    }
}

/// The command as shell words, the way `-v` prints it: secret-looking values masked.
impl fmt::Display for Invocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::redact::command_line(
            self.env
                .iter()
                .map(|(k, v)| (k.to_string_lossy(), v.to_string_lossy())),
            &self.program,
            self.args.iter().map(OsString::as_os_str),
        ))
    }
}

/// Where a function's result goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// `<outdir>/lambda.zip`, with `bootstrap` (or `extensions/<bin>`) in it.
    Zip(PathBuf),
    /// The executable itself: `<outdir>/bootstrap`, or `<outdir>/extensions/<bin>` for an
    /// extension (the layout of the zip, so the directory can serve as a layer).
    Bootstrap(PathBuf),
}

impl Output {
    pub fn path(&self) -> &std::path::Path {
        match self {
            Output::Zip(path) | Output::Bootstrap(path) => path,
        }
    }
}

/// One binary, packaged as its own function (or extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionPlan {
    pub package: String,
    pub bin: String,
    pub manifest_path: PathBuf,
    /// `<target>/lambda-build/<arch>/<bin>/`: per architecture, so x86_64 and arm64 builds of
    /// one project never overwrite each other.
    pub staging_dir: PathBuf,
    pub output: Output,
    /// The executable's name in the zip: `bootstrap`, where Lambda looks for a function, or
    /// `extensions/<bin>`, where it looks for an extension in a layer.
    pub entry_name: String,
    pub extension: bool,
    /// Patterns relative to `package_root`, for the zip.
    pub include: Vec<String>,
    pub package_root: PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BuildPlan {
    pub project: Project,
    pub arch: Arch,
    /// One cargo invocation builds every function.
    pub cargo: Invocation,
    /// cargo's target directory: `--target-dir`, else what `cargo metadata` reported.
    pub target_dir: PathBuf,
    /// In the project's order.
    pub functions: Vec<FunctionPlan>,
    pub verify: bool,
}

impl BuildPlan {
    /// The functions' binaries for a status line: "`api`, `worker`".
    pub fn bin_list(&self) -> String {
        self.functions
            .iter()
            .map(|f| format!("`{}`", f.bin))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Profile settings through cargo's `CARGO_PROFILE_<NAME>_<KEY>` variables. By default only
/// `strip = "symbols"`, and only when the profile says nothing about stripping or debug info:
/// symbols are a third of a release binary and Lambda has no use for them (a panic message
/// still names its file and line). `--small` trades build time for size and overrides the
/// profile. A variable the user already set wins.
pub fn profile_env(
    config: &BuildConfig,
    profile_sets_strip: bool,
    already_set: impl Fn(&str) -> bool,
) -> Vec<(OsString, OsString)> {
    let prefix = format!(
        "CARGO_PROFILE_{}_",
        config.profile.to_uppercase().replace('-', "_")
    );
    let mut settings = Vec::new();
    if config.small {
        settings.extend([("OPT_LEVEL", "s"), ("LTO", "fat"), ("CODEGEN_UNITS", "1")]);
    }
    if config.small || !profile_sets_strip {
        settings.push(("STRIP", "symbols"));
    }
    settings
        .into_iter()
        .map(|(key, value)| (format!("{prefix}{key}"), value))
        .filter(|(name, _)| !already_set(name))
        .map(|(name, value)| (name.into(), value.into()))
        .collect()
}

pub fn plan(
    config: &BuildConfig,
    project: &Project,
    cargo: &OsString,
    cwd: &std::path::Path,
    profile_env: Vec<(OsString, OsString)>,
) -> BuildPlan {
    let target_dir = config
        .target_dir
        .clone()
        .unwrap_or_else(|| project.target_dir.clone());
    let mut args: Vec<OsString> = vec![
        "build".into(),
        "--message-format".into(),
        "json-render-diagnostics".into(),
        "--target".into(),
        config.arch.triple().into(),
        "--profile".into(),
        config.profile.clone().into(),
        "--manifest-path".into(),
        project.functions[0].manifest_path.clone().into(),
    ];
    let mut packages: Vec<&str> = Vec::new();
    for function in &project.functions {
        if !packages.contains(&function.package.as_str()) {
            packages.push(&function.package);
        }
    }
    for package in packages {
        args.push("-p".into());
        args.push(package.into());
    }
    for function in &project.functions {
        args.push("--bin".into());
        args.push(function.bin.clone().into());
    }
    let features = &config.features;
    if !features.features.is_empty() {
        args.push("--features".into());
        args.push(features.features.join(",").into());
    }
    let flags = [
        (features.all_features, "--all-features"),
        (features.no_default_features, "--no-default-features"),
        (config.locked, "--locked"),
        (config.offline, "--offline"),
        (config.frozen, "--frozen"),
        (config.verbosity == Verbosity::Quiet, "--quiet"),
        (config.verbosity == Verbosity::VeryVerbose, "--verbose"),
    ];
    args.extend(
        flags
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, flag)| OsString::from(flag)),
    );
    if let Some(dir) = &config.target_dir {
        args.push("--target-dir".into());
        args.push(dir.clone().into());
    }
    // cargo's stderr is piped through this tool, so cargo cannot see the terminal itself.
    args.push("--color".into());
    args.push(if config.color { "always" } else { "never" }.into());

    let several = project.functions.len() > 1;
    let functions = project
        .functions
        .iter()
        .zip(&config.functions)
        .map(|(function, settings)| {
            // With several functions, each gets its own directory, named after its binary.
            let dir = if several {
                settings.outdir.join(&function.bin)
            } else {
                settings.outdir.clone()
            };
            let entry_name = if settings.extension {
                format!("extensions/{}", function.bin)
            } else {
                "bootstrap".to_string()
            };
            FunctionPlan {
                package: function.package.clone(),
                bin: function.bin.clone(),
                manifest_path: function.manifest_path.clone(),
                staging_dir: target_dir
                    .join("lambda-build")
                    .join(config.arch.lambda_name())
                    .join(&function.bin),
                output: if settings.zip {
                    Output::Zip(dir.join("lambda.zip"))
                } else {
                    Output::Bootstrap(dir.join(&entry_name))
                },
                entry_name,
                extension: settings.extension,
                include: settings.include.clone(),
                package_root: function.package_root().to_path_buf(),
            }
        })
        .collect();
    BuildPlan {
        project: project.clone(),
        arch: config.arch,
        cargo: Invocation {
            program: cargo.clone(),
            args,
            env: profile_env,
            cwd: cwd.to_path_buf(),
        },
        target_dir,
        functions,
        verify: config.verify,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use crate::config::Env;
    use crate::project::Function;
    use clap::Parser;
    use std::path::Path;

    fn function(package: &str, bin: &str) -> Function {
        Function {
            package: package.into(),
            manifest_path: format!("/src/ws/{package}/Cargo.toml").into(),
            bin: bin.into(),
            package_config: serde_json::Value::Null,
        }
    }

    fn project() -> Project {
        project_of(vec![function("api", "handler")])
    }

    fn project_of(functions: Vec<Function>) -> Project {
        Project {
            workspace_root: "/src/ws".into(),
            target_dir: "/src/ws/target".into(),
            workspace_config: serde_json::Value::Null,
            functions,
        }
    }

    fn plan_for(args: &[&str]) -> BuildPlan {
        plan_of(args, &project())
    }

    fn plan_of(args: &[&str], project: &Project) -> BuildPlan {
        let config = config_of(args, project);
        let profile_env = profile_env(&config, false, |_| false);
        let cwd = Path::new("/src/ws/api");
        plan(&config, project, &"/bin/cargo".into(), cwd, profile_env)
    }

    fn config(args: &[&str]) -> BuildConfig {
        config_of(args, &project())
    }

    fn config_of(args: &[&str], project: &Project) -> BuildConfig {
        let Cli::LambdaBuild(args) =
            Cli::try_parse_from(["cargo", "lambda-build"].iter().chain(args)).unwrap();
        let env = Env {
            cargo: "/bin/cargo".into(),
            cwd: "/src/ws/api".into(),
            ci: true,
            stderr_is_terminal: false,
            source_date_epoch: None,
            config_vars: Vec::new(),
        };
        BuildConfig::resolve(args, &env, project).unwrap()
    }

    fn args(plan: &BuildPlan) -> Vec<String> {
        plan.cargo
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn default_is_a_release_build_for_x86_64_read_from_json() {
        let plan = plan_for(&[]);
        assert_eq!(
            plan.cargo.to_string(),
            "CARGO_PROFILE_RELEASE_STRIP=symbols /bin/cargo build \
             --message-format json-render-diagnostics \
             --target x86_64-unknown-linux-gnu --profile release \
             --manifest-path /src/ws/api/Cargo.toml -p api --bin handler --color never"
        );
        assert_eq!(
            plan.functions[0].output,
            Output::Bootstrap("/src/ws/api/bootstrap".into())
        );
        assert_eq!(plan.functions[0].entry_name, "bootstrap");
        assert_eq!(
            plan.functions[0].staging_dir,
            Path::new("/src/ws/target/lambda-build/x86_64/handler")
        );
        assert!(plan.verify);
    }

    #[test]
    fn cargo_flags_are_forwarded() {
        let plan = plan_for(&[
            "-F",
            "a,b",
            "--no-default-features",
            "--locked",
            "--offline",
            "--frozen",
            "--profile",
            "dev",
            "--target-dir",
            "/tmp/t",
            "-vv",
            "--color",
            "always",
        ]);
        let args = args(&plan);
        for expected in [
            "--features",
            "a,b",
            "--no-default-features",
            "--locked",
            "--offline",
            "--frozen",
            "--verbose",
        ] {
            assert!(
                args.contains(&expected.to_string()),
                "{expected} missing from {args:?}"
            );
        }
        let after = |flag: &str| args[args.iter().position(|a| a == flag).unwrap() + 1].clone();
        assert_eq!(after("--profile"), "dev");
        assert_eq!(after("--target-dir"), "/tmp/t");
        assert_eq!(after("--color"), "always");
        assert_eq!(
            plan.functions[0].staging_dir,
            Path::new("/tmp/t/lambda-build/x86_64/handler")
        );
    }

    fn names(env: &[(OsString, OsString)]) -> Vec<String> {
        env.iter()
            .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
            .collect()
    }

    #[test]
    fn symbols_are_stripped_unless_the_profile_or_the_user_decides() {
        let release = config(&[]);
        assert_eq!(
            names(&profile_env(&release, false, |_| false)),
            ["CARGO_PROFILE_RELEASE_STRIP=symbols"]
        );
        assert!(profile_env(&release, true, |_| false).is_empty());
        assert!(
            profile_env(&release, false, |name| name
                == "CARGO_PROFILE_RELEASE_STRIP")
            .is_empty()
        );
        let custom = config(&["--profile", "lambda-fast"]);
        assert_eq!(
            names(&profile_env(&custom, false, |_| false)),
            ["CARGO_PROFILE_LAMBDA_FAST_STRIP=symbols"]
        );
    }

    #[test]
    fn small_overrides_the_profile_but_not_the_user() {
        let small = config(&["--small"]);
        assert_eq!(
            names(&profile_env(&small, true, |name| name == "CARGO_PROFILE_RELEASE_LTO")),
            [
                "CARGO_PROFILE_RELEASE_OPT_LEVEL=s",
                "CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1",
                "CARGO_PROFILE_RELEASE_STRIP=symbols"
            ]
        );
    }

    #[test]
    fn zip_goes_to_outdir() {
        let plan = plan_for(&["--zip", "--outdir", "dist", "--no-verify"]);
        assert_eq!(
            plan.functions[0].output,
            Output::Zip("/src/ws/api/dist/lambda.zip".into())
        );
        assert!(!plan.verify);
        assert!(!args(&plan).contains(&"--quiet".to_string()));
    }

    #[test]
    fn several_functions_build_in_one_invocation_into_one_directory_each() {
        let project = project_of(vec![
            function("api", "api"),
            function("jobs", "nightly"),
            function("jobs", "hourly"),
        ]);
        let plan = plan_of(&["--zip", "-o", "dist"], &project);
        let shown = plan.cargo.to_string();
        assert!(
            shown.contains(
                "--manifest-path /src/ws/api/Cargo.toml -p api -p jobs \
                 --bin api --bin nightly --bin hourly"
            ),
            "{shown}"
        );
        let outputs: Vec<_> = plan.functions.iter().map(|f| f.output.clone()).collect();
        assert_eq!(
            outputs,
            ["api", "nightly", "hourly"]
                .map(|bin| Output::Zip(format!("/src/ws/api/dist/{bin}/lambda.zip").into()))
        );
        let plan = plan_of(&[], &project);
        assert_eq!(
            plan.functions[1].output,
            Output::Bootstrap("/src/ws/api/nightly/bootstrap".into())
        );
    }

    #[test]
    fn an_extension_is_packaged_under_extensions() {
        let plan = plan_for(&["--extension", "--zip"]);
        assert_eq!(plan.functions[0].entry_name, "extensions/handler");
        assert_eq!(
            plan.functions[0].output,
            Output::Zip("/src/ws/api/lambda.zip".into())
        );
        let plan = plan_for(&["--extension"]);
        assert_eq!(
            plan.functions[0].output,
            Output::Bootstrap("/src/ws/api/extensions/handler".into())
        );
    }

    #[test]
    fn quiet_is_passed_to_cargo() {
        assert!(args(&plan_for(&["-q"])).contains(&"--quiet".to_string()));
    }

    #[test]
    fn printed_command_quotes_what_needs_quoting() {
        let mut plan = plan_for(&[]);
        plan.cargo.env = vec![("CC".into(), "zig cc".into())];
        plan.cargo.args.push("a b".into());
        let shown = plan.cargo.to_string();
        assert!(shown.starts_with("CC='zig cc' /bin/cargo build"), "{shown}");
        assert!(shown.ends_with(" 'a b'"), "{shown}");
    }
}
