#!/usr/bin/env bash
# End-to-end comparison of `iocmatch hunt` with DuckDB and with `wc -l`, on the same files.
#
# Usage (from anywhere in the repository):
#   benches/compare.sh                                    # full scale: 1M indicators, 10M events
#   INDICATORS=100000 EVENTS=1000000 RUNS=3 benches/compare.sh   # small scale, a few minutes
#
# Parameters (environment):
#   INDICATORS=1000000   indicator rows (`iocmatch gen --indicators`)
#   EVENTS=10000000      events per log file (`iocmatch gen --events`)
#   RUNS=3               timed runs of every program per case (the median is reported)
#   DIR=target/compare   corpus, index, outputs and results (the corpus is kept and reused
#                        when its parameters match)
#   SEED=42  NOW=2025-01-01T00:00:00Z   generator seed and the `now()` of every hunt
#   VENV=target/compare-venv  DUCKDB_VERSION=1.1.3   DuckDB from PyPI, in a virtual env
#   PROGS="ioc-kql-index ioc-kql-rawcsv ioc-norm-index ioc-norm-rawcsv duckdb wc-l"   the programs
#                        (a subset for a quicker run; duckdb and wc-l are required)
#   CASES="network.csv network.ndjson dns.csv dns.ndjson"   the cases to time (a subset is
#                        fine, e.g. CASES=network.csv for a quick re-run on an existing corpus)
#   CARGO_TARGET_DIR     honoured for the release build (default target)
#
# What it does:
#   1. `cargo build --release` once; `iocmatch gen` writes the corpus (fixed seed and now);
#      `iocmatch compile` precompiles indicators.csv into indicators.iocx (timed).
#   2. Creates the virtual env with duckdb if missing.
#   3. For each case (network|dns x csv|ndjson), after reading every file once (warm page
#      cache), RUNS rounds, each round running in turn:
#        ioc-kql-index    iocmatch hunt --semantics kql        --index indicators.iocx
#        ioc-kql-rawcsv   iocmatch hunt --semantics kql        --index indicators.csv (compile included)
#        ioc-norm-index   iocmatch hunt --semantics normalized --index indicators.iocx
#        ioc-norm-rawcsv  iocmatch hunt --semantics normalized --index indicators.csv
#        duckdb           benches/duckdb_hunt.py (reads indicators.csv and the log every time)
#        wc -l            the raw ceiling: one pass over the log
#      Wall seconds (date +%s%N around the process) and peak RSS (/usr/bin/time %M). Every
#      program writes its result rows to a file (iocmatch CSV on stdout, DuckDB COPY ... TO).
#   4. Prints a Markdown table: median s, MB/s (log bytes / median s), speed relative to
#      DuckDB and to wc -l (their median s / this median s: > 1 = faster), peak RSS (max over
#      the runs) and rows; checks that iocmatch in kql semantics returns exactly DuckDB's row
#      count (the script fails otherwise); lists the issue's bars as PASS/FAIL (not fatal).
#   5. Startup: `iocmatch lookup indicators.iocx 1.2.3.4`, median wall time of 10 runs
#      (process start included; `iocmatch --version` is timed alongside as the baseline).
#   6. Scaling: network csv, kql, precompiled index, --threads 1 and --threads 2, RUNS
#      alternating rounds, records/s = EVENTS / median s.
# The report is also written to $DIR/report.md; raw timings to $DIR/timings.tsv.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

INDICATORS=${INDICATORS:-1000000}
EVENTS=${EVENTS:-10000000}
RUNS=${RUNS:-3}
DIR=${DIR:-target/compare}
SEED=${SEED:-42}
NOW=${NOW:-2025-01-01T00:00:00Z}
VENV=${VENV:-target/compare-venv}
DUCKDB_VERSION=${DUCKDB_VERSION:-1.1.3}
TARGET=${CARGO_TARGET_DIR:-target}
read -r -a CASES <<<"${CASES:-network.csv network.ndjson dns.csv dns.ndjson}"

SCRIPT=compare.sh
# shellcheck source=benches/common.sh
. "$ROOT/benches/common.sh"
now_ns() { date +%s%N; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }
fsize() { stat -c %s "$1"; }

check_runs_and_time

mkdir -p "$DIR/out"
DIR=$(cd "$DIR" && pwd)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# 1. Build, corpus, index.
build_bin

PARAMS="seed=$SEED indicators=$INDICATORS events=$EVENTS now=$NOW"
if [[ -f $DIR/corpus.params && $(cat "$DIR/corpus.params") == "$PARAMS" ]]; then
    log "corpus in $DIR is up to date ($PARAMS)"
else
    rm -f "$DIR/corpus.params"
    log "iocmatch gen $PARAMS"
    t0=$(now_ns)
    "$BIN" gen --seed "$SEED" --indicators "$INDICATORS" --events "$EVENTS" --now "$NOW" --out "$DIR"
    log "generated in $(awk -v a="$t0" -v b="$(now_ns)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }') s"
    echo "$PARAMS" >"$DIR/corpus.params"
fi
TI="$DIR/indicators.csv"
IDX="$DIR/indicators.iocx"
log "iocmatch compile"
t0=$(now_ns)
"$BIN" compile "$TI" -o "$IDX" --build-time "$NOW" --quiet
COMPILE_S=$(awk -v a="$t0" -v b="$(now_ns)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')

# 2. DuckDB.
if ! "$VENV/bin/python" -c "import duckdb, sys; sys.exit(duckdb.__version__ != '$DUCKDB_VERSION')" 2>/dev/null; then
    log "creating $VENV with duckdb==$DUCKDB_VERSION"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "duckdb==$DUCKDB_VERSION"
fi
PY="$VENV/bin/python"

# 3. Timings. One line per run: case, program, run, seconds, peak RSS KiB, rows.
TIMINGS="$DIR/timings.tsv"
: >"$TIMINGS"
TF="$DIR/out/time.txt"

# measure CASE PROG RUN CMD... : runs CMD with stdout/stderr to $DIR/out/CASE.PROG.{stdout,stderr}
# (iocmatch's exit 1 = no match is accepted); appends to $TIMINGS.
measure() {
    local case=$1 prog=$2 run=$3
    shift 3
    local out="$DIR/out/$case.$prog" rc=0 t0 t1
    t0=$(now_ns)
    /usr/bin/time -f "%e %M" -o "$TF" "$@" >"$out.stdout" 2>"$out.stderr" || rc=$?
    t1=$(now_ns)
    if ((rc != 0)) && ! [[ $prog == ioc-* && $rc == 1 ]]; then
        echo "FAILED (exit $rc): $*" >&2
        tail -5 "$out.stderr" >&2
        exit 1
    fi
    local rss rows=-
    rss=$(awk 'END { print $2 }' "$TF")
    case $prog in
    ioc-*) rows=$(sed -n 's/^total: .* file(s), \([0-9]*\) matches.*/\1/p' "$out.stderr") ;;
    duckdb) rows=$(sed -n 's/^rows=\([0-9]*\) .*/\1/p' "$out.stdout") ;;
    esac
    [[ -n $rows ]] || die "$case $prog: no row count in its output (see $out.stderr)"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$case" "$prog" "$run" \
        "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e9 }')" "$rss" "$rows" >>"$TIMINGS"
}

read -r -a PROGS <<<"${PROGS:-ioc-kql-index ioc-kql-rawcsv ioc-norm-index ioc-norm-rawcsv duckdb wc-l}"
for p in duckdb wc-l; do
    [[ " ${PROGS[*]} " == *" $p "* ]] || die "PROGS must include $p (the ratios are taken against it)"
done
# timed PROG: whether PROG is among the programs of this run
timed() { [[ " ${PROGS[*]} " == *" $1 "* ]]; }
declare -A LOGFILE=(
    [network.csv]=NetworkConnection.csv [network.ndjson]=NetworkConnection.ndjson
    [dns.csv]=DnsEvents.csv [dns.ndjson]=DnsEvents.ndjson
)
for case in "${CASES[@]}"; do
    [[ -n ${LOGFILE[$case]:-} ]] || die "unknown case '$case' in CASES (network.csv network.ndjson dns.csv dns.ndjson)"
done

for case in "${CASES[@]}"; do
    query=${case%%.*}
    fmt=${case#*.}
    logf="$DIR/${LOGFILE[$case]}"
    cat "$logf" "$TI" "$IDX" >/dev/null # warm the page cache
    for ((run = 1; run <= RUNS; run++)); do
        log "$case run $run/$RUNS (load $(cut -d' ' -f1 /proc/loadavg))"
        for prog in "${PROGS[@]}"; do
            case $prog in
            ioc-kql-index) measure "$case" "$prog" "$run" "$BIN" hunt "$query" --index "$IDX" --semantics kql --now "$NOW" "$logf" ;;
            ioc-kql-rawcsv) measure "$case" "$prog" "$run" "$BIN" hunt "$query" --index "$TI" --semantics kql --now "$NOW" "$logf" ;;
            ioc-norm-index) measure "$case" "$prog" "$run" "$BIN" hunt "$query" --index "$IDX" --semantics normalized --now "$NOW" "$logf" ;;
            ioc-norm-rawcsv) measure "$case" "$prog" "$run" "$BIN" hunt "$query" --index "$TI" --semantics normalized --now "$NOW" "$logf" ;;
            duckdb) measure "$case" "$prog" "$run" "$PY" benches/duckdb_hunt.py "$query" "$fmt" "$TI" "$logf" "$NOW" "$DIR/out/$case.duckdb.csv" ;;
            wc-l) measure "$case" "$prog" "$run" wc -l "$logf" ;;
            esac
        done
    done
done

# 5. Startup: open a 1M-indicator index + one lookup, process start included.
STARTUP_RUNS=10
: >"$DIR/out/startup.tsv"
for ((i = 0; i < STARTUP_RUNS; i++)); do
    t0=$(now_ns)
    "$BIN" --version >/dev/null
    t1=$(now_ns)
    rc=0
    "$BIN" lookup "$IDX" 1.2.3.4 >/dev/null || rc=$?
    t2=$(now_ns)
    ((rc <= 1)) || die "iocmatch lookup exited $rc"
    printf '%s\t%s\n' "$(((t1 - t0) / 1000))" "$(((t2 - t1) / 1000))" >>"$DIR/out/startup.tsv"
done
VERSION_MS=$(cut -f1 "$DIR/out/startup.tsv" | median | awk '{ printf "%.2f", $1 / 1000 }')
LOOKUP_MS=$(cut -f2 "$DIR/out/startup.tsv" | median | awk '{ printf "%.2f", $1 / 1000 }')

# 6. Scaling: network csv, kql, precompiled index, 1 and 2 threads.
for ((run = 1; run <= RUNS; run++)); do
    log "threads run $run/$RUNS"
    for th in 1 2; do
        measure threads "ioc-threads-$th" "$run" "$BIN" hunt network --index "$IDX" --semantics kql --now "$NOW" --threads "$th" "$DIR/NetworkConnection.csv"
    done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# 4. Report.
med() { awk -F'\t' -v c="$1" -v p="$2" '$1 == c && $2 == p { print $4 }' "$TIMINGS" | median; }
peak() { awk -F'\t' -v c="$1" -v p="$2" '$1 == c && $2 == p && $5 > m { m = $5 } END { printf "%.0f", m / 1024 }' "$TIMINGS"; }
rowset() { awk -F'\t' -v c="$1" -v p="$2" '$1 == c && $2 == p { print $6 }' "$TIMINGS" | sort -u | paste -sd/ -; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

IDX_MB=$(mb "$(fsize "$IDX")")
{
    echo "## iocmatch vs DuckDB vs wc -l"
    echo
    echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ); commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src 2>/dev/null || echo ' (src modified)')"
    echo "- machine: $(nproc) cores, load average (1/5/15 min) at start $LOAD_START, at end $LOAD_END"
    echo "- corpus: $PARAMS; indicators.csv $(mb "$(fsize "$TI")") MB; index $IDX_MB MB (compile ${COMPILE_S} s)"
    echo "- logs: $(for c in "${CASES[@]}"; do printf '%s %s MB; ' "${LOGFILE[$c]}" "$(mb "$(fsize "$DIR/${LOGFILE[$c]}")")"; done)"
    echo "- DuckDB $("$PY" -c 'import duckdb; print(duckdb.__version__)') (Python $("$PY" -c 'import platform; print(platform.python_version())')), $RUNS alternating rounds per case, median wall seconds, page cache warm"
    echo "- x DuckDB / x wc -l: the other program's median seconds / this one's (> 1 = faster). MB/s: log bytes / median s (the rawcsv rows also read indicators.csv)."
    echo
    echo "| case | program | median s | MB/s | x DuckDB | x wc -l | peak RSS MB | rows |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    for case in "${CASES[@]}"; do
        size=$(fsize "$DIR/${LOGFILE[$case]}")
        d=$(med "$case" duckdb)
        w=$(med "$case" wc-l)
        for prog in "${PROGS[@]}"; do
            m=$(med "$case" "$prog")
            echo "| $case | $prog | $(printf '%.3f' "$m") | $(awk -v s="$size" -v m="$m" 'BEGIN { printf "%.0f", s / 1e6 / m }') | $(ratio "$d" "$m") | $(ratio "$w" "$m") | $(peak "$case" "$prog") | $(rowset "$case" "$prog") |"
        done
    done
    echo
    echo "### Row counts (kql semantics vs DuckDB)"
    echo
    for case in "${CASES[@]}"; do
        d=$(rowset "$case" duckdb)
        for prog in ioc-kql-index ioc-kql-rawcsv; do
            timed "$prog" || continue
            i=$(rowset "$case" "$prog")
            if [[ $i == "$d" ]]; then
                echo "- $case $prog: $i rows = DuckDB $d: OK"
            else
                echo "- $case $prog: $i rows != DuckDB $d: MISMATCH"
            fi
        done
    done
    echo
    echo "### Bars (issue), not fatal"
    echo
    for case in "${CASES[@]}"; do
        fmt=${case#*.}
        need=5
        [[ $fmt == ndjson ]] && need=4
        d=$(med "$case" duckdb)
        for prog in ioc-kql-index ioc-kql-rawcsv ioc-norm-index ioc-norm-rawcsv; do
            timed "$prog" || continue
            r=$(ratio "$d" "$(med "$case" "$prog")")
            v=$(awk -v r="$r" -v n="$need" 'BEGIN { print (r >= n) ? "PASS" : "FAIL" }')
            echo "- $v $case $prog: ${r}x DuckDB (bar >= ${need}x)"
        done
        rss=$(peak "$case" ioc-kql-index)
        lim=$(awk -v i="$IDX_MB" 'BEGIN { printf "%.0f", i + 200 }')
        v=$(awk -v r="$rss" -v l="$lim" 'BEGIN { print (r <= l) ? "PASS" : "FAIL" }')
        echo "- $v $case ioc-kql-index peak RSS ${rss} MB (bar: index ${IDX_MB} MB + 200 = ${lim} MB; bar stated for a 1 GB log, this one is $(mb "$(fsize "$DIR/${LOGFILE[$case]}")") MB)"
    done
    v=$(awk -v m="$LOOKUP_MS" -v b="$VERSION_MS" 'BEGIN { print (m - b <= 5) ? "PASS" : "FAIL" }')
    echo "- $v startup: \`iocmatch lookup\` $LOOKUP_MS ms median of $STARTUP_RUNS, process start included (\`iocmatch --version\`: $VERSION_MS ms); difference <= 5 ms"
    echo
    echo "### Scaling (network csv, kql, precompiled index)"
    echo
    echo "| threads | median s | records/s | MB/s | peak RSS MB |"
    echo "| ---: | ---: | ---: | ---: | ---: |"
    size=$(fsize "$DIR/NetworkConnection.csv")
    for th in 1 2; do
        m=$(med threads "ioc-threads-$th")
        echo "| $th | $(printf '%.3f' "$m") | $(awk -v e="$EVENTS" -v m="$m" 'BEGIN { printf "%.2fM", e / m / 1e6 }') | $(awk -v s="$size" -v m="$m" 'BEGIN { printf "%.0f", s / 1e6 / m }') | $(peak threads "ioc-threads-$th") |"
    done
    m1=$(med threads ioc-threads-1)
    m2=$(med threads ioc-threads-2)
    echo
    echo "Speed-up 1 -> 2 threads: $(ratio "$m1" "$m2")x"
} | tee "$DIR/report.md"

# the report ran in a pipeline's subshell: its verdict is read back from the report
if grep -q MISMATCH "$DIR/report.md"; then
    die "iocmatch (kql) and DuckDB disagree on a row count (see $DIR/report.md, $DIR/out/)"
fi
