#!/usr/bin/env bash
# fetch-kernel.sh PACKAGE OUTDIR
#
# Downloads a Debian kernel package (a meta package such as linux-image-amd64 is
# resolved to the real one) WITHOUT installing it, unpacks it into OUTDIR/root,
# generates modules.dep with depmod -b, and extracts an uncompressed vmlinux
# (PVH-bootable, about 2x faster under TCG than the bzImage).
# Prints the kernel release on stdout. Idempotent: a complete cache is reused.
set -eu
pkg=${1:?package}
out=${2:?outdir}
mkdir -p "$out"
out=$(cd "$out" && pwd)

if [ -f "$out/kver" ] && [ -f "$out/vmlinux" ]; then cat "$out/kver"; exit 0; fi

# Resolve meta package -> versioned image package.
real=$(apt-cache depends "$pkg" 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
[ -n "$real" ] || real=$pkg
echo "fetch-kernel: $pkg -> $real" >&2
dl="$out/deb"
mkdir -p "$dl"
if ! ls "$dl"/"$real"_*.deb >/dev/null 2>&1; then
  # Stale package lists name versions the mirror no longer has: refresh once.
  (cd "$dl" && apt-get download "$real" >&2) || {
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq >&2 || true
    real=$(apt-cache depends "$pkg" 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
    [ -n "$real" ] || real=$pkg
    (cd "$dl" && apt-get download "$real" >&2) || {
      echo "fetch-kernel: apt-get download $real failed" >&2; exit 1; }
  }
fi
rm -rf "$out/root"
mkdir -p "$out/root"
dpkg -x "$dl"/"$real"_*.deb "$out/root"
kver=$(ls "$out/root/lib/modules" | head -1)
depmod -b "$out/root" "$kver"
bz="$out/root/boot/vmlinuz-$kver"
# The bzImage payload is xz; find its magic and decompress to the ELF vmlinux.
off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$bz" | head -1 | cut -d: -f1)
[ -n "$off" ] || { echo "fetch-kernel: no xz payload in $bz" >&2; exit 1; }
tail -c +$((off + 1)) "$bz" | xz -dc --single-stream > "$out/vmlinux.tmp" 2>/dev/null || true
head -c 4 "$out/vmlinux.tmp" | grep -q ELF || { echo "fetch-kernel: extracted vmlinux is not ELF" >&2; exit 1; }
mv "$out/vmlinux.tmp" "$out/vmlinux"
cp "$bz" "$out/bzImage"
echo "$kver" > "$out/kver"
echo "$kver"
