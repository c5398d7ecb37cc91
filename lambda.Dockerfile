# The image `cargo lambda-build --docker` builds functions in, unless the project has its own
# `lambda.Dockerfile` (docs/docker.md, "The image contract", says what any such image must provide).
# It is embedded in cargo-lambda-build, built once per Docker engine with only this file as the
# build context, and tagged by a hash of this file and its build arguments: later builds reuse it.
#
# Amazon Linux 2023 is what Lambda's `provided.al2023` runs, so a binary linked here needs no
# glibc newer than the runtime's 2.34. The other architecture (arm64 from an x86_64 host, or
# x86_64 from an arm64 host) is cross-compiled with zig pinned to glibc 2.34, through
# cargo-zigbuild's compiler wrapper: no binfmt/QEMU emulation is needed.
#
# BASE_IMAGE: the Amazon Linux 2023 image to start from; point it at a registry mirror with
# `cargo lambda-build --docker --docker-build-arg BASE_IMAGE=mirror.example/amazonlinux:2023`.
ARG BASE_IMAGE=public.ecr.aws/amazonlinux/amazonlinux:2023
FROM ${BASE_IMAGE}

# The host toolchain's version, passed by cargo-lambda-build (from `cargo -V`): the container
# compiles with the Rust the project is developed with. `stable`, `beta` and `nightly` work too.
ARG RUST_VERSION=stable
ARG CARGO_ZIGBUILD_VERSION=0.24.0
ARG ZIGLANG_VERSION=0.17.1

# gcc/glibc-devel: the native linker and C compiler (glibc 2.34). openssl-devel: `openssl-sys`
# for native builds (provided.al2023 has libssl.so.3). python3-pip: zig and cargo-zigbuild.
RUN dnf install -y --setopt=install_weak_deps=False \
        gcc gcc-c++ glibc-devel make tar gzip xz findutils \
        openssl-devel pkgconf-pkg-config python3-pip \
    && dnf clean all && rm -rf /var/cache/dnf

RUN pip3 install --no-cache-dir "cargo-zigbuild==${CARGO_ZIGBUILD_VERSION}" "ziglang==${ZIGLANG_VERSION}"

# rustup in world-readable places: the build runs as the host user's uid, not root.
ENV RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
        | sh -s -- -y --no-modify-path --profile minimal --default-toolchain "${RUST_VERSION}" \
    && rustup target add x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu \
    && chmod -R a+rX "${RUSTUP_HOME}" "${CARGO_HOME}" \
    && cargo --version

# One compiler and archiver wrapper per Lambda architecture: the image's gcc for its own
# architecture, zig targeting glibc 2.34 for the other one.
RUN set -eu; \
    for arch in x86_64 aarch64; do \
        if [ "$(uname -m)" = "$arch" ]; then \
            printf '#!/bin/sh\nexec gcc "$@"\n' > "/usr/local/bin/$arch-lambda-cc"; \
            printf '#!/bin/sh\nexec g++ "$@"\n' > "/usr/local/bin/$arch-lambda-c++"; \
            printf '#!/bin/sh\nexec ar "$@"\n' > "/usr/local/bin/$arch-lambda-ar"; \
        else \
            printf '#!/bin/sh\nexec cargo-zigbuild zig cc -- -target %s-linux-gnu.2.34 "$@"\n' "$arch" > "/usr/local/bin/$arch-lambda-cc"; \
            printf '#!/bin/sh\nexec cargo-zigbuild zig c++ -- -target %s-linux-gnu.2.34 "$@"\n' "$arch" > "/usr/local/bin/$arch-lambda-c++"; \
            printf '#!/bin/sh\nexec cargo-zigbuild zig ar -- "$@"\n' > "/usr/local/bin/$arch-lambda-ar"; \
        fi; \
        chmod 755 "/usr/local/bin/$arch-lambda-cc" "/usr/local/bin/$arch-lambda-c++" "/usr/local/bin/$arch-lambda-ar"; \
    done

# The linker environment of the image contract: cargo's linker and the `cc` crate's compilers.
ENV CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER=x86_64-lambda-cc \
    CC_x86_64_unknown_linux_gnu=x86_64-lambda-cc \
    CXX_x86_64_unknown_linux_gnu=x86_64-lambda-c++ \
    AR_x86_64_unknown_linux_gnu=x86_64-lambda-ar \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-lambda-cc \
    CC_aarch64_unknown_linux_gnu=aarch64-lambda-cc \
    CXX_aarch64_unknown_linux_gnu=aarch64-lambda-c++ \
    AR_aarch64_unknown_linux_gnu=aarch64-lambda-ar

LABEL org.opencontainers.image.title="cargo-lambda-build builder (Amazon Linux 2023)"
