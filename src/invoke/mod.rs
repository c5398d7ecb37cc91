//! `cargo lambda-build invoke`: run the packaged artifact locally, exactly as Lambda would.
//!
//! artifact -> task root (sandbox) -> Runtime API (server) -> bootstrap process (instance) ->
//! payloads on stdout, START / END / REPORT and the function's output on stderr.

pub mod container;
pub mod error;
pub mod events;
pub mod http;
pub mod lambda;
pub mod record;
pub mod sandbox;
// The running function: `poll`, `waitpid`, process groups and raw sockets, Unix only, and run
// on Linux only (see [`check_host`]).
#[cfg(unix)]
pub mod front;
#[cfg(unix)]
pub mod instance;
#[cfg(unix)]
pub mod serve;
#[cfg(unix)]
pub mod server;
#[cfg(unix)]
pub mod telemetry;

#[cfg(unix)]
use std::io::Write;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub use error::InvokeError;
#[cfg(unix)]
use instance::Instance;
#[cfg(unix)]
use record::Log;
use record::{Outcome, Record, Status};
pub use sandbox::FunctionSettings;
#[cfg(unix)]
use server::RuntimeApi;

#[cfg(unix)]
use crate::arch::Arch;
use crate::cli::{FunctionArgs, InvokeArgs};
use crate::env::{Env, Ui, Verbosity};
use crate::report::Reporter;
use crate::signal::Interrupt;

type Result<T, E = InvokeError> = std::result::Result<T, E>;

/// Lambda's region when none is configured here.
const DEFAULT_REGION: &str = "us-east-1";

/// Where the events come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventSource {
    Data(String),
    File(PathBuf),
    Stdin,
}

/// `invoke`'s settings, resolved from the command line and the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvokeConfig {
    pub artifact: PathBuf,
    pub events: EventSource,
    pub function: FunctionSettings,
    pub ui: Ui,
}

/// The function's settings with Lambda's defaults (3 s, 128 MB), the region and credentials
/// of this machine's environment.
pub fn default_function(name: &str, lookup: &dyn Fn(&str) -> Option<String>) -> FunctionSettings {
    FunctionSettings {
        name: name.to_owned(),
        memory_mb: 128,
        timeout_secs: 3,
        handler: crate::lambda::DEFAULT_HANDLER.to_owned(),
        region: lookup("AWS_REGION")
            .or_else(|| lookup("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| DEFAULT_REGION.to_owned()),
        variables: Vec::new(),
        credentials: [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
        ]
        .into_iter()
        .filter_map(|key| lookup(key).map(|value| (key.to_owned(), value)))
        .collect(),
        layers: Vec::new(),
        container: None,
    }
}

/// The function's settings from `invoke`'s and `serve`'s shared flags, layers relative to the
/// current directory; in a container with `--docker` or where this host cannot run the function.
pub fn function_settings(args: FunctionArgs, env: &Env) -> Result<FunctionSettings> {
    let lookup = |key: &str| env.var(key).map(str::to_owned);
    sandbox::check_handler(&args.handler)?;
    let mut function = default_function(&args.function_name, &lookup);
    function.memory_mb = args.memory;
    function.timeout_secs = args.timeout;
    function.handler = args.handler;
    function.variables = sandbox::parse_variables(&args.env)?;
    function.layers = args.layer.iter().map(|l| env.cwd.join(l)).collect();
    let asked = args.docker || args.docker_image.is_some();
    if let Some(chosen) = container::container_mode(std::env::consts::OS, asked) {
        let docker = crate::config::DockerConfig {
            image: args.docker_image,
            ..Default::default()
        };
        function.container = Some(container::ContainerPlan::new(chosen, docker, env)?);
    }
    Ok(function)
}

impl InvokeConfig {
    pub fn resolve(args: InvokeArgs, env: &Env, ui: Ui) -> Result<InvokeConfig> {
        let artifact = match args.artifact {
            Some(path) => env.cwd.join(path),
            None => last_artifact(&env.cwd.join(args.outdir.unwrap_or_default()), &env.cwd)?,
        };
        let events = match (args.data, args.data_file) {
            (Some(data), _) => EventSource::Data(data),
            (None, Some(file)) if file.as_os_str() == "-" => EventSource::Stdin,
            (None, Some(file)) => EventSource::File(env.cwd.join(file)),
            (None, None) => EventSource::Stdin,
        };
        let function = function_settings(args.function, env)?;
        Ok(InvokeConfig {
            artifact,
            events,
            function,
            ui,
        })
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
    let candidates = ["lambda.zip", "bootstrap"].map(|name| outdir.join(name));
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

/// `invoke`, `serve` and `--invoke-with` drive the function's processes (the runtime, its
/// extensions) as Unix processes: as processes of a Linux machine (under qemu-user for the other
/// architecture), or relayed into a container (`--docker`, macOS's default). A Windows host
/// cannot yet, and is told what can, before anything is built.
pub fn check_host(command: &'static str) -> Result<()> {
    if cfg!(unix) {
        Ok(())
    } else {
        Err(InvokeError::HostCannotRun {
            command,
            os: std::env::consts::OS,
        })
    }
}

/// `cargo lambda-build invoke`.
pub fn run(args: InvokeArgs, env: &Env, ui: Ui) -> Result<()> {
    check_host("invoke")?;
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
    pub fn failures(&self) -> impl Iterator<Item = &lambda::Failure> {
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

/// A function ready to start: its task root, the Runtime API it will talk to, and how it is
/// started (`invoke` and `serve` run the same one). Dropping it removes the task root.
#[cfg(unix)]
pub struct Sandbox {
    pub launch: sandbox::Launch,
    /// `/opt/extensions/*` of the layers, started beside the function.
    pub extensions: Vec<sandbox::Launch>,
    pub api: RuntimeApi,
    /// `x86_64`, or `arm64 under qemu-aarch64-static`, for the status line.
    pub arch: String,
    _task_root: sandbox::TaskRoot,
    _opt: sandbox::OptDir,
    /// The container the function runs in, in container mode; removed on drop.
    container: Option<container::Environment>,
}

#[cfg(unix)]
impl Sandbox {
    pub fn prepare(artifact: &Path, function: &FunctionSettings) -> Result<Sandbox> {
        let task_root = sandbox::prepare(artifact)?;
        let opt = sandbox::prepare_opt(&function.layers, task_root.unzipped_size)?;
        let elf = crate::inspect::inspect(&task_root.bootstrap()).ok();
        let emulator = |elf: Option<&crate::inspect::ElfReport>| {
            sandbox::emulation(
                elf,
                Arch::host(),
                |name| which::which(name).ok(),
                Path::is_dir,
            )
        };
        let api = RuntimeApi::start().map_err(InvokeError::Server)?;
        let env = sandbox::environment(
            function,
            task_root.path(),
            opt.path(),
            api.addr,
            &lambda::log_stream_name(SystemTime::now()),
        );
        let extensions = opt
            .extensions()
            .into_iter()
            .map(|path| {
                let elf = crate::inspect::inspect(&path).ok();
                Ok(sandbox::launch_executable(
                    path,
                    task_root.path(),
                    emulator(elf.as_ref())?,
                    env.clone(),
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let launch = sandbox::launch(task_root.path(), emulator(elf.as_ref())?, env);
        let arch = match (&elf, &launch.emulator) {
            (Some(elf), None) => elf.arch.to_string(),
            (_, Some(emulator)) => format!(
                "{} under {}",
                emulator.arch,
                emulator
                    .program
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
            ),
            (None, None) => "not an ELF executable".to_owned(),
        };
        Ok(Sandbox {
            launch,
            extensions,
            api,
            arch,
            _task_root: task_root,
            _opt: opt,
            container: None,
        })
    }

    /// [`Sandbox::prepare`], or its container-mode twin when the function runs in a container:
    /// the same task root and `/opt`, copied into a container of the build image, the runtime
    /// and extensions started in it through this tool's relay, the Runtime API reached back.
    pub fn prepare_for(
        artifact: &Path,
        function: &FunctionSettings,
        reporter: &Reporter,
        interrupt: &Interrupt,
    ) -> Result<Sandbox> {
        let Some(plan) = &function.container else {
            return Sandbox::prepare(artifact, function);
        };
        let task_root = sandbox::prepare(artifact)?;
        let opt = sandbox::prepare_opt(&function.layers, task_root.unzipped_size)?;
        let arch = crate::inspect::inspect(&task_root.bootstrap())
            .ok()
            .map(|elf| elf.arch);
        let started = container::start(
            plan,
            artifact,
            arch,
            function.memory_mb,
            (task_root.path(), opt.path()),
            reporter,
            interrupt,
        )?;
        let api = RuntimeApi::start().map_err(InvokeError::Server)?;
        let mut env = sandbox::environment(
            function,
            Path::new(crate::lambda::TASK_ROOT),
            Path::new(crate::lambda::OPT_DIR),
            api.addr,
            &lambda::log_stream_name(SystemTime::now()),
        );
        for (key, value) in &mut env {
            if key == "AWS_LAMBDA_RUNTIME_API" {
                *value = started.reach.runtime_api(api.addr);
            }
        }
        // `bootstrap` is the extracted file here, for the checks Lambda's exec makes.
        let relayed = |bootstrap: PathBuf, inside: String| {
            let (program, args) = started.relay(plan, inside);
            sandbox::Launch {
                bootstrap,
                program,
                args,
                env: env.clone(),
                cwd: task_root.path().to_path_buf(),
                emulator: None,
            }
        };
        let extensions = opt
            .extensions()
            .into_iter()
            .map(|path| {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                let inside = format!(
                    "{}/{}{name}",
                    crate::lambda::OPT_DIR,
                    crate::lambda::EXTENSIONS_DIR
                );
                relayed(path.clone(), inside)
            })
            .collect();
        let launch = relayed(
            task_root.bootstrap(),
            format!("{}/{}", crate::lambda::TASK_ROOT, crate::lambda::BOOTSTRAP),
        );
        Ok(Sandbox {
            launch,
            extensions,
            api,
            arch: started.describe(arch),
            _task_root: task_root,
            _opt: opt,
            container: Some(started.environment),
        })
    }

    /// `Starting extension NAME from /opt/extensions`, when the layers have any.
    pub fn report_extensions(&self, reporter: &Reporter) {
        if self.extensions.is_empty() {
            return;
        }
        reporter.status(
            "Starting",
            format!(
                "extension{} {} from /opt/extensions",
                if self.extensions.len() == 1 { "" } else { "s" },
                self.extensions
                    .iter()
                    .map(|e| e
                        .bootstrap
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }

    /// The execution environment that runs invocations, one at a time.
    pub fn instance<'a>(
        &'a self,
        function: &FunctionSettings,
        interrupt: &'a Interrupt,
        log: &'a dyn Log,
    ) -> Instance<'a> {
        Instance::new(
            &self.launch,
            &self.api,
            Duration::from_secs(u64::from(function.timeout_secs)),
            sandbox::arn(function),
            interrupt,
            log,
        )
        .with_extensions(&self.extensions)
        .with_container(self.container.as_ref())
    }
}

/// Runs `events` in order against the artifact on one warm process (a new one after a crash or
/// a timeout, as Lambda resets the environment), printing each payload on `stdout`.
#[cfg(unix)]
pub fn invoke(
    artifact: &Path,
    events: &[Vec<u8>],
    function: &FunctionSettings,
    payloads: Payloads,
    reporter: &Reporter,
    verbosity: Verbosity,
    interrupt: &Interrupt,
) -> Result<Outcomes> {
    let sandbox = Sandbox::prepare_for(artifact, function, reporter, interrupt)?;
    let launch = &sandbox.launch;
    let arch = &sandbox.arch;
    reporter.status(
        "Invoking",
        format!(
            "{} ({arch}): {} event{}, timeout {} s, memory {} MB",
            artifact.display(),
            events.len(),
            if events.len() == 1 { "" } else { "s" },
            function.timeout_secs,
            function.memory_mb
        ),
    );
    sandbox.report_extensions(reporter);
    if verbosity.verbose() {
        reporter.status("Running", format!("`{launch}`"));
    }

    let console = Console {
        reporter,
        lambda_lines: verbosity != Verbosity::Quiet,
    };
    let mut instance = sandbox.instance(function, interrupt, &console);
    let mut records = Vec::new();
    let mut stream = StdoutStream {
        payloads,
        kept: Vec::new(),
    };
    for event in events {
        let record = instance.invoke(event, &mut stream)?;
        let (payload, failed) = match &record.outcome {
            Outcome::Response(body) => (body, false),
            Outcome::Streamed(_) if payloads == Payloads::Raw => {
                console.end(&record, function.memory_mb);
                records.push(record);
                continue;
            }
            Outcome::Streamed(_) => (&stream.kept, false),
            Outcome::Failed(failure) => (&failure.payload, true),
        };
        let mut stdout = std::io::stdout().lock();
        match payloads {
            Payloads::Raw => stdout
                .write_all(payload)
                .and_then(|()| stdout.write_all(b"\n")),
            Payloads::Json => {
                crate::report::print_invocation_json(&mut stdout, &function.name, failed, payload)
            }
        }
        .and_then(|()| stdout.flush())
        .map_err(|e| InvokeError::Other(anyhow::anyhow!("cannot write to stdout: {e}")))?;
        drop(stdout);
        console.end(&record, function.memory_mb);
        records.push(record);
    }
    instance.stop();
    drop(instance);

    let outcomes = Outcomes {
        records,
        memory_mb: function.memory_mb,
    };
    report_summary(&outcomes, reporter, launch.emulator.is_some());
    interrupt.check()?;
    Ok(outcomes)
}

/// Only a Linux host runs the function; elsewhere [`check_host`] refused before this.
#[cfg(not(unix))]
pub fn invoke(
    _: &Path,
    _: &[Vec<u8>],
    _: &FunctionSettings,
    _: Payloads,
    _: &Reporter,
    _: Verbosity,
    _: &Interrupt,
) -> Result<Outcomes> {
    check_host("invoke").map(|()| unreachable!("only Linux hosts pass check_host"))
}

/// A streamed response on stdout as it arrives (`invoke`), or kept for its JSON line.
#[cfg(unix)]
struct StdoutStream {
    payloads: Payloads,
    kept: Vec<u8>,
}

#[cfg(unix)]
impl instance::ResponseStream for StdoutStream {
    fn begin(&mut self, _content_type: Option<&str>) {
        self.kept.clear();
    }

    fn data(&mut self, data: &[u8]) {
        match self.payloads {
            Payloads::Raw => {
                let mut stdout = std::io::stdout().lock();
                // A reader that went away is not the function's failure.
                let _ = stdout.write_all(data).and_then(|()| stdout.flush());
            }
            Payloads::Json => self.kept.extend_from_slice(data),
        }
    }

    fn end(&mut self, _complete: bool) {
        if self.payloads == Payloads::Raw {
            let _ = std::io::stdout().lock().write_all(b"\n");
        }
    }
}

#[cfg(unix)]
fn report_summary(summary: &Outcomes, reporter: &Reporter, emulated: bool) {
    let total = summary.records.len();
    let failed = summary.failures().count();
    let peak_mb = summary
        .records
        .iter()
        .filter_map(|r| r.max_memory_kib)
        .max()
        .map(mb_of_kib);
    let init = summary
        .records
        .iter()
        .find_map(|r| r.init_duration)
        .map(|d| format!("init {}, ", millis(d)))
        .unwrap_or_default();
    let peak = peak_mb
        .map(|mb| format!("peak memory {mb} MB of {} MB", summary.memory_mb))
        .unwrap_or_else(|| "peak memory unknown".to_owned());
    reporter.status(
        "Finished",
        format!(
            "{total} invocation{}, {failed} failed: {init}{peak}",
            if total == 1 { "" } else { "s" }
        ),
    );
    if let Some(peak_mb) = peak_mb.filter(|mb| *mb > u64::from(summary.memory_mb)) {
        reporter.warn(format!(
            "the function used up to {peak_mb} MB, more than its {} MB: on Lambda it would be \
             stopped with Runtime.OutOfMemory; raise `--memory`{}",
            summary.memory_mb,
            if emulated {
                " (under qemu the peak includes the emulator's own memory)"
            } else {
                ""
            }
        ));
    }
}

/// Lambda reports memory in whole MB (MiB), rounded up.
fn mb_of_kib(kib: u64) -> u64 {
    kib.div_ceil(1024)
}

fn millis(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

/// The REPORT line, tab-separated as in CloudWatch: `Status` only when the invocation timed
/// out or the runtime failed, `Init Duration` only on a cold start.
pub fn report_line(record: &Record, memory_mb: u32) -> String {
    let mut fields = vec![
        format!("REPORT RequestId: {}", record.request_id),
        format!("Duration: {}", millis(record.duration)),
        format!("Memory Size: {memory_mb} MB"),
    ];
    if let Some(kib) = record.max_memory_kib {
        fields.push(format!("Max Memory Used: {} MB", mb_of_kib(kib)));
    }
    if let Some(init) = record.init_duration {
        fields.push(format!("Init Duration: {}", millis(init)));
    }
    match &record.status {
        None => {}
        Some(Status::Timeout) => fields.push("Status: timeout".to_owned()),
        Some(Status::Error(error_type)) => {
            fields.push("Status: error".to_owned());
            fields.push(format!("Error Type: {error_type}"));
        }
    }
    fields.join("\t")
}

/// stderr, as CloudWatch would show the function's log stream.
#[cfg(unix)]
struct Console<'a> {
    reporter: &'a Reporter,
    /// START / END / REPORT, left out with `-q`.
    lambda_lines: bool,
}

#[cfg(unix)]
impl Console<'_> {
    fn line(&self, line: &[u8]) {
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_all(line);
        let _ = stderr.write_all(b"\n");
    }

    fn end(&self, record: &Record, memory_mb: u32) {
        if !self.lambda_lines {
            return;
        }
        if !record.started {
            self.start(&record.request_id);
        }
        self.line(format!("END RequestId: {}", record.request_id).as_bytes());
        self.line(report_line(record, memory_mb).as_bytes());
    }
}

#[cfg(unix)]
impl Log for Console<'_> {
    fn start(&self, request_id: &str) {
        if self.lambda_lines {
            self.line(
                format!("START RequestId: {request_id} Version: {}", lambda::VERSION).as_bytes(),
            );
        }
    }

    fn output(&self, line: &[u8]) {
        self.line(line);
    }

    fn warn(&self, message: &str) {
        self.reporter.warn(message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

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

    #[test]
    fn limits_are_lambdas() {
        for bad in [
            &["--timeout", "0"][..],
            &["--timeout", "901"],
            &["--memory", "127"],
            &["--memory", "10241"],
            &["-d", "{}", "-f", "x"],
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

    #[test]
    fn report_lines_read_like_cloudwatch() {
        let mut record = Record {
            request_id: "id".into(),
            outcome: Outcome::Response(b"{}".to_vec()),
            duration: Duration::from_micros(1_234),
            init_duration: Some(Duration::from_micros(25_500)),
            max_memory_kib: Some(9 * 1024 + 1),
            status: None,
            started: true,
        };
        assert_eq!(
            report_line(&record, 128),
            "REPORT RequestId: id\tDuration: 1.23 ms\tMemory Size: 128 MB\t\
             Max Memory Used: 10 MB\tInit Duration: 25.50 ms"
        );
        record.init_duration = None;
        record.status = Some(Status::Error("Runtime.ExitError".into()));
        assert!(
            report_line(&record, 128).ends_with("\tStatus: error\tError Type: Runtime.ExitError")
        );
        record.status = Some(Status::Timeout);
        assert!(report_line(&record, 128).ends_with("MB\tStatus: timeout"));
    }
}
