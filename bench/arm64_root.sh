#!/bin/sh
# An arm64 Python 3.11 to run under qemu-user (`make arm64-root`): Debian's own packages for arm64, unpacked into
# a folder (nothing is installed for arm64 on this machine). Needs root for apt's multiarch index, which it adds
# for the download and removes again. Used by `make build`'s import check and `make bench-arch`.
set -eu
root=$1
packages="python3.11-minimal libpython3.11-minimal libpython3.11-stdlib libc6 libexpat1 zlib1g libssl3 libffi8
  libgcc-s1 libbz2-1.0 liblzma5 libuuid1 libsqlite3-0 libcrypt1 libtinfo6 libncursesw6 libreadline8 libdb5.3
  libnsl2 libtirpc3 libgssapi-krb5-2 libkrb5-3 libk5crypto3 libkrb5support0 libcom-err2 libkeyutils1 libstdc++6"
command -v qemu-aarch64-static >/dev/null || { echo "needs qemu-user-static: apt-get install qemu-user-static" >&2; exit 1; }
debs=$(mktemp -d)
added=no
if ! dpkg --print-foreign-architectures | grep -qx arm64; then dpkg --add-architecture arm64; added=yes; fi
trap 'rm -rf "$debs"; if [ $added = yes ]; then dpkg --remove-architecture arm64; apt-get update -qq || true; fi' EXIT
apt-get update -qq
(cd "$debs" && apt-get download -qq $(for p in $packages; do printf '%s:arm64 ' "$p"; done))
rm -rf "$root" && mkdir -p "$root"
for deb in "$debs"/*.deb; do dpkg -x "$deb" "$root"; done
qemu-aarch64-static -L "$root" "$root/usr/bin/python3.11" -c "import platform, ssl; print('arm64 Python', platform.python_version(), platform.machine(), ssl.OPENSSL_VERSION)"
