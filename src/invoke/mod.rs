//! `cargo lambda-build invoke`: run the packaged artifact locally, exactly as Lambda would.
//!
//! artifact -> sandbox (task root, layers, Runtime API) -> bootstrap process (instance) ->
//! payloads on stdout, START / END / REPORT and the function's output on stderr. `serve` runs
//! the same sandbox behind an HTTP port.
//!
//! What is decided here, on every host: the settings, the events, the artifact to run, and how
//! an invocation failed. Running the function is [`running`]'s.

pub mod container;
pub mod emulation;
pub mod error;
pub mod events;
pub mod examples;
pub mod failure;
pub mod function;
pub mod http;
pub mod ids;
pub mod invoke_api;
pub mod libraries;
pub mod record;

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub use error::InvokeError;
use failure::Failure;
pub use function::{FunctionSettings, default_function};
use record::{Outcome, Record};

use crate::cli::{FunctionArgs, InvokeArgs, LogFormatArg, LogLevelArg, SelectionArgs};
use crate::env::{Env, Ui};
use crate::lambda::{BOOTSTRAP, MAX_CONCURRENCY_VARIABLE, ZIP_NAME};
use crate::report::Reporter;
use crate::signal::Interrupt;

type Result<T, E = InvokeError> = std::result::Result<T, E>;

// A Linux host runs a Linux `bootstrap` itself; macOS and Windows run it in a container (see
// `container`), which is the only way on Windows.
pub mod running;
pub use running::{front, invoke, serve};

/// `--native` runs what cargo built for this machine, which Linux and macOS can serve the
/// Runtime API to as to the zip; on Windows the way is a Linux container.
pub fn check_native_host(command: &'static str) -> Result<()> {
    if cfg!(any(target_os = "linux", target_os = "macos")) {
        Ok(())
    } else {
        Err(InvokeError::NativeHost {
            command,
            os: std::env::consts::OS,
        })
    }
}

/// Where the events come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventSource {
    Data(String),
    File(PathBuf),
    Stdin,
    /// `--data-example NAME`.
    Example(&'static examples::Example),
}

/// `invoke`'s settings, resolved from the command line and the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvokeConfig {
    pub artifact: PathBuf,
    pub events: EventSource,
    pub function: FunctionSettings,
    pub ui: Ui,
}

/// The function's settings from `invoke`'s and `serve`'s shared flags, layers relative to `cwd`,
/// run as a process of this machine (`--native`'s build).
pub fn function_settings(
    args: FunctionArgs,
    lookup: &dyn Fn(&str) -> Option<String>,
    cwd: &Path,
) -> Result<FunctionSettings> {
    function::check_handler(&args.handler)?;
    let mut function = default_function(&args.function_name, lookup);
    function.memory_mb = args.memory;
    function.timeout_secs = args.timeout;
    function.handler = args.handler;
    let mut variables = Vec::new();
    for file in args.env_file.iter().map(|file| cwd.join(file)) {
        let text = std::fs::read_to_string(&file).map_err(|source| InvokeError::ReadEnvFile {
            path: file.clone(),
            source,
        })?;
        variables.extend(function::parse_env_file(&file, &text, lookup)?);
    }
    variables.extend(function::parse_variables(&args.env)?);
    function.add_settings_env(&variables)?;
    function.log_format = log_format(args.log_format, args.log_level)?;
    function.layers = args.layer.iter().map(|l| cwd.join(l)).collect();
    function.concurrency = concurrency(args.concurrency, &function.variables)?;
    function.snap_start = args.snap_start;
    Ok(function)
}

/// `--concurrency`, else a number the user gave the variable itself with `--env` (Lambda
/// Managed Instances' `AWS_LAMBDA_MAX_CONCURRENCY`), which then drives the Runtime API too.
fn concurrency(flag: Option<u32>, variables: &[(String, String)]) -> Result<Option<u32>> {
    let given = variables
        .iter()
        .find(|(key, _)| key == MAX_CONCURRENCY_VARIABLE);
    match (flag, given) {
        (Some(n), _) => Ok(Some(n)),
        (None, None) => Ok(None),
        (None, Some((_, value))) => match value.trim().parse::<u32>() {
            Ok(n) if n >= 1 => Ok(Some(n)),
            _ => Err(InvokeError::InvalidConcurrency(format!(
                "{MAX_CONCURRENCY_VARIABLE}={value}"
            ))),
        },
    }
}

/// `--log-format` and `--log-level` as Lambda's logging configuration: a level needs the JSON
/// format, which it implies; JSON without one gets Lambda's default level.
fn log_format(
    format: Option<LogFormatArg>,
    level: Option<LogLevelArg>,
) -> Result<Option<function::LogFormat>> {
    // The flag's values are Lambda's levels, in the same order.
    let level = level.map(|level| crate::lambda::LOG_LEVELS[level as usize]);
    Ok(match (format, level) {
        (Some(LogFormatArg::Text), Some(level)) => {
            return Err(InvokeError::LogLevelNeedsJson(level));
        }
        (Some(LogFormatArg::Text), None) => Some(function::LogFormat::Text),
        (Some(LogFormatArg::Json), level) | (None, level @ Some(_)) => {
            Some(function::LogFormat::Json {
                level: level.unwrap_or(crate::lambda::DEFAULT_LOG_LEVEL),
            })
        }
        (None, None) => None,
    })
}

/// [`function_settings`] for the packaged `bootstrap`: in a container with `--docker`, or where
/// this host cannot run a Linux executable itself (see [`container::container_mode`]).
pub fn packaged_function_settings(args: FunctionArgs, env: &Env) -> Result<FunctionSettings> {
    let asked = args.docker || args.docker_image.is_some() || args.image.is_some();
    let shipped = args.image.is_some();
    let image = args.image.clone().or_else(|| args.docker_image.clone());
    let lookup = |key: &str| env.var(key).map(str::to_owned);
    let mut function = function_settings(args, &lookup, &env.cwd)?;
    function.check_libraries = true;
    function.qemu_sysroot = env.qemu_ld_prefix();
    if let Some(chosen) = container::container_mode(std::env::consts::OS, asked) {
        let docker = crate::config::DockerConfig {
            image,
            ..Default::default()
        };
        let mut plan = container::ContainerPlan::new(chosen, docker, env)?;
        plan.shipped = shipped;
        function.container = Some(plan);
    }
    Ok(function)
}

impl InvokeConfig {
    pub fn resolve(args: InvokeArgs, env: &Env, ui: Ui) -> Result<InvokeConfig> {
        refuse_build_flags(&args.selection, "invoke")?;
        let artifact = artifact_or_image(args.artifact, args.outdir, &args.function, env)?;
        let events = event_source(args.data, args.data_file, args.data_example, &env.cwd)?;
        let mut function = packaged_function_settings(args.function, env)?;
        function.tenant_id = args.tenant_id;
        function.caller = caller(args.client_context, args.client_context_file, &env.cwd)?;
        Ok(InvokeConfig {
            artifact,
            events,
            function,
            ui,
        })
    }
}

/// ARTIFACT, else the last build's in `outdir`; with `--image NAME`, `image NAME`, which names
/// the function in the output only (the sandbox takes everything from the image).
pub fn artifact_or_image(
    artifact: Option<PathBuf>,
    outdir: Option<PathBuf>,
    function: &FunctionArgs,
    env: &Env,
) -> Result<PathBuf> {
    Ok(match (artifact, &function.image) {
        (_, Some(image)) => PathBuf::from(format!("image {image}")),
        (Some(path), None) => env.cwd.join(path),
        (None, None) => last_artifact(&env.cwd.join(outdir.unwrap_or_default()), &env.cwd)?,
    })
}

/// `--data`, else `--data-example`, else `--data-file` (`-` and none: stdin), relative to
/// `cwd`.
pub fn event_source(
    data: Option<String>,
    data_file: Option<PathBuf>,
    data_example: Option<String>,
    cwd: &Path,
) -> Result<EventSource> {
    if let Some(name) = data_example.filter(|_| data.is_none()) {
        return examples::find(&name)
            .map(EventSource::Example)
            .ok_or(InvokeError::UnknownExample(name));
    }
    Ok(match (data, data_file) {
        (Some(data), _) => EventSource::Data(data),
        (None, Some(file)) if file.as_os_str() == "-" => EventSource::Stdin,
        (None, Some(file)) => EventSource::File(cwd.join(file)),
        (None, None) => EventSource::Stdin,
    })
}

/// `--client-context` or `--client-context-file`: the caller every event is invoked by, its
/// context checked as the Invoke API checks it.
pub fn caller(
    json: Option<String>,
    file: Option<PathBuf>,
    cwd: &Path,
) -> Result<invoke_api::Caller> {
    let (json, source_name) = match (json, file) {
        (Some(json), _) => (json, "of `--client-context`".to_owned()),
        (None, Some(file)) => {
            let path = cwd.join(&file);
            let json = std::fs::read_to_string(&path)
                .map_err(|source| InvokeError::ReadClientContext { path, source })?;
            (json, format!("in `{}`", file.display()))
        }
        (None, None) => return Ok(invoke_api::Caller::default()),
    };
    invoke_api::Caller::with_client_context(&json).map_err(|reason| {
        InvokeError::InvalidClientContext {
            source_name,
            reason,
        }
    })
}

/// The build's selection flags mean something only to a command that builds (`--native`,
/// `serve --watch`): elsewhere they are refused rather than ignored.
pub fn refuse_build_flags(selection: &SelectionArgs, command: &'static str) -> Result<()> {
    match selection.first_given() {
        Some(flag) => Err(InvokeError::NothingToBuild { flag, command }),
        None => Ok(()),
    }
}

/// `<outdir>/lambda.zip`, else `<outdir>/bootstrap`; the newer of the two when both are there,
/// since that is what the last build wrote.
/// With none there, the error names those below it (a run of several functions writes
/// `<outdir>/<bin>/`), relative to `cwd`.
fn last_artifact(outdir: &Path, cwd: &Path) -> Result<PathBuf, InvokeError> {
    newest_artifact(outdir).ok_or_else(|| {
        let found = artifacts_below(outdir, 2);
        if found.is_empty() {
            InvokeError::NoArtifact(outdir.to_path_buf())
        } else {
            InvokeError::ArtifactsBelow {
                dir: outdir.to_path_buf(),
                found: found
                    .into_iter()
                    .map(|p| p.strip_prefix(cwd).map(Path::to_path_buf).unwrap_or(p))
                    .collect(),
            }
        }
    })
}

/// The artifacts in the directories below `dir`, `depth` levels down at most, sorted; hidden
/// directories and cargo's `target` are not looked in.
fn artifacts_below(dir: &Path, depth: usize) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut subdirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| {
            let name = e.file_name();
            !name.to_string_lossy().starts_with('.') && name != "target"
        })
        .map(|e| e.path())
        .collect();
    subdirs.sort();
    let mut found = Vec::new();
    for sub in subdirs {
        found.extend(newest_artifact(&sub));
        if depth > 1 {
            found.extend(artifacts_below(&sub, depth - 1));
        }
    }
    found
}

fn newest_artifact(outdir: &Path) -> Option<PathBuf> {
    let candidates = [ZIP_NAME, BOOTSTRAP].map(|name| outdir.join(name));
    candidates
        .into_iter()
        .filter_map(|path| {
            let modified = std::fs::metadata(&path)
                .ok()
                .filter(|m| m.is_file())?
                .modified()
                .unwrap_or(SystemTime::UNIX_EPOCH);
            Some((modified, path))
        })
        // `max_by_key` keeps the last of equals; reversed, lambda.zip wins a tie.
        .rev()
        .max_by_key(|(modified, _)| *modified)
        .map(|(_, path)| path)
}

/// Reads and splits the events.
pub fn read_events(source: &EventSource) -> Result<Vec<Vec<u8>>, InvokeError> {
    match source {
        EventSource::Data(data) => events::parse(data.as_bytes(), "--data"),
        EventSource::Example(example) => events::parse(example.json.as_bytes(), example.name),
        EventSource::File(path) => {
            let text = std::fs::read(path).map_err(|source| InvokeError::ReadEvents {
                path: path.clone(),
                source,
            })?;
            events::parse(&text, &path.display().to_string())
        }
        EventSource::Stdin => {
            let mut stdin = std::io::stdin();
            if stdin.is_terminal() {
                return Err(InvokeError::StdinIsTerminal);
            }
            let mut text = Vec::new();
            stdin
                .read_to_end(&mut text)
                .map_err(|source| InvokeError::ReadEvents {
                    path: "stdin".into(),
                    source,
                })?;
            events::parse(&text, "stdin")
        }
    }
}

/// `cargo lambda-build invoke`.
pub fn run(args: InvokeArgs, env: &Env, ui: Ui) -> Result<()> {
    let interrupt = Interrupt::register()
        .map_err(|e| InvokeError::Other(anyhow::anyhow!("cannot install a signal handler: {e}")))?;
    let config = InvokeConfig::resolve(args, env, ui)?;
    let reporter = Reporter::plain(config.ui);
    let events = read_events(&config.events)?;
    let outcomes = invoke(
        &config.artifact,
        &events,
        &config.function,
        Payloads::Raw,
        &reporter,
        config.ui.verbosity,
        &interrupt,
    )?;
    outcomes.into_result()
}

/// What a run of events gave.
#[derive(Debug)]
pub struct Outcomes {
    pub records: Vec<Record>,
    pub memory_mb: u32,
}

impl Outcomes {
    pub fn failures(&self) -> impl Iterator<Item = &Failure> {
        self.records.iter().filter_map(|r| match &r.outcome {
            Outcome::Failed(failure) => Some(failure),
            Outcome::Response(_) | Outcome::Streamed(_) => None,
        })
    }

    /// `Ok` when every invocation returned a response.
    pub fn into_result(self) -> Result<()> {
        let failed = self.failures().count();
        match self.failures().next() {
            None => Ok(()),
            Some(first) => Err(InvokeError::Failed {
                failed,
                total: self.records.len(),
                kind: first.kind,
                error_type: first.error_type.clone(),
                message: first.message.clone(),
            }),
        }
    }
}

/// How each payload is printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payloads {
    /// As the function returned it, one per line (`invoke`).
    Raw,
    /// One JSON object each, with a `reason`, among a build's `--message-format json` objects.
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use std::time::Duration;

    fn resolve(
        args: &[&str],
        cwd: &Path,
        vars: &[(&str, &str)],
    ) -> Result<InvokeConfig, InvokeError> {
        let Cli::LambdaBuild(build) =
            Cli::try_parse_from(["cargo", "lambda-build", "invoke"].iter().chain(args)).unwrap();
        let Some(Command::Invoke(invoke)) = build.command else {
            panic!("not the invoke subcommand")
        };
        let env = Env::new(cwd.to_path_buf(), false, vars.iter().copied());
        let ui = build.output.ui(&env);
        InvokeConfig::resolve(invoke, &env, ui)
    }

    #[test]
    fn defaults_are_lambdas() {
        let config = resolve(&["x.zip"], Path::new("/w"), &[]).unwrap();
        assert_eq!(config.artifact, Path::new("/w/x.zip"));
        assert_eq!(config.events, EventSource::Stdin);
        let f = &config.function;
        assert_eq!((f.timeout_secs, f.memory_mb), (3, 128));
        assert_eq!(f.region, "us-east-1");
        assert_eq!(f.name, "function");
        assert!(f.credentials.is_empty());
    }

    #[test]
    fn region_and_credentials_come_from_this_machine() {
        let vars = [
            ("AWS_DEFAULT_REGION", "eu-west-3"),
            ("AWS_ACCESS_KEY_ID", "AKIA"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
        ];
        let config = resolve(&["x.zip", "-d", "{}"], Path::new("/w"), &vars).unwrap();
        assert_eq!(config.function.region, "eu-west-3");
        assert_eq!(config.function.credentials.len(), 2);
        assert_eq!(config.events, EventSource::Data("{}".into()));
        let vars = [
            ("AWS_REGION", "ap-south-1"),
            ("AWS_DEFAULT_REGION", "eu-west-3"),
        ];
        let config = resolve(&["x.zip"], Path::new("/w"), &vars).unwrap();
        assert_eq!(config.function.region, "ap-south-1");
    }

    #[test]
    fn flags_set_the_function() {
        let config = resolve(
            &[
                "x.zip",
                "--timeout",
                "10",
                "--memory",
                "512",
                "-e",
                "A=1",
                "--function-name",
                "f",
                "-f",
                "ev.json",
            ],
            Path::new("/w"),
            &[],
        )
        .unwrap();
        let f = &config.function;
        assert_eq!(
            (f.timeout_secs, f.memory_mb, f.name.as_str()),
            (10, 512, "f")
        );
        assert_eq!(f.variables, [("A".to_owned(), "1".to_owned())]);
        assert_eq!(config.events, EventSource::File("/w/ev.json".into()));
        let config = resolve(&["x.zip", "-f", "-"], Path::new("/w"), &[]).unwrap();
        assert_eq!(config.events, EventSource::Stdin);
    }

    /// Linux runs the zip as a process of its own; macOS and Windows in a container, unless
    /// asked (the Windows build's unit tests run under wine: tests/it/hosts.rs).
    #[test]
    fn this_host_chooses_its_way_to_run_the_zip() {
        use container::Chosen;
        let os = std::env::consts::OS;
        let chosen = |args: &[&str]| {
            let config = resolve(args, Path::new("/w"), &[]).unwrap();
            config.function.container.map(|plan| plan.chosen)
        };
        let default = (os != "linux").then_some(Chosen::HostDefault(os));
        assert_eq!(chosen(&["x.zip"]), default);
        assert_eq!(chosen(&["x.zip", "--docker"]), Some(Chosen::Asked));
    }

    #[test]
    fn concurrency_comes_from_the_flag_else_the_variable() {
        let w = Path::new("/w");
        let concurrency = |args: &[&str]| resolve(args, w, &[]).map(|c| c.function.concurrency);
        assert_eq!(concurrency(&["x.zip"]).unwrap(), None);
        assert_eq!(
            concurrency(&["x.zip", "--concurrency", "8"]).unwrap(),
            Some(8)
        );
        let env = ["x.zip", "-e", "AWS_LAMBDA_MAX_CONCURRENCY=4"];
        assert_eq!(concurrency(&env).unwrap(), Some(4));
        let both = [
            "x.zip",
            "--concurrency",
            "2",
            "-e",
            "AWS_LAMBDA_MAX_CONCURRENCY=4",
        ];
        assert_eq!(concurrency(&both).unwrap(), Some(2));
        let err = concurrency(&["x.zip", "-e", "AWS_LAMBDA_MAX_CONCURRENCY=many"]).unwrap_err();
        assert!(matches!(err, InvokeError::InvalidConcurrency(_)), "{err}");
        assert!(err.help().unwrap().contains("--concurrency N"), "{err:?}");
        let args = ["cargo", "lambda-build", "invoke", "--concurrency", "0"];
        assert!(Cli::try_parse_from(args).is_err());
        let config = resolve(&["x.zip", "--tenant-id", "t1"], w, &[]).unwrap();
        assert_eq!(config.function.tenant_id.as_deref(), Some("t1"));
    }

    #[test]
    fn log_flags_are_lambdas_logging_configuration() {
        use function::LogFormat;
        let format = |args: &[&str]| resolve(&[&["x.zip"], args].concat(), Path::new("/w"), &[]);
        assert_eq!(format(&[]).unwrap().function.log_format, None);
        assert_eq!(
            format(&["--log-format", "text"])
                .unwrap()
                .function
                .log_format,
            Some(LogFormat::Text)
        );
        assert_eq!(
            format(&["--log-format", "json"])
                .unwrap()
                .function
                .log_format,
            Some(LogFormat::Json { level: "INFO" })
        );
        // A level implies JSON, as Lambda takes one only with JSON.
        assert_eq!(
            format(&["--log-level", "WARN"])
                .unwrap()
                .function
                .log_format,
            Some(LogFormat::Json { level: "WARN" })
        );
        assert!(matches!(
            format(&["--log-format", "text", "--log-level", "fatal"]),
            Err(InvokeError::LogLevelNeedsJson("FATAL"))
        ));
        let config = format(&["--data-example", "sqs"]).unwrap();
        assert!(matches!(config.events, EventSource::Example(e) if e.name == "sqs"));
        assert!(matches!(
            format(&["--data-example", "nope"]),
            Err(InvokeError::UnknownExample(_))
        ));
    }

    #[test]
    fn limits_are_lambdas() {
        for bad in [
            &["--timeout", "0"][..],
            &["--timeout", "901"],
            &["--memory", "127"],
            &["--memory", "10241"],
            &["-d", "{}", "-f", "x"],
            &["-d", "{}", "--data-example", "sqs"],
            &["-f", "x", "--data-example", "sqs"],
        ] {
            let args = ["cargo", "lambda-build", "invoke"].iter().chain(bad);
            assert!(Cli::try_parse_from(args).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn the_default_artifact_is_what_the_last_build_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve(&[], dir.path(), &[]).unwrap_err();
        assert!(matches!(err, InvokeError::NoArtifact(_)), "{err}");

        let zip = dir.path().join("lambda.zip");
        let bootstrap = dir.path().join("bootstrap");
        std::fs::write(&bootstrap, "b").unwrap();
        assert_eq!(resolve(&[], dir.path(), &[]).unwrap().artifact, bootstrap);
        std::fs::write(&zip, "z").unwrap();
        let old = SystemTime::now() - Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(&bootstrap)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert_eq!(resolve(&[], dir.path(), &[]).unwrap().artifact, zip);

        let out = dir.path().join("dist");
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join("bootstrap"), "b").unwrap();
        let config = resolve(&["-o", "dist"], dir.path(), &[]).unwrap();
        assert_eq!(config.artifact, out.join("bootstrap"));
    }

    /// After `--workspace -o dist`, the artifacts are `dist/<bin>/lambda.zip`: the error names
    /// them, with the command that runs one (issue 17, item 9).
    // the expected paths are written with `/`; invoke runs on Linux only
    #[cfg(unix)]
    #[test]
    fn artifacts_of_several_functions_are_named() {
        let dir = tempfile::tempdir().unwrap();
        for bin in ["alpha", "beta"] {
            let out = dir.path().join("dist").join(bin);
            std::fs::create_dir_all(&out).unwrap();
            std::fs::write(out.join("lambda.zip"), "z").unwrap();
        }
        let err = resolve(&[], dir.path(), &[]).unwrap_err();
        let help = err.help().unwrap();
        assert!(
            help.contains("`cargo lambda-build invoke dist/alpha/lambda.zip`"),
            "{help}"
        );
        assert!(help.contains("dist/beta/lambda.zip"), "{help}");
        assert!(!help.contains("--zip"), "{help}");
        let err = resolve(&["-o", "dist"], dir.path(), &[]).unwrap_err();
        assert!(
            err.help().unwrap().contains("invoke dist/alpha/lambda.zip"),
            "{err:?}"
        );
    }
}
