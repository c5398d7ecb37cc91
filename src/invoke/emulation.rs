//! Whether a `bootstrap` needs qemu-user here, and which: a decision over facts passed in, so
//! it holds on every host (`doctor` asks it on macOS and Windows too), apart from the running
//! function, which is Unix-only.

use std::path::{Path, PathBuf};

use crate::arch::Arch;
use crate::inspect::ElfReport;
use crate::invoke::error::InvokeError;
use crate::invoke::libraries::debian_package;

/// How a foreign-architecture `bootstrap` runs here: under qemu-user, called directly (binfmt
/// need not be set up), with the cross C library as its sysroot when it is dynamically linked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emulator {
    pub arch: Arch,
    pub program: PathBuf,
    pub sysroot: Option<PathBuf>,
}

/// The qemu-user programs for `arch` (the static build first: it works without binfmt and in
/// any sysroot), the Debian package that has them, and the sysroot where Debian's cross
/// packages install the C library.
fn qemu_for(arch: Arch) -> ([&'static str; 2], &'static str, &'static str) {
    match arch {
        Arch::Arm64 => (
            ["qemu-aarch64-static", "qemu-aarch64"],
            "qemu-user-static",
            "/usr/aarch64-linux-gnu",
        ),
        Arch::X86_64 => (
            ["qemu-x86_64-static", "qemu-x86_64"],
            "qemu-user-static",
            "/usr/x86_64-linux-gnu",
        ),
    }
}

/// Decides whether `bootstrap` needs qemu: only when it is an ELF for Lambda's other
/// architecture than this machine's. Anything else (a script, a broken file) is started as it
/// is, so that it fails as it would on Lambda. `chosen_sysroot` is the user's (qemu's own
/// `QEMU_LD_PREFIX`), in place of the cross packages'.
pub fn emulation(
    elf: Option<&ElfReport>,
    host: Option<Arch>,
    chosen_sysroot: Option<&Path>,
    find_program: impl Fn(&str) -> Option<PathBuf>,
    dir_exists: impl Fn(&Path) -> bool,
) -> Result<Option<Emulator>, InvokeError> {
    let Some(elf) = elf else { return Ok(None) };
    if host.is_none_or(|host| host == elf.arch) {
        return Ok(None);
    }
    let (programs, package, sysroot) = qemu_for(elf.arch);
    let sysroot = chosen_sysroot.unwrap_or(Path::new(sysroot));
    let program =
        programs
            .iter()
            .find_map(|name| find_program(name))
            .ok_or(InvokeError::NoEmulator {
                arch: elf.arch,
                program: programs[0],
                package,
            })?;
    let sysroot = if elf.static_linked {
        None
    } else if dir_exists(sysroot) {
        Some(sysroot.to_path_buf())
    } else {
        return Err(InvokeError::NoSysroot {
            arch: elf.arch,
            sysroot: sysroot.into(),
            package: debian_package("libc.so.6", elf.arch, true).unwrap_or_default(),
        });
    };
    Ok(Some(Emulator {
        arch: elf.arch,
        program,
        sysroot,
    }))
}
