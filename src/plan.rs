//! The build plan: pure data that says what will be built, how, and where it goes. Nothing here
//! runs anything, so tests can check every decision. cargo's command is kept typed
//! ([`CargoArgs`]) and rendered into each argv the backends need (build, fetch, metadata, the
//! container's), so no stage searches a list of strings for a flag.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::arch::Arch;
use crate::config::{BuildConfig, DockerConfig};
use crate::env::{Env, Verbosity};
use crate::lambda;
use crate::project::{Project, TargetKind};
use crate::rustflags::{self, Rustflags};

/// A process to run, kept as data so it can be printed and inspected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub program: OsString,
    pub args: Vec<OsString>,
    /// Variables set on top of the inherited environment.
    pub env: Vec<(OsString, OsString)>,
    pub cwd: PathBuf,
}

impl Cmd {
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
impl fmt::Display for Cmd {
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

/// What cargo is asked to do, as the user asked it: one value that renders `cargo build`,
/// `cargo fetch` and `cargo metadata` for the host and `cargo build` for a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CargoArgs {
    /// `$CARGO`, else `cargo`.
    pub program: OsString,
    pub cwd: PathBuf,
    pub manifest_path: PathBuf,
    pub target: Arch,
    pub profile: String,
    /// `-p`, each once, in the project's order.
    pub packages: Vec<String>,
    /// `--bin`, one per function made of a binary.
    pub bins: Vec<String>,
    /// `--example`, one per function made of an example.
    pub examples: Vec<String>,
    pub features: Vec<String>,
    pub all_features: bool,
    pub no_default_features: bool,
    pub locked: bool,
    pub offline: bool,
    pub frozen: bool,
    /// `--target-dir`, when the user gave one.
    pub target_dir: Option<PathBuf>,
    pub verbosity: Verbosity,
    /// cargo's stderr is piped through this tool, so cargo cannot see the terminal itself.
    pub color: bool,
    /// Profile settings as `CARGO_PROFILE_*` variables (see [`profile_env`]).
    pub env: Vec<(OsString, OsString)>,
    /// The paths rustc must not embed, and how the flags that map them reach rustc (see
    /// [`crate::rustflags`]); `None` when the user maps paths already.
    pub rustflags: Option<Rustflags>,
}

impl CargoArgs {
    /// `cargo build` on the host, its artifacts read from JSON messages.
    pub fn build(&self) -> Cmd {
        self.cmd(self.build_args())
    }

    /// `cargo build` for this machine (`--native`): no `--target`, so the executable is the
    /// one plain `cargo build` makes, in cargo's own directory of the profile.
    pub fn native_build(&self) -> Cmd {
        self.cmd(self.build_args_for(None))
    }

    /// `cargo build`'s arguments (after the program): the host's, or a container's once
    /// [`CargoArgs::in_container`] has set its paths.
    pub fn build_args(&self) -> Vec<OsString> {
        self.build_args_for(Some(self.target))
    }

    fn build_args_for(&self, target: Option<Arch>) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "build".into(),
            "--message-format".into(),
            "json-render-diagnostics".into(),
        ];
        if let Some(target) = target {
            args.extend(["--target".into(), target.triple().into()]);
        }
        args.extend([
            "--profile".into(),
            self.profile.clone().into(),
            "--manifest-path".into(),
            self.manifest_path.clone().into(),
        ]);
        for package in &self.packages {
            args.extend(["-p".into(), package.into()]);
        }
        for bin in &self.bins {
            args.extend(["--bin".into(), bin.into()]);
        }
        for example in &self.examples {
            args.extend(["--example".into(), example.into()]);
        }
        if !self.features.is_empty() {
            args.extend(["--features".into(), self.features.join(",").into()]);
        }
        let flags = [
            (self.all_features, "--all-features"),
            (self.no_default_features, "--no-default-features"),
            (self.verbosity == Verbosity::VeryVerbose, "--verbose"),
        ];
        args.extend(flags.iter().filter(|(on, _)| *on).map(|(_, f)| f.into()));
        args.extend(self.lock_args());
        if let Some(dir) = &self.target_dir {
            args.extend(["--target-dir".into(), dir.clone().into()]);
        }
        args.extend(self.color_args());
        if let Some(config) = self
            .rustflags
            .as_ref()
            .and_then(|r| r.config_arg(self.target))
        {
            args.extend(["--config".into(), config]);
        }
        args
    }

    /// The variables every cargo command gets: the profile's, and `CARGO_ENCODED_RUSTFLAGS`
    /// when the tool's rustc flags go that way.
    pub fn env_vars(&self) -> Vec<(OsString, OsString)> {
        let mut vars = self.env.clone();
        vars.extend(self.rustflags.as_ref().and_then(Rustflags::env));
        vars
    }

    /// The same build inside a container: its own target directory, and offline, since the
    /// container has no network (dependencies were fetched on the host).
    pub fn in_container(&self, target_dir: &Path) -> CargoArgs {
        CargoArgs {
            target_dir: Some(target_dir.to_path_buf()),
            offline: true,
            ..self.clone()
        }
    }

    /// `cargo fetch` for both Linux targets (a container compiles build scripts for its own
    /// architecture, which may be either), with the user's `--locked` / `--offline` /
    /// `--frozen`.
    pub fn fetch(&self) -> Cmd {
        let mut args: Vec<OsString> = vec![
            "fetch".into(),
            "--manifest-path".into(),
            self.manifest_path.clone().into(),
        ];
        for arch in Arch::ALL {
            args.extend(["--target".into(), arch.triple().into()]);
        }
        args.extend(self.lock_args());
        args.extend(self.color_args());
        self.cmd(args)
    }

    /// `cargo metadata` of everything a build reads, offline (after [`CargoArgs::fetch`]), for
    /// the platforms fetched: without a filter cargo wants every package of every platform.
    pub fn metadata(&self) -> Cmd {
        let mut args: Vec<OsString> = vec![
            "metadata".into(),
            "--format-version".into(),
            "1".into(),
            "--offline".into(),
            "--manifest-path".into(),
            self.manifest_path.clone().into(),
        ];
        for arch in Arch::ALL {
            args.extend(["--filter-platform".into(), arch.triple().into()]);
        }
        if self.locked || self.frozen {
            args.push("--locked".into());
        }
        Cmd {
            env: Vec::new(),
            ..self.cmd(args)
        }
    }

    fn lock_args(&self) -> Vec<OsString> {
        [
            (self.locked, "--locked"),
            (self.offline, "--offline"),
            (self.frozen, "--frozen"),
            (self.verbosity == Verbosity::Quiet, "--quiet"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, flag)| flag.into())
        .collect()
    }

    fn color_args(&self) -> [OsString; 2] {
        [
            "--color".into(),
            if self.color { "always" } else { "never" }.into(),
        ]
    }

    fn cmd(&self, args: Vec<OsString>) -> Cmd {
        Cmd {
            program: self.program.clone(),
            args,
            env: self.env_vars(),
            cwd: self.cwd.clone(),
        }
    }
}

/// Where the build runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// The host's toolchain, cross-linking when needed.
    Host,
    /// cargo inside a container of an Amazon Linux 2023 image.
    Docker(DockerConfig),
}

/// Where a function's result goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// `<outdir>/lambda.zip`, with `bootstrap` (or `extensions/<bin>`) in it.
    Zip(PathBuf),
    /// The executable alone: `<outdir>/bootstrap`, or `<outdir>/extensions/<bin>` for an
    /// extension (the layout of the zip, so the directory can serve as a layer).
    Executable(PathBuf),
}

impl Output {
    pub fn path(&self) -> &Path {
        match self {
            Output::Zip(path) | Output::Executable(path) => path,
        }
    }
}

/// One binary, packaged as its own function (or extension): the record of the function that
/// the later stages read and extend (the build returns it with what it built, packaging with
/// what it wrote).
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
    /// The directory the user asked for (absolute); with several functions, `output` is in a
    /// directory of its own below it.
    pub outdir: PathBuf,
    /// The zips of the layers the function is deployed with. Absolute.
    pub layers: Vec<PathBuf>,
    /// The settings' `env` table: its variables when `invoke` or `serve` runs it.
    pub env: Vec<(String, String)>,
    /// What `include` and `layers` bring, read from disk once the plan is made (by
    /// `lib::prepare`, before compiling, so a bad include is refused first): empty until then.
    pub brought: Brought,
}

/// What a function brings besides its executable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Brought {
    /// The files its zip will hold.
    pub includes: Vec<ZipEntry>,
    /// The shared libraries it ships in its zip or gets from its layers.
    pub libraries: Vec<String>,
}

/// One file for the zip. `name` is a relative path with '/' separators; a name that ends with
/// '/' is a directory entry (as in the zip format itself), whose `source` is not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipEntry {
    pub name: String,
    pub source: PathBuf,
    /// Permission bits: Lambda wants 755 for executables, 644 for other files.
    pub mode: u32,
}

impl ZipEntry {
    /// A directory entry: its name ends with '/'.
    #[must_use]
    pub fn is_dir(&self) -> bool {
        self.name.ends_with('/')
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct BuildPlan {
    pub project: Project,
    pub arch: Arch,
    /// One cargo run builds every function.
    pub cargo: CargoArgs,
    pub backend: Backend,
    /// cargo's target directory: `--target-dir`, else what `cargo metadata` reported.
    pub target_dir: PathBuf,
    /// In the project's order.
    pub functions: Vec<FunctionPlan>,
    pub verify: bool,
    /// One cargo run per package (see [`BuildPlan::per_package_plans`]).
    pub per_package: bool,
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

    /// The plan as cargo runs: itself, or with `per_package` one plan per package, each with
    /// its package's functions and a cargo run of that package alone. A feature qualified with
    /// another of the packages (`beta/loud`) is left to that package's run, since the point is
    /// that each binary is built as it would be alone.
    pub fn per_package_plans(&self) -> Vec<BuildPlan> {
        if !self.per_package || self.cargo.packages.len() < 2 {
            return vec![self.clone()];
        }
        let packages = &self.cargo.packages;
        packages
            .iter()
            .map(|package| {
                let functions: Vec<FunctionPlan> = self
                    .functions
                    .iter()
                    .filter(|f| &f.package == package)
                    .cloned()
                    .collect();
                let of_kind = |kind: &[String]| {
                    functions
                        .iter()
                        .filter(|f| kind.contains(&f.bin))
                        .map(|f| f.bin.clone())
                        .collect()
                };
                let features = self
                    .cargo
                    .features
                    .iter()
                    // `-F` takes lists too, as cargo does.
                    .flat_map(|list| list.split([',', ' ']))
                    .filter(|feature| !feature.is_empty())
                    .filter(|feature| match feature.split_once('/') {
                        Some((owner, _)) => {
                            owner == package || !packages.iter().any(|p| p == owner)
                        }
                        None => true,
                    })
                    .map(String::from)
                    .collect();
                BuildPlan {
                    cargo: CargoArgs {
                        manifest_path: functions[0].manifest_path.clone(),
                        packages: vec![package.clone()],
                        bins: of_kind(&self.cargo.bins),
                        examples: of_kind(&self.cargo.examples),
                        features,
                        ..self.cargo.clone()
                    },
                    functions,
                    per_package: false,
                    ..self.clone()
                }
            })
            .collect()
    }

    /// `<target-dir>/lambda-build`: the tool's own files beside cargo's.
    pub fn tool_dir(&self) -> PathBuf {
        self.target_dir.join("lambda-build")
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

fn targets_of(project: &Project, kind: TargetKind) -> Vec<String> {
    project
        .functions
        .iter()
        .filter(|f| f.kind == kind)
        .map(|f| f.bin.clone())
        .collect()
}

/// `rustflags` is where the host's cargo takes rustc's flags from ([`rustflags::channel`]), `None`
/// when the user maps paths already.
pub fn plan(
    config: &BuildConfig,
    project: &Project,
    env: &Env,
    profile_env: Vec<(OsString, OsString)>,
    rustflags: Option<rustflags::Channel>,
) -> BuildPlan {
    let target_dir = config
        .target_dir
        .clone()
        .unwrap_or_else(|| project.target_dir.clone());
    let mut packages: Vec<String> = Vec::new();
    for function in &project.functions {
        if !packages.contains(&function.package) {
            packages.push(function.package.clone());
        }
    }
    let features = &config.features;
    let cargo = CargoArgs {
        program: env.cargo.clone(),
        cwd: env.cwd.clone(),
        manifest_path: project.functions[0].manifest_path.clone(),
        target: config.arch,
        profile: config.profile.clone(),
        packages,
        bins: targets_of(project, TargetKind::Bin),
        examples: targets_of(project, TargetKind::Example),
        features: features.features.clone(),
        all_features: features.all_features,
        no_default_features: features.no_default_features,
        locked: config.locked,
        offline: config.offline,
        frozen: config.frozen,
        target_dir: config.target_dir.clone(),
        verbosity: config.ui.verbosity,
        color: config.ui.color,
        env: profile_env,
        rustflags: rustflags
            .zip(env.cargo_home())
            .map(|(channel, cargo_home)| Rustflags {
                map: rustflags::PathMap {
                    cargo_home,
                    target_dir: target_dir.clone(),
                },
                channel,
            }),
    };

    let several = project.functions.len() > 1;
    // The function's record is born here: config resolved its settings, one per function of
    // the project in its order; nothing after the plan reads them.
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
            let (entry_name, output) =
                entry_and_output(&function.bin, settings.extension, settings.zip, &dir);
            FunctionPlan {
                package: function.package.clone(),
                bin: function.bin.clone(),
                manifest_path: function.manifest_path.clone(),
                staging_dir: target_dir
                    .join("lambda-build")
                    .join(config.arch.lambda_name())
                    .join(&function.bin),
                output,
                entry_name,
                extension: settings.extension,
                include: settings.include.clone(),
                package_root: function.package_root().to_path_buf(),
                outdir: settings.outdir.clone(),
                layers: settings.layers.clone(),
                env: settings.env.clone(),
                brought: Brought::default(),
            }
        })
        .collect();
    BuildPlan {
        project: project.clone(),
        arch: config.arch,
        cargo,
        backend: match &config.docker {
            Some(docker) => Backend::Docker(docker.clone()),
            None => Backend::Host,
        },
        target_dir,
        functions,
        verify: config.verify,
        per_package: config.per_package,
    }
}

/// The executable's name in the zip and where the artifact goes: one rule for a build and for
/// `package`, so both write the same bytes.
fn entry_and_output(bin: &str, extension: bool, zip: bool, dir: &Path) -> (String, Output) {
    let entry_name = if extension {
        format!("{}{bin}", lambda::EXTENSIONS_DIR)
    } else {
        lambda::BOOTSTRAP.to_string()
    };
    let output = if zip {
        Output::Zip(dir.join(lambda::ZIP_NAME))
    } else {
        Output::Executable(dir.join(&entry_name))
    };
    (entry_name, output)
}

/// What `package BINARY` asked for: a binary built elsewhere, no project around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageRequest {
    /// Absolute.
    pub binary: PathBuf,
    pub zip: bool,
    /// Absolute.
    pub outdir: PathBuf,
    /// Patterns relative to `root`.
    pub include: Vec<String>,
    pub root: PathBuf,
    pub extension: bool,
}

/// The one function of `package BINARY`, planned as a build plans its functions. It has no
/// package (`package` is empty) and no manifest; `staging_dir` is a directory of this run, as
/// there is no target directory.
pub fn package_plan(request: &PackageRequest, staging_dir: &Path) -> FunctionPlan {
    let bin = request
        .binary
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| lambda::BOOTSTRAP.to_string());
    let (entry_name, output) =
        entry_and_output(&bin, request.extension, request.zip, &request.outdir);
    FunctionPlan {
        package: String::new(),
        bin,
        manifest_path: PathBuf::new(),
        staging_dir: staging_dir.to_path_buf(),
        output,
        entry_name,
        extension: request.extension,
        include: request.include.clone(),
        package_root: request.root.clone(),
        outdir: request.outdir.clone(),
        layers: Vec::new(),
        env: Vec::new(),
        brought: Brought::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use crate::env::Env;
    use crate::project::Function;
    use std::path::Path;

    fn function(package: &str, bin: &str) -> Function {
        Function {
            package: package.into(),
            manifest_path: format!("/src/ws/{package}/Cargo.toml").into(),
            bin: bin.into(),
            kind: TargetKind::Bin,
            package_config: serde_json::Value::Null,
            cargo_lambda_config: serde_json::Value::Null,
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
            cargo_lambda: Vec::new(),
            functions,
        }
    }

    fn plan_for(args: &[&str]) -> BuildPlan {
        plan_of(args, &project())
    }

    fn plan_of(args: &[&str], project: &Project) -> BuildPlan {
        let config = config_of(args, project);
        let profile_env = profile_env(&config, false, |_| false);
        plan(&config, project, &env(), profile_env, None)
    }

    fn config(args: &[&str]) -> BuildConfig {
        config_of(args, &project())
    }

    fn config_of(args: &[&str], project: &Project) -> BuildConfig {
        let Cli::LambdaBuild(args) =
            Cli::try_parse_from(["cargo", "lambda-build"].iter().chain(args)).unwrap();
        let env = env();
        let ui = args.output.ui(&env);
        BuildConfig::resolve(args, &env, ui, project).unwrap()
    }

    fn env() -> Env {
        Env::new(
            "/src/ws/api".into(),
            false,
            [("CARGO", "/bin/cargo"), ("CI", "true")],
        )
    }

    fn args(plan: &BuildPlan) -> Vec<String> {
        plan.cargo
            .build()
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn default_is_a_release_build_for_x86_64_read_from_json() {
        let plan = plan_for(&[]);
        assert_eq!(
            plan.cargo.build().to_string(),
            "CARGO_PROFILE_RELEASE_STRIP=symbols /bin/cargo build \
             --message-format json-render-diagnostics \
             --target x86_64-unknown-linux-gnu --profile release \
             --manifest-path /src/ws/api/Cargo.toml -p api --bin handler --color never"
        );
        assert_eq!(
            plan.functions[0].output,
            Output::Executable("/src/ws/api/bootstrap".into())
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
    fn the_function_record_carries_its_outdir_and_layers() {
        let project = project_of(vec![function("api", "api"), function("jobs", "nightly")]);
        let plan = plan_of(&["-o", "dist", "--layer", "/l/ext.zip"], &project);
        for function in &plan.functions {
            assert_eq!(function.outdir, Path::new("/src/ws/api/dist"));
            assert_eq!(function.layers, [Path::new("/l/ext.zip")]);
            // Read from disk later, before compiling.
            assert_eq!(function.brought, Brought::default());
        }
    }

    #[test]
    fn several_functions_build_in_one_invocation_into_one_directory_each() {
        let project = project_of(vec![
            function("api", "api"),
            function("jobs", "nightly"),
            function("jobs", "hourly"),
        ]);
        let plan = plan_of(&["--zip", "-o", "dist"], &project);
        let shown = plan.cargo.build().to_string();
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
            Output::Executable("/src/ws/api/nightly/bootstrap".into())
        );
    }

    #[test]
    fn per_package_is_one_cargo_run_per_package_with_its_own_features() {
        let project = project_of(vec![
            function("api", "api"),
            function("jobs", "nightly"),
            function("jobs", "hourly"),
        ]);
        let features = "api/fast,jobs/loud,serde/std,plain";
        let plan = plan_of(&["--per-package", "-F", features], &project);
        let runs: Vec<String> = plan
            .per_package_plans()
            .iter()
            .map(|p| p.cargo.build().to_string())
            .collect();
        assert_eq!(runs.len(), 2, "{runs:?}");
        assert!(
            runs[0].contains("--manifest-path /src/ws/api/Cargo.toml -p api --bin api --features api/fast,serde/std,plain"),
            "{}",
            runs[0]
        );
        assert!(
            runs[1].contains(
                "-p jobs --bin nightly --bin hourly --features jobs/loud,serde/std,plain"
            ),
            "{}",
            runs[1]
        );
        assert_eq!(plan.per_package_plans()[1].functions.len(), 2);
        // Without the setting, one run.
        assert_eq!(plan_of(&[], &project).per_package_plans().len(), 1);
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
            Output::Executable("/src/ws/api/extensions/handler".into())
        );
    }

    #[test]
    fn a_packaged_binary_goes_where_a_build_would_put_it() {
        let request = PackageRequest {
            binary: "/ci/out/my-fn".into(),
            zip: true,
            outdir: "/ci/dist".into(),
            include: vec!["config".into()],
            root: "/ci".into(),
            extension: false,
        };
        let function = package_plan(&request, Path::new("/tmp/stage"));
        assert_eq!(function.entry_name, "bootstrap");
        assert_eq!(function.output, Output::Zip("/ci/dist/lambda.zip".into()));
        assert_eq!(
            (function.bin.as_str(), function.package.as_str()),
            ("my-fn", "")
        );
        assert_eq!(function.include, ["config"]);
        let extension = package_plan(
            &PackageRequest {
                zip: false,
                extension: true,
                ..request
            },
            Path::new("/tmp/stage"),
        );
        assert_eq!(extension.entry_name, "extensions/my-fn");
        assert_eq!(
            extension.output,
            Output::Executable("/ci/dist/extensions/my-fn".into())
        );
    }

    #[test]
    fn the_tools_rustflags_map_cargos_home_and_the_target_dir_without_replacing_the_users() {
        use crate::rustflags::Channel;
        let project = project();
        let config = config_of(&[], &project);
        let env = Env::new(
            "/src/ws/api".into(),
            false,
            [("CARGO", "/bin/cargo"), ("CARGO_HOME", "/home/me/.cargo")],
        );
        let with = |channel| plan(&config, &project, &env, Vec::new(), channel);
        let build = with(Some(Channel::BuildConfig)).cargo.build();
        let args: Vec<String> = build
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args[args.len() - 2..],
            [
                "--config",
                "build.rustflags=[\"--remap-path-prefix=/home/me/.cargo=/cargo\",\
                 \"--remap-path-prefix=/src/ws/target=target\"]"
            ]
        );
        assert!(build.env.is_empty(), "{:?}", build.env);
        // The user's RUSTFLAGS: the tool's follow them in the variable cargo reads first.
        let plan = with(Some(Channel::Env(vec!["-C".into(), "debuginfo=1".into()])));
        let build = plan.cargo.build();
        assert!(!build.args.contains(&"--config".into()));
        assert_eq!(
            build.env,
            [(
                "CARGO_ENCODED_RUSTFLAGS".into(),
                "-C\x1fdebuginfo=1\x1f--remap-path-prefix=/home/me/.cargo=/cargo\x1f\
                 --remap-path-prefix=/src/ws/target=target"
                    .into()
            )]
        );
        // Each package's run builds with the same flags, so no run invalidates another's.
        assert!(
            plan.per_package_plans()
                .iter()
                .all(|p| p.cargo.rustflags == plan.cargo.rustflags)
        );
        // The user maps paths already: nothing added.
        assert_eq!(with(None).cargo.rustflags, None);
    }

    #[test]
    fn quiet_is_passed_to_cargo() {
        assert!(args(&plan_for(&["-q"])).contains(&"--quiet".to_string()));
    }

    #[test]
    fn printed_command_quotes_what_needs_quoting() {
        let mut cargo = plan_for(&[]).cargo.build();
        cargo.env = vec![("CC".into(), "zig cc".into())];
        cargo.args.push("a b".into());
        let shown = cargo.to_string();
        assert!(shown.starts_with("CC='zig cc' /bin/cargo build"), "{shown}");
        assert!(shown.ends_with(" 'a b'"), "{shown}");
    }
}
