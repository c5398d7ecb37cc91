#!/usr/bin/env bash
# Builds the arm64 image that container mode's arm64 test runs a function in
# (tests/it/invoke_docker.rs), since no image can be pulled here: Debian bookworm (minbase) for
# arm64 from debootstrap, imported for the platform linux/arm64. It holds no toolchain: only
# what runs a function (glibc, libgcc, /bin/sh, /usr/bin/env).
#
# The engine runs its containers under qemu-user, which `.ci/docker.sh` registers with
# binfmt_misc (flag F: the kernel opens qemu once, so it runs inside containers that lack it);
# debootstrap's second stage runs arm64 programs the same way.
#
# usage: docker/test-arm64-image.sh IMAGE_NAME [CACHE_DIR]
# The debootstrap tree is cached in CACHE_DIR (default /var/cache/cargo-lambda-build).
set -euo pipefail

image=${1:?usage: $0 IMAGE_NAME [CACHE_DIR]}
cache=${2:-/var/cache/cargo-lambda-build}
rootfs_tar="$cache/bookworm-arm64-minbase.tar"

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "test arm64 image $image exists"
  exit 0
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  echo "error: qemu-aarch64 is not registered with binfmt_misc (.ci/docker.sh registers it)" >&2
  exit 1
fi

mkdir -p "$cache"
work=$(mktemp -d /var/tmp/lambda-build-arm64.XXXXXX)
trap 'rm -rf "$work"' EXIT
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/rootfs.sh"
bookworm_rootfs_tar arm64 "" "$rootfs_tar" "$work"
# `docker import --platform` records the engine's own architecture on dockerd 20.10: the image is
# loaded instead, as the one-layer image `docker save` would write, its config saying arm64.
python3 - "$rootfs_tar" "$image" <<'PY' | docker load >/dev/null
import hashlib, io, json, sys, tarfile
layer, name = sys.argv[1], sys.argv[2]
digest = hashlib.sha256()
with open(layer, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
        digest.update(block)
diff_id = "sha256:" + digest.hexdigest()
config = json.dumps({
    "architecture": "arm64",
    "os": "linux",
    "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
    "rootfs": {"type": "layers", "diff_ids": [diff_id]},
}).encode()
config_name = hashlib.sha256(config).hexdigest() + ".json"
manifest = json.dumps([{"Config": config_name, "RepoTags": [name], "Layers": ["layer/layer.tar"]}]).encode()
with tarfile.open(fileobj=sys.stdout.buffer, mode="w|") as out:
    for member, data in [(config_name, config), ("manifest.json", manifest)]:
        info = tarfile.TarInfo(member)
        info.size = len(data)
        out.addfile(info, io.BytesIO(data))
    out.add(layer, arcname="layer/layer.tar")
PY
echo "loaded $image (linux/arm64)"
