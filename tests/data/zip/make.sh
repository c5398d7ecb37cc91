#!/bin/sh
# Regenerates the zip seeds that tests/fuzz.rs mutates: zips from other writers than the `zip`
# crate (the fuzz test makes one with package::write_zip itself), so that the mutations start
# from the layouts those writers use.
#
# Needs: Info-ZIP zip and python3 (Debian 12: `apt-get install zip python3`). Run from anywhere:
# `sh tests/data/zip/make.sh`. The outputs are committed, so the tests never need these tools.
#
#   info-zip.zip          Info-ZIP, deflate: bootstrap 755, a directory, a file 644, a symlink,
#                         and its Unix extra fields (timestamps, uid/gid)
#   info-zip-stream.zip   Info-ZIP writing to a pipe: data descriptors after each entry (deflate)
#   info-zip-zip64.zip    Info-ZIP with forced zip64 headers (-fz)
#   python.zip            Python's zipfile: stored and deflated entries, a directory entry, a comment
set -eu

here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

mkdir -p task/lib
cp "$here/../elf/static" task/bootstrap
chmod 755 task/bootstrap task/lib
printf 'not really a library\n' > task/lib/libfoo.so.1
ln -s libfoo.so.1 task/lib/libfoo.so
printf '{"table": "orders"}\n' > task/config.json
chmod 644 task/lib/libfoo.so.1 task/config.json
touch -h -d '2023-11-14 22:13:20' task/bootstrap task/lib task/lib/* task/config.json

cd task
rm -f "$here"/info-zip*.zip "$here/python.zip"
zip -q -X -y -r "$here/info-zip.zip" bootstrap lib config.json
# To a pipe, Info-ZIP cannot seek back: a data descriptor follows each entry's data.
zip -q -X - bootstrap config.json | cat > "$here/info-zip-stream.zip"
test -s "$here/info-zip-stream.zip"
zip -q -X -fz -r "$here/info-zip-zip64.zip" bootstrap config.json
python3 - "$here/python.zip" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.comment = b"made by python zipfile"
    for name, mode, data, method in [
        ("bootstrap", 0o100755, open("bootstrap", "rb").read(), zipfile.ZIP_DEFLATED),
        ("lib/", 0o40755, b"", zipfile.ZIP_STORED),
        ("lib/libfoo.so.1", 0o100644, b"not really a library\n", zipfile.ZIP_STORED),
        ("config.json", 0o100644, b'{"table": "orders"}\n', zipfile.ZIP_DEFLATED),
    ]:
        info = zipfile.ZipInfo(name, (2023, 11, 14, 22, 13, 20))
        info.external_attr = mode << 16
        info.create_system = 3
        info.compress_type = method
        z.writestr(info, data)
PY
