#!/usr/bin/env bash
# dtb-ramoops.sh BOARD IN.dtb OUT.dtb
#
# Writes OUT.dtb: IN.dtb (e.g. the one QEMU dumps for a machine with
# -machine dumpdtb=IN.dtb, or a board's firmware DTB) with the /reserved-memory
# nodes of BOARD's ramoops region (compatible = "ramoops", reg, record-size,
# console-size, ftrace-size, pmsg-size, ecc-size: see the kernel's
# Documentation/devicetree/bindings/reserved-memory/ramoops.yaml) and, if the
# board has one, of lastgasp's ring region (no compatible: the kernel only
# keeps it out of its memory). Both are no-map: out of the kernel's linear map
# and not "System RAM" in /proc/iomem, so that /dev/mem may map the ring (and
# the agent's check, as on x86, accepts them).
# Needs dtc and fdtget (Debian: device-tree-compiler). The addresses are
# split into the root node's #address-cells / #size-cells.
set -eu
board=${1:?board file}
in=${2:?input dtb}
out=${3:?output dtb}
key() { sed -n "s/^$1 *= *\([^ #]*\).*/\1/p" "$board" | head -1; }
num() { local v; v=$(key "$1"); printf '%d' "${v:-${2:-0}}"; }

raddr=$(num ramoops.mem_address); rsize=$(num ramoops.mem_size)
[ "$rsize" -gt 0 ] || { echo "dtb-ramoops: $board has no ramoops.mem_size" >&2; exit 1; }
[ "$raddr" -gt 0 ] || { echo "dtb-ramoops: $board has no ramoops.mem_address" >&2; exit 1; }
record=$(num ramoops.record_size); console=$(num ramoops.console_size)
ftrace=$(num ramoops.ftrace_size); pmsg=$(num ramoops.pmsg_size); ecc=$(num ramoops.ecc)
# ramoops' module parameter ecc=1 means 16 bytes; the DT property is the size.
[ "$ecc" != 1 ] || ecc=16
gaddr=$(num ring.mem_address); gsize=$(num ring.mem_size)

acells=$(fdtget "$in" / '#address-cells' 2>/dev/null || echo 2)
scells=$(fdtget "$in" / '#size-cells' 2>/dev/null || echo 1)
# cells N VALUE: VALUE as N 32-bit cells.
cells() {
  local n=$1 v=$2
  case $n in
    1) [ "$v" -lt 4294967296 ] || { echo "dtb-ramoops: $v does not fit one cell" >&2; exit 1; }
       printf '0x%x' "$v" ;;
    2) printf '0x%x 0x%x' $((v >> 32)) $((v & 0xffffffff)) ;;
    *) echo "dtb-ramoops: #cells $n: want 1 or 2" >&2; exit 1 ;;
  esac
}
reg() { echo "<$(cells "$acells" "$1") $(cells "$scells" "$2")>"; }

dts=$(mktemp)
trap 'rm -f "$dts"' EXIT
dtc -q -I dtb -O dts -o "$dts" "$in"
{
  echo "/ {"
  echo "	reserved-memory {"
  # A node QEMU or the firmware made already has its cells and ranges.
  if ! fdtget -l "$in" /reserved-memory >/dev/null 2>&1; then
    echo "		#address-cells = <$acells>;"
    echo "		#size-cells = <$scells>;"
    echo "		ranges;"
  fi
  printf '		ramoops@%x {\n' "$raddr"
  echo '			compatible = "ramoops";'
  echo "			reg = $(reg "$raddr" "$rsize");"
  [ "$record" = 0 ] || printf '			record-size = <0x%x>;\n' "$record"
  [ "$console" = 0 ] || printf '			console-size = <0x%x>;\n' "$console"
  [ "$ftrace" = 0 ] || printf '			ftrace-size = <0x%x>;\n' "$ftrace"
  [ "$pmsg" = 0 ] || printf '			pmsg-size = <0x%x>;\n' "$pmsg"
  [ "$ecc" = 0 ] || printf '			ecc-size = <0x%x>;\n' "$ecc"
  echo "			no-map;"
  echo "		};"
  if [ "$gsize" -gt 0 ]; then
    printf '		lastgasp-ring@%x {\n' "$gaddr"
    echo "			reg = $(reg "$gaddr" "$gsize");"
    echo "			no-map;"
    echo "		};"
  fi
  echo "	};"
  echo "};"
} >> "$dts"
dtc -q -I dts -O dtb -o "$out" "$dts"
got=$(fdtget "$out" "/reserved-memory/$(printf 'ramoops@%x' "$raddr")" compatible)
[ "$got" = ramoops ] || { echo "dtb-ramoops: $out: no ramoops node after dtc" >&2; exit 1; }
echo "dtb-ramoops: $out: /reserved-memory/ramoops@$(printf '%x' "$raddr") $(printf '%#x+%#x' "$raddr" "$rsize")$([ "$gsize" = 0 ] || printf ', lastgasp-ring@%x %#x+%#x' "$gaddr" "$gaddr" "$gsize")" >&2
