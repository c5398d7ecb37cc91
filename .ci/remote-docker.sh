# Sourced by .ci/run after .ci/docker.sh (`. .ci/remote-docker.sh`): starts a second Docker
# engine that shares no file system with the tests, as GitLab's docker:dind, CircleCI's remote
# docker or a build host do, and gives it the test base image. Idempotent: an engine that
# already answers is kept, and so is the base image it already has.
#
# The engine runs in its own mount namespace with an empty tmpfs over every directory the tests
# use (the checkout, /tmp, the homes, the cargo home, ...): a bind mount of a test's file gets
# an empty or missing directory there, as on a real remote engine. It shares the network
# namespace, so it listens on 127.0.0.1; its containers have no network (`--bridge=none`).
#
# Needs DOCKER_HOST and LAMBDA_BUILD_TEST_BASE_IMAGE from .ci/docker.sh. Exports:
#   LAMBDA_BUILD_TEST_REMOTE_DOCKER_HOST   tcp://127.0.0.1:PORT of the engine
# Runs as root (CI does). It sets no shell options, so it does not change those of .ci/run.

lambda_build_remote_docker_setup() (
  set -euo pipefail
  local repo cache run_dir data_root port host
  repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  cache=/var/cache/cargo-lambda-build
  run_dir=/run/cargo-lambda-build-remote
  data_root=/var/lib/cargo-lambda-build/remote-docker
  port=23750
  host="tcp://127.0.0.1:$port"
  : "${LAMBDA_BUILD_TEST_BASE_IMAGE:?run .ci/docker.sh first}"
  command -v unshare >/dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends util-linux >/dev/null
  }

  answers() { DOCKER_HOST="$host" timeout 10 docker version >/dev/null 2>&1; }
  if answers; then
    echo "remote-docker.sh: engine $host answers"
  else
    echo "remote-docker.sh: starting dockerd on $host in its own mount namespace"
    mkdir -p "$run_dir" "$data_root" "$cache"
    # Every directory a test's files may live in. The engine's own directories (data root, exec
    # root, /usr, /etc, /var/lib) stay visible. A directory inside one already hidden is gone by
    # the time its turn comes, hence the check in the loop.
    local hidden=(/tmp /var/tmp /root /home /work /srv /opt "$repo" "${CARGO_HOME:-}" "${RUSTUP_HOME:-}" /usr/local/cargo /usr/local/rustup "${TMPDIR:-}")
    local script='set -e
for dir in "$@"; do
  if [ -n "$dir" ] && [ -d "$dir" ]; then
    mount -t tmpfs -o mode=1777 lambda-build-hidden "$dir"
  fi
done
exec dockerd --data-root '"$data_root"' --exec-root '"$run_dir"'/exec \
  --pidfile '"$run_dir"'/docker.pid -H '"$host"' --bridge=none --iptables=false --ip-masq=false'
    # dockerd warns that a tcp socket without TLS is open to anyone: it listens on loopback only.
    nohup unshare --mount --propagation private sh -c "$script" sh "${hidden[@]}" \
      >"$cache/remote-dockerd.log" 2>&1 &
    for _ in $(seq 60); do
      answers && break
      sleep 0.5
    done
    answers || {
      tail -20 "$cache/remote-dockerd.log" >&2
      echo "remote-docker.sh: dockerd did not start" >&2
      exit 1
    }
  fi
  echo "remote-docker.sh: engine $host ($(DOCKER_HOST=$host docker version --format '{{.Server.Version}}'))"

  local image=$LAMBDA_BUILD_TEST_BASE_IMAGE
  if DOCKER_HOST=$host docker image inspect "$image" >/dev/null 2>&1; then
    echo "remote-docker.sh: test base image $image present"
  else
    echo "remote-docker.sh: moving $image to the engine"
    docker save "$image" | DOCKER_HOST=$host docker load -q
    DOCKER_HOST=$host docker images --format '{{.Repository}}:{{.Tag}}' \
      | grep -E '^(lambda-build-test-base|cargo-lambda-build):' | grep -vxF "$image" \
      | xargs -r env DOCKER_HOST="$host" docker rmi >/dev/null 2>&1 || true
  fi
  # What an aborted earlier run left: build containers and the volumes of the tests' projects
  # (the tests make new projects in new directories, so old volumes are never used again).
  DOCKER_HOST=$host docker ps -aq --filter label=cargo-lambda-build \
    | xargs -r env DOCKER_HOST="$host" docker rm -f >/dev/null 2>&1 || true
  DOCKER_HOST=$host docker volume ls -q --filter label=cargo-lambda-build \
    | xargs -r env DOCKER_HOST="$host" docker volume rm -f >/dev/null 2>&1 || true
  echo "export LAMBDA_BUILD_TEST_REMOTE_DOCKER_HOST=$host" >"$cache/remote-env.sh"
)

# Called as a plain statement: inside `if` or `&&`, bash would ignore the function's `set -e`.
lambda_build_remote_docker_setup
. /var/cache/cargo-lambda-build/remote-env.sh
echo "remote-docker.sh: LAMBDA_BUILD_TEST_REMOTE_DOCKER_HOST=$LAMBDA_BUILD_TEST_REMOTE_DOCKER_HOST"
