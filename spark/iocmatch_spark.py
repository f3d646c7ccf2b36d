#!/usr/bin/env python3
"""Run `iocmatch hunt network|dns` on Apache Spark: the same result, row for row.

    spark-submit [--master ...] spark/iocmatch_spark.py QUERY INDEX IOCMATCH_BINARY \
        --now 2025-01-01T00:00:00Z LOG.ndjson [LOG.ndjson ...] -o matches.csv

How it works:

* The compiled index and the `iocmatch` executable are shipped once with the job
  (`SparkContext.addFile`, the same as `spark-submit --files`). Every executor resolves its own
  local copies with `SparkFiles.get` *inside* the partition function, so the job works on a real
  cluster and not only in local mode.
* Each NDJSON log is read as lines (`textFile`, raw bytes) and numbered (`zipWithIndex`), so
  every record keeps its (file index, line) position.
* Each partition is piped through one `iocmatch filter QUERY --index IDX --input-format ndjson
  --now T --annotate-all --on-error pass --threads C -q` process (C: the task's
  `spark.task.cpus`, since Spark already runs a task per core). `--annotate-all --on-error pass` makes
  the filter write exactly one line per input record (matching ones carry a non-empty `ti`
  array), so output line *k* belongs to input line *k*: no guessing which record matched. The
  filter's exit status must be 0 and the line counts must agree, otherwise the task fails.
* One `ti` entry is one output row. The rows are collected on the driver and sorted as `hunt`
  sorts: TimeGenerated descending, nulls last, then (file, line), then indicator order (the
  filter lists a record's matches in index order). The CSV uses `hunt`'s header and cell
  formatting (KQL datetime rendering, integral confidences without a fraction).

`now` is fixed once on the driver (default: the driver's clock) and passed to every filter, so
all partitions apply the same expiry cut. Only the Python standard library runs on executors.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import queue
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from decimal import Decimal

# ---------------------------------------------------------------------------------------------
# Timestamps exactly as iocmatch reads and prints them (src/time.rs): 100 ns ticks, UTC.
# ---------------------------------------------------------------------------------------------

TICKS_PER_SEC = 10_000_000
SECS_PER_DAY = 86_400
MIN_TICKS = -62_135_596_800 * TICKS_PER_SEC
MAX_TICKS = 253_402_300_800 * TICKS_PER_SEC - 1


def _days_from_civil(y: int, m: int, d: int) -> int:
    y = y - 1 if m <= 2 else y
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m - 3 if m > 2 else m + 9) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def _civil_from_days(z: int) -> tuple[int, int, int]:
    z += 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (1 if m <= 2 else 0), m, d


def _days_in_month(y: int, m: int) -> int:
    if m in (1, 3, 5, 7, 8, 10, 12):
        return 31
    if m in (4, 6, 9, 11):
        return 30
    return 29 if (y % 4 == 0 and y % 100 != 0) or y % 400 == 0 else 28


def _assemble(y, mo, d, h, mi, s, sub, offset):
    if not 1 <= y <= 9999 or not 1 <= mo <= 12 or d == 0 or d > _days_in_month(y, mo):
        return None
    if h > 23 or mi > 59 or s > 60:
        return None
    secs = _days_from_civil(y, mo, d) * SECS_PER_DAY + h * 3600 + mi * 60 + s - offset
    ticks = secs * TICKS_PER_SEC + sub
    return ticks if MIN_TICKS <= ticks <= MAX_TICKS else None


def _fraction_ticks(frac: str):
    if not all(c in "0123456789" for c in frac):
        return None
    return int((frac + "0000000")[:7])


class _Cur:
    def __init__(self, s: str):
        self.s, self.i = s, 0

    def num(self, lo: int, hi: int):
        start = self.i
        while self.i < len(self.s) and self.i - start < hi and self.s[self.i] in "0123456789":
            self.i += 1
        if self.i - start < lo:
            return None
        return int(self.s[start : self.i])

    def eat(self, c: str) -> bool:
        if self.s[self.i : self.i + 1] == c:
            self.i += 1
            return True
        return False

    def peek(self):
        return self.s[self.i] if self.i < len(self.s) else None

    def rest(self) -> str:
        return self.s[self.i :]

    def fraction(self):
        if not self.eat(".") and not self.eat(","):
            return 0
        start = self.i
        while self.peek() is not None and self.peek() in "0123456789":
            self.i += 1
        if self.i == start:
            return None
        return _fraction_ticks(self.s[start : self.i])


def _parse_iso(s: str):
    c = _Cur(s)
    y = c.num(4, 4)
    if y is None or not c.eat("-"):
        return None
    mo = c.num(2, 2)
    if mo is None or not c.eat("-"):
        return None
    d = c.num(2, 2)
    if d is None:
        return None
    h = mi = sec = sub = 0
    if c.eat("T") or c.eat("t") or c.eat(" "):
        clock = _time_of_day(c, 2)
        if clock is None:
            return None
        h, mi, sec, sub = clock
    p = c.peek()
    if p is None:
        offset = 0
    elif p in "Zz":
        c.i += 1
        offset = 0
    elif p in "+-":
        c.i += 1
        oh = c.num(2, 2)
        if oh is None:
            return None
        c.eat(":")
        om = c.num(2, 2) if c.peek() is not None else 0
        if om is None or oh > 23 or om > 59:
            return None
        offset = oh * 3600 + om * 60
        if p == "-":
            offset = -offset
    else:
        return None
    if c.rest():
        return None
    return _assemble(y, mo, d, h, mi, sec, sub, offset)


def _time_of_day(c, hour_min_digits: int):
    """`H:MM[:SS[.fraction]]` at the cursor (hours of `hour_min_digits` to 2 digits):
    (hour, minute, second, 100 ns ticks), or None."""
    h = c.num(hour_min_digits, 2)
    if h is None or not c.eat(":"):
        return None
    mi = c.num(2, 2)
    if mi is None:
        return None
    sec = sub = 0
    if c.eat(":"):
        sec = c.num(2, 2)
        if sec is None:
            return None
        sub = c.fraction()
        if sub is None:
            return None
    return h, mi, sec, sub


def _parse_us(s: str):
    c = _Cur(s)
    mo = c.num(1, 2)
    if mo is None or not c.eat("/"):
        return None
    d = c.num(1, 2)
    if d is None or not c.eat("/"):
        return None
    y = c.num(4, 4)
    if y is None:
        return None
    h = mi = sec = sub = 0
    c.eat(",")
    if c.eat(" "):
        while c.eat(" "):
            pass
        clock = _time_of_day(c, 1)
        if clock is None:
            return None
        h, mi, sec, sub = clock
        while c.eat(" "):
            pass
        rest = c.rest()
        if rest:
            if rest.upper() == "PM":
                pm = True
            elif rest.upper() == "AM":
                pm = False
            else:
                return None
            if h == 0 or h > 12:
                return None
            h = (h % 12) + (12 if pm else 0)
            c.i = len(c.s)
    if c.rest():
        return None
    return _assemble(y, mo, d, h, mi, sec, sub, 0)


_ASCII_WS = " \t\n\r\x0c"


def _parse_epoch(s: str):
    b = s.strip(_ASCII_WS)
    neg = b.startswith("-")
    if neg:
        b = b[1:]
    dot = b.find(".")
    if dot < 0:
        dot = len(b)
    whole, frac = b[:dot], b[dot + 1 :]
    if not whole or len(whole) > 12 or (dot < len(b) and not frac):
        return None
    if not all(ch in "0123456789" for ch in whole):
        return None
    f = _fraction_ticks(frac)
    if f is None:
        return None
    ticks = int(whole) * TICKS_PER_SEC + f
    ticks = -ticks if neg else ticks
    return ticks if MIN_TICKS <= ticks <= MAX_TICKS else None


def parse_time(s: str):
    """An event time as `hunt` reads it: ISO / US forms, else epoch seconds. Ticks or None."""
    b = s.strip(_ASCII_WS)
    if not b.isascii():
        return None
    t = _parse_iso(b) if len(b) >= 8 and b[4] == "-" else _parse_us(b)
    return t if t is not None else _parse_epoch(s)


def format_time(ticks: int) -> str:
    """KQL's rendering: yyyy-MM-ddTHH:mm:ss[.fffffff]Z, trailing fraction zeros trimmed."""
    secs, sub = divmod(ticks, TICKS_PER_SEC)
    days, sod = divmod(secs, SECS_PER_DAY)
    y, m, d = _civil_from_days(days)
    out = f"{y:04}-{m:02}-{d:02}T{sod // 3600:02}:{sod // 60 % 60:02}:{sod % 60:02}"
    if sub:
        out += "." + f"{sub:07}".rstrip("0")
    return out + "Z"


def format_confidence(c) -> str:
    """A real as KQL (and `hunt`) prints it: no fraction when integral, never an exponent."""
    if c is None:
        return ""
    c = float(c)
    if c != c or c in (float("inf"), float("-inf")):
        return "NaN" if c != c else ("inf" if c > 0 else "-inf")
    if c.is_integer():
        return "%.0f" % c
    return format(Decimal(repr(c)), "f")


def csv_cell(v: str) -> str:
    """A cell as the Rust `csv` crate writes it (quote only when needed)."""
    if any(ch in v for ch in ',"\n\r'):
        return '"' + v.replace('"', '""') + '"'
    return v


# ---------------------------------------------------------------------------------------------
# Reading a field from an NDJSON record as iocmatch does (src/logs/json.rs)
# ---------------------------------------------------------------------------------------------


def _scalar_text(v):
    """Strings and scalars as text, null and objects as absent, arrays joined with ", "."""
    if v is None or isinstance(v, dict):
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return ", ".join(t for t in (_scalar_text(x) for x in v) if t is not None)
    return str(v)  # numbers were kept as their source text (parse_int/parse_float=str)


def field_text(rec: dict, name: str) -> str:
    """The value of key `name` (a dotted name is a nested path unless it is a literal key)."""
    if name in rec:
        t = _scalar_text(rec[name])
    else:
        cur = rec
        for part in name.split("."):
            if not isinstance(cur, dict) or part not in cur:
                return ""
            cur = cur[part]
        t = _scalar_text(cur)
    return t or ""


QUERIES = {
    # query: (hunt's CSV header, the `ti` key of its last column)
    "network": (
        ["TimeGenerated", "SourceIP", "DestinationIP", "ConfidenceScore", "Description"],
        "description",
    ),
    "dns": (["TimeGenerated", "ClientIP", "Name", "ConfidenceScore", "ThreatType"], "threat_type"),
}


# ---------------------------------------------------------------------------------------------
# The partition function (runs on the executors)
# ---------------------------------------------------------------------------------------------


def _executable(path: str) -> str:
    """`path` made executable; a private copy when the shipped file cannot be chmod-ed."""
    mode = os.stat(path).st_mode
    if mode & stat.S_IXUSR and os.access(path, os.X_OK):
        return path
    try:
        os.chmod(path, mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return path
    except OSError:
        d = tempfile.mkdtemp(prefix="iocmatch-bin-")
        dst = os.path.join(d, os.path.basename(path))
        shutil.copyfile(path, dst)
        os.chmod(dst, 0o755)
        return dst


def make_partition_fn(conf: dict):
    """Returns the mapPartitions function; `conf` holds only plain, picklable values."""

    def run_partition(records):
        from pyspark import SparkFiles, TaskContext  # resolved on the executor

        # Spark already runs one task per core: the filter matches on as many worker threads
        # as the task was given (spark.task.cpus, default 1), not on every core of the host.
        ctx = TaskContext.get()
        threads = max(1, ctx.cpus()) if ctx is not None else 1

        binary = _executable(SparkFiles.get(conf["binary_name"]))
        index = SparkFiles.get(conf["index_name"])
        cmd = [
            binary, "filter", conf["query"], "--index", index,
            "--input-format", "ndjson", "--now", conf["now"],
            "--semantics", conf["semantics"],
            "--annotate-all", "--on-error", "pass", "--threads", str(threads), "-q",
        ]  # fmt: skip
        for c in conf["columns"]:
            cmd += ["--column", c]
        header_keys, ti_text_key = QUERIES[conf["query"]]
        time_f, source_f, key_f = conf["time_field"], conf["source_field"], conf["key_field"]
        kql = conf["semantics"] == "kql"

        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
            positions: queue.Queue = queue.Queue()
            feed_error: list = []

            def feed():
                try:
                    for (file_idx, raw), line in records:
                        # Blank lines are no records to the filter (nor to hunt): not sent.
                        if not raw.strip():
                            continue
                        positions.put((file_idx, line))
                        proc.stdin.write(raw.rstrip(b"\r\n") + b"\n")
                except BrokenPipeError:
                    feed_error.append("the filter closed its input early")
                except BaseException as e:  # noqa: BLE001 - reported after the join
                    feed_error.append(repr(e))
                finally:
                    positions.put(None)
                    try:
                        proc.stdin.close()
                    except BrokenPipeError:
                        pass

            t = threading.Thread(target=feed, daemon=True)
            t.start()
            try:
                for out in proc.stdout:
                    # Output line k is input line k (--annotate-all --on-error pass).
                    pos = positions.get()
                    if pos is None:
                        raise RuntimeError("iocmatch filter wrote more lines than it was given")
                    if b'"ti":[{' not in out:
                        continue  # annotated with no match ("ti":[]) or passed unchanged
                    rec = json.loads(out, parse_int=str, parse_float=str)
                    tis = rec.get("ti") if isinstance(rec, dict) else None
                    if not isinstance(tis, list) or not tis:
                        continue
                    tt = field_text(rec, time_f)
                    ticks = parse_time(tt) if tt else None
                    if ticks is None and tt and not kql:
                        raise RuntimeError(f"a matched record has a time this job cannot read: {tt!r}")
                    time_cell = format_time(ticks) if ticks is not None else ""
                    src, key = field_text(rec, source_f), field_text(rec, key_f)
                    file_idx, line = pos
                    for k, ti in enumerate(tis):
                        sort_key = (
                            0 if ticks is not None else 1,
                            -ticks if ticks is not None else 0,
                            file_idx,
                            line,
                            k,  # the filter lists a record's matches in index order
                        )
                        cells = (
                            time_cell,
                            src,
                            key,
                            format_confidence(ti.get("confidence")),
                            str(ti.get(ti_text_key) or ""),
                        )
                        yield sort_key, cells
                rc = proc.wait()
                t.join()
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            err.seek(0)
            stderr = err.read().decode("utf-8", "replace").strip()
            if rc != 0:
                raise RuntimeError(f"iocmatch filter exited with {rc}: {stderr}")
            if feed_error:
                raise RuntimeError(f"feeding iocmatch filter failed: {feed_error[0]}; {stderr}")
            if positions.get() is not None:
                raise RuntimeError(
                    "iocmatch filter wrote fewer lines than it was given "
                    "(with --annotate-all --on-error pass it must write one per record)"
                )

    return run_partition


# ---------------------------------------------------------------------------------------------
# The driver
# ---------------------------------------------------------------------------------------------


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="iocmatch hunt on Spark: each partition of the NDJSON logs is piped through "
        "`iocmatch filter`; the matches are sorted as `iocmatch hunt` sorts them and "
        "written as hunt's CSV."
    )
    p.add_argument("query", choices=sorted(QUERIES))
    p.add_argument("index", help="compiled index (iocmatch compile), shipped with the job")
    p.add_argument("binary", help="iocmatch executable for the executors' platform, shipped")
    p.add_argument("logs", nargs="+", help="NDJSON log files (any Hadoop path textFile reads)")
    p.add_argument("-o", "--output", required=True, help="CSV file written by the driver")
    p.add_argument("--now", help="the time now() stands for (default: the driver's clock)")
    p.add_argument("--semantics", choices=["normalized", "kql"], default="normalized")
    p.add_argument(
        "--column",
        action="append",
        default=[],
        metavar="FIELD=NAME",
        help="read TimeGenerated/SourceIP/DestinationIP/ClientIP/Name from another key",
    )
    p.add_argument(
        "--partitions", type=int, default=0, help="minimum partitions per log file (default: Spark's)"
    )
    p.add_argument("--master", help="Spark master (default: spark-submit's, else local[*])")
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = parse_args(sys.argv[1:] if argv is None else argv)
    from pyspark import SparkConf, SparkContext

    header, _ = QUERIES[a.query]
    fields = list(header[:3])  # the keys read for TimeGenerated, SourceIP/ClientIP, key
    for c in a.column:
        f, _, n = c.partition("=")
        lower = [h.lower() for h in header[:3]]
        if f.strip().lower() not in lower or not n.strip():
            raise SystemExit(f"--column {c}: expected FIELD=NAME, FIELD one of {header[:3]}")
        fields[lower.index(f.strip().lower())] = n.strip()
    now = a.now or _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if parse_time(now) is None:
        raise SystemExit(f"--now {now!r}: not a timestamp (use e.g. 2026-11-28T16:00:00Z)")
    if os.path.basename(a.index) == os.path.basename(a.binary):
        raise SystemExit("the index and the binary must have different file names")

    conf = SparkConf().setAppName(f"iocmatch hunt {a.query}")
    conf = conf.setIfMissing("spark.ui.showConsoleProgress", "false")
    if a.master:
        conf = conf.setMaster(a.master)
    elif not conf.contains("spark.master"):
        conf = conf.setMaster("local[*]")
    sc = SparkContext.getOrCreate(conf)
    try:
        # Shipped once; every executor fetches them into its SparkFiles root.
        sc.addFile(a.binary)
        sc.addFile(a.index)
        job = {
            "query": a.query,
            "now": now,
            "semantics": a.semantics,
            "columns": list(a.column),
            "binary_name": os.path.basename(a.binary),
            "index_name": os.path.basename(a.index),
            "time_field": fields[0],
            "source_field": fields[1],
            "key_field": fields[2],
        }
        per_file = []
        for i, path in enumerate(a.logs):
            lines = sc.textFile(path, a.partitions or None, use_unicode=False)
            # ((file index, raw line), line index within the file)
            per_file.append(lines.map(lambda raw, i=i: (i, raw)).zipWithIndex())
        rdd = per_file[0] if len(per_file) == 1 else sc.union(per_file)
        rows = rdd.mapPartitions(make_partition_fn(job)).collect()
        rows.sort(key=lambda r: r[0])
        tmp = f"{a.output}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(",".join(header) + "\n")
            for _, cells in rows:
                f.write(",".join(csv_cell(c) for c in cells) + "\n")
        os.replace(tmp, a.output)
        print(
            f"iocmatch-spark: {len(rows)} matches from {len(a.logs)} file(s) in "
            f"{rdd.getNumPartitions()} partitions -> {a.output}",
            file=sys.stderr,
        )
    finally:
        sc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
