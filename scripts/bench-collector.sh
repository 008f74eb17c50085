#!/usr/bin/env bash
# bench-collector.sh: how fast can lastgaspd store 256 hosts' extended
# netconsole with zero loss on this machine, and what does it cost in memory?
#
#   scripts/bench-collector.sh [DIR_WITH_BINARIES]      (make bench-collector)
#
# Uses the built lastgaspd and lastgasp-load (default build/bin). Each trial
# starts a fresh collector on a loopback port, sends HOSTS hosts' messages
# (announcement, fragments, deliberate gaps, a trailer per host) at a rate
# for TRIAL seconds, stops the collector (SIGTERM flushes the store) and
# compares the message lines stored with what was sent. A trial has zero
# loss when every sent message is stored, the collector's lost count equals
# the deliberately skipped sequence numbers, nothing was dropped and the
# kernel's UDP RcvbufErrors (/proc/net/snmp) did not move. The search
# doubles the rate until loss, then bisects. Peak RSS is VmHWM from
# /proc/<pid>/status. Then one trial at twice the zero-loss rate with
# -max-memory MAXMEM reports RSS and the messages dropped, and whether the
# collector's counters account for all of them.
set -euo pipefail

BIN=${1:-build/bin}
HOSTS=${HOSTS:-256}
TRIAL=${TRIAL:-3}          # seconds of load per trial
START=${START:-25000}      # first rate tried, msg/s
CEIL=${CEIL:-1600000}      # stop doubling here
BISECT=${BISECT:-3}        # bisection steps
MAXMEM=${MAXMEM:-33554432} # -max-memory for the 2x trial, bytes
LGD=$BIN/lastgaspd
LOAD=$BIN/lastgasp-load
for b in "$LGD" "$LOAD"; do
	[[ -x $b ]] || { echo "bench-collector: $b not built" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/lastgasp-bench.XXXXXX)
PID=
cleanup() {
	if [[ -n $PID ]]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
	rm -rf "$WORK"
}
trap cleanup EXIT

rcvbuf_errors() {
	awk '/^Udp:/{if(!h){split($0,H);h=1}else{for(i=2;i<=NF;i++)if(H[i]=="RcvbufErrors")print $i}}' /proc/net/snmp
}

metric() { # metric NAME: sum of the samples of NAME in $WORK/metrics, as an integer (client_golang writes 1.5e+06)
	awk -v n="$1" '$1==n || index($1, n"{")==1 {s+=$2} END {printf "%d\n", s}' "$WORK/metrics"
}

field() { # field KEY LINE: value of KEY=value in LINE
	sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$2"
}

# trial RATE MAXMEM: sets SENT STORED SKIPPED LOST DROPPED KDROPS HWM ACTUAL OK
trial() {
	local rate=$1 maxmem=$2 port=$((20000 + RANDOM % 20000))
	local dir=$WORK/t$port
	mkdir -p "$dir"
	"$LGD" -netconsole "127.0.0.1:$port" -http "127.0.0.1:$((port + 1))" -store "$dir/store" \
		-max-memory "$maxmem" 2>"$dir/lastgaspd.log" &
	PID=$!
	for _ in $(seq 100); do
		curl -sf "http://127.0.0.1:$((port + 1))/metrics" >/dev/null 2>&1 && break
		sleep 0.05
	done
	local k0 k1 out
	k0=$(rcvbuf_errors)
	out=$("$LOAD" -addr "127.0.0.1:$port" -hosts "$HOSTS" -rate "$rate" -count $((rate * TRIAL)))
	sleep 0.6 # reorder waits and the flush tick
	curl -sf "http://127.0.0.1:$((port + 1))/metrics" >"$WORK/metrics"
	HWM=$(awk '/^VmHWM:/{print $2}' "/proc/$PID/status")
	kill -TERM "$PID"
	wait "$PID" || true
	PID=
	k1=$(rcvbuf_errors)
	SENT=$(field messages "$out")
	SKIPPED=$(field skipped "$out")
	ACTUAL=$(field rate "$out")
	STORED=$(cat "$dir"/store/*/*/kernel.log | grep -cE '^[^ ]+ [0-7] seq=' || true)
	LOST=$(metric lastgaspd_netconsole_lost_messages_total)
	DROPPED=$(metric lastgaspd_netconsole_dropped_total)
	KDROPS=$((k1 - k0))
	OK=0
	if [[ $STORED -eq $SENT && $LOST -eq $SKIPPED && $DROPPED -eq 0 && $KDROPS -eq 0 ]]; then OK=1; fi
	printf 'rate %7d msg/s (sent at %6s): sent %8d stored %8d lost %6d (deliberate %5d) dropped %5d kernel RcvbufErrors %6d peak RSS %4d MiB %s\n' \
		"$rate" "$ACTUAL" "$SENT" "$STORED" "$LOST" "$SKIPPED" "$DROPPED" "$KDROPS" $((HWM / 1024)) \
		"$([[ $OK == 1 ]] && echo zero-loss || echo LOSS)"
	rm -rf "$dir"
}

good=0 good_actual=0 good_hwm=0 bad=0
rate=$START
while ((rate <= CEIL)); do
	trial "$rate" 0
	if [[ $OK == 1 ]]; then
		good=$rate good_actual=${ACTUAL%.*} good_hwm=$HWM
		rate=$((rate * 2))
	else
		bad=$rate
		break
	fi
done
if ((good == 0)); then
	echo "bench-collector: loss even at $START msg/s" >&2
	exit 1
fi
if ((bad > 0)); then
	for _ in $(seq "$BISECT"); do
		mid=$(((good + bad) / 2))
		trial "$mid" 0
		if [[ $OK == 1 ]]; then
			good=$mid good_actual=${ACTUAL%.*}
			((HWM > good_hwm)) && good_hwm=$HWM
		else
			bad=$mid
		fi
	done
fi
# Confirm with a fresh run (the edge is noisy: back off 10% until a run at
# the rate is clean again); its peak RSS counts too.
for _ in 1 2 3 4; do
	trial "$good" 0
	((HWM > good_hwm)) && good_hwm=$HWM
	if [[ $OK == 1 ]]; then good_actual=${ACTUAL%.*}; break; fi
	good=$((good * 9 / 10))
	good_actual=$good
done

trial $((good * 2)) "$MAXMEM"
missing=$((SENT - STORED))
counted=$((LOST - SKIPPED + DROPPED))
echo "at 2x ($((good * 2)) msg/s, -max-memory $((MAXMEM >> 20)) MiB): sent $SENT, stored $STORED, missing $missing;" \
	"collector counted $((LOST - SKIPPED)) lost in gaps + $DROPPED dropped = $counted; kernel RcvbufErrors $KDROPS datagrams"
note="(counted)"
if ((counted != missing)); then note="(counted $counted of them)"; fi
echo "zero-loss rate: $good_actual msg/s, peak RSS: $((good_hwm / 1024)) MiB, at 2x: RSS $((HWM / 1024)) MiB, dropped $missing $note"
