#!/usr/bin/env bash
# Builds the base image that the Docker tests start `FROM` (in their own `lambda.Dockerfile`),
# since no image can be pulled here: Debian bookworm from debootstrap, the host's Rust toolchain
# copied in (it must have the aarch64-unknown-linux-gnu std), cargo-zigbuild and zig from PyPI,
# and the compiler wrappers and linker environment taken verbatim from the bundled
# lambda.Dockerfile, so the tests cross-compile arm64 exactly as the bundled image does.
#
# It meets the image contract of docs/docker.md: `cargo` on PATH, both Linux targets, and the
# linker environment for cross builds.
#
# usage: docker/test-base-image.sh IMAGE_NAME [CACHE_DIR]
# The debootstrap tree and the wheels are cached in CACHE_DIR (default
# /var/cache/cargo-lambda-build), so rebuilding the image takes seconds, not minutes.
set -euo pipefail

image=${1:?usage: $0 IMAGE_NAME [CACHE_DIR]}
cache=${2:-/var/cache/cargo-lambda-build}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dockerfile="$repo/lambda.Dockerfile"
packages=ca-certificates,gcc,g++,libc6-dev
# The package list is in the name, so changing it makes a new tarball.
rootfs_tar="$cache/bookworm-minbase-$(printf %s "$packages" | sha256sum | cut -c1-12).tar"

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "test base image $image exists"
  exit 0
fi

sysroot=$(rustc --print sysroot)
for triple in x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu; do
  if [ ! -d "$sysroot/lib/rustlib/$triple/lib" ]; then
    echo "error: the host toolchain $sysroot lacks the $triple std" >&2
    echo "help: rustup target add $triple" >&2
    exit 1
  fi
done

# The instruction of lambda.Dockerfile that starts with $1, continuation lines joined.
instruction() {
  awk -v start="$1" '
    index($0, start) == 1 { on = 1 }
    on { line = $0; more = sub(/\\$/, "", line); printf "%s ", line; if (!more) exit }
  ' "$dockerfile"
}
arg_default() { sed -n "s/^ARG $1=//p" "$dockerfile"; }
wrappers=$(instruction 'RUN set -eu; ')
linker_env=$(instruction 'ENV CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER=')
[ -n "$wrappers" ] && [ -n "$linker_env" ] || { echo "error: cannot find the wrapper RUN and linker ENV in $dockerfile" >&2; exit 1; }

work=$(mktemp -d /var/tmp/lambda-build-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$cache" "$work/rootfs"

. "$repo/docker/rootfs.sh"
bookworm_rootfs_tar "" "$packages" "$rootfs_tar" "$work"
# A fresh debootstrap left its tree in place; a cached one is unpacked.
[ -d "$work/rootfs/usr" ] || tar -C "$work/rootfs" -xf "$rootfs_tar"

# The toolchain without its documentation (share/ is mostly HTML).
mkdir -p "$work/rootfs/usr/local/rust"
cp -a "$sysroot/bin" "$sysroot/lib" "$work/rootfs/usr/local/rust/"
[ -d "$sysroot/libexec" ] && cp -a "$sysroot/libexec" "$work/rootfs/usr/local/rust/"
chmod -R a+rX "$work/rootfs/usr/local/rust"

# cargo-zigbuild and zig, the versions lambda.Dockerfile pins, from their wheels (the image has
# no Python: zig goes on PATH, where cargo-zigbuild looks first).
wheels="$cache/wheels"
zigbuild_version=$(arg_default CARGO_ZIGBUILD_VERSION)
zig_version=$(arg_default ZIGLANG_VERSION)
python3 -m pip download --disable-pip-version-check -q --no-deps --only-binary=:all: \
  -d "$wheels" "cargo-zigbuild==$zigbuild_version" "ziglang==$zig_version"
python3 - "$wheels" "$zigbuild_version" "$zig_version" "$work/rootfs/usr/local" <<'PY'
import glob, os, sys, zipfile
wheels, zigbuild, zig, prefix = sys.argv[1:]
def wheel(name, version):
    [path] = glob.glob(f"{wheels}/{name}-{version}-*.whl")
    return zipfile.ZipFile(path)
z = wheel("cargo_zigbuild", zigbuild)
exe = f"{prefix}/bin/cargo-zigbuild"
with open(exe, "wb") as out:
    out.write(z.read(f"cargo_zigbuild-{zigbuild}.data/scripts/cargo-zigbuild"))
os.chmod(exe, 0o755)
z = wheel("ziglang", zig)
for info in z.infolist():
    if info.filename.startswith("ziglang/") and not info.is_dir():
        dest = f"{prefix}/lib/{info.filename}"
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "wb") as out:
            out.write(z.read(info))
        os.chmod(dest, 0o755 if info.filename == "ziglang/zig" else 0o644)
os.symlink("../lib/ziglang/zig", f"{prefix}/bin/zig")
PY

# The compiler wrappers exactly as lambda.Dockerfile writes them.
chroot "$work/rootfs" /bin/sh -c "${wrappers#RUN }"

echo "importing $image"
tar -C "$work/rootfs" -c . | docker import \
  -c 'ENV PATH=/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c "$linker_env" \
  -c 'CMD ["cargo", "--version"]' \
  - "$image" >/dev/null
docker image inspect --format '{{.Size}}' "$image" | awk -v i="$image" '{ printf "imported %s (%.0f MiB)\n", i, $1/1048576 }'
