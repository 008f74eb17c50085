#!/usr/bin/env bash
# bench-collector.sh: how fast can lastgaspd store its senders' extended
# netconsole on this machine, and what does it cost, from 256 hosts to a
# million?
#
#   scripts/bench-collector.sh [DIR_WITH_BINARIES]      (make bench-collector)
#
# Uses the built lastgaspd and lastgasp-load (default build/bin). Every
# trial starts a fresh collector on a loopback port with a store in a temp
# dir, sends load (announcements, fragments, deliberate gaps, one trailer
# per host after the load so that every loss shows as a gap), waits until
# the collector has read everything, reads /metrics and the peak RSS
# (VmHWM), stops it (SIGTERM flushes the store), counts the message lines
# in the store, and removes the store.
#
# Kernel drops are read from the collector's own sockets (the drops column
# of /proc/net/udp), so other work on the machine does not count; they are
# datagrams, not messages. The system-wide UDP RcvbufErrors are printed
# beside them.
#
# Sections (all by default; set one or more of these to 1 to run just
# those):
#
#   SEARCH_ONLY   256 hosts, one UDP socket each: the highest rate with zero
#                 loss, kernel receive-buffer drops included (doubling, then
#                 bisecting), then one trial at twice that rate with
#                 -max-memory MAXMEM.
#   FLEET_ONLY    FLEET_HOSTS (65536) hosts from distinct source addresses
#                 (raw mode: 127.1.0.0 + i, port 6665) at FLEET_RATE for
#                 FLEET_TRIAL seconds, after a warm-up (WARM=1, the default,
#                 for the fleet, filing and flood sections: each host
#                 announces and sends one message at WARM_RATE, 8000/s, and
#                 the store makes its directories; the measured load then
#                 continues each host's sequence; fd-opens/s is of the
#                 measured load):
#                 hosts=65536 rate=N msg/s stored=P% counted=P% peak RSS=N MiB fd-opens/s=N
#   FILING_ONLY   FILING_HOSTS (16384) announced hosts at FILING_RATE
#                 (20000 msg/s): the share of messages filed under their own
#                 host and boot, <store>/<host>/<boot>/kernel.log.
#   FLOOD_ONLY    256 hosts: 255 at FLOOD_RATE (default: the zero-loss rate
#                 found by the search, else 50000) while host 255 floods at
#                 full speed: the others' stored share and the flooder's
#                 rate-limited count.
#   MILLION_ONLY  MILLION_HOSTS (1048576) hosts, each one announcement and
#                 one message (plus the trailer) at MILLION_RATE: peak RSS.
#
# Definitions:
#   stored  = message lines in the store / messages sent
#   counted = (stored + what the collector counted as lost) / (sent +
#             deliberately skipped), in sequence numbers: its gap losses,
#             drops and rate-limited messages (/metrics). The deliberate gaps
#             are in both terms because the collector cannot tell them from
#             losses (and may never see those of a host it lost entirely);
#             100% means every sequence number is stored or counted. The
#             kernel's drops on the collector's sockets are printed beside
#             it, not added: a datagram the kernel dropped is seen by the
#             collector as a gap (the trailer makes sure), so adding both
#             would count it twice; counted < 100% with kernel drops means
#             the collector never learnt of some of them (a whole stream
#             lost, or its trailer).
#   split   (fleet section) the same sequence numbers, host by host from
#             the store and the load generator's -sent files: stored;
#             counted by the collector (gaps, of them the deliberate ones
#             it saw, drops, rate-limited); the tail lost with the trailer
#             (after a host's last stored message up to its last sent one:
#             no later message showed the gap; messages, their datagrams,
#             deliberate numbers among them); numbers skipped after a
#             host's last message (no receiver can see them); and what is
#             left (0, or minus the dropped messages that were a host's
#             last received, counted as dropped and as tail). Then the
#             datagrams: sent = received + the collector's kernel drops
#             (lastgaspd_netconsole_kernel_drops_total), left over (0 when
#             it counts every drop), and the received datagrams that are in
#             no stored message (of dropped messages and incomplete
#             fragments; a message lost inside the collector would show
#             here).
#   filed   = lines in <host>/<boot>/kernel.log whose text names that host
#             (the load generator starts every text with its host's name) /
#             sent
#   fd-opens/s = log files opened (lastgaspd_store_file_opens_total, NA if
#             the collector does not export it) / seconds of load
# Metric names are looked up as lastgasp_* and lastgaspd_* (the collector's
# names are moving to the latter). KEEP=DIR keeps each many-host trial's
# /metrics, collector log, load summaries and kernel drop counts there;
# KEEP_STORE=1 also moves its store there (<hosts>.store) instead of
# removing it.
set -euo pipefail

BIN=${1:-build/bin}
HOSTS=${HOSTS:-256}
TRIAL=${TRIAL:-3}          # seconds of load per search trial
START=${START:-25000}      # first rate tried, msg/s
CEIL=${CEIL:-1600000}      # stop doubling here
BISECT=${BISECT:-3}        # bisection steps
MAXMEM=${MAXMEM:-33554432} # -max-memory for the 2x trial, bytes
FLEET_HOSTS=${FLEET_HOSTS:-65536}
FLEET_RATE=${FLEET_RATE:-150000}
FLEET_TRIAL=${FLEET_TRIAL:-10}
FILING_HOSTS=${FILING_HOSTS:-16384}
FILING_RATE=${FILING_RATE:-20000}
FILING_TRIAL=${FILING_TRIAL:-10}
FLOOD_RATE=${FLOOD_RATE:-}
FLOOD_TRIAL=${FLOOD_TRIAL:-5}
MILLION_HOSTS=${MILLION_HOSTS:-1048576}
MILLION_RATE=${MILLION_RATE:-20000}
# With a few dozen messages per host, fragments and deliberate gaps must
# come sooner than the 256-host defaults (every 50th message, every 100th
# sequence number) or most hosts would send neither.
FLEET_LOAD_ARGS=${FLEET_LOAD_ARGS:--frag-every 20 -gap-every 10}
LGD=$BIN/lastgaspd
LOAD=$BIN/lastgasp-load
for b in "$LGD" "$LOAD"; do
	[[ -x $b ]] || { echo "bench-collector: $b not built" >&2; exit 1; }
done

ALL=1
for v in SEARCH_ONLY FLEET_ONLY FILING_ONLY FLOOD_ONLY MILLION_ONLY; do
	[[ ${!v:-} == 1 ]] && ALL=0
done
want() { [[ $ALL == 1 || ${!1:-} == 1 ]]; }

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

# sock_drops PORT: datagrams the kernel dropped on the UDP sockets bound to
# 127.0.0.1:PORT (the drops column of /proc/net/udp), unlike RcvbufErrors
# only the collector's; read before the sockets close.
sock_drops() {
	awk -v p="$(printf '0100007F:%04X' "$1")" '$2 == p { s += $NF } END { print s + 0 }' /proc/net/udp
}

# metric NAME...: sum of the samples of the first NAME present in
# $WORK/metrics (values may be in exponent form), or NA if none is.
metric() {
	local n
	for n in "$@"; do
		if awk -v n="$n" '$1==n || index($1, n"{")==1 {f=1} END {exit !f}' "$WORK/metrics"; then
			awk -v n="$n" '$1==n || index($1, n"{")==1 {s+=$NF} END {printf "%.0f\n", s}' "$WORK/metrics"
			return
		fi
	done
	echo NA
}

# metric_matching NAME SUBSTR: sum of NAME's samples whose labels contain
# SUBSTR (e.g. a host name), under either prefix; NA if NAME is absent.
metric_matching() {
	awk -v a="lastgasp_$1" -v b="lastgaspd_$1" -v sub_="$2" '
		{ split($1, p, "{") } p[1]==a || p[1]==b { f=1; if (index($1, sub_)) s+=$NF }
		END { if (f) printf "%.0f\n", s; else print "NA" }' "$WORK/metrics"
}

nc_metric() { metric "lastgasp_netconsole_$1" "lastgaspd_netconsole_$1"; }
na0() { [[ $1 == NA ]] && echo 0 || echo "$1"; }

field() { # field KEY LINE: value of KEY=value in LINE
	sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$2"
}

pct() { # pct NUM DEN: NUM/DEN in percent, 3 decimals
	awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", 100 * a / b; else print "NA" }'
}

# start_collector DIR [lastgaspd flags...]: sets PID PORT HPORT
start_collector() {
	local dir=$1
	shift
	mkdir -p "$dir"
	for _ in 1 2 3 4 5; do
		PORT=$((20000 + RANDOM % 20000)) HPORT=$((PORT + 1))
		"$LGD" -netconsole "127.0.0.1:$PORT" -http "127.0.0.1:$HPORT" -store "$dir/store" ${LGD_ARGS:-} "$@" 2>>"$dir/lastgaspd.log" &
		PID=$!
		for _ in $(seq 100); do
			curl -sf "http://127.0.0.1:$HPORT/metrics" >/dev/null 2>&1 && return 0
			kill -0 "$PID" 2>/dev/null || break
			sleep 0.05
		done
		kill "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
		PID=
	done
	echo "bench-collector: collector did not start; see $dir/lastgaspd.log" >&2
	cat "$dir/lastgaspd.log" >&2
	exit 1
}

# settle: wait (up to SETTLE seconds, default 120) until the collector has
# read and written everything: its datagram, message and file-open counters
# stop moving for a second. Leaves /metrics in $WORK/metrics and the peak
# RSS in HWM (KiB).
settle() {
	local prev=x cur still=0
	for _ in $(seq $((${SETTLE:-120} * 4))); do
		curl -sf -m 5 "http://127.0.0.1:$HPORT/metrics" >"$WORK/metrics" || true
		cur="$(nc_metric datagrams_total) $(nc_metric messages_total) $(metric lastgaspd_store_file_opens_total lastgasp_store_file_opens_total)"
		if [[ $cur == "$prev" ]]; then
			((++still >= 4)) && break
		else
			still=0
		fi
		prev=$cur
		sleep 0.25
	done
	sleep 0.6 # the flush tick and reorder waits
	curl -sf -m 5 "http://127.0.0.1:$HPORT/metrics" >"$WORK/metrics"
	HWM=$(awk '/^VmHWM:/{print $2}' "/proc/$PID/status")
}

stop_collector() {
	kill -TERM "$PID"
	wait "$PID" || true
	PID=
}

# count_store STORE BOOT [FLOODHOST]: sets LINES (message lines), OWN (lines
# in <host>/<BOOT>/ naming that host), FLINES/FOWN (the same for lines
# naming FLOODHOST), NOANN ("no announcement" notes), RLNOTED/FRLNOTED
# (messages the "rate-limited N messages" notes report, all hosts and
# FLOODHOST's directory).
count_store() {
	local out
	out=$(find "$1" -name 'kernel.log*' -print0 | xargs -0 -r awk -v boot="$2" -v flood="${3:-}" '
		/ lastgaspd: no announcement / { noann++ }
		/ lastgaspd: rate-limited [0-9]+ messages/ && match($0, /rate-limited [0-9]+/) {
			k = substr($0, RSTART + 13, RLENGTH - 13); rl += k
			n = split(FILENAME, p, "/"); if (p[n-2] == flood) frl += k
		}
		$3 ~ /^seq=[0-9]+$/ && $2 ~ /^[0-7]$/ {
			n = split(FILENAME, p, "/"); dirhost = p[n-2]; dirboot = p[n-1]
			named = $5
			if (named == "lastgasp:" && match($0, / host=[^ ]+/)) named = substr($0, RSTART + 6, RLENGTH - 6)
			own = (named == dirhost && dirboot == boot)
			lines++; owns += own
			if (named == flood) { fl++; fo += own }
		}
		END { printf "%d %d %d %d %d %d %d\n", lines, owns, fl, fo, noann, rl, frl }' |
		# xargs runs awk once per batch of files: add up their sums.
		awk '{ for (i = 1; i <= NF; i++) t[i] += $i } END { printf "%d %d %d %d %d %d %d\n", t[1], t[2], t[3], t[4], t[5], t[6], t[7] }')
	read -r LINES OWN FLINES FOWN NOANN RLNOTED FRLNOTED <<<"${out:-0 0 0 0 0 0 0}"
}

# tail_store STORE SENT...: compares the store with what the load generator
# sent (its -sent files, one line per host: first, last and skipped
# sequence numbers, fragmented messages), host by host. Sets TAILSEQ (the
# sequence numbers after each host's last stored message up to its last
# sent one: lost with no later message to show the gap), TAILSKIP (the
# deliberate ones among them), TAILMSG, TAILDG (their messages and
# datagrams), TAILHOSTS (hosts with such a tail), WHOLE (hosts with nothing
# stored from the last SENT file's load), AFTER (numbers skipped after a
# host's last message, which no receiver can see) and STOREDDG (datagrams of
# the stored messages).
tail_store() {
	local store=$1 out
	shift
	out=$( {
		cat "$@"
		find "$store" -name 'kernel.log*' -print0 | xargs -0 -r awk '
			$3 ~ /^seq=[0-9]+$/ && $2 ~ /^[0-7]$/ { n = split(FILENAME, p, "/"); print "S", p[n-2], substr($3, 5) }'
	} | awk '
		function val(f) { return substr(f, index(f, "=") + 1) }
		$1 == "S" { h = $2; q = $3 + 0; if (!(h in top) || q > top[h]) top[h] = q; dg += (h SUBSEP q) in multi ? multi[h, q] : 1; next }
		{
			h = $1; f = val($2) + 0; l = val($3) + 0
			if (!(h in first) || f < first[h]) first[h] = f
			if (l > last[h]) last[h] = l
			loadfirst[h] = f
			if (val($4) != "-") { k = split(val($4), a, ","); for (i = 1; i <= k; i++) skip[h, a[i] + 0] = 1 }
			if (val($5) != "-") { k = split(val($5), a, ","); for (i = 1; i <= k; i++) { split(a[i], m, ":"); multi[h, m[1] + 0] = m[2] + 0 } }
		}
		END {
			for (h in first) {
				t = (h in top) ? top[h] : first[h] - 1
				if (t < loadfirst[h]) whole++
				if (last[h] > t) tailhosts++
				for (q = t + 1; q <= last[h]; q++) {
					tseq++
					if ((h SUBSEP q) in skip) tskip++
					else tdg += (h SUBSEP q) in multi ? multi[h, q] : 1
				}
			}
			for (k in skip) { split(k, a, SUBSEP); if (a[2] > last[a[1]]) after++ }
			printf "%d %d %d %d %d %d %d %d\n", tseq, tskip, tseq - tskip, tdg, tailhosts, whole, after, dg
		}')
	read -r TAILSEQ TAILSKIP TAILMSG TAILDG TAILHOSTS WHOLE AFTER STOREDDG <<<"$out"
}

# rate_limited: messages dropped by the collector's per-host rate limit:
# its metric, or (if it exports none) what its log notes say.
rate_limited() {
	local m
	m=$(metric lastgaspd_netconsole_rate_limited_total lastgasp_netconsole_rate_limited_total)
	if [[ $m == NA ]]; then echo "$RLNOTED"; else echo "$m"; fi
}

newboot() { od -An -tx1 -N8 /dev/urandom | tr -d ' \n'; }

# --- 256 hosts: zero-loss search -------------------------------------------

# trial RATE MAXMEM: sets SENT STORED SKIPPED LOST DROPPED KDROPS HWM ACTUAL OK
trial() {
	local rate=$1 maxmem=$2 dir=$WORK/trial boot
	boot=$(newboot)
	start_collector "$dir" -max-memory "$maxmem"
	local out
	out=$("$LOAD" -addr "127.0.0.1:$PORT" -hosts "$HOSTS" -rate "$rate" -count $((rate * TRIAL)) -boot "$boot")
	settle
	SOCKDROPS=$(sock_drops "$PORT")
	stop_collector
	SENT=$(field messages "$out")
	SKIPPED=$(field skipped "$out")
	ACTUAL=$(field rate "$out")
	count_store "$dir/store" "$boot"
	STORED=$LINES
	LOST=$(na0 "$(nc_metric lost_messages_total)")
	DROPPED=$(na0 "$(nc_metric dropped_total)")
	RL=$(rate_limited)
	KDROPS=$SOCKDROPS
	OK=0
	if [[ $STORED -eq $SENT && $LOST -eq $SKIPPED && $DROPPED -eq 0 && $RL -eq 0 && $KDROPS -eq 0 ]]; then OK=1; fi
	printf 'rate %7d msg/s (sent at %6s): sent %8d stored %8d lost %6d (deliberate %5d) dropped %5d rate-limited %5d kernel drops %6d peak RSS %4d MiB %s\n' \
		"$rate" "$ACTUAL" "$SENT" "$STORED" "$LOST" "$SKIPPED" "$DROPPED" "$RL" "$KDROPS" $((HWM / 1024)) \
		"$([[ $OK == 1 ]] && echo zero-loss || echo LOSS)"
	rm -rf "$dir"
}

GOOD=
search() {
	local good=0 good_actual=0 good_hwm=0 bad=0 rate=$START
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
		return 1
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
	# Confirm with a fresh run (the edge is noisy: back off 10% until a run
	# at the rate is clean again); its peak RSS counts too.
	for _ in 1 2 3 4; do
		trial "$good" 0
		((HWM > good_hwm)) && good_hwm=$HWM
		if [[ $OK == 1 ]]; then good_actual=${ACTUAL%.*}; break; fi
		good=$((good * 9 / 10))
		good_actual=$good
	done
	GOOD=$good

	trial $((good * 2)) "$MAXMEM"
	local missing=$((SENT - STORED)) counted=$((LOST - SKIPPED + DROPPED + RL)) note="(counted)"
	echo "at 2x ($((good * 2)) msg/s, -max-memory $((MAXMEM >> 20)) MiB): sent $SENT, stored $STORED, missing $missing;" \
		"collector counted $((LOST - SKIPPED)) lost in gaps + $DROPPED dropped + $RL rate-limited = $counted; kernel drops on its sockets $KDROPS datagrams"
	if ((counted != missing)); then note="(counted $counted of them)"; fi
	echo "zero-loss rate: $good_actual msg/s, peak RSS: $((good_hwm / 1024)) MiB, at 2x: RSS $((HWM / 1024)) MiB, dropped $missing $note"
}

# --- many hosts from distinct source addresses ------------------------------

# fleet_trial HOSTS RATE COUNT [load flags...]: one raw-mode trial; sets OUT
# (the load generator's summary), SENT SKIPPED SECONDS ACTUAL LOST DROPPED
# KDROPS HWM OPENS BOOT and the count_store figures. Extra load flags come
# after FLEET_LOAD_ARGS.
fleet_trial() {
	local hosts=$1 rate=$2 count=$3 dir=$WORK/fleet k0 k1
	shift 3
	BOOT=$(newboot)
	start_collector "$dir"
	local wsent=0 wdg=0 wout seqstart=1000 o0=0
	rm -f "$WORK/sent.warm" "$WORK/sent.load"
	if [[ ${WARM:-1} == 1 ]]; then
		# Warm-up: every host announces itself and sends one message at
		# WARM_RATE, and the collector makes its directories, before the
		# measured load: a fleet that is up, as a collector sees it
		# after its first minutes. The measured load continues each
		# host's sequence. WARM=0 measures a cold start instead.
		wout=$("$LOAD" -addr "127.0.0.1:$PORT" -sources raw -hosts "$hosts" -rate "${WARM_RATE:-8000}" -count $((2 * hosts)) -boot "$BOOT" -trailer 0 -frag-every 0 -gap-every 0 ${RECORD:+-sent "$WORK/sent.warm"})
		settle
		wsent=$(field messages "$wout")
		wdg=$(field datagrams "$wout")
		seqstart=1002
		o0=$(na0 "$(metric lastgaspd_store_file_opens_total lastgasp_store_file_opens_total)")
	fi
	k0=$(rcvbuf_errors)
	# shellcheck disable=SC2086 # FLEET_LOAD_ARGS is a list of flags
	OUT=$("$LOAD" -addr "127.0.0.1:$PORT" -sources raw -hosts "$hosts" -rate "$rate" -count "$count" -boot "$BOOT" -seq-start "$seqstart" $FLEET_LOAD_ARGS ${RECORD:+-sent "$WORK/sent.load"} "$@")
	settle
	k1=$(rcvbuf_errors)
	SOCKDROPS=$(sock_drops "$PORT")
	LOST=$(na0 "$(nc_metric lost_messages_total)")
	DROPPED=$(na0 "$(nc_metric dropped_total)")
	DGRECV=$(nc_metric datagrams_total)
	KMETRIC=$(nc_metric kernel_drops_total)
	OPENS=$(metric lastgaspd_store_file_opens_total lastgasp_store_file_opens_total)
	[[ $OPENS != NA ]] && OPENS=$((OPENS - o0))
	RLMETRIC=$(metric lastgaspd_netconsole_rate_limited_total lastgasp_netconsole_rate_limited_total)
	FRLMETRIC=$(metric_matching netconsole_host_rate_limited_total "host=\"${FLOODNAME:-}\"")
	stop_collector
	KDROPS=$((k1 - k0))
	SENT=$(($(field messages "$OUT") + wsent)) # the warm-up's lines are in the store too
	SKIPPED=$(field skipped "$OUT")
	DGSENT=$(($(field datagrams "$OUT") + wdg))
	SECONDS_=$(field seconds "$OUT")
	ACTUAL=$(field rate "$OUT")
	ACTUAL=${ACTUAL%.*}
	count_store "$dir/store" "$BOOT" "${FLOODNAME:-}"
	RL=$(rate_limited)
	if [[ -n ${RECORD:-} ]]; then
		local sf=()
		[[ -f $WORK/sent.warm ]] && sf+=("$WORK/sent.warm")
		tail_store "$dir/store" "${sf[@]}" "$WORK/sent.load"
	fi
	STORE_DU=$(du -sm "$dir/store" | cut -f1)
	if [[ -n ${KEEP:-} ]]; then
		mkdir -p "$KEEP"
		cp "$WORK/metrics" "$KEEP/$hosts.metrics"
		cp "$dir/lastgaspd.log" "$KEEP/$hosts.lastgaspd.log"
		echo "$OUT" >"$KEEP/$hosts.load"
		[[ -n ${wout:-} ]] && echo "$wout" >"$KEEP/$hosts.warm.load"
		[[ -f $WORK/sent.load ]] && cp "$WORK/sent.load" "$KEEP/$hosts.sent"
		[[ -f $WORK/sent.warm ]] && cp "$WORK/sent.warm" "$KEEP/$hosts.warm.sent"
		printf 'sockdrops=%s rcvbuferrors=%s\n' "$SOCKDROPS" "$KDROPS" >"$KEEP/$hosts.kernel"
		if [[ ${KEEP_STORE:-} == 1 ]]; then rm -rf "$KEEP/$hosts.store"; mv "$dir/store" "$KEEP/$hosts.store"; fi
	fi
	rm -rf "$dir"
}

# detail: the counters behind a fleet line.
detail() {
	echo "  sent $SENT (deliberately skipped $SKIPPED), stored $LINES, filed under own host $OWN ($(pct "$OWN" "$SENT")%)," \
		"collector lost $LOST dropped $DROPPED rate-limited $RLMETRIC (noted in logs $RLNOTED), kernel drops on its sockets $SOCKDROPS datagrams (RcvbufErrors system-wide $KDROPS), 'no announcement' notes $NOANN," \
		"files opened $OPENS, store ${STORE_DU} MiB"
}

# split: where the fleet trial's sequence numbers went, from the store,
# /metrics and the load generator's -sent files; then the same for its
# datagrams.
split() {
	local total=$((SENT + SKIPPED)) seen=$((SKIPPED - TAILSKIP - AFTER)) sum left
	sum=$((LINES + LOST + DROPPED + RL + TAILSEQ + AFTER))
	left=$((total - sum))
	echo "  split of sent+skipped $total sequence numbers: stored $LINES ($(pct "$LINES" "$total")%);" \
		"counted by the collector $((LOST + DROPPED + RL)) ($(pct $((LOST + DROPPED + RL)) "$total")%: gaps $LOST, of them deliberate $seen, dropped $DROPPED, rate-limited $RL);" \
		"tail lost with the trailer $TAILSEQ ($(pct "$TAILSEQ" "$total")%: $TAILMSG messages in $TAILDG datagrams and $TAILSKIP deliberate, $TAILHOSTS hosts, $WHOLE of them lost whole);" \
		"skipped after the last message $AFTER; left $left ($(pct "$left" "$total")%)"
	echo "  datagrams: sent $DGSENT = received $DGRECV + kernel drops $KMETRIC (lastgaspd_netconsole_kernel_drops_total; /proc/net/udp $SOCKDROPS), left $((DGSENT - DGRECV - KMETRIC));" \
		"in stored messages $STOREDDG, received but in no stored message $((DGRECV - STOREDDG)) (dropped messages' and incomplete fragments'), kernel drops outside the tail $((KMETRIC - TAILDG)) or more"
}

fleet() {
	RECORD=1 fleet_trial "$FLEET_HOSTS" "$FLEET_RATE" $((FLEET_RATE * FLEET_TRIAL))
	local counted fdr=NA
	counted=$((LINES + LOST + DROPPED + RL))
	[[ $OPENS != NA ]] && fdr=$(awk -v o="$OPENS" -v s="$SECONDS_" 'BEGIN { printf "%.0f", o / s }')
	echo "hosts=$FLEET_HOSTS rate=$ACTUAL msg/s stored=$(pct "$LINES" "$SENT")% counted=$(pct "$counted" $((SENT + SKIPPED)))% peak RSS=$((HWM / 1024)) MiB fd-opens/s=$fdr"
	detail
	split
}

filing() {
	fleet_trial "$FILING_HOSTS" "$FILING_RATE" $((FILING_RATE * FILING_TRIAL))
	echo "hosts=$FILING_HOSTS announced, rate=$ACTUAL msg/s: filed under own host=$(pct "$OWN" "$SENT")% (of those stored: $(pct "$OWN" "$LINES")%) stored=$(pct "$LINES" "$SENT")% peak RSS=$((HWM / 1024)) MiB"
	detail
}

flood() {
	local rate=${FLOOD_RATE:-${GOOD:-50000}} normal fsent frate
	FLOODNAME=load-0255
	fleet_trial 256 "$rate" $((rate * FLOOD_TRIAL)) -flood-host 255
	fsent=$(field flood "$OUT")
	frate=$(field flood_rate "$OUT")
	normal=$((SENT - fsent))
	# rate-limited is the collector's total (all hosts); the logs' notes
	# tell the flooder's part from the others'.
	echo "flood: 255 hosts at $ACTUAL msg/s + $FLOODNAME at ${frate%.*} msg/s: normal hosts stored=$(pct $((LINES - FLINES)) "$normal")%" \
		"filed=$(pct $((OWN - FOWN)) "$normal")%; flooder sent $fsent stored $FLINES rate-limited=$RLMETRIC" \
		"(noted in its log $FRLNOTED, in the others' $((RLNOTED - FRLNOTED)); its own sample in /metrics $FRLMETRIC); peak RSS=$((HWM / 1024)) MiB"
	detail
	FLOODNAME=
}

million() {
	WARM=0 fleet_trial "$MILLION_HOSTS" "$MILLION_RATE" $((2 * MILLION_HOSTS))
	echo "hosts=$MILLION_HOSTS (1 announcement + 1 message + trailer each) rate=$ACTUAL msg/s: peak RSS=$((HWM / 1024)) MiB stored=$(pct "$LINES" "$SENT")% filed=$(pct "$OWN" "$SENT")%"
	detail
}

# Other work on the machine skews every figure: say how busy it was.
echo "# $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) before the bench; collector $("$LGD" -h 2>&1 | head -0)$(realpath "$LGD")"
if want SEARCH_ONLY; then search; fi
if want FLEET_ONLY; then fleet; fi
if want FILING_ONLY; then filing; fi
if want FLOOD_ONLY; then flood; fi
if want MILLION_ONLY; then million; fi
