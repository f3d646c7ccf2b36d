#!/usr/bin/env python3
"""Run iocmatch's `hunt network` / `hunt dns` KQL queries verbatim with duckdb-kql.

An independent KQL engine for the differential test `tests/hunt_duckdb_kql.rs`. Installed by that
test into target/kql-venv as

    pip install 'duckdb-kql[duckdb]==1.1.2' duckdb==2.0.1

Usage:

    run_kql.py network|dns --ti TI.csv --now 2024-05-01T10:00:00.123456Z LOG.csv...

Loads the TI CSV as `ThreatIntelligenceIndicator` and the log CSVs (concatenated, in order) as
`NetworkConnection` or `DnsEvents`, with Kusto's column types:

* string columns are VARCHAR and never NULL: an empty cell is ''. Kusto has no null string, but
  DuckDB does, and duckdb-kql translates `isnotnull(s)` to `s IS NOT NULL` and joins with
  `IS NOT DISTINCT FROM`, so NULL strings would change both the `where isnotnull(...)` and the
  join (NULL == NULL would match). Loading '' keeps Kusto's semantics.
* datetime columns are TIMESTAMP (UTC, microseconds): empty or unparseable text is NULL, as in
  Kusto ingestion (`TRY_CAST(... AS TIMESTAMPTZ)`, then to UTC).
* real columns are DOUBLE: empty is NULL.

`now()` is replaced by `datetime(NOW)` so the result does not depend on the clock. The result is
printed as CSV (header first) with Kusto's renderings: datetimes `yyyy-MM-ddTHH:mm:ss[.ffffff]Z`
with trailing fraction zeros trimmed, reals without a fraction when integral, null as an empty
cell.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys

import duckdb_kql

NETWORK = (
    "let iocs = ThreatIntelligenceIndicator | where isnotnull(NetworkIP) "
    "| project NetworkIP, ConfidenceScore, Description, ExpirationDateTime; "
    "NetworkConnection | join kind=inner iocs on $left.DestinationIP == $right.NetworkIP "
    "| where ExpirationDateTime > now() "
    "| project TimeGenerated, SourceIP, DestinationIP, ConfidenceScore, Description "
    "| sort by TimeGenerated desc"
)

DNS = (
    "let iocs = ThreatIntelligenceIndicator | where isnotnull(DomainName) "
    "| project DomainName, ConfidenceScore, ThreatType, ExpirationDateTime; "
    "DnsEvents | join kind=inner iocs on $left.Name == $right.DomainName "
    "| where ExpirationDateTime > now() "
    "| project TimeGenerated, ClientIP, Name, ConfidenceScore, ThreatType "
    "| sort by TimeGenerated desc"
)

TI_COLUMNS = [
    ("NetworkIP", "string"),
    ("DomainName", "string"),
    ("ConfidenceScore", "real"),
    ("Description", "string"),
    ("ThreatType", "string"),
    ("ExpirationDateTime", "datetime"),
]
NET_COLUMNS = [("TimeGenerated", "datetime"), ("SourceIP", "string"), ("DestinationIP", "string")]
DNS_COLUMNS = [("TimeGenerated", "datetime"), ("ClientIP", "string"), ("Name", "string")]


def read_rows(path: str, columns: list[tuple[str, str]]) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header = [c for c, _ in columns]
    if not rows or rows[0] != header:
        sys.exit(f"{path}: header {rows[:1]!r}, expected {header!r}")
    for i, r in enumerate(rows[1:], start=2):
        if len(r) != len(header):
            sys.exit(f"{path}: record {i} has {len(r)} fields, expected {len(header)}")
    return rows[1:]


def load(con, table: str, columns: list[tuple[str, str]], rows: list[list[str]]) -> None:
    """Creates `table` with Kusto's types from text rows (staged as VARCHAR, then cast)."""
    stage = f"{table}_text"
    con.execute(
        f'CREATE TABLE "{stage}" ('
        + ", ".join(f'"{c}" VARCHAR NOT NULL' for c, _ in columns)
        + ")"
    )
    if rows:
        con.executemany(
            f'INSERT INTO "{stage}" VALUES (' + ", ".join("?" for _ in columns) + ")", rows
        )
    exprs = []
    for c, kind in columns:
        if kind == "string":
            exprs.append(f'"{c}"')
        elif kind == "real":
            exprs.append(f"TRY_CAST(NULLIF(\"{c}\", '') AS DOUBLE) AS \"{c}\"")
        else:
            exprs.append(
                f"(TRY_CAST(NULLIF(\"{c}\", '') AS TIMESTAMPTZ) AT TIME ZONE 'UTC') AS \"{c}\""
            )
    # rowid order keeps the input order (files in order, then lines).
    con.execute(
        f'CREATE TABLE "{table}" AS SELECT {", ".join(exprs)} FROM "{stage}" ORDER BY rowid'
    )


def fmt_cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isfinite(v) and v == int(v):
            return str(int(v))
        return repr(v)
    if hasattr(v, "strftime"):
        s = v.strftime("%Y-%m-%dT%H:%M:%S")
        if v.microsecond:
            s += "." + f"{v.microsecond:06d}".rstrip("0")
        return s + "Z"
    return str(v)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("query", choices=["network", "dns"])
    ap.add_argument("--ti", required=True)
    ap.add_argument("--now", required=True, help="an ISO 8601 UTC instant, for now()")
    ap.add_argument("logs", nargs="+")
    a = ap.parse_args()

    con = duckdb_kql.connect()  # TimeZone=UTC
    load(con, "ThreatIntelligenceIndicator", TI_COLUMNS, read_rows(a.ti, TI_COLUMNS))
    if a.query == "network":
        table, columns, text = "NetworkConnection", NET_COLUMNS, NETWORK
    else:
        table, columns, text = "DnsEvents", DNS_COLUMNS, DNS
    rows = []
    for log in a.logs:
        rows.extend(read_rows(log, columns))
    load(con, table, columns, rows)

    assert text.count("now()") == 1
    kql = text.replace("now()", f"datetime({a.now})")
    rel = duckdb_kql.kql(con, kql)
    names = list(rel.columns)
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(names)
    for row in rel.fetchall():
        out.writerow([fmt_cell(v) for v in row])


if __name__ == "__main__":
    main()
