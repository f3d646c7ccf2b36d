# Shared by the benchmark scripts (sourced, not run). The caller sets SCRIPT (its name, for
# messages), ROOT (the repository) and TARGET (the cargo target directory).

log() { printf '[%s %s] %s\n' "${SCRIPT%.sh}" "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    printf '%s: %s\n' "$SCRIPT" "$*" >&2
    exit 1
}
# median of the numbers on stdin (mean of the middle two for an even count)
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) exit 1; if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# The checks every script makes of its environment.
check_runs_and_time() {
    [[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, got '$RUNS'"
    command -v /usr/bin/time >/dev/null || die "/usr/bin/time is required (apt-get install time)"
}
# cargo build --release once; sets BIN to the absolute path of the binary.
build_bin() {
    log "cargo build --release"
    cargo build --release --quiet
    BIN="$TARGET/release/iocmatch"
    [[ $BIN == /* ]] || BIN="$ROOT/$BIN"
    [[ -x $BIN ]] || die "no binary at $BIN"
}
