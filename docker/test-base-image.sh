#!/usr/bin/env bash
# Builds the base image that the Docker tests start `FROM` (their own `lambda.Dockerfile`), since
# no image can be pulled here: Debian bookworm from debootstrap, gcc and the aarch64 cross gcc,
# and the host's Rust toolchain copied in (it must have the aarch64-unknown-linux-gnu std).
#
# It meets the image contract of README.md: `cargo` on PATH, both Linux targets, and the
# linker environment for arm64 cross builds.
#
# usage: docker/test-base-image.sh IMAGE_NAME [CACHE_DIR]
# The debootstrap tree is cached as a tarball in CACHE_DIR (default
# /var/cache/cargo-lambda-build), so a rebuild of the image takes seconds, not a minute.
set -euo pipefail

image=${1:?usage: $0 IMAGE_NAME [CACHE_DIR]}
cache=${2:-/var/cache/cargo-lambda-build}
packages=ca-certificates,gcc,libc6-dev,gcc-aarch64-linux-gnu,libc6-dev-arm64-cross
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

work=$(mktemp -d /var/tmp/lambda-build-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$cache" "$work/rootfs"

if [ ! -s "$rootfs_tar" ]; then
  echo "debootstrap bookworm ($packages) into $work/rootfs"
  debootstrap --variant=minbase --include="$packages" bookworm "$work/rootfs" \
    http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 || {
    tail -30 "$work/debootstrap.log" >&2
    exit 1
  }
  rm -rf "$work/rootfs"/var/cache/apt/archives/*.deb "$work/rootfs"/var/lib/apt/lists/*
  tar -C "$work/rootfs" -cf "$rootfs_tar.tmp" . && mv "$rootfs_tar.tmp" "$rootfs_tar"
else
  echo "reusing $rootfs_tar"
  tar -C "$work/rootfs" -xf "$rootfs_tar"
fi

# The toolchain without its documentation (share/ is mostly HTML).
mkdir -p "$work/rootfs/usr/local/rust"
cp -a "$sysroot/bin" "$sysroot/lib" "$work/rootfs/usr/local/rust/"
[ -d "$sysroot/libexec" ] && cp -a "$sysroot/libexec" "$work/rootfs/usr/local/rust/"
chmod -R a+rX "$work/rootfs/usr/local/rust"

echo "importing $image"
tar -C "$work/rootfs" -c . | docker import \
  -c 'ENV PATH=/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'ENV CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc' \
  -c 'ENV CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc' \
  -c 'ENV AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar' \
  -c 'CMD ["cargo", "--version"]' \
  - "$image" >/dev/null
docker image inspect --format '{{.Size}}' "$image" | awk -v i="$image" '{ printf "imported %s (%.0f MiB)\n", i, $1/1048576 }'
