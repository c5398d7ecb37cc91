//! Lambda's two architectures and the names each tool gives them.

use std::fmt;

/// An architecture Lambda runs functions on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Arch {
    /// Lambda's default architecture.
    #[default]
    X86_64,
    /// Graviton.
    Arm64,
}

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Arm64];

    /// The names a user may type for it: Lambda's first, then the names Docker, Debian and Rust
    /// give it, so whichever a user types works.
    pub fn names(self) -> &'static [&'static str] {
        match self {
            Arch::X86_64 => &["x86_64", "amd64", "x86-64"],
            Arch::Arm64 => &["arm64", "aarch64"],
        }
    }

    /// The architecture one of its [`names`](Arch::names) names (exactly, case included).
    pub fn from_name(name: &str) -> Option<Arch> {
        Arch::ALL.into_iter().find(|a| a.names().contains(&name))
    }

    /// A Rust target triple that Lambda runs, read as the architecture; this tool always builds
    /// for glibc (provided.al2023's 2.34), so a musl or non-Linux triple is refused, naming the
    /// `--arch` to use instead.
    pub fn from_lambda_target(triple: &str) -> Result<Arch, String> {
        if let Some(arch) = Arch::ALL.into_iter().find(|a| a.triple() == triple) {
            return Ok(arch);
        }
        let arch = match triple.split('-').next() {
            Some("aarch64") => "arm64",
            _ => "x86_64",
        };
        Err(format!(
            "`{triple}` is not a target this tool builds: it builds glibc binaries for \
             provided.al2023 (`x86_64-unknown-linux-gnu` or `aarch64-unknown-linux-gnu`); \
             use `--arch {arch}`"
        ))
    }

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

    /// The architecture of a container image's platform (`linux/amd64`, `linux/arm64`), as
    /// the OCI image spec names it after Go's `GOARCH`.
    pub fn oci_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
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
        for (name, arch) in [
            ("x86_64", Arch::X86_64),
            ("amd64", Arch::X86_64),
            ("x86-64", Arch::X86_64),
            ("arm64", Arch::Arm64),
            ("aarch64", Arch::Arm64),
        ] {
            assert_eq!(Arch::from_name(name), Some(arch), "{name}");
        }
        assert_eq!(Arch::from_name("i686"), None);
        assert_eq!(
            Arch::from_name("ARM64"),
            None,
            "exact, as the flag reads it"
        );
    }
}
