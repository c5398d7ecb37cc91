#!/bin/sh
# Regenerates the ELF fixtures that src/inspect.rs tests against.
#
# Needs: gcc and aarch64-linux-gnu-gcc (Debian 12: `apt-get install gcc gcc-aarch64-linux-gnu`,
# glibc 2.36 on both). Run from anywhere: `sh tests/data/elf/make.sh`. The outputs are committed,
# so the tests never need a compiler; rerun this only to change a fixture.
#
# Every binary is built with -Os -s so each stays a few KB. What each one is for:
#
#   hello-x86_64         dynamic PIE, needs only libc.so.6; highest GLIBC_ version 2.34
#                        (__libc_start_main@GLIBC_2.34): passes for x86_64 exactly at AL2023's limit
#   hello-aarch64        the same for arm64 (loader /lib/ld-linux-aarch64.so.1)
#   glibc-2.36           calls arc4random, new in glibc 2.36: GLIBC_2.36 > 2.34
#   relr                 linked with -z pack-relative-relocs: needs GLIBC_ABI_DT_RELR (glibc 2.36)
#   static               -static -nostdlib: ET_EXEC, no PT_INTERP, no PT_DYNAMIC (a glibc -static
#                        hello is ~700 KB; this is the same shape in 512 bytes)
#   static-pie           -static-pie -nostdlib: ET_DYN, no PT_INTERP, DF_1_PIE in DT_FLAGS_1
#   libfoo.so.1          a shared library (ET_DYN, no PT_INTERP, no DF_1_PIE, needs libc.so.6):
#                        not an executable
#   needs-libfoo         dynamic, DT_NEEDED libfoo.so.1, which AL2023 does not have
#   musl-interp          dynamic, but its PT_INTERP is /lib/ld-musl-x86_64.so.1
#   script.sh            a `#!/bin/sh` script
set -eu

here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

cat > hello.c <<'C'
#include <stdio.h>
int main(void) { puts("hello"); return 0; }
C

cat > arc4random.c <<'C'
#include <stdio.h>
#include <stdlib.h>
int main(void) { printf("%u\n", arc4random()); return 0; }
C

# No libc at all: exit(0) through the raw syscall, so the binary has no dynamic dependency.
cat > start.c <<'C'
void _start(void) {
    __asm__ volatile("mov $60, %eax\n\txor %edi, %edi\n\tsyscall");
    __builtin_unreachable();
}
C

cat > foo.c <<'C'
#include <stdio.h>
int foo(void) { return puts("foo") >= 0 ? 42 : 0; }
C

cat > needs-foo.c <<'C'
int foo(void);
int main(void) { return foo() == 42 ? 0 : 1; }
C

# noseparate-code and a 4 KiB max page size drop the page padding (14 KB -> ~6 KB; aarch64 67 KB -> ~6 KB).
CFLAGS="-Os -s -fno-asynchronous-unwind-tables -Wl,--build-id=none -Wl,-z,noseparate-code -Wl,-z,max-page-size=4096"

gcc $CFLAGS -o hello-x86_64 hello.c
aarch64-linux-gnu-gcc $CFLAGS -o hello-aarch64 hello.c
gcc $CFLAGS -o glibc-2.36 arc4random.c
gcc $CFLAGS -Wl,-z,pack-relative-relocs -o relr hello.c
gcc $CFLAGS -static -nostdlib -o static start.c
gcc $CFLAGS -static-pie -nostdlib -fPIE -o static-pie start.c
gcc $CFLAGS -shared -fPIC -Wl,-soname,libfoo.so.1 -o libfoo.so.1 foo.c
gcc $CFLAGS -o needs-libfoo needs-foo.c -L. -l:libfoo.so.1
gcc $CFLAGS -Wl,--dynamic-linker=/lib/ld-musl-x86_64.so.1 -o musl-interp hello.c
printf '#!/bin/sh\nexec ./real-bootstrap "$@"\n' > script.sh

for f in hello-x86_64 hello-aarch64 glibc-2.36 relr static static-pie libfoo.so.1 needs-libfoo \
    musl-interp script.sh; do
    cp "$f" "$here/$f"
done
ls -l "$here"
