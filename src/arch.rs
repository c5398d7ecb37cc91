//! Lambda's two architectures and the names each tool gives them.

use std::fmt;

/// An architecture Lambda runs functions on. The aliases are the names Docker, Debian and
/// Rust give them, so whichever a user types works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, clap::ValueEnum)]
pub enum Arch {
    /// Lambda's default architecture.
    #[default]
    #[value(name = "x86_64", alias = "amd64", alias = "x86-64")]
    X86_64,
    /// Graviton.
    #[value(name = "arm64", alias = "aarch64")]
    Arm64,
}

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Arm64];

    /// The Rust target triple. `-gnu` because `provided.al2023` ships glibc 2.34.
    pub fn triple(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-gnu",
            Arch::Arm64 => "aarch64-unknown-linux-gnu",
        }
    }

    /// The name Lambda's API uses (`--architectures x86_64|arm64`).
    pub fn lambda_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "arm64",
        }
    }

    /// The prefix of Debian's (and most distributions') GNU cross toolchain for this target.
    pub fn gnu_prefix(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-linux-gnu-",
            Arch::Arm64 => "aarch64-linux-gnu-",
        }
    }

    /// The ELF `e_machine` value of binaries for this architecture.
    pub fn elf_machine(self) -> u16 {
        match self {
            Arch::X86_64 => object::elf::EM_X86_64.0,
            Arch::Arm64 => object::elf::EM_AARCH64.0,
        }
    }

    pub fn from_elf_machine(machine: u16) -> Option<Arch> {
        Arch::ALL.into_iter().find(|a| a.elf_machine() == machine)
    }

    /// The architecture this program was compiled for, if Lambda runs it.
    pub fn host() -> Option<Arch> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" => Some(Arch::Arm64),
            _ => None,
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.lambda_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_elf_machine() {
        for arch in Arch::ALL {
            assert_eq!(Arch::from_elf_machine(arch.elf_machine()), Some(arch));
        }
        assert_eq!(Arch::from_elf_machine(object::elf::EM_386.0), None);
        assert_eq!(Arch::X86_64.triple(), "x86_64-unknown-linux-gnu");
        assert_eq!(Arch::Arm64.lambda_name(), "arm64");
    }

    #[test]
    fn aliases_parse() {
        use clap::ValueEnum;
        for (name, arch) in [
            ("x86_64", Arch::X86_64),
            ("amd64", Arch::X86_64),
            ("x86-64", Arch::X86_64),
            ("arm64", Arch::Arm64),
            ("aarch64", Arch::Arm64),
        ] {
            assert_eq!(Arch::from_str(name, false), Ok(arch), "{name}");
        }
        assert!(Arch::from_str("i686", false).is_err());
    }
}
