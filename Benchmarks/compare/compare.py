#!/usr/bin/env python3
"""Tally beside ClickHouse (chdb, LZ4 and ZSTD(1)) and DuckDB on the same generated events.

Usage: Benchmarks/compare/run-compare [--events 1000000] [--repeats 5]

One data set from `tally generate` (NDJSON, cached in .build/compare), loaded into:
  - Tally: `tally ingest FILE` (bulk, WAL on), `tally merge`; bytes from `tally inspect --json`;
  - ClickHouse: chdb, seed 000's `events` MergeTree (PARTITION BY month, ORDER BY (event_type,
    source, site_id, occurred_at, event_id)) once with CODEC(LZ4) and once with CODEC(ZSTD(1)),
    `INSERT … SELECT FROM file(FILE, JSONEachRow)`, `OPTIMIZE … FINAL`; bytes from system.parts;
  - DuckDB: `CREATE TABLE … AS SELECT FROM read_json(FILE)`, `CHECKPOINT`; bytes: the file.
Small-batch ingest: the first min(events, --small) events, 1,000 per insert, one insert after
the other (each acknowledged before the next): Tally over HTTP (`tally bench ingest --spawn
--connections 1 --batch 1000`: a `tally serve` child, each POST answered once its events are in
the fsynced WAL), ClickHouse `INSERT INTO events FORMAT JSONEachRow` per 1,000 lines (a part
each; in process, no network), DuckDB `INSERT … SELECT FROM read_json(chunk)` per 1,000 lines.
Then the same three report questions of `tally bench query` (overview and top pages over 30
days, visitors per day over 92 days, for the largest site) `--repeats` times after a warm-up;
answers are checked (counts equal; every engine's uniques set beside the exact count, Tally's
within 2 % of it). Prints a Markdown table and draws
Benchmarks/results/compare-<events>.png. Every figure is of this machine, in this run.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
SITE = "techpulse"  # the generator's largest site
END = "2026-11-01"  # the generator's default end (exclusive)

# Seed 000's `events` columns (received_at is filled by the insert).
COLUMNS = [
    "event_id String", "event_type LowCardinality(String)", "event_version UInt8",
    "occurred_at DateTime64(3, 'UTC')", "received_at DateTime64(3, 'UTC') DEFAULT now64(3)",
    "source LowCardinality(String)", "site_id LowCardinality(String)", "session_id String", "visitor_id String",
    "page_url String", "page_path String", "referrer_domain LowCardinality(String)", "user_agent String",
    "device_type LowCardinality(String)", "country_code LowCardinality(String)", "region LowCardinality(String)",
    "properties String", "prop_mapping_id Nullable(Int64)", "prop_post_id Nullable(Int64)",
    "prop_device_slug Nullable(String)",
]
JSON_FIELDS = ["event_id", "event_type", "event_version", "occurred_at", "source", "site_id", "session_id", "visitor_id",
               "page_url", "page_path", "referrer_domain", "user_agent", "device_type", "country_code", "region",
               "properties"]


def run(args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw).stdout


def timed(fn, repeats):
    fn()
    times = []
    result = None
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t) * 1000)
    return result, times


def questions(dialect):
    """The SQL of the three questions; uniq is HyperLogLog-like in both engines."""
    uniq = "uniq" if dialect == "clickhouse" else "approx_count_distinct"
    day = "toDate(occurred_at)" if dialect == "clickhouse" else "CAST(occurred_at AS DATE)"
    ts = (lambda s: f"toDateTime64('{s}', 3, 'UTC')") if dialect == "clickhouse" else (lambda s: f"TIMESTAMPTZ '{s}+00'")
    end = f"{END} 00:00:00"
    d30 = time.strftime("%Y-%m-%d 00:00:00", time.gmtime(time.mktime(time.strptime(END, "%Y-%m-%d")) - time.timezone - 30 * 86400))
    d92 = time.strftime("%Y-%m-%d 00:00:00", time.gmtime(time.mktime(time.strptime(END, "%Y-%m-%d")) - time.timezone - 92 * 86400))
    where30 = f"site_id = '{SITE}' AND occurred_at >= {ts(d30)} AND occurred_at < {ts(end)}"
    where92 = f"site_id = '{SITE}' AND occurred_at >= {ts(d92)} AND occurred_at < {ts(end)}"
    pv = "event_type IN ('page_view', 'pageview')"
    return {
        "overview_30d": f"SELECT count(*) FILTER (WHERE {pv}) AS pageviews, {uniq}(visitor_id) AS visitors, "
                        f"{uniq}(session_id) AS sessions FROM events WHERE {where30}"
        if dialect == "duckdb" else
        f"SELECT countIf({pv}) AS pageviews, {uniq}(visitor_id), {uniq}(session_id) FROM events WHERE {where30}",
        "top_pages_30d": f"SELECT page_path, count(*) AS pageviews, {uniq}(visitor_id) AS visitors FROM events "
                         f"WHERE {where30} AND {pv} GROUP BY page_path ORDER BY pageviews DESC, page_path LIMIT 50",
        "daily_92d": f"SELECT {day} AS d, count(*) AS events, {uniq}(visitor_id) AS visitors FROM events "
                     f"WHERE {where92} GROUP BY d ORDER BY d",
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--small", type=int, default=200_000, help="events for the small-batch ingest test")
    parser.add_argument("--tally", default=os.path.join(ROOT, ".build/release/tally"))
    parser.add_argument("--work", default=os.path.join(ROOT, ".build/compare"))
    args = parser.parse_args()
    import chdb.session
    import duckdb

    os.makedirs(args.work, exist_ok=True)
    n = args.events
    data = os.path.join(args.work, f"events-{n}.ndjson")
    if not os.path.exists(data):
        run([args.tally, "generate", "--events", str(n), "--output", data])
    results = {}
    small_n = min(n, args.small)
    with open(data) as f:
        small_lines = [next(f) for _ in range(small_n)]
    chunks = [small_lines[i:i + 1000] for i in range(0, small_n, 1000)]
    small_file = os.path.join(args.work, f"small-{small_n}.ndjson")
    with open(small_file, "w") as f:
        f.writelines(small_lines)

    # Tally.
    tdir = os.path.join(args.work, f"tally-{n}")
    shutil.rmtree(tdir, ignore_errors=True)
    ingest = json.loads(run([args.tally, "ingest", data, "--data", tdir, "--json"]))
    run([args.tally, "merge", "--data", tdir])
    size = json.loads(run([args.tally, "inspect", "--data", tdir, "--json"]))
    bench = json.loads(run([args.tally, "bench", "query", "--data", tdir, "--repeats", str(args.repeats), "--json"]))
    tq = {q["query"]: q for q in bench["queries"]}
    rollup_bytes = sum(r["bytes"] for r in size["rollups"]) / n
    small_json = os.path.join(args.work, "tally-small.json")
    run([args.tally, "bench", "ingest", "--spawn", "--connections", "1", "--batch", "1000", "--events", str(small_n),
         "--json", small_json])
    with open(small_json) as f:
        tally_small = json.load(f)["events_per_second"]
    results["Tally"] = {"ingest": ingest["events_per_second"], "small": tally_small, "bytes": size["bytes_per_event"],
                        "rollups": rollup_bytes,
                        "queries": {k: (tq[k]["p50_ms"], tq[k]["min_ms"], tq[k]["max_ms"]) for k in questions("clickhouse")}}
    start30 = time.strftime("%Y-%m-%dT00:00:00Z",
                            time.gmtime(time.mktime(time.strptime(END, "%Y-%m-%d")) - time.timezone - 30 * 86400))
    tally_answer = json.loads(run([args.tally, "query", "--data", tdir, "--property", SITE, "--tz", "UTC", "--json",
                                   "--metrics", "pageviews,unique_visitors,sessions", "--from", start30,
                                   "--to", f"{END}T00:00:00Z"]))["data"][0]
    answers = {"Tally": [tally_answer["pageviews"], tally_answer["unique_visitors"], tally_answer["sessions"]]}

    # ClickHouse, two codecs.
    for codec in ["LZ4", "ZSTD(1)"]:
        name = f"ClickHouse {codec}"
        path = os.path.join(args.work, f"chdb-{n}-{codec.replace('(', '').replace(')', '')}")
        shutil.rmtree(path, ignore_errors=True)
        s = chdb.session.Session(path)
        cols = ",\n".join(f"{c} CODEC({codec})" for c in COLUMNS)
        s.query(f"""CREATE TABLE events ({cols}) ENGINE = MergeTree PARTITION BY toYYYYMM(occurred_at)
                    ORDER BY (event_type, source, site_id, occurred_at, event_id) SETTINGS index_granularity = 8192""")
        t = time.perf_counter()
        s.query(f"""INSERT INTO events ({', '.join(JSON_FIELDS)})
                    SELECT {', '.join(JSON_FIELDS)} FROM file('{data}', JSONEachRow)
                    SETTINGS input_format_json_read_objects_as_strings = 1, input_format_skip_unknown_fields = 1""")
        seconds = time.perf_counter() - t
        s.query("OPTIMIZE TABLE events FINAL")
        stored = int(s.query("SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND table = 'events'", "CSV")
                     .bytes().strip())
        q = {}
        for k, sql in questions("clickhouse").items():
            answer, times = timed(lambda: s.query(sql, "JSONCompact").bytes(), args.repeats)
            q[k] = (statistics.median(times), min(times), max(times))
            if k == "overview_30d":
                answers[name] = json.loads(answer)["data"][0]
        s.query("CREATE TABLE small AS events")
        t = time.perf_counter()
        for chunk in chunks:
            s.query("INSERT INTO small (" + ", ".join(JSON_FIELDS) + ") SETTINGS input_format_json_read_objects_as_strings = 1, "
                    "input_format_skip_unknown_fields = 1 FORMAT JSONEachRow\n" + "".join(chunk))
        small_rate = small_n / (time.perf_counter() - t)
        results[name] = {"ingest": n / seconds, "small": small_rate, "bytes": stored / n, "queries": q}
        s.close()

    # DuckDB.
    dpath = os.path.join(args.work, f"duck-{n}.db")
    for p in [dpath, dpath + ".wal"]:
        if os.path.exists(p):
            os.remove(p)
    con = duckdb.connect(dpath)
    t = time.perf_counter()
    con.execute(f"""CREATE TABLE events AS SELECT event_id, event_type, event_version,
                    CAST(occurred_at AS TIMESTAMPTZ) AS occurred_at, source, site_id, session_id, visitor_id, page_url,
                    page_path, referrer_domain, user_agent, device_type, country_code, region,
                    CAST(properties AS VARCHAR) AS properties
                    FROM read_json('{data}', format = 'newline_delimited')""")
    con.execute("CHECKPOINT")
    seconds = time.perf_counter() - t
    q = {}
    for k, sql in questions("duckdb").items():
        answer, times = timed(lambda: con.execute(sql).fetchall(), args.repeats)
        q[k] = (statistics.median(times), min(times), max(times))
        if k == "overview_30d":
            answers["DuckDB"] = list(answer[0])
    # The exact distinct counts, to judge every engine's estimates (not timed).
    where = questions("duckdb")["overview_30d"].split(" WHERE ", 1)[1]
    exact = con.execute(f"SELECT count(DISTINCT visitor_id), count(DISTINCT session_id) FROM events WHERE {where}").fetchall()[0]
    con.execute("CREATE TABLE small AS SELECT * FROM events LIMIT 0")
    chunk_file = os.path.join(args.work, "duck-chunk.ndjson")
    elapsed = 0.0
    for chunk in chunks:
        with open(chunk_file, "w") as f:
            f.writelines(chunk)
        t = time.perf_counter()
        con.execute(f"""INSERT INTO small SELECT event_id, event_type, event_version, CAST(occurred_at AS TIMESTAMPTZ),
                        source, site_id, session_id, visitor_id, page_url, page_path, referrer_domain, user_agent,
                        device_type, country_code, region, CAST(properties AS VARCHAR)
                        FROM read_json('{chunk_file}', format = 'newline_delimited')""")
        elapsed += time.perf_counter() - t
    con.close()
    results["DuckDB"] = {"ingest": n / seconds, "small": small_n / elapsed, "bytes": os.path.getsize(dpath) / n,
                         "queries": q}

    # Report.
    print(f"{n:,} events from `tally generate --events {n}`; {args.repeats} timed runs per query after a warm-up\n")
    names = list(results)
    print("| | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    print("| bulk ingest, events/s | " + " | ".join(f"{results[e]['ingest']:,.0f}" for e in names) + " |")
    print(f"| small-batch ingest (1,000 per insert, {small_n:,} events), events/s | "
          + " | ".join(f"{results[e]['small']:,.0f}" for e in names) + " |")
    print("| bytes per event on disk (raw events) | " + " | ".join(f"{results[e]['bytes']:.1f}" for e in names) + " |")
    for k in questions("clickhouse"):
        print(f"| {k} p50 (min–max) ms | " + " | ".join(
            "{:.1f} ({:.1f}–{:.1f})".format(*results[e]["queries"][k]) for e in names) + " |")
    print(f"\nTally's daily rollups add {results['Tally']['rollups']:.1f} B/event (the other engines here have no "
          "materialized views).")
    print(f"\noverview_30d answers (pageviews, visitors, sessions; exact distinct counts {exact[0]:,} and {exact[1]:,}):")
    for e, a in answers.items():
        errors = [(int(a[i]) - exact[i - 1]) / exact[i - 1] * 100 for i in (1, 2)]
        print(f"  {e}: {a}  (uniques {errors[0]:+.2f} %, {errors[1]:+.2f} % from exact)")
    base = answers["Tally"]
    for e, a in answers.items():
        assert int(a[0]) == int(base[0]), f"{e} counts {a[0]} pageviews, Tally {base[0]}"
    for i in (1, 2):
        assert abs(int(base[i]) - exact[i - 1]) <= 0.02 * exact[i - 1], f"Tally's uniques {base[i]} vs exact {exact[i - 1]}"
    print("  pageviews equal in all; Tally's uniques within 2 % of exact")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    qs = list(questions("clickhouse"))
    for i, e in enumerate(names):
        axes[0].bar([x + i * 0.2 for x in range(len(qs))], [results[e]["queries"][k][0] for k in qs], width=0.2, label=e)
    axes[0].set_xticks([x + 0.3 for x in range(len(qs))], qs, fontsize=8)
    axes[0].set_ylabel("p50 ms")
    axes[0].set_yscale("log")
    axes[0].legend(fontsize=7)
    axes[1].bar(names, [results[e]["bytes"] for e in names])
    axes[1].set_ylabel("bytes per event")
    axes[2].bar(names, [results[e]["ingest"] for e in names])
    axes[2].set_ylabel("bulk ingest events/s")
    for a in axes[1:]:
        a.tick_params(axis="x", labelsize=7, rotation=20)
    fig.suptitle(f"{n:,} generated events, this machine, one run")
    fig.tight_layout()
    out = os.path.join(ROOT, "Benchmarks/results", f"compare-{n}.png")
    fig.savefig(out, dpi=110)
    print(f"\nchart: {os.path.relpath(out, ROOT)}")


if __name__ == "__main__":
    main()
