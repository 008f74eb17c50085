#!/usr/bin/env bash
# fetch-kernel.sh PACKAGE OUTDIR [ARCH]
#
# Downloads a Debian kernel package (a meta package such as linux-image-amd64 is
# resolved to the real one with apt-cache depends, so no version is hard-coded)
# WITHOUT installing it, unpacks it into OUTDIR/root, generates modules.dep with
# depmod -b, and writes the kernel QEMU boots:
#   amd64: OUTDIR/vmlinux, the ELF decompressed from the bzImage (PVH-bootable,
#          about 2x faster under TCG than the bzImage), whatever the payload's
#          compression: zstd (6.12), xz (6.1), gzip, lzma, lz4 or bzip2;
#   arm64: OUTDIR/Image, Debian's vmlinuz, which is an uncompressed arm64 Image
#          (or is gunzipped if a kernel ships it gzip'ed).
# ARCH is the Debian architecture (amd64, arm64; default: the machine's); a
# foreign one is asked for as PACKAGE:ARCH (dpkg --add-architecture ARCH first,
# scripts/setup-deps.sh does it for arm64).
# Prints the kernel release on stdout. Idempotent: a complete cache is reused.
set -eu
pkg=${1:?package}
out=${2:?outdir}
arch=${3:-$(dpkg --print-architecture)}
mkdir -p "$out"
out=$(cd "$out" && pwd)

if [ -f "$out/kver" ] && { [ -f "$out/vmlinux" ] || [ -f "$out/Image" ]; }; then cat "$out/kver"; exit 0; fi

qual=
[ "$arch" = "$(dpkg --print-architecture)" ] || qual=":$arch"

# Resolve meta package -> versioned image package (the first linux-image-<digit>
# dependency); a versioned name resolves to itself.
resolve() {
  apt-cache depends "$pkg$qual" 2>/dev/null |
    awk '/Depends: linux-image-[0-9]/{sub(/:.*/, "", $2); print $2; exit}'
}
real=$(resolve)
[ -n "$real" ] || real=$pkg
echo "fetch-kernel: $pkg$qual -> $real$qual" >&2
dl="$out/deb"
mkdir -p "$dl"
if ! ls "$dl"/"$real"_*_"$arch".deb >/dev/null 2>&1; then
  # Stale package lists name versions the mirror no longer has: refresh once.
  (cd "$dl" && apt-get download "$real$qual" >&2) || {
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq >&2 || true
    real=$(resolve)
    [ -n "$real" ] || real=$pkg
    (cd "$dl" && apt-get download "$real$qual" >&2) || {
      echo "fetch-kernel: apt-get download $real$qual failed" >&2; exit 1; }
  }
fi
deb=$(ls -t "$dl"/"$real"_*_"$arch".deb | head -1)
rm -rf "$out/root"
mkdir -p "$out/root"
dpkg -x "$deb" "$out/root"
kver=$(ls "$out/root/lib/modules" | head -1)
[ -n "$kver" ] || { echo "fetch-kernel: $deb holds no lib/modules/<release>" >&2; exit 1; }
depmod -b "$out/root" "$kver"
vmlinuz="$out/root/boot/vmlinuz-$kver"
[ -f "$vmlinuz" ] || { echo "fetch-kernel: $deb holds no boot/vmlinuz-$kver" >&2; exit 1; }

# is_elf FILE / is_arm64_image FILE: what a decompressed kernel must look like.
is_elf() { [ "$(head -c 4 "$1" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; }
# arm64 Image header: "ARM\x64" at offset 0x38 (Documentation/arch/arm64/booting.rst).
is_arm64_image() { [ "$(tail -c +57 "$1" | head -c 4 | od -An -tx1 | tr -d ' \n')" = 41524d64 ]; }

# extract_payload BZIMAGE DEST: find a compressed payload whose decompression is
# an ELF. The kernel marks the compression only in its build config, and the
# magic bytes may occur by chance earlier in the setup code, so every
# occurrence of every magic is tried until one inflates to an ELF. Trailing
# bytes after the stream (the kernel appends the size) make the decompressors
# complain; what they wrote is checked instead of their exit status.
extract_payload() {
  local bz=$1 dest=$2 name magic tool off
  for spec in 'zstd|\x28\xb5\x2f\xfd|zstd -dc' \
              'xz|\xfd7zXZ\x00|xz -dc --single-stream' \
              'gzip|\x1f\x8b\x08|gzip -dc' \
              'lzma|\x5d\x00\x00\x00|xz -dc --format=lzma' \
              'lz4|\x02\x21\x4c\x18|lz4 -dc' \
              'bzip2|BZh9|bzip2 -dc'; do
    IFS='|' read -r name magic tool <<<"$spec"
    command -v "${tool%% *}" >/dev/null || continue
    for off in $(LC_ALL=C grep -obUaP "$magic" "$bz" | cut -d: -f1 | head -20); do
      tail -c +$((off + 1)) "$bz" | $tool > "$dest.tmp" 2>/dev/null || true
      if [ -s "$dest.tmp" ] && is_elf "$dest.tmp"; then
        mv "$dest.tmp" "$dest"
        echo "fetch-kernel: $name payload at offset $off -> $(basename "$dest")" >&2
        return 0
      fi
    done
  done
  rm -f "$dest.tmp"
  echo "fetch-kernel: no decompressible ELF payload in $bz (tried zstd xz gzip lzma lz4 bzip2)" >&2
  return 1
}

case "$arch" in
  amd64|i386)
    extract_payload "$vmlinuz" "$out/vmlinux"
    cp "$vmlinuz" "$out/bzImage"
    ;;
  arm64)
    if is_arm64_image "$vmlinuz"; then
      cp "$vmlinuz" "$out/Image.tmp"
    elif gzip -dc "$vmlinuz" > "$out/Image.tmp" 2>/dev/null && is_arm64_image "$out/Image.tmp"; then
      :
    else
      echo "fetch-kernel: $vmlinuz is not an arm64 Image (no ARM\\x64 magic at 0x38), nor a gzip'ed one" >&2
      exit 1
    fi
    mv "$out/Image.tmp" "$out/Image"
    ;;
  *)
    echo "fetch-kernel: architecture $arch: want amd64 or arm64" >&2; exit 1 ;;
esac
echo "$kver" > "$out/kver"
echo "$kver"
