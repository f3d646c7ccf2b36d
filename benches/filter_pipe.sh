#!/usr/bin/env bash
# Throughput of `iocmatch filter` through a pipe against `iocmatch hunt` on the same file
# (issue 5's bar: within 20 %), with the cost of the pipe alone beside them.
#
# Usage (from anywhere in the repository):
#   benches/filter_pipe.sh                       # reuses benches/compare.sh's corpus if present
#   DIR=/tmp/cmp RUNS=5 benches/filter_pipe.sh   # another corpus directory
#   EVENTS=2000000 INDICATORS=200000 benches/filter_pipe.sh   # generates a corpus if missing
#
# Parameters (environment):
#   DIR=target/compare  corpus directory (`iocmatch gen` output plus indicators.iocx; generated
#                       and compiled here when missing, with SEED/INDICATORS/EVENTS/NOW)
#   RUNS=5              alternating rounds; medians are reported
#   CASES="network.ndjson network.csv dns.ndjson dns.csv"
#   SEMANTICS=normalized  (filter's default)
#   CARGO_TARGET_DIR    honoured for the release build
#
# Each round runs, in turn, on the same file from a warm page cache:
#   hunt    iocmatch hunt QUERY FILE --index IDX --semantics S --now NOW -q > /dev/null
#   filter  cat FILE | iocmatch filter QUERY --index IDX --semantics S --now NOW -q > /dev/null
#   pipe    cat FILE | cat > /dev/null     (what moving the bytes through a pipe costs alone)
# and reports median wall seconds, MB/s, filter / hunt, and the CPU seconds (user + system,
# all processes of the pipeline) of each, so that the share of the pipe is visible.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
DIR=${DIR:-target/compare}
RUNS=${RUNS:-5}
SEED=${SEED:-42}
INDICATORS=${INDICATORS:-1000000}
EVENTS=${EVENTS:-10000000}
NOW=${NOW:-2025-01-01T00:00:00Z}
SEMANTICS=${SEMANTICS:-normalized}
TARGET=${CARGO_TARGET_DIR:-target}
read -r -a CASES <<<"${CASES:-network.ndjson network.csv dns.ndjson dns.csv}"

SCRIPT=filter_pipe.sh
# shellcheck source=benches/common.sh
. "$ROOT/benches/common.sh"
check_runs_and_time
build_bin
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
if [[ ! -f $DIR/NetworkConnection.csv ]]; then
    log "iocmatch gen --indicators $INDICATORS --events $EVENTS into $DIR"
    "$BIN" gen --seed "$SEED" --indicators "$INDICATORS" --events "$EVENTS" --now "$NOW" --out "$DIR"
fi
IDX="$DIR/indicators.iocx"
if [[ ! -f $IDX ]] || ! "$BIN" inspect "$IDX" >/dev/null 2>&1; then
    log "iocmatch compile"
    "$BIN" compile "$DIR/indicators.csv" -o "$IDX" --build-time "$NOW" --quiet
fi

TF=$(mktemp)
RAW=$(mktemp)
trap 'rm -f "$TF" "$RAW"' EXIT
# timed NAME CMD...: appends "case name wall cpu" to $RAW
timed() {
    local name=$1
    shift
    /usr/bin/time -f "%e %U %S" -o "$TF" bash -c "$*"
    awk -v c="$CASE" -v n="$name" '{ printf "%s %s %s %.2f\n", c, n, $1, $2 + $3 }' "$TF" >>"$RAW"
}

for CASE in "${CASES[@]}"; do
    case $CASE in
    network.*) Q=network LOG="$DIR/NetworkConnection.${CASE#*.}" ;;
    dns.*) Q=dns LOG="$DIR/DnsEvents.${CASE#*.}" ;;
    *) die "unknown case $CASE" ;;
    esac
    [[ -f $LOG ]] || die "no $LOG"
    ARGS="$Q --index '$IDX' --semantics $SEMANTICS --now $NOW -q"
    cat "$LOG" >/dev/null
    for ((r = 1; r <= RUNS; r++)); do
        log "$CASE round $r/$RUNS"
        timed hunt "'$BIN' hunt $ARGS '$LOG' > /dev/null"
        timed filter "cat '$LOG' | '$BIN' filter $ARGS > /dev/null"
        timed pipe "cat '$LOG' | cat > /dev/null"
    done
done

printf '\n| case | MB | hunt s | filter s | filter / hunt | pipe alone s | CPU s hunt / filter / pipe |\n'
printf '|---|---|---|---|---|---|---|\n'
for CASE in "${CASES[@]}"; do
    case $CASE in
    network.*) LOG="$DIR/NetworkConnection.${CASE#*.}" ;;
    dns.*) LOG="$DIR/DnsEvents.${CASE#*.}" ;;
    esac
    m() { awk -v c="$CASE" -v n="$1" -v f="$2" '$1 == c && $2 == n { print $f }' "$RAW" | median; }
    h=$(m hunt 3) f=$(m filter 3) p=$(m pipe 3)
    printf '| %s | %.0f | %.2f | %.2f | %.2f | %.2f | %.2f / %.2f / %.2f |\n' "$CASE" \
        "$(awk -v b="$(stat -c %s "$LOG")" 'BEGIN { print b / 1e6 }')" "$h" "$f" \
        "$(awk -v a="$f" -v b="$h" 'BEGIN { print a / b }')" "$p" "$(m hunt 4)" "$(m filter 4)" "$(m pipe 4)"
done
printf '\nmedians of %s alternating rounds; load average at the end: %s\n' "$RUNS" "$(cut -d' ' -f1-3 /proc/loadavg)"
