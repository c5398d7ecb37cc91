//! `cargo lambda-build`: a pipeline of stages, one module each.
//!
//! config -> project -> plan -> build -> inspect -> package -> report

pub mod arch;
pub mod build;
pub mod cli;
pub mod config;
pub mod docker_cmd;
pub mod error;
pub mod include;
pub mod inspect;
pub mod invoke;
pub mod new;
pub mod package;
pub mod plan;
pub mod project;
pub mod redact;
pub mod report;
pub mod signal;
pub mod verify;

use std::io::Write as _;
use std::path::Path;

use crate::build::local::{self, HostFacts, Linker};
use crate::cli::{BuildArgs, MessageFormat};
use crate::config::{BuildConfig, Env};
use crate::error::{Error, Result};
use crate::inspect::Problem;
use crate::package::ZipEntry;
use crate::plan::{FunctionPlan, Output};
use crate::project::Selection;
use crate::report::{Reporter, Summary};
use crate::signal::Interrupt;

/// Runs one build of every selected function. Errors are returned, never printed or exited on,
/// so destructors run (temporary files go away) and `main` alone chooses the exit code.
pub fn run(args: BuildArgs, env: &Env) -> Result<()> {
    let interrupt = Interrupt::register()?;

    let manifest = project::locate_manifest(args.manifest_path.as_deref(), &env.cwd)?;
    let metadata = project::metadata(&env.cargo, &manifest, &env.cwd)?;
    let project = project::select(
        &metadata,
        &manifest,
        Selection {
            packages: &args.package,
            workspace: args.workspace,
            exclude: &args.exclude,
            bins: &args.bin,
        },
    )?;
    let config = BuildConfig::resolve(args, env, &project)?;
    let reporter = &Reporter::new(&config);
    for warning in &config.warnings {
        reporter.warn(warning);
    }
    let profile_sets_strip = project::profile_sets_strip(&project.workspace_root, &config.profile);
    let profile_env = plan::profile_env(&config, profile_sets_strip, |name| {
        std::env::var_os(name).is_some()
    });
    let plan = plan::plan(&config, &project, &env.cargo, &env.cwd, profile_env);
    if let Some(docker) = config.docker.as_ref().filter(|d| d.print_image_tag) {
        let image = build::docker::image_plan(&plan, docker, env)?;
        writeln!(std::io::stdout().lock(), "{}", image.name())
            .map_err(|e| anyhow::anyhow!("cannot write to stdout: {e}"))?;
        return Ok(());
    }

    // Refuse bad input before spending minutes compiling.
    for function in &config.functions {
        if function.outdir.is_file() {
            return Err(Error::OutdirIsFile(function.outdir.clone()));
        }
        package::check_writable(&function.outdir).map_err(|source| Error::CreateOutdir {
            path: function.outdir.clone(),
            source,
        })?;
    }
    for function in &plan.functions {
        if function.output.path().is_dir() {
            return Err(Error::OutputIsDir(function.output.path().to_path_buf()));
        }
    }
    let timestamp = package::zip_timestamp_from(config.source_date_epoch.as_deref())?;
    let smoke_events = config
        .invoke_with
        .as_ref()
        .map(|file| invoke::read_events(&invoke::EventSource::File(file.clone())))
        .transpose()?;
    let mut includes = Vec::new();
    for function in &plan.functions {
        if !function.include.is_empty() && matches!(function.output, Output::Bootstrap(_)) {
            reporter.warn(format!(
                "`{}`: includes are packaged only into a zip; pass `--zip` to package them",
                function.bin
            ));
        }
        includes.push(include::collect(&function.package_root, &function.include)?);
    }

    let mut docker_image = None;
    let (built, mut checked) = match &config.docker {
        Some(docker) => {
            let build = build::docker::build(&plan, docker, env, reporter, &interrupt)?;
            let checked = inspect_all(&build.built, plan.arch)?;
            docker_image = Some(build.image);
            (build.built, checked)
        }
        None => build_on_host(&plan, env, reporter, &interrupt)?,
    };
    for (function, (elf, _)) in plan.functions.iter().zip(&checked) {
        reporter.status(
            "Checked",
            format!(
                "`{}`: {}, glibc {}",
                function.bin,
                plan.arch,
                report::glibc_text(elf)
            ),
        );
    }
    for (built, (_, problems)) in built.iter().zip(&mut checked) {
        if problems.is_empty() {
            continue;
        }
        if plan.verify {
            return Err(Error::Incompatible {
                path: built.executable.clone(),
                problems: std::mem::take(problems),
            });
        }
        for problem in problems.iter() {
            reporter.warn(format!(
                "{} (packaged anyway: --no-verify)",
                problem.message()
            ));
        }
    }
    interrupt.check()?;

    let mut artifacts = Vec::new();
    for ((function, built), includes) in plan.functions.iter().zip(&built).zip(includes) {
        let (artifact, fresh) = package_function(function, built, includes, timestamp, &interrupt)?;
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
        artifacts.push(artifact);
        interrupt.check()?;
    }

    let stdout = &mut std::io::stdout().lock();
    for (i, ((function, artifact), (elf, _))) in plan
        .functions
        .iter()
        .zip(&artifacts)
        .zip(&checked)
        .enumerate()
    {
        if i > 0 && config.message_format == MessageFormat::Human {
            writeln!(stdout).map_err(|e| anyhow::anyhow!("cannot write to stdout: {e}"))?;
        }
        let summary = Summary {
            output: &function.output,
            artifact,
            arch: plan.arch,
            function: &function.bin,
            package: &function.package,
            elf,
            extension: function.extension,
            docker_image: docker_image.as_deref(),
        };
        match config.message_format {
            MessageFormat::Human => report::print_summary(stdout, &summary),
            MessageFormat::Json => report::print_json(stdout, &summary),
        }
        .map_err(|e| anyhow::anyhow!("cannot write to stdout: {e}"))?;
    }
    interrupt.check()?;

    if let Some(events) = smoke_events {
        smoke_test(&plan, &events, &config, reporter, &interrupt)?;
    }
    Ok(())
}

/// `--invoke-with`: each function just written runs the events, as `invoke` runs them: the
/// bytes that will be deployed are the bytes that were tested. Extensions are not invocable.
fn smoke_test(
    plan: &plan::BuildPlan,
    events: &[Vec<u8>],
    config: &BuildConfig,
    reporter: &Reporter,
    interrupt: &Interrupt,
) -> Result<()> {
    let mut failed = Vec::new();
    for function in plan.functions.iter().filter(|f| !f.extension) {
        let settings = invoke::default_function(&function.bin, &invoke::process_var);
        let summary = invoke::invoke(
            function.output.path(),
            events,
            &settings,
            reporter,
            config.verbosity,
            interrupt,
        )?;
        if let Err(error) = summary.into_result() {
            failed.push(error);
        }
    }
    // The first failure stands for all: each was reported as it happened.
    failed.into_iter().next().map_or(Ok(()), Err)
}

/// The local backend: a linker for the target, then cargo; relinked with zig when the host's
/// glibc made a binary AL2023 cannot load.
#[allow(clippy::type_complexity)]
fn build_on_host(
    plan: &plan::BuildPlan,
    env: &Env,
    reporter: &Reporter,
    interrupt: &Interrupt,
) -> Result<(Vec<build::Built>, Vec<(inspect::ElfReport, Vec<Problem>)>)> {
    let host = HostFacts::discover(plan.arch, &plan.target_dir.join("lambda-build"));
    let linker = local::choose(plan.arch, &host)?;
    match linker {
        Linker::Host => reporter.detail("Linker", linker.describe()),
        _ => reporter.status("Cross", format!("{} with {}", plan.arch, linker.describe())),
    }
    local::ensure_target(
        plan.arch,
        &env.cwd,
        &plan.target_dir.join("lambda-build"),
        reporter,
    )?;

    let mut built = local::build(plan, &linker, reporter, interrupt)?;
    let mut checked = inspect_all(&built, plan.arch)?;
    // The host toolchain links against the host's glibc; when that gives a binary AL2023
    // cannot load and zig is there, relink against glibc 2.34 rather than fail.
    let glibc_too_new = checked
        .iter()
        .flat_map(|(_, problems)| problems)
        .any(|p| matches!(p, Problem::GlibcTooNew { .. }));
    if linker == Linker::Host
        && glibc_too_new
        && let Some(zig) = build::zig::find()
    {
        let linker = Linker::Zig(zig);
        reporter.status(
            "Relinking",
            format!("{} with {}", plan.bin_list(), linker.describe()),
        );
        built = local::build(plan, &linker, reporter, interrupt)?;
        checked = inspect_all(&built, plan.arch)?;
    }
    Ok((built, checked))
}

/// Writes the function's zip, or its executable alone, from the executable cargo built and the
/// includes. When nothing changed since the run that wrote it (same contents, same output), the
/// file is kept as it is and the result says so (`true`).
fn package_function(
    function: &FunctionPlan,
    built: &build::Built,
    includes: Vec<ZipEntry>,
    timestamp: zip::DateTime,
    interrupt: &Interrupt,
) -> Result<(package::Artifact, bool)> {
    let zip = matches!(function.output, Output::Zip(_));
    let mut entries = if zip { includes } else { Vec::new() };
    // Lambda reads extensions from `/opt/extensions/` of a layer; the directory gets its own
    // entry (mode 755) unless an include brought it.
    if zip && function.extension && !entries.iter().any(|e| e.name == "extensions/") {
        entries.push(ZipEntry {
            name: "extensions/".into(),
            source: function.staging_dir.clone(),
            mode: 0o755,
        });
    }
    entries.push(ZipEntry {
        name: function.entry_name.clone(),
        source: built.executable.clone(),
        mode: 0o755,
    });
    let fingerprint = package::fingerprint(&entries, zip, timestamp)?;
    let stamp = function.staging_dir.join("package-stamp.json");
    if let Some(artifact) = package::reuse(&stamp, &fingerprint, function.output.path()) {
        return Ok((artifact, true));
    }

    let cancel = || interrupt.received();
    let staged = package::stage_bootstrap(&built.executable, &function.staging_dir, &cancel)?;
    if let Some(dir) = function.output.path().parent() {
        create_outdir(dir)?;
    }
    let artifact = match &function.output {
        Output::Zip(path) => {
            if let Some(executable) = entries.last_mut() {
                executable.source = staged;
            }
            package::write_zip_cancellable(path, &entries, timestamp, &cancel)?
        }
        Output::Bootstrap(path) => package::write_file_cancellable(path, &staged, 0o755, &cancel)?,
    };
    package::record(&stamp, &fingerprint, &artifact)?;
    Ok((artifact, false))
}

fn inspect_all(
    built: &[build::Built],
    arch: arch::Arch,
) -> Result<Vec<(inspect::ElfReport, Vec<Problem>)>> {
    built.iter().map(|b| inspect_built(b, arch)).collect()
}

fn inspect_built(
    built: &build::Built,
    arch: arch::Arch,
) -> Result<(inspect::ElfReport, Vec<Problem>)> {
    let elf = inspect::inspect(&built.executable).map_err(|source| Error::Inspect {
        path: built.executable.clone(),
        source,
    })?;
    let problems = inspect::check(&elf, arch);
    Ok((elf, problems))
}

fn create_outdir(outdir: &Path) -> Result<()> {
    std::fs::create_dir_all(outdir).map_err(|source| Error::CreateOutdir {
        path: outdir.to_path_buf(),
        source,
    })
}
