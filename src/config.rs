//! One resolved `BuildConfig` from the command line and the environment. The facts about the
//! process (terminal, CI, cwd) are read once here and passed down, so tests can set them.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::arch::Arch;
use crate::cli::{BuildArgs, ColorChoice};
use crate::error::Result;

/// What the tool reads from its surroundings.
#[derive(Debug, Clone)]
pub struct Env {
    /// The cargo that invoked us (`$CARGO`), else `cargo` on PATH.
    pub cargo: OsString,
    pub cwd: PathBuf,
    /// `CI` is set: no progress bars, whatever the terminal.
    pub ci: bool,
    pub stderr_is_terminal: bool,
    pub source_date_epoch: Option<String>,
}

impl Env {
    pub fn from_process() -> Result<Env> {
        use std::io::IsTerminal;
        Ok(Env {
            cargo: std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()),
            cwd: std::env::current_dir()
                .map_err(|e| anyhow::anyhow!("cannot read the current directory: {e}"))?,
            ci: std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false"),
            stderr_is_terminal: std::io::stderr().is_terminal(),
            source_date_epoch: std::env::var("SOURCE_DATE_EPOCH").ok(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    Quiet,
    Normal,
    /// `-v`: the commands that are run.
    Verbose,
    /// `-vv`: cargo's verbose output too.
    VeryVerbose,
}

/// Everything the later stages need to know about what the user asked for.
#[derive(Debug, Clone)]
pub struct BuildConfig {
    pub arch: Arch,
    pub zip: bool,
    /// Absolute.
    pub outdir: PathBuf,
    pub verify: bool,
    /// `--small`: the size-optimised settings override the profile's.
    pub small: bool,
    pub profile: String,
    pub package: Option<String>,
    pub bin: Option<String>,
    pub features: clap_cargo::Features,
    /// Absolute, when given.
    pub target_dir: Option<PathBuf>,
    pub manifest_path: Option<PathBuf>,
    pub locked: bool,
    pub offline: bool,
    pub frozen: bool,
    pub verbosity: Verbosity,
    /// Colors on stderr.
    pub color: bool,
    /// An animated progress display on stderr.
    pub progress: bool,
    pub source_date_epoch: Option<String>,
    /// `--invoke-with`: events to run the result on after packaging. Absolute.
    pub invoke_with: Option<PathBuf>,
}

impl BuildConfig {
    pub fn resolve(args: BuildArgs, env: &Env) -> BuildConfig {
        let verbosity = match (args.quiet, args.verbose) {
            (true, _) => Verbosity::Quiet,
            (false, 0) => Verbosity::Normal,
            (false, 1) => Verbosity::Verbose,
            (false, _) => Verbosity::VeryVerbose,
        };
        let color = ColorChoice::resolve(args.color, env.stderr_is_terminal);
        BuildConfig {
            arch: args.arch,
            zip: args.zip,
            outdir: env.cwd.join(args.outdir.unwrap_or_default()),
            verify: !args.no_verify,
            small: args.small,
            profile: args.profile,
            package: args.package,
            bin: args.bin,
            features: args.features,
            target_dir: args.target_dir.map(|dir| env.cwd.join(dir)),
            manifest_path: args.manifest_path.map(|path| env.cwd.join(path)),
            locked: args.locked,
            offline: args.offline,
            frozen: args.frozen,
            verbosity,
            color,
            progress: env.stderr_is_terminal && !env.ci && verbosity != Verbosity::Quiet,
            source_date_epoch: env.source_date_epoch.clone(),
            invoke_with: args.invoke_with.map(|file| env.cwd.join(file)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn env(terminal: bool, ci: bool) -> Env {
        Env {
            cargo: "cargo".into(),
            cwd: PathBuf::from("/home/me/fn"),
            ci,
            stderr_is_terminal: terminal,
            source_date_epoch: None,
        }
    }

    fn config(args: &[&str], env: &Env) -> BuildConfig {
        let Cli::LambdaBuild(args) =
            Cli::try_parse_from(["cargo", "lambda-build"].iter().chain(args)).unwrap();
        BuildConfig::resolve(args, env)
    }

    #[test]
    fn paths_are_relative_to_the_current_directory() {
        let c = config(&["-o", "dist", "--target-dir", "t"], &env(false, false));
        assert_eq!(c.outdir, PathBuf::from("/home/me/fn/dist"));
        assert_eq!(c.target_dir, Some(PathBuf::from("/home/me/fn/t")));
        let c = config(&["-o", "/abs"], &env(false, false));
        assert_eq!(c.outdir, PathBuf::from("/abs"));
        // `mix lambda.build` writes into the current directory by default.
        assert_eq!(
            config(&[], &env(false, false)).outdir,
            PathBuf::from("/home/me/fn")
        );
    }

    #[test]
    fn progress_only_on_a_terminal_outside_ci() {
        assert!(config(&[], &env(true, false)).progress);
        assert!(!config(&[], &env(true, true)).progress);
        assert!(!config(&[], &env(false, false)).progress);
        assert!(!config(&["-q"], &env(true, false)).progress);
    }

    #[test]
    fn color_follows_the_flag_then_the_terminal() {
        assert!(config(&[], &env(true, false)).color);
        assert!(!config(&["--color", "never"], &env(true, false)).color);
        assert!(config(&["--color", "always"], &env(false, false)).color);
    }
}
