# Sourced by the test image recipes (test-base-image.sh, test-arm64-image.sh): one Debian
# bookworm tree from debootstrap, kept as a tar in the cache so that rebuilding an image takes
# seconds.
#
# bookworm_rootfs_tar ARCH PACKAGES TAR WORK: writes TAR (unless it is there) from a minbase
# debootstrap of ARCH (empty: this machine's) with PACKAGES (comma-separated, or empty) in
# WORK/rootfs; a foreign ARCH runs its second stage through qemu-user registered with
# binfmt_misc.
bookworm_rootfs_tar() {
  local arch=$1 packages=$2 tar=$3 work=$4
  if [ -s "$tar" ]; then
    echo "reusing $tar"
    return
  fi
  echo "debootstrap bookworm${arch:+ for $arch}${packages:+ ($packages)} into $work/rootfs"
  mkdir -p "$work/rootfs"
  debootstrap ${arch:+--arch="$arch"} --variant=minbase ${packages:+--include="$packages"} bookworm \
    "$work/rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 || {
    tail -30 "$work/debootstrap.log" >&2
    return 1
  }
  rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/*
  tar -C "$work/rootfs" -cf "$tar.tmp" . && mv "$tar.tmp" "$tar"
}
