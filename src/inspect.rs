//! ELF checks: will `provided.al2023` start this file as `bootstrap`?
//!
//! Lambda execs `bootstrap` directly, so what decides whether it starts is what the kernel and
//! glibc's dynamic loader read: the ELF header, the program headers, the `PT_INTERP` path, and the
//! `PT_DYNAMIC` table (`DT_NEEDED` libraries, `DT_VERNEED` symbol versions). This module reads
//! exactly those, through the program headers and never the section headers: `strip`, `sstrip`
//! and packers may remove or corrupt sections, and the loader never looks at them, so neither do
//! we. A binary with its section headers zeroed gives the same report (a test checks this).
//!
//! [`inspect`] only parses and refuses what is not a 64-bit executable at all; [`check`] compares
//! the parsed facts with what AL2023 provides and returns every problem, not just the first.
//!
//! The input is untrusted: every offset, size and count comes from the file, so every read is
//! bounds-checked (`object` returns errors, never panics, for out-of-range reads), every
//! arithmetic step is checked, and loops are bounded by the data they walk.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use object::elf::{self, FileHeader64, Vernaux, Verneed};
use object::read::elf::{Dyn, FileHeader, ProgramHeader};
use object::{Endianness, Wrap};

use crate::arch::Arch;
use crate::lambda::{self, AL2023_LIBRARIES, loader_path, loader_paths};

/// glibc of `provided.al2023` ([`lambda::GLIBC`]).
pub const AL2023_GLIBC: GlibcVersion = GlibcVersion {
    major: lambda::GLIBC.0,
    minor: lambda::GLIBC.1,
};

/// The largest file [`inspect`] reads: 512 MiB. Lambda's own limit is 250 MB unzipped
/// ([`lambda::UNZIPPED_LIMIT`]) for the function and its layers together, so anything larger cannot be
/// deployed anyway, and this bounds the memory the check can take.
pub const MAX_FILE_SIZE: u64 = 512 * 1024 * 1024;

/// A glibc release, as in the `GLIBC_2.34` symbol version. Ordered numerically (2.4 < 2.34).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GlibcVersion {
    pub major: u32,
    pub minor: u32,
}

impl GlibcVersion {
    /// Parses `2.34` or `2.2.5` (the patch level is dropped: no glibc symbol version that
    /// matters here differs from its release only by a patch level). `None` for anything else.
    pub fn parse(s: &str) -> Option<GlibcVersion> {
        let mut parts = s.split('.');
        let major = parse_number(parts.next()?)?;
        let minor = parse_number(parts.next()?)?;
        match (parts.next(), parts.next()) {
            (None, _) => {}
            (Some(patch), None) => {
                parse_number(patch)?;
            }
            (Some(_), Some(_)) => return None,
        }
        Some(GlibcVersion { major, minor })
    }

    /// The glibc release a `GLIBC_*` version name stands for, if it stands for one.
    ///
    /// `GLIBC_2.34` is 2.34. `GLIBC_ABI_*` names are markers the linker adds for loader
    /// features: `GLIBC_ABI_DT_RELR` (binutils' `-z pack-relative-relocs`) came with glibc 2.36,
    /// the first such marker, so any of them means at least 2.36 and none exists in 2.34.
    /// `GLIBC_PRIVATE` is glibc-internal and says nothing about the release.
    fn from_version_name(name: &[u8]) -> Option<GlibcVersion> {
        let rest = name.strip_prefix(b"GLIBC_")?;
        if rest.starts_with(b"ABI_") {
            return Some(GlibcVersion {
                major: 2,
                minor: 36,
            });
        }
        GlibcVersion::parse(std::str::from_utf8(rest).ok()?)
    }
}

fn parse_number(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl fmt::Display for GlibcVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl serde::Serialize for GlibcVersion {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// What [`inspect`] found in an executable. Serializes with `arch` as Lambda's name (`x86_64`,
/// `arm64`) and `glibc` as `"2.34"`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ElfReport {
    #[serde(serialize_with = "serialize_arch")]
    pub arch: Arch,
    /// No `PT_INTERP` and no `DT_NEEDED`: static, or static-pie. Runs on any Linux kernel.
    pub static_linked: bool,
    /// The `PT_INTERP` path, e.g. `/lib64/ld-linux-x86-64.so.2`.
    pub interpreter: Option<String>,
    /// The highest glibc release among the *required* symbol versions (`DT_VERNEED` entries:
    /// what the binary needs, not what it defines), weak references left out. `None` when it
    /// requires none.
    pub glibc: Option<GlibcVersion>,
    /// `DT_NEEDED` sonames, in the file's order.
    pub needed: Vec<String>,
}

fn serialize_arch<S: serde::Serializer>(arch: &Arch, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(arch.lambda_name())
}

/// Why a file is not something Lambda can start as `bootstrap` at all, or could not be read.
///
/// Messages describe the file without naming it (only [`InspectError::Read`] and
/// [`InspectError::NotAFile`] carry the path); callers prefix the path.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("cannot use `{}` as `bootstrap`: {source}", .path.display())]
    Inspect { path: PathBuf, source: InspectError },

    /// Every check that failed, so that one run shows all of them.
    #[error("`{}` would not run on provided.al2023: {}", .path.display(),
        .problems.iter().map(Problem::message).collect::<Vec<_>>().join("; "))]
    Incompatible {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

impl CheckError {
    /// What to do about it, when the tool knows: one line per fix.
    pub fn help(&self) -> Option<String> {
        Some(match self {
            CheckError::Inspect { source, .. } => return source.help(),
            CheckError::Incompatible { problems, .. } => {
                let mut lines: Vec<String> = problems.iter().map(Problem::help).collect();
                lines.push("to package it anyway, pass `--no-verify`".into());
                lines.join("\n")
            }
        })
    }
}

/// An executable cargo built, read and checked against provided.al2023.
#[derive(Debug, Clone)]
pub struct Checked {
    pub executable: PathBuf,
    pub elf: ElfReport,
    /// Every problem found: empty when it would run.
    pub problems: Vec<Problem>,
}

impl Checked {
    /// Drops from the missing libraries those the function ships itself (its zip's root or
    /// `lib/`) or gets from its layers (`/opt/lib`): the loader finds them through
    /// `LD_LIBRARY_PATH` on Lambda.
    pub fn provided(&mut self, libraries: &[String]) {
        self.problems.retain_mut(|problem| match problem {
            Problem::MissingLibraries(missing) => {
                missing.retain(|lib| !libraries.contains(lib));
                !missing.is_empty()
            }
            _ => true,
        });
    }
}

/// Reads the executable cargo built and checks it against provided.al2023.
pub fn check_executable(path: &Path, arch: Arch) -> Result<Checked, CheckError> {
    check_binary(path, Some(arch))
}

/// [`check_executable`] for a binary built elsewhere: without an expected architecture, the
/// binary's own is the function's.
pub fn check_binary(path: &Path, arch: Option<Arch>) -> Result<Checked, CheckError> {
    let elf = inspect(path).map_err(|source| CheckError::Inspect {
        path: path.to_path_buf(),
        source,
    })?;
    let problems = check(&elf, arch.unwrap_or(elf.arch));
    Ok(Checked {
        executable: path.to_path_buf(),
        elf,
        problems,
    })
}

/// [`check_binary`] for `package`, a file built elsewhere: also a `#!` script, when
/// provided.al2023 has its interpreter (AWS's own custom-runtime tutorial ships one). The
/// script has no ELF to check: its report names the interpreter and no glibc; the
/// architecture is the function's (`--arch`, else Lambda's default).
pub fn check_packaged(path: &Path, arch: Option<Arch>) -> Result<Checked, CheckError> {
    match check_binary(path, arch) {
        Err(CheckError::Inspect {
            source: InspectError::Script { interpreter },
            ..
        }) if lambda::runs_script(&interpreter) => Ok(Checked {
            executable: path.to_path_buf(),
            elf: ElfReport {
                arch: arch.unwrap_or_default(),
                static_linked: false,
                interpreter: Some(interpreter),
                glibc: None,
                needed: Vec::new(),
            },
            problems: Vec::new(),
        }),
        other => other,
    }
}

impl ElfReport {
    /// The `#!` interpreter, when the file is a script [`check_packaged`] took.
    pub fn script(&self) -> Option<&str> {
        self.interpreter
            .as_deref()
            .filter(|interpreter| lambda::runs_script(interpreter))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a regular file", path.display())]
    NotAFile { path: PathBuf },
    #[error(
        "the file is {size} bytes, more than the {} bytes (512 MiB) this check reads",
        MAX_FILE_SIZE
    )]
    TooLarge { size: u64 },
    #[error("the file is empty")]
    Empty,
    #[error("the file is a `#!` script (`#!{interpreter}`), not an ELF executable")]
    Script { interpreter: String },
    #[error("the file is {format}, not an ELF executable")]
    NotElf { format: &'static str },
    #[error("the file is a 32-bit ELF; lambda runs only 64-bit x86_64 and arm64 binaries")]
    Elf32,
    #[error("the file is a big-endian ELF; lambda's x86_64 and arm64 are little-endian")]
    BigEndian,
    #[error(
        "the file is an ELF for {name} (e_machine {machine}); lambda runs only x86_64 and arm64"
    )]
    UnsupportedMachine { machine: u16, name: &'static str },
    #[error("the file is {kind}, not an executable")]
    NotExecutable { kind: String },
    #[error(
        "the file is a shared library{}, not an executable (no program interpreter, and not a static-pie)",
        soname.as_deref().map(|s| format!(" ({s})")).unwrap_or_default()
    )]
    SharedLibrary { soname: Option<String> },
    #[error("the file is a malformed ELF: {reason}")]
    Malformed { reason: String },
}

impl InspectError {
    /// One line: what to do about it, when there is something to say.
    pub fn help(&self) -> Option<String> {
        let help = match self {
            InspectError::Read { .. } | InspectError::NotAFile { .. } => return None,
            InspectError::TooLarge { .. } => {
                "lambda takes at most 250 MB unzipped (262144000 bytes); strip the binary \
                 (`strip = true` in the cargo profile)"
                    .to_owned()
            }
            InspectError::Empty | InspectError::Malformed { .. } => {
                "rebuild; the file looks truncated or damaged (a build interrupted midway?)"
                    .to_owned()
            }
            InspectError::Script { .. } => {
                "lambda execs `bootstrap` itself; package the compiled binary, not a wrapper \
                 script (`package` takes a `#!/bin/sh` or `#!/bin/bash` script: \
                 provided.al2023 has no other interpreter)"
                    .to_owned()
            }
            InspectError::NotElf { .. } => {
                "lambda runs linux ELF binaries; build for `x86_64-unknown-linux-gnu` or \
                 `aarch64-unknown-linux-gnu` (`--arch x86_64|arm64`)"
                    .to_owned()
            }
            InspectError::Elf32
            | InspectError::BigEndian
            | InspectError::UnsupportedMachine { .. } => {
                "build with `--arch x86_64` or `--arch arm64`".to_owned()
            }
            InspectError::NotExecutable { .. } => {
                "package the linked binary, not an intermediate file".to_owned()
            }
            InspectError::SharedLibrary { .. } => {
                "package the function's `[[bin]]` target, not a `cdylib`/`dylib` library".to_owned()
            }
        };
        Some(help)
    }
}

/// Something in an executable that stops it from starting on `provided.al2023`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Built for one architecture, deployed as the other: Lambda fails with
    /// `Runtime.InvalidEntrypoint` (exec format error).
    WrongArch { found: Arch, expected: Arch },
    /// Requires a glibc newer than AL2023's 2.34: "version `GLIBC_2.xx' not found".
    GlibcTooNew { required: GlibcVersion },
    /// `DT_NEEDED` libraries AL2023 does not have (see [`AL2023_LIBRARIES`]): "error while
    /// loading shared libraries".
    MissingLibraries(Vec<String>),
    /// A `PT_INTERP` that is not glibc's loader for the binary's `arch` on AL2023 (a musl or
    /// Nix loader, a Debian multiarch path): the kernel cannot start the binary at all.
    WrongInterpreter { found: String, arch: Arch },
}

impl Problem {
    /// One lower-case line naming the problem.
    pub fn message(&self) -> String {
        match self {
            Problem::WrongArch { found, expected } => format!(
                "the binary is built for {found}, but the function's architecture is {expected}"
            ),
            Problem::GlibcTooNew { required } => format!(
                "the binary requires glibc {required}, but provided.al2023 has glibc {AL2023_GLIBC}"
            ),
            Problem::MissingLibraries(libs) => {
                let (noun, verb) = if libs.len() == 1 {
                    ("library", "is")
                } else {
                    ("libraries", "are")
                };
                format!(
                    "the binary needs the shared {noun} {}, which {verb} not on provided.al2023",
                    libs.join(", ")
                )
            }
            Problem::WrongInterpreter { found, arch } => format!(
                "the binary's program interpreter {found} does not exist on provided.al2023 \
                 (glibc's loader for {arch} is {})",
                loader_path(*arch)
            ),
        }
    }

    /// One line: the fix.
    pub fn help(&self) -> String {
        match self {
            Problem::WrongArch { found, expected } => format!(
                "build with `--arch {expected}`, or deploy the function with \
                 `--architectures {found}`"
            ),
            Problem::GlibcTooNew { .. } => format!(
                "build with `--docker`, or install zig (`pip install ziglang`) so the tool \
                 links against glibc {AL2023_GLIBC}"
            ),
            Problem::MissingLibraries(libs) => format!(
                "link {} statically (e.g. the crate's `vendored` feature), ship {} in the zip \
                 under lib/ (`--include lib/`), or declare the layer whose lib/ has {} \
                 (`--layer ZIP`)",
                libs.join(", "),
                if libs.len() == 1 { "it" } else { "them" },
                if libs.len() == 1 { "it" } else { "them" }
            ),
            Problem::WrongInterpreter { arch, .. } => format!(
                "build for `{}` so the binary uses {}, or link it statically",
                arch.triple(),
                loader_path(*arch)
            ),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

/// Reads and checks `path` as something Lambda can start as `bootstrap`: a 64-bit
/// little-endian ELF executable (static, static-pie, or dynamic) for x86_64 or arm64.
///
/// This only parses; compare the report with the function's architecture with [`check`].
pub fn inspect(path: &Path) -> Result<ElfReport, InspectError> {
    let data = read_bounded(path)?;
    inspect_bytes(&data)
}

/// Reads the whole file (binaries are at most a few hundred MB), refusing more than
/// [`MAX_FILE_SIZE`] even if the file grows while being read.
fn read_bounded(path: &Path) -> Result<Vec<u8>, InspectError> {
    let read_error = |source| InspectError::Read {
        path: path.to_path_buf(),
        source,
    };
    // Windows refuses to open a directory at all: say what it is, as Unix does below.
    let file = File::open(path).map_err(|e| {
        if path.is_dir() {
            InspectError::NotAFile {
                path: path.to_path_buf(),
            }
        } else {
            read_error(e)
        }
    })?;
    let metadata = file.metadata().map_err(read_error)?;
    if !metadata.is_file() {
        return Err(InspectError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    if metadata.len() > MAX_FILE_SIZE {
        return Err(InspectError::TooLarge {
            size: metadata.len(),
        });
    }
    let mut data = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut data)
        .map_err(read_error)?;
    let size = u64::try_from(data.len()).unwrap_or(u64::MAX);
    if size > MAX_FILE_SIZE {
        return Err(InspectError::TooLarge { size });
    }
    Ok(data)
}

/// The architecture of a shared library as the dynamic loader tells whether it can take it: from
/// the ELF header alone, a 64-bit little-endian ELF for x86_64 or arm64. `None` for anything
/// else (a missing or unreadable file, a 32-bit build, a linker script): the loader skips such a
/// file and searches on.
pub fn library_arch(path: &Path) -> Option<Arch> {
    let mut header = [0u8; 20];
    File::open(path).ok()?.read_exact(&mut header).ok()?;
    header_arch(&header)
}

/// [`library_arch`] of the first 20 bytes: `e_ident`, `e_type`, `e_machine`.
fn header_arch(header: &[u8; 20]) -> Option<Arch> {
    let elf64_le = header.starts_with(&elf::ELFMAG)
        && header[4] == elf::ELFCLASS64.0
        && header[5] == elf::ELFDATA2LSB.0;
    let machine = u16::from_le_bytes([header[18], header[19]]);
    elf64_le
        .then(|| Arch::from_elf_machine(Wrap::from_inner(machine)))
        .flatten()
}

/// [`inspect`] on bytes already in memory. Never panics, whatever the bytes.
pub fn inspect_bytes(data: &[u8]) -> Result<ElfReport, InspectError> {
    if data.is_empty() {
        return Err(InspectError::Empty);
    }
    if let Some(rest) = data.strip_prefix(b"#!") {
        return Err(InspectError::Script {
            interpreter: script_interpreter(rest),
        });
    }
    if !data.starts_with(&elf::ELFMAG) {
        return Err(InspectError::NotElf {
            format: sniff_format(data),
        });
    }
    // e_ident[EI_CLASS] and e_ident[EI_DATA], checked before parsing the 64-byte header so that
    // a 32-bit or big-endian file gets its own error rather than "malformed".
    match data.get(4).copied() {
        Some(class) if class == elf::ELFCLASS64.0 => {}
        Some(class) if class == elf::ELFCLASS32.0 => return Err(InspectError::Elf32),
        Some(class) => return Err(malformed(format!("unknown ELF class {class}"))),
        None => return Err(malformed("truncated ELF header")),
    }
    match data.get(5).copied() {
        Some(encoding) if encoding == elf::ELFDATA2LSB.0 => {}
        Some(encoding) if encoding == elf::ELFDATA2MSB.0 => return Err(InspectError::BigEndian),
        Some(encoding) => return Err(malformed(format!("unknown ELF data encoding {encoding}"))),
        None => return Err(malformed("truncated ELF header")),
    }

    let header = FileHeader64::<Endianness>::parse(data)
        .map_err(|_| malformed("truncated or unsupported ELF header"))?;
    let endian = header
        .endian()
        .map_err(|_| malformed("unknown ELF data encoding"))?;

    let machine = header.e_machine(endian).into_inner();
    // `Wrap::from_inner` converts to whatever `from_elf_machine` takes (`u16` or `elf::Machine`).
    let arch = Arch::from_elf_machine(Wrap::from_inner(machine)).ok_or(
        InspectError::UnsupportedMachine {
            machine,
            name: machine_name(machine),
        },
    )?;

    let file_type = header.e_type(endian);
    if file_type != elf::ET_EXEC && file_type != elf::ET_DYN {
        let kind = if file_type == elf::ET_REL {
            "a relocatable object file (.o)".to_owned()
        } else if file_type == elf::ET_CORE {
            "a core dump".to_owned()
        } else {
            format!("an ELF file of type {}", file_type.0)
        };
        return Err(InspectError::NotExecutable { kind });
    }

    let segments = header
        .program_headers(endian, data)
        .map_err(|_| malformed("program headers out of bounds"))?;
    if !segments
        .iter()
        .any(|segment| segment.p_type(endian) == elf::PT_LOAD)
    {
        return Err(malformed("no loadable segment"));
    }
    let image = Image {
        data,
        endian,
        segments,
    };

    let interpreter = image.interpreter()?;
    let dynamic = image.dynamic()?;
    let needed = dynamic.needed(&image)?;
    let glibc = dynamic.required_glibc(&image)?;

    // A shared library and a static-pie are both ET_DYN without PT_INTERP; only the static-pie
    // has DF_1_PIE in DT_FLAGS_1 (GNU ld and lld set it on every `-pie` output).
    let pie = dynamic.flags_1 & elf::DF_1_PIE.0 != 0;
    if file_type == elf::ET_DYN && interpreter.is_none() && !pie {
        return Err(InspectError::SharedLibrary {
            soname: dynamic.soname(&image),
        });
    }

    // The kernel maps no library itself: DT_NEEDED entries without a loader are never loaded.
    if interpreter.is_none() && !needed.is_empty() {
        return Err(malformed(format!(
            "needs shared libraries ({}) but has no program interpreter to load them",
            needed.join(", ")
        )));
    }

    Ok(ElfReport {
        arch,
        static_linked: interpreter.is_none() && needed.is_empty(),
        interpreter,
        glibc,
        needed,
    })
}

/// Checks `report` against `provided.al2023` for a function of architecture `expected`.
/// Returns every problem found (empty: it will start).
pub fn check(report: &ElfReport, expected: Arch) -> Vec<Problem> {
    let mut problems = Vec::new();
    if report.arch != expected {
        problems.push(Problem::WrongArch {
            found: report.arch,
            expected,
        });
    }
    // Against the binary's own architecture: a wrong architecture is reported once, above.
    if let Some(interpreter) = &report.interpreter
        && !loader_paths(report.arch).contains(&interpreter.as_str())
    {
        problems.push(Problem::WrongInterpreter {
            found: interpreter.clone(),
            arch: report.arch,
        });
    }
    if let Some(required) = report.glibc
        && required > AL2023_GLIBC
    {
        problems.push(Problem::GlibcTooNew { required });
    }
    let mut missing: Vec<String> = Vec::new();
    for lib in &report.needed {
        if !AL2023_LIBRARIES.contains(&lib.as_str()) && !missing.contains(lib) {
            missing.push(lib.clone());
        }
    }
    if !missing.is_empty() {
        problems.push(Problem::MissingLibraries(missing));
    }
    problems
}

fn malformed(reason: impl Into<String>) -> InspectError {
    InspectError::Malformed {
        reason: reason.into(),
    }
}

/// The `#!` line's interpreter and argument, at most 200 bytes of it (Linux reads at most 256
/// bytes of a `#!` line; this is for the message only).
fn script_interpreter(rest: &[u8]) -> String {
    let line = rest.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.get(..200).unwrap_or(line);
    String::from_utf8_lossy(line).trim().to_owned()
}

/// Names the formats people most often hand us by mistake, from their magic numbers.
fn sniff_format(data: &[u8]) -> &'static str {
    const MACH_O: [[u8; 4]; 4] = [
        [0xfe, 0xed, 0xfa, 0xce],
        [0xfe, 0xed, 0xfa, 0xcf],
        [0xce, 0xfa, 0xed, 0xfe],
        [0xcf, 0xfa, 0xed, 0xfe],
    ];
    if MACH_O.iter().any(|magic| data.starts_with(magic)) {
        "a mach-o (macos) binary"
    } else if data.starts_with(&[0xca, 0xfe, 0xba, 0xbe]) {
        "a universal mach-o (macos) binary"
    } else if data.starts_with(b"MZ") {
        "a windows (PE) executable"
    } else if data.starts_with(b"PK\x03\x04") {
        "a zip archive"
    } else if data.starts_with(b"!<arch>\n") {
        "a static library (.a archive)"
    } else if data.starts_with(b"\0asm") {
        "a webassembly module"
    } else {
        "in an unrecognised format"
    }
}

/// Names for the `e_machine` values of the architectures people are likely to build for by
/// mistake (a 64-bit ELF for anything else is rare).
fn machine_name(machine: u16) -> &'static str {
    const NAMES: &[(elf::Machine, &str)] = &[
        (elf::EM_386, "x86 (i386)"),
        (elf::EM_ARM, "32-bit arm"),
        (elf::EM_RISCV, "risc-v"),
        (elf::EM_PPC64, "powerpc64"),
        (elf::EM_S390, "s390x"),
        (elf::EM_LOONGARCH, "loongarch"),
        (elf::EM_MIPS, "mips"),
        (elf::EM_SPARCV9, "sparc64"),
    ];
    NAMES
        .iter()
        .find(|(m, _)| m.0 == machine)
        .map_or("an unsupported machine", |(_, name)| name)
}

/// The file and its program headers: enough to resolve the virtual addresses that `PT_DYNAMIC`
/// entries hold to bytes of the file, the way the loader sees them once mapped.
struct Image<'data> {
    data: &'data [u8],
    endian: Endianness,
    segments: &'data [elf::ProgramHeader64<Endianness>],
}

/// The `PT_DYNAMIC` entries this module uses. Addresses are unrelocated virtual addresses.
#[derive(Default)]
struct DynamicInfo {
    needed: Vec<u64>,
    soname: Option<u64>,
    strtab: Option<u64>,
    strsz: Option<u64>,
    verneed: Option<u64>,
    verneednum: Option<u64>,
    flags_1: u64,
}

/// Upper bound on the `DT_VERNEED` entries (libraries, and versions of them) walked. Real
/// binaries have a handful (a large Rust binary: ~5 libraries, ~40 versions); the bound keeps a
/// crafted file from making the walk take long.
const MAX_VERSION_ENTRIES: usize = 4096;

impl<'data> Image<'data> {
    /// The bytes from virtual address `address` to the end of the `PT_LOAD` segment's file data
    /// that holds it, or `None` when no segment maps it from the file.
    fn bytes_at(&self, address: u64) -> Option<&'data [u8]> {
        self.segments
            .iter()
            .filter(|segment| segment.p_type(self.endian) == elf::PT_LOAD)
            .find_map(|segment| {
                let vaddr = segment.p_vaddr(self.endian);
                let filesz = segment.p_filesz(self.endian);
                let delta = address.checked_sub(vaddr)?;
                if delta >= filesz {
                    return None;
                }
                let start = segment.p_offset(self.endian).checked_add(delta)?;
                let end = start.checked_add(filesz.checked_sub(delta)?)?;
                let start = usize::try_from(start).ok()?;
                let end = usize::try_from(end).ok()?;
                // A segment may claim more file than there is: keep what exists.
                let end = end.min(self.data.len());
                self.data.get(start..end)
            })
    }

    /// The first program header of this type (the kernel and the loader take the first).
    fn first_segment(&self, p_type: elf::ProgramType) -> Option<&elf::ProgramHeader64<Endianness>> {
        let of_type =
            |segment: &&elf::ProgramHeader64<Endianness>| segment.p_type(self.endian) == p_type;
        self.segments.iter().find(of_type)
    }

    /// `PT_INTERP`, the first one (as the kernel does).
    fn interpreter(&self) -> Result<Option<String>, InspectError> {
        let Some(segment) = self.first_segment(elf::PT_INTERP) else {
            return Ok(None);
        };
        let bytes = segment
            .interpreter(self.endian, self.data)
            .map_err(|_| malformed("program interpreter out of bounds or not terminated"))?
            .unwrap_or_default();
        // Linux refuses a PT_INTERP longer than PATH_MAX (4096 bytes) or empty.
        if bytes.is_empty() || bytes.len() >= 4096 {
            return Err(malformed("program interpreter path empty or too long"));
        }
        Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
    }

    /// The entries of the first `PT_DYNAMIC`, up to `DT_NULL`. No `PT_DYNAMIC`: no entries.
    fn dynamic(&self) -> Result<DynamicInfo, InspectError> {
        let mut info = DynamicInfo::default();
        let entries = self
            .first_segment(elf::PT_DYNAMIC)
            .map(|segment| segment.dynamic(self.endian, self.data))
            .transpose()
            .map_err(|_| malformed("dynamic segment out of bounds"))?
            .flatten()
            .unwrap_or_default();
        for entry in entries {
            let tag = entry.tag(self.endian);
            let value = entry.val(self.endian);
            match tag {
                elf::DT_NULL => break,
                elf::DT_NEEDED => info.needed.push(value),
                elf::DT_SONAME => info.soname = Some(value),
                elf::DT_STRTAB => info.strtab = Some(value),
                elf::DT_STRSZ => info.strsz = Some(value),
                elf::DT_VERNEED => info.verneed = Some(value),
                elf::DT_VERNEEDNUM => info.verneednum = Some(value),
                elf::DT_FLAGS_1 => info.flags_1 = value,
                _ => {}
            }
        }
        Ok(info)
    }
}

impl DynamicInfo {
    /// The dynamic string table (`DT_STRTAB`, `DT_STRSZ` bytes of it).
    fn strtab<'data>(&self, image: &Image<'data>) -> Result<&'data [u8], InspectError> {
        let address = self
            .strtab
            .ok_or_else(|| malformed("dynamic string table missing"))?;
        let bytes = image
            .bytes_at(address)
            .ok_or_else(|| malformed("dynamic string table not in the file"))?;
        let size = self
            .strsz
            .and_then(|size| usize::try_from(size).ok())
            .unwrap_or(bytes.len());
        Ok(bytes.get(..size).unwrap_or(bytes))
    }

    fn needed(&self, image: &Image<'_>) -> Result<Vec<String>, InspectError> {
        if self.needed.is_empty() {
            return Ok(Vec::new());
        }
        let strtab = self.strtab(image)?;
        self.needed
            .iter()
            .map(|&offset| {
                string_at(strtab, offset)
                    .map(|name| String::from_utf8_lossy(name).into_owned())
                    .ok_or_else(|| malformed("DT_NEEDED name outside the string table"))
            })
            .collect()
    }

    /// `DT_SONAME`, for the shared-library error message; best effort.
    fn soname(&self, image: &Image<'_>) -> Option<String> {
        let name = string_at(self.strtab(image).ok()?, self.soname?)?;
        Some(String::from_utf8_lossy(name).into_owned())
    }

    /// The highest glibc release among the non-weak `DT_VERNEED` versions.
    fn required_glibc(&self, image: &Image<'_>) -> Result<Option<GlibcVersion>, InspectError> {
        let Some(address) = self.verneed else {
            return Ok(None);
        };
        let verneed = image
            .bytes_at(address)
            .ok_or_else(|| malformed("version needs (DT_VERNEED) not in the file"))?;
        let strtab = self.strtab(image)?;
        let names = required_versions(verneed, strtab, image.endian, self.verneednum)?;
        Ok(names
            .into_iter()
            .filter_map(GlibcVersion::from_version_name)
            .max())
    }
}

/// The names of the versions a `DT_VERNEED` table requires, weak ones (`VER_FLG_WEAK`, which the
/// loader only warns about) left out.
///
/// The table is a list of `Verneed` records (one per library) chained by `vn_next` byte offsets,
/// each with `vn_cnt` `Vernaux` records (one per version) chained by `vna_next`; a zero `next`
/// ends a chain, as in glibc's loader. `count` is `DT_VERNEEDNUM` when present.
fn required_versions<'data>(
    table: &'data [u8],
    strtab: &'data [u8],
    endian: Endianness,
    count: Option<u64>,
) -> Result<Vec<&'data [u8]>, InspectError> {
    let table = object::Bytes(table);
    let mut names = Vec::new();
    let mut walked = 0usize;
    let mut offset = 0usize;
    let mut libraries = 0u64;
    loop {
        if count.is_some_and(|count| libraries >= count) {
            break;
        }
        libraries = libraries.saturating_add(1);
        let verneed: &Verneed<Endianness> = table
            .read_at(offset)
            .map_err(|_| malformed("version need record out of bounds"))?;
        let mut aux = offset
            .checked_add(verneed.vn_aux.get(endian) as usize)
            .ok_or_else(|| malformed("version need record out of bounds"))?;
        for _ in 0..verneed.vn_cnt.get(endian) {
            let vernaux: &Vernaux<Endianness> = table
                .read_at(aux)
                .map_err(|_| malformed("version need record out of bounds"))?;
            let weak = vernaux.vna_flags.get(endian).0 & elf::VER_FLG_WEAK.0 != 0;
            if !weak {
                let name = string_at(strtab, u64::from(vernaux.vna_name.get(endian)))
                    .ok_or_else(|| malformed("version name outside the string table"))?;
                names.push(name);
            }
            match step(aux, vernaux.vna_next.get(endian), &mut walked)? {
                Some(next) => aux = next,
                None => break,
            }
        }
        match step(offset, verneed.vn_next.get(endian), &mut walked)? {
            Some(next) => offset = next,
            None => break,
        }
    }
    Ok(names)
}

/// One step along a chain of version records: the record `next` bytes after `at`, or None where
/// `next` is 0 (the chain's end, as glibc's loader reads it). Every step counts against
/// [`MAX_VERSION_ENTRIES`], so a chain that loops back is refused instead of walked forever.
fn step(at: usize, next: u32, walked: &mut usize) -> Result<Option<usize>, InspectError> {
    *walked = walked.saturating_add(1);
    if *walked > MAX_VERSION_ENTRIES {
        return Err(malformed("too many version need records"));
    }
    if next == 0 {
        return Ok(None);
    }
    at.checked_add(next as usize)
        .map(Some)
        .ok_or_else(|| malformed("version need record out of bounds"))
}

/// The NUL-terminated string at `offset` in a string table, without the NUL.
fn string_at(strtab: &[u8], offset: u64) -> Option<&[u8]> {
    let rest = strtab.get(usize::try_from(offset).ok()?..)?;
    let end = rest.iter().position(|&b| b == 0)?;
    rest.get(..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixtures that tests/data/elf/make.sh builds (see there for what each one is).
    macro_rules! fixture {
        ($name:literal) => {
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/elf/", $name)
        };
    }

    fn inspect_fixture(path: &str) -> ElfReport {
        match inspect(Path::new(path)) {
            Ok(report) => report,
            Err(error) => panic!("{path}: {error}"),
        }
    }

    fn read_fixture(path: &str) -> Vec<u8> {
        std::fs::read(path).unwrap_or_else(|error| panic!("{path}: {error}"))
    }

    const ALL_FIXTURES: &[&str] = &[
        fixture!("hello-x86_64"),
        fixture!("hello-aarch64"),
        fixture!("glibc-2.36"),
        fixture!("relr"),
        fixture!("static"),
        fixture!("static-pie"),
        fixture!("libfoo.so.1"),
        fixture!("needs-libfoo"),
        fixture!("musl-interp"),
        fixture!("script.sh"),
    ];

    const V2_34: GlibcVersion = GlibcVersion {
        major: 2,
        minor: 34,
    };
    const V2_36: GlibcVersion = GlibcVersion {
        major: 2,
        minor: 36,
    };

    #[test]
    fn x86_64_hello_passes_for_x86_64() {
        let report = inspect_fixture(fixture!("hello-x86_64"));
        assert_eq!(
            report,
            ElfReport {
                arch: Arch::X86_64,
                static_linked: false,
                interpreter: Some("/lib64/ld-linux-x86-64.so.2".to_owned()),
                // __libc_start_main@GLIBC_2.34: exactly AL2023's glibc, so it passes.
                glibc: Some(V2_34),
                needed: vec!["libc.so.6".to_owned()],
            }
        );
        assert_eq!(check(&report, Arch::X86_64), vec![]);
    }

    #[test]
    fn x86_64_hello_is_the_wrong_arch_for_arm64() {
        let report = inspect_fixture(fixture!("hello-x86_64"));
        let problems = check(&report, Arch::Arm64);
        assert_eq!(
            problems,
            vec![Problem::WrongArch {
                found: Arch::X86_64,
                expected: Arch::Arm64
            }]
        );
        assert_eq!(
            problems[0].message(),
            "the binary is built for x86_64, but the function's architecture is arm64"
        );
        assert!(problems[0].help().contains("`--arch arm64`"));
    }

    #[test]
    fn aarch64_hello_passes_for_arm64_only() {
        let report = inspect_fixture(fixture!("hello-aarch64"));
        assert_eq!(report.arch, Arch::Arm64);
        assert_eq!(
            report.interpreter.as_deref(),
            Some("/lib/ld-linux-aarch64.so.1")
        );
        assert_eq!(report.glibc, Some(V2_34));
        assert_eq!(report.needed, ["libc.so.6"]);
        assert!(!report.static_linked);
        assert_eq!(check(&report, Arch::Arm64), vec![]);
        assert_eq!(
            check(&report, Arch::X86_64),
            vec![Problem::WrongArch {
                found: Arch::Arm64,
                expected: Arch::X86_64
            }]
        );
    }

    #[test]
    fn glibc_2_36_binary_is_too_new() {
        let report = inspect_fixture(fixture!("glibc-2.36"));
        assert_eq!(report.glibc, Some(V2_36));
        let problems = check(&report, Arch::X86_64);
        assert_eq!(problems, vec![Problem::GlibcTooNew { required: V2_36 }]);
        assert_eq!(
            problems[0].message(),
            "the binary requires glibc 2.36, but provided.al2023 has glibc 2.34"
        );
        assert!(problems[0].help().contains("--docker"));
        assert!(problems[0].help().contains("pip install ziglang"));
    }

    #[test]
    fn packed_relative_relocations_need_glibc_2_36() {
        // -z pack-relative-relocs adds the GLIBC_ABI_DT_RELR version, which glibc 2.34 lacks.
        let report = inspect_fixture(fixture!("relr"));
        assert_eq!(report.glibc, Some(V2_36));
        assert_eq!(
            check(&report, Arch::X86_64),
            vec![Problem::GlibcTooNew { required: V2_36 }]
        );
    }

    #[test]
    fn static_binary_passes() {
        let report = inspect_fixture(fixture!("static"));
        assert_eq!(
            report,
            ElfReport {
                arch: Arch::X86_64,
                static_linked: true,
                interpreter: None,
                glibc: None,
                needed: vec![],
            }
        );
        assert_eq!(check(&report, Arch::X86_64), vec![]);
    }

    #[test]
    fn static_pie_is_an_executable_not_a_library() {
        // ET_DYN without PT_INTERP, like a shared library, but with DF_1_PIE.
        let report = inspect_fixture(fixture!("static-pie"));
        assert!(report.static_linked);
        assert_eq!(report.interpreter, None);
        assert_eq!(report.glibc, None);
        assert_eq!(check(&report, Arch::X86_64), vec![]);
    }

    #[test]
    fn shared_library_is_refused() {
        let error = inspect(Path::new(fixture!("libfoo.so.1"))).unwrap_err();
        assert!(
            matches!(&error, InspectError::SharedLibrary { soname: Some(s) } if s == "libfoo.so.1"),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "the file is a shared library (libfoo.so.1), not an executable \
             (no program interpreter, and not a static-pie)"
        );
        assert!(error.help().is_some_and(|help| help.contains("[[bin]]")));
    }

    #[test]
    fn a_librarys_architecture_is_read_from_its_header_alone() {
        assert_eq!(
            library_arch(Path::new(fixture!("libfoo.so.1"))),
            Some(Arch::X86_64)
        );
        assert_eq!(
            library_arch(Path::new(fixture!("hello-aarch64"))),
            Some(Arch::Arm64)
        );
        for not_one in [fixture!("script.sh"), fixture!("no-such-file")] {
            assert_eq!(library_arch(Path::new(not_one)), None, "{not_one}");
        }
        // The loader skips a 32-bit or big-endian build of the same name.
        let mut header: [u8; 20] = read_fixture(fixture!("libfoo.so.1"))[..20]
            .try_into()
            .unwrap();
        header[4] = elf::ELFCLASS32.0;
        assert_eq!(header_arch(&header), None);
        header[4] = elf::ELFCLASS64.0;
        header[5] = elf::ELFDATA2MSB.0;
        assert_eq!(header_arch(&header), None);
    }

    #[test]
    fn libraries_without_a_loader_are_refused() {
        // hello-x86_64 with its PT_INTERP turned into PT_NULL: still a PIE, needs libc.so.6, and
        // nothing would load it.
        let mut data = read_fixture(fixture!("hello-x86_64"));
        let mut patched = 0;
        for at in (64..64 + 56 * 16).step_by(56) {
            if data[at..at + 4] == elf::PT_INTERP.0.to_le_bytes() {
                data[at..at + 4].fill(0);
                patched += 1;
            }
        }
        assert_eq!(patched, 1);
        let error = inspect_bytes(&data).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the file is a malformed ELF: needs shared libraries (libc.so.6) but has no program \
             interpreter to load them"
        );
    }

    #[test]
    fn shell_script_is_refused_as_a_script() {
        let error = inspect(Path::new(fixture!("script.sh"))).unwrap_err();
        assert!(
            matches!(&error, InspectError::Script { interpreter } if interpreter == "/bin/sh"),
            "{error:?}"
        );
        assert!(error.to_string().contains("script"), "{error}");
        assert!(error.help().is_some());
    }

    #[test]
    fn library_missing_from_al2023_is_named() {
        let report = inspect_fixture(fixture!("needs-libfoo"));
        assert_eq!(report.needed, ["libfoo.so.1", "libc.so.6"]);
        let problems = check(&report, Arch::X86_64);
        assert_eq!(
            problems,
            vec![Problem::MissingLibraries(vec!["libfoo.so.1".to_owned()])]
        );
        assert_eq!(
            problems[0].message(),
            "the binary needs the shared library libfoo.so.1, which is not on provided.al2023"
        );
        assert_eq!(
            problems[0].help(),
            "link libfoo.so.1 statically (e.g. the crate's `vendored` feature), ship it in \
             the zip under lib/ (`--include lib/`), or declare the layer whose lib/ has it \
             (`--layer ZIP`)"
        );
        let mut checked = Checked {
            executable: PathBuf::from("bootstrap"),
            elf: report.clone(),
            problems: vec![
                Problem::MissingLibraries(vec!["libfoo.so.1".into(), "libbar.so.2".into()]),
                Problem::GlibcTooNew {
                    required: GlibcVersion {
                        major: 2,
                        minor: 39,
                    },
                },
            ],
        };
        checked.provided(&["libbar.so.2".to_owned()]);
        assert_eq!(
            checked.problems[0],
            Problem::MissingLibraries(vec!["libfoo.so.1".into()])
        );
        checked.provided(&["libfoo.so.1".to_owned()]);
        assert_eq!(checked.problems.len(), 1, "{:?}", checked.problems);
        assert!(matches!(checked.problems[0], Problem::GlibcTooNew { .. }));
    }

    #[test]
    fn foreign_program_interpreter_is_reported() {
        let report = inspect_fixture(fixture!("musl-interp"));
        assert_eq!(
            report.interpreter.as_deref(),
            Some("/lib/ld-musl-x86_64.so.1")
        );
        let problems = check(&report, Arch::X86_64);
        assert_eq!(
            problems,
            vec![Problem::WrongInterpreter {
                found: "/lib/ld-musl-x86_64.so.1".to_owned(),
                arch: Arch::X86_64
            }]
        );
        assert!(problems[0].message().contains("/lib/ld-musl-x86_64.so.1"));
        assert!(problems[0].help().contains("x86_64-unknown-linux-gnu"));
    }

    #[test]
    fn every_problem_is_reported_not_just_the_first() {
        let report = ElfReport {
            arch: Arch::Arm64,
            static_linked: false,
            interpreter: Some("/nix/store/xyz-glibc/lib/ld-linux-aarch64.so.1".to_owned()),
            glibc: Some(GlibcVersion {
                major: 2,
                minor: 39,
            }),
            needed: vec![
                "libc.so.6".to_owned(),
                "libpq.so.5".to_owned(),
                "libssl.so.1.1".to_owned(),
                "libpq.so.5".to_owned(),
            ],
        };
        let problems = check(&report, Arch::X86_64);
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert_eq!(
            problems[3],
            Problem::MissingLibraries(vec!["libpq.so.5".to_owned(), "libssl.so.1.1".to_owned()])
        );
        assert!(
            problems[3]
                .message()
                .contains("libraries libpq.so.5, libssl.so.1.1, which are")
        );
    }

    #[test]
    fn every_al2023_library_passes() {
        let report = ElfReport {
            arch: Arch::X86_64,
            static_linked: false,
            interpreter: Some("/lib64/ld-linux-x86-64.so.2".to_owned()),
            glibc: Some(AL2023_GLIBC),
            needed: AL2023_LIBRARIES.iter().map(|&lib| lib.to_owned()).collect(),
        };
        assert_eq!(check(&report, Arch::X86_64), vec![]);
    }

    #[test]
    fn truncated_and_empty_files_are_errors() {
        let hello = read_fixture(fixture!("hello-x86_64"));
        assert!(matches!(inspect_bytes(&[]), Err(InspectError::Empty)));
        // The first 100 bytes: a whole ELF header, program headers cut off.
        assert!(matches!(
            inspect_bytes(&hello[..100]),
            Err(InspectError::Malformed { .. })
        ));
        for len in [1, 4, 5, 6, 16, 63] {
            assert!(inspect_bytes(&hello[..len]).is_err(), "{len} bytes");
        }
    }

    #[test]
    fn every_prefix_of_every_fixture_is_handled_without_panic() {
        for path in ALL_FIXTURES {
            let data = read_fixture(path);
            for len in 0..data.len() {
                let _ = inspect_bytes(&data[..len]);
            }
        }
    }

    /// A poor man's fuzzer: the real fixtures with random bytes overwritten, random ranges
    /// zeroed or set to 0xff, and random truncations, from a fixed seed so failures reproduce.
    #[test]
    fn mutated_fixtures_never_panic() {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut outcomes = [0usize; 2];
        for path in ALL_FIXTURES {
            let original = read_fixture(path);
            for _ in 0..3000 {
                let mut data = original.clone();
                let len = data.len() as u64;
                match next() % 4 {
                    0 => {
                        for _ in 0..=(next() % 8) {
                            // Favour the first 4 KB: headers, dynamic table, version records.
                            let at = (next() % len.min(4096)) as usize;
                            data[at] = next() as u8;
                        }
                    }
                    1 => {
                        let at = (next() % len) as usize;
                        let end = (at + (next() % 64) as usize).min(data.len());
                        let fill = if next() % 2 == 0 { 0 } else { 0xff };
                        data[at..end].fill(fill);
                    }
                    2 => {
                        let at = (next() % len.min(1024)) as usize & !7;
                        let end = (at + 8).min(data.len());
                        data[at..end].copy_from_slice(&u64::MAX.to_le_bytes()[..end - at]);
                    }
                    _ => data.truncate((next() % len) as usize),
                }
                outcomes[usize::from(inspect_bytes(&data).is_ok())] += 1;
            }
        }
        // Both outcomes occur: the mutations reach past the header checks.
        assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
    }

    #[test]
    fn section_headers_are_not_needed() {
        // What sstrip does: drop the section header table. The loader never reads it.
        for path in [
            fixture!("hello-x86_64"),
            fixture!("glibc-2.36"),
            fixture!("needs-libfoo"),
        ] {
            let mut data = read_fixture(path);
            data[0x28..0x30].fill(0); // e_shoff
            data[0x3c..0x40].fill(0); // e_shnum, e_shstrndx
            assert_eq!(
                inspect_bytes(&data).ok(),
                Some(inspect_fixture(path)),
                "{path}"
            );
        }
    }

    #[test]
    fn header_fields_are_classified() {
        let hello = read_fixture(fixture!("hello-x86_64"));
        let with = |at: usize, bytes: &[u8]| {
            let mut data = hello.clone();
            data[at..at + bytes.len()].copy_from_slice(bytes);
            inspect_bytes(&data)
        };
        assert!(matches!(with(4, &[1]), Err(InspectError::Elf32)));
        assert!(matches!(with(4, &[9]), Err(InspectError::Malformed { .. })));
        assert!(matches!(with(5, &[2]), Err(InspectError::BigEndian)));
        assert!(matches!(with(6, &[0]), Err(InspectError::Malformed { .. })));
        let riscv = elf::EM_RISCV.0.to_le_bytes();
        let error = with(0x12, &riscv).unwrap_err();
        assert!(
            matches!(
                error,
                InspectError::UnsupportedMachine {
                    machine: 243,
                    name: "risc-v"
                }
            ),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "the file is an ELF for risc-v (e_machine 243); lambda runs only x86_64 and arm64"
        );
        let error = with(0x10, &elf::ET_REL.0.to_le_bytes()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the file is a relocatable object file (.o), not an executable"
        );
        assert!(matches!(
            with(0x10, &elf::ET_CORE.0.to_le_bytes()),
            Err(InspectError::NotExecutable { .. })
        ));
        // No program headers at all: e_phnum = 0.
        assert!(matches!(
            with(0x38, &[0, 0]),
            Err(InspectError::Malformed { .. })
        ));
    }

    #[test]
    fn other_formats_are_named() {
        let cases: &[(&[u8], &str)] = &[
            (
                &[0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1],
                "a mach-o (macos) binary",
            ),
            (
                &[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 2],
                "a universal mach-o (macos) binary",
            ),
            (b"MZ\x90\x00", "a windows (PE) executable"),
            (b"PK\x03\x04\x14\x00", "a zip archive"),
            (b"!<arch>\n", "a static library (.a archive)"),
            (b"hello world", "in an unrecognised format"),
        ];
        for &(data, format) in cases {
            let error = inspect_bytes(data).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!("the file is {format}, not an ELF executable")
            );
            assert!(error.help().is_some());
        }
    }

    #[test]
    fn unreadable_paths_are_errors() {
        let missing = Path::new(fixture!("does-not-exist"));
        let error = inspect(missing).unwrap_err();
        assert!(matches!(error, InspectError::Read { .. }), "{error:?}");
        assert!(error.to_string().starts_with("cannot read "), "{error}");
        assert!(error.help().is_none());

        let directory = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/elf"));
        let error = inspect(directory).unwrap_err();
        assert!(matches!(error, InspectError::NotAFile { .. }), "{error:?}");
    }

    /// Builds a DT_VERNEED table: one Verneed per library, each followed by its Vernaux records.
    fn verneed_table(libraries: &[&[(u32, u16)]]) -> Vec<u8> {
        let mut table = Vec::new();
        for (i, versions) in libraries.iter().enumerate() {
            let last_library = i + 1 == libraries.len();
            let size = 16 + 16 * versions.len() as u32;
            table.extend_from_slice(&1u16.to_le_bytes()); // vn_version
            table.extend_from_slice(&(versions.len() as u16).to_le_bytes()); // vn_cnt
            table.extend_from_slice(&0u32.to_le_bytes()); // vn_file
            table.extend_from_slice(&16u32.to_le_bytes()); // vn_aux
            table.extend_from_slice(&(if last_library { 0 } else { size }).to_le_bytes());
            for (j, &(name, flags)) in versions.iter().enumerate() {
                let last_version = j + 1 == versions.len();
                table.extend_from_slice(&0u32.to_le_bytes()); // vna_hash
                table.extend_from_slice(&flags.to_le_bytes()); // vna_flags
                table.extend_from_slice(&2u16.to_le_bytes()); // vna_other
                table.extend_from_slice(&name.to_le_bytes()); // vna_name
                table.extend_from_slice(&(if last_version { 0u32 } else { 16 }).to_le_bytes());
            }
        }
        table
    }

    #[test]
    fn version_needs_skip_weak_and_private_versions() {
        let strtab = b"\0GLIBC_2.2.5\0GLIBC_2.39\0GLIBC_PRIVATE\0GLIBC_2.28\0GCC_3.0\0";
        let weak = elf::VER_FLG_WEAK.0;
        let table = verneed_table(&[&[(1, 0), (13, weak), (24, 0)], &[(38, 0), (49, 0)]]);
        let names = required_versions(&table, strtab, Endianness::Little, Some(2)).unwrap();
        assert_eq!(
            names,
            [
                &b"GLIBC_2.2.5"[..],
                b"GLIBC_PRIVATE",
                b"GLIBC_2.28",
                b"GCC_3.0"
            ]
        );
        let highest = names
            .into_iter()
            .filter_map(GlibcVersion::from_version_name)
            .max();
        assert_eq!(
            highest,
            Some(GlibcVersion {
                major: 2,
                minor: 28
            })
        );

        // DT_VERNEEDNUM stops the walk even if vn_next goes on.
        let names = required_versions(&table, strtab, Endianness::Little, Some(1)).unwrap();
        assert_eq!(names.len(), 2);
    }

    #[test]
    fn version_needs_that_lie_are_errors() {
        let strtab = b"\0GLIBC_2.34\0";
        let mut table = verneed_table(&[&[(1, 0)]]);
        // vn_cnt says 65535 records follow; there is one.
        table[2..4].copy_from_slice(&u16::MAX.to_le_bytes());
        table[28..32].copy_from_slice(&16u32.to_le_bytes()); // vna_next: onwards
        assert!(required_versions(&table, strtab, Endianness::Little, None).is_err());
        // A name offset past the string table.
        let table = verneed_table(&[&[(1000, 0)]]);
        assert!(required_versions(&table, strtab, Endianness::Little, None).is_err());
        // vna_next = 1 over and over in a big table: bounded by MAX_VERSION_ENTRIES.
        let mut table = verneed_table(&[&[(1, 0)]]);
        table[2..4].copy_from_slice(&u16::MAX.to_le_bytes());
        table[28..32].copy_from_slice(&1u32.to_le_bytes());
        table.resize(1 << 20, 0);
        assert!(required_versions(&table, strtab, Endianness::Little, None).is_err());
    }

    #[test]
    fn glibc_versions_parse_and_order_numerically() {
        let v = |s| GlibcVersion::parse(s);
        assert_eq!(v("2.34"), Some(V2_34));
        assert_eq!(v("2.2.5"), Some(GlibcVersion { major: 2, minor: 2 }));
        for bad in [
            "", "2", "2.", ".34", "2.34.", "2.3.4.5", "2.x", "+2.34", "2. 34",
        ] {
            assert_eq!(v(bad), None, "{bad:?}");
        }
        assert!(v("2.4") < v("2.34"));
        assert!(V2_34 < V2_36);
        assert_eq!(V2_36.to_string(), "2.36");
        let name = |s: &str| GlibcVersion::from_version_name(s.as_bytes());
        assert_eq!(name("GLIBC_2.36"), Some(V2_36));
        assert_eq!(name("GLIBC_ABI_DT_RELR"), Some(V2_36));
        assert_eq!(name("GLIBC_PRIVATE"), None);
        assert_eq!(name("GLIBCXX_3.4.30"), None);
        assert_eq!(name("GCC_3.0"), None);
    }

    #[test]
    fn messages_are_one_lower_case_line() {
        let problems = [
            Problem::WrongArch {
                found: Arch::Arm64,
                expected: Arch::X86_64,
            },
            Problem::GlibcTooNew { required: V2_36 },
            Problem::MissingLibraries(vec!["libfoo.so.1".to_owned()]),
            Problem::WrongInterpreter {
                found: "/lib/ld-musl-aarch64.so.1".to_owned(),
                arch: Arch::Arm64,
            },
        ];
        for problem in &problems {
            for line in [problem.message(), problem.help()] {
                assert!(!line.contains('\n') && !line.contains("  "), "{line:?}");
                assert!(line.starts_with(|c: char| !c.is_uppercase()), "{line:?}");
            }
            assert_eq!(problem.to_string(), problem.message());
        }
        let errors = [
            InspectError::TooLarge { size: 1 << 30 },
            InspectError::Empty,
            InspectError::Script {
                interpreter: "/usr/bin/env bash".to_owned(),
            },
            InspectError::NotElf {
                format: "a zip archive",
            },
            InspectError::Elf32,
            InspectError::BigEndian,
            InspectError::UnsupportedMachine {
                machine: 3,
                name: "x86 (i386)",
            },
            InspectError::NotExecutable {
                kind: "a core dump".to_owned(),
            },
            InspectError::SharedLibrary { soname: None },
            InspectError::Malformed {
                reason: "no loadable segment".to_owned(),
            },
        ];
        for error in &errors {
            let help = error.help().unwrap_or_default();
            for line in [error.to_string(), help] {
                assert!(!line.contains('\n') && !line.contains("  "), "{line:?}");
                assert!(line.starts_with(|c: char| !c.is_uppercase()), "{line:?}");
            }
        }
    }

    #[test]
    fn report_serializes_with_lambda_names() {
        let report = inspect_fixture(fixture!("hello-aarch64"));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "arch": "arm64",
                "static_linked": false,
                "interpreter": "/lib/ld-linux-aarch64.so.1",
                "glibc": "2.34",
                "needed": ["libc.so.6"],
            })
        );
    }
}
