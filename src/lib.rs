//! `cargo lambda-build`: a pipeline of stages, one module each.
//!
//! config -> project -> plan -> build -> inspect -> package -> report

pub mod arch;
pub mod build;
pub mod cli;
pub mod config;
pub mod error;
pub mod inspect;
pub mod invoke;
pub mod package;
pub mod plan;
pub mod project;
pub mod report;
pub mod signal;

use std::path::Path;

use crate::build::local::{self, HostFacts, Linker};
use crate::cli::{BuildArgs, Command};
use crate::config::{BuildConfig, Env};
use crate::error::{Error, Result};
use crate::inspect::Problem;
use crate::package::ZipEntry;
use crate::plan::Output;
use crate::report::{Reporter, Summary};
use crate::signal::Interrupt;

/// What `cargo lambda-build` runs: the subcommand the user named, else a build.
pub fn dispatch(mut args: BuildArgs, env: &Env) -> Result<()> {
    match args.command.take() {
        Some(Command::Invoke(invoke)) => invoke::run(invoke, env),
        None => run(args, env),
    }
}

/// Runs one build. Errors are returned, never printed or exited on, so destructors run
/// (temporary files go away) and `main` alone chooses the exit code.
pub fn run(args: BuildArgs, env: &Env) -> Result<()> {
    let interrupt = Interrupt::register()?;
    let config = BuildConfig::resolve(args, env);
    let reporter = &Reporter::new(&config);

    // Refuse a bad outdir before spending minutes compiling.
    if config.outdir.is_file() {
        return Err(Error::OutdirIsFile(config.outdir.clone()));
    }
    let timestamp = package::zip_timestamp_from(config.source_date_epoch.as_deref())?;
    // The same for `--invoke-with`'s events: read and checked first.
    let smoke_events = config
        .invoke_with
        .as_ref()
        .map(|file| invoke::read_events(&invoke::EventSource::File(file.clone())))
        .transpose()?;

    let manifest = project::locate_manifest(config.manifest_path.as_deref(), &env.cwd)?;
    let metadata = project::metadata(&env.cargo, &manifest, &env.cwd)?;
    let project = project::select(
        &metadata,
        &manifest,
        config.package.as_deref(),
        config.bin.as_deref(),
    )?;
    let profile_sets_strip = project::profile_sets_strip(&project.workspace_root, &config.profile);
    let profile_env = plan::profile_env(&config, profile_sets_strip, |name| {
        std::env::var_os(name).is_some()
    });
    let plan = plan::plan(&config, &project, &env.cargo, &env.cwd, profile_env);

    let host = HostFacts::discover(plan.arch);
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

    let mut built = local::build(&plan, &linker, reporter, &interrupt)?;
    let (mut elf, mut problems) = inspect_built(&built, plan.arch)?;
    // The host toolchain links against the host's glibc; when that gives a binary AL2023
    // cannot load and zig is there, relink against glibc 2.34 rather than fail.
    let glibc_too_new = problems
        .iter()
        .any(|p| matches!(p, Problem::GlibcTooNew { .. }));
    if linker == Linker::Host
        && glibc_too_new
        && let Some(zig) = build::zig::find()
    {
        let linker = Linker::Zig(zig);
        reporter.status(
            "Relinking",
            format!("`{}` with {}", project.bin, linker.describe()),
        );
        built = local::build(&plan, &linker, reporter, &interrupt)?;
        (elf, problems) = inspect_built(&built, plan.arch)?;
    }
    reporter.status(
        "Checked",
        format!(
            "`{}`: {}, glibc {}",
            project.bin,
            plan.arch,
            report::glibc_text(&elf)
        ),
    );
    if !problems.is_empty() {
        if plan.verify {
            return Err(Error::Incompatible {
                path: built.executable,
                problems,
            });
        }
        for problem in &problems {
            reporter.warn(format!(
                "{} (packaged anyway: --no-verify)",
                problem.message()
            ));
        }
    }
    interrupt.check()?;

    // Nothing changed since the last run (same binary, same output): keep the file it wrote.
    let entries = [ZipEntry {
        name: "bootstrap".into(),
        source: built.executable.clone(),
        mode: 0o755,
    }];
    let zip = matches!(plan.output, Output::Zip(_));
    let fingerprint = package::fingerprint(&entries, zip, timestamp)?;
    let stamp = plan.staging_dir.join("package-stamp.json");
    let artifact = match package::reuse(&stamp, &fingerprint, plan.output.path()) {
        Some(artifact) => {
            reporter.status("Fresh", plan.output.path().display());
            artifact
        }
        None => {
            let staged = package::stage_bootstrap(&built.executable, &plan.staging_dir)?;
            create_outdir(&config.outdir)?;
            let artifact = match &plan.output {
                Output::Zip(path) => {
                    let entries = [ZipEntry {
                        source: staged,
                        ..entries[0].clone()
                    }];
                    package::write_zip(path, &entries, timestamp)?
                }
                Output::Bootstrap(path) => package::write_file(path, &staged, 0o755)?,
            };
            package::record(&stamp, &fingerprint, &artifact)?;
            reporter.status(
                "Packaged",
                format!(
                    "{} ({})",
                    plan.output.path().display(),
                    report::human_size(artifact.size)
                ),
            );
            artifact
        }
    };
    if artifact.exceeds_direct_upload() {
        reporter.warn(format!(
            "`{}` is {}, over Lambda's 50 MB direct-upload limit: upload it to S3 and deploy \
             with `--code S3Bucket=...,S3Key=...`",
            artifact.path.display(),
            report::human_size(artifact.size)
        ));
    }

    let summary = Summary {
        output: &plan.output,
        artifact: &artifact,
        arch: plan.arch,
        function: &project.bin,
        package: &project.package,
        elf: &elf,
    };
    report::print_summary(&mut std::io::stdout().lock(), &summary)
        .map_err(|e| anyhow::anyhow!("cannot write to stdout: {e}"))?;
    interrupt.check()?;

    if let Some(events) = smoke_events {
        // A smoke test of what was just written: the same bytes that will be deployed.
        let function = invoke::default_function(&project.bin, &invoke::process_var);
        invoke::invoke(
            plan.output.path(),
            &events,
            &function,
            reporter,
            config.verbosity,
            &interrupt,
        )?
        .into_result()?;
    }
    Ok(())
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
