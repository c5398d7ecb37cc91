//! Fuzzing of what reads untrusted bytes: the ELF inspection (`inspect::inspect_bytes`) and the
//! zip verifier (`verify::verify_bytes`). Whatever the bytes: no panic, no hang, bounded memory.
//!
//! proptest, not cargo-fuzz, so that it runs on stable in CI. Inputs are pure random bytes,
//! random bytes behind the format's magic, and mutations of real files: the ELF fixtures in
//! tests/data/elf/, zips from Info-ZIP and Python in tests/data/zip/, and one that
//! `package::write_zip` writes here. Mutations flip bits, overwrite bytes, write large length
//! fields, truncate, insert and delete, aimed half the time at the headers.
//!
//! - A hang fails: a watchdog aborts the whole run when one case takes longer than
//!   [`CASE_DEADLINE`], after saving its input under the cargo target's tmp dir.
//! - Memory is bounded: the address space of this test binary is limited to [`MEMORY_LIMIT`],
//!   so a runaway allocation aborts it.
//! - `LAMBDA_BUILD_FUZZ_CASES=N` sets the cases per target (default [`DEFAULT_CASES`], a short
//!   pass for CI); `LAMBDA_BUILD_FUZZ_SEED=N` replays a run, whose seed each target prints.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cargo_lambda_build::verify::{self, Rules, VerifyError};
use cargo_lambda_build::{inspect, package};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};

const CASES_ENV: &str = "LAMBDA_BUILD_FUZZ_CASES";
const SEED_ENV: &str = "LAMBDA_BUILD_FUZZ_SEED";

/// Per target: each takes a few seconds on a loaded two-core machine.
const DEFAULT_CASES: u32 = 30_000;

/// Generous: a case takes microseconds; only a hang comes near this, even on a loaded machine.
const CASE_DEADLINE: Duration = Duration::from_secs(20);

/// The largest input here is a few hundred KB: nothing needs more than a fraction of this.
#[cfg(unix)]
const MEMORY_LIMIT: u64 = 4 << 30;

fn cases() -> u32 {
    match std::env::var(CASES_ENV) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{CASES_ENV}={value:?} is not a number of cases")),
        Err(_) => DEFAULT_CASES,
    }
}

fn seed() -> u64 {
    match std::env::var(SEED_ENV) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{SEED_ENV}={value:?} is not a number")),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    }
}

/// Limits this process's address space once, before any case runs.
fn limit_memory() {
    // Windows has no RLIMIT_AS; the suite runs on Linux in CI.
    #[cfg(unix)]
    static ONCE: std::sync::Once = std::sync::Once::new();
    #[cfg(unix)]
    ONCE.call_once(|| {
        let limit = libc::rlimit {
            rlim_cur: MEMORY_LIMIT,
            rlim_max: MEMORY_LIMIT,
        };
        // SAFETY: setrlimit reads the struct it is given and nothing else.
        let rc = unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) };
        assert_eq!(rc, 0, "setrlimit: {}", std::io::Error::last_os_error());
    });
}

/// Aborts the process when a case runs past the deadline: a thread stuck in a loop cannot be
/// stopped, and a test that hangs must fail rather than stall CI.
struct Watchdog {
    target: &'static str,
    state: Mutex<Case>,
}

struct Case {
    started: Option<Instant>,
    input: Vec<u8>,
}

impl Watchdog {
    fn start(target: &'static str) -> Arc<Watchdog> {
        let dog = Arc::new(Watchdog {
            target,
            state: Mutex::new(Case {
                started: None,
                input: Vec::new(),
            }),
        });
        let watched = Arc::downgrade(&dog);
        std::thread::spawn(move || {
            // Until the target's run ends and drops the watchdog.
            while let Some(dog) = watched.upgrade() {
                dog.check();
                drop(dog);
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        dog
    }

    fn check(&self) {
        let case = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if case.started.is_some_and(|t| t.elapsed() > CASE_DEADLINE) {
            let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("fuzz-hang-{}.bin", self.target.replace('/', "-")));
            let saved = std::fs::write(&path, &case.input);
            let _ = writeln!(
                std::io::stderr(),
                "fuzz: {}: a case ran over {CASE_DEADLINE:?}: a hang; its {} bytes are in {} \
                 ({saved:?})",
                self.target,
                case.input.len(),
                path.display()
            );
            std::process::abort();
        }
    }

    fn begin(&self, input: &[u8]) {
        let mut case = self.state.lock().unwrap_or_else(|e| e.into_inner());
        case.input.clear();
        case.input.extend_from_slice(input);
        case.started = Some(Instant::now());
    }

    fn end(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).started = None;
    }
}

/// Runs `check` on the inputs of `strategy`, under the deadline and the memory limit, and
/// prints how many it ran to the real stderr (the harness captures only `eprintln!`).
fn fuzz(
    target: &'static str,
    strategy: impl Strategy<Value = Vec<u8>>,
    check: impl Fn(&[u8]) -> Result<&'static str, TestCaseError>,
) {
    limit_memory();
    let cases = cases();
    let seed = seed();
    let config = Config {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(seed),
        max_shrink_iters: 2000,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let dog = Watchdog::start(target);
    let executions = AtomicU64::new(0);
    let outcomes = Mutex::new(BTreeMap::new());
    let started = Instant::now();
    let result = runner.run(&strategy, |input| {
        dog.begin(&input);
        executions.fetch_add(1, Ordering::Relaxed);
        let outcome = check(&input);
        dog.end();
        let outcome = outcome?;
        *outcomes.lock().unwrap().entry(outcome).or_insert(0u64) += 1;
        Ok(())
    });
    let elapsed = started.elapsed();
    let _ = writeln!(
        std::io::stderr(),
        "fuzz: {target}: {} executions in {elapsed:.1?} ({cases} cases, {SEED_ENV}={seed}); \
         outcomes {:?}",
        executions.load(Ordering::Relaxed),
        outcomes.lock().unwrap()
    );
    if let Err(failure) = result {
        panic!("{target} ({SEED_ENV}={seed}): {failure}");
    }
}

/// Where mutations land: anywhere, or near one of the seed's header offsets.
#[derive(Debug, Clone)]
struct Pos {
    hot: bool,
    index: usize,
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(Pos, u8),
    Byte(Pos, u8),
    /// A length or offset field made huge, or zero, or off by a sign bit.
    Big(Pos, usize, u64),
    Truncate(Pos),
    Insert(Pos, Vec<u8>),
    Delete(Pos, usize),
    /// A block copied over another place (a header over a header, say).
    Copy(Pos, Pos, usize),
}

fn pos() -> impl Strategy<Value = Pos> {
    (any::<bool>(), any::<usize>()).prop_map(|(hot, index)| Pos { hot, index })
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let big = prop_oneof![
        Just(u64::MAX),
        Just(0),
        Just(0x7fff_ffff),
        Just(0x8000_0000),
        Just(0xffff_ffff),
        Just(0xffff),
        Just(1 << 40),
        any::<u64>(),
    ];
    prop_oneof![
        4 => (pos(), 0..8u8).prop_map(|(p, bit)| Mutation::Flip(p, bit)),
        4 => (pos(), any::<u8>()).prop_map(|(p, b)| Mutation::Byte(p, b)),
        4 => (pos(), prop_oneof![Just(2usize), Just(4), Just(8)], big)
            .prop_map(|(p, width, value)| Mutation::Big(p, width, value)),
        1 => pos().prop_map(Mutation::Truncate),
        1 => (pos(), prop::collection::vec(any::<u8>(), 1..64))
            .prop_map(|(p, bytes)| Mutation::Insert(p, bytes)),
        1 => (pos(), 1..64usize).prop_map(|(p, n)| Mutation::Delete(p, n)),
        1 => (pos(), pos(), 1..64usize).prop_map(|(a, b, n)| Mutation::Copy(a, b, n)),
    ]
}

/// A real file and the offsets of its headers.
struct Seed {
    bytes: Vec<u8>,
    hot: Vec<usize>,
}

impl Seed {
    fn at(&self, pos: &Pos, len: usize) -> usize {
        if len == 0 {
            return 0;
        }
        let at = if pos.hot && !self.hot.is_empty() {
            let base = self.hot[pos.index % self.hot.len()];
            base + (pos.index / self.hot.len()) % 64
        } else {
            pos.index
        };
        at % len
    }

    fn mutate(&self, mutations: &[Mutation]) -> Vec<u8> {
        let mut data = self.bytes.clone();
        for mutation in mutations {
            let len = data.len();
            if len == 0 {
                break;
            }
            match mutation {
                Mutation::Flip(p, bit) => data[self.at(p, len)] ^= 1 << bit,
                Mutation::Byte(p, b) => data[self.at(p, len)] = *b,
                Mutation::Big(p, width, value) => {
                    let at = self.at(p, len);
                    let end = (at + width).min(len);
                    data[at..end].copy_from_slice(&value.to_le_bytes()[..end - at]);
                }
                Mutation::Truncate(p) => data.truncate(self.at(p, len)),
                Mutation::Insert(p, bytes) => {
                    let at = self.at(p, len);
                    data.splice(at..at, bytes.iter().copied());
                }
                Mutation::Delete(p, n) => {
                    let at = self.at(p, len);
                    data.drain(at..(at + n).min(len));
                }
                Mutation::Copy(from, to, n) => {
                    let (from, to) = (self.at(from, len), self.at(to, len));
                    let n = (*n).min(len - from).min(len - to);
                    data.copy_within(from..from + n, to);
                }
            }
        }
        data
    }
}

/// Mutations of the seeds, one to four at a time: more, and hardly any zip still has a readable
/// end record.
fn mutated(seeds: Vec<Seed>) -> impl Strategy<Value = Vec<u8>> {
    let seeds = Arc::new(seeds);
    (0..seeds.len(), prop::collection::vec(mutation(), 1..5))
        .prop_map(move |(i, mutations)| seeds[i].mutate(&mutations))
}

/// Up to 4 KB from a generator seeded by proptest: a `vec(any::<u8>())` of that size costs a
/// value tree per byte, a hundred times slower than the code under test.
fn random_bytes() -> impl Strategy<Value = Vec<u8>> {
    (0..4096usize, any::<u64>()).prop_map(|(len, seed)| {
        let mut state = seed | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect()
    })
}

/// Random bytes behind `magic`, so that parsing gets past the first check.
fn behind(magic: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    random_bytes().prop_map(move |mut bytes| {
        let n = magic.len().min(bytes.len());
        bytes[..n].copy_from_slice(&magic[..n]);
        bytes
    })
}

/// A zip's end-of-central-directory record with random fields after random bytes: the
/// reader then follows random offsets and counts.
fn random_end_record() -> impl Strategy<Value = Vec<u8>> {
    (random_bytes(), prop::collection::vec(any::<u8>(), 18)).prop_map(|(mut bytes, fields)| {
        bytes.extend_from_slice(b"PK\x05\x06");
        bytes.extend_from_slice(&fields);
        bytes
    })
}

fn data_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(kind)
}

fn u16_at(b: &[u8], at: usize) -> Option<usize> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?).into())
}

fn u64_at(b: &[u8], at: usize) -> Option<usize> {
    usize::try_from(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?)).ok()
}

/// The ELF header, the program headers, and what each segment and the section headers point
/// at (64-bit little-endian; other files get the start only).
fn elf_offsets(b: &[u8]) -> Vec<usize> {
    let mut hot = vec![0];
    let (Some(phoff), Some(phnum), Some(shoff)) =
        (u64_at(b, 0x20), u16_at(b, 0x38), u64_at(b, 0x28))
    else {
        return hot;
    };
    hot.extend([phoff, shoff]);
    for i in 0..phnum.min(64) {
        let ph = phoff + i * 56;
        hot.push(ph);
        hot.extend(u64_at(b, ph + 8));
    }
    hot.retain(|&at| at < b.len());
    hot
}

/// Every zip record signature: local and central headers, data descriptors, the end records.
fn zip_offsets(b: &[u8]) -> Vec<usize> {
    let signatures: [&[u8]; 6] = [
        b"PK\x03\x04",
        b"PK\x01\x02",
        b"PK\x05\x06",
        b"PK\x06\x06",
        b"PK\x06\x07",
        b"PK\x07\x08",
    ];
    (0..b.len().saturating_sub(3))
        .filter(|&at| signatures.contains(&&b[at..at + 4]))
        .collect()
}

fn elf_seeds() -> Vec<Seed> {
    let mut seeds: Vec<Seed> = std::fs::read_dir(data_dir("elf"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_none() || path.extension() == Some("1".as_ref()))
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap();
            Seed {
                hot: elf_offsets(&bytes),
                bytes,
            }
        })
        .collect();
    seeds.sort_by(|a, b| a.bytes.cmp(&b.bytes));
    assert!(seeds.len() >= 8, "the ELF fixtures in tests/data/elf");
    seeds
}

/// The committed zips from Info-ZIP and Python, and one from `package::write_zip`.
fn zip_seeds() -> Vec<Seed> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(data_dir("zip"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension() == Some("zip".as_ref()))
        .collect();
    paths.sort();
    let mut zips: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(zips.len() >= 4, "the zips in tests/data/zip");

    let dir = tempfile::tempdir().unwrap();
    let entry = |name: &str, source: PathBuf, mode| package::ZipEntry {
        name: name.to_owned(),
        source,
        mode,
    };
    let config = dir.path().join("config.json");
    std::fs::write(&config, b"{\"table\": \"orders\"}\n").unwrap();
    let dest = dir.path().join("lambda.zip");
    let entries = [
        entry("bootstrap", data_dir("elf").join("hello-x86_64"), 0o755),
        entry("lib/", dir.path().to_path_buf(), 0o755),
        entry("lib/config.json", config, 0o644),
    ];
    package::write_zip(&dest, &entries, package::zip_timestamp(1_700_000_000)).unwrap();
    zips.push(std::fs::read(&dest).unwrap());

    zips.into_iter()
        .map(|bytes| Seed {
            hot: zip_offsets(&bytes),
            bytes,
        })
        .collect()
}

fn check_inspect(data: &[u8]) -> Result<&'static str, TestCaseError> {
    Ok(match inspect::inspect_bytes(data) {
        Ok(_) => "ok",
        Err(inspect::InspectError::Malformed { .. }) => "malformed",
        Err(_) => "other error",
    })
}

/// No panic, and what passes is what the rules promise.
fn check_verify(data: &[u8]) -> Result<&'static str, TestCaseError> {
    let shipped = verify::verify_bytes(data, &Rules::SHIP);
    let extracted = verify::verify_bytes(data, &Rules::EXTRACT);
    for verified in shipped.iter().chain(extracted.iter()) {
        prop_assert!(verified.unzipped_size <= Rules::SHIP.limit);
        for name in &verified.names {
            let path = name.strip_suffix('/').unwrap_or(name);
            prop_assert!(
                !name.starts_with('/') && !name.contains('\\') && !name.contains('\0'),
                "{name:?} passed"
            );
            prop_assert!(
                path.split('/').all(|part| !matches!(part, "" | "." | "..")),
                "{name:?} passed"
            );
        }
    }
    // Shipping is the stricter of the two.
    if let Ok(verified) = &shipped {
        prop_assert_eq!(extracted.as_ref().ok(), Some(verified));
    }
    Ok(match shipped {
        Ok(_) => "ok",
        Err(VerifyError::Read(_)) => "read",
        Err(VerifyError::NotAZip(_)) => "not a zip",
        Err(VerifyError::UnsafeName { .. }) => "unsafe name",
        Err(VerifyError::Duplicate(_) | VerifyError::FileIsDirectory { .. }) => "duplicate",
        Err(VerifyError::Symlink { .. } | VerifyError::NotAFile { .. }) => "not a file",
        Err(VerifyError::NoEntrypoint | VerifyError::NotExecutable { .. }) => "entrypoint",
        Err(VerifyError::TooLarge { .. }) => "too large",
        Err(VerifyError::Corrupt { .. }) => "corrupt",
    })
}

#[test]
fn inspect_random_bytes() {
    fuzz("inspect/random", random_bytes(), check_inspect);
}

#[test]
fn inspect_random_bytes_behind_the_elf_magic() {
    fuzz(
        "inspect/elf-magic",
        // 64-bit little-endian, ET_DYN, x86_64, version 1: the header checks pass.
        behind(b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00\x3e\x00\x01\x00\x00\x00"),
        check_inspect,
    );
}

#[test]
fn inspect_mutated_elf_files() {
    fuzz("inspect/mutated", mutated(elf_seeds()), check_inspect);
}

#[test]
fn verify_random_bytes() {
    fuzz("verify/random", random_bytes(), check_verify);
}

#[test]
fn verify_random_end_records() {
    fuzz("verify/end-record", random_end_record(), check_verify);
}

#[test]
fn verify_mutated_zips() {
    fuzz("verify/mutated", mutated(zip_seeds()), check_verify);
}

/// The seeds themselves: the mutations start from zips that pass, or fail for a known reason.
#[test]
fn zip_seeds_are_what_they_claim() {
    let seeds = zip_seeds();
    let outcomes: Vec<String> = seeds
        .iter()
        .map(
            |seed| match verify::verify_bytes(&seed.bytes, &Rules::SHIP) {
                Ok(_) => "ok".to_owned(),
                Err(e) => e.to_string(),
            },
        )
        .collect();
    assert_eq!(
        outcomes,
        [
            "ok",                                                        // info-zip-stream.zip
            "ok",                                                        // info-zip-zip64.zip
            "entry `lib/libfoo.so` is a symbolic link to `libfoo.so.1`", // info-zip.zip
            "ok",                                                        // python.zip
            "ok",                                                        // package::write_zip
        ]
    );
    for seed in &seeds {
        verify::verify_bytes(&seed.bytes, &Rules::EXTRACT).unwrap();
        assert!(seed.hot.len() >= 3, "{:?}", seed.hot);
    }
}
