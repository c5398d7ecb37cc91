#!/usr/bin/env python3
"""Benchmark cargo-lambda-build against cargo-lambda on the same fixture, in one run.

    python3 bench/compare.py [--archs x86_64,arm64] [--starts 30] [--json bench/results.json]

Each tool builds its own copy of tests/fixtures/echo into its own target dir (so neither reuses
the other's cache), with each tool's default settings:

    ours:   cargo lambda-build --zip --arch A
    theirs: cargo lambda build --release --output-format zip --x86-64|--arm64

and the script measures, per architecture: the cold build, the no-op rebuild (median of 5), the
rebuild after touching src/main.rs (median of 3), bootstrap and zip sizes; for x86_64: the
start-up time from spawning `bootstrap` to its first `GET /runtime/invocation/next` against a
local listener (median of --starts), our size mode (`--small`), and our overhead over the plain
`cargo build` we run. With `--docker` support and an engine answering, the Docker rows too. It
prints a table with ratios (ours / theirs) and writes JSON. Needs: cargo-lambda on PATH
(`pip install cargo-lambda`) and zig (`pip install ziglang`), which both tools use for arm64.
"""

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "echo"
NOOP_RUNS = 5
# The Docker no-op goal is absolute (at most 3 s), not a ratio: cargo-lambda has no container build.
ABSOLUTE_3S = "abs:3"
EDIT_RUNS = 3


def run(cmd, cwd, env=None, check=True):
    """Runs cmd, returns seconds; output is kept only for the error message."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if check and proc.returncode != 0:
        sys.exit(f"benchmark: `{' '.join(map(str, cmd))}` failed in {cwd}:\n"
                 f"{proc.stderr.decode(errors='replace')[-3000:]}")
    return elapsed


def copy_fixture(dest):
    shutil.copytree(FIXTURE, dest, ignore=shutil.ignore_patterns("target", "lambda.zip"))
    return dest


class Tool:
    def __init__(self, name, workdir, arch):
        self.name, self.dir, self.arch = name, workdir, arch
        self.env = dict(os.environ, CARGO_TARGET_DIR=str(workdir / "target"))

    def build(self, extra=()):
        return run(self.command() + list(extra), self.dir, self.env)


class Ours(Tool):
    exe = None

    def command(self):
        return [str(self.exe), "lambda-build", "--zip", "--arch", self.arch, "-q"]

    def zip_path(self):
        return self.dir / "lambda.zip"


class Theirs(Tool):
    def command(self):
        flag = "--x86-64" if self.arch == "x86_64" else "--arm64"
        return ["cargo-lambda", "lambda", "build", "--release", "--output-format", "zip", flag]

    def zip_path(self):
        return self.dir / "target" / "lambda" / "echo" / "bootstrap.zip"


def median_of(n, fn):
    return statistics.median(fn() for _ in range(n))


def edit_rebuild(tool):
    """A real edit (the greeting changes), so the binary changes and must be zipped again."""
    main_rs = tool.dir / "src" / "main.rs"
    original = main_rs.read_text()
    counter = iter(range(1, 1000))

    def once():
        main_rs.write_text(original.replace('"hello, {}"', f'"hello{next(counter)}, {{}}"'))
        return tool.build()
    return median_of(EDIT_RUNS, once)


def bootstrap_size(zip_path):
    with zipfile.ZipFile(zip_path) as z:
        return z.getinfo("bootstrap").file_size


def first_next_delay(bootstrap):
    """Seconds from spawning bootstrap to its first `next` request on a local listener."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    got = threading.Event()
    arrival = {}

    def accept():
        conn, _ = server.accept()
        data = b""
        while b"\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
        if b"/runtime/invocation/next" in data:
            arrival["t"] = time.perf_counter()
        got.set()
        conn.close()

    threading.Thread(target=accept, daemon=True).start()
    env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{port}",
               AWS_LAMBDA_FUNCTION_NAME="bench", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128",
               AWS_LAMBDA_FUNCTION_VERSION="$LATEST")
    start = time.perf_counter()
    proc = subprocess.Popen([str(bootstrap)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    ok = got.wait(10)
    proc.kill()
    proc.wait()
    server.close()
    if not ok or "t" not in arrival:
        sys.exit(f"benchmark: {bootstrap} never asked for /runtime/invocation/next")
    return arrival["t"] - start


def startup_times(bootstraps, starts):
    """Median start-up of each bootstrap; the starts alternate between them, so a change in
    the machine's load during the measurement weighs on all of them alike."""
    samples = [[] for _ in bootstraps]
    for _ in range(starts):
        for i, bootstrap in enumerate(bootstraps):
            samples[i].append(first_next_delay(bootstrap))
    return [statistics.median(s) for s in samples]


def extract_bootstrap(zip_path, into):
    with zipfile.ZipFile(zip_path) as z:
        z.extract("bootstrap", into)
    path = Path(into) / "bootstrap"
    path.chmod(0o755)
    return path


def docker_available(exe):
    help_text = subprocess.run([str(exe), "lambda-build", "--help"], capture_output=True,
                               text=True).stdout
    if "--docker" not in help_text:
        return False, "this build has no --docker"
    probe = subprocess.run(["docker", "version"], capture_output=True)
    return probe.returncode == 0, "no Docker engine answers"


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", default="x86_64,arm64")
    parser.add_argument("--starts", type=int, default=30)
    parser.add_argument("--json", default=str(REPO / "bench" / "results.json"))
    args = parser.parse_args()
    archs = args.archs.split(",")
    if not shutil.which("cargo-lambda"):
        sys.exit("benchmark: cargo-lambda is not on PATH: pip install cargo-lambda")

    print("building cargo-lambda-build (release)...", file=sys.stderr)
    run(["cargo", "build", "--release", "--locked"], REPO)
    Ours.exe = REPO / "target" / "release" / "cargo-lambda-build"
    their_version = subprocess.run(["cargo-lambda", "lambda", "--version"], capture_output=True,
                                   text=True).stdout.strip()

    rows = []  # (metric, ours, theirs, unit, goal ratio or None, lower is better)
    work = Path(tempfile.mkdtemp(prefix="lambda-bench-"))
    try:
        for arch in archs:
            ours = Ours("ours", copy_fixture(work / f"ours-{arch}"), arch)
            theirs = Theirs("theirs", copy_fixture(work / f"theirs-{arch}"), arch)
            for tool in (ours, theirs):
                print(f"{arch}: {tool.name}: cold build...", file=sys.stderr)
                tool.cold = tool.build()
                tool.noop = median_of(NOOP_RUNS, tool.build)
                print(f"{arch}: {tool.name}: edit, rebuild, zip...", file=sys.stderr)
                tool.edit = edit_rebuild(tool)
                tool.zip = tool.zip_path().stat().st_size
                tool.bootstrap = bootstrap_size(tool.zip_path())
            rows += [
                (f"cold build ({arch})", ours.cold, theirs.cold, "s", None),
                (f"no-op build ({arch})", ours.noop, theirs.noop, "s", 0.5),
                (f"edit-rebuild-zip ({arch})", ours.edit, theirs.edit, "s", 0.5),
                (f"bootstrap size ({arch})", ours.bootstrap, theirs.bootstrap, "B", None),
                (f"zip size, default ({arch})", ours.zip, theirs.zip, "B", 1.5),
            ]
            if arch == "x86_64":
                print("x86_64: ours: --small...", file=sys.stderr)
                small_dir = work / "ours-small"
                small = Ours("small", copy_fixture(small_dir), arch)
                small.build(["--small"])
                rows.append(("zip size, --small (x86_64)", small.zip_path().stat().st_size,
                             theirs.zip, "B", 0.95))
                print("x86_64: start-up times...", file=sys.stderr)
                ours_boot = extract_bootstrap(ours.zip_path(), work / "ours-boot")
                their_boot = extract_bootstrap(theirs.zip_path(), work / "theirs-boot")
                ours_start, their_start = startup_times([ours_boot, their_boot], args.starts)
                rows.append(("start-up to first next (x86_64)", ours_start, their_start, "s",
                             1.1))
                # Our overhead over the cargo command we run (same flags, same environment).
                cargo_cmd = ["cargo", "build", "--message-format", "json-render-diagnostics",
                             "--target", "x86_64-unknown-linux-gnu", "--profile", "release",
                             "--manifest-path", str(ours.dir / "Cargo.toml"), "--bin", "echo",
                             "--color", "never"]
                cargo_env = dict(ours.env, CARGO_PROFILE_RELEASE_STRIP="symbols")
                plain = median_of(NOOP_RUNS, lambda: run(cargo_cmd, ours.dir, cargo_env))
                rows.append(("overhead over plain cargo, no-op (x86_64)", ours.noop - plain,
                             None, "s", None))

        available, why = docker_available(Ours.exe)
        if available:
            docker = Ours("docker", copy_fixture(work / "ours-docker"), "x86_64")
            print("docker: cold (image present), no-op...", file=sys.stderr)
            docker.build(["--docker"])  # builds the image if needed; not timed
            run(["rm", "-rf", str(docker.dir / "target")], docker.dir)
            docker_cold = docker.build(["--docker"])
            docker_noop = median_of(NOOP_RUNS, lambda: docker.build(["--docker"]))
            rows += [("docker cold, image present (x86_64)", docker_cold, None, "s", None),
                     ("docker no-op (x86_64)", docker_noop, None, "s", ABSOLUTE_3S)]
        else:
            print(f"docker rows skipped: {why}", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print_table(rows, their_version)
    results = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "cargo_lambda": their_version,
        "rows": [{"metric": m, "ours": o, "theirs": t, "unit": u,
                  "ratio": (o / t if t else None), "goal": g, "met": met(o, t, g)}
                 for m, o, t, u, g in rows],
    }
    Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.json}", file=sys.stderr)


def met(ours, theirs, goal):
    if goal == ABSOLUTE_3S:
        return ours <= 3.0
    if goal is None or not theirs:
        return None
    return ours / theirs <= goal


def fmt(value, unit):
    if value is None:
        return "-"
    if unit == "s":
        return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"
    return f"{value / 1024:.1f} KiB"


def print_table(rows, their_version):
    print(f"\ncargo-lambda-build vs {their_version}\n")
    header = f"{'metric':<44} {'ours':>12} {'theirs':>12} {'ratio':>7} {'goal':>10}"
    print(header)
    print("-" * len(header))
    for metric, ours, theirs, unit, goal in rows:
        ratio = f"{ours / theirs:.2f}" if theirs else "-"
        goal_text = "<=3s" if goal == ABSOLUTE_3S else f"<={goal}" if goal is not None else ""
        verdict = met(ours, theirs, goal)
        if verdict is not None:
            goal_text += " ok" if verdict else " MISS"
        print(f"{metric:<44} {fmt(ours, unit):>12} {fmt(theirs, unit):>12} {ratio:>7} {goal_text:>10}")


if __name__ == "__main__":
    main()
