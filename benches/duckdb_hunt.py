#!/usr/bin/env python3
"""The two Sentinel hunting joins in DuckDB, in KQL semantics: the reference for compare.sh.

Usage: duckdb_hunt.py QUERY FORMAT TI_CSV LOG NOW [OUT]

  QUERY   network | dns
  FORMAT  csv | ndjson (the log's format; the indicators are always the Sentinel CSV export)
  TI_CSV  indicators.csv (TimeGenerated,IndicatorId,NetworkIP,DomainName,ConfidenceScore,
          Description,ThreatType,ExpirationDateTime,Active)
  LOG     NetworkConnection.{csv,ndjson} or DnsEvents.{csv,ndjson}
  NOW     the time now() stands for, ISO 8601 UTC (e.g. 2025-01-01T00:00:00Z)
  OUT     where the result rows go as CSV (default /dev/null)

Prints one line: `rows=N seconds=S duckdb=VERSION` (S: connect to last row written, without
the interpreter's start and the module import).

KQL semantics, as `iocmatch hunt QUERY --semantics kql --now NOW` answers them:
  * Kusto strings are never null: every string column is read as VARCHAR (all_varchar / an
    explicit VARCHAR schema) and an empty or missing value becomes '' through COALESCE, so an
    empty key joins an empty key, as in Kusto.
  * inner join on raw string equality: DestinationIP = NetworkIP / Name = DomainName.
  * `where ExpirationDateTime > now()`: the ISO string cast to TIMESTAMPTZ; an empty or
    unparseable expiration is null and drops out.
  * project the query's columns, sort by TimeGenerated desc (nulls last), write every row, as
    iocmatch writes its CSV: the same work, not just a count.
DuckDB keeps microseconds: a seven-digit fraction is truncated, which only matters for an
expiration within 100 ns after NOW.
"""

import sys
import time

import duckdb

QUERIES = {
    "network": {
        "log_cols": ["TimeGenerated", "SourceIP", "DestinationIP"],
        "src": "SourceIP",
        "key": "DestinationIP",
        "ti_key": "NetworkIP",
        "extra": "Description",
    },
    "dns": {
        "log_cols": ["TimeGenerated", "ClientIP", "Name"],
        "src": "ClientIP",
        "key": "Name",
        "ti_key": "DomainName",
        "extra": "ThreatType",
    },
}


def sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def log_relation(q: dict, fmt: str, log: str) -> str:
    if fmt == "csv":
        return f"read_csv({sql_str(log)}, header = true, all_varchar = true)"
    if fmt == "ndjson":
        cols = ", ".join(f"{sql_str(c)}: 'VARCHAR'" for c in q["log_cols"])
        return (
            f"read_json({sql_str(log)}, format = 'newline_delimited', "
            f"columns = {{{cols}}})"
        )
    raise SystemExit(f"unknown format {fmt!r}: csv or ndjson")


def main() -> None:
    if len(sys.argv) not in (6, 7):
        raise SystemExit(__doc__)
    query, fmt, ti, log, now = sys.argv[1:6]
    out = sys.argv[6] if len(sys.argv) == 7 else "/dev/null"
    if query not in QUERIES:
        raise SystemExit(f"unknown query {query!r}: network or dns")
    q = QUERIES[query]
    sql = f"""
COPY (
  WITH ti AS (
    SELECT COALESCE({q['ti_key']}, '') AS k,
           COALESCE(ConfidenceScore, '') AS ConfidenceScore,
           COALESCE({q['extra']}, '') AS {q['extra']},
           TRY_CAST(ExpirationDateTime AS TIMESTAMPTZ) AS exp
    FROM read_csv({sql_str(ti)}, header = true, all_varchar = true)
  ),
  ev AS (
    SELECT TRY_CAST(TimeGenerated AS TIMESTAMPTZ) AS TimeGenerated,
           COALESCE({q['src']}, '') AS {q['src']},
           COALESCE({q['key']}, '') AS {q['key']}
    FROM {log_relation(q, fmt, log)}
  )
  SELECT ev.TimeGenerated, ev.{q['src']}, ev.{q['key']}, ti.ConfidenceScore, ti.{q['extra']}
  FROM ev JOIN ti ON ev.{q['key']} = ti.k
  WHERE ti.exp > CAST({sql_str(now)} AS TIMESTAMPTZ)
  ORDER BY ev.TimeGenerated DESC NULLS LAST
) TO {sql_str(out)} (FORMAT csv, HEADER true)
"""
    start = time.perf_counter()
    con = duckdb.connect()
    rows = con.execute(sql).fetchone()[0]
    secs = time.perf_counter() - start
    print(f"rows={rows} seconds={secs:.3f} duckdb={duckdb.__version__}")


if __name__ == "__main__":
    main()
