# Sourced by .ci/run (`. .ci/docker.sh`): makes a Docker engine answer, builds the test base image,
# and creates the non-root user the ownership test runs the tool as. Idempotent: an engine that
# already answers is used as is, a base image that exists is kept, the debootstrap tree is cached
# in /var/cache/cargo-lambda-build.
#
# Exports:
#   DOCKER_HOST                    the engine the tests use
#   LAMBDA_BUILD_TEST_BASE_IMAGE   the image the tests' lambda.Dockerfile starts FROM
#   LAMBDA_BUILD_TEST_USER         a non-root user with access to the engine
#   LAMBDA_BUILD_TEST_ARM64_IMAGE  an arm64 image that container mode's arm64 test runs in
# Runs as root (CI does). It sets no shell options, so it does not change those of .ci/run.

lambda_build_docker_setup() (
  set -euo pipefail
  local repo cache run_dir sock user sysroot
  repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  cache=/var/cache/cargo-lambda-build
  run_dir=/run/cargo-lambda-build
  sock="$run_dir/docker.sock"
  user=lambda-build-test

  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v setfacl >/dev/null || missing+=(acl)
  command -v setpriv >/dev/null || missing+=(util-linux)
  command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
  [ -d /usr/aarch64-linux-gnu/lib ] || missing+=(libc6-arm64-cross)
  command -v chroot >/dev/null || missing+=(coreutils)
  command -v ip >/dev/null || missing+=(iproute2)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "docker.sh: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1 || true

  answers() { DOCKER_HOST="$1" timeout 10 docker version >/dev/null 2>&1; }
  local host=""
  for candidate in ${DOCKER_HOST:-} "unix://$sock" unix:///var/run/docker.sock; do
    if answers "$candidate"; then host=$candidate; break; fi
  done
  if [ -z "$host" ]; then
    echo "docker.sh: starting dockerd on $sock"
    mkdir -p "$run_dir" "$cache" /var/lib/cargo-lambda-build/docker
    getent group lambda-build-docker >/dev/null || groupadd --system lambda-build-docker
    # Its own bridge, not docker0: a dockerd started with `--bridge=none` (the engines the
    # remote, TLS and ssh tests start beside this one) deletes the host's docker0 when it starts,
    # and this engine's image builds would lose their network mid-run.
    local bridge=lambda-build0
    if ! ip link show "$bridge" >/dev/null 2>&1; then
      ip link add "$bridge" type bridge
      ip addr add 172.31.250.1/24 dev "$bridge"
    fi
    ip link set "$bridge" up
    # Its own data root (images survive between runs) and exec root (no clash with another
    # engine on the machine).
    nohup dockerd --data-root /var/lib/cargo-lambda-build/docker --exec-root "$run_dir/exec" \
      --pidfile "$run_dir/docker.pid" -H "unix://$sock" --group lambda-build-docker \
      --bridge="$bridge" >"$cache/dockerd.log" 2>&1 &
    for _ in $(seq 60); do
      answers "unix://$sock" && break
      sleep 0.5
    done
    answers "unix://$sock" || { tail -20 "$cache/dockerd.log" >&2; echo "docker.sh: dockerd did not start" >&2; exit 1; }
    host="unix://$sock"
  fi
  echo "docker.sh: engine $host ($(DOCKER_HOST=$host docker version --format '{{.Server.Version}}'))"

  # A non-root user who may talk to the engine and run the host toolchain.
  id "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$user"
  case "$host" in
    unix://*) setfacl -m "u:$user:rw" "${host#unix://}" ;;
  esac
  sysroot=$(rustc --print sysroot)
  # The toolchain and this checkout usually live under /root (mode 700), and a checkout made
  # in a `mktemp -d` directory is itself 700: let the user traverse each of them and their
  # parents.
  for path in "$sysroot" "$repo"; do
    while [ "$path" != / ]; do
      su -s /bin/sh "$user" -c "test -x '$path'" 2>/dev/null || chmod o+x "$path"
      path=$(dirname "$path")
    done
  done

  local image
  # Named by the toolchain and a hash of the recipe, so a changed recipe makes a new image.
  image="lambda-build-test-base:$(rustc -V | cut -d' ' -f2)-$(cat "$repo/docker/test-base-image.sh" "$repo/docker/rootfs.sh" "$repo/lambda.Dockerfile" | sha256sum | cut -c1-8)"
  if ! DOCKER_HOST=$host docker image inspect "$image" >/dev/null 2>&1; then
    DOCKER_HOST=$host bash "$repo/docker/test-base-image.sh" "$image" "$cache"
    # Older base images, and the images the tests built from them, are not used any more.
    DOCKER_HOST=$host docker images --format '{{.Repository}}:{{.Tag}}' \
      | grep -E '^(lambda-build-test-base|lambda-build-test-sccache|cargo-lambda-build):' | grep -vxF "$image" \
      | xargs -r env DOCKER_HOST="$host" docker rmi >/dev/null 2>&1 || true
  else
    echo "docker.sh: test base image $image exists"
  fi
  # Container mode's arm64 test (tests/it/invoke_docker.rs) runs an arm64 image on this amd64
  # engine: qemu-user-static's qemu-aarch64 registered with binfmt_misc, with its flag F (the
  # kernel opens qemu at registration, so it runs arm64 programs inside containers that lack it).
  if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    cat /usr/lib/binfmt.d/qemu-aarch64.conf >/proc/sys/fs/binfmt_misc/register
  fi
  local arm64_image
  arm64_image="lambda-build-test-arm64:bookworm-$(cat "$repo/docker/test-arm64-image.sh" "$repo/docker/rootfs.sh" | sha256sum | cut -c1-8)"
  DOCKER_HOST=$host bash "$repo/docker/test-arm64-image.sh" "$arm64_image" "$cache"

  # Containers an aborted earlier run left (a cancelled CI job, a killed test) would fail the
  # tests that check that none is left: the tool's build containers (its label) and the image
  # builds' step containers (from the test base image) on this engine.
  {
    DOCKER_HOST=$host docker ps -aq --filter label=cargo-lambda-build
    DOCKER_HOST=$host docker ps -aq --filter "ancestor=$image"
  } | sort -u | xargs -r env DOCKER_HOST="$host" docker rm -f >/dev/null 2>&1 || true
  {
    echo "export DOCKER_HOST=$host"
    echo "export LAMBDA_BUILD_TEST_BASE_IMAGE=$image"
    echo "export LAMBDA_BUILD_TEST_USER=$user"
    echo "export LAMBDA_BUILD_TEST_ARM64_IMAGE=$arm64_image"
  } >"$cache/env.sh"
)

# Called as a plain statement: inside `if` or `&&`, bash would ignore the function's `set -e`.
lambda_build_docker_setup
. /var/cache/cargo-lambda-build/env.sh
echo "docker.sh: DOCKER_HOST=$DOCKER_HOST LAMBDA_BUILD_TEST_BASE_IMAGE=$LAMBDA_BUILD_TEST_BASE_IMAGE LAMBDA_BUILD_TEST_USER=$LAMBDA_BUILD_TEST_USER LAMBDA_BUILD_TEST_ARM64_IMAGE=$LAMBDA_BUILD_TEST_ARM64_IMAGE"
