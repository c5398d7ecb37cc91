# Sourced by .ci/run after .ci/docker.sh (`. .ci/engines.sh`): what tests/it/docker_engines.rs needs
# to reach engines the other ways the docker CLI does. The tests start the services themselves
# (a TLS dockerd, sshd, `podman system service`) with certificates and keys they make; this only
# prepares what is slow or needs root once:
#   - a data root for a second dockerd holding the test base image (the TLS engine);
#   - the base image in Podman's storage, rootful and rootless (the test user's own);
#   - a containers.conf under which Podman's containers start on this machine (its default
#     ulimits are refused here, and runc, not crun, runs them) and a storage.conf that gives rootless Podman the kernel's overlay
#     instead of copying the 1.8 GB image per layer;
#   - the test user able to log in over ssh with a key (useradd leaves the account locked).
# Idempotent: an image already in place is kept. Runs as root (CI does).
#
# Exports:
#   LAMBDA_BUILD_TEST_SECOND_DOCKERD_ROOT  the second dockerd's data root
#   LAMBDA_BUILD_TEST_CONTAINERS_CONF      the containers.conf for `podman system service`
#   LAMBDA_BUILD_TEST_STORAGE_CONF         the storage.conf for rootless Podman
# Needs DOCKER_HOST, LAMBDA_BUILD_TEST_BASE_IMAGE and LAMBDA_BUILD_TEST_USER from .ci/docker.sh.

lambda_build_engines_setup() (
  set -euo pipefail
  local cache=/var/cache/cargo-lambda-build
  local run_dir=/run/cargo-lambda-build
  local image=$LAMBDA_BUILD_TEST_BASE_IMAGE
  local user=$LAMBDA_BUILD_TEST_USER
  local second_root=/var/lib/cargo-lambda-build/second-docker
  local conf=$cache/containers.conf
  local storage_conf=$cache/rootless-storage.conf
  mkdir -p "$cache" "$run_dir"

  # runc, not crun: apt installs Podman before docker.io on a fresh machine, so Podman's
  # "crun | runc" dependency brings crun, which refuses this machine's hybrid cgroups ("cgroups
  # in hybrid mode not supported"); runc (docker.io's) runs them.
  printf '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n' >"$conf"
  printf '[storage]\ndriver = "overlay"\n' >"$storage_conf"
  chmod 644 "$conf" "$storage_conf"

  # Rootless Podman maps the container's other uids onto the user's subordinate ones.
  if ! grep -q "^$user:" /etc/subuid 2>/dev/null || ! grep -q "^$user:" /etc/subgid 2>/dev/null; then
    usermod --add-subuids 200000-265535 --add-subgids 200000-265535 "$user"
  fi

  local uid home xdg
  uid=$(id -u "$user")
  home=$(getent passwd "$user" | cut -d: -f6)
  xdg=$run_dir/xdg-$uid
  mkdir -p "$xdg"
  chown "$user:" "$xdg"
  chmod 700 "$xdg"
  as_user() {
    (cd / && setpriv --reuid "$uid" --regid "$(id -g "$user")" --init-groups \
      env HOME="$home" XDG_RUNTIME_DIR="$xdg" CONTAINERS_CONF="$conf" \
      CONTAINERS_STORAGE_CONF="$storage_conf" "$@")
  }

  # The image is saved once and loaded into each store at the same time: each load is mostly
  # waiting on the disk.
  local tar=$cache/base-image-for-engines.tar
  local loads=()
  saved() { [ -e "$tar" ] || docker save -o "$tar" "$image"; }

  # The second dockerd, started here only to load the image into its data root; the tests
  # start it again with TLS. No bridge or iptables: it must not touch the first engine's network.
  if [ ! -e "$second_root/.has-$image" ]; then
    echo "engines.sh: loading $image into a second dockerd's data root"
    saved
    mkdir -p "$second_root"
    (
      sock=$run_dir/second-docker-setup.sock
      dockerd --data-root "$second_root" --exec-root "$run_dir/second-exec" \
        --pidfile "$run_dir/second-docker-setup.pid" -H "unix://$sock" \
        --bridge=none --iptables=false --ip-masq=false >"$cache/second-dockerd.log" 2>&1 &
      pid=$!
      for _ in $(seq 60); do
        DOCKER_HOST=unix://$sock docker version >/dev/null 2>&1 && break
        sleep 0.5
      done
      DOCKER_HOST=unix://$sock docker load -q -i "$tar"
      kill "$pid"
      wait "$pid" || true
      touch "$second_root/.has-$image"
    ) &
    loads+=($!)
  else
    echo "engines.sh: the second dockerd's data root has $image"
  fi

  if CONTAINERS_CONF=$conf podman image exists "$image"; then
    echo "engines.sh: rootful Podman has $image"
  else
    echo "engines.sh: loading $image into rootful Podman"
    saved
    CONTAINERS_CONF=$conf podman load -q -i "$tar" &
    loads+=($!)
  fi

  if as_user podman image exists "$image"; then
    echo "engines.sh: rootless Podman ($user) has $image"
  else
    echo "engines.sh: loading $image into rootless Podman ($user)"
    saved
    chmod 644 "$tar"
    # A store made earlier with another driver would refuse the overlay one.
    as_user podman system reset --force >/dev/null 2>&1 || true
    as_user podman load -q -i "$tar" &
    loads+=($!)
  fi
  local load
  for load in "${loads[@]}"; do
    wait "$load"
  done
  rm -f "$tar"

  # `!` in the shadow file locks the account, and sshd then refuses even a key.
  if [ "$(getent shadow "$user" | cut -d: -f2)" = '!' ]; then
    usermod -p '*' "$user"
  fi
  mkdir -p /run/sshd
  chmod 755 /run/sshd

  {
    echo "export LAMBDA_BUILD_TEST_SECOND_DOCKERD_ROOT=$second_root"
    echo "export LAMBDA_BUILD_TEST_CONTAINERS_CONF=$conf"
    echo "export LAMBDA_BUILD_TEST_STORAGE_CONF=$storage_conf"
  } >"$cache/engines-env.sh"
)

# Called as a plain statement: inside `if` or `&&`, bash would ignore the function's `set -e`.
lambda_build_engines_setup
. /var/cache/cargo-lambda-build/engines-env.sh
echo "engines.sh: LAMBDA_BUILD_TEST_SECOND_DOCKERD_ROOT=$LAMBDA_BUILD_TEST_SECOND_DOCKERD_ROOT LAMBDA_BUILD_TEST_CONTAINERS_CONF=$LAMBDA_BUILD_TEST_CONTAINERS_CONF LAMBDA_BUILD_TEST_STORAGE_CONF=$LAMBDA_BUILD_TEST_STORAGE_CONF"
