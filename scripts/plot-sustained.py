#!/usr/bin/env python3
"""Draws the timeline of `tally bench ingest --probe-every N --json FILE` as a PNG:
events/s, parts (all and the fullest month) and report-query latency over time.

    scripts/plot-sustained FILE.json OUT.png [TITLE]

(`scripts/plot-sustained` installs the pinned matplotlib into .build/py first.)
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit("usage: plot-sustained.py RESULT.json OUT.png [TITLE]")
    with open(sys.argv[1]) as f:
        result = json.load(f)
    timeline = result.get("timeline")
    if not timeline:
        sys.exit(f"{sys.argv[1]}: no timeline (run tally bench ingest with --probe-every)")
    title = sys.argv[3] if len(sys.argv) > 3 else "tally bench ingest"
    t = [s["seconds"] / 60 for s in timeline]

    fig, axes = plt.subplots(4, 1, figsize=(9, 10), sharex=True)
    rates = [s["events_per_second"] / 1000 for s in timeline]
    axes[0].plot(t, rates, color="tab:blue")
    axes[0].set_ylabel("ingest, k events/s")
    axes[0].set_ylim(0, max(rates) * 1.2)

    axes[1].plot(t, [s.get("parts") for s in timeline], label="parts, all months", color="tab:orange")
    axes[1].plot(t, [s.get("max_parts_per_partition") for s in timeline], label="parts, fullest month",
                 color="tab:red")
    axes[1].set_ylabel("parts")
    axes[1].set_ylim(bottom=0)
    axes[1].legend(loc="upper left")

    axes[2].plot(t, [s.get("overview_ms") for s in timeline], label="overview, 30 days", color="tab:green")
    axes[2].plot(t, [s.get("pages_ms") for s in timeline], label="top pages, 30 days", color="tab:purple")
    axes[2].set_ylabel("query latency, ms")
    axes[2].set_ylim(bottom=0)
    axes[2].legend(loc="upper left")

    axes[3].plot(t, [(s.get("rss_bytes") or 0) / 1048576 for s in timeline], color="tab:gray")
    axes[3].set_ylabel("server RSS, MiB")
    axes[3].set_ylim(bottom=0)
    axes[3].set_xlabel("minutes")

    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=90)


if __name__ == "__main__":
    main()
