#!/usr/bin/env bash
# The Spark recipe, end to end in local mode: spark/iocmatch_spark.py must write exactly what
# `iocmatch hunt ... --format csv` writes on the same files, for both queries.
#
#   tests/spark_local.sh IOCMATCH_BINARY [TARGET_DIR]
#
# Installs PySpark from PyPI into TARGET_DIR/spark-venv (once; reused afterwards), generates a
# corpus with `iocmatch gen`, splits the NDJSON logs into 3 files (plus a few crafted records:
# ties across files, null, US-format and epoch times, blank and malformed lines), runs the job in
# local[2] with several partitions per file (several `iocmatch filter` processes) and compares
# byte for byte, in both semantics (SPARK_TEST_SEMANTICS="normalized kql" by default). Run by
# tests/spark.rs when IOCMATCH_SPARK_TEST=1. Exits 0 with a "skipped" line when Java is absent.
# SPARK_TEST_KEEP=1 keeps the scratch directory.
set -euo pipefail

PYSPARK_VERSION=4.3.0 # works offline here with Java 17; 4.x needs Java 17+

bin=${1:?usage: tests/spark_local.sh IOCMATCH_BINARY [TARGET_DIR]}
repo=$(cd "$(dirname "$0")/.." && pwd)
target=${2:-$repo/target}
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
mkdir -p "$target"
target=$(cd "$target" && pwd)

if ! command -v java >/dev/null 2>&1; then
    echo "spark_local: skipped: java is not installed (PySpark needs Java 17+)"
    exit 0
fi

now=2025-01-01T00:00:00Z
t0=$SECONDS
venv=$target/spark-venv
if ! "$venv/bin/python" -c "import pyspark, sys; sys.exit(pyspark.__version__ != '$PYSPARK_VERSION')" 2>/dev/null; then
    echo "spark_local: installing pyspark==$PYSPARK_VERSION into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "pyspark==$PYSPARK_VERSION"
fi
py=$venv/bin/python
echo "spark_local: venv ready ($("$py" -c 'import pyspark; print("pyspark", pyspark.__version__)'), $(java -version 2>&1 | head -1)) in $((SECONDS - t0)) s"

work=$(mktemp -d "$target/spark-test.XXXXXX")
if [ "${SPARK_TEST_KEEP:-0}" = 1 ]; then
    echo "spark_local: keeping $work"
else
    trap 'rm -rf "$work"' EXIT
fi
"$bin" gen --seed 42 --indicators 2000 --events 20000 --now "$now" --out "$work/corpus" >/dev/null 2>&1
"$bin" compile "$work/corpus/indicators.csv" -o "$work/indicators.iocx" 2>/dev/null
# The binary is shipped under its own name; a copy keeps that name distinct from the index's.
cp "$bin" "$work/iocmatch"

# Split each log into 3 files and add crafted records built from real matches.
"$py" - "$work" "$bin" "$now" <<'PY'
import json, subprocess, sys
work, binary, now = sys.argv[1:4]
for table, query, out in (("NetworkConnection", "network", "net"), ("DnsEvents", "dns", "dns")):
    lines = open(f"{work}/corpus/{table}.ndjson", "rb").read().splitlines(keepends=True)
    matched = subprocess.run(
        [binary, "filter", query, "--index", f"{work}/indicators.iocx", "--input-format",
         "ndjson", "--now", now, "-q"],
        input=b"".join(lines), capture_output=True, check=True).stdout.splitlines()
    assert len(matched) >= 20, f"only {len(matched)} matches in {table}"
    def strip_ti(raw):
        rec = json.loads(raw)
        rec.pop("ti")
        return rec
    extra = []
    for i, raw in enumerate(matched[:12]):
        rec = strip_ti(raw)
        t = rec["TimeGenerated"]
        if i % 4 == 0:    # the same event again in the last file: ties broken by (file, line)
            pass
        elif i % 4 == 1:  # no time at all: sorted last (nulls last)
            del rec["TimeGenerated"]
        elif i % 4 == 2:  # the same instant in the portal's US form
            y, mo, d = t[:10].split("-")
            h = int(t[11:13])
            rec["TimeGenerated"] = (f"{int(mo)}/{int(d)}/{y}, {h % 12 or 12}:{t[14:19]}"
                                    f"{t[19:27].rstrip('Z')} {'PM' if h >= 12 else 'AM'}")
        else:             # the whole second as epoch seconds (a JSON number)
            y, mo, d = (int(x) for x in t[:10].split("-"))
            import datetime
            secs = int(datetime.datetime(y, mo, d, int(t[11:13]), int(t[14:16]), int(t[17:19]),
                                         tzinfo=datetime.timezone.utc).timestamp())
            rec["TimeGenerated"] = secs
        extra.append(json.dumps(rec, separators=(",", ":")).encode() + b"\n")
    extra += [b"\n", b"this is not json\n", b"   \n", b'{"TimeGenerated":"2024-12-24T00:00:00Z"}\n']
    third = len(lines) // 3
    parts = [lines[:third], lines[third:2 * third] + extra[:6], lines[2 * third:] + extra[6:]]
    for k, part in enumerate(parts):
        with open(f"{work}/{out}{k + 1}.ndjson", "wb") as f:
            f.writelines(part)
PY

status=0
for sem in ${SPARK_TEST_SEMANTICS:-normalized kql}; do
for query in network dns; do
    case $query in network) pre=net ;; dns) pre=dns ;; esac
    logs=("$work/${pre}1.ndjson" "$work/${pre}2.ndjson" "$work/${pre}3.ndjson")
    name=$query.$sem
    t=$SECONDS
    rc=0
    "$bin" hunt "$query" --semantics "$sem" --index "$work/indicators.iocx" --now "$now" \
        --format csv -q "${logs[@]}" >"$work/$name.hunt.csv" || rc=$?
    if [ "$rc" -gt 1 ]; then
        echo "spark_local: iocmatch hunt $query --semantics $sem failed ($rc)"
        exit 1
    fi
    th=$((SECONDS - t))
    t=$SECONDS
    PYSPARK_PYTHON=$py PYSPARK_DRIVER_PYTHON=$py "$py" "$repo/spark/iocmatch_spark.py" \
        "$query" "$work/indicators.iocx" "$work/iocmatch" "${logs[@]}" --semantics "$sem" \
        --now "$now" --master "local[2]" --partitions 3 -o "$work/$name.spark.csv" \
        2>"$work/$name.spark.log" || {
        echo "spark_local: the Spark job failed for $query --semantics $sem:"
        tail -n 40 "$work/$name.spark.log"
        exit 1
    }
    ts=$((SECONDS - t))
    rows=$(($(wc -l <"$work/$name.hunt.csv") - 1))
    if cmp -s "$work/$name.hunt.csv" "$work/$name.spark.csv"; then
        echo "spark_local: $query --semantics $sem: identical ($rows rows; hunt ${th} s, spark ${ts} s; $(grep -o 'in [0-9]* partitions' "$work/$name.spark.log"))"
    else
        echo "spark_local: $query --semantics $sem: DIFFERENT from iocmatch hunt ($rows hunt rows, $(($(wc -l <"$work/$name.spark.csv") - 1)) spark rows)"
        diff "$work/$name.hunt.csv" "$work/$name.spark.csv" | head -n 20 || true
        status=1
    fi
done
done
echo "spark_local: done in $((SECONDS - t0)) s"
exit $status
