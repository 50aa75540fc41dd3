#!/usr/bin/env python3
"""DuckDB's side of `paycore bench recon`.

Runs the reconciliation classification of `recon-engine` (crates/recon-engine
/src/matching.rs, `class_expression`; reference: crates/recon/src/classify.rs)
in SQL over the same Parquet record files, and prints one JSON object: the
keys and amounts per class, the elapsed seconds and the peak resident memory.

    bench_recon_duckdb.py PLATFORM.parquet CHANNEL.parquet FEE_TOLERANCE_MINOR
        [--threads N] [--memory-limit-gib G] [--temp-directory DIR]
        [--counts-only] [--numeric-keys] [--explain-analyze]

The plan is the engine's: the channel's side grouped by key with the number
of records and the max of every column, a full outer join on key, one CASE
with the conditions in the same order, then a count per class.

paycore's engine also hands every discrepancy, with both sides' figures, to
its caller. So that DuckDB cannot drop the columns and aggregates only those
figures need (its optimizer removes unused ones), the default query folds
every column of every discrepancy into a checksum per class. `--counts-only`
leaves that out and shows what the bare count costs.

paycore joins keys as 64-bit integers when the files' metadata says every
key is a decimal number (the benchmark's keys are). DuckDB joins the key
column as the files store it, text; `--numeric-keys` casts it to BIGINT on
both sides first, to show what the same shortcut gives DuckDB.
"""

import argparse
import json
import resource
import sys
import time

# Codes and names of `recon::Class` (crates/recon/src/classify.rs).
CLASSES = {
    0: "MATCHED",
    1: "NOT_DUE",
    2: "CHANNEL_ONLY",
    3: "PLATFORM_ONLY",
    4: "STATUS_CHANNEL_SUCCESS",
    5: "STATUS_PLATFORM_SUCCESS",
    6: "AMOUNT_CHANNEL_HIGHER",
    7: "AMOUNT_PLATFORM_HIGHER",
    8: "FEE_MISMATCH",
    9: "CURRENCY_MISMATCH",
    10: "DUPLICATE",
}
DISCREPANCY_CODE_MIN = 2

COLUMNS = [
    "kind",
    "channel_transaction_id",
    "amount_minor",
    "currency",
    "fee_minor",
    "status",
    "occurred_at",
    "business_day",
]

# The CASE of `class_expression`, condition for condition and in its order:
# the first that holds decides. SQL's NULL comparisons are false here as they
# are in DataFusion, so a missing fee on either side is never a mismatch.
CLASS_CASE = """
    CASE
        WHEN c.c_count > 1 THEN 10
        WHEN p.key IS NULL AND c.c_status = 'SUCCESS' THEN 2
        WHEN p.key IS NULL THEN 1
        WHEN c.c_key IS NULL AND p.status = 'SUCCESS' THEN 3
        WHEN c.c_key IS NULL THEN 1
        WHEN p.currency <> c.c_currency THEN 9
        WHEN NOT (p.status = 'SUCCESS') AND c.c_status = 'SUCCESS' THEN 4
        WHEN p.status = 'SUCCESS' AND NOT (c.c_status = 'SUCCESS') THEN 5
        WHEN NOT (p.status = 'SUCCESS') THEN 1
        WHEN c.c_amount_minor > p.amount_minor THEN 6
        WHEN p.amount_minor > c.c_amount_minor THEN 7
        WHEN c.c_fee_minor - p.fee_minor > {tolerance}
          OR p.fee_minor - c.c_fee_minor > {tolerance} THEN 8
        ELSE 0
    END
"""


def query(tolerance, counts_only, numeric_keys=False):
    channel_columns = ",\n".join(
        f"max({name}) AS c_{name}" for name in COLUMNS
    )
    if counts_only:
        checksum = "0"
    else:
        figures = ", ".join(
            ["key"] + COLUMNS + ["c_key", "c_count"]
            + [f"c_{name}" for name in COLUMNS]
        )
        checksum = (
            f"sum(hash({figures}) % 1000003) "
            f"FILTER (WHERE class >= {DISCREPANCY_CODE_MIN})"
        )
    if numeric_keys:
        platform = ("(SELECT * REPLACE (CAST(key AS BIGINT) AS key) "
                    "FROM read_parquet($platform))")
        channel_key = "CAST(key AS BIGINT)"
    else:
        platform = "read_parquet($platform)"
        channel_key = "key"
    return f"""
        WITH channel AS (
            SELECT {channel_key} AS c_key, count(*) AS c_count,
                   {channel_columns}
            FROM read_parquet($channel)
            GROUP BY {channel_key}
        ),
        classified AS (
            SELECT {CLASS_CASE.format(tolerance=int(tolerance))} AS class,
                   coalesce(p.amount_minor, c.c_amount_minor)
                       AS class_amount_minor,
                   p.*, c.*
            FROM {platform} AS p
            FULL OUTER JOIN channel AS c ON p.key = c.c_key
        )
        SELECT class, count(*) AS keys,
               sum(class_amount_minor) AS amount_minor,
               {checksum} AS checksum
        FROM classified
        GROUP BY class
        ORDER BY class
    """


def peak_rss_kib():
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("platform")
    parser.add_argument("channel")
    parser.add_argument("fee_tolerance_minor", type=int)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--memory-limit-gib", type=int)
    parser.add_argument("--temp-directory")
    parser.add_argument("--counts-only", action="store_true")
    parser.add_argument("--numeric-keys", action="store_true")
    parser.add_argument("--explain-analyze", action="store_true")
    arguments = parser.parse_args()

    import duckdb

    rss_before_kib = peak_rss_kib()
    started = time.perf_counter()
    connection = duckdb.connect(":memory:")
    if arguments.threads:
        connection.execute(f"SET threads = {int(arguments.threads)}")
    if arguments.memory_limit_gib:
        connection.execute(
            f"SET memory_limit = '{int(arguments.memory_limit_gib)}GiB'"
        )
    if arguments.temp_directory:
        directory = arguments.temp_directory.replace("'", "''")
        connection.execute(f"SET temp_directory = '{directory}'")
    sql = query(arguments.fee_tolerance_minor, arguments.counts_only,
                arguments.numeric_keys)
    parameters = {"platform": arguments.platform, "channel": arguments.channel}
    if arguments.explain_analyze:
        rows = connection.execute("EXPLAIN ANALYZE " + sql, parameters).fetchall()
        for row in rows:
            print(row[-1], file=sys.stderr)
        return
    rows = connection.execute(sql, parameters).fetchall()
    elapsed_seconds = time.perf_counter() - started
    classes = {}
    for code, keys, amount_minor, checksum in rows:
        classes[CLASSES[code]] = {
            "keys": keys,
            "amount_minor": int(amount_minor or 0),
            "checksum": int(checksum or 0),
        }
    print(json.dumps({
        "engine": f"DuckDB {duckdb.__version__}",
        "seconds": elapsed_seconds,
        "peak_rss_kib": peak_rss_kib(),
        "rss_before_query_kib": rss_before_kib,
        "threads": int(connection.execute(
            "SELECT current_setting('threads')").fetchone()[0]),
        "memory_limit": connection.execute(
            "SELECT current_setting('memory_limit')").fetchone()[0],
        "classes": classes,
    }))


if __name__ == "__main__":
    main()
