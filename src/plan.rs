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

/// The command as shell words, the way `-v` prints it.
impl fmt::Display for Invocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words = self
            .env
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    k.to_string_lossy(),
                    shell_words::quote(&v.to_string_lossy())
                )
            })
            .chain(
                std::iter::once(self.program.to_string_lossy().into_owned())
                    .map(|p| shell_words::quote(&p).into_owned()),
            )
            .chain(
                self.args
                    .iter()
                    .map(|a| shell_words::quote(&a.to_string_lossy()).into_owned()),
            );
        f.write_str(&words.collect::<Vec<_>>().join(" "))
    }
}

/// Where the result goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// `<outdir>/lambda.zip`, `bootstrap` at its root.
    Zip(PathBuf),
    /// `<outdir>/bootstrap`.
    Bootstrap(PathBuf),
}

impl Output {
    pub fn path(&self) -> &std::path::Path {
        match self {
            Output::Zip(path) | Output::Bootstrap(path) => path,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildPlan {
    pub project: Project,
    pub arch: Arch,
    pub cargo: Invocation,
    /// cargo's target directory: `--target-dir`, else what `cargo metadata` reported.
    pub target_dir: PathBuf,
    /// `<target>/lambda-build/<arch>/<bin>/`: per architecture, so x86_64 and arm64 builds of one
    /// project never overwrite each other.
    pub staging_dir: PathBuf,
    pub output: Output,
    pub verify: bool,
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
        project.manifest_path.clone().into(),
        "--bin".into(),
        project.bin.clone().into(),
    ];
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

    let output = if config.zip {
        Output::Zip(config.outdir.join("lambda.zip"))
    } else {
        Output::Bootstrap(config.outdir.join("bootstrap"))
    };
    BuildPlan {
        project: project.clone(),
        arch: config.arch,
        cargo: Invocation {
            program: cargo.clone(),
            args,
            env: profile_env,
            cwd: cwd.to_path_buf(),
        },
        staging_dir: target_dir
            .join("lambda-build")
            .join(config.arch.lambda_name())
            .join(&project.bin),
        target_dir,
        output,
        verify: config.verify,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use crate::config::Env;
    use clap::Parser;
    use std::path::Path;

    fn project() -> Project {
        Project {
            workspace_root: "/src/ws".into(),
            target_dir: "/src/ws/target".into(),
            package: "api".into(),
            manifest_path: "/src/ws/api/Cargo.toml".into(),
            bin: "handler".into(),
        }
    }

    fn config(args: &[&str]) -> BuildConfig {
        let Cli::LambdaBuild(args) =
            Cli::try_parse_from(["cargo", "lambda-build"].iter().chain(args)).unwrap();
        let env = Env {
            cargo: "/bin/cargo".into(),
            cwd: "/src/ws/api".into(),
            ci: true,
            stderr_is_terminal: false,
            source_date_epoch: None,
        };
        BuildConfig::resolve(args, &env)
    }

    fn plan_for(args: &[&str]) -> BuildPlan {
        let config = config(args);
        let profile_env = profile_env(&config, false, |_| false);
        let cwd = Path::new("/src/ws/api");
        plan(&config, &project(), &"/bin/cargo".into(), cwd, profile_env)
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
             --manifest-path /src/ws/api/Cargo.toml --bin handler --color never"
        );
        assert_eq!(
            plan.output,
            Output::Bootstrap("/src/ws/api/bootstrap".into())
        );
        assert_eq!(
            plan.staging_dir,
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
            plan.staging_dir,
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
            plan.output,
            Output::Zip("/src/ws/api/dist/lambda.zip".into())
        );
        assert!(!plan.verify);
        assert!(!args(&plan).contains(&"--quiet".to_string()));
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
