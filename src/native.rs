//! Native mode (`--native`): the function built for this machine by a plain `cargo build`
//! (cargo's dev profile unless `--release` or `--profile` say otherwise; no Lambda target, no
//! zip, no provided.al2023 checks) and run by the same emulator as a zip, as cargo-lambda's
//! `watch` runs functions. The quickest loop, and not what ships: every status line says so.
//! Linux and macOS; Windows gets container mode.
//!
//! Also what `serve --watch` and `invoke --native` share about what they build: the build's
//! own arguments from the selection flags, and the one function they run.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::cli::{BuildArgs, FunctionArgs, InvokeArgs, SelectionArgs, ServeArgs};
use crate::config::BuildConfig;
use crate::env::{Env, Ui};
use crate::error::{Error, Result};
use crate::invoke::front::Front;
use crate::invoke::serve::{self, ServeConfig};
use crate::invoke::{self, FunctionSettings, InvokeError, Payloads};
use crate::plan::{BuildPlan, CargoArgs, Cmd, FunctionPlan};
use crate::project::Workspace;
use crate::report::Reporter;
use crate::signal::Interrupt;

/// Said at the end of every status line of native mode.
pub const NOTE: &str = "native build, not the shipped zip";

/// The build's arguments for `selection` (`zip_into`: a zip into that outdir): the package's
/// settings (Cargo.toml, `CARGO_LAMBDA_BUILD_*`) apply as to any build.
pub fn build_args(selection: &SelectionArgs, zip_into: Option<&Path>) -> Result<BuildArgs> {
    BuildArgs::of_selection(selection, zip_into)
        .map_err(|e| anyhow::anyhow!("cannot prepare the build's arguments: {e}").into())
}

/// The one function `serve` and `invoke` run: a plan of several, or of an extension, is refused
/// before anything is built.
pub fn one_function<'p>(
    config: &BuildConfig,
    plan: &'p BuildPlan,
    command: &'static str,
) -> Result<&'p FunctionPlan, InvokeError> {
    match plan.functions.as_slice() {
        [one] if config.functions.first().is_some_and(|f| f.extension) => {
            Err(InvokeError::NotAFunction(one.bin.clone()))
        }
        [one] => Ok(one),
        several => Err(InvokeError::SeveralFunctions {
            command,
            functions: several
                .iter()
                .map(|f| format!("`{}` ({})", f.bin, f.package))
                .collect(),
        }),
    }
}

/// A native build, decided: cargo's command and the binary to take from its messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativePlan {
    pub cargo: Cmd,
    /// The function's record in the build's plan: cargo's messages are matched against it.
    pub function: FunctionPlan,
    pub profile: String,
    /// cargo's target directory, where the native executable lands.
    pub target_dir: PathBuf,
}

/// The profile of a native build: cargo's `dev`, as `cargo build` and cargo-lambda's `watch`
/// use, unless the flags name one; a profile set in Cargo.toml's metadata is the shipped
/// zip's, not this one's.
fn profile(selection: &SelectionArgs) -> String {
    match (&selection.profile, selection.cargo_lambda.release) {
        (Some(profile), _) => profile.clone(),
        (None, true) => "release".into(),
        (None, false) => "dev".into(),
    }
}

/// Decides the native build of the selected function: the build's plan (package, binary,
/// features and cargo's flags, as the zip would be built), rendered as a plain host build.
pub fn plan(
    selection: &SelectionArgs,
    workspace: Option<&Workspace>,
    env: &Env,
    ui: Ui,
    command: &'static str,
) -> Result<NativePlan> {
    let (config, plan) = crate::plan_build(build_args(selection, None)?, workspace, env, ui)?;
    let function = one_function(&config, &plan, command)?;
    let profile = profile(selection);
    // No `CARGO_PROFILE_*` of the zip's (strip): this build is cargo's own.
    let cargo = CargoArgs {
        profile: profile.clone(),
        env: Vec::new(),
        ..plan.cargo.clone()
    };
    Ok(NativePlan {
        cargo: cargo.native_build(),
        function: function.clone(),
        profile,
        target_dir: plan.target_dir.clone(),
    })
}

/// Runs the native build; returns the executable cargo reported.
pub fn build(plan: &NativePlan, reporter: &Reporter, interrupt: &Interrupt) -> Result<PathBuf> {
    reporter.status(
        "Building",
        format!(
            "`{}` for this machine, profile `{}`",
            plan.function.bin, plan.profile
        ),
    );
    let started = Instant::now();
    let built = crate::build::run_cargo(
        &plan.cargo,
        std::slice::from_ref(&plan.function),
        reporter,
        interrupt,
    )?;
    let executable = built
        .into_iter()
        .next()
        .map(|built| built.path)
        .ok_or_else(|| {
            anyhow::anyhow!("cargo reported no executable for `{}`", plan.function.bin)
        })?;
    reporter.status(
        "Built",
        format!(
            "{} in {:.1} s",
            executable.display(),
            started.elapsed().as_secs_f64()
        ),
    );
    Ok(executable)
}

/// What `serve --native` and `invoke --native` start with: the host's check, Ctrl-C, the
/// reporter that labels every status line, and the function's settings.
fn start(
    command: &'static str,
    function: FunctionArgs,
    env: &Env,
    ui: Ui,
) -> Result<(Interrupt, Reporter, FunctionSettings)> {
    invoke::check_native_host(command)?;
    let interrupt = Interrupt::register()
        .map_err(|e| anyhow::anyhow!("cannot install a signal handler: {e}"))?;
    let lookup = |key: &str| env.var(key).map(str::to_owned);
    let function = invoke::function_settings(function, &lookup, &env.cwd)?;
    Ok((interrupt, Reporter::new(ui).noting(NOTE), function))
}

/// `serve --native`: builds once, then serves that build until Ctrl-C.
pub fn serve(args: ServeArgs, env: &Env, ui: Ui) -> Result<()> {
    let (interrupt, reporter, mut function) = start("serve", args.function, env, ui)?;
    // Listening first: a port in use is refused before anything is built.
    let front = Front::bind(args.bind, args.port)?;
    serve::announce(&front)?;
    let plan = plan(&args.selection, None, env, ui, "serve")?;
    function.add_settings(&plan.function.run)?;
    let executable = build(&plan, &reporter, &interrupt)?;
    let config = ServeConfig {
        artifact: executable,
        addr: front.addr,
        format: args.event_format.into(),
        function,
    };
    serve::serve_until_stopped(&front, &config, &reporter, ui.verbosity, &interrupt)
        .map_err(Error::from)
}

/// `invoke --native`: builds, then runs the events as `invoke` runs a zip's.
pub fn invoke(args: InvokeArgs, env: &Env, ui: Ui) -> Result<()> {
    let (interrupt, reporter, mut function) = start("invoke", args.function, env, ui)?;
    function.tenant_id = args.tenant_id;
    function.caller = invoke::caller(args.client_context, args.client_context_file, &env.cwd)?;
    // A bad event file fails before the build.
    let events = invoke::read_events(&invoke::event_source(
        args.data,
        args.data_file,
        args.data_example,
        &env.cwd,
    )?)?;
    let plan = plan(&args.selection, None, env, ui, "invoke")?;
    function.add_settings(&plan.function.run)?;
    let executable = build(&plan, &reporter, &interrupt)?;
    let outcomes = invoke::invoke(
        &executable,
        &events,
        &function,
        Payloads::Raw,
        &reporter,
        ui.verbosity,
        &interrupt,
    )?;
    Ok(outcomes.into_result()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;

    fn selection(args: &[&str]) -> SelectionArgs {
        let Cli::LambdaBuild(args) =
            Cli::try_parse_from(["cargo", "lambda-build"].iter().chain(args)).unwrap();
        args.selection
    }

    #[test]
    fn the_dev_profile_unless_the_flags_say_otherwise() {
        assert_eq!(profile(&selection(&[])), "dev");
        assert_eq!(profile(&selection(&["--release"])), "release");
        assert_eq!(profile(&selection(&["--profile", "fast"])), "fast");
    }

    #[test]
    fn build_args_carry_the_selection_and_zip_into_the_outdir() {
        let chosen = selection(&["-p", "api", "--bin", "handler", "--arch", "arm64"]);
        let args = build_args(&chosen, Some(Path::new("/t/watch"))).unwrap();
        assert!(args.zip);
        assert_eq!(args.outdir.as_deref(), Some(Path::new("/t/watch")));
        assert_eq!(args.selection.package, ["api"]);
        assert_eq!(args.selection.bin, ["handler"]);
        assert!(args.command.is_none());
        let args = build_args(&chosen, None).unwrap();
        assert!(!args.zip && args.outdir.is_none());
    }
}
