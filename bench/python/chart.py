"""make bench-chart: the figures the benchmarks last wrote (bench/results/<name>.json) as one
picture, bench/results/benchmarks.png — per benchmark, each way measured: seconds on a log
scale (landfall, the floor, the Python baselines, and the path it replaced where a benchmark
keeps one) and peak RSS where it was measured. Only what the JSON files hold is drawn."""
import glob
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESULTS = os.path.join(ROOT, "bench/results")
ORDER = ["mysql", "dynamodb", "orders", "extract", "transform", "warehouse"]
COLOURS = {"landfall": "#1f77b4", "floor": "#7f7f7f", "python": "#ff7f0e", "before": "#d62728"}
NAMES = {"landfall": "landfall", "floor": "floor (the database's or format's own tool)",
         "python": "Python a user would write", "before": "landfall before this change"}


def main():
    records = {}
    for path in glob.glob(os.path.join(RESULTS, "*.json")):
        with open(path) as f:
            record = json.load(f)
        # A run at scale (make p4-scale) reports lags, not paths beside a floor.
        if "paths" in record:
            records[record["bench"]] = record
    if not records:
        sys.exit("no bench/results/*.json yet: run make bench-<name> first")
    names = [n for n in ORDER if n in records] + sorted(set(records) - set(ORDER))

    bars = []  # (benchmark, label, role, seconds, rss)
    for name in names:
        for p in records[name]["paths"]:
            bars.append((name, p["label"], p["role"], p["seconds"], p["rss_mb"]))
    bars.reverse()  # the first benchmark on top

    fig, (time_ax, rss_ax) = plt.subplots(1, 2, figsize=(15, 0.36 * len(bars) + 2.2), sharey=True,
                                          gridspec_kw={"width_ratios": [3, 2]})
    y = range(len(bars))
    colours = [COLOURS.get(role, "#2ca02c") for _, _, role, _, _ in bars]
    time_ax.barh(y, [b[3] for b in bars], color=colours)
    time_ax.set_xscale("log")
    time_ax.set_xlim(right=max(b[3] for b in bars) * 4)  # room for the labels
    time_ax.set_xlabel("seconds (log scale; shorter is better)")
    time_ax.set_yticks(list(y), [f"{b[0]}: {b[1]}" for b in bars], fontsize=8)
    for i, bar in enumerate(bars):
        # Cold starts are milliseconds: "0.01 s" would hide the differences.
        label = f" {bar[3] * 1000:.1f} ms" if bar[3] < 0.1 else f" {bar[3]:.2f} s"
        time_ax.text(bar[3], i, label, va="center", fontsize=7)
    measured = [(i, b) for i, b in enumerate(bars) if b[4] is not None]
    rss_ax.barh([i for i, _ in measured], [b[4] for _, b in measured],
                color=[COLOURS.get(b[2], "#2ca02c") for _, b in measured])
    rss_ax.set_xscale("log")
    if measured:
        rss_ax.set_xlim(right=max(b[4] for _, b in measured) * 4)
    rss_ax.set_xlabel("peak RSS, MB (log scale; where measured)")
    for i, bar in measured:
        rss_ax.text(bar[4], i, f" {bar[4]:.0f} MB", va="center", fontsize=7)
    # A line between benchmarks.
    for i in range(1, len(bars)):
        if bars[i][0] != bars[i - 1][0]:
            for ax in (time_ax, rss_ax):
                ax.axhline(i - 0.5, color="#cccccc", linewidth=0.8)
    handles = [plt.Rectangle((0, 0), 1, 1, color=COLOURS[r]) for r in COLOURS
               if any(b[2] == r for b in bars)]
    labels = [NAMES[r] for r in COLOURS if any(b[2] == r for b in bars)]
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=9, frameon=False)
    dates = sorted({records[n]["date"] for n in names})
    machines = sorted({records[n]["machine"] for n in names})
    fig.text(0.01, 0.005, f"Measured by make bench-* on {' / '.join(dates)}; {'; '.join(machines)}. "
             "Each benchmark's last line and JSON hold the same figures.", fontsize=8)
    fig.tight_layout(rect=(0, 0.03, 1, 0.96))
    out = os.path.join(RESULTS, "benchmarks.png")
    fig.savefig(out, dpi=110)
    print(f"wrote {os.path.relpath(out, ROOT)} from {len(names)} benchmarks")


if __name__ == "__main__":
    main()
