#!/bin/sh
# size-table.sh: where the bytes of the image's Go binary are, per package.
#
#   scripts/size-table.sh [BOARD] [N]     (make size-table BOARD=...)
#
# Builds, for the board's arch and build tags, with the flags the image uses
# (u-root busybox: -trimpath, -gcflags=all=-l; the image strips with -s -w):
#   - the agent alone (cmd/lastgasp), unstripped, and prints its top N packages;
#   - the busybox (agent + the rescue shell's commands), unstripped, and prints
#     what the commands add over the agent alone;
# and the xz size of each, stripped, with the image's xz settings.
# Figures are symbol bytes (scripts/sizetable), not xz: measure a cut by
# building the image without it.
set -eu
board=${1:-qemu-x86_64}
n=${2:-40}
bf=boards/$board.board
arch=$(sed -n 's/^arch *= *//p' "$bf")
tags=$(sed -n 's/^build.tags *= *//p' "$bf" | tr ' ' ',')
out=${BUILD:-build}/size/$board
mkdir -p "$out"
xzsize() { cp "$1" "$1.s" && strip "$1.s"; bcj=; [ "$arch" = amd64 ] && bcj=--x86; xz --check=crc32 $bcj --lzma2=preset=9,lc=4 -c "$1.s" | wc -c; }

GOOS=linux GOARCH=$arch CGO_ENABLED=0 go build -trimpath -gcflags=all=-l -tags "$tags" -o "$out/agent" ./cmd/lastgasp
cmds=$(go run ./scripts/sizetable -commands)
utags=; for t in $(echo "$tags" | tr ',' ' '); do utags="$utags -tags $t"; done
GOOS=linux GOARCH=$arch CGO_ENABLED=0 go run github.com/u-root/u-root -o "$out/bb.cpio" -go-no-strip \
	-initcmd=lastgasp -uinitcmd= -defaultsh= $utags $cmds github.com/lastgasp/lastgasp/cmd/lastgasp >"$out/u-root.log" 2>&1 ||
	{ cat "$out/u-root.log" >&2; exit 1; }
(cd "$out" && rm -rf bbx && mkdir bbx && cd bbx && cpio -idm bbin/bb < ../bb.cpio 2>/dev/null && mv bbin/bb ../bb)

echo "== $board: agent (cmd/lastgasp, tags [$tags]): $(stat -c %s "$out/agent") bytes unstripped, $(xzsize "$out/agent") bytes xz stripped"
go run ./scripts/sizetable -n "$n" "$out/agent"
echo "== $board: busybox ($cmds + agent): $(xzsize "$out/bb") bytes xz stripped; added over the agent alone:"
go run ./scripts/sizetable -n 25 -diff "$out/agent" "$out/bb"
