//! `cargo lambda-build`: a pipeline of stages, one module each.
//!
//! project -> config -> plan -> build (host or docker) -> inspect -> package -> report
//!
//! [`run`] is the sequence: [`prepare`] decides everything that can be decided before compiling
//! (and refuses bad input then), [`build::build`] compiles and checks, and each function flows
//! as one record through the stages: its plan ([`FunctionPlan`], with what it brings), then
//! what the build made of it ([`Built`]), then what was written ([`Packaged`]).

pub mod arch;
pub mod build;
pub mod cli;
pub mod config;
pub mod docker_cmd;
pub mod doctor;
pub mod env;
pub mod error;
pub mod generate;
pub mod host;
pub mod image;
pub mod inspect;
pub mod invoke;
pub mod lambda;
pub mod native;
pub mod native_cpu;
pub mod new;
pub mod package;
pub mod plan;
pub mod project;
pub mod redact;
pub mod report;
pub mod rustflags;
pub mod signal;
pub mod verify;
pub mod watch;

use std::io::Write as _;
use std::path::Path;

use crate::arch::Arch;
use crate::build::Built;
use crate::cli::{BuildArgs, PackageArgs};
use crate::config::{BuildConfig, MessageFormat};
use crate::env::{Env, Ui};
use crate::error::{Error, Result};
use crate::inspect::CheckError;
use crate::package::Artifact;
use crate::plan::{Brought, BuildPlan, FunctionPlan, Output, PackageRequest};
use crate::project::Selection;
use crate::report::{FunctionReport, Reporter};
use crate::signal::Interrupt;

/// Everything decided before compiling.
struct Prepared {
    config: BuildConfig,
    /// Each function's record carries what it brings.
    plan: BuildPlan,
    timestamp: zip::DateTime,
    /// `--invoke-with`'s events, read before the build so a bad file fails fast.
    smoke_events: Option<Vec<Vec<u8>>>,
}

/// One function after packaging: what the build made of its plan, and what was written.
struct Packaged {
    built: Built,
    artifact: Artifact,
    /// `--image`: the container image made of it.
    image: Option<image::Published>,
}

/// Runs one build of every selected function. Errors are returned, never printed or exited on,
/// so destructors run (temporary files go away) and `main` alone chooses the exit code.
pub fn run(args: BuildArgs, env: &Env, ui: Ui) -> Result<()> {
    let interrupt = Interrupt::register().map_err(signal_handler_error)?;
    build_with(args, env, ui, &interrupt)
}

/// [`run`] with the caller's Ctrl-C flag.
pub fn build_with(args: BuildArgs, env: &Env, ui: Ui, interrupt: &Interrupt) -> Result<()> {
    build_in(args, None, env, ui, interrupt, &|_| {})
}

/// [`build_with`] for `serve --watch`, which builds again and again under one Ctrl-C flag: on
/// the workspace it read already (`None`: read here), with `adjust` applied to the plan (the
/// watch's own build settings) before anything runs.
pub fn build_in(
    args: BuildArgs,
    workspace: Option<&project::Workspace>,
    env: &Env,
    ui: Ui,
    interrupt: &Interrupt,
    adjust: &dyn Fn(&mut BuildPlan),
) -> Result<()> {
    let Some(mut prepared) = prepare(args, workspace, env, ui)? else {
        return Ok(());
    };
    adjust(&mut prepared.plan);
    let reporter = &Reporter::new(prepared.config.ui);
    for warning in &prepared.config.warnings {
        reporter.warn(warning);
    }
    let (config, plan) = (&prepared.config, &prepared.plan);
    let mut built = build::build(plan, env, reporter, interrupt)
        .map_err(|e| Error::from(e).with_settings_given_to_cargo(&config.passed_to_cargo))?;
    for function in &mut built {
        function.checked.provided(&function.plan.brought.libraries);
    }
    refuse_or_warn(&built, plan.arch, plan.verify, reporter)?;
    interrupt.check()?;

    let mut functions = Vec::with_capacity(built.len());
    for built in built {
        let (artifact, fresh) = package::package_function(
            &built.plan,
            &built.checked.executable,
            prepared.timestamp,
            &|| interrupt.received(),
        )?;
        report_packaged(reporter, &built.plan, &artifact, fresh);
        functions.push(Packaged {
            built,
            artifact,
            image: None,
        });
        interrupt.check()?;
    }
    if let Some(image) = &config.image {
        for function in &mut functions {
            function.image = Some(publish_image(image, function, config, env, reporter)?);
            interrupt.check()?;
        }
    }

    print_results(&functions, plan.arch, config.message_format)?;
    interrupt.check()?;

    if let Some(events) = &prepared.smoke_events {
        let workspace_root = &plan.project.workspace_root;
        smoke_test(
            &functions,
            events,
            config,
            (env, workspace_root),
            reporter,
            interrupt,
        )?;
    }
    Ok(())
}

/// `package BINARY`: a binary built elsewhere goes through the build's last stages (inspect,
/// package, report) as one function, so it gets the same checks and the same zip bytes. No
/// cargo, no Cargo.toml: the includes are relative to the current directory.
pub fn package_binary(args: PackageArgs, env: &Env, ui: env::Ui) -> Result<()> {
    let interrupt = Interrupt::register().map_err(signal_handler_error)?;
    let binary = env.cwd.join(&args.binary);
    if binary.is_dir() {
        return Err(Error::BinaryIsDir(args.binary));
    }
    if !binary.exists() {
        return Err(Error::BinaryNotFound(args.binary));
    }
    let request = PackageRequest {
        binary,
        zip: args.zip,
        outdir: args
            .outdir
            .map_or_else(|| env.cwd.clone(), |dir| env.cwd.join(dir)),
        include: args.include,
        root: env.cwd.clone(),
        extension: args.extension,
    };
    // No target directory to stage in: a directory of this run, removed when it ends.
    let staging = tempfile::Builder::new()
        .prefix("cargo-lambda-build-package.")
        .tempdir()
        .map_err(|e| anyhow::anyhow!("cannot create a temporary directory: {e}"))?;
    let mut function = plan::package_plan(&request, staging.path());
    refuse_unwritable(std::slice::from_ref(&function))?;
    let timestamp = package::zip_timestamp_from(
        env.source_date_epoch()
            .map(|value| value.to_string_lossy())
            .as_deref(),
    )?;
    let checked = inspect::check_packaged(&request.binary, args.arch)?;
    let arch = args.arch.unwrap_or(checked.elf.arch);
    let reporter = &Reporter::new(ui);
    if let Some(interpreter) = checked.elf.script() {
        reporter.status(
            "Script",
            format!(
                "`{}` is a `#!{interpreter}` script, which provided.al2023 runs as it is: no \
                 ELF, glibc or library check applies to it",
                args.binary.display()
            ),
        );
    }
    function.brought.includes = if request.zip {
        let outputs = [
            request.outdir.clone(),
            function.output.path().to_path_buf(),
            request.binary.clone(),
        ];
        let collected =
            package::include::collect_except(&request.root, &request.include, &outputs)?;
        for (path, why) in &collected.skipped {
            reporter.warn(format!(
                "`{}` not packed: it is {why}; include it by name to pack it anyway",
                path.display()
            ));
        }
        collected.entries
    } else {
        if !request.include.is_empty() {
            reporter.warn("includes are packaged only into a zip; pass `--zip` to package them");
        }
        Vec::new()
    };
    // A library the zip ships in lib/ is one the function has, as for a build.
    function.brought.libraries = lambda::libraries_in(
        function.brought.includes.iter().map(|e| e.name.as_str()),
        lambda::TASK_LIBRARY_DIRS,
    );
    let mut built = Built {
        plan: function,
        checked,
        docker_image: None,
    };
    built.checked.provided(&built.plan.brought.libraries);
    refuse_or_warn(
        std::slice::from_ref(&built),
        arch,
        !args.no_verify,
        reporter,
    )?;
    interrupt.check()?;
    let (artifact, fresh) =
        package::package_function(&built.plan, &built.checked.executable, timestamp, &|| {
            interrupt.received()
        })?;
    report_packaged(reporter, &built.plan, &artifact, fresh);
    let packaged = Packaged {
        built,
        artifact,
        image: None,
    };
    print_results(&[packaged], arch, args.message_format)?;
    interrupt.check()?;
    Ok(())
}

/// project -> config -> plan, then every refusal that needs no compiler: flags that compile for
/// this machine's CPU, unwritable outdirs, a directory where the artifact goes, a bad
/// `SOURCE_DATE_EPOCH`, includes that match nothing or escape, an unreadable `--invoke-with`
/// file. `None` when the run ends with the plan (`--print-image-tag`).
fn prepare(
    args: BuildArgs,
    workspace: Option<&project::Workspace>,
    env: &Env,
    ui: Ui,
) -> Result<Option<Prepared>> {
    let (mut config, mut plan) = plan_build(args, workspace, env, ui)?;
    if let Some(docker) = config.docker.as_ref().filter(|d| d.print_image_tag) {
        let image = build::docker::image_plan(&plan, docker, env).map_err(Error::from)?;
        writeln!(std::io::stdout().lock(), "{}", image.name())
            .map_err(|e| anyhow::anyhow!("cannot write to stdout: {e}"))?;
        return Ok(None);
    }

    native_cpu::refuse(&plan, env)?;
    refuse_unwritable(&plan.functions)?;
    let timestamp = package::zip_timestamp_from(config.source_date_epoch.as_deref())?;
    let smoke_events = config
        .invoke_with
        .as_ref()
        .map(|file| invoke::read_events(&invoke::EventSource::File(file.clone())))
        .transpose()?;
    if let Some(image) = &config.image {
        let functions: Vec<(&str, bool)> = (plan.functions.iter())
            .map(|f| (f.bin.as_str(), f.extension))
            .collect();
        image::check(image, &functions)?;
    }
    for function in &mut plan.functions {
        let image = config.image.is_some();
        function.brought = brought(function, &plan.target_dir, image, &mut config.warnings)?;
    }
    Ok(Some(Prepared {
        config,
        plan,
        timestamp,
        smoke_events,
    }))
}

/// project -> config -> plan, decided and not run: on the workspace already read (`None`: read
/// here). `--native` builds from this plan too.
pub fn plan_build(
    args: BuildArgs,
    workspace: Option<&project::Workspace>,
    env: &Env,
    ui: Ui,
) -> Result<(BuildConfig, BuildPlan)> {
    let read;
    let (manifest, metadata) = match workspace {
        Some(workspace) => (&workspace.manifest, &workspace.metadata),
        None => {
            let manifest =
                project::locate_manifest(args.selection.manifest_path.as_deref(), &env.cwd)?;
            let metadata = project::metadata(&env.cargo, &manifest, &env.cwd)?;
            read = (manifest, metadata);
            (&read.0, &read.1)
        }
    };
    let project = project::select(
        metadata,
        manifest,
        Selection {
            packages: &args.selection.package,
            workspace: args.workspace,
            exclude: &args.exclude,
            bins: &args.selection.bin,
            examples: &args.selection.example,
        },
    )?;
    let config = BuildConfig::resolve(args, env, ui, &project)?;
    let profile_sets_strip = project::profile_sets_strip(&project.workspace_root, &config.profile);
    let profile_env = plan::profile_env(&config, profile_sets_strip, |name| env.is_set(name));
    let rustflags = rustflags::host_channel(env, config.arch);
    let plan = plan::plan(&config, &project, env, profile_env, rustflags);
    Ok((config, plan))
}

/// What a function brings besides its executable: the files its includes match (never the
/// build's own outputs) and the shared libraries those and its layers hold. They go into the
/// zip, and into the image's `/var/task` with `--image`.
fn brought(
    function: &FunctionPlan,
    target_dir: &Path,
    image: bool,
    warnings: &mut Vec<String>,
) -> Result<Brought> {
    let packed = image || matches!(function.output, Output::Zip(_));
    if !function.include.is_empty() && !packed {
        warnings.push(format!(
            "`{}`: includes are packaged only into a zip; pass `--zip` to package them",
            function.bin
        ));
    }
    let outputs = [
        target_dir.to_path_buf(),
        function.outdir.clone(),
        function.output.path().to_path_buf(),
    ];
    let collected =
        package::include::collect_except(&function.package_root, &function.include, &outputs)?;
    for (path, why) in &collected.skipped {
        warnings.push(format!(
            "`{}`: `{}` not packed: it is {why}; include it by name to pack it anyway",
            function.bin,
            path.display()
        ));
    }
    let mut libraries = lambda::libraries_in(
        collected.entries.iter().map(|e| e.name.as_str()),
        lambda::TASK_LIBRARY_DIRS,
    );
    for layer in &function.layers {
        let names = package::entry_names(layer).map_err(|reason| Error::Layer {
            path: layer.clone(),
            reason,
        })?;
        libraries.extend(lambda::libraries_in(
            names.iter().map(String::as_str),
            lambda::LAYER_LIBRARY_DIRS,
        ));
    }
    Ok(Brought {
        includes: collected.entries,
        libraries,
    })
}

/// Outdirs that are files or cannot be written, and directories where an artifact goes, are
/// refused before anything is built or written.
fn refuse_unwritable(functions: &[FunctionPlan]) -> Result<()> {
    for outdir in functions.iter().map(|f| f.outdir.as_path()) {
        if outdir.is_file() {
            return Err(Error::OutdirIsFile(outdir.to_path_buf()));
        }
        package::check_writable(outdir).map_err(|source| Error::CreateOutdir {
            path: outdir.to_path_buf(),
            source,
        })?;
    }
    for function in functions {
        if function.output.path().is_dir() {
            return Err(Error::OutputIsDir(function.output.path().to_path_buf()));
        }
    }
    Ok(())
}

/// A binary that fails a check is refused, every problem named, unless `--no-verify`: then each
/// problem is a warning. A function is said to be checked only once it passed.
fn refuse_or_warn(
    functions: &[Built],
    arch: Arch,
    verify: bool,
    reporter: &Reporter,
) -> Result<()> {
    for Built { plan, checked, .. } in functions {
        if !checked.problems.is_empty() {
            if verify {
                return Err(CheckError::Incompatible {
                    path: checked.executable.clone(),
                    problems: checked.problems.clone(),
                }
                .into());
            }
            for problem in &checked.problems {
                reporter.warn(format!(
                    "{} (packaged anyway: --no-verify)",
                    problem.message()
                ));
            }
            continue;
        }
        reporter.status(
            "Checked",
            format!(
                "`{}`: {}, glibc {}",
                plan.bin,
                arch,
                report::glibc_text(&checked.elf)
            ),
        );
    }
    Ok(())
}

fn report_packaged(reporter: &Reporter, function: &FunctionPlan, artifact: &Artifact, fresh: bool) {
    if artifact.exceeds_direct_upload() {
        reporter.warn(format!(
            "`{}` is {}, over Lambda's 50 MB direct-upload limit: upload it to S3 and deploy \
             with `--code S3Bucket=...,S3Key=...`",
            artifact.path.display(),
            report::human_size(artifact.size)
        ));
    }
    if fresh {
        reporter.status("Fresh", function.output.path().display());
    } else {
        reporter.status(
            "Packaged",
            format!(
                "{} ({})",
                function.output.path().display(),
                report::human_size(artifact.size)
            ),
        );
    }
}

/// The results on stdout: a summary per function, or one JSON object each.
fn print_results(functions: &[Packaged], arch: Arch, format: MessageFormat) -> Result<()> {
    let stdout = &mut std::io::stdout().lock();
    let failed = |e: std::io::Error| anyhow::anyhow!("cannot write to stdout: {e}");
    for (i, function) in functions.iter().enumerate() {
        if i > 0 && format == MessageFormat::Human {
            writeln!(stdout).map_err(failed)?;
        }
        let Packaged {
            built,
            artifact,
            image,
        } = function;
        let summary = FunctionReport {
            function: &built.plan,
            artifact,
            arch,
            elf: &built.checked.elf,
            docker_image: built.docker_image.as_deref(),
            image: image.as_ref().map(image::Published::report),
        };
        match format {
            MessageFormat::Human => report::print_summary(stdout, &summary),
            MessageFormat::Json => report::print_json(stdout, &summary),
        }
        .map_err(failed)?;
    }
    Ok(())
}

/// `--invoke-with`: each function just written runs the events, as `invoke` runs them: the
/// bytes that will be deployed are the bytes that were tested. Extensions are not invocable.
/// After a `--docker` build (and on macOS), in a container of the build's image.
fn smoke_test(
    functions: &[Packaged],
    events: &[Vec<u8>],
    config: &BuildConfig,
    (env, workspace_root): (&Env, &Path),
    reporter: &Reporter,
    interrupt: &Interrupt,
) -> Result<()> {
    let container =
        invoke::container::container_mode(std::env::consts::OS, config.docker.is_some());
    let lookup = |key: &str| env.var(key).map(str::to_owned);
    let mut failed = Vec::new();
    for function in functions.iter().map(|f| &f.built.plan) {
        if function.extension {
            continue;
        }
        let mut settings = invoke::default_function(&function.bin, &lookup);
        settings.layers = function.layers.clone();
        settings.check_libraries = true;
        settings.qemu_sysroot = env.qemu_ld_prefix();
        settings.add_settings(&function.run)?;
        if let Some(chosen) = container {
            let docker = config.docker.clone().unwrap_or_default();
            let mut plan = invoke::container::ContainerPlan::new(chosen, docker, env)
                .map_err(invoke::InvokeError::from)?;
            plan.roots = Some((function.package_root.clone(), workspace_root.to_path_buf()));
            settings.container = Some(plan);
        }
        let outcome = invoke::invoke(
            function.output.path(),
            events,
            &settings,
            match config.message_format {
                MessageFormat::Human => invoke::Payloads::Raw,
                MessageFormat::Json => invoke::Payloads::Json,
            },
            reporter,
            config.ui.verbosity,
            interrupt,
        )?;
        if let Err(error) = outcome.into_result() {
            failed.push(error);
        }
    }
    // The first failure stands for all: each was reported as it happened.
    failed.into_iter().next().map_or(Ok(()), |e| Err(e.into()))
}

/// `--image`: the function's checked executable and includes on the base image, pushed or
/// written as the flags say.
fn publish_image(
    image: &config::ImageConfig,
    function: &Packaged,
    config: &BuildConfig,
    env: &Env,
    reporter: &Reporter,
) -> Result<image::Published> {
    let mtime = package::source_date_epoch_seconds(config.source_date_epoch.as_deref())?;
    let docker_config = (env.var_os("DOCKER_CONFIG").map(std::path::PathBuf::from))
        .or_else(|| env.home().map(|home| home.join(".docker")));
    let request = image::Request {
        image,
        arch: config.arch,
        bootstrap: &function.built.checked.executable,
        includes: &function.built.plan.brought.includes,
        mtime,
        docker_config: docker_config.as_deref(),
        engine: &build::docker::engine::EngineEnv::from_env(env),
    };
    let published = image::publish(&request, &|verb, message| reporter.status(verb, message))?;
    if published.pushed {
        reporter.status("Pushed", published.report().image_uri());
    }
    Ok(published)
}

fn signal_handler_error(e: std::io::Error) -> Error {
    anyhow::anyhow!("cannot install a signal handler: {e}").into()
}
