//! A Lambda build never compiles for the build machine's CPU. `-C target-cpu=native` (rustc) and
//! `-march=native`, `-mcpu=native`, `-mtune=native` (the C compilers build scripts run through
//! the `cc` crate) make code for the CPU the build runs on; Lambda's hosts are other CPUs, and
//! the function dies with SIGILL on the first instruction they lack (cargo-lambda issue #934, on
//! arm64). `-mtune` adds no instruction, but it makes the bytes depend on the build machine.
//!
//! The flags are read as cargo and cc read them, from facts passed in ([`Facts`]), so [`find`]
//! needs no cargo: the one source cargo takes rustc's flags from (`CARGO_ENCODED_RUSTFLAGS`,
//! else `RUSTFLAGS`, else `target.*.rustflags`, else `build.rustflags`), and every
//! `CFLAGS`-like variable cc joins. [`refuse`] gathers the facts of the plan's backend (a
//! `--docker` container sees fewer variables and files than the host) before compiling.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use cargo_metadata::cargo_platform::{Cfg, Platform};

use crate::arch::Arch;
use crate::build::docker::container::passthrough_env;
use crate::env::Env;
use crate::lambda;
use crate::plan::{Backend, BuildPlan};

/// Where a flag was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A variable of the environment cargo runs in.
    Var(String),
    /// A key of one of cargo's configuration files.
    Config { path: PathBuf, key: String },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Var(name) => write!(f, "`{name}`"),
            Origin::Config { path, key } => write!(f, "`{key}` in `{}`", path.display()),
        }
    }
}

/// The compiler a flag is for: each pins a CPU its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compiler {
    Rustc,
    C,
}

/// A flag that compiles for the build machine's CPU, and where it was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeFlag {
    /// As written: `-C target-cpu=native`, `-march=native`.
    pub flag: String,
    /// The option it sets: `target-cpu`, `-march`, `-mcpu`, `-mtune`.
    pub option: &'static str,
    pub compiler: Compiler,
    pub origin: Origin,
}

/// One of cargo's configuration files, parsed.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub table: toml::Table,
}

/// What decides the flags of one build.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub arch: Arch,
    /// Whether cc sees a cross build: it then reads `TARGET_CFLAGS`, else `HOST_CFLAGS`.
    pub cross: bool,
    /// The variables cargo runs with, empty ones too (an empty `RUSTFLAGS` still wins).
    pub vars: &'a BTreeMap<String, String>,
    /// cargo's configuration files in the order cargo finds them: the nearest first.
    pub configs: &'a [ConfigFile],
}

#[derive(Debug, thiserror::Error)]
pub enum NativeCpuError {
    #[error(
        "{} asks for `{}`, which compiles for this machine's CPU: Lambda's {arch} hosts may lack \
         its instructions, and the function would die with SIGILL", .flag.origin, .flag.flag
    )]
    Native { flag: NativeFlag, arch: Arch },
}

impl NativeCpuError {
    pub fn help(&self) -> Option<String> {
        let NativeCpuError::Native { flag, arch } = self;
        Some(format!(
            "remove `{}` from {}, or pin a CPU Lambda's {arch} hosts have: `{}`",
            flag.flag,
            flag.origin,
            pinned(flag, *arch)
        ))
    }
}

/// The flag that pins a CPU every Lambda host of `arch` has, in place of `flag`.
fn pinned(flag: &NativeFlag, arch: Arch) -> String {
    let cpu = lambda::cpu(arch);
    match (flag.compiler, arch, flag.option) {
        (Compiler::Rustc, ..) => format!("-C target-cpu={cpu}"),
        (Compiler::C, Arch::X86_64, "-march") => format!("-march={cpu}"),
        // `-mcpu` is an old name of `-mtune` on x86.
        (Compiler::C, Arch::X86_64, _) => "-mtune=generic".into(),
        // Neoverse N1 implements Armv8.2-A.
        (Compiler::C, Arch::Arm64, "-march") => "-march=armv8.2-a".into(),
        (Compiler::C, Arch::Arm64, option) => format!("{option}={cpu}"),
    }
}

/// Refuses, before compiling, a build of `plan` that would compile for this machine's CPU.
pub fn refuse(plan: &BuildPlan, env: &Env) -> Result<(), NativeCpuError> {
    let docker = matches!(plan.backend, Backend::Docker(_));
    let (vars, paths) = seen_by_cargo(docker, &plan.cargo.cwd, &plan.project.workspace_root, env);
    let configs = read_configs(&paths);
    let facts = Facts {
        arch: plan.arch,
        // cc compares its host triple (rustc's) with the target's: a Linux host of the same
        // architecture is the one build that is not a cross build.
        cross: !(cfg!(target_os = "linux") && Arch::host() == Some(plan.arch)),
        vars: &vars,
        configs: &configs,
    };
    match find(&facts) {
        Some(flag) => Err(NativeCpuError::Native {
            flag,
            arch: plan.arch,
        }),
        None => Ok(()),
    }
}

/// The variables cargo runs with and the configuration files it reads, starting in `cwd`. On
/// the host, all of them. A `--docker` container gets the variables `passthrough_env` keeps (no
/// `CFLAGS`), its own empty `CARGO_HOME`, and the workspace's files from the directory cargo
/// starts in (as `container::spec` chooses it) upwards: nothing of the host above the workspace.
fn seen_by_cargo(
    docker: bool,
    cwd: &Path,
    workspace_root: &Path,
    env: &Env,
) -> (BTreeMap<String, String>, Vec<PathBuf>) {
    let host_vars = env
        .vars()
        .filter_map(|(k, v)| Some((k.to_str()?.to_owned(), v.to_str()?.to_owned())));
    if !docker {
        let paths = config_paths(cwd, None, env.cargo_home().as_deref());
        return (host_vars.collect(), paths);
    }
    let workdir = if cwd.starts_with(workspace_root) {
        cwd
    } else {
        workspace_root
    };
    (
        passthrough_env(host_vars).into_iter().collect(),
        config_paths(workdir, Some(workspace_root), None),
    )
}

/// The configuration files cargo reads, nearest first: in `start` and each directory above it
/// (up to `stop`, when given), `.cargo/config` or else `.cargo/config.toml` (cargo takes the
/// name without extension when both are there); then the one in `cargo_home`, unless the walk
/// found it already.
pub fn config_paths(start: &Path, stop: Option<&Path>, cargo_home: Option<&Path>) -> Vec<PathBuf> {
    let in_dir = |dir: &Path| {
        ["config", "config.toml"]
            .iter()
            .map(|name| dir.join(name))
            .find(|path| path.is_file())
    };
    let mut paths = Vec::new();
    for dir in start.ancestors() {
        paths.extend(in_dir(&dir.join(".cargo")));
        if Some(dir) == stop {
            break;
        }
    }
    if let Some(home) = cargo_home.and_then(in_dir)
        && !paths.contains(&home)
    {
        paths.push(home);
    }
    paths
}

/// The files that parse; cargo itself says what is wrong with the others when it starts.
fn read_configs(paths: &[PathBuf]) -> Vec<ConfigFile> {
    paths
        .iter()
        .filter_map(|path| {
            let table = std::fs::read_to_string(path).ok()?.parse().ok()?;
            Some(ConfigFile {
                path: path.clone(),
                table,
            })
        })
        .collect()
}

/// The first flag of the build that compiles for the build machine's CPU: rustc's, then the C
/// compiler's (`CFLAGS`), then the C++ compiler's (`CXXFLAGS`).
pub fn find(facts: &Facts) -> Option<NativeFlag> {
    native_target_cpu(&rustc_flags(facts))
        .or_else(|| native_c_flag(&c_flags(facts, "CFLAGS")))
        .or_else(|| native_c_flag(&c_flags(facts, "CXXFLAGS")))
}

/// A flag as cargo or cc will pass it, and where it was set.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    text: String,
    origin: Origin,
}

fn words(value: &str, origin: &Origin) -> Vec<Token> {
    value
        .split_whitespace()
        .map(|word| Token {
            text: word.to_owned(),
            origin: origin.clone(),
        })
        .collect()
}

/// rustc's flags for the target, from the one source cargo takes them from.
fn rustc_flags(facts: &Facts) -> Vec<Token> {
    let var = |name: &str| {
        let origin = Origin::Var(name.to_owned());
        facts.vars.get(name).map(|value| (value.as_str(), origin))
    };
    if let Some((value, origin)) = var("CARGO_ENCODED_RUSTFLAGS") {
        return value
            .split('\x1f')
            .filter(|flag| !flag.is_empty())
            .map(|flag| Token {
                text: flag.to_owned(),
                origin: origin.clone(),
            })
            .collect();
    }
    if let Some((value, origin)) = var("RUSTFLAGS") {
        return words(value, &origin);
    }
    // `target.<triple>.rustflags` (its variable's flags after the files'), then every
    // `target.'cfg(..)'` that matches, in key order; if any is set, `build.rustflags` is not read.
    let triple = facts.arch.triple();
    let mut target = config_flags(facts.configs, &["target", triple, "rustflags"]);
    let name = format!(
        "CARGO_TARGET_{}_RUSTFLAGS",
        triple.to_uppercase().replace(['-', '.'], "_")
    );
    if let Some((value, origin)) = var(&name) {
        target.get_or_insert_default().extend(words(value, &origin));
    }
    let cfgs: BTreeSet<&String> = facts
        .configs
        .iter()
        .filter_map(|file| file.table.get("target")?.as_table())
        .flat_map(|table| table.keys())
        .filter(|key| cfg_matches(key, facts.arch))
        .collect();
    for key in cfgs {
        if let Some(flags) = config_flags(facts.configs, &["target", key, "rustflags"]) {
            target.get_or_insert_default().extend(flags);
        }
    }
    if let Some(flags) = target {
        return flags;
    }
    let mut build = config_flags(facts.configs, &["build", "rustflags"]);
    if let Some((value, origin)) = var("CARGO_BUILD_RUSTFLAGS") {
        build.get_or_insert_default().extend(words(value, &origin));
    }
    build.unwrap_or_default()
}

/// The flags at `key` merged over the files as cargo merges them: lists are joined, the
/// farthest file's first; a string (flags separated by spaces) replaces what farther files
/// set. `None` when no file sets it.
fn config_flags(configs: &[ConfigFile], key: &[&str]) -> Option<Vec<Token>> {
    let shown = key
        .iter()
        .map(|part| match part.starts_with("cfg(") {
            true => format!("'{part}'"),
            false => (*part).to_owned(),
        })
        .collect::<Vec<_>>()
        .join(".");
    let (last, tables) = key.split_last()?;
    let mut flags: Option<Vec<Token>> = None;
    for file in configs.iter().rev() {
        let mut value = Some(&file.table);
        for part in tables {
            value = value.and_then(|table| table.get(*part)?.as_table());
        }
        let Some(value) = value.and_then(|table| table.get(*last)) else {
            continue;
        };
        let origin = Origin::Config {
            path: file.path.clone(),
            key: shown.clone(),
        };
        let found = flags.get_or_insert_default();
        match value {
            toml::Value::String(value) => *found = words(value, &origin),
            toml::Value::Array(items) => {
                found.extend(
                    items
                        .iter()
                        .filter_map(toml::Value::as_str)
                        .map(|flag| Token {
                            text: flag.to_owned(),
                            origin: origin.clone(),
                        }),
                );
            }
            // cargo refuses the file and says why.
            _ => {}
        }
    }
    flags
}

/// What `rustc --print cfg --target <triple>` says (rustc 1.9x), for `target.'cfg(..)'` tables.
fn target_cfg(arch: Arch) -> Vec<Cfg> {
    let common = [
        "debug_assertions",
        "panic=\"unwind\"",
        "target_abi=\"\"",
        "target_endian=\"little\"",
        "target_env=\"gnu\"",
        "target_family=\"unix\"",
        "target_has_atomic=\"8\"",
        "target_has_atomic=\"16\"",
        "target_has_atomic=\"32\"",
        "target_has_atomic=\"64\"",
        "target_has_atomic=\"ptr\"",
        "target_os=\"linux\"",
        "target_pointer_width=\"64\"",
        "target_vendor=\"unknown\"",
        "unix",
    ];
    let own: &[&str] = match arch {
        Arch::X86_64 => &[
            "target_arch=\"x86_64\"",
            "target_feature=\"fxsr\"",
            "target_feature=\"sse\"",
            "target_feature=\"sse2\"",
        ],
        Arch::Arm64 => &[
            "target_arch=\"aarch64\"",
            "target_feature=\"neon\"",
            "target_has_atomic=\"128\"",
        ],
    };
    common
        .iter()
        .chain(own)
        .filter_map(|cfg| Cfg::from_str(cfg).ok())
        .collect()
}

/// Whether a `target` table's key is a `cfg(..)` that the target matches.
fn cfg_matches(key: &str, arch: Arch) -> bool {
    key.starts_with("cfg(")
        && Platform::from_str(key).is_ok_and(|p| p.matches(arch.triple(), &target_cfg(arch)))
}

/// `-C target-cpu=native` when it is the last `target-cpu` rustc is given (the last one wins).
fn native_target_cpu(flags: &[Token]) -> Option<NativeFlag> {
    let mut last = None;
    let mut flags = flags.iter();
    while let Some(flag) = flags.next() {
        let (option, shown, origin) = match flag.text.as_str() {
            "-C" | "--codegen" => {
                let Some(next) = flags.next() else { break };
                (
                    next.text.as_str(),
                    format!("{} {}", flag.text, next.text),
                    &next.origin,
                )
            }
            text => match text
                .strip_prefix("--codegen=")
                .or_else(|| text.strip_prefix("-C"))
            {
                Some(option) => (option, text.to_owned(), &flag.origin),
                None => continue,
            },
        };
        if let Some(cpu) = option.strip_prefix("target-cpu=") {
            last = Some((cpu, shown, origin));
        }
    }
    let (cpu, flag, origin) = last?;
    (cpu == "native").then(|| NativeFlag {
        flag,
        option: "target-cpu",
        compiler: Compiler::Rustc,
        origin: origin.clone(),
    })
}

/// The flags cc gives the C compiler (`var` is `CFLAGS` or `CXXFLAGS`): it joins every variable
/// it reads, `CFLAGS` first and `CFLAGS_<triple>` last (cc's `envflags`), each as a build
/// script sees it.
fn c_flags(facts: &Facts, var: &str) -> Vec<Token> {
    let triple = facts.arch.triple();
    let kind = if facts.cross { "TARGET" } else { "HOST" };
    [
        var.to_owned(),
        format!("{kind}_{var}"),
        format!("{var}_{}", triple.replace(['-', '.'], "_")),
        format!("{var}_{triple}"),
    ]
    .iter()
    .flat_map(|name| build_script_var(facts, name))
    .collect()
}

/// A variable as a build script sees it: the environment's, else the `[env]` table's of the
/// nearest configuration file that sets it (which wins over the environment with `force`).
fn build_script_var(facts: &Facts, name: &str) -> Vec<Token> {
    let config = facts.configs.iter().find_map(|file| {
        let (value, force) = match file.table.get("env")?.get(name)? {
            toml::Value::String(value) => (value.as_str(), false),
            toml::Value::Table(table) => (
                table.get("value")?.as_str()?,
                table
                    .get("force")
                    .and_then(toml::Value::as_bool)
                    .unwrap_or(false),
            ),
            _ => return None,
        };
        let origin = Origin::Config {
            path: file.path.clone(),
            key: format!("env.{name}"),
        };
        Some((value, force, origin))
    });
    match (facts.vars.get(name), config) {
        (None, Some((value, _, origin))) | (Some(_), Some((value, true, origin))) => {
            words(value, &origin)
        }
        (Some(value), _) => words(value, &Origin::Var(name.to_owned())),
        (None, None) => Vec::new(),
    }
}

/// `-march=native`, `-mcpu=native` or `-mtune=native` when it is the last of its option (gcc
/// and clang take the last).
fn native_c_flag(flags: &[Token]) -> Option<NativeFlag> {
    ["-march", "-mcpu", "-mtune"]
        .into_iter()
        .find_map(|option| {
            let last = flags.iter().rev().find_map(|flag| {
                let text = flag.text.trim_matches(['"', '\'']);
                Some((text.strip_prefix(option)?.strip_prefix('=')?, text, flag))
            });
            let (value, text, flag) = last?;
            (value == "native").then(|| NativeFlag {
                flag: text.to_owned(),
                option,
                compiler: Compiler::C,
                origin: flag.origin.clone(),
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn config(path: &str, text: &str) -> ConfigFile {
        ConfigFile {
            path: path.into(),
            table: text.parse().unwrap(),
        }
    }

    fn find_in(arch: Arch, vars_of: &[(&str, &str)], configs: &[ConfigFile]) -> Option<NativeFlag> {
        find(&Facts {
            arch,
            cross: arch == Arch::Arm64,
            vars: &vars(vars_of),
            configs,
        })
    }

    fn var(name: &str) -> Origin {
        Origin::Var(name.into())
    }

    fn in_file(path: &str, key: &str) -> Origin {
        Origin::Config {
            path: path.into(),
            key: key.into(),
        }
    }

    /// The flag and its origin found for x86_64.
    fn found(vars_of: &[(&str, &str)], configs: &[ConfigFile]) -> Option<(String, Origin)> {
        find_in(Arch::X86_64, vars_of, configs).map(|f| (f.flag, f.origin))
    }

    #[test]
    fn rustflags_in_each_spelling() {
        for (value, flag) in [
            ("-C target-cpu=native", "-C target-cpu=native"),
            ("-Copt-level=3 -Ctarget-cpu=native", "-Ctarget-cpu=native"),
            ("--codegen target-cpu=native", "--codegen target-cpu=native"),
            ("--codegen=target-cpu=native", "--codegen=target-cpu=native"),
        ] {
            assert_eq!(
                found(&[("RUSTFLAGS", value)], &[]),
                Some((flag.to_owned(), var("RUSTFLAGS"))),
                "{value}"
            );
        }
        assert_eq!(found(&[("RUSTFLAGS", "-C opt-level=3")], &[]), None);
    }

    #[test]
    fn encoded_rustflags_are_split_at_the_unit_separator() {
        let encoded = "-C\x1ftarget-cpu=native";
        assert_eq!(
            found(&[("CARGO_ENCODED_RUSTFLAGS", encoded)], &[]),
            Some((
                "-C target-cpu=native".into(),
                var("CARGO_ENCODED_RUSTFLAGS")
            ))
        );
        let encoded = "-Ctarget-cpu=native\x1f-Cdebuginfo=1";
        assert!(found(&[("CARGO_ENCODED_RUSTFLAGS", encoded)], &[]).is_some());
        // It wins over RUSTFLAGS, as in cargo, even empty.
        assert_eq!(
            found(
                &[
                    ("CARGO_ENCODED_RUSTFLAGS", ""),
                    ("RUSTFLAGS", "-C target-cpu=native")
                ],
                &[]
            ),
            None
        );
    }

    #[test]
    fn a_pinned_cpu_is_accepted_and_the_last_target_cpu_wins() {
        assert_eq!(
            found(&[("RUSTFLAGS", "-C target-cpu=x86-64-v3")], &[]),
            None
        );
        assert_eq!(
            find_in(
                Arch::Arm64,
                &[("RUSTFLAGS", "-C target-cpu=neoverse-n1")],
                &[]
            ),
            None
        );
        assert_eq!(
            found(
                &[("RUSTFLAGS", "-C target-cpu=native -C target-cpu=x86-64-v3")],
                &[]
            ),
            None
        );
        assert!(
            found(
                &[("RUSTFLAGS", "-C target-cpu=x86-64-v3 -Ctarget-cpu=native")],
                &[]
            )
            .is_some()
        );
    }

    #[test]
    fn cargo_variables_for_the_target_and_the_build() {
        let target = "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS";
        assert_eq!(
            found(&[(target, "-C target-cpu=native")], &[]),
            Some(("-C target-cpu=native".into(), var(target)))
        );
        // The other architecture's variable is not this build's.
        assert_eq!(
            found(
                &[(
                    "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS",
                    "-C target-cpu=native"
                )],
                &[]
            ),
            None
        );
        assert_eq!(
            found(&[("CARGO_BUILD_RUSTFLAGS", "-C target-cpu=native")], &[]),
            Some(("-C target-cpu=native".into(), var("CARGO_BUILD_RUSTFLAGS")))
        );
        // A target's flags replace the build's.
        assert_eq!(
            found(
                &[
                    (target, "-C debuginfo=1"),
                    ("CARGO_BUILD_RUSTFLAGS", "-C target-cpu=native")
                ],
                &[]
            ),
            None
        );
    }

    #[test]
    fn config_files_build_target_and_cfg_tables() {
        let path = "/p/.cargo/config.toml";
        let cases = [
            (
                "[build]\nrustflags = [\"-C\", \"target-cpu=native\"]\n",
                "build.rustflags",
            ),
            (
                "[build]\nrustflags = \"-Ctarget-cpu=native\"\n",
                "build.rustflags",
            ),
            (
                "[target.x86_64-unknown-linux-gnu]\nrustflags = [\"-Ctarget-cpu=native\"]\n",
                "target.x86_64-unknown-linux-gnu.rustflags",
            ),
            (
                "[target.'cfg(target_arch = \"x86_64\")']\nrustflags = [\"-Ctarget-cpu=native\"]\n",
                "target.'cfg(target_arch = \"x86_64\")'.rustflags",
            ),
            (
                "[target.'cfg(all(unix, target_env = \"gnu\"))']\n\
                 rustflags = [\"-Ctarget-cpu=native\"]\n",
                "target.'cfg(all(unix, target_env = \"gnu\"))'.rustflags",
            ),
        ];
        for (text, key) in cases {
            let flag = found(&[], &[config(path, text)]).expect(text);
            assert_eq!(flag.1, in_file(path, key), "{text}");
        }
        // Tables of the other architecture or another OS do not apply.
        for text in [
            "[target.aarch64-unknown-linux-gnu]\nrustflags = [\"-Ctarget-cpu=native\"]\n",
            "[target.'cfg(target_arch = \"aarch64\")']\nrustflags = [\"-Ctarget-cpu=native\"]\n",
            "[target.'cfg(windows)']\nrustflags = [\"-Ctarget-cpu=native\"]\n",
        ] {
            assert_eq!(found(&[], &[config(path, text)]), None, "{text}");
        }
        let arm =
            "[target.'cfg(target_arch = \"aarch64\")']\nrustflags = \"-C target-cpu=native\"\n";
        assert!(find_in(Arch::Arm64, &[], &[config(path, arm)]).is_some());
    }

    #[test]
    fn the_environment_and_target_tables_replace_build_rustflags() {
        let native = config(
            "/home/u/.cargo/config.toml",
            "[build]\nrustflags = [\"-Ctarget-cpu=native\"]\n",
        );
        assert_eq!(
            found(&[("RUSTFLAGS", "")], std::slice::from_ref(&native)),
            None
        );
        let target = config(
            "/p/.cargo/config.toml",
            "[target.x86_64-unknown-linux-gnu]\nrustflags = []\n",
        );
        assert_eq!(found(&[], &[target, native.clone()]), None);
        assert!(found(&[], &[native]).is_some());
    }

    #[test]
    fn nearer_files_extend_lists_and_replace_strings() {
        let far = config(
            "/home/u/.cargo/config.toml",
            "[build]\nrustflags = [\"-Ctarget-cpu=native\"]\n",
        );
        // A list nearer extends it, and its own target-cpu comes last.
        let pins = config(
            "/p/.cargo/config.toml",
            "[build]\nrustflags = [\"-Ctarget-cpu=x86-64-v3\"]\n",
        );
        assert_eq!(found(&[], &[pins, far.clone()]), None);
        let other = config(
            "/p/.cargo/config.toml",
            "[build]\nrustflags = [\"-Cdebuginfo=1\"]\n",
        );
        assert_eq!(
            found(&[], &[other, far.clone()]),
            Some((
                "-Ctarget-cpu=native".into(),
                in_file("/home/u/.cargo/config.toml", "build.rustflags")
            ))
        );
        // A string nearer replaces it.
        let string = config(
            "/p/.cargo/config.toml",
            "[build]\nrustflags = \"-Cdebuginfo=1\"\n",
        );
        assert_eq!(found(&[], &[string, far]), None);
    }

    #[test]
    fn c_flags_from_each_variable() {
        for (name, value) in [
            ("CFLAGS", "-O2 -march=native"),
            ("CXXFLAGS", "-mcpu=native"),
            ("CFLAGS_x86_64-unknown-linux-gnu", "-mtune=native"),
            ("CFLAGS_x86_64_unknown_linux_gnu", "-march=native"),
            ("HOST_CFLAGS", "-march=native"),
        ] {
            let flag = find_in(Arch::X86_64, &[(name, value)], &[]).expect(name);
            assert_eq!(flag.origin, var(name));
            assert_eq!(flag.compiler, Compiler::C);
        }
        // TARGET_CFLAGS is read by cross builds, HOST_CFLAGS by native ones.
        assert!(find_in(Arch::Arm64, &[("TARGET_CFLAGS", "-march=native")], &[]).is_some());
        assert!(find_in(Arch::Arm64, &[("HOST_CFLAGS", "-march=native")], &[]).is_none());
        assert!(find_in(Arch::X86_64, &[("TARGET_CFLAGS", "-march=native")], &[]).is_none());
        // Another target's, a pinned CPU, and a later pin are fine.
        for pairs in [
            &[("CFLAGS_aarch64-unknown-linux-gnu", "-march=native")][..],
            &[("CFLAGS", "-march=x86-64-v3 -mtune=generic")],
            &[
                ("CFLAGS", "-march=native"),
                ("CFLAGS_x86_64-unknown-linux-gnu", "-march=x86-64-v3"),
            ],
        ] {
            assert_eq!(find_in(Arch::X86_64, pairs, &[]), None, "{pairs:?}");
        }
    }

    #[test]
    fn c_flags_from_the_env_table_of_a_config_file() {
        let path = "/p/.cargo/config.toml";
        let plain = config(path, "[env]\nCFLAGS = \"-march=native\"\n");
        assert_eq!(
            found(&[], std::slice::from_ref(&plain)),
            Some(("-march=native".into(), in_file(path, "env.CFLAGS")))
        );
        // The environment wins, unless the table forces its value.
        assert_eq!(found(&[("CFLAGS", "-O2")], &[plain]), None);
        let forced = config(
            path,
            "[env]\nCFLAGS = { value = \"-march=native\", force = true }\n",
        );
        assert!(found(&[("CFLAGS", "-O2")], &[forced]).is_some());
    }

    #[test]
    fn the_help_pins_a_cpu_lambda_has() {
        let help = |arch, flag: NativeFlag| NativeCpuError::Native { flag, arch }.help().unwrap();
        let rust = find_in(Arch::Arm64, &[("RUSTFLAGS", "-Ctarget-cpu=native")], &[]).unwrap();
        assert_eq!(
            help(Arch::Arm64, rust.clone()),
            "remove `-Ctarget-cpu=native` from `RUSTFLAGS`, or pin a CPU Lambda's arm64 hosts \
             have: `-C target-cpu=neoverse-n1`"
        );
        assert!(help(Arch::X86_64, rust).ends_with("`-C target-cpu=x86-64-v3`"));
        let c = find_in(Arch::X86_64, &[("CFLAGS", "-march=native")], &[]).unwrap();
        assert!(help(Arch::X86_64, c).ends_with("`-march=x86-64-v3`"));
        let c = find_in(Arch::Arm64, &[("CFLAGS", "-mcpu=native")], &[]).unwrap();
        assert!(help(Arch::Arm64, c).ends_with("`-mcpu=neoverse-n1`"));
        let error = NativeCpuError::Native {
            flag: find_in(
                Arch::X86_64,
                &[],
                &[config(
                    "/p/.cargo/config.toml",
                    "[build]\nrustflags = [\"-C\", \"target-cpu=native\"]\n",
                )],
            )
            .unwrap(),
            arch: Arch::X86_64,
        };
        assert_eq!(
            error.to_string(),
            "`build.rustflags` in `/p/.cargo/config.toml` asks for `-C target-cpu=native`, which \
             compiles for this machine's CPU: Lambda's x86_64 hosts may lack its instructions, \
             and the function would die with SIGILL"
        );
    }

    #[test]
    fn a_container_sees_fewer_variables_and_files_than_the_host() {
        let root = tempfile::tempdir().unwrap();
        let (ws, home) = (root.path().join("ws"), root.path().join("home"));
        for dir in [&ws, &home, &root.path().to_path_buf()] {
            std::fs::create_dir_all(dir.join(".cargo")).unwrap();
            std::fs::write(dir.join(".cargo/config.toml"), "").unwrap();
        }
        let env = Env::new(
            ws.clone(),
            false,
            [
                ("RUSTFLAGS", "-Ctarget-cpu=native"),
                ("CARGO_BUILD_RUSTFLAGS", "-Ctarget-cpu=native"),
                ("CFLAGS", "-march=native"),
                ("CARGO_HOME", home.join(".cargo").to_str().unwrap()),
            ],
        );
        let (vars, paths) = seen_by_cargo(false, &ws, &ws, &env);
        assert!(vars.contains_key("CFLAGS") && vars.contains_key("RUSTFLAGS"));
        assert!(paths.contains(&root.path().join(".cargo/config.toml")));
        assert_eq!(paths.last(), Some(&home.join(".cargo/config.toml")));

        let (vars, paths) = seen_by_cargo(true, &ws, &ws, &env);
        assert_eq!(
            vars.keys().collect::<Vec<_>>(),
            ["CARGO_BUILD_RUSTFLAGS", "RUSTFLAGS"]
        );
        assert_eq!(paths, [ws.join(".cargo/config.toml")]);
        // Run from outside the workspace, the container starts in its root.
        let (_, paths) = seen_by_cargo(true, root.path(), &ws, &env);
        assert_eq!(paths, [ws.join(".cargo/config.toml")]);
    }

    #[test]
    fn config_files_are_found_as_cargo_finds_them() {
        let root = tempfile::tempdir().unwrap();
        let dir = |path: &str| {
            let dir = root.path().join(path);
            std::fs::create_dir_all(&dir).unwrap();
            dir
        };
        let ws = dir("ws");
        let member = dir("ws/api");
        let home = dir("home");
        for (at, name) in [
            (&ws, "config.toml"),
            (&member, "config.toml"),
            (&member, "config"),
            (&home, "config.toml"),
        ] {
            std::fs::create_dir_all(at.join(".cargo")).unwrap();
            std::fs::write(at.join(".cargo").join(name), "").unwrap();
        }
        let found = config_paths(&member, None, Some(&home.join(".cargo")));
        let found: Vec<_> = found
            .iter()
            .filter(|p| p.starts_with(root.path()))
            .map(|p| p.strip_prefix(root.path()).unwrap().to_path_buf())
            .collect();
        // `config` wins over `config.toml` in one directory; the home comes last.
        assert_eq!(
            found,
            [
                PathBuf::from("ws/api/.cargo/config"),
                "ws/.cargo/config.toml".into(),
                "home/.cargo/config.toml".into()
            ]
        );
        // A container sees the workspace's files only, and its own empty CARGO_HOME.
        assert_eq!(
            config_paths(&member, Some(&ws), None),
            [member.join(".cargo/config"), ws.join(".cargo/config.toml")]
        );
        // A home the walk passed through is read once.
        assert_eq!(
            config_paths(&ws, Some(&ws), Some(&ws.join(".cargo"))),
            [ws.join(".cargo/config.toml")]
        );
    }
}
