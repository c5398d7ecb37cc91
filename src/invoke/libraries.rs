//! Whether every library a `bootstrap` (or a layer's extension) needs, its `DT_NEEDED` names, is
//! found in what the run provides, decided before it starts: in the function's own directories
//! (the task root, its `lib/`, the layers' `lib/`, as Lambda's `LD_LIBRARY_PATH` has them), and
//! for provided.al2023's own libraries, in what stands for its directories here (qemu's sysroot
//! for the other architecture, this machine's directories for its own). Without this check, a
//! library missing here ends the process at its start with exit 127, reported as a crash of the
//! function. A decision over facts passed in, as the choice of qemu is, so that it is tested
//! on every host; the running function asks it (container mode does not: the image has
//! provided.al2023's libraries).

use std::path::{Path, PathBuf};

use crate::arch::Arch;
use crate::inspect::{ElfReport, Problem};
use crate::invoke::error::InvokeError;
use crate::lambda::{AL2023_LIBRARIES, LAYER_LIBRARY_DIRS, TASK_LIBRARY_DIRS};

/// Where the loader of a run looks for the libraries of an executable of one architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPath {
    pub arch: Arch,
    /// The task root, its `lib/`, and `/opt/lib`: the function's own libraries, on Lambda too.
    pub own: Vec<PathBuf>,
    /// What stands for provided.al2023's `/lib64` and `/usr/lib64` here.
    pub system: Vec<PathBuf>,
    /// qemu's sysroot (`-L`) when the executable runs under qemu; `None`: this machine's own.
    pub sysroot: Option<PathBuf>,
}

impl SearchPath {
    /// The search path of an executable of `arch` in this run: `task_root` and `opt` extracted,
    /// under qemu with `sysroot` or (`None`) as a process of this machine.
    pub fn new(task_root: &Path, opt: &Path, arch: Arch, sysroot: Option<&Path>) -> SearchPath {
        let own = TASK_LIBRARY_DIRS
            .iter()
            .map(|dir| task_root.join(dir))
            .chain(LAYER_LIBRARY_DIRS.iter().map(|dir| opt.join(dir)))
            .collect();
        SearchPath {
            arch,
            own,
            system: system_dirs(arch, sysroot),
            sysroot: sysroot.map(Path::to_path_buf),
        }
    }
}

/// The directories where glibc's loader finds the C library's side of a run: the `/lib64` and
/// `/usr/lib64` of Lambda's `LD_LIBRARY_PATH`, then the loader's own defaults (Debian's
/// multiarch directories, `/lib`, `/usr/lib`). Under qemu each is looked for in the sysroot
/// first, then on this machine, as qemu-user's `-L` opens a path.
fn system_dirs(arch: Arch, sysroot: Option<&Path>) -> Vec<PathBuf> {
    let multiarch = arch.gnu_prefix().trim_end_matches('-');
    let dirs = [
        "/lib64".to_owned(),
        "/usr/lib64".to_owned(),
        format!("/lib/{multiarch}"),
        format!("/usr/lib/{multiarch}"),
        "/lib".to_owned(),
        "/usr/lib".to_owned(),
    ];
    let mut found: Vec<PathBuf> = match sysroot {
        Some(root) => dirs
            .iter()
            .map(|dir| root.join(dir.trim_start_matches('/')))
            .collect(),
        None => Vec::new(),
    };
    found.extend(dirs.iter().map(PathBuf::from));
    found
}

/// What a run cannot find of the libraries an executable needs, in its `DT_NEEDED` order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Unfound {
    /// Not on provided.al2023, and neither in the function's code nor in its layers: Lambda
    /// could not load them either.
    pub not_on_lambda: Vec<String>,
    /// provided.al2023 has them; what stands for it here does not.
    pub not_here: Vec<String>,
}

/// Looks for each of `needed` as the loader does: a file of that name in one of the
/// directories, of the executable's architecture (`library_arch` reads it: the loader skips a
/// file of another and searches on).
pub fn unfound(
    needed: &[String],
    search: &SearchPath,
    library_arch: impl Fn(&Path) -> Option<Arch>,
) -> Unfound {
    let found_in = |dirs: &[PathBuf], library: &str| {
        dirs.iter()
            .any(|dir| library_arch(&dir.join(library)) == Some(search.arch))
    };
    let mut unfound = Unfound::default();
    for library in needed {
        let list = if found_in(&search.own, library) {
            continue;
        } else if !AL2023_LIBRARIES.contains(&library.as_str()) {
            &mut unfound.not_on_lambda
        } else if !found_in(&search.system, library) {
            &mut unfound.not_here
        } else {
            continue;
        };
        if !list.contains(library) {
            list.push(library.clone());
        }
    }
    unfound
}

/// Refuses an executable (`name`, as the function sees it: `bootstrap`, `/opt/extensions/x`)
/// that needs a library this run does not provide: one provided.al2023 lacks, as the build
/// refuses it; one it has, naming the package that provides it here.
pub fn check(
    name: &str,
    elf: &ElfReport,
    search: &SearchPath,
    library_arch: impl Fn(&Path) -> Option<Arch>,
) -> Result<(), InvokeError> {
    let Unfound {
        not_on_lambda,
        not_here,
    } = unfound(&elf.needed, search, library_arch);
    if !not_on_lambda.is_empty() {
        return Err(InvokeError::NotOnLambda {
            executable: name.to_owned(),
            problem: Problem::MissingLibraries(not_on_lambda),
        });
    }
    if not_here.is_empty() {
        return Ok(());
    }
    let cross = search.sysroot.is_some();
    Err(InvokeError::NotHere {
        executable: name.to_owned(),
        arch: search.arch,
        libraries: not_here
            .into_iter()
            .map(|library| {
                let package = debian_package(&library, search.arch, cross);
                (library, package)
            })
            .collect(),
        sysroot: search.sysroot.clone(),
    })
}

/// The Debian and Ubuntu package that puts one of provided.al2023's libraries where a run
/// looks: with `cross` (under qemu), a `-cross` package, which installs into the sysroot
/// `/usr/<arch>-linux-gnu` (`libgcc-s1-arm64-cross` for arm64's `libgcc_s.so.1`); without, the
/// system's own. OpenSSL and zlib have no `-cross` package: `None`, and `--docker` is the way.
pub fn debian_package(library: &str, arch: Arch, cross: bool) -> Option<String> {
    let (package, has_cross) = match library {
        "libgcc_s.so.1" => ("libgcc-s1", true),
        "libstdc++.so.6" => ("libstdc++6", true),
        "libssl.so.3" | "libcrypto.so.3" => ("libssl3", false),
        "libz.so.1" => ("zlib1g", false),
        // The rest of provided.al2023's libraries are glibc's.
        _ => ("libc6", true),
    };
    let debian_arch = match arch {
        Arch::X86_64 => "amd64",
        Arch::Arm64 => "arm64",
    };
    match cross {
        false => Some(package.to_owned()),
        true => has_cross.then(|| format!("{package}-{debian_arch}-cross")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A run's files as a map from path to the architecture of the library there.
    fn files(entries: &[(&str, Arch)]) -> impl Fn(&Path) -> Option<Arch> {
        let map: BTreeMap<PathBuf, Arch> = entries
            .iter()
            .map(|(path, arch)| (PathBuf::from(path), *arch))
            .collect();
        move |path| map.get(path).copied()
    }

    fn elf(arch: Arch, needed: &[&str]) -> ElfReport {
        ElfReport {
            arch,
            static_linked: needed.is_empty(),
            interpreter: None,
            glibc: None,
            needed: needed.iter().map(|lib| lib.to_string()).collect(),
        }
    }

    fn arm64_search(sysroot: &str) -> SearchPath {
        SearchPath::new(
            Path::new("/task"),
            Path::new("/opt"),
            Arch::Arm64,
            Some(Path::new(sysroot)),
        )
    }

    const CROSS_LIBC: &[(&str, Arch)] = &[
        ("/usr/aarch64-linux-gnu/lib/libc.so.6", Arch::Arm64),
        ("/usr/aarch64-linux-gnu/lib/libm.so.6", Arch::Arm64),
        (
            "/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1",
            Arch::Arm64,
        ),
    ];

    #[test]
    fn the_search_path_is_the_functions_own_then_the_sysroot_then_this_machine() {
        let search = arm64_search("/usr/aarch64-linux-gnu");
        assert_eq!(
            search.own,
            [
                Path::new("/task/"),
                Path::new("/task/lib/"),
                Path::new("/opt/lib/")
            ]
        );
        // As paths, not strings: Windows joins with `\`.
        let system: Vec<PathBuf> = [
            "/usr/aarch64-linux-gnu/lib64",
            "/usr/aarch64-linux-gnu/usr/lib64",
            "/usr/aarch64-linux-gnu/lib/aarch64-linux-gnu",
            "/usr/aarch64-linux-gnu/usr/lib/aarch64-linux-gnu",
            "/usr/aarch64-linux-gnu/lib",
            "/usr/aarch64-linux-gnu/usr/lib",
            "/lib64",
            "/usr/lib64",
            "/lib/aarch64-linux-gnu",
            "/usr/lib/aarch64-linux-gnu",
            "/lib",
            "/usr/lib",
        ]
        .into_iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(search.system, system);
        // This machine's own: the same directories, unprefixed.
        let host = SearchPath::new(Path::new("/t"), Path::new("/o"), Arch::X86_64, None);
        assert_eq!(host.system.len(), 6);
        assert!(
            host.system
                .contains(&PathBuf::from("/usr/lib/x86_64-linux-gnu"))
        );
    }

    #[test]
    fn libgcc_s_missing_from_the_sysroot_names_its_cross_package_and_docker() {
        let needed = elf(Arch::Arm64, &["libgcc_s.so.1", "libm.so.6", "libc.so.6"]);
        let search = arm64_search("/usr/aarch64-linux-gnu");
        let err = check("bootstrap", &needed, &search, files(CROSS_LIBC)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`bootstrap` needs libgcc_s.so.1, which provided.al2023 has but the arm64 \
             sysroot qemu runs it with (`/usr/aarch64-linux-gnu`) lacks"
        );
        let help = err.help().unwrap();
        assert!(
            help.contains("`apt-get install libgcc-s1-arm64-cross`"),
            "{help}"
        );
        assert!(help.contains("`--docker`"), "{help}");

        // With it, in the sysroot or shipped by the function or a layer, it runs.
        let mut with = CROSS_LIBC.to_vec();
        with.push(("/usr/aarch64-linux-gnu/lib/libgcc_s.so.1", Arch::Arm64));
        check("bootstrap", &needed, &search, files(&with)).unwrap();
        for own in ["/task/lib/libgcc_s.so.1", "/opt/lib/libgcc_s.so.1"] {
            let mut with = CROSS_LIBC.to_vec();
            with.push((own, Arch::Arm64));
            check("bootstrap", &needed, &search, files(&with)).unwrap();
        }
    }

    #[test]
    fn a_library_of_the_other_architecture_is_not_found() {
        // qemu falls back to this machine's /lib64, where x86_64's libgcc_s is: the loader
        // skips it, and so does the check.
        let needed = elf(Arch::Arm64, &["libgcc_s.so.1", "libc.so.6"]);
        let mut with = CROSS_LIBC.to_vec();
        with.push(("/lib64/libgcc_s.so.1", Arch::X86_64));
        with.push(("/task/lib/libgcc_s.so.1", Arch::X86_64));
        let search = arm64_search("/usr/aarch64-linux-gnu");
        assert_eq!(
            unfound(&needed.needed, &search, files(&with)).not_here,
            ["libgcc_s.so.1"]
        );
        // This machine's arm64 multiarch library is what qemu opens when the sysroot lacks it.
        with.push(("/usr/lib/aarch64-linux-gnu/libgcc_s.so.1", Arch::Arm64));
        assert_eq!(
            unfound(&needed.needed, &search, files(&with)),
            Unfound::default()
        );
    }

    #[test]
    fn a_library_provided_al2023_lacks_is_refused_as_the_build_refuses_it() {
        // Found on this machine is not enough: Lambda does not have it.
        let needed = elf(Arch::X86_64, &["libc.so.6", "libpq.so.5", "libpq.so.5"]);
        let search = SearchPath::new(Path::new("/t"), Path::new("/o"), Arch::X86_64, None);
        let host = files(&[
            ("/lib/x86_64-linux-gnu/libc.so.6", Arch::X86_64),
            ("/usr/lib/x86_64-linux-gnu/libpq.so.5", Arch::X86_64),
        ]);
        let err = check("bootstrap", &needed, &search, &host).unwrap_err();
        let problem = Problem::MissingLibraries(vec!["libpq.so.5".to_owned()]);
        assert_eq!(
            err.to_string(),
            format!(
                "`bootstrap` would not run on provided.al2023: {}",
                problem.message()
            )
        );
        assert_eq!(err.help(), Some(problem.help()));
        // Shipped in the zip's lib/, it is the function's own.
        let shipped = files(&[
            ("/lib/x86_64-linux-gnu/libc.so.6", Arch::X86_64),
            ("/t/lib/libpq.so.5", Arch::X86_64),
        ]);
        check("bootstrap", &needed, &search, shipped).unwrap();
    }

    #[test]
    fn this_machines_missing_libraries_name_its_own_packages() {
        let needed = elf(
            Arch::X86_64,
            &["libssl.so.3", "libcrypto.so.3", "libc.so.6"],
        );
        let search = SearchPath::new(Path::new("/t"), Path::new("/o"), Arch::X86_64, None);
        let host = files(&[("/usr/lib64/libc.so.6", Arch::X86_64)]);
        let err = check("/opt/extensions/x", &needed, &search, host).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`/opt/extensions/x` needs libssl.so.3, libcrypto.so.3, which provided.al2023 has \
             but this machine lacks"
        );
        let help = err.help().unwrap();
        assert!(help.contains("`apt-get install libssl3`"), "{help}");
    }

    #[test]
    fn what_has_no_cross_package_is_said_so() {
        let needed = elf(Arch::Arm64, &["libssl.so.3", "libgcc_s.so.1", "libc.so.6"]);
        let search = arm64_search("/usr/aarch64-linux-gnu");
        let err = check("bootstrap", &needed, &search, files(CROSS_LIBC)).unwrap_err();
        let help = err.help().unwrap();
        assert!(
            help.contains("`apt-get install libgcc-s1-arm64-cross`"),
            "{help}"
        );
        assert!(
            help.contains("no package that puts libssl.so.3 there"),
            "{help}"
        );
        assert!(help.contains("`--docker`"), "{help}");
    }

    #[test]
    fn static_executables_need_nothing() {
        let search = arm64_search("/nowhere");
        check("bootstrap", &elf(Arch::Arm64, &[]), &search, files(&[])).unwrap();
    }

    #[test]
    fn every_al2023_library_has_a_package_here() {
        for library in AL2023_LIBRARIES {
            for arch in Arch::ALL {
                assert!(debian_package(library, arch, false).is_some(), "{library}");
            }
        }
        assert_eq!(
            debian_package("libgcc_s.so.1", Arch::Arm64, true).as_deref(),
            Some("libgcc-s1-arm64-cross")
        );
        assert_eq!(
            debian_package("ld-linux-aarch64.so.1", Arch::Arm64, true).as_deref(),
            Some("libc6-arm64-cross")
        );
        assert_eq!(
            debian_package("libm.so.6", Arch::X86_64, true).as_deref(),
            Some("libc6-amd64-cross")
        );
        assert_eq!(debian_package("libz.so.1", Arch::Arm64, true), None);
    }
}
