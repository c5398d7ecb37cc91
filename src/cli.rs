//! The command line, shaped like cargo's own: `cargo lambda-build ...` and
//! `cargo-lambda-build lambda-build ...` both parse, cargo's flags sit under cargo's headings.
//!
//! The only module that knows clap (with `main.rs` and `generate.rs`): the values flags take
//! are the domain's types (`Arch`, `DockerFiles`, ...), given their command-line names and help
//! here, and the build's flags become a [`CommandLine`], the config's layer of settings.

use std::path::PathBuf;

use clap::builder::PossibleValue;
use clap::{Args, CommandFactory, Parser, ValueEnum};

use crate::arch::Arch;
use crate::config::{
    BuildSettings, CommandLine, DockerConfig, DockerFiles, FunctionSettings, ImageConfig, Layer,
    MessageFormat, Source,
};
pub use crate::env::ColorChoice;
use crate::new::{Ci, Kind, NewCrate};

/// Cargo runs `cargo-lambda-build lambda-build ARGS` for `cargo lambda-build ARGS`, so the
/// subcommand name is the first argument either way.
#[derive(Debug, Parser)]
#[command(name = "cargo", bin_name = "cargo", styles = clap_cargo::style::CLAP_STYLING)]
pub enum Cli {
    LambdaBuild(BuildArgs),
}

/// Parses the command line; a cargo-lambda subcommand this tool has no such command for
/// (`watch`, `build`, `deploy`) is a usage error that says what to run instead.
pub fn parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    Cli::try_parse_from(args).map_err(say_what_instead)
}

/// What to run instead of cargo-lambda's subcommands that are not this tool's.
pub fn instead_of(subcommand: &str) -> Option<&'static str> {
    Some(match subcommand {
        "watch" => {
            "run `cargo lambda-build serve --watch`: it builds, serves the function on \
             http://127.0.0.1:9000 and rebuilds on every saved change (`invoke` runs it on an event)"
        }
        "build" => {
            "building is the command itself: run `cargo lambda-build` (cargo-lambda's flags work \
             too: `cargo lambda-build --release --arm64 --output-format zip`)"
        }
        "deploy" => concat!(
            "this tool does not deploy: upload `",
            crate::lambda::literal!(zip_name),
            "` with `aws lambda update-function-code --function-name NAME --zip-file fileb://",
            crate::lambda::literal!(zip_name),
            "`, or give it to SAM (`sam deploy`), CDK or Terraform (docs/usage.md, \"New crates \
             and deployment templates\")"
        ),
        _ => return None,
    })
}

fn say_what_instead(error: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let word = match error.kind() {
        // After a build flag (`--zip watch`), clap calls the word a subcommand in conflict with
        // the flag.
        ErrorKind::InvalidSubcommand | ErrorKind::ArgumentConflict => {
            error.get(ContextKind::InvalidSubcommand)
        }
        _ => None,
    };
    let Some(ContextValue::String(word)) = word else {
        return error;
    };
    let Some(instead) = instead_of(word) else {
        return error;
    };
    let mut command = Cli::command();
    command.build();
    let lambda_build = command
        .find_subcommand_mut("lambda-build")
        .expect("the one subcommand");
    clap::Error::raw(
        ErrorKind::InvalidSubcommand,
        format!("`{word}` is not a command of cargo lambda-build (it is cargo-lambda's)\n\nhelp: {instead}"),
    )
    .format(lambda_build)
}

impl Cli {
    /// clap's `Parser::try_parse_from`, for the modules that do not name clap (`serve --watch`
    /// parses the build's own arguments; tests).
    pub fn try_parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        <Cli as Parser>::try_parse_from(args)
    }
}

const LONG_ABOUT: &str = concat!(
    "\
Build a Rust AWS Lambda function into `bootstrap` and `",
    crate::lambda::literal!(zip_name),
    "` for the OS-only runtime \
`provided.al2023`.

The binary is built for x86_64 (Lambda's default architecture; `--arch arm64` for Graviton) in the \
release profile, cross-compiling when the host differs, checked against what provided.al2023 can \
run (architecture, glibc 2.34, shared libraries) and packaged reproducibly: the same binary always \
gives the same zip bytes.

Several binaries (`--bin`, `-p`, `--workspace`) build in one run, one function each. Settings can \
also come from `CARGO_LAMBDA_BUILD_*` variables and from `[package.metadata.lambda-build]` or \
`[workspace.metadata.lambda-build]` in Cargo.toml; the command line wins over both."
);

#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true)]
#[command(version, about = concat!("Build a Rust AWS Lambda function into bootstrap and ", crate::lambda::literal!(zip_name)), long_about = LONG_ABOUT)]
#[command(
    after_help = concat!("Deploy with: aws lambda create-function --runtime provided.al2023 \
--handler bootstrap --architectures x86_64 --zip-file fileb://", crate::lambda::literal!(zip_name), " ...")
)]
pub struct BuildArgs {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Write `<outdir>/lambda.zip` with `bootstrap` at its root (without it, `<outdir>/bootstrap`)
    #[arg(short = 'z', long)]
    pub zip: bool,

    /// Directory that receives lambda.zip or bootstrap [default: the current directory]
    ///
    /// `--lambda-dir`, cargo-lambda's name, is the same option.
    #[arg(short = 'o', long, value_name = "DIR", alias = "lambda-dir")]
    pub outdir: Option<PathBuf>,

    #[command(flatten)]
    pub selection: SelectionArgs,

    /// `zip` is `--zip`, `binary` writes `bootstrap` (cargo-lambda's `--output-format`)
    #[arg(
        long,
        value_enum,
        value_name = "FORMAT",
        conflicts_with = "zip",
        hide_short_help = true
    )]
    pub output_format: Option<OutputFormat>,

    /// A file or directory (glob patterns too), relative to the package root, to put in the zip
    /// under the same relative path; repeatable
    #[arg(long, value_name = "PATH")]
    pub include: Vec<String>,

    /// A layer's zip the function is deployed with (repeatable): the shared libraries in its
    /// lib/ count as present for the check, and `--invoke-with` runs with it in /opt
    #[arg(long, value_name = "ZIP")]
    pub layer: Vec<PathBuf>,

    /// Package the binary as a Lambda extension: `extensions/<binary>` in the zip, no `bootstrap`
    #[arg(long)]
    pub extension: bool,

    /// How results are printed on stdout: `json` prints one object per artifact, for scripts
    #[arg(long, value_enum, value_name = "FMT", default_value_t = MessageFormat::Human)]
    pub message_format: MessageFormat,

    /// Build inside an Amazon Linux 2023 container, on any engine the docker CLI reaches
    /// (`DOCKER_HOST`, the docker context, Podman); a `lambda.Dockerfile` in the package or
    /// workspace root replaces the bundled image
    #[arg(long)]
    pub docker: bool,

    /// Build the container image from this Dockerfile instead (implies --docker)
    #[arg(long, value_name = "PATH", conflicts_with = "docker_image")]
    pub dockerfile: Option<PathBuf>,

    /// Build in this existing image; no image is built (implies --docker)
    #[arg(long, value_name = "NAME")]
    pub docker_image: Option<String>,

    /// Memory limit of the build container, swap included: bytes, or with a k, m or g suffix
    /// (`4g`) (implies --docker)
    #[arg(long, value_name = "SIZE", value_parser = parse_memory)]
    pub docker_memory: Option<u64>,

    /// How the engine gets the project: `auto` (the default) finds out, `bind` mounts it (an
    /// engine on this machine), `copy` syncs it into volumes (a remote engine) (implies --docker)
    #[arg(long, value_enum, value_name = "MODE")]
    pub docker_files: Option<DockerFiles>,

    /// A build argument of the image, declared by its Dockerfile with `ARG` (repeatable); the
    /// bundled Dockerfile takes `BASE_IMAGE`, for a mirror of Amazon Linux 2023 (implies --docker)
    #[arg(long, value_name = "NAME=VALUE", conflicts_with = "docker_image",
        value_parser = parse_build_arg)]
    pub docker_build_arg: Vec<(String, String)>,

    /// Print the name of the image a --docker build uses (a tag made from its Dockerfile and
    /// build arguments: a key for a CI cache) and exit without building (implies --docker)
    #[arg(long)]
    pub print_image_tag: bool,

    /// Optimize for size: opt-level "s", fat LTO, one codegen unit, symbols stripped (slower
    /// builds, about half the zip); panics still unwind
    #[arg(long)]
    pub small: bool,

    /// Build each package in its own cargo run, so a function's binary is the one it has when
    /// built alone (one run unifies the features of its packages); slower
    #[arg(long)]
    pub per_package: bool,

    /// Package even when the binary fails the provided.al2023 checks (glibc, architecture,
    /// libraries); the failures are printed as warnings
    #[arg(long)]
    pub no_verify: bool,

    /// After packaging, run the result locally as Lambda would, on the events in FILE (as
    /// `invoke --data-file FILE`); fails when an invocation fails
    #[arg(long, value_name = "FILE")]
    pub invoke_with: Option<PathBuf>,

    /// Also assemble the function as a container image for Lambda, named NAME
    /// (`REGISTRY/REPOSITORY[:TAG]`): the base image plus one layer with `bootstrap` and the
    /// includes, reproducible; pushed with --push, written with --image-out, else loaded into
    /// the engine --docker uses (docs/image.md)
    #[arg(long, value_name = "NAME")]
    pub image: Option<String>,

    /// The image --image builds on [default: public.ecr.aws/lambda/provided:al2023]
    #[arg(long, value_name = "REF", requires = "image")]
    pub image_base: Option<String>,

    /// Push the --image to the registry its NAME names, with the docker CLI's credentials
    /// (no engine needed); prints the `ImageUri` to deploy
    #[arg(long, requires = "image")]
    pub push: bool,

    /// Write the --image as an OCI layout directory
    #[arg(long, value_name = "DIR", requires = "image")]
    pub image_out: Option<PathBuf>,

    #[command(flatten)]
    pub output: OutputArgs,

    /// Every binary of every workspace member, each as its own function
    #[arg(long, conflicts_with = "package", help_heading = "Package Selection")]
    pub workspace: bool,

    /// Leave this package out of `--workspace` (or of the members, at a workspace root that is
    /// not itself a function); repeatable
    #[arg(
        long,
        value_name = "SPEC",
        conflicts_with = "package",
        help_heading = "Package Selection"
    )]
    pub exclude: Vec<String>,
}

impl BuildArgs {
    /// `cargo lambda-build [--zip --outdir DIR]` with `selection`, as the build's own parser
    /// reads it: what `serve --watch` and `--native` build, with every default of a build.
    pub fn of_selection(
        selection: &SelectionArgs,
        zip_into: Option<&std::path::Path>,
    ) -> Result<BuildArgs, clap::Error> {
        let mut argv: Vec<&std::ffi::OsStr> = vec!["cargo".as_ref(), "lambda-build".as_ref()];
        if let Some(outdir) = zip_into {
            argv.extend(["--zip".as_ref(), "--outdir".as_ref(), outdir.as_os_str()]);
        }
        let Cli::LambdaBuild(mut args) = Cli::try_parse_from(argv)?;
        args.selection = selection.clone();
        Ok(args)
    }

    /// Whether `--output-format` asks for a zip (`Some(false)`: the binary, explicitly).
    pub fn output_format_zip(&self) -> Option<bool> {
        self.output_format.map(|f| f == OutputFormat::Zip)
    }
}

/// What to build: the architecture, the package and binary, features, profile and manifest.
/// Declared once for the build and flattened into `serve` and `invoke`, whose `--watch` and
/// `--native` build too; clap lists each flag under its cargo heading wherever it is flattened.
#[derive(Debug, Clone, Default, Args)]
pub struct SelectionArgs {
    /// Lambda architecture to build for [default: x86_64, Lambda's default]
    #[arg(short = 'a', long, value_enum, value_name = "ARCH")]
    pub arch: Option<Arch>,

    #[command(flatten)]
    pub cargo_lambda: CargoLambdaArgs,

    /// Package with a function's binary; repeatable
    #[arg(
        short = 'p',
        long,
        value_name = "SPEC",
        help_heading = "Package Selection"
    )]
    pub package: Vec<String>,

    /// A binary to deploy, when the package has several; repeatable
    #[arg(long, value_name = "NAME", help_heading = "Target Selection")]
    pub bin: Vec<String>,

    /// An example (`examples/NAME.rs`) to deploy as a function; repeatable
    #[arg(
        long,
        value_name = "NAME",
        help_heading = "Target Selection",
        hide_short_help = true
    )]
    pub example: Vec<String>,

    #[command(flatten, next_help_heading = "Feature Selection")]
    pub features: clap_cargo::Features,

    /// Build artifacts with the specified profile [default: release]
    #[arg(long, value_name = "PROFILE-NAME", help_heading = COMPILATION)]
    pub profile: Option<String>,

    /// Directory for all generated artifacts
    #[arg(long, value_name = "DIRECTORY", env = "CARGO_TARGET_DIR", help_heading = COMPILATION)]
    pub target_dir: Option<PathBuf>,

    /// Path to Cargo.toml
    #[arg(long, value_name = "PATH", help_heading = MANIFEST)]
    pub manifest_path: Option<PathBuf>,

    /// Assert that `Cargo.lock` will remain unchanged
    #[arg(long, help_heading = MANIFEST)]
    pub locked: bool,

    /// Run without accessing the network
    #[arg(long, help_heading = MANIFEST)]
    pub offline: bool,

    /// Equivalent to specifying both --locked and --offline
    #[arg(long, help_heading = MANIFEST)]
    pub frozen: bool,

    /// clap's derive keeps the heading of a flattened struct (`Feature Selection`, above) for
    /// the flags declared after it: this empty one, last, gives them back the default heading
    /// wherever `SelectionArgs` is flattened.
    #[command(flatten, next_help_heading = None::<&'static str>)]
    pub default_heading: DefaultHeading,
}

/// No flag: see [`SelectionArgs::default_heading`].
#[derive(Debug, Clone, Default, Args)]
pub struct DefaultHeading {}

impl SelectionArgs {
    /// The first flag given that says what to build (`--target-dir` and the lock flags say only
    /// how), for the refusal of a command that builds nothing.
    pub fn first_given(&self) -> Option<&'static str> {
        [
            (
                self.arch.is_some() || self.cargo_lambda.arch().is_some(),
                "--arch",
            ),
            (!self.package.is_empty(), "--package"),
            (!self.bin.is_empty(), "--bin"),
            (!self.example.is_empty(), "--example"),
            (
                !self.features.features.is_empty()
                    || self.features.all_features
                    || self.features.no_default_features,
                "--features",
            ),
            (
                self.profile.is_some() || self.cargo_lambda.release,
                "--profile",
            ),
            (self.manifest_path.is_some(), "--manifest-path"),
        ]
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag))
    }
}

/// cargo-lambda's spelling of settings this tool has, so the command lines of AWS's READMEs
/// (`cargo lambda build --release --arm64 --output-format zip`) run unchanged. Kept out of
/// `-h`, which shows this tool's own names; docs/coming-from-cargo-lambda.md lists them.
#[derive(Debug, Clone, Default, Args)]
pub struct CargoLambdaArgs {
    /// The release profile (the default already; cargo-lambda's `--release`)
    #[arg(long, conflicts_with = "profile", hide_short_help = true, help_heading = COMPILATION)]
    pub release: bool,

    /// The same as `--arch arm64` (cargo-lambda's name)
    #[arg(long, conflicts_with_all = ["arch", "x86_64"], hide_short_help = true)]
    pub arm64: bool,

    /// The same as `--arch x86_64` (cargo-lambda's name)
    #[arg(long = "x86-64", conflicts_with = "arch", hide_short_help = true)]
    pub x86_64: bool,

    /// A Lambda target triple, read as its architecture: `x86_64-unknown-linux-gnu` is
    /// `--arch x86_64`, `aarch64-unknown-linux-gnu` is `--arch arm64` (cargo-lambda's `--target`)
    #[arg(long = "target", value_name = "TRIPLE", value_parser = Arch::from_lambda_target,
        conflicts_with_all = ["arch", "arm64", "x86_64"], hide_short_help = true,
        help_heading = COMPILATION)]
    pub target: Option<Arch>,
}

impl CargoLambdaArgs {
    /// The architecture these flags choose, if any.
    pub fn arch(&self) -> Option<Arch> {
        if self.arm64 {
            Some(Arch::Arm64)
        } else if self.x86_64 {
            Some(Arch::X86_64)
        } else {
            self.target
        }
    }
}

/// cargo-lambda's `--output-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// `lambda.zip`, as `--zip`
    Zip,
    /// `bootstrap` alone
    Binary,
}

impl From<BuildArgs> for CommandLine {
    /// The build's flags as the config reads them: a flag that is absent sets nothing.
    fn from(args: BuildArgs) -> CommandLine {
        let docker = args.docker
            || args.dockerfile.is_some()
            || args.docker_image.is_some()
            || args.docker_memory.is_some()
            || args.docker_files.is_some()
            || !args.docker_build_arg.is_empty()
            || args.print_image_tag;
        fn some<T>(list: Vec<T>) -> Option<Vec<T>> {
            (!list.is_empty()).then_some(list)
        }
        let zip = args.zip.then_some(true).or(args.output_format_zip());
        let selection = args.selection;
        let layer = Layer {
            source: Source::CommandLine,
            build: BuildSettings {
                arch: selection.arch.or(selection.cargo_lambda.arch()),
                profile: (selection.profile)
                    .or_else(|| selection.cargo_lambda.release.then(|| "release".into())),
                small: args.small.then_some(true),
                features: some(selection.features.features),
                per_package: args.per_package.then_some(true),
                docker_files: args.docker_files,
                image_base: args.image_base,
            },
            function: FunctionSettings {
                zip,
                outdir: args.outdir,
                include: some(args.include),
                layers: some(args.layer),
                extension: args.extension.then_some(true),
                // No build flags: `invoke`'s and `serve`'s `--env` and `--concurrency` win over
                // the settings instead.
                env: None,
                concurrency: None,
            },
        };
        CommandLine {
            layer,
            all_features: selection.features.all_features,
            no_default_features: selection.features.no_default_features,
            message_format: args.message_format,
            verify: !args.no_verify,
            target_dir: selection.target_dir,
            locked: selection.locked,
            offline: selection.offline,
            frozen: selection.frozen,
            docker: docker.then(|| DockerConfig {
                dockerfile: args.dockerfile,
                image: args.docker_image,
                memory: args.docker_memory,
                build_args: args.docker_build_arg,
                print_image_tag: args.print_image_tag,
                ..DockerConfig::default()
            }),
            invoke_with: args.invoke_with,
            image: args.image.map(|name| ImageConfig {
                name,
                push: args.push,
                out: args.image_out,
                ..ImageConfig::default()
            }),
        }
    }
}

/// Subcommands of `cargo lambda-build`; without one, it builds.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Create a new Lambda function crate that builds with `cargo lambda-build --zip`
    New(NewArgs),
    Invoke(InvokeArgs),
    Serve(ServeArgs),
    Package(PackageArgs),
    /// Print the bundled lambda.Dockerfile, to commit, extend or pre-build it
    #[command(
        after_help = "Example: cargo lambda-build dockerfile > lambda.Dockerfile (a project's \
lambda.Dockerfile replaces the bundled one)"
    )]
    Dockerfile,
    /// List or remove what --docker keeps on the Docker engine: images, volumes, containers
    #[command(subcommand)]
    Docker(DockerCommand),
    /// Check what a build and a local run need on this machine, and say how to fix what is
    /// missing
    #[command(long_about = DOCTOR_LONG_ABOUT)]
    Doctor(DoctorArgs),
    /// Print the shell completion script for `cargo lambda-build`
    #[command(after_help = "Examples:\n  \
bash: source <(cargo lambda-build completions bash)   (in ~/.bashrc)\n  \
zsh:  cargo lambda-build completions zsh > \"${fpath[1]}/_cargo-lambda-build\"\n  \
fish: cargo lambda-build completions fish > ~/.config/fish/conf.d/cargo-lambda-build.fish")]
    Completions(CompletionsArgs),
    /// Print the man page cargo-lambda-build(1), or write every page into a directory
    #[command(after_help = "Examples:\n  cargo lambda-build man | man -l -\n  \
cargo lambda-build man --dir ~/.local/share/man/man1")]
    Man(ManArgs),
}

const DOCTOR_LONG_ABOUT: &str = "\
Check what a build and a local run need on this machine, and say how to fix what is missing: the \
Rust toolchain and the Lambda targets, the linker for each architecture (zig or a GNU cross gcc), \
qemu and the arm64 libraries a local run of the other architecture needs, the Docker engine \
`--docker` would use (reachable, TLS, whether it sees this machine's files, Podman), the settings \
found (cargo-lambda's included) and the functions of the project in the current directory.

One line per check: `ok`, `warning` (something only --arch arm64, --docker or a local run needs) \
or `error` (something a plain `cargo lambda-build` needs: x86_64, no --docker), with what to do. \
Exits with 1 when there is an error, else 0.";

#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// How the checks are printed on stdout: `human`, one line per check, or `json`, one object
    /// per check and line, for scripts
    #[arg(long, value_enum, value_name = "FMT", default_value_t = MessageFormat::Human,
        hide_possible_values = true)]
    pub message_format: MessageFormat,
}

#[derive(Debug, Clone, Args)]
pub struct ManArgs {
    /// Write cargo-lambda-build.1 and one page per subcommand (cargo-lambda-build-new.1, ...)
    /// into DIR instead
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum DockerCommand {
    /// List the images, volumes and leftover containers of cargo-lambda-build on the engine
    /// (`DOCKER_HOST`), with their sizes
    Ls(DockerLsArgs),
    /// Remove the images, volumes and stopped containers of cargo-lambda-build from the engine,
    /// printing each one removed
    Clean(DockerCleanArgs),
}

#[derive(Debug, Clone, Args)]
pub struct DockerLsArgs {
    /// How the list is printed on stdout: `json` prints one object per line, for scripts
    #[arg(long, value_enum, value_name = "FMT", default_value_t = MessageFormat::Human)]
    pub message_format: MessageFormat,
}

#[derive(Debug, Clone, Args)]
pub struct DockerCleanArgs {
    /// Also remove running containers (a build in progress fails)
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Args)]
pub struct NewArgs {
    /// Directory to create; its last component names the crate and the function
    #[arg(value_name = "PATH")]
    pub path: PathBuf,

    /// Create a Lambda extension, packaged as a layer (`extensions/<name>`), instead of a function
    #[arg(long)]
    pub extension: bool,

    /// Create an HTTP function (`lambda_http`), whose SAM template declares a Function URL; try
    /// it with `cargo lambda-build serve`
    #[arg(long, conflicts_with = "extension")]
    pub http: bool,

    /// Write a SAM template that deploys the function as a container image (`PackageType:
    /// Image`), built and pushed with `cargo lambda-build --image NAME --push`, instead of a zip
    #[arg(long, conflicts_with_all = ["extension", "http"])]
    pub image: bool,

    /// Also write a CI file that builds both architectures with `--docker`, caching the builder
    /// image and cargo's files: `.github/workflows/lambda.yml` (github, the default) or
    /// `.gitlab-ci.yml` (gitlab)
    #[arg(long, value_enum, value_name = "CI", num_args = 0..=1, default_missing_value = "github")]
    pub ci: Option<Ci>,
}

impl From<NewArgs> for NewCrate {
    fn from(args: NewArgs) -> NewCrate {
        let kind = if args.extension {
            Kind::Extension
        } else if args.http {
            Kind::Http
        } else {
            Kind::Function
        };
        NewCrate {
            path: args.path,
            kind,
            ci: args.ci,
            image: args.image,
        }
    }
}

const COMPILATION: &str = "Compilation Options";
const MANIFEST: &str = "Manifest Options";

const INVOKE_LONG_ABOUT: &str = concat!(
    "\
Run a packaged function locally, the way Lambda runs it, before deploying it: the zip is extracted \
into a fresh task root, `bootstrap` is started with Lambda's environment and served events by a \
Runtime API (",
    crate::lambda::literal!(runtime_api_version),
    ") on 127.0.0.1, with Lambda's timeout, payload limits and error payloads.

Each response payload is printed on stdout, one per line; a streamed response as its chunks \
arrive. The function's own output, and \
START / END / REPORT lines with the init duration, each invocation's duration and the peak \
memory, go to stderr. An arm64 bootstrap on an x86_64 host runs under qemu-user.

`--native` builds the function for this machine and invokes that: quick, and not the zip that \
ships.

With `--docker` (the default on macOS), the function runs in a Linux container of the build \
image on the Docker engine instead, with the zip at ",
    crate::lambda::literal!(task_root),
    " and the layers at ",
    crate::lambda::literal!(opt),
    ", as Lambda's user, its memory limited to `--memory`; the Runtime API stays on this machine."
);

/// `cargo lambda-build invoke`: the artifact, the events, and Lambda's function settings.
/// `--native` builds for this machine, so the Lambda architecture's flags are hidden here.
#[derive(Debug, Clone, Args)]
#[command(
    mut_arg("arch", |a| a.hide(true)),
    mut_arg("arm64", |a| a.hide(true)),
    mut_arg("x86_64", |a| a.hide(true)),
    mut_arg("target", |a| a.hide(true))
)]
#[command(
    about = concat!("Run a packaged ", crate::lambda::literal!(zip_name), " (or bootstrap) locally as Lambda would"),
    long_about = INVOKE_LONG_ABOUT,
    after_help = concat!("Examples:\n  cargo lambda-build --zip && cargo lambda-build invoke --data '{\"name\":\"x\"}'\n  \
cargo lambda-build invoke dist/", crate::lambda::literal!(zip_name), " --data-file events.json --timeout 10")
)]
pub struct InvokeArgs {
    /// The lambda.zip, or a bare bootstrap, to run [default: <outdir>/lambda.zip, else
    /// <outdir>/bootstrap, whichever the last build wrote]
    #[arg(value_name = "ARTIFACT")]
    pub artifact: Option<PathBuf>,

    /// Where the last build wrote its artifact, when ARTIFACT is not given [default: the current
    /// directory]
    #[arg(short = 'o', long, value_name = "DIR", conflicts_with = "artifact")]
    pub outdir: Option<PathBuf>,

    /// The event, as JSON [default: events read from stdin]
    #[arg(short = 'd', long, value_name = "JSON", conflicts_with = "data_file")]
    pub data: Option<String>,

    /// A file of events, JSON values one after another: each is invoked in order on the same
    /// warm process (`-` for stdin)
    #[arg(short = 'f', long, value_name = "FILE")]
    pub data_file: Option<PathBuf>,

    /// A sample event of a common source, built in: API Gateway, function URL, ALB, SQS, SNS,
    /// S3, EventBridge, DynamoDB and Kinesis streams, CloudWatch Logs, Cognito (`list` names
    /// and describes them)
    #[arg(long, value_name = "NAME", conflicts_with_all = ["data", "data_file"])]
    pub data_example: Option<String>,

    /// Build the function for this machine (plain `cargo build`: cargo's dev profile unless
    /// `--release` or `--profile`, no Lambda target, no zip) and invoke that: quick, and not the
    /// zip that ships (Linux and macOS)
    #[arg(long, conflicts_with_all = NATIVE_CONFLICTS)]
    pub native: bool,

    /// Invoke as this tenant of a function in tenant-isolation mode: the runtime gets it with
    /// each event (lambda_runtime's `Context::tenant_id`)
    #[arg(long, value_name = "ID")]
    pub tenant_id: Option<String>,

    /// The client context each event is invoked with, a JSON object (the SDKs'
    /// `ClientContext`; lambda_runtime's `Context::client_context`)
    #[arg(long, value_name = "JSON", alias = "client-context-ascii")]
    pub client_context: Option<String>,

    /// The client context each event is invoked with, from a file holding a JSON object
    #[arg(long, value_name = "FILE", conflicts_with = "client_context")]
    pub client_context_file: Option<PathBuf>,

    #[command(flatten)]
    pub selection: SelectionArgs,

    #[command(flatten)]
    pub function: FunctionArgs,
}

/// `--native` builds for this machine, from the project, and runs it here: no artifact, outdir,
/// architecture or container.
const NATIVE_CONFLICTS: [&str; 9] = [
    "artifact",
    "outdir",
    "arch",
    "arm64",
    "x86_64",
    "target",
    "docker",
    "docker_image",
    "image",
];

/// The function's configuration, as Lambda holds it: shared by `invoke` and `serve`.
#[derive(Debug, Clone, Args)]
pub struct FunctionArgs {
    /// Seconds each invocation may run, 1 to 900, as on Lambda (the init phase gets Lambda's
    /// 10 s besides)
    #[arg(long, value_name = "SECONDS", default_value_t = 3,
        value_parser = clap::value_parser!(u32).range(1..=900))]
    pub timeout: u32,

    /// The function's memory in MB, 128 to 10240, as on Lambda; the peak memory is reported
    /// against it
    #[arg(long, value_name = "MB", default_value_t = 128,
        value_parser = clap::value_parser!(u32).range(128..=10240))]
    pub memory: u32,

    /// An environment variable of the function (repeatable), as in the function's configuration;
    /// it wins over --env-file and the settings' `env` table
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,

    /// Run as Lambda Managed Instances do: one process takes up to N invocations at once
    /// (AWS_LAMBDA_MAX_CONCURRENCY=N; `serve` dispatches concurrent requests, `invoke` sends its
    /// events concurrently) [default: one at a time, Lambda's default]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: Option<u32>,

    /// Emulate SnapStart's lifecycle as Lambda runs it for container-image functions
    /// (AWS_LAMBDA_INITIALIZATION_TYPE=snap-start; the runtime's before-snapshot hooks,
    /// `restore/next`, a pause, its after-restore hooks); no memory snapshot is taken: the same
    /// process continues after the pause, so state that restored environments would share is not
    /// duplicated here
    #[arg(long)]
    pub snap_start: bool,

    /// A file of the function's variables, `KEY=VALUE` lines as `docker run --env-file` reads
    /// them (`#` comments, `KEY` alone passes this machine's value); repeatable, a later file
    /// winning; wins over the settings' `env` table
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,

    /// The function's log format, as Lambda's logging configuration sets it
    /// (AWS_LAMBDA_LOG_FORMAT); with `json`, START and REPORT are JSON objects too
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormatArg>,

    /// The function's application log level (AWS_LAMBDA_LOG_LEVEL); as on Lambda it needs the
    /// JSON format, which it implies
    #[arg(long, value_enum, value_name = "LEVEL", ignore_case = true)]
    pub log_level: Option<LogLevelArg>,

    /// The function's name (AWS_LAMBDA_FUNCTION_NAME, and in its ARN)
    #[arg(long, value_name = "NAME", default_value = "function")]
    pub function_name: String,

    /// The function's handler, passed as `_HANDLER` (what `--handler` sets on Lambda; a runtime
    /// that serves several handlers from one binary picks one with it)
    #[arg(long, value_name = "NAME", default_value = crate::lambda::DEFAULT_HANDLER)]
    pub handler: String,

    /// A layer's zip, extracted into the function's /opt (repeatable: in order, a later layer's
    /// files replacing an earlier one's); its extensions/ are started beside the function
    #[arg(long, value_name = "ZIP")]
    pub layer: Vec<PathBuf>,

    /// Run the function in a Linux container of the build image (the bundled Amazon Linux 2023
    /// one, or the project's lambda.Dockerfile) on the engine --docker builds use; the default
    /// on macOS
    #[arg(long)]
    pub docker: bool,

    /// Run the function in a container of this existing image instead (implies --docker)
    #[arg(long, value_name = "NAME")]
    pub docker_image: Option<String>,

    /// Run this Lambda container image as it ships (what `cargo lambda-build --image` built,
    /// already in the engine): its own /var/runtime/bootstrap and /var/task, in a container
    /// (implies --docker); no ARTIFACT
    #[arg(long, value_name = "NAME", conflicts_with_all = ["artifact", "outdir", "docker_image"])]
    pub image: Option<String>,
}

const SERVE_LONG_ABOUT: &str = "\
Serve a packaged HTTP function (`lambda_http`, axum behind `lambda_http`...) on a local port, \
the way a Lambda Function URL or API Gateway serves it: each HTTP request becomes the event that \
service sends, the function runs in the same sandbox as `invoke` (Lambda's environment, timeout, \
memory report, qemu-user for the other architecture; a Linux container with `--docker`, the \
default on macOS), and its answer becomes the HTTP response: status, headers, cookies, base64 \
bodies decoded.

Requests are served one at a time by one warm process, as one Lambda execution environment \
serves them; with `--concurrency N`, up to N at once, as Lambda Managed Instances serve them. A \
request's `X-Amz-Tenant-Id` header picks the tenant: each tenant gets a process of its own. \
START / END / REPORT lines and the function's output go to stderr, one line per request too. \
Ctrl-C stops it.

`--watch` builds the function itself and serves each new build as sources change; `--native` \
builds it for this machine instead of Lambda (the quickest loop, not the zip that ships).";

/// `cargo lambda-build serve`: the artifact, where to listen, and the service to play.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Serve a packaged HTTP function on a local port, as a Function URL or API Gateway would",
    long_about = SERVE_LONG_ABOUT,
    after_help = concat!("Examples:\n  cargo lambda-build --zip && cargo lambda-build serve\n  \
curl 'http://127.0.0.1:9000/?name=Ferris'\n  \
cargo lambda-build serve dist/", crate::lambda::literal!(zip_name), " --port 3000 --event-format rest-api")
)]
pub struct ServeArgs {
    /// The lambda.zip, or a bare bootstrap, to serve [default: <outdir>/lambda.zip, else
    /// <outdir>/bootstrap, whichever the last build wrote]
    #[arg(value_name = "ARTIFACT")]
    pub artifact: Option<PathBuf>,

    /// Where the last build wrote its artifact, when ARTIFACT is not given [default: the current
    /// directory]
    #[arg(short = 'o', long, value_name = "DIR", conflicts_with = "artifact")]
    pub outdir: Option<PathBuf>,

    /// The port to listen on (0: one the system picks); the address is printed on stdout
    #[arg(long, value_name = "PORT", default_value_t = 9000)]
    pub port: u16,

    /// The address to listen on [default: localhost, both 127.0.0.1 and ::1]; 0.0.0.0 reaches
    /// other machines, which Lambda's sandbox does not guard against: keep it local unless you
    /// mean it
    #[arg(long, value_name = "ADDRESS")]
    pub bind: Option<std::net::IpAddr>,

    /// The event each request becomes: the service in front of the function
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = EventFormatArg::FunctionUrl)]
    pub event_format: EventFormatArg,

    /// Build the function of the current directory (or `-p`, `--bin`), serve it, and build and
    /// serve it again when a source file of its package or of a path dependency changes; a
    /// build that fails leaves the last good one serving. The zip is the shipped one's target,
    /// profile and checks, compiled incrementally: its bytes differ, so it is written under
    /// `<target-dir>/lambda-build/watch/`, never over the zip that ships
    #[arg(long, conflicts_with_all = ["artifact", "outdir", "image"])]
    pub watch: bool,

    /// Build the function for this machine (plain `cargo build`: cargo's dev profile unless
    /// `--release` or `--profile`, no Lambda target, no zip) and serve that: the fastest loop
    /// with `--watch`, and not the zip that ships (Linux and macOS)
    #[arg(long, conflicts_with_all = NATIVE_CONFLICTS)]
    pub native: bool,

    #[command(flatten)]
    pub selection: SelectionArgs,

    #[command(flatten)]
    pub function: FunctionArgs,
}

/// `--log-format`: Lambda's `LogFormat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    /// Plain text lines (Lambda's default)
    Text,
    /// JSON objects
    Json,
}

/// `--log-level`: Lambda's `ApplicationLogLevel`, in `lambda::LOG_LEVELS`' order (its index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevelArg {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

/// `--event-format`: the service in front of a served function. The `serve` stage reads it as its
/// own `invoke::http::EventFormat` (which cannot be named here: `invoke` reads these flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum EventFormatArg {
    /// A Lambda Function URL (payload format 2.0)
    #[default]
    #[value(alias = "lambda-url", alias = "url")]
    FunctionUrl,
    /// An API Gateway HTTP API, payload format 2.0
    #[value(alias = "apigw-v2", alias = "http-api-v2")]
    HttpApi,
    /// An API Gateway REST API, payload format 1.0, stage `Prod` (as `sam local start-api`)
    #[value(alias = "apigw", alias = "apigw-rest", alias = "rest")]
    RestApi,
}

const PACKAGE_LONG_ABOUT: &str = "\
Package a Linux executable that something else built (cross, Bazel, another CI job) as a build \
packages its own: the same provided.al2023 checks (architecture, glibc 2.34, shared libraries) and \
the same reproducible zip, byte for byte. No cargo runs and no Cargo.toml is needed.

The architecture is read from the binary; `--arch` only makes sure it is the one expected.";

/// `cargo lambda-build package BINARY`: the build's checks and packaging, for a binary built
/// elsewhere.
#[derive(Debug, Clone, Args)]
#[command(
    about = concat!("Package a Linux executable built elsewhere into bootstrap or ", crate::lambda::literal!(zip_name), ", with the build's checks"),
    long_about = PACKAGE_LONG_ABOUT,
    after_help = "Example: cargo lambda-build package --zip target/aarch64-unknown-linux-gnu/release/my-fn"
)]
pub struct PackageArgs {
    /// The Linux executable (ELF) to package as `bootstrap`
    #[arg(value_name = "BINARY")]
    pub binary: PathBuf,

    /// Write `<outdir>/lambda.zip` with `bootstrap` at its root (without it, `<outdir>/bootstrap`)
    #[arg(short = 'z', long)]
    pub zip: bool,

    /// Directory that receives lambda.zip or bootstrap [default: the current directory]
    #[arg(short = 'o', long, value_name = "DIR")]
    pub outdir: Option<PathBuf>,

    /// Refuse the binary unless it is built for this architecture [default: the binary's]
    #[arg(short = 'a', long, value_enum, value_name = "ARCH")]
    pub arch: Option<Arch>,

    /// A file or directory (glob patterns too), relative to the current directory, to put in the
    /// zip under the same relative path; repeatable
    #[arg(long, value_name = "PATH")]
    pub include: Vec<String>,

    /// Package the binary as a Lambda extension: `extensions/<file name>` in the zip, no
    /// `bootstrap`
    #[arg(long)]
    pub extension: bool,

    /// Package even when the binary fails the provided.al2023 checks (glibc, architecture,
    /// libraries); the failures are printed as warnings
    #[arg(long)]
    pub no_verify: bool,

    /// How results are printed on stdout: `json` prints one object per artifact, for scripts
    #[arg(long, value_enum, value_name = "FMT", default_value_t = MessageFormat::Human)]
    pub message_format: MessageFormat,
}

/// `-v`, `-q` and `--color`, declared once for every subcommand (`global`), resolved once
/// into [`crate::env::Ui`].
#[derive(Debug, Clone, Default, Args)]
pub struct OutputArgs {
    /// Use verbose output (-vv very verbose): prints the commands that are run, and the
    /// environment `bootstrap` runs with
    #[arg(short = 'v', long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Do not print status lines or progress (nor invoke's START / END / REPORT lines)
    #[arg(short = 'q', long, conflicts_with = "verbose", global = true)]
    pub quiet: bool,

    /// Coloring
    #[arg(long, value_enum, value_name = "WHEN", global = true)]
    pub color: Option<ColorChoice>,
}

impl OutputArgs {
    pub fn ui(&self, env: &crate::env::Env) -> crate::env::Ui {
        crate::env::Ui::resolve(self.quiet, self.verbose, self.color, env)
    }
}

// The values of the flags that take the domain's types: their names and their help.

impl ValueEnum for Arch {
    fn value_variants<'a>() -> &'a [Arch] {
        &Arch::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        let (name, aliases) = self.names().split_first()?;
        Some(
            PossibleValue::new(*name)
                .aliases(aliases.iter().copied())
                .help(match self {
                    Arch::X86_64 => "Lambda's default architecture",
                    Arch::Arm64 => "Graviton",
                }),
        )
    }
}

impl ValueEnum for DockerFiles {
    fn value_variants<'a>() -> &'a [DockerFiles] {
        &DockerFiles::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.name()).help(match self {
            DockerFiles::Auto => {
                "Mounts when the engine sees this machine's files, else copies (checked once per \
                 engine)"
            }
            DockerFiles::Bind => "Mounts the host's paths: an engine on this machine",
            DockerFiles::Copy => {
                "Keeps the files in volumes on the engine, synced by content: CI's docker:dind, a \
                 host"
            }
        }))
    }
}

impl ValueEnum for MessageFormat {
    fn value_variants<'a>() -> &'a [MessageFormat] {
        &[MessageFormat::Human, MessageFormat::Json]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            MessageFormat::Human => PossibleValue::new("human").help("A summary for people"),
            MessageFormat::Json => {
                PossibleValue::new("json").help("One JSON object per artifact, one per line")
            }
        })
    }
}

impl ValueEnum for ColorChoice {
    fn value_variants<'a>() -> &'a [ColorChoice] {
        &[ColorChoice::Auto, ColorChoice::Always, ColorChoice::Never]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(match self {
            ColorChoice::Auto => "auto",
            ColorChoice::Always => "always",
            ColorChoice::Never => "never",
        }))
    }
}

impl ValueEnum for Ci {
    fn value_variants<'a>() -> &'a [Ci] {
        &[Ci::Github, Ci::Gitlab]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            Ci::Github => {
                PossibleValue::new("github").help("GitHub Actions: `.github/workflows/lambda.yml`")
            }
            Ci::Gitlab => PossibleValue::new("gitlab")
                .help("GitLab CI, with the `docker:dind` service over TLS: `.gitlab-ci.yml`"),
        })
    }
}

/// `--docker-build-arg NAME=VALUE`: a name as Docker takes it, and a value (maybe empty).
pub fn parse_build_arg(text: &str) -> Result<(String, String), String> {
    let Some((name, value)) = text.split_once('=') else {
        return Err(format!(
            "`{text}` is not NAME=VALUE (for example `BASE_IMAGE=mirror.example/amazonlinux:2023`)"
        ));
    };
    let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "`{name}` is not a build argument name: letters, digits and `_`, not starting with a \
             digit"
        ));
    }
    Ok((name.to_string(), value.to_string()))
}

/// The smallest limit the engine accepts (Docker refuses less than 6 MiB).
const MIN_MEMORY: u64 = 6 << 20;

/// A size as `docker run --memory` reads it: bytes, or a number with a `b`, `k`, `m` or `g`
/// suffix (powers of 1024).
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    let unit_at = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(unit_at);
    let shift = match unit
        .strip_suffix('b')
        .filter(|u| !u.is_empty())
        .unwrap_or(unit)
    {
        "" | "b" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        _ => {
            return Err(format!(
                "`{text}` is not a size: use bytes or a number with k, m or g (`512m`, `4g`)"
            ));
        }
    };
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a size: use a whole number (`512m`, `4g`)"))?;
    let bytes = number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("`{text}` is too large"))?;
    if bytes < MIN_MEMORY {
        return Err(format!(
            "`{text}` is below the engine's minimum of 6m for a container"
        ));
    }
    Ok(bytes)
}
#[cfg(test)]
mod tests {
    #[test]
    fn memory_sizes_read_as_docker_reads_them() {
        assert_eq!(parse_memory("512m"), Ok(512 << 20));
        assert_eq!(parse_memory("4G"), Ok(4 << 30));
        assert_eq!(parse_memory("2gb"), Ok(2 << 30));
        assert_eq!(parse_memory("65536k"), Ok(64 << 20));
        assert_eq!(parse_memory("104857600"), Ok(100 << 20));
        for bad in ["", "m", "1.5g", "4t", "-1g", "lots"] {
            assert!(parse_memory(bad).is_err(), "{bad}");
        }
        assert!(parse_memory("1m").unwrap_err().contains("minimum"));
        assert!(
            parse_memory("99999999999g")
                .unwrap_err()
                .contains("too large")
        );
    }

    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> BuildArgs {
        let Cli::LambdaBuild(args) = Cli::try_parse_from(args).expect("parses");
        args
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_as_cargo_subcommand_and_directly() {
        let via_cargo = parse(&["cargo", "lambda-build", "--zip", "-o", "dist"]);
        assert!(via_cargo.zip);
        assert_eq!(via_cargo.outdir, Some(PathBuf::from("dist")));
        // Cargo execs `cargo-lambda-build lambda-build ...`.
        let direct = parse(&["cargo-lambda-build", "lambda-build", "-z"]);
        assert!(direct.zip);
    }

    #[test]
    fn defaults_match_the_design() {
        let args = parse(&["cargo", "lambda-build"]);
        // Unset here: the defaults (release, x86_64) come last among the config layers.
        assert_eq!(args.selection.profile, None);
        assert!(!args.zip && !args.no_verify && !args.extension);
        assert_eq!(args.outdir, None);
        assert_eq!(args.selection.arch, None);
        assert_eq!(args.message_format, MessageFormat::Human);
        assert!(args.command.is_none());
        assert!(!args.docker && args.dockerfile.is_none() && args.docker_image.is_none());
    }

    #[test]
    fn dockerfile_and_docker_image_exclude_each_other() {
        let args = parse(&[
            "cargo",
            "lambda-build",
            "--dockerfile",
            "ci/lambda.Dockerfile",
        ]);
        assert_eq!(args.dockerfile, Some(PathBuf::from("ci/lambda.Dockerfile")));
        let both = [
            "cargo",
            "lambda-build",
            "--dockerfile",
            "D",
            "--docker-image",
            "img",
        ];
        assert!(Cli::try_parse_from(both).is_err());
    }

    #[test]
    fn invoke_and_serve_image_takes_no_artifact_nor_another_image() {
        for command in ["invoke", "serve"] {
            let ok = [
                "cargo",
                "lambda-build",
                command,
                "--docker",
                "--image",
                "f:v1",
            ];
            assert!(Cli::try_parse_from(ok).is_ok(), "{command}");
            for other in [
                &["lambda.zip"][..],
                &["--outdir", "dist"],
                &["--docker-image", "img"],
                &["--native"],
            ] {
                let mut args = vec!["cargo", "lambda-build", command, "--image", "f:v1"];
                args.extend(other);
                let error = Cli::try_parse_from(&args).unwrap_err();
                assert_eq!(
                    error.kind(),
                    clap::error::ErrorKind::ArgumentConflict,
                    "{args:?}"
                );
            }
        }
        let watch = ["cargo", "lambda-build", "serve", "--watch", "--image", "f"];
        assert!(Cli::try_parse_from(watch).is_err());
    }

    #[test]
    fn arch_accepts_aliases_and_lists_choices_otherwise() {
        assert_eq!(
            parse(&["cargo", "lambda-build", "-a", "aarch64"])
                .selection
                .arch,
            Some(Arch::Arm64)
        );
        assert_eq!(
            parse(&["cargo", "lambda-build", "--arch", "amd64"])
                .selection
                .arch,
            Some(Arch::X86_64)
        );
        let err = Cli::try_parse_from(["cargo", "lambda-build", "--arch", "mips"]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("x86_64") && text.contains("arm64"), "{text}");
    }

    #[test]
    fn cargo_flags_are_accepted() {
        let args = parse(&[
            "cargo",
            "lambda-build",
            "-p",
            "api",
            "--bin",
            "handler",
            "-F",
            "a b",
            "--no-default-features",
            "--profile",
            "dev",
            "--locked",
            "--offline",
            "--frozen",
            "-vv",
            "--color",
            "never",
            "--manifest-path",
            "x/Cargo.toml",
        ]);
        assert_eq!(args.selection.package, ["api"]);
        assert_eq!(args.selection.bin, ["handler"]);
        assert_eq!(args.selection.features.features, ["a", "b"]);
        assert!(args.selection.features.no_default_features);
        assert_eq!(args.output.verbose, 2);
        assert_eq!(args.output.color, Some(ColorChoice::Never));
    }

    #[test]
    fn selection_flags_repeat() {
        let args = parse(&[
            "cargo",
            "lambda-build",
            "-p",
            "a",
            "-p",
            "b",
            "--bin",
            "x",
            "--bin",
            "y",
            "--include",
            "config",
            "--include",
            "certs/*.pem",
            "--extension",
            "--message-format",
            "json",
        ]);
        assert_eq!(args.selection.package, ["a", "b"]);
        assert_eq!(args.selection.bin, ["x", "y"]);
        assert_eq!(args.include, ["config", "certs/*.pem"]);
        assert!(args.extension);
        assert_eq!(args.message_format, MessageFormat::Json);
        let args = parse(&["cargo", "lambda-build", "--workspace", "--exclude", "tools"]);
        assert!(args.workspace);
        assert_eq!(args.exclude, ["tools"]);
        // Unlike cargo, `--exclude` also narrows a workspace root's members; with `-p` it means
        // nothing.
        assert!(Cli::try_parse_from(["cargo", "lambda-build", "--exclude", "x"]).is_ok());
        assert!(
            Cli::try_parse_from(["cargo", "lambda-build", "-p", "a", "--exclude", "x"]).is_err()
        );
        assert!(Cli::try_parse_from(["cargo", "lambda-build", "--workspace", "-p", "x"]).is_err());
    }

    #[test]
    fn new_is_a_subcommand() {
        let args = parse(&["cargo", "lambda-build", "new", "my-fn", "--ci"]);
        let Some(Command::New(new)) = args.command else {
            panic!("{args:?}")
        };
        assert_eq!(new.path, PathBuf::from("my-fn"));
        assert_eq!(new.ci, Some(Ci::Github));
        let args = parse(&["cargo", "lambda-build", "new", "my-fn", "--ci", "gitlab"]);
        let Some(Command::New(new)) = args.command else {
            panic!("{args:?}")
        };
        assert_eq!(new.ci, Some(Ci::Gitlab));
        assert!(
            Cli::try_parse_from(["cargo", "lambda-build", "new", "x", "--ci", "jenkins"]).is_err()
        );
        // Build flags belong to the build, not to `new`.
        assert!(Cli::try_parse_from(["cargo", "lambda-build", "--zip", "new", "x"]).is_err());
    }

    #[test]
    fn quiet_and_verbose_conflict() {
        assert!(Cli::try_parse_from(["cargo", "lambda-build", "-q", "-v"]).is_err());
    }

    #[test]
    fn docker_subcommands_and_build_arguments() {
        let args = parse(&[
            "cargo",
            "lambda-build",
            "docker",
            "ls",
            "--message-format",
            "json",
        ]);
        assert!(matches!(
            args.command,
            Some(Command::Docker(DockerCommand::Ls(DockerLsArgs {
                message_format: MessageFormat::Json
            })))
        ));
        let args = parse(&["cargo", "lambda-build", "docker", "clean", "-q"]);
        assert!(matches!(
            args.command,
            Some(Command::Docker(DockerCommand::Clean(DockerCleanArgs {
                force: false
            })))
        ));
        assert!(args.output.quiet, "-q is global");
        assert!(matches!(
            parse(&["cargo", "lambda-build", "dockerfile"]).command,
            Some(Command::Dockerfile)
        ));
        let args = parse(&[
            "cargo",
            "lambda-build",
            "--docker-build-arg",
            "BASE_IMAGE=m/al:2023",
            "--docker-build-arg",
            "X=",
        ]);
        assert_eq!(
            args.docker_build_arg,
            [
                ("BASE_IMAGE".to_string(), "m/al:2023".to_string()),
                ("X".to_string(), String::new())
            ]
        );
        for bad in [
            &["cargo", "lambda-build", "--docker-build-arg", "NOVALUE"][..],
            &[
                "cargo",
                "lambda-build",
                "--docker-build-arg",
                "A=1",
                "--docker-image",
                "i",
            ],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cargo_lambdas_other_subcommands_say_what_to_run_instead() {
        let refused = |args: &[&str]| {
            let error = parse_from(args).expect_err("a usage error");
            assert_eq!(error.exit_code(), 2, "{args:?}");
            error.to_string()
        };
        for (word, instead) in [
            ("watch", "cargo lambda-build serve --watch"),
            ("build", "run `cargo lambda-build`"),
            ("deploy", "aws lambda update-function-code"),
        ] {
            for args in [
                &["cargo", "lambda-build", word][..],
                &["cargo", "lambda-build", word, "--release"],
                &["cargo", "lambda-build", "--zip", "-v", word],
            ] {
                let text = refused(args);
                assert!(
                    text.contains(&format!("`{word}` is not a command")),
                    "{args:?}: {text}"
                );
                assert!(text.contains(instead), "{args:?}: {text}");
            }
        }
        let deploy = refused(&["cargo", "lambda-build", "deploy"]);
        for tool in ["SAM", "CDK", "Terraform"] {
            assert!(deploy.contains(tool), "{deploy}");
        }
        // Any other word keeps clap's own error.
        assert!(refused(&["cargo", "lambda-build", "frob"]).contains("unrecognized subcommand"));
        // Not commands, so neither in the help nor in the completions.
        let command = Cli::command();
        let lambda_build = command.find_subcommand("lambda-build").unwrap();
        assert!(
            lambda_build
                .get_subcommands()
                .all(|c| !["watch", "build", "deploy"].contains(&c.get_name()))
        );
        // A file named like one is still an argument where a command takes one.
        assert!(parse_from(["cargo", "lambda-build", "invoke", "build"]).is_ok());
    }

    #[test]
    fn build_arguments_parse_as_name_equals_value() {
        assert_eq!(
            parse_build_arg("BASE_IMAGE=r.example/al:2023"),
            Ok(("BASE_IMAGE".into(), "r.example/al:2023".into()))
        );
        assert_eq!(
            parse_build_arg("EMPTY="),
            Ok(("EMPTY".into(), String::new()))
        );
        assert_eq!(parse_build_arg("A=b=c"), Ok(("A".into(), "b=c".into())));
        for bad in ["BASE_IMAGE", "=x", "1A=x", "A-B=x"] {
            assert!(parse_build_arg(bad).is_err(), "{bad}");
        }
    }
}
