//! Stdout carries the result; stderr carries status lines (cargo's style: the verb right-aligned
//! to 12 columns), cargo's own output, warnings and the progress display.

use std::fmt::Display;
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::arch::Arch;
use crate::env::{Ui, Verbosity};
use crate::inspect::ElfReport;
use crate::lambda;
use crate::package::Artifact;
use crate::plan::{FunctionPlan, Output};

const GREEN_BOLD: &str = "\x1b[1;32m";
const CYAN_BOLD: &str = "\x1b[1;36m";
const YELLOW_BOLD: &str = "\x1b[1;33m";
const RED_BOLD: &str = "\x1b[1;31m";
const RESET: &str = "\x1b[0m";

pub struct Reporter {
    verbosity: Verbosity,
    color: bool,
    progress_enabled: bool,
    /// While cargo compiles, lines go above the bar so it is not torn.
    bar: Mutex<Option<ProgressBar>>,
    /// Said at the end of every status line (see [`Reporter::noting`]).
    note: Option<&'static str>,
}

impl Reporter {
    pub fn new(ui: Ui) -> Reporter {
        Reporter {
            verbosity: ui.verbosity,
            color: ui.color,
            progress_enabled: ui.progress,
            bar: Mutex::new(None),
            note: None,
        }
    }

    /// Every status line ends with `(note)`: native mode says on each that what runs is not
    /// the zip that ships.
    pub fn noting(self, note: &'static str) -> Reporter {
        Reporter {
            note: Some(note),
            ..self
        }
    }

    /// For a command that builds nothing: status lines and warnings, no progress display.
    pub fn plain(ui: Ui) -> Reporter {
        Reporter::new(Ui {
            progress: false,
            ..ui
        })
    }

    fn paint(&self, style: &str, text: &str) -> String {
        if self.color {
            format!("{style}{text}{RESET}")
        } else {
            text.to_string()
        }
    }

    /// Writes one line to stderr, above the progress bar when there is one.
    fn line(&self, text: &str) {
        match self.bar.lock().ok().as_deref().and_then(Option::as_ref) {
            Some(bar) => bar.println(text),
            None => {
                let _ = writeln!(std::io::stderr().lock(), "{text}");
            }
        }
    }

    pub fn status(&self, verb: &str, message: impl Display) {
        if self.verbosity != Verbosity::Quiet {
            self.line(&format!(
                "{} {message}{}",
                self.paint(GREEN_BOLD, &format!("{verb:>12}")),
                self.note
                    .map(|note| format!(" ({note})"))
                    .unwrap_or_default()
            ));
        }
    }

    /// A status line shown only at `-v`.
    pub fn detail(&self, verb: &str, message: impl Display) {
        if self.verbosity.verbose() {
            self.status(verb, message);
        }
    }

    pub fn warn(&self, message: impl Display) {
        self.line(&format!(
            "{}: {message}",
            self.paint(YELLOW_BOLD, "warning")
        ));
    }

    /// `-v` shows every command as shell words, ready to copy.
    pub fn command(&self, command: &impl Display) {
        if self.verbosity.verbose() {
            self.line(&format!(
                "{} `{command}`",
                self.paint(CYAN_BOLD, &format!("{:>12}", "Running"))
            ));
        }
    }

    /// A line cargo wrote to its stderr (status lines and rendered diagnostics), passed on as is.
    pub fn cargo_line(&self, line: &str) {
        self.line(line);
    }

    /// A spinner counting the crates built so far; nothing when stderr is not a terminal or in CI.
    pub fn start_progress(&self) {
        if !self.progress_enabled {
            return;
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>12.cyan.bold} {spinner} {pos} crates compiled {wide_msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix("Building");
        bar.enable_steady_tick(Duration::from_millis(100));
        if let Ok(mut slot) = self.bar.lock() {
            *slot = Some(bar);
        }
    }

    /// A spinner with a message that changes (the image build's current step); nothing when
    /// stderr is not a terminal or in CI.
    pub fn start_spinner(&self, prefix: &str, message: &str) {
        if !self.progress_enabled {
            return;
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{prefix:>12.cyan.bold} {spinner} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(prefix.to_string());
        bar.set_message(message.to_string());
        bar.enable_steady_tick(Duration::from_millis(100));
        if let Ok(mut slot) = self.bar.lock() {
            *slot = Some(bar);
        }
    }

    /// The spinner's message; without a spinner (CI, no terminal), the line itself unless quiet.
    pub fn spinner_message(&self, message: &str) {
        // The guard is dropped before `line`, which takes the lock again.
        let bar = self.bar.lock().ok().and_then(|slot| slot.clone());
        match bar {
            Some(bar) => bar.set_message(message.to_string()),
            None if self.verbosity == Verbosity::Normal => self.line(message),
            None => {}
        }
    }

    /// `-v` or `-vv`.
    pub fn verbose(&self) -> bool {
        self.verbosity.verbose()
    }

    /// A line of a tool's output shown only at `-v`.
    pub fn detail_line(&self, line: &str) {
        if self.verbosity.verbose() {
            self.line(line);
        }
    }

    pub fn progress_crate(&self, name: &str) {
        if let Some(bar) = self.bar.lock().ok().as_deref().and_then(Option::as_ref) {
            bar.inc(1);
            bar.set_message(name.to_string());
        }
    }

    pub fn finish_progress(&self) {
        if let Some(bar) = self.bar.lock().ok().and_then(|mut slot| slot.take()) {
            bar.finish_and_clear();
        }
    }
}

/// A status line outside a build (`new`): the verb right-aligned to 12 columns, as cargo's.
pub fn print_status(
    out: &mut impl Write,
    verb: &str,
    message: impl Display,
    color: bool,
) -> std::io::Result<()> {
    let verb = format!("{verb:>12}");
    if color {
        writeln!(out, "{GREEN_BOLD}{verb}{RESET} {message}")
    } else {
        writeln!(out, "{verb} {message}")
    }
}

/// `error: ...` and one `help: ...` line per fix, as cargo prints them.
pub fn print_error(
    out: &mut impl Write,
    error: &impl Display,
    help: Option<&str>,
    color: bool,
) -> std::io::Result<()> {
    let paint = |style: &str, text: &str| {
        if color {
            format!("{style}{text}{RESET}")
        } else {
            text.to_string()
        }
    };
    writeln!(out, "{}: {error}", paint(RED_BOLD, "error"))?;
    for line in help.iter().flat_map(|help| help.lines()) {
        writeln!(out, "{}: {line}", paint(CYAN_BOLD, "help"))?;
    }
    Ok(())
}

/// What was produced for one function, for the summary on stdout.
pub struct FunctionReport<'a> {
    pub function: &'a FunctionPlan,
    pub artifact: &'a Artifact,
    pub arch: Arch,
    pub elf: &'a ElfReport,
    /// The image a `--docker` build ran in.
    pub docker_image: Option<&'a str>,
    /// The container image `--image` made of the function.
    pub image: Option<ImageReport<'a>>,
}

/// What `--image` made, as the summary and the JSON name it.
#[derive(Debug, Clone, Copy)]
pub struct ImageReport<'a> {
    /// `REGISTRY/REPOSITORY`.
    pub repository: &'a str,
    /// `sha256:...` of the manifest.
    pub digest: &'a str,
    /// `linux/amd64` or `linux/arm64`.
    pub platform: &'a str,
    pub size: u64,
    pub pushed: bool,
    pub layout: Option<&'a std::path::Path>,
    pub loaded: bool,
}

impl ImageReport<'_> {
    /// What Lambda's `ImageUri` takes: the image by digest, so that a later push to the tag
    /// cannot change what is deployed.
    pub fn image_uri(&self) -> String {
        format!("{}@{}", self.repository, self.digest)
    }
}

pub fn glibc_text(elf: &ElfReport) -> String {
    if let Some(interpreter) = elf.script() {
        return format!("none (a `#!{interpreter}` script)");
    }
    match (&elf.glibc, elf.static_linked) {
        (_, true) => "none (statically linked)".to_string(),
        (Some(version), false) => format!(
            "{version} (provided.al2023 has {}.{})",
            lambda::GLIBC.0,
            lambda::GLIBC.1
        ),
        (None, false) => "no versioned symbols".to_string(),
    }
}

pub fn print_summary(out: &mut impl Write, summary: &FunctionReport) -> std::io::Result<()> {
    let artifact = summary.artifact;
    let function = summary.function;
    writeln!(out, "{}", function.output.path().display())?;
    // `package BINARY` has no package: the binary stands for itself.
    let package = if function.package.is_empty() {
        String::new()
    } else {
        format!(" (package {})", function.package)
    };
    writeln!(
        out,
        "  {}{}{package}",
        if function.extension {
            "extension     "
        } else {
            "function      "
        },
        function.bin,
    )?;
    writeln!(out, "  architecture  {}", summary.arch)?;
    match function.output {
        Output::Zip(_) => writeln!(
            out,
            "  size          {} zipped, {} unzipped",
            human_size(artifact.size),
            human_size(artifact.unzipped_size)
        )?,
        Output::Executable(_) => writeln!(out, "  size          {}", human_size(artifact.size))?,
    }
    writeln!(out, "  glibc         {}", glibc_text(summary.elf))?;
    writeln!(out, "  sha256        {}", artifact.sha256_hex())?;
    writeln!(out, "  CodeSha256    {}", artifact.code_sha256())?;
    if let Some(image) = summary.image {
        let went = match (image.pushed, image.layout) {
            (true, Some(dir)) => format!("pushed, OCI layout {}", dir.display()),
            (true, None) => "pushed".to_owned(),
            (false, Some(dir)) => format!("OCI layout {}", dir.display()),
            (false, None) if image.loaded => "loaded into the Docker engine".to_owned(),
            (false, None) => "not written".to_owned(),
        };
        writeln!(
            out,
            "  image         {}, {} ({went})",
            image.platform,
            human_size(image.size)
        )?;
        writeln!(out, "  ImageUri      {}", image.image_uri())?;
    }
    Ok(())
}

/// The `reason` of an artifact's JSON object: like cargo's messages, every object on stdout
/// says what it is, so a script selects the ones it wants.
pub const REASON_ARTIFACT: &str = "lambda-artifact";
/// The `reason` of an `--invoke-with` reply's JSON object.
pub const REASON_INVOCATION: &str = "lambda-invocation";

/// One line of JSON per artifact: the interface for scripts (`--message-format json`).
pub fn print_json(out: &mut impl Write, summary: &FunctionReport) -> std::io::Result<()> {
    let artifact = summary.artifact;
    let function = summary.function;
    let line = serde_json::json!({
        "reason": REASON_ARTIFACT,
        // Lossy rather than a failure: a zip path that is not UTF-8 is rare and still shown.
        "path": function.output.path().to_string_lossy(),
        "function": function.bin,
        // null for `package BINARY`, which has none.
        "package": (!function.package.is_empty()).then_some(&function.package),
        "extension": function.extension,
        "arch": summary.arch.lambda_name(),
        "size": artifact.size,
        "unzipped_size": artifact.unzipped_size,
        "sha256": artifact.sha256_hex(),
        "code_sha256": artifact.code_sha256(),
        // The highest glibc version the binary requires; null when it requires none.
        "glibc": summary.elf.glibc.as_ref().map(ToString::to_string),
        // The image of a `--docker` build (null otherwise): the name to `docker save` it under
        // for a CI cache.
        "docker_image": summary.docker_image,
        // `--image`: what Lambda's `ImageUri` takes (by digest), and the image's facts; null
        // without `--image`.
        "image_uri": summary.image.map(|image| image.image_uri()),
        "image_digest": summary.image.map(|image| image.digest),
        "image_platform": summary.image.map(|image| image.platform),
        "image_pushed": summary.image.map(|image| image.pushed),
        "image_layout": summary.image.and_then(|image| image.layout),
        "image_loaded": summary.image.map(|image| image.loaded),
    });
    writeln!(out, "{line}")
}

/// One line of JSON per reply of `--invoke-with` in JSON mode: the payload as JSON when it is
/// JSON (a function's usual reply), else as a string.
pub fn print_invocation_json(
    out: &mut impl Write,
    function: &str,
    failed: bool,
    payload: &[u8],
) -> std::io::Result<()> {
    let payload = serde_json::from_slice::<serde_json::Value>(payload)
        .unwrap_or_else(|_| String::from_utf8_lossy(payload).into_owned().into());
    let line = serde_json::json!({
        "reason": REASON_INVOCATION,
        "function": function,
        "outcome": if failed { "error" } else { "response" },
        "payload": payload,
    });
    writeln!(out, "{line}")
}

pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_lines_without_a_spinner_are_printed_not_deadlocked() {
        let reporter = Reporter {
            verbosity: Verbosity::Normal,
            color: false,
            progress_enabled: false,
            bar: Mutex::new(None),
            note: None,
        };
        reporter.start_spinner("Building", "image");
        // Returns: the lock is not held while the line is written.
        reporter.spinner_message("Step 1/2 : FROM x");
        reporter.finish_progress();
    }

    #[test]
    fn sizes_read_like_cargo() {
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(585 * 1024), "585.0 KiB");
        assert_eq!(human_size(52_428_800), "50.0 MiB");
    }
}
