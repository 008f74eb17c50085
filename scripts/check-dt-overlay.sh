#!/usr/bin/env bash
# check-dt-overlay.sh BOARD OVERLAY.dts DTB OUTDIR
#
# Compiles a board's ramoops overlay (dtc -@), merges it into a real DTB of
# the board (fdtoverlay: as the Raspberry Pi firmware's dtoverlay= or U-Boot's
# fdt apply would), and checks the merged tree: /reserved-memory holds a
# compatible = "ramoops" node whose reg (read with the node's own
# #address-cells / #size-cells) and record-size say what the board file's
# ramoops.mem_address, ramoops.mem_size and ramoops.record_size say, and the
# ring node (lastgasp-ring@ADDR) says ring.mem_address and ring.mem_size. An
# overlay written for other cell counts (the Pi 4's <2> <1> on the Pi 5's
# <2> <2>) fails here. Writes OUTDIR/ramoops.dtbo and OUTDIR/<dtb>-lastgasp.dtb.
# Needs dtc, fdtoverlay and fdtget (Debian: device-tree-compiler).
set -eu
board=${1:?board file}
dts=${2:?overlay source}
dtb=${3:?board dtb}
out=${4:?output dir}
mkdir -p "$out"
key() { sed -n "s/^$1 *= *\([^ #]*\).*/\1/p" "$board" | head -1; }
num() { local v; v=$(key "$1"); printf '%d' "${v:-0}"; }
fail() { echo "check-dt-overlay: $board: $*" >&2; exit 1; }

dtc -q -@ -I dts -O dtb -o "$out/ramoops.dtbo" "$dts"
merged="$out/$(basename "$dtb" .dtb)-lastgasp.dtb"
fdtoverlay -i "$dtb" -o "$merged" "$out/ramoops.dtbo"

ac=$(fdtget "$merged" /reserved-memory '#address-cells')
sc=$(fdtget "$merged" /reserved-memory '#size-cells')
# reg NODE: sets a and s (decimal) from the node's reg cells.
reg() {
  local cells i addr=0 size=0
  read -r -a cells <<<"$(fdtget -tx "$merged" "$1" reg)" || true
  [ "${#cells[@]}" -eq $((ac + sc)) ] || fail "$1: reg has ${#cells[@]} cells, /reserved-memory wants $ac+$sc"
  for ((i = 0; i < ac; i++)); do addr=$(( (addr << 32) | 0x${cells[i]} )); done
  for ((i = ac; i < ac + sc; i++)); do size=$(( (size << 32) | 0x${cells[i]} )); done
  a=$addr s=$size
}
raddr=$(num ramoops.mem_address); rsize=$(num ramoops.mem_size); rrec=$(num ramoops.record_size)
node=$(printf '/reserved-memory/ramoops@%x' "$raddr")
[ "$(fdtget "$merged" "$node" compatible 2>/dev/null)" = ramoops ] || fail "$merged: no $node with compatible = \"ramoops\""
reg "$node"
[ "$a" = "$raddr" ] && [ "$s" = "$rsize" ] || fail "$node: reg $(printf '%#x+%#x' "$a" "$s"), board says $(printf '%#x+%#x' "$raddr" "$rsize")"
rec=$(printf '%d' "0x$(fdtget -tx "$merged" "$node" record-size)")
[ "$rec" = "$rrec" ] || fail "$node: record-size $rec, board says $rrec"
fdtget "$merged" "$node" no-map >/dev/null 2>&1 || fail "$node: no no-map"
msg="$node $(printf '%#x+%#x' "$a" "$s") record-size $(printf '%#x' "$rec")"
gaddr=$(num ring.mem_address); gsize=$(num ring.mem_size)
if [ "$gsize" -gt 0 ]; then
  gnode=$(printf '/reserved-memory/lastgasp-ring@%x' "$gaddr")
  reg "$gnode"
  [ "$a" = "$gaddr" ] && [ "$s" = "$gsize" ] || fail "$gnode: reg $(printf '%#x+%#x' "$a" "$s"), board says $(printf '%#x+%#x' "$gaddr" "$gsize")"
  msg="$msg, $gnode $(printf '%#x+%#x' "$a" "$s")"
fi
echo "check-dt-overlay: $(basename "$board"): $(basename "$dts") merged into $(basename "$dtb") (cells $ac/$sc): $msg"
