#!/usr/bin/env python3
"""Seed 001's session stats and a 4-step funnel: Tally beside ClickHouse (chdb) on the same events.

Usage (after `tally generate --events 30000000 | tally ingest - --data DIR && tally merge --data DIR`):

    Benchmarks/compare/run-seed001 --data DIR [--repeats 10]

Tally's figures come from `tally bench query` (the same questions through the engine, no HTTP).
ClickHouse gets the bench site's events (exported with `tally dump --format csv`) in a MergeTree
ordered by (event_type, occurred_at) (seed 000's order without the site: the table holds one),
and answers with the SQL below: sessions assembled with GROUP BY session_id under the same
definition as Tally's (a session belongs to the range its first event falls in; events are
read one day either side), the funnel with windowFunnel(3600000) per session on millisecond
timestamps, as Tally's. Both answers are printed so they can be compared: counts must be
equal, unique visitors within the sketches' error.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

DAY = 86_400_000


def tally_bench(tally, data, only, repeats):
    out = subprocess.run([tally, "bench", "query", "--data", data, "--only", only, "--repeats", str(repeats), "--json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def tally_query(tally, data, site, start, end, metrics):
    out = subprocess.run([tally, "query", "--data", data, "--property", site, "--from", start, "--to", end,
                          "--tz", "UTC", "--metrics", metrics, "--json"], check=True, capture_output=True, text=True).stdout
    return json.loads(out)["data"][0]


def timed(run, repeats):
    run()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        result = run()
        times.append((time.perf_counter() - t) * 1000)
    return result, times


def summary(times):
    return {"p50_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--tally", default=os.path.join(os.path.dirname(__file__), "../../.build/release/tally"))
    parser.add_argument("--work", default=os.path.join(os.path.dirname(__file__), "../../.build/compare"))
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--end", default="2026-11-01", help="end of the generated span (exclusive)")
    args = parser.parse_args()
    import chdb.session  # installed by run-seed001

    os.makedirs(args.work, exist_ok=True)
    bench = tally_bench(args.tally, args.data, "session_stats_90d", args.repeats)
    site = bench["site"]
    results = {"session_stats_90d": bench["queries"][0]}
    for name in ["funnel_4_steps_30d", "sessions_entry_page_30d"]:
        results[name] = tally_bench(args.tally, args.data, name, args.repeats)["queries"][0]

    end_ms = int(time.mktime(time.strptime(args.end, "%Y-%m-%d")) - time.timezone) * 1000
    from90, from30 = end_ms - 90 * DAY, end_ms - 30 * DAY
    csv = os.path.join(args.work, f"{site}.csv")
    if not os.path.exists(csv):
        with open(csv + ".tmp", "w") as f:
            subprocess.run([args.tally, "dump", "--data", args.data, "--site", site, "--format", "csv", "--columns",
                            "event_id,event_type,occurred_at,session_id,visitor_id,page_path,device_type,country_code"],
                           check=True, stdout=f)
        os.rename(csv + ".tmp", csv)
    db = os.path.join(args.work, "chdb-seed001")
    s = chdb.session.Session(db)
    s.query("CREATE DATABASE IF NOT EXISTS bench")
    loaded = s.query("SELECT count() FROM system.tables WHERE database = 'bench' AND name = 'events'", "CSV").bytes()
    if loaded.strip() != b"1":
        s.query("""CREATE TABLE bench.events (
            event_id String, event_type LowCardinality(String), occurred_at DateTime64(3, 'UTC'), session_id String,
            visitor_id String, page_path String, device_type LowCardinality(String), country_code LowCardinality(String))
            ENGINE = MergeTree ORDER BY (event_type, occurred_at) SETTINGS index_granularity = 8192""")
        t = time.perf_counter()
        s.query(f"INSERT INTO bench.events SELECT * FROM file('{os.path.abspath(csv)}', CSVWithNames)")
        print(f"loaded {csv} into chdb in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        s.query("OPTIMIZE TABLE bench.events FINAL")

    def ts(ms):
        return f"fromUnixTimestamp64Milli(toInt64({ms}), 'UTC')"

    sessions_sql = f"""
        SELECT count() AS sessions, uniq(visitor) AS unique_visitors, sum(pv) AS pageviews,
               round(countIf(pv = 1) / countIf(pv > 0) * 100, 2) AS bounce_rate,
               round(sum(pv) / count(), 2) AS views_per_visit,
               round(avg(duration) / 1000, 1) AS visit_duration,
               round(median(duration) / 1000, 1) AS visit_duration_median
        FROM (
            SELECT session_id, argMin(visitor_id, occurred_at) AS visitor, min(occurred_at) AS start,
                   countIf(event_type IN ('page_view', 'pageview')) AS pv,
                   toUnixTimestamp64Milli(max(occurred_at)) - toUnixTimestamp64Milli(min(occurred_at)) AS duration
            FROM bench.events
            WHERE occurred_at >= {ts(from90 - DAY)} AND occurred_at < {ts(end_ms + DAY)} AND session_id != ''
            GROUP BY session_id)
        WHERE start >= {ts(from90)} AND start < {ts(end_ms)}"""
    funnel_sql = f"""
        SELECT level, count() FROM (
            SELECT session_id, windowFunnel(3600000)(toUInt64(toUnixTimestamp64Milli(occurred_at)), event_type = 'page_view',
                   event_type = 'widget_impression', event_type = 'widget_click', event_type = 'device_page_view') AS level
            FROM bench.events
            WHERE occurred_at >= {ts(from30)} AND occurred_at < {ts(end_ms)} AND session_id != ''
              AND event_type IN ('page_view', 'widget_impression', 'widget_click', 'device_page_view')
            GROUP BY session_id)
        GROUP BY level ORDER BY level"""
    entry_sql = f"""
        SELECT entry, count() AS sessions, round(countIf(pv = 1) / greatest(countIf(pv > 0), 1) * 100, 2) AS bounce_rate FROM (
            SELECT session_id, min(occurred_at) AS start, argMinIf(page_path, occurred_at, event_type IN ('page_view', 'pageview')) AS entry,
                   countIf(event_type IN ('page_view', 'pageview')) AS pv
            FROM bench.events
            WHERE occurred_at >= {ts(from30 - DAY)} AND occurred_at < {ts(end_ms + DAY)} AND session_id != ''
            GROUP BY session_id)
        WHERE start >= {ts(from30)} AND start < {ts(end_ms)}
        GROUP BY entry ORDER BY sessions DESC LIMIT 50"""
    clickhouse = {}
    answers = {}
    for name, sql in [("session_stats_90d", sessions_sql), ("funnel_4_steps_30d", funnel_sql),
                      ("sessions_entry_page_30d", entry_sql)]:
        answer, times = timed(lambda: s.query(sql, "JSONCompact").bytes(), args.repeats)
        clickhouse[name] = summary(times)
        answers[name] = json.loads(answer)["data"]

    # Tally's answers to the same questions, to set beside ClickHouse's.
    start90 = time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime(from90 / 1000))
    end = time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime(end_ms / 1000))
    tally_stats = tally_query(args.tally, args.data, site, start90, end,
                              "sessions,unique_visitors,pageviews,bounce_rate,views_per_visit,visit_duration,visit_duration_median")

    print(f"site {site}, {bench['rows_in_store']:,} events in the store; {args.repeats} timed runs each\n")
    print("| question | Tally p50 (min–max) ms | ClickHouse (chdb) p50 (min–max) ms | Tally / ClickHouse |")
    print("|---|---|---|---|")
    for name in ["session_stats_90d", "sessions_entry_page_30d", "funnel_4_steps_30d"]:
        t, c = results[name], clickhouse[name]
        print(f"| {name} | {t['p50_ms']:.0f} ({t['min_ms']:.0f}–{t['max_ms']:.0f}) | "
              f"{c['p50_ms']:.0f} ({c['min_ms']:.0f}–{c['max_ms']:.0f}) | {t['p50_ms'] / c['p50_ms']:.2f} |")
    print("\nanswers:")
    print("  session stats, Tally:     ", json.dumps(tally_stats, sort_keys=True))
    print("  session stats, ClickHouse:", json.dumps(answers["session_stats_90d"]))
    print("  funnel levels, ClickHouse:", json.dumps(answers["funnel_4_steps_30d"]),
          f"(Tally: {results['funnel_4_steps_30d']['rows']} sessions reach step 4)")


if __name__ == "__main__":
    main()
