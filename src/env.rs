//! Every fact the tool takes from its process: variables, the current directory, whether stderr
//! is a terminal, whether this is CI. Read once, in [`Env::from_process`], and passed down, so
//! that no stage looks at the process itself and tests can set any of them. A leaf: it imports
//! nothing of the crate.
//!
//! Verbosity and colour are resolved here too, once, from the flags and these facts.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

/// The prefix of the configuration layer's variables (`CARGO_LAMBDA_BUILD_ARCH`, ...).
pub const CONFIG_PREFIX: &str = "CARGO_LAMBDA_BUILD_";

/// What the tool reads from its surroundings.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// The cargo that invoked us (`$CARGO`), else `cargo` on PATH.
    pub cargo: OsString,
    pub cwd: PathBuf,
    /// `CI` is set (and not `false`): no progress display, whatever the terminal.
    pub ci: bool,
    pub stderr_is_terminal: bool,
    /// Every variable of the process, as it was at the start.
    vars: BTreeMap<OsString, OsString>,
}

impl Env {
    pub fn from_process() -> std::io::Result<Env> {
        use std::io::IsTerminal;
        let vars: BTreeMap<OsString, OsString> = std::env::vars_os().collect();
        Ok(Env::new(
            std::env::current_dir()?,
            std::io::stderr().is_terminal(),
            vars,
        ))
    }

    /// An environment made of these facts: for tests, and for `from_process`.
    pub fn new(
        cwd: PathBuf,
        stderr_is_terminal: bool,
        vars: impl IntoIterator<Item = (impl Into<OsString>, impl Into<OsString>)>,
    ) -> Env {
        let vars: BTreeMap<OsString, OsString> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let ci = vars
            .get(OsStr::new("CI"))
            .is_some_and(|v| !v.is_empty() && v != "false");
        Env {
            cargo: vars
                .get(OsStr::new("CARGO"))
                .cloned()
                .unwrap_or_else(|| "cargo".into()),
            cwd,
            ci,
            stderr_is_terminal,
            vars,
        }
    }

    /// A variable's value when it is set, non-empty and Unicode.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.var_os(name)?.to_str()
    }

    /// A variable's value when it is set and non-empty.
    pub fn var_os(&self, name: &str) -> Option<&OsStr> {
        self.vars
            .get(OsStr::new(name))
            .map(OsString::as_os_str)
            .filter(|v| !v.is_empty())
    }

    /// Whether the variable is set at all, even empty: cargo treats an empty
    /// `CARGO_PROFILE_*` as set.
    pub fn is_set(&self, name: &str) -> bool {
        self.vars.contains_key(OsStr::new(name))
    }

    /// Every variable, in name order.
    pub fn vars(&self) -> impl Iterator<Item = (&OsStr, &OsStr)> {
        self.vars
            .iter()
            .map(|(k, v)| (k.as_os_str(), v.as_os_str()))
    }

    /// Every `CARGO_LAMBDA_BUILD_*` variable, name and value.
    pub fn config_vars(&self) -> Vec<(String, String)> {
        self.vars()
            .filter_map(|(name, value)| {
                let name = name.to_str()?;
                name.starts_with(CONFIG_PREFIX)
                    .then(|| (name.to_owned(), value.to_string_lossy().into_owned()))
            })
            .collect()
    }

    /// `SOURCE_DATE_EPOCH`, as given (it is validated where it is used).
    pub fn source_date_epoch(&self) -> Option<&OsStr> {
        self.vars
            .get(OsStr::new("SOURCE_DATE_EPOCH"))
            .map(OsString::as_os_str)
    }

    /// `$HOME`; on Windows `%USERPROFILE%`, where cargo and the docker CLI look.
    pub fn home(&self) -> Option<PathBuf> {
        let name = if cfg!(windows) { "USERPROFILE" } else { "HOME" };
        self.var_os(name).map(PathBuf::from)
    }

    /// cargo's home: `$CARGO_HOME`, else `~/.cargo`.
    pub fn cargo_home(&self) -> Option<PathBuf> {
        match self.var_os("CARGO_HOME") {
            Some(home) => Some(self.cwd.join(home)),
            None => self.home().map(|home| home.join(".cargo")),
        }
    }

    /// `QEMU_LD_PREFIX`, qemu-user's own variable for the sysroot it runs an executable of the
    /// other architecture with (its `-L`), relative to the current directory.
    pub fn qemu_ld_prefix(&self) -> Option<PathBuf> {
        self.var_os("QEMU_LD_PREFIX").map(|dir| self.cwd.join(dir))
    }

    /// The rustc cargo runs: `$RUSTC`, else `rustc` on PATH.
    pub fn rustc(&self) -> OsString {
        self.var_os("RUSTC")
            .map(OsStr::to_os_string)
            .unwrap_or_else(|| "rustc".into())
    }
}

/// How much the tool says on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verbosity {
    Quiet,
    #[default]
    Normal,
    /// `-v`: the commands that are run.
    Verbose,
    /// `-vv`: cargo's verbose output too.
    VeryVerbose,
}

impl Verbosity {
    pub fn from_flags(quiet: bool, verbose: u8) -> Verbosity {
        match (quiet, verbose) {
            (true, _) => Verbosity::Quiet,
            (false, 0) => Verbosity::Normal,
            (false, 1) => Verbosity::Verbose,
            (false, _) => Verbosity::VeryVerbose,
        }
    }

    /// `-v` or more.
    pub fn verbose(self) -> bool {
        matches!(self, Verbosity::Verbose | Verbosity::VeryVerbose)
    }
}

/// `--color` (the command line's parser is in `cli.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// How stderr is written: resolved once from `-v`/`-q`/`--color` and the process facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ui {
    pub verbosity: Verbosity,
    /// Colours on stderr.
    pub color: bool,
    /// An animated progress display: stderr is a terminal, this is not CI, and not `-q`.
    pub progress: bool,
}

impl Ui {
    pub fn resolve(quiet: bool, verbose: u8, color: Option<ColorChoice>, env: &Env) -> Ui {
        let verbosity = Verbosity::from_flags(quiet, verbose);
        Ui {
            verbosity,
            color: match color {
                Some(ColorChoice::Always) => true,
                Some(ColorChoice::Never) => false,
                Some(ColorChoice::Auto) | None => env.stderr_is_terminal,
            },
            progress: env.stderr_is_terminal && !env.ci && verbosity != Verbosity::Quiet,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn env(terminal: bool, vars: &[(&str, &str)]) -> Env {
        Env::new("/w".into(), terminal, vars.iter().copied())
    }

    #[test]
    fn ci_means_set_and_not_false() {
        assert!(env(false, &[("CI", "true")]).ci);
        assert!(env(false, &[("CI", "1")]).ci);
        assert!(!env(false, &[("CI", "false")]).ci);
        assert!(!env(false, &[("CI", "")]).ci);
        assert!(!env(false, &[]).ci);
    }

    #[test]
    fn cargo_and_cargo_home_come_from_the_variables() {
        let home = if cfg!(windows) { "USERPROFILE" } else { "HOME" };
        let e = env(false, &[("CARGO", "/x/cargo"), (home, "/home/u")]);
        assert_eq!(e.cargo, "/x/cargo");
        assert_eq!(e.cargo_home(), Some(Path::new("/home/u").join(".cargo")));
        let e = env(false, &[("CARGO_HOME", "ch"), (home, "/home/u")]);
        assert_eq!(e.cargo, "cargo");
        assert_eq!(e.cargo_home(), Some(Path::new("/w").join("ch")));
        assert_eq!(e.qemu_ld_prefix(), None);
        let e = env(false, &[("QEMU_LD_PREFIX", "sysroot")]);
        assert_eq!(e.qemu_ld_prefix(), Some(Path::new("/w").join("sysroot")));
    }

    #[test]
    fn empty_values_are_unset_but_still_set() {
        let e = env(false, &[("CARGO_PROFILE_RELEASE_STRIP", "")]);
        assert_eq!(e.var("CARGO_PROFILE_RELEASE_STRIP"), None);
        assert!(e.is_set("CARGO_PROFILE_RELEASE_STRIP"));
    }

    #[test]
    fn only_prefixed_variables_are_config() {
        let e = env(
            false,
            &[("CARGO_LAMBDA_BUILD_ARCH", "arm64"), ("ARCH", "x")],
        );
        assert_eq!(
            e.config_vars(),
            [("CARGO_LAMBDA_BUILD_ARCH".to_owned(), "arm64".to_owned())]
        );
    }

    #[test]
    fn ui_follows_flags_terminal_and_ci() {
        let terminal = env(true, &[]);
        let ui = Ui::resolve(false, 0, None, &terminal);
        assert!(ui.color && ui.progress);
        let ui = Ui::resolve(true, 0, Some(ColorChoice::Never), &terminal);
        assert_eq!(ui.verbosity, Verbosity::Quiet);
        assert!(!ui.color && !ui.progress);
        let ci = env(true, &[("CI", "true")]);
        assert!(!Ui::resolve(false, 2, None, &ci).progress);
        assert_eq!(
            Ui::resolve(false, 2, None, &ci).verbosity,
            Verbosity::VeryVerbose
        );
        let pipe = env(false, &[]);
        assert!(Ui::resolve(false, 0, Some(ColorChoice::Always), &pipe).color);
        assert!(!Ui::resolve(false, 0, None, &pipe).progress);
    }
}
