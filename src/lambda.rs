//! What Lambda and its `provided.al2023` runtime are, as far as this tool relies on it: names,
//! limits, glibc, the libraries it has. One place, each fact with its source, so the rest of the
//! crate says `lambda::BOOTSTRAP` rather than a literal. A leaf: it imports only `arch`.

use crate::arch::Arch;

/// Lambda runs the executable named `bootstrap` at the root of the function's code
/// (`/var/task`), else `/opt/bootstrap` from a layer, on the OS-only runtimes.
pub const BOOTSTRAP: &str = "bootstrap";

/// Where the function's code is extracted: `LAMBDA_TASK_ROOT`.
pub const TASK_ROOT: &str = "/var/task";

/// Where Lambda extracts the function's layers, in order, a later one's files replacing an
/// earlier one's.
pub const OPT_DIR: &str = "/opt";

/// The user a function runs as on Lambda (`sbx_user1051`): uid 993, gid 990, not root, so
/// `/var/task` and `/opt` are read-only to it and only `/tmp` is writable.
pub const SANDBOX_USER: (u32, u32) = (993, 990);

/// Lambda starts external extensions from `/opt/extensions/` of a layer: a zip's
/// `extensions/<name>` entry.
pub const EXTENSIONS_DIR: &str = "extensions/";

/// Where the dynamic loader finds a function's own libraries: `LD_LIBRARY_PATH` holds
/// `/var/task` and `/var/task/lib` (the zip's root and its `lib/`) and `/opt/lib` (a layer's
/// `lib/`), after AL2023's own directories (`/lib64`, `/usr/lib64`). AWS documents the variable
/// in "Defined runtime environment variables" of the Lambda developer guide.
pub const TASK_LIBRARY_DIRS: &[&str] = &["", "lib/"];
pub const LAYER_LIBRARY_DIRS: &[&str] = &["lib/"];

/// The file names a zip's entries put directly in one of `dirs` (`lib/libpq.so.5` in `lib/`):
/// what the loader finds there by a `DT_NEEDED` name.
pub fn libraries_in<'a>(names: impl IntoIterator<Item = &'a str>, dirs: &[&str]) -> Vec<String> {
    names
        .into_iter()
        .filter_map(|name| {
            dirs.iter().find_map(|dir| {
                name.strip_prefix(dir)
                    .filter(|file| !file.is_empty() && !file.contains('/'))
                    .map(str::to_owned)
            })
        })
        .collect()
}

/// The handler a function is created with on the OS-only runtimes (`_HANDLER`).
pub const DEFAULT_HANDLER: &str = BOOTSTRAP;

/// Lambda accepts at most 50 MB (52,428,800 bytes) of zip in a direct upload; a larger one has
/// to go through S3.
pub const DIRECT_UPLOAD_LIMIT: u64 = 50 * 1024 * 1024;

/// Lambda refuses a function whose code, layers included, is over 250 MB (262,144,000 bytes)
/// unzipped.
pub const UNZIPPED_LIMIT: u64 = 250 * 1024 * 1024;

/// A synchronous invocation's request payload: at most 6 MB (6,291,456 bytes).
pub const MAX_EVENT_BYTES: usize = 6 * 1024 * 1024;

/// What the runtime may post as a response: 6 MiB + 100 bytes (rapid's
/// `interop.MaxPayloadSize`, 6,291,556 bytes).
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024 + 100;

/// A streamed response may reach 20 MB (20,971,520 bytes), a soft limit ("Lambda quotas":
/// "Invocation payload (request and response): ... 20 MB for streamed responses").
pub const MAX_STREAMED_BYTES: u64 = 20 * 1024 * 1024;

/// glibc of `provided.al2023`. AL2023 keeps glibc 2.34 for its whole life, patching it in place
/// (`glibc-2.34-231.amzn2023` in the 2026 container updates, docker-library/official-images
/// #21363); AL2 had 2.26. A binary that requires a newer `GLIBC_x.y` symbol version dies at
/// start with "version `GLIBC_2.xx' not found".
pub const GLIBC: (u32, u32) = (2, 34);

/// A CPU every Lambda host of the architecture has, as rustc's `-C target-cpu` names it, for a
/// build that pins one: arm64 functions run on AWS Graviton2 ("Lambda instruction set
/// architectures" in the developer guide), whose cores are Arm Neoverse N1; x86_64 hosts have
/// AVX2 ("AWS Lambda now supports AVX2", 2020), the `x86-64-v3` level. `native`, the build
/// machine's own CPU, may have instructions these lack: the function then dies with SIGILL.
pub fn cpu(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "x86-64-v3",
        Arch::Arm64 => "neoverse-n1",
    }
}

/// The libraries `provided.al2023` has, as the `DT_NEEDED` sonames that name them.
///
/// Where this list comes from:
/// - `provided.al2023` is the AL2023 *minimal* container image plus the Lambda runtime pieces
///   (AWS, aws/aws-lambda-base-images#92: "based on the AL2023-minimal image ... uses microdnf as
///   the package manager"). Its packages are glibc 2.34 (+ glibc-minimal-langpack), libgcc,
///   openssl-libs 3 and what microdnf pulls in (an `rpm -qa` of an AL2023-minimal based Lambda
///   image is in amazonlinux/amazon-linux-2023#585).
/// - glibc 2.34: `libc.so.6` and its satellites. Since 2.34, libpthread, libdl, librt and
///   libutil are empty stubs inside glibc kept for old binaries, so they are always there;
///   `libanl.so.1`, `libresolv.so.2` and `libBrokenLocale.so.1` ship in the same package; the
///   loaders are `ld-linux-x86-64.so.2` and `ld-linux-aarch64.so.1`.
/// - libgcc: `libgcc_s.so.1`, which Rust's std links for unwinding.
/// - OpenSSL 3 (`libssl.so.3`, `libcrypto.so.3`), which our design doc relies on.
/// - `libz.so.1` (decided: included). zlib is a hard dependency of microdnf's stack: `rpm-libs`,
///   `libcurl-minimal` and Fedora-built `openssl-libs` all link `libz.so.1`, so it is present
///   wherever microdnf and OpenSSL 3 are. Crates that use `libz-sys` without its `static`
///   feature link it dynamically, and refusing them would be a false alarm.
/// - `libstdc++.so.6` (decided: included). microdnf's `libdnf` is written in C++ and links it,
///   and AL2023 ships updates of it in its container images (`libstdc++-11.3.1` in 2023,
///   `libstdc++-14.2.1` in 2025: docker-library/official-images #14357, #18759). Not checked:
///   `GLIBCXX_3.4.x` versions. A C++ dependency built with a newer GCC than the image's can
///   still fail with "GLIBCXX_3.4.xx not found"; `--docker` builds against the image's own.
/// - Not included, although present today as microdnf's dependencies: libcurl, libxml2,
///   glib2, liblzma, libzstd, libbz2 and the like. AWS does not promise them and they may go;
///   a function should ship them under `lib/` or link them statically.
pub const AL2023_LIBRARIES: &[&str] = &[
    // glibc 2.34
    "libc.so.6",
    "libm.so.6",
    "libdl.so.2",
    "libpthread.so.0",
    "librt.so.1",
    "libutil.so.1",
    "libresolv.so.2",
    "libanl.so.1",
    "libBrokenLocale.so.1",
    "ld-linux-x86-64.so.2",
    "ld-linux-aarch64.so.1",
    // libgcc
    "libgcc_s.so.1",
    // libstdc++
    "libstdc++.so.6",
    // openssl-libs 3
    "libssl.so.3",
    "libcrypto.so.3",
    // zlib
    "libz.so.1",
];

/// The program interpreter (`PT_INTERP`) `gcc` and `rustc` write for a `-gnu` target.
pub fn loader_path(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "/lib64/ld-linux-x86-64.so.2",
        Arch::Arm64 => "/lib/ld-linux-aarch64.so.1",
    }
}

/// Every path of glibc's loader on AL2023 for each architecture: [`loader_path`], and the same
/// file through AL2023's merged `/usr` (`/lib` and `/lib64` are symlinks into `/usr`).
pub fn loader_paths(arch: Arch) -> &'static [&'static str] {
    match arch {
        Arch::X86_64 => &[
            "/lib64/ld-linux-x86-64.so.2",
            "/usr/lib64/ld-linux-x86-64.so.2",
        ],
        Arch::Arm64 => &[
            "/lib/ld-linux-aarch64.so.1",
            "/lib64/ld-linux-aarch64.so.1",
            "/usr/lib/ld-linux-aarch64.so.1",
            "/usr/lib64/ld-linux-aarch64.so.1",
        ],
    }
}
