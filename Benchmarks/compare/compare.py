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
Then every query of `tally bench query`'s suite (seed 000/003 reports, seed 001 sessions, entry
pages, a 4-step funnel, event lists), with the parameters that suite found in the data,
`--repeats` times after a warm-up. Answers are checked: overview counts equal and every
engine's uniques set beside the exact count (Tally's within 2 % of it); per query the same
number of result rows (the funnel: the same sessions reaching its last step). ClickHouse and
DuckDB get seed 000's prop_* columns filled from the properties JSON at load, as Tally does, and
utm_campaign (seed 003). Prints a Markdown table and draws
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
    # Not in seed 000's table; seed 003's campaign field, which Tally keeps (one suite query groups by it).
    "utm_campaign LowCardinality(Nullable(String))",
]
JSON_FIELDS = ["event_id", "event_type", "event_version", "occurred_at", "source", "site_id", "session_id", "visitor_id",
               "page_url", "page_path", "referrer_domain", "user_agent", "device_type", "country_code", "region",
               "properties", "utm_campaign"]
# The NDJSON fields read, typed as in the table (properties as JSON text), for file() and input().
STRUCTURE = ", ".join(c.split(" DEFAULT")[0] for c in COLUMNS if c.split(" ")[0] in JSON_FIELDS).replace("'", "\\'")
# Seed 000's prop_* columns, filled from the properties JSON as its ingest does (Tally does the same).
CH_PROPS = ["JSONExtract(properties, 'mapping_id', 'Nullable(Int64)')", "JSONExtract(properties, 'post_id', 'Nullable(Int64)')",
            "JSONExtract(properties, 'device_slug', 'Nullable(String)')"]
# read_json makes the properties object a STRUCT: stored as its JSON text (to_json), as in the others.
DUCK_PROPS = ["CAST(to_json(properties) AS VARCHAR) AS properties",
              "CAST(json_extract(to_json(properties), '$.mapping_id') AS BIGINT) AS prop_mapping_id",
              "CAST(json_extract(to_json(properties), '$.post_id') AS BIGINT) AS prop_post_id",
              "json_extract_string(to_json(properties), '$.device_slug') AS prop_device_slug"]


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


def questions(dialect, top_mapping="0", visitor=""):
    """The SQL of `tally bench query`'s suite; uniq is HyperLogLog-like in both engines.
    top_mapping and visitor are the parameters `tally bench query` found in the data."""
    ch = dialect == "clickhouse"
    uniq = "uniq" if ch else "approx_count_distinct"
    day = "toDate(occurred_at)" if ch else "CAST(occurred_at AS DATE)"
    hour = "toStartOfHour(occurred_at)" if ch else "date_trunc('hour', occurred_at)"
    ts = (lambda s: f"toDateTime64('{s}', 3, 'UTC')") if ch else (lambda s: f"TIMESTAMPTZ '{s}+00'")
    end_s = time.mktime(time.strptime(END, "%Y-%m-%d")) - time.timezone

    def at(days_before):
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(end_s - days_before * 86400))

    def where(days, margin=0):
        return (f"site_id = '{SITE}' AND occurred_at >= {ts(at(days + margin))} AND occurred_at < {ts(at(-margin))}")

    def started(days):
        return f"start >= {ts(at(days))} AND start < {ts(at(0))}"

    pv_types = "('page_view', 'pageview')"
    pv = f"event_type IN {pv_types}"
    count_if = (lambda c: f"countIf({c})") if ch else (lambda c: f"count(*) FILTER (WHERE {c})")
    arg_min = "argMin" if ch else "arg_min"
    ms = (lambda c: f"toUnixTimestamp64Milli({c})") if ch else (lambda c: f"epoch_ms({c})")
    click_target = ("JSONExtractString(properties, 'click_target')" if ch
                    else "json_extract_string(properties, '$.click_target')")
    entry = (f"argMinIf(page_path, occurred_at, {pv})" if ch
             else f"arg_min(page_path, occurred_at) FILTER (WHERE {pv})")
    # Sessions are closed over the range widened by a day on each side, as Tally does.
    per_session = f"""SELECT session_id, {arg_min}(visitor_id, occurred_at) AS visitor, min(occurred_at) AS start,
                             {count_if(pv)} AS pv, {ms("max(occurred_at)")} - {ms("min(occurred_at)")} AS duration,
                             {entry} AS entry
                      FROM events WHERE {{where}} AND session_id != '' GROUP BY session_id"""
    steps = ["page_view", "widget_impression", "widget_click", "device_page_view"]
    if ch:
        funnel = (f"SELECT level, count() FROM (SELECT session_id, windowFunnel(3600000)(toUInt64({ms('occurred_at')}), "
                  + ", ".join(f"event_type = '{t}'" for t in steps)
                  + f") AS level FROM events WHERE {where(30)} AND session_id != '' AND event_type IN "
                  + "(" + ", ".join(f"'{t}'" for t in steps) + ") GROUP BY session_id) GROUP BY level ORDER BY level")
    else:
        # No windowFunnel in DuckDB: each step is the first event of its type after the previous
        # step, within an hour of the first step (from a session's first page_view).
        parts = [f"s1 AS (SELECT session_id, min(occurred_at) AS t1, min(occurred_at) AS t FROM e WHERE event_type = '{steps[0]}' GROUP BY session_id)"]
        for i, t in enumerate(steps[1:], start=2):
            parts.append(f"s{i} AS (SELECT s.session_id, s.t1, min(e.occurred_at) AS t FROM s{i - 1} s JOIN e USING (session_id) "
                         f"WHERE e.event_type = '{t}' AND e.occurred_at > s.t AND e.occurred_at <= s.t1 + INTERVAL 1 HOUR "
                         f"GROUP BY s.session_id, s.t1)")
        funnel = (f"WITH e AS (SELECT session_id, event_type, occurred_at FROM events WHERE {where(30)} AND session_id != '' "
                  f"AND event_type IN (" + ", ".join(f"'{t}'" for t in steps) + ")), " + ", ".join(parts)
                  + " SELECT " + ", ".join(f"(SELECT count(*) FROM s{i})" for i in range(1, 5)))
    median = "median"
    impressions = count_if("event_type = 'widget_impression'")
    clicks = count_if("event_type = 'widget_click'")
    return {
        "overview_30d": f"SELECT {count_if(pv)} AS pageviews, {uniq}(visitor_id) AS visitors, "
                        f"{uniq}(session_id) AS sessions FROM events WHERE {where(30)}",
        "top_pages_30d": f"SELECT page_path, count(*) AS pageviews, {uniq}(visitor_id) AS visitors FROM events "
                         f"WHERE {where(30)} AND {pv} GROUP BY page_path ORDER BY pageviews DESC, page_path LIMIT 50",
        "daily_92d": f"SELECT {day} AS d, count(*) AS events, {uniq}(visitor_id) AS visitors FROM events "
                     f"WHERE {where(92)} GROUP BY d ORDER BY d",
        "hourly_7d": f"SELECT {hour} AS h, count(*) AS events, {uniq}(visitor_id) AS visitors FROM events "
                     f"WHERE {where(7)} GROUP BY h ORDER BY h",
        "top_referrers_30d": f"SELECT referrer_domain, count(*) AS events, {uniq}(visitor_id) AS visitors FROM events "
                             f"WHERE {where(30)} GROUP BY referrer_domain ORDER BY events DESC, referrer_domain LIMIT 50",
        "widget_stats_mapping_30d":
            f"SELECT prop_mapping_id, prop_device_slug, {impressions} AS impressions, {clicks} AS clicks, "
            f"{uniq}(visitor_id) AS visitors, {clicks} / greatest({impressions}, 1) AS ctr "
            f"FROM events WHERE {where(30)} AND event_type IN ('widget_impression', 'widget_click') "
            f"AND prop_mapping_id = {top_mapping} GROUP BY prop_mapping_id, prop_device_slug ORDER BY impressions DESC",
        "visitor_events_92d": f"SELECT event_type, count(*) AS events FROM events WHERE {where(92)} "
                              f"AND visitor_id = '{visitor}' GROUP BY event_type ORDER BY events DESC",
        "top_utm_campaign_30d": f"SELECT utm_campaign, count(*) AS events, {uniq}(visitor_id) AS visitors FROM events "
                                f"WHERE {where(30)} AND utm_campaign IS NOT NULL AND utm_campaign != '' "
                                f"GROUP BY utm_campaign ORDER BY events DESC, utm_campaign LIMIT 50",
        "props_click_target_30d": f"SELECT {click_target} AS target, count(*) AS events FROM events "
                                  f"WHERE {where(30)} AND event_type = 'widget_click' GROUP BY target ORDER BY events DESC",
        "session_stats_90d":
            f"SELECT count(*) AS sessions, {uniq}(visitor) AS visitors, sum(pv) AS pageviews, "
            f"{count_if('pv = 1')} / greatest({count_if('pv > 0')}, 1) AS bounce_rate, sum(pv) / count(*) AS views_per_visit, "
            f"avg(duration) AS visit_duration, {median}(duration) AS visit_duration_median "
            f"FROM ({per_session.format(where=where(90, margin=1))}) WHERE {started(90)}",
        "sessions_entry_page_30d":
            f"SELECT entry, count(*) AS sessions, {count_if('pv = 1')} / greatest({count_if('pv > 0')}, 1) AS bounce_rate "
            f"FROM ({per_session.format(where=where(30, margin=1))}) WHERE {started(30)} AND entry IS NOT NULL "
            f"GROUP BY entry ORDER BY sessions DESC, entry LIMIT 50",
        "funnel_4_steps_30d": funnel,
        "event_list_visitor_92d": f"SELECT * FROM events WHERE {where(92)} AND visitor_id = '{visitor}' "
                                  f"ORDER BY occurred_at DESC, event_id DESC LIMIT 100",
        "event_list_latest_92d": f"SELECT * FROM events WHERE {where(92)} ORDER BY occurred_at DESC, event_id DESC LIMIT 100",
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
    # The same questions everywhere: the parameters Tally's suite found in the data.
    params = {"top_mapping": bench["top_mapping"], "visitor": bench["visitor"]}
    assert bench["site"] == SITE and bench["end"] == END, (bench["site"], bench["end"])
    # Tally's suite counts every group (the others stop at LIMIT 50) and the funnel's last step.
    limited = [k for k, sql in questions("clickhouse").items() if sql.rstrip().endswith("LIMIT 50")]
    rows = {"Tally": {q["query"]: min(q["rows"], 50) if q["query"] in limited else q["rows"] for q in bench["queries"]}}
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
        s.query(f"""INSERT INTO events ({', '.join(JSON_FIELDS)}, prop_mapping_id, prop_post_id, prop_device_slug)
                    SELECT {', '.join(JSON_FIELDS)}, {', '.join(CH_PROPS)} FROM file('{data}', JSONEachRow, '{STRUCTURE}')
                    SETTINGS input_format_json_read_objects_as_strings = 1, input_format_skip_unknown_fields = 1""")
        seconds = time.perf_counter() - t
        s.query("OPTIMIZE TABLE events FINAL")
        stored = int(s.query("SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND table = 'events'", "CSV")
                     .bytes().strip())
        q = {}
        rows[name] = {}
        for k, sql in questions("clickhouse", **params).items():
            answer, times = timed(lambda: s.query(sql, "JSONCompact").bytes(), args.repeats)
            q[k] = (statistics.median(times), min(times), max(times))
            data_rows = json.loads(answer)["data"]
            # The funnel's check is the sessions that reached the last step (windowFunnel level 4).
            rows[name][k] = (sum(int(r[1]) for r in data_rows if int(r[0]) == 4) if k == "funnel_4_steps_30d"
                             else len(data_rows))
            if k == "overview_30d":
                answers[name] = json.loads(answer)["data"][0]
        s.query("CREATE TABLE small AS events")
        t = time.perf_counter()
        for chunk in chunks:
            s.query("INSERT INTO small (" + ", ".join(JSON_FIELDS) + ", prop_mapping_id, prop_post_id, prop_device_slug) SELECT "
                    + ", ".join(JSON_FIELDS) + ", " + ", ".join(CH_PROPS) + " FROM input('" + STRUCTURE + "') SETTINGS input_format_json_read_objects_as_strings = 1, "
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
                    {', '.join(DUCK_PROPS)}, utm_campaign
                    FROM read_json('{data}', format = 'newline_delimited', union_by_name = true)""")
    con.execute("CHECKPOINT")
    seconds = time.perf_counter() - t
    q = {}
    rows["DuckDB"] = {}
    for k, sql in questions("duckdb", **params).items():
        answer, times = timed(lambda: con.execute(sql).fetchall(), args.repeats)
        q[k] = (statistics.median(times), min(times), max(times))
        rows["DuckDB"][k] = int(answer[0][3]) if k == "funnel_4_steps_30d" else len(answer)
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
        # read_json infers the columns from the lines it reads: a chunk where no event has a
        # utm_campaign has no such column.
        utm = "utm_campaign" if any('"utm_campaign"' in line for line in chunk) else "NULL AS utm_campaign"
        t = time.perf_counter()
        con.execute(f"""INSERT INTO small SELECT event_id, event_type, event_version, CAST(occurred_at AS TIMESTAMPTZ),
                        source, site_id, session_id, visitor_id, page_url, page_path, referrer_domain, user_agent,
                        device_type, country_code, region, {', '.join(DUCK_PROPS)}, {utm}
                        FROM read_json('{chunk_file}', format = 'newline_delimited', union_by_name = true)""")
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
    print("\nresult rows per query (at most 50 where the query has a limit), and for the funnel the sessions that\n"
          "reached its last step; Tally's hourly series is dense (every hour of the 7 days, empty ones as zeros):")
    differ = []
    for k in questions("clickhouse"):
        counts = {e: rows[e][k] for e in rows}
        others = set(v for e, v in counts.items() if e != "Tally")
        same = len(set(counts.values())) == 1 or (k == "hourly_7d" and counts["Tally"] == 7 * 24 and max(others) <= 7 * 24)
        if not same:
            differ.append(k)
        print(f"  {k}: " + ", ".join(f"{e} {v}" for e, v in counts.items()) + ("" if same else "  <-- differ"))
    print("  every engine agrees" if not differ else f"  differences: {', '.join(differ)}")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(18, 5.5), gridspec_kw={"width_ratios": [4, 1, 1]})
    qs = list(questions("clickhouse"))
    for i, e in enumerate(names):
        axes[0].bar([x + i * 0.2 for x in range(len(qs))], [results[e]["queries"][k][0] for k in qs], width=0.2, label=e)
    axes[0].set_xticks([x + 0.3 for x in range(len(qs))], qs, fontsize=7, rotation=60, ha="right")
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
