//! What Lambda and its `provided.al2023` runtime are, as far as this tool relies on it: names,
//! paths, limits, timeouts, the Runtime API, glibc, the libraries it has. One place, each fact
//! with its source, so the rest of the crate says `lambda::BOOTSTRAP` rather than a literal
//! (`tests/it/architecture.rs` checks that the paths, the API's version and the zip's name are
//! written nowhere else). A leaf: it imports only `arch`.

use std::time::Duration;

use crate::arch::Arch;

/// Facts as literals, for the texts that `concat!` builds at compile time (help texts, fixed
/// messages): `lambda::literal!(task_root)`. The constants below are the same values.
macro_rules! literal {
    (task_root) => {
        "/var/task"
    };
    (opt) => {
        "/opt"
    };
    (zip_name) => {
        "lambda.zip"
    };
    (runtime_api_version) => {
        "2018-06-01"
    };
}
pub(crate) use literal;

/// Lambda runs the executable named `bootstrap` at the root of the function's code
/// (`/var/task`), else `/opt/bootstrap` from a layer, on the OS-only runtimes.
pub const BOOTSTRAP: &str = "bootstrap";

/// The `#!` interpreters provided.al2023 has for a script `bootstrap`: it is built on Amazon
/// Linux 2023 minimal, whose shell is bash (`/bin/sh` is bash), with coreutils' `env`; it has
/// no Python, Node or Perl. AWS's custom-runtime tutorial runs a `#!/bin/sh` bootstrap
/// ("Tutorial: Building a custom runtime", Lambda developer guide).
pub const SCRIPT_SHELLS: &[&str] = &["/bin/sh", "/bin/bash", "/usr/bin/sh", "/usr/bin/bash"];

/// Whether provided.al2023 can run a script whose `#!` line is `interpreter` (its words after
/// `#!`): one of [`SCRIPT_SHELLS`], or `env` naming `sh` or `bash`.
pub fn runs_script(interpreter: &str) -> bool {
    let mut words = interpreter.split_whitespace();
    match words.next() {
        Some("/usr/bin/env" | "/bin/env") => words
            .find(|word| !word.starts_with('-'))
            .is_some_and(|program| program == "sh" || program == "bash"),
        Some(program) => SCRIPT_SHELLS.contains(&program),
        None => false,
    }
}

/// Where the function's code is extracted: `LAMBDA_TASK_ROOT`.
pub const TASK_ROOT: &str = literal!(task_root);

/// Where the layers are extracted, in order, a later layer's file replacing an earlier one's.
pub const OPT: &str = literal!(opt);

/// What the tool writes with `--zip`, named as `mix lambda.build` names it, and as AWS's
/// examples name a function's code (`--zip-file fileb://lambda.zip`).
pub const ZIP_NAME: &str = literal!(zip_name);

/// The user a function runs as on Lambda (`sbx_user1051`): uid 993, gid 990, not root, so
/// `/var/task` and `/opt` are read-only to it and only `/tmp` is writable.
pub const SANDBOX_USER: (u32, u32) = (993, 990);

/// Lambda starts external extensions from `/opt/extensions/` of a layer: a zip's
/// `extensions/<name>` entry.
pub const EXTENSIONS_DIR: &str = "extensions/";

/// [`EXTENSIONS_DIR`] as the function sees it.
pub const EXTENSIONS_PATH: &str = "/opt/extensions";

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

/// A `Handler` as Lambda's `CreateFunction` accepts it: at most 128 characters, no whitespace.
pub const MAX_HANDLER_CHARS: usize = 128;

/// A new function's memory (128 MB) and timeout (3 s), Lambda's defaults in `CreateFunction`.
pub const DEFAULT_MEMORY_MB: u32 = 128;
pub const DEFAULT_TIMEOUT_SECS: u32 = 3;

/// `AWS_LAMBDA_FUNCTION_VERSION`, and `START ... Version:`, of an unpublished function.
pub const LATEST_VERSION: &str = "$LATEST";

/// A function's logging configuration ("Configuring advanced logging controls for Lambda
/// functions" in the developer guide): its log format, `Text` (the default) or `JSON`, reaches
/// the runtime as `AWS_LAMBDA_LOG_FORMAT`; with JSON, its application log level (`INFO` unless
/// configured; a level is accepted only with JSON) as `AWS_LAMBDA_LOG_LEVEL`. `lambda_runtime`'s
/// `tracing::init_default_subscriber` reads both.
pub const LOG_FORMAT_VARIABLE: &str = "AWS_LAMBDA_LOG_FORMAT";
pub const LOG_LEVEL_VARIABLE: &str = "AWS_LAMBDA_LOG_LEVEL";
pub const LOG_FORMAT_TEXT: &str = "Text";
pub const LOG_FORMAT_JSON: &str = "JSON";
/// The application log levels, most detailed first.
pub const LOG_LEVELS: &[&str] = &["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
pub const DEFAULT_LOG_LEVEL: &str = "INFO";

/// With the JSON log format, Lambda writes its own lines as JSON objects too, `{"time",
/// "type", "record"}` as in the Telemetry API's schema: START is `platform.start` (record:
/// `requestId`, `version`), REPORT is `platform.report` (record: `requestId`, `metrics` with
/// `durationMs`, `memorySizeMB`, `maxMemoryUsedMB`, `initDurationMs` on a cold start, and
/// `status`: `success`, `error` or `timeout`, with `errorType` on an error). END has no JSON
/// form at the default system log level (INFO): `platform.runtimeDone` is a DEBUG event.
pub const PLATFORM_START: &str = "platform.start";
pub const PLATFORM_REPORT: &str = "platform.report";

/// The variables Lambda sets itself and refuses in a function's configuration ("Defined runtime
/// environment variables": reserved keys).
pub const RESERVED_VARIABLES: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

/// Lambda gives the init phase (start to the first `next`) 10 seconds.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the shutdown phase lasts before whatever still runs gets SIGKILL: 0 ms for a
/// function without registered extensions, 500 ms with a registered internal extension (one
/// the runtime's own process registers, as lambda_runtime's `spawn_graceful_shutdown_handler`
/// does), 2,000 ms with one or more external extensions. The runtime gets SIGTERM at its start
/// when any extension is registered, the external extensions that asked for it the SHUTDOWN
/// event ("Understanding the Lambda execution environment lifecycle": shutdown phase; of the
/// 2,000 ms the runtime is given up to 300 ms, 500 ms with an internal extension).
pub fn shutdown_budget(internal: bool, external: bool) -> Duration {
    match (internal, external) {
        (_, true) => Duration::from_millis(2000),
        (true, false) => Duration::from_millis(500),
        (false, false) => Duration::ZERO,
    }
}

/// The Runtime API (2018-06-01), the Extensions API (2020-01-01) and the Telemetry API
/// (2022-07-01), which Lambda serves at one address, `AWS_LAMBDA_RUNTIME_API`.
pub const RUNTIME_API_PREFIX: &str = concat!("/", literal!(runtime_api_version), "/runtime/");
pub const EXTENSIONS_API_PREFIX: &str = "/2020-01-01/extension/";
pub const TELEMETRY_API_PATH: &str = "/2022-07-01/telemetry";

/// The headers of the Runtime and Extensions APIs ("Using the Lambda runtime API for custom
/// runtimes", "Extensions API").
pub mod header {
    /// With each event: its request id, deadline (epoch milliseconds), the function's ARN and
    /// the X-Ray trace header.
    pub const REQUEST_ID: &str = "Lambda-Runtime-Aws-Request-Id";
    pub const DEADLINE_MS: &str = "Lambda-Runtime-Deadline-Ms";
    pub const FUNCTION_ARN: &str = "Lambda-Runtime-Invoked-Function-Arn";
    pub const TRACE_ID: &str = "Lambda-Runtime-Trace-Id";
    /// On a posted error, its type; in a streamed response's trailers, the error's type and
    /// its body (base64).
    pub const FUNCTION_ERROR_TYPE: &str = "Lambda-Runtime-Function-Error-Type";
    pub const FUNCTION_ERROR_BODY: &str = "Lambda-Runtime-Function-Error-Body";
    /// `streaming` on a response asks for a streamed one.
    pub const RESPONSE_MODE: &str = "Lambda-Runtime-Function-Response-Mode";
    /// An extension's name at registration, and the identifier Lambda gives it.
    pub const EXTENSION_NAME: &str = "Lambda-Extension-Name";
    pub const EXTENSION_ID: &str = "Lambda-Extension-Identifier";
    pub const EXTENSION_ERROR_TYPE: &str = "Lambda-Extension-Function-Error-Type";
    pub const EXTENSION_EVENT_ID: &str = "Lambda-Extension-Event-Identifier";
    /// With each event of a function in tenant-isolation mode: the invoke's tenant id
    /// (lambda_runtime reads it into `Context::tenant_id`).
    pub const TENANT_ID: &str = "Lambda-Runtime-Aws-Tenant-Id";
    /// On an invoke (and so on a request to `serve`): the tenant it runs for ("Tenant isolation").
    pub const INVOKE_TENANT_ID: &str = "X-Amz-Tenant-Id";
    /// With an event whose invoke carried them: the client's context and the caller's Cognito
    /// identity, JSON, which lambda_runtime reads into `Context::client_context` and
    /// `Context::identity`. `cargo lambda invoke` sends these two names to its emulator too.
    pub const CLIENT_CONTEXT: &str = "Lambda-Runtime-Client-Context";
    pub const COGNITO_IDENTITY: &str = "Lambda-Runtime-Cognito-Identity";
}

/// SnapStart ("Improving startup performance with Lambda SnapStart", "Implementing SnapStart
/// hooks for container images"): Lambda offers it to zip functions on managed runtimes only, but
/// to container-image functions on any base, `provided.al2023` included, when the runtime runs
/// its lifecycle. The variable Lambda sets, and its value in an init whose snapshot is taken
/// (`on-demand` otherwise).
pub const INITIALIZATION_TYPE_VARIABLE: &str = "AWS_LAMBDA_INITIALIZATION_TYPE";
pub const ON_DEMAND: &str = "on-demand";
pub const SNAP_START: &str = "snap-start";

/// With SnapStart, the runtime ends its init with `GET /runtime/restore/next` (after its
/// before-snapshot hooks); the call returns once the environment is restored from the snapshot,
/// then the runtime runs its after-restore hooks and asks for events. An error in those it
/// reports with `POST /runtime/restore/error`.
pub const RESTORE_NEXT_PATH: &str = "restore/next";
pub const RESTORE_ERROR_PATH: &str = "restore/error";

/// What the invoke answers when the after-restore hooks failed (the Invoke API's
/// `SnapStartException`, "Troubleshooting SnapStart errors").
pub const RESTORE_ERROR_TYPE: &str = "SnapStartException";
pub const RESTORE_ERROR_MESSAGE: &str = "The afterRestore() runtime hook encountered an error. For more information, check the \
     Amazon CloudWatch logs.";

/// The label that lets an image without hooks (a runtime that never calls `restore/next`) be
/// published with SnapStart.
pub const SNAP_START_LABEL: &str = "com.amazonaws.lambda.feature.snapstart=\"Allow\"";

/// How long the emulated snapshot-and-restore pause lasts: the runtime waits in `restore/next`
/// meanwhile, as it waits on Lambda between the snapshot and a restore.
pub const RESTORE_PAUSE: Duration = Duration::from_millis(200);

/// Lambda Managed Instances: how many invocations one execution environment takes at once; the
/// Runtime API accepts that many concurrent `next` and `response` calls ("Using the Lambda
/// runtime API": Managed Instances support concurrent requests).
pub const MAX_CONCURRENCY_VARIABLE: &str = "AWS_LAMBDA_MAX_CONCURRENCY";

/// The Invoke API (2015-03-31), Lambda's own front: `POST
/// /2015-03-31/functions/{FunctionName}/invocations` with the event as the body, what `aws
/// lambda invoke`, the SDKs and `cargo lambda invoke` send ("Invoke", Lambda API reference).
/// `FunctionName` is a name, an ARN or a partial ARN (`123456789012:function:NAME`), with an
/// optional `:QUALIFIER`, which the query's `Qualifier` may give instead.
pub const INVOKE_API_PREFIX: &str = "/2015-03-31/functions/";
pub const INVOKE_API_SUFFIX: &str = "/invocations";

/// InvokeWithResponseStream (2021-11-15): the same request, answered with an AWS event stream
/// (`application/vnd.amazon.eventstream`) of `PayloadChunk` events as the function streams,
/// then one `InvokeComplete` ("InvokeWithResponseStream", Lambda API reference).
pub const INVOKE_STREAM_API_PREFIX: &str = "/2021-11-15/functions/";
pub const INVOKE_STREAM_API_SUFFIX: &str = "/response-streaming-invocations";
pub const EVENT_STREAM_CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

/// The Invoke API's headers.
pub mod invoke_header {
    /// `RequestResponse` (the default: the answer is the payload), `Event` (202 at once, the
    /// invocation runs on) or `DryRun` (204, nothing runs).
    pub const INVOCATION_TYPE: &str = "X-Amz-Invocation-Type";
    /// `Tail`: the answer carries the end of the invocation's log in [`LOG_RESULT`].
    pub const LOG_TYPE: &str = "X-Amz-Log-Type";
    /// The last [`super::LOG_RESULT_BYTES`] of the log, base64.
    pub const LOG_RESULT: &str = "X-Amz-Log-Result";
    /// `Unhandled` when the invocation failed: the payload is the error's.
    pub const FUNCTION_ERROR: &str = "X-Amz-Function-Error";
    /// The version that ran (`$LATEST`).
    pub const EXECUTED_VERSION: &str = "X-Amz-Executed-Version";
    pub const REQUEST_ID: &str = "X-Amzn-RequestId";
    /// On a refused request, the error's type (`ResourceNotFoundException`...), with the body
    /// `{"Type":"User","message":...}`.
    pub const ERROR_TYPE: &str = "X-Amzn-ErrorType";
    /// The client's context: a JSON object, base64, at most [`super::MAX_CLIENT_CONTEXT_BYTES`]
    /// (what the SDKs' `ClientContext` and `aws lambda invoke --client-context` send).
    pub const CLIENT_CONTEXT: &str = "X-Amz-Client-Context";
}

/// The Invoke API takes a client context of at most 3,583 bytes, base64 ("Invoke":
/// `ClientContext`).
pub const MAX_CLIENT_CONTEXT_BYTES: usize = 3583;

/// How much of the log `X-Amz-Log-Type: Tail` returns: its last 4 KB.
pub const LOG_RESULT_BYTES: usize = 4 * 1024;

/// Lambda accepts at most 50 MB (52,428,800 bytes) of zip in a direct upload; a larger one has
/// to go through S3.
pub const DIRECT_UPLOAD_LIMIT: u64 = 50 * 1024 * 1024;

/// Lambda refuses a function whose code, layers included, is over 250 MB (262,144,000 bytes)
/// unzipped.
pub const UNZIPPED_LIMIT: u64 = 250 * 1024 * 1024;

/// A container image may be at most 10 GB (10,737,418,240 bytes) uncompressed, its layers
/// together ("Lambda quotas": "Container image code package size: 10 GB (maximum uncompressed
/// image size, including all layers)").
pub const IMAGE_LIMIT: u64 = 10 * 1024 * 1024 * 1024;

/// The base of a function's container image: AWS's OS-only image for provided.al2023
/// (gallery.ecr.aws/lambda/provided), a multi-platform index of linux/amd64 and linux/arm64.
pub const IMAGE_BASE: &str = "public.ecr.aws/lambda/provided:al2023";

/// Where an OS-only base image looks for the runtime: `LAMBDA_RUNTIME_DIR`, `/var/runtime`.
/// AWS's Dockerfile for a custom runtime on `provided:al2023` copies `bootstrap` to
/// `${LAMBDA_RUNTIME_DIR}`, keeps the image's entrypoint (`/lambda-entrypoint.sh`) and sets
/// `CMD` to the handler, which reaches the runtime as `_HANDLER` ("Create a Lambda function
/// using a container image", OS-only base images).
pub const IMAGE_RUNTIME_DIR: &str = "/var/runtime";

/// A synchronous invocation's request payload: at most 6 MB (6,291,456 bytes).
pub const MAX_EVENT_BYTES: usize = 6 * 1024 * 1024;

/// What the runtime may post as a response: 6 MiB + 100 bytes (rapid's
/// `interop.MaxPayloadSize`, 6,291,556 bytes).
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024 + 100;

/// A streamed response may reach 200 MB (209,715,200 bytes) since July 2025; it was 20 MB
/// before ("Response streaming for Lambda functions": "response streaming functions can return
/// payloads up to 200 MB, compared to the 6 MB maximum for buffered responses"). The first
/// 6 MB go at full speed, the rest at up to 2 MB/s, which the local run does not imitate.
/// Function URLs in `RESPONSE_STREAM` mode, `InvokeWithResponseStream` and, since November
/// 2025, API Gateway REST APIs whose Lambda proxy integration has `responseTransferMode:
/// STREAM` stream; `Invoke` buffers up to [`MAX_RESPONSE_BYTES`].
pub const MAX_STREAMED_BYTES: u64 = 200 * 1024 * 1024;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_run_by_the_shells_provided_al2023_has() {
        for yes in [
            "/bin/sh",
            "/bin/bash -e",
            "/usr/bin/env bash",
            "/usr/bin/env -S sh -e",
        ] {
            assert!(runs_script(yes), "{yes}");
        }
        for no in ["/usr/bin/python3", "/usr/bin/env node", "/bin/zsh", ""] {
            assert!(!runs_script(no), "{no}");
        }
    }
}
