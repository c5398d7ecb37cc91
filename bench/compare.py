#!/usr/bin/env python3
"""Benchmark cargo-lambda-build against cargo-lambda, side by side, in one run.

    python3 bench/compare.py                 # every row but Docker; writes the results
    python3 bench/compare.py --docker        # and the --docker rows, on each engine that answers
    python3 bench/compare.py --tiny --exe target/debug/cargo-lambda-build \\
        --work target/bench-tiny --json /tmp/r.json --markdown /tmp/B.md   # the CI check
    python3 bench/compare.py --render-only   # BENCHMARKS.md again from bench/results.json
    python3 bench/compare.py --watch         # only the watch loop rows (kept with the others)
    python3 bench/compare.py --latency       # only serve's request latency, host and container

Both tools build the same source (tests/fixtures/echo, a `lambda_runtime` echo function) with
their own defaults, each in its own copy and its own target dir:

    ours:   cargo lambda-build --zip --arch A             (--workspace for the generated workspaces)
    theirs: cargo lambda build --release --output-format zip --x86-64|--arm64

The method, so that neither tool pays for the other:

- before anything is timed: `cargo fetch` of every lock file used (crates downloaded and
  unpacked), and one untimed build per tool and architecture in a scratch copy (warms the page
  cache, zig's own cache of libc stubs, the linkers);
- runs come in pairs whose order alternates: ours, theirs, then theirs, ours, and so on;
- each row is the median of its samples with their minimum and maximum; the ratio is of medians;
- the edit really changes the program (a string literal), and the script checks that the zip's
  bytes changed and that the new string is in the executable; after a no-op, our zip must be
  byte for byte the one before;
- the load average is printed and recorded before and after the run.

Rows: per architecture, the cold build, the no-op build, the edit-rebuild-zip, sizes; for
x86_64 also `--small`, start-up to the first `next` and our overhead over plain cargo. The
scaling rows build a generated workspace of N functions (--scale, default 1,5,20,50) that share
their dependencies: cold, no-op and edit-one-function times and peak memory, as a table and a plot
(bench/scale.svg, with matplotlib). `--docker` adds `--docker` cold, no-op and edit rows on the
local engine (DOCKER_HOST) and on an engine that shares no file system with this machine
(LAMBDA_BUILD_TEST_REMOTE_DOCKER_HOST), each skipped with a reason when it does not answer.

`--watch` measures the local loop instead: from an edit saved to the new answer over HTTP, on
the echo fixture and on the function `new --http` makes, for `serve --watch` (zip mode),
`serve --watch --native` and `cargo lambda watch`, the three servers running side by side and
edited in turn (the order alternating), each sample one edit. Its rows replace the watch table
of bench/results.json and leave the rest as the last full run wrote it (and a full run keeps the
last watch table).

`--latency` measures what a request costs through `serve` on this machine and through `serve
--docker` (the function in a container on DOCKER_HOST's engine, `--docker-image` the tests' base
image when LAMBDA_BUILD_TEST_BASE_IMAGE is set): from the server's start to its first answer, and
then warm requests one after another. Its table is kept like the watch table.

The results go to bench/results.json and into BENCHMARKS.md between its `<!-- bench:... -->`
markers: the numbers there are only ever written by this script. Needs cargo-lambda
(`pip install cargo-lambda`), zig (`pip install ziglang`, both tools use it for arm64) and, for
the plot, matplotlib (`pip install matplotlib`).
"""

import argparse
import hashlib
import json
import os
import platform
import re
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
GREETING = re.compile(r'"hello[^",]*, \{\}"')
SCHEMA = 2

# Goals from issue 15: ("ratio", x) is ours / theirs <= x; ("abs", s) is ours <= s seconds.
GOALS = {
    "cold": ("ratio", 1.0),
    "noop": ("ratio", 0.25),
    "edit": ("ratio", 0.25),
    "zip": ("ratio", 1.5),
    "small": ("ratio", 0.95),
    "startup": ("ratio", 1.1),
    "overhead": ("abs", 0.1),
    "docker-noop": ("abs", 1.0),
    # Issue 23: both of our loops no slower than cargo-lambda's watch.
    "watch": ("ratio", 1.0),
}


class BenchError(Exception):
    pass


def say(message):
    print(message, file=sys.stderr, flush=True)


# --- running and measuring -------------------------------------------------------------------

class TreeMemory:
    """The peak of the summed resident memory of a process and all its descendants, sampled
    every `interval` seconds from /proc: cargo runs rustc and linkers side by side, and the
    largest single process (getrusage) would not show what they take together."""

    def __init__(self, pid, interval=0.2):
        self.pid, self.interval, self.peak = pid, interval, 0
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, self.sample())
            self.stop.wait(self.interval)

    def sample(self):
        children, rss = {}, {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(entry.path, "stat").read_text()
                fields = stat[stat.rindex(")") + 2:].split()
                children.setdefault(int(fields[1]), []).append(int(entry.name))
                rss[int(entry.name)] = int(fields[21]) * self.page
            except (OSError, ValueError, IndexError):
                continue
        total, todo = 0, [self.pid]
        while todo:
            pid = todo.pop()
            total += rss.get(pid, 0)
            todo += children.get(pid, [])
        return total

    def finish(self):
        self.stop.set()
        self.thread.join()
        return self.peak


def run(cmd, cwd, env=None, tree_memory=False):
    """Runs cmd; returns {"s": seconds, "maxrss": bytes of its largest process, "tree": peak
    bytes of the whole process tree (when asked)}. Fails with the output's tail."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen([str(c) for c in cmd], cwd=cwd, env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        sampler = TreeMemory(proc.pid) if tree_memory else None
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        tree = sampler.finish() if sampler else None
        if proc.returncode != 0:
            out.seek(0)
            tail = out.read().decode(errors="replace")[-3000:]
            raise BenchError(f"`{' '.join(map(str, cmd))}` failed (exit {proc.returncode}) "
                             f"in {cwd}:\n{tail}")
    return {"s": elapsed, "maxrss": usage.ru_maxrss * 1024, "tree": tree}


def load_average():
    one, five, fifteen = os.getloadavg()
    return {"1m": round(one, 2), "5m": round(five, 2), "15m": round(fifteen, 2)}


def summary(samples):
    if not samples:
        return None
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples),
            "n": len(samples), "samples": samples}


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def same_but_greeting(a, b):
    """Whether two sources differ at most by the greeting an earlier edit left."""
    plain = '"hello, {}"'
    return GREETING.sub(plain, a) == GREETING.sub(plain, b)


def write_if_changed(path, text):
    """Writes text unless the file holds it already, an earlier edit's greeting aside: a kept
    work dir (--work) then keeps its mtimes, and cargo has nothing to rebuild."""
    if path.is_file() and same_but_greeting(path.read_text(), text):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def sync_tree(src, dest):
    """Copies the project src into dest (not its target dir or zip) with [`write_if_changed`]."""
    for path in src.rglob("*"):
        rel = path.relative_to(src)
        if rel.parts[0] in ("target", "lambda.zip") or not path.is_file():
            continue
        write_if_changed(dest / rel, path.read_text())
    return dest


# --- the two tools ---------------------------------------------------------------------------

class Tool:
    """One tool building one project directory with its own target dir."""

    # --tiny: one kept target dir per tool, shared by the echo copy and the workspace, so the
    # dependencies compile once there (or never, in the tests' shared fixture target dir).
    tiny_targets = {}

    def __init__(self, name, workdir, arch, bins=("echo",), extra=(), workspace=False):
        self.name, self.dir, self.arch, self.bins = name, Path(workdir), arch, list(bins)
        self.extra, self.workspace = list(extra), workspace
        self.target = Tool.tiny_targets.get(name, self.dir / "target")
        self.env = dict(os.environ, CARGO_TARGET_DIR=str(self.target))
        self.env.pop("SOURCE_DATE_EPOCH", None)

    def build(self, tree_memory=False):
        return run(self.command() + self.extra, self.dir, self.env, tree_memory)

    def clean(self):
        shutil.rmtree(self.target, ignore_errors=True)
        for bin_ in self.bins:
            self.zip_path(bin_).unlink(missing_ok=True)


class Ours(Tool):
    exe = None

    def command(self):
        every = ["--workspace"] if self.workspace else []
        return [self.exe, "lambda-build", "--zip", "--arch", self.arch, "-q"] + every

    def zip_path(self, bin_="echo"):
        return self.dir / bin_ / "lambda.zip" if len(self.bins) > 1 else self.dir / "lambda.zip"


class Theirs(Tool):
    def command(self):
        flag = "--x86-64" if self.arch == "x86_64" else "--arm64"
        return ["cargo-lambda", "lambda", "build", "--release", "--output-format", "zip", flag]

    def zip_path(self, bin_="echo"):
        return self.target / "lambda" / bin_ / "bootstrap.zip"


class Editor:
    """Real edits: the greeting literal of one function's main.rs changes, every time to a new
    text, and the zip must show it."""

    def __init__(self):
        self.count = 0

    def edit(self, tool, bin_, main_rs):
        self.count += 1
        marker = f"hello{os.getpid()}x{self.count}"
        text = main_rs.read_text()
        if not GREETING.search(text):
            raise BenchError(f"no greeting literal to edit in {main_rs}")
        main_rs.write_text(GREETING.sub(f'"{marker}, {{}}"', text, count=1))
        zip_path = tool.zip_path(bin_)
        before = sha256(zip_path)
        sample = tool.build()
        if sha256(zip_path) == before:
            raise BenchError(f"{tool.name}: the edit of {main_rs} left {zip_path} unchanged")
        if marker.encode() not in read_executable(zip_path):
            raise BenchError(f"{tool.name}: {zip_path} does not hold the edited string {marker}")
        return sample


def noop(tool, bins):
    zips = {b: sha256(tool.zip_path(b)) for b in bins}
    sample = tool.build()
    if isinstance(tool, Ours) and any(sha256(tool.zip_path(b)) != h for b, h in zips.items()):
        raise BenchError(f"{tool.name}: a no-op build rewrote the zip's bytes")
    return sample


def read_executable(zip_path):
    with zipfile.ZipFile(zip_path) as z:
        return z.read("bootstrap")


def zip_facts(zip_path):
    with zipfile.ZipFile(zip_path) as z:
        if z.testzip() is not None:
            raise BenchError(f"{zip_path}: a corrupt entry")
        return {"zip": Path(zip_path).stat().st_size, "bootstrap": z.getinfo("bootstrap").file_size}


def pair_order(i, a, b):
    """Pairs alternate: a b, b a, a b, ..."""
    return (a, b) if i % 2 == 0 else (b, a)


# --- start-up --------------------------------------------------------------------------------

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
        raise BenchError(f"{bootstrap} never asked for /runtime/invocation/next")
    return arrival["t"] - start


def extract_bootstrap(zip_path, into):
    with zipfile.ZipFile(zip_path) as z:
        z.extract("bootstrap", into)
    path = Path(into) / "bootstrap"
    path.chmod(0o755)
    return path


# --- rows ------------------------------------------------------------------------------------

def row(key, metric, unit, ours, theirs=None, goal=None, note=None):
    """ours / theirs: lists of samples (or None). The ratio is of the medians."""
    o, t = summary(ours or []), summary(theirs or [])
    ratio = o["median"] / t["median"] if o and t and t["median"] else None
    kind = GOALS.get(goal) if goal else None
    met = None
    if kind and o:
        if kind[0] == "abs":
            met = o["median"] <= kind[1]
        elif ratio is not None:
            met = ratio <= kind[1]
    return {"key": key, "metric": metric, "unit": unit, "ours": o, "theirs": t, "ratio": ratio,
            "goal": None if not kind else
            (f"<= {kind[1]}" if kind[0] == "ratio" else f"<= {kind[1]} s"),
            "met": met, "note": note}


def skipped(key, metric, why):
    return {"key": key, "metric": metric, "unit": "s", "ours": None, "theirs": None,
            "ratio": None, "goal": None, "met": None, "note": f"not measured: {why}"}


# --- the echo rows ---------------------------------------------------------------------------

def warm_up(work, archs, their_too, tiny):
    """Crates downloaded and unpacked, and one untimed build per tool and architecture, before
    any timed build: the first build of a run would otherwise pay for both tools."""
    for lock_dir in [FIXTURE]:
        say(f"warm-up: cargo fetch ({lock_dir.name})")
        run(["cargo", "fetch", "--locked", "--manifest-path", lock_dir / "Cargo.toml"], lock_dir)
    if tiny:
        return
    for arch in archs:
        tools = [Ours("ours", sync_tree(FIXTURE, work / f"warm-ours-{arch}"), arch)]
        if their_too:
            tools.append(Theirs("theirs", sync_tree(FIXTURE, work / f"warm-theirs-{arch}"), arch))
        for tool in tools:
            say(f"warm-up: {arch}: {tool.name}: untimed build in a scratch copy")
            tool.build()
            shutil.rmtree(tool.dir, ignore_errors=True)  # even with --work: scratch


def echo_rows(work, arch, opts, editor):
    ours = Ours("ours", sync_tree(FIXTURE, work / f"ours-{arch}"), arch)
    theirs = Theirs("theirs", sync_tree(FIXTURE, work / f"theirs-{arch}"), arch)
    tools = (ours, theirs)
    cold = {t.name: [] for t in tools}
    noops = {t.name: [] for t in tools}
    edits = {t.name: [] for t in tools}
    main_rs = {t.name: t.dir / "src" / "main.rs" for t in tools}
    for i in range(opts.pairs):
        order = pair_order(i, ours, theirs)
        for tool in order:
            if opts.tiny:
                tool.build()  # kept target dirs: this is no cold build, so it is not a row
            else:
                say(f"{arch}: pair {i + 1}/{opts.pairs}: {tool.name}: cold build")
                tool.clean()
                cold[tool.name].append(tool.build()["s"])
        for _ in range(opts.reps):
            for tool in order:
                noops[tool.name].append(noop(tool, ["echo"])["s"])
        say(f"{arch}: pair {i + 1}/{opts.pairs}: edit-rebuild-zip")
        for _ in range(opts.reps):
            for tool in order:
                edits[tool.name].append(editor.edit(tool, "echo", main_rs[tool.name])["s"])
    facts = {t.name: zip_facts(t.zip_path()) for t in tools}
    rows = []
    if opts.tiny:
        rows.append(skipped("cold", f"cold build, {arch}", "--tiny keeps its target dirs"))
    else:
        rows.append(row("cold", f"cold build, {arch}", "s", cold["ours"], cold["theirs"], "cold"))
    rows += [
        row("noop", f"no-op build, {arch}", "s", noops["ours"], noops["theirs"], "noop"),
        row("edit", f"edit-rebuild-zip, {arch}", "s", edits["ours"], edits["theirs"], "edit"),
        row("zip", f"zip, default, {arch}", "B", [facts["ours"]["zip"]],
            [facts["theirs"]["zip"]], "zip"),
        row("bootstrap", f"bootstrap, {arch}", "B", [facts["ours"]["bootstrap"]],
            [facts["theirs"]["bootstrap"]]),
    ]
    if arch != "x86_64":
        discard(opts, *tools)
        return rows
    if opts.tiny:
        rows.append(skipped("small", "zip, `--small`, x86_64", "--tiny"))
    else:
        say("x86_64: ours: --small")
        small = Ours("small", sync_tree(FIXTURE, work / "ours-small"), arch, extra=["--small"])
        small.build()
        rows.append(row("small", "zip, `--small`, x86_64", "B",
                        [zip_facts(small.zip_path())["zip"]], [facts["theirs"]["zip"]], "small"))
        discard(opts, small)
    say("x86_64: start-up times")
    boots = [extract_bootstrap(t.zip_path(), work / f"{t.name}-boot") for t in tools]
    starts = [[], []]
    for i in range(opts.starts):
        for j in pair_order(i, 0, 1):
            starts[j].append(first_next_delay(boots[j]))
    rows.append(row("startup", "start-up to first next, x86_64", "s", starts[0], starts[1],
                    "startup"))
    # Our overhead over the cargo command we run (same flags, same environment), alternating.
    plain_cmd = ["cargo", "build", "--message-format", "json-render-diagnostics",
                 "--target", "x86_64-unknown-linux-gnu", "--profile", "release",
                 "--manifest-path", ours.dir / "Cargo.toml", "--bin", "echo", "--color", "never"]
    plain_env = dict(ours.env, CARGO_PROFILE_RELEASE_STRIP="symbols")
    ours_noop, plain = [], []
    for i in range(max(opts.reps, 3)):
        for which in pair_order(i, "ours", "plain"):
            if which == "ours":
                ours_noop.append(noop(ours, ["echo"])["s"])
            else:
                plain.append(run(plain_cmd, ours.dir, plain_env)["s"])
    overhead = statistics.median(ours_noop) - statistics.median(plain)
    discard(opts, *tools)
    rows.append(row("overhead", "our overhead over plain `cargo build`, no-op", "s", [overhead],
                    None, "overhead", note=f"plain cargo no-op {statistics.median(plain):.3f} s"))
    return rows


def discard(opts, *tools):
    """Each copy's target dir takes hundreds of MB: a run without --work removes it once its rows
    are taken."""
    if not opts.work:
        for tool in tools:
            shutil.rmtree(tool.dir, ignore_errors=True)


# --- Docker ----------------------------------------------------------------------------------

def engine_hosts():
    """The local engine and the one that shares no file system (its address from the
    environment, or from the file .ci/remote-docker.sh writes)."""
    local = os.environ.get("DOCKER_HOST")
    if not local and Path("/run/cargo-lambda-build/docker.sock").exists():
        local = "unix:///run/cargo-lambda-build/docker.sock"
    remote = os.environ.get("LAMBDA_BUILD_TEST_REMOTE_DOCKER_HOST")
    env_file = Path("/var/cache/cargo-lambda-build/remote-env.sh")
    if not remote and env_file.is_file():
        found = re.search(r"LAMBDA_BUILD_TEST_REMOTE_DOCKER_HOST=(\S+)", env_file.read_text())
        remote = found.group(1) if found else None
    return [("local", "local engine", local), ("remote", "engine sharing no files", remote)]


def docker_rows(work, opts, editor):
    help_text = subprocess.run([str(Ours.exe), "lambda-build", "--help"], capture_output=True,
                               text=True).stdout
    rows = []
    for slug, label, host in engine_hosts():
        if slug not in opts.engines:
            continue
        keys = [("docker-cold", f"`--docker` cold, {label}, x86_64"),
                ("docker-noop", f"`--docker` no-op, {label}, x86_64"),
                ("docker-edit", f"`--docker` edit-rebuild-zip, {label}, x86_64")]
        why = None
        if "--docker" not in help_text:
            why = "this build has no --docker"
        elif not host:
            why = "no address for this engine"
        elif subprocess.run(["docker", "version"], capture_output=True,
                            env=dict(os.environ, DOCKER_HOST=host)).returncode != 0:
            why = f"no Docker engine answers at {host}"
        if why:
            say(f"docker rows skipped ({label}): {why}")
            rows += [skipped(k, m, why) for k, m in keys]
            continue
        try:
            rows += docker_engine_rows(work, opts, editor, slug, label, host, keys)
        except BenchError as e:
            say(f"docker rows failed ({label}): {e}")
            rows += [skipped(k, m, f"failed: {str(e).splitlines()[0]}") for k, m in keys]
    return rows


def docker_engine_rows(work, opts, editor, slug, label, host, keys):
    def project(name):
        tool = Ours(f"docker-{slug}", sync_tree(FIXTURE, work / name), "x86_64",
                    extra=["--docker"])
        tool.env["DOCKER_HOST"] = host
        if opts.base_image:
            # The tests' image (.ci/docker.sh): the bundled image needs a network to build.
            (tool.dir / "lambda.Dockerfile").write_text(f"FROM {opts.base_image}\n")
        return tool

    say(f"docker ({label}): untimed build (the image, if missing)")
    warm = project(f"docker-{slug}-warm")
    warm.build()
    projects = [warm]
    cold, noops, edits = [], [], []
    try:
        for i in range(opts.pairs):
            say(f"docker ({label}): {i + 1}/{opts.pairs}: cold, no-op, edit")
            if opts.tiny:
                tool = warm  # kept target dir and volumes: no cold build
            else:
                # A new path is a new project: new volumes on an engine that cannot see the
                # files, a new target dir on one that can.
                tool = project(f"docker-{slug}-{i}")
                projects.append(tool)
                cold.append(tool.build()["s"])
            for _ in range(opts.reps):
                noops.append(noop(tool, ["echo"])["s"])
            for _ in range(opts.reps):
                edits.append(editor.edit(tool, "echo", tool.dir / "src" / "main.rs")["s"])
    finally:
        if slug == "remote" and not opts.work:
            remove_volumes(host, [p.dir for p in projects])
        discard(opts, *projects)
    if opts.tiny:
        first = skipped(keys[0][0], keys[0][1], "--tiny keeps its target dirs")
    else:
        first = row(keys[0][0], keys[0][1], "s", cold)
    return [first,
            row(keys[1][0], keys[1][1], "s", noops, goal="docker-noop"),
            row(keys[2][0], keys[2][1], "s", edits)]


def remove_volumes(host, roots):
    """The volumes of the benchmark's projects on an engine that cannot see the files (named as
    src/build/docker/sync.rs::volume_names does): they would otherwise stay on the engine."""
    names = []
    for root in roots:
        key = hashlib.sha256(str(root).encode()).hexdigest()[:16]
        names += [f"cargo-lambda-build-{key}-x86_64-{k}" for k in ("src", "registry", "target")]
    subprocess.run(["docker", "volume", "rm", "-f", *names], capture_output=True,
                   env=dict(os.environ, DOCKER_HOST=host))


# --- the watch loop ---------------------------------------------------------------------------

# A greeting literal of either project: echo's `"hello, {}"`, the http template's
# `"hello, {name}"`; an edit keeps the placeholder.
WATCH_GREETING = re.compile(r'"hello[^",{}]*, \{(name)?\}"')


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http(method, url, timeout):
    """The body of the answer, or None (refused, timed out, an error status)."""
    import urllib.error
    import urllib.request
    data = b"{}" if method == "POST" else None
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.read().decode(errors="replace")
    except (urllib.error.URLError, OSError, ValueError):
        return None


class Loop:
    """One watch server on one copy of a project: started, edited, stopped."""

    def __init__(self, name, label, project, command, env, method, path):
        self.name, self.label, self.project = name, label, project
        self.port = free_port()
        self.command = [str(c) for c in command(self.port)]
        self.env, self.method, self.path = env, method, path
        self.log = open(project.parent / f"{project.name}-{name}.log", "wb")
        self.proc = None

    def url(self):
        return f"http://127.0.0.1:{self.port}{self.path}"

    def start(self):
        self.proc = subprocess.Popen(self.command, cwd=self.project, env=self.env,
                                     stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def wait_for(self, text, limit):
        """Seconds until an answer contains `text`; polls every 20 ms."""
        start = time.perf_counter()
        while time.perf_counter() - start < limit:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.label} exited ({self.proc.returncode}); its output: "
                                 f"{self.log.name}")
            answer = http(self.method, self.url(), timeout=max(1.0, limit / 4))
            if answer is not None and text in answer:
                return time.perf_counter() - start
            time.sleep(0.02)
        raise BenchError(f"{self.label}: no answer with `{text}` within {limit} s; its output: "
                         f"{self.log.name}")

    def edit(self, marker):
        main_rs = self.project / "src" / "main.rs"
        text = main_rs.read_text()
        if not WATCH_GREETING.search(text):
            raise BenchError(f"no greeting literal to edit in {main_rs}")
        edited = WATCH_GREETING.sub(lambda m: f'"{marker}, {{{m.group(1) or ""}}}"', text,
                                    count=1)
        main_rs.write_text(edited)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            for sig, grace in ((2, 20), (9, 5)):  # SIGINT, then SIGKILL
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self.log.close()


def new_http_function(work, name):
    """A function made by `new --http`, with its lock file (nothing to resolve)."""
    dest = work / name
    if not (dest / "Cargo.toml").is_file():
        run([Ours.exe, "lambda-build", "new", "--http", dest], work)
    return dest


def watch_loops(work, project_name, source, opts, target):
    """The three loops on their own copies of `source`."""
    env = dict(os.environ, CARGO_TARGET_DIR=str(target))
    env.pop("SOURCE_DATE_EPOCH", None)
    loops = []
    for name, label in (("zip", "`serve --watch`"), ("native", "`serve --watch --native`"),
                        ("theirs", "`cargo lambda watch`")):
        project = work / f"watch-{project_name}-{name}"
        sync_tree(source, project)
        bin_ = "echo" if project_name == "echo" else source.name
        if name == "theirs":
            # Their invoke API for a plain function, their Function URL path for an HTTP one.
            method, path = (("POST", f"/2015-03-31/functions/{bin_}/invocations")
                            if project_name == "echo" else ("GET", f"/lambda-url/{bin_}/"))
            command = lambda port: ["cargo-lambda", "lambda", "watch", "-A", "127.0.0.1",
                                    "-P", str(port)]
        else:
            method, path = "GET", "/"
            extra = ["--native"] if name == "native" else []
            command = lambda port, extra=extra: [Ours.exe, "lambda-build", "serve", "--watch",
                                                 "--port", str(port)] + extra
        loops.append(Loop(name, label, project, command, env, method, path))
    return loops


def watch_rows(work, opts, target):
    """Edit saved -> new answer, per project and loop; the ratio of each of ours to theirs."""
    projects = []
    if "echo" in opts.watch_projects:
        projects.append(("echo", FIXTURE))
    if "http" in opts.watch_projects and not opts.tiny:
        projects.append(("http", new_http_function(work, "http-source")))
    rows, editor = [], 0
    for project_name, source in projects:
        loops = watch_loops(work, project_name, source, opts, target)
        samples = {lp.name: [] for lp in loops}
        try:
            for lp in loops:
                say(f"watch: {project_name}: {lp.label}: starting (untimed first build)")
                lp.start()
                lp.wait_for("hello", limit=opts.watch_start_limit)
            for i in range(opts.watch_edits):
                for lp in loops if i % 2 == 0 else loops[::-1]:
                    editor += 1
                    marker = f"hello{os.getpid()}w{editor}"
                    time.sleep(0.5)  # the loop at rest: a tail of the last rebuild settles
                    lp.edit(marker)
                    samples[lp.name].append(lp.wait_for(marker, limit=300))
                    say(f"watch: {project_name}: {lp.label}: edit {i + 1}: "
                        f"{samples[lp.name][-1]:.2f} s")
        finally:
            for lp in loops:
                lp.stop()
        what = {"echo": "echo fixture", "http": "`new --http` function"}[project_name]
        for name, label in (("zip", "`serve --watch`"), ("native", "`serve --watch --native`")):
            rows.append(row(f"watch-{name}", f"edit to new answer, {label}, {what}", "s",
                            samples[name], samples["theirs"], "watch"))
    return rows


def latency_rows(work, opts):
    """The echo zip served by `serve` and by `serve --docker`, one after the other: seconds from
    the start to the first answer (`--latency-starts` starts) and warm requests (the first start's
    server, `--latency-requests` of them, one at a time)."""
    project = work / "latency-echo"
    sync_tree(FIXTURE, project)
    env = dict(os.environ, CARGO_TARGET_DIR=str(Path(opts.ours_target_dir).resolve()
                                                if opts.ours_target_dir
                                                else work / "target-latency"))
    env.pop("SOURCE_DATE_EPOCH", None)
    say("latency: building the echo zip (untimed)")
    run([Ours.exe, "lambda-build", "--zip", "-q"], project, env)
    image = ["--docker-image", opts.base_image] if opts.base_image else []
    modes = (("host", "`serve`", []), ("docker", "`serve --docker`", ["--docker"] + image))
    first, warm = {}, {}
    for name, label, extra in modes:
        first[name], warm[name] = [], []
        for i in range(opts.latency_starts):
            lp = Loop(f"latency-{name}", label, project,
                      lambda port, extra=extra: [Ours.exe, "lambda-build", "serve", "lambda.zip",
                                                 "--port", str(port)] + extra,
                      env, "GET", "/")
            lp.start()
            try:
                first[name].append(lp.wait_for("hello", limit=300))
                if i == 0:
                    for _ in range(opts.latency_requests):
                        start = time.perf_counter()
                        if http("GET", lp.url(), timeout=30) is None:
                            raise BenchError(f"{label}: a warm request failed; its output: "
                                             f"{lp.log.name}")
                        warm[name].append(time.perf_counter() - start)
            finally:
                lp.stop()
            say(f"latency: {label}: start {i + 1}: first answer {first[name][-1]:.2f} s")
        say(f"latency: {label}: warm median {statistics.median(warm[name]) * 1000:.1f} ms")
    # "ours" is the container, "theirs" this machine: the ratio is what the container costs.
    return [row("latency-first", "start to first answer, echo zip", "s", first["docker"],
                first["host"]),
            row("latency-warm", "warm request, echo zip", "s", warm["docker"], warm["host"])]


def latency_main(opts, previous):
    """`--latency`: the latency rows, into the last results."""
    started = time.time()
    rows, load_before, load_after = in_work_dir(opts, lambda work: latency_rows(work, opts))
    if previous.get("schema") != SCHEMA or not previous.get("rows"):
        raise BenchError(f"{opts.json} holds no full run: run `python3 bench/compare.py` first")
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started))
    previous["latency"] = {
        "date": date,
        "duration_s": round(time.time() - started, 1),
        "engine": os.environ.get("DOCKER_HOST") or "the default engine",
        "image": opts.base_image or "the bundled build image",
        "load_average": {"before": load_before, "after": load_after},
        "rows": rows,
    }
    Path(opts.json).write_text(json.dumps(previous, indent=2) + "\n")
    render(opts.markdown, previous)
    for r in rows:
        print(f"{r['metric']:<40} serve {fmt(r['theirs']['median'], 's'):>10}  "
              f"serve --docker {fmt(r['ours']['median'], 's'):>10}")
    say(f"\nwrote {opts.json} and the latency table of {opts.markdown}")


# --- many functions --------------------------------------------------------------------------

def write_workspace(root, n):
    """N small lambda_runtime functions (the echo fixture's source and dependencies, each with
    its own greeting) in one workspace, with the echo fixture's lock file."""
    root.mkdir(parents=True, exist_ok=True)
    names = [f"f{i:03}" for i in range(1, n + 1)]
    deps = FIXTURE.joinpath("Cargo.toml").read_text().split("[dependencies]")[1]
    deps = deps.split("[workspace]")[0].strip()
    source = FIXTURE.joinpath("src", "main.rs").read_text()
    files = {"Cargo.toml": "[workspace]\nresolver = \"3\"\nmembers = [" +
             ", ".join(f'"{m}"' for m in names) + "]\n\n[workspace.dependencies]\n" + deps + "\n",
             "Cargo.lock": FIXTURE.joinpath("Cargo.lock").read_text()}
    for name in names:
        files[f"{name}/Cargo.toml"] = (
            f'[package]\nname = "{name}"\nversion = "0.1.0"\nedition = "2024"\npublish = false\n\n'
            "[dependencies]\nlambda_runtime.workspace = true\nserde.workspace = true\n"
            "serde_json.workspace = true\ntokio.workspace = true\n")
        files[f"{name}/src/main.rs"] = source.replace('"hello, {}"', f'"hello from {name}, {{}}"')
    for rel, text in files.items():
        write_if_changed(root / rel, text)
    return names


def scale_rows(work, opts, editor):
    results = []
    for k, n in enumerate(opts.scale):
        tools = []
        for cls, name in ((Ours, "ours"), (Theirs, "theirs")):
            root = work / f"scale-{name}-{n}"
            bins = write_workspace(root, n)
            # The members join the echo lock file's resolution offline; not timed.
            run(["cargo", "fetch", "--offline", "--manifest-path", root / "Cargo.toml"], root)
            tools.append(cls(name, root, "x86_64", bins=bins, workspace=True))
        ours, theirs = tools
        result = {"n": n}
        for tool in pair_order(k, ours, theirs):
            say(f"scale: {n} functions: {tool.name}: cold")
            if not opts.tiny:
                tool.clean()
            cold = tool.build(tree_memory=True)
            noops = [noop(tool, tool.bins)["s"] for _ in range(opts.reps)]
            main_rs = tool.dir / tool.bins[0] / "src" / "main.rs"
            edits = [editor.edit(tool, tool.bins[0], main_rs)["s"] for _ in range(opts.reps)]
            for bin_ in tool.bins:
                zip_facts(tool.zip_path(bin_))
            result[tool.name] = {
                "cold": None if opts.tiny else cold["s"],
                "noop": summary(noops), "edit": summary(edits),
                "peak_tree_bytes": cold["tree"], "peak_process_bytes": cold["maxrss"]}
        results.append(result)
        discard(opts, ours, theirs)
    return results


def plot(scale, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install matplotlib)"
    ns = [r["n"] for r in scale]
    panels = [("cold build (s)", lambda r: r["cold"]),
              ("no-op (s, median)", lambda r: r["noop"]["median"]),
              ("edit one function (s, median)", lambda r: r["edit"]["median"]),
              ("peak memory, whole run (MiB)", lambda r: (r["peak_tree_bytes"] or 0) / 2**20)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4))
    for ax, (title, get) in zip(axes, panels):
        for tool, label, style in (("ours", "cargo-lambda-build", "o-"),
                                   ("theirs", "cargo-lambda", "s--")):
            ys = [get(r[tool]) for r in scale]
            if any(y is None for y in ys):
                continue
            ax.plot(ns, ys, style, label=label)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("functions in the workspace")
        ax.set_xscale("log")
        ax.set_xticks(ns, [str(n) for n in ns])
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
    axes[1].legend(fontsize=8)  # the no-op panel always has both lines
    fig.tight_layout()
    # No date in the SVG, so the same numbers give the same file.
    fig.savefig(path, metadata={"Date": None} if str(path).endswith(".svg") else None)
    plt.close(fig)
    return None


# --- output ----------------------------------------------------------------------------------

def fmt(value, unit):
    if value is None:
        return ""
    if unit == "s":
        return f"{value * 1000:.1f} ms" if abs(value) < 1 else f"{value:.2f} s"
    return f"{value / 1024:.1f} KiB"


def cell(summary_, unit):
    if not summary_:
        return ""
    text = fmt(summary_["median"], unit)
    if summary_["n"] > 1:
        text += f" ({fmt(summary_['min'], unit)} to {fmt(summary_['max'], unit)}, n={summary_['n']})"
    return text


def results_markdown(results):
    load = results["load_average"]
    lines = [
        f"Run of {results['date']}: {results['machine']['cpus']} CPUs, "
        f"{results['machine']['platform']}, {results['cargo_lambda']}, "
        f"{results['settings']['pairs']} pair(s) per row, {results['settings']['reps']} no-op "
        f"and edit sample(s) per pair and tool. Load average (1, 5, 15 min) before: "
        f"{load['before']['1m']}, {load['before']['5m']}, {load['before']['15m']}; after: "
        f"{load['after']['1m']}, {load['after']['5m']}, {load['after']['15m']}."
        + (" **A --tiny run: a check that the script works, not a measurement.**"
           if results["settings"]["tiny"] else ""),
        "",
        "Each cell: median (min to max, n = samples). Ratio: ours / theirs, of the medians.",
        "",
        "| metric | ours | cargo-lambda | ours / theirs | goal | |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    for r in results["rows"]:
        ratio = f"**{r['ratio']:.2f}**" if r["ratio"] is not None and r["met"] else (
            f"{r['ratio']:.2f}" if r["ratio"] is not None else "")
        verdict = {True: "met", False: "missed", None: ""}[r["met"]]
        if r["note"]:
            verdict = f"{verdict}; {r['note']}" if verdict else r["note"]
        goal = (r["goal"] or "").replace("<=", "≤")
        lines.append(f"| {r['metric']} | {cell(r['ours'], r['unit'])} | "
                     f"{cell(r['theirs'], r['unit'])} | {ratio} | {goal} | {verdict} |")
    return "\n".join(lines)


def scale_markdown(results):
    scale = results.get("scale") or []
    if not scale:
        return "Not measured in the latest run."
    lines = [
        "x86_64; each tool builds the whole workspace in one command (ours: `cargo lambda-build "
        "--workspace --zip`; cargo-lambda: `cargo lambda build --release --output-format zip`). "
        "No-op and edit: median of the samples; peak memory: the summed resident memory of the "
        "whole process tree, sampled every 0.2 s (largest single process in brackets).",
        "",
        "| functions | tool | cold | cold per function | no-op | edit one function | "
        "peak memory |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in scale:
        for tool, name in (("ours", "cargo-lambda-build"), ("theirs", "cargo-lambda")):
            t = r[tool]
            per = fmt(t["cold"] / r["n"], "s") if t["cold"] is not None else ""
            mem = (f"{(t['peak_tree_bytes'] or 0) / 2**20:.0f} MiB "
                   f"({t['peak_process_bytes'] / 2**20:.0f} MiB)")
            lines.append(f"| {r['n']} | {name} | {fmt(t['cold'], 's')} | {per} | "
                         f"{fmt(t['noop']['median'], 's')} | {fmt(t['edit']['median'], 's')} | "
                         f"{mem} |")
    if results.get("plot"):
        lines += ["", f"![cost as the workspace grows]({results['plot']})"]
    elif results.get("plot_skipped"):
        lines += ["", f"No plot: {results['plot_skipped']}."]
    return "\n".join(lines)


def watch_markdown(results):
    watch = results.get("watch")
    if not watch:
        return "Not measured yet: `python3 bench/compare.py --watch`."
    load = watch["load_average"]
    lines = [
        f"Last run {watch['date']} ({watch['duration_s']} s): {results['machine']['cpus']} "
        f"CPUs, {watch['cargo_lambda']}, {watch['edits']} edits per loop and project, the loops "
        f"edited in turn. Load average (1, 5, 15 min) before: {load['before']['1m']}, "
        f"{load['before']['5m']}, {load['before']['15m']}; after: {load['after']['1m']}, "
        f"{load['after']['5m']}, {load['after']['15m']}. Each row says when it was measured "
        "and the 1-minute load before and after its run.",
        "",
        "Each cell: seconds from the edit saved to the first HTTP answer of the new code, "
        "median (min to max, n = edits). The cargo-lambda column is `cargo lambda watch` on "
        "its own copy of the same project, edited in the same rounds.",
        "",
        "| metric | ours | cargo-lambda | ours / theirs | goal | |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    for r in watch["rows"]:
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else ""
        if r["met"]:
            ratio = f"**{ratio}**"
        verdict = {True: "met", False: "missed", None: ""}[r["met"]]
        if r.get("note"):
            verdict = f"{verdict}; {r['note']}" if verdict else r["note"]
        goal = (r["goal"] or "").replace("<=", "≤")
        lines.append(f"| {r['metric']} | {cell(r['ours'], 's')} | {cell(r['theirs'], 's')} | "
                     f"{ratio} | {goal} | {verdict} |")
    return "\n".join(lines)


def latency_markdown(results):
    latency = results.get("latency")
    if not latency:
        return "Not measured yet: `python3 bench/compare.py --latency`."
    load = latency["load_average"]
    lines = [
        f"Last run {latency['date']} ({latency['duration_s']} s), engine {latency['engine']}, "
        f"image {latency['image']}. Load average (1 min) before {load['before']['1m']}, "
        f"after {load['after']['1m']}.",
        "",
        "| metric | `serve` | `serve --docker` | container / host |",
        "| --- | ---: | ---: | ---: |",
    ]
    for r in latency["rows"]:
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else ""
        lines.append(f"| {r['metric']} | {cell(r['theirs'], 's')} | {cell(r['ours'], 's')} | "
                     f"{ratio} |")
    return "\n".join(lines)


def render(markdown_path, results):
    """Replaces what lies between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`."""
    text = Path(markdown_path).read_text()
    for name, body in (("results", results_markdown(results)),
                       ("scale", scale_markdown(results)),
                       ("watch", watch_markdown(results)),
                       ("latency", latency_markdown(results))):
        pattern = re.compile(rf"(<!-- bench:{name} -->\n).*?(\n<!-- /bench:{name} -->)", re.S)
        if not pattern.search(text):
            raise BenchError(f"{markdown_path} has no <!-- bench:{name} --> ... "
                             f"<!-- /bench:{name} --> markers")
        text = pattern.sub(lambda m: m.group(1) + body + m.group(2), text)
    Path(markdown_path).write_text(text)


def print_table(results):
    print(f"\ncargo-lambda-build vs {results['cargo_lambda']}\n")
    header = f"{'metric':<52} {'ours':>12} {'theirs':>12} {'ratio':>7} {'goal':>12}"
    print(header)
    print("-" * len(header))
    for r in results["rows"]:
        o = fmt(r["ours"]["median"], r["unit"]) if r["ours"] else "-"
        t = fmt(r["theirs"]["median"], r["unit"]) if r["theirs"] else "-"
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "-"
        goal = (r["goal"] or "") + {True: " ok", False: " MISS", None: ""}[r["met"]]
        print(f"{r['metric']:<52} {o:>12} {t:>12} {ratio:>7} {goal:>12}"
              + (f"  ({r['note']})" if r["note"] else ""))
    for r in results.get("scale") or []:
        for tool in ("ours", "theirs"):
            t = r[tool]
            print(f"scale {r['n']:>3} {tool:<7} cold {fmt(t['cold'], 's'):>10} "
                  f"no-op {fmt(t['noop']['median'], 's'):>10} "
                  f"edit {fmt(t['edit']['median'], 's'):>10} "
                  f"peak {(t['peak_tree_bytes'] or 0) / 2**20:.0f} MiB")


# --- main ------------------------------------------------------------------------------------

def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", help="architectures of the echo rows (default x86_64,arm64; "
                                        "empty: none)")
    parser.add_argument("--pairs", type=int, default=3,
                        help="pairs of builds per row (order alternates)")
    parser.add_argument("--reps", type=int, default=3,
                        help="no-op and edit samples per pair and tool")
    parser.add_argument("--starts", type=int, default=30)
    parser.add_argument("--scale", help="workspace sizes, comma-separated (default 1,5,20,50; "
                                        "empty: none)")
    parser.add_argument("--docker", action="store_true",
                        help="also the --docker rows, on each engine that answers")
    parser.add_argument("--engines", default="local,remote",
                        help="for --docker: which engines (local: DOCKER_HOST; remote: "
                             "LAMBDA_BUILD_TEST_REMOTE_DOCKER_HOST)")
    parser.add_argument("--base-image", default=os.environ.get("LAMBDA_BUILD_TEST_BASE_IMAGE"),
                        help="for --docker: a lambda.Dockerfile FROM this image (default: the "
                             "tests' LAMBDA_BUILD_TEST_BASE_IMAGE; unset: the bundled image)")
    parser.add_argument("--exe", help="the cargo-lambda-build binary (default: build it in "
                                      "release)")
    parser.add_argument("--work", help="keep the copies and target dirs here (default: a "
                                       "temporary directory, removed)")
    parser.add_argument("--tiny", action="store_true",
                        help="a check that the script runs: x86_64, one pair, one sample, one "
                             "function, no cold rows, kept target dirs; needs --work")
    parser.add_argument("--ours-target-dir",
                        help="--tiny: the target dir our builds share (default: one under "
                             "--work); --watch: the one the three loops share")
    parser.add_argument("--json", default=str(REPO / "bench" / "results.json"))
    parser.add_argument("--markdown", default=str(REPO / "BENCHMARKS.md"),
                        help="the file whose bench markers receive the tables")
    parser.add_argument("--plot", default=str(REPO / "bench" / "scale.svg"))
    parser.add_argument("--render-only", action="store_true",
                        help="only render --json's results into --markdown")
    parser.add_argument("--watch", action="store_true",
                        help="only the watch loop rows: edit saved -> new HTTP answer for "
                             "`serve --watch`, `serve --watch --native` and `cargo lambda "
                             "watch`, on the echo fixture and the `new --http` function")
    parser.add_argument("--watch-projects", default="echo,http",
                        help="for --watch: which projects (echo: the fixture; http: the `new "
                             "--http` function)")
    parser.add_argument("--watch-edits", type=int, default=3,
                        help="edits per loop and project (default 3)")
    parser.add_argument("--watch-start-limit", type=float, default=1800,
                        help="seconds a loop may take to serve its first build (cold "
                             "dependencies included)")
    parser.add_argument("--latency", action="store_true",
                        help="only serve's request latency: `serve` against `serve --docker` on "
                             "the echo zip (a Docker engine needed)")
    parser.add_argument("--latency-starts", type=int, default=3,
                        help="for --latency: server starts per mode (default 3)")
    parser.add_argument("--latency-requests", type=int, default=50,
                        help="for --latency: warm requests per mode (default 50)")
    args = parser.parse_args(argv)
    if args.tiny:
        if not args.work:
            parser.error("--tiny needs --work DIR (its target dirs are kept between runs)")
        args.pairs, args.reps, args.starts = 1, 1, 3
    if args.archs is None:
        args.archs = "x86_64" if args.tiny else "x86_64,arm64"
    if args.scale is None:
        args.scale = "1" if args.tiny else "1,5,20,50"
    args.engines = [e for e in args.engines.split(",") if e]
    args.watch_projects = [p for p in args.watch_projects.split(",") if p]
    args.archs = [a for a in args.archs.split(",") if a]
    args.scale = [int(n) for n in args.scale.split(",") if n]
    return args


def main(argv=None):
    opts = parse_args(argv)
    if opts.render_only:
        render(opts.markdown, json.loads(Path(opts.json).read_text()))
        say(f"rendered {opts.json} into {opts.markdown}")
        return
    if not shutil.which("cargo-lambda"):
        raise BenchError("cargo-lambda is not on PATH: pip install cargo-lambda")
    if opts.exe:
        Ours.exe = Path(opts.exe).resolve()
    else:
        say("building cargo-lambda-build (release)...")
        run(["cargo", "build", "--release", "--locked"], REPO)
        Ours.exe = REPO / "target" / "release" / "cargo-lambda-build"
    their_version = subprocess.run(["cargo-lambda", "lambda", "--version"], capture_output=True,
                                   text=True).stdout.strip()
    previous = {}
    if Path(opts.json).is_file():
        previous = json.loads(Path(opts.json).read_text())
    if opts.watch:
        return watch_main(opts, previous, their_version)
    if opts.latency:
        return latency_main(opts, previous)

    started = time.time()

    def measure(work):
        if opts.tiny:
            Tool.tiny_targets = {
                "ours": Path(opts.ours_target_dir or work / "target-ours").resolve(),
                "theirs": work / "target-theirs"}
        editor = Editor()
        warm_up(work, opts.archs, True, opts.tiny)
        rows = []
        for arch in opts.archs:
            rows += echo_rows(work, arch, opts, editor)
        if opts.docker:
            rows += docker_rows(work, opts, editor)
        else:
            rows.append(skipped("docker-noop", "`--docker` no-op, local engine, x86_64",
                                "run with --docker"))
        return rows, scale_rows(work, opts, editor)

    (rows, scale), load_before, load_after = in_work_dir(opts, measure)

    results = {
        "schema": SCHEMA,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "duration_s": round(time.time() - started, 1),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "cargo_lambda": their_version,
        "settings": {"pairs": opts.pairs, "reps": opts.reps, "starts": opts.starts,
                     "archs": opts.archs, "scale": opts.scale, "docker": opts.docker,
                     "tiny": opts.tiny},
        "load_average": {"before": load_before, "after": load_after},
        "rows": rows,
        "scale": scale,
    }
    for kept in ("watch", "latency"):
        if previous.get(kept):
            results[kept] = previous[kept]
    if scale:
        why = plot(scale, opts.plot)
        if why:
            say(f"no plot: {why}")
            results["plot_skipped"] = why
        else:
            results["plot"] = os.path.relpath(opts.plot, Path(opts.markdown).resolve().parent)
    Path(opts.json).write_text(json.dumps(results, indent=2) + "\n")
    render(opts.markdown, results)
    print_table(results)
    say(f"\nwrote {opts.json} and the tables of {opts.markdown} in {results['duration_s']} s")


def in_work_dir(opts, measure):
    """measure(work) in --work (else a temporary directory, removed after), with the load
    average before and after."""
    load_before = load_average()
    say(f"load average before: {load_before}")
    work = Path(opts.work).resolve() if opts.work else Path(tempfile.mkdtemp(prefix="lambda-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        measured = measure(work)
    finally:
        if not opts.work:
            shutil.rmtree(work, ignore_errors=True)
    load_after = load_average()
    say(f"load average after: {load_after}")
    return measured, load_before, load_after


def watch_main(opts, previous, their_version):
    """`--watch`: the watch rows, into the last results (or alone, the first time)."""
    started = time.time()

    def measure(work):
        # One target dir for the three loops: their dependencies compile once (ours in
        # release for Lambda's target, the native loop's and cargo-lambda's in dev for this
        # machine).
        target = (Path(opts.ours_target_dir).resolve() if opts.ours_target_dir
                  else work / "target-watch")
        return watch_rows(work, opts, target)

    rows, load_before, load_after = in_work_dir(opts, measure)
    results = previous if previous.get("schema") == SCHEMA else {
        "schema": SCHEMA, "date": "", "machine": {}, "settings": {}, "rows": [], "scale": [],
        "load_average": {"before": load_before, "after": load_after}, "cargo_lambda": their_version}
    results["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "python": platform.python_version()}
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started))
    for r in rows:
        r["note"] = f"{date}, load {load_before['1m']} to {load_after['1m']}"
    # Rows of projects not measured this time stay as their last run left them.
    kept = [r for r in (results.get("watch") or {}).get("rows", [])
            if r["metric"] not in {n["metric"] for n in rows}]
    rows = kept + rows
    results["watch"] = {
        "date": date,
        "duration_s": round(time.time() - started, 1),
        "cargo_lambda": their_version,
        "edits": opts.watch_edits,
        "load_average": {"before": load_before, "after": load_after},
        "rows": rows,
    }
    Path(opts.json).write_text(json.dumps(results, indent=2) + "\n")
    if results.get("rows"):
        render(opts.markdown, results)
    else:
        say("no full run in the results yet: the markdown is left as it is")
    print(f"\nwatch loop, {their_version}\n")
    for r in rows:
        o = fmt(r["ours"]["median"], "s") if r["ours"] else "-"
        t = fmt(r["theirs"]["median"], "s") if r["theirs"] else "-"
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "-"
        print(f"{r['metric']:<64} {o:>10} {t:>10} {ratio:>6}")
    say(f"\nwrote {opts.json} and the watch table of {opts.markdown}")


if __name__ == "__main__":
    try:
        main()
    except BenchError as e:
        sys.exit(f"benchmark: {e}")
