"""make bench-transform-incremental: one extract run's increment (990 sales orders, half of them
new versions of old ones, and 10 changed addresses) through star-transform's whole path —
ingestion object read, its state group read, transform, Parquet and manifest written, the
calendar, the state committed, the manifest published — against moto, after a history of N
source rows was absorbed (N = 50k, 500k, 5M by default), each N in a fresh moto.

  new   the state split by what a transform reads (per table or joined pair, and the calendar)
  old   the same increment plus what each of its objects paid in the old design: the round
        trip of the one state object holding every dimension row and every fact version
  floor the increment's objects read from moto and written back, nothing else

Each increment runs in a fresh process: its peak RSS is the increment's. Medians of --runs.
The aim (issue 33): the 5M figure within 1.5x of the 50k one, under 2 s and 256 MB.
"""
import json
import os
import statistics

from benchlib import arguments, moto, report, timed

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.path.join(ROOT, "target/release/bench-transform-incremental")


def run(env, *args):
    _, _, out = timed([BINARY, *map(str, args)], env=env)
    return json.loads(out)


def label(n):
    return f"{n // 1_000_000}m" if n >= 1_000_000 else f"{n // 1000}k"


def main():
    parser = arguments(ROOT, 0)
    parser.add_argument("--sizes", default="50000,500000,5000000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    results = {}
    for n in sizes:
        with moto(ROOT) as env:
            history = run(env, "history", n)
            new = [run(env, "increment", n, r) for r in range(args.runs)]
            old = run(env, "old-increment", n, args.runs)
        results[n] = {
            "history": history,
            "seconds": statistics.median(r["seconds"] for r in new),
            "orders": statistics.median(r["sales_order_seconds"] for r in new),
            "addresses": statistics.median(r["address_seconds"] for r in new),
            "floor": statistics.median(r["floor_seconds"] for r in new),
            "rss": max(r["peak_rss_mb"] for r in new),
            "old_seconds": old["seconds"],
            "old_rss": old["peak_rss_mb"],
        }

    print(f"{'history rows':>12} {'state KB':>9} {'old state KB':>13} {'seconds':>8} {'orders s':>9} "
          f"{'addresses s':>12} {'floor s':>8} {'RSS MB':>7} {'old seconds':>12} {'old RSS MB':>11}")
    for n, r in results.items():
        print(f"{r['history']['rows']:>12,} {r['history']['state_bytes'] / 1e3:>9.1f} "
              f"{r['history']['old_state_bytes'] / 1e3:>13.1f} {r['seconds']:>8.3f} {r['orders']:>9.3f} "
              f"{r['addresses']:>12.3f} {r['floor']:>8.3f} {r['rss']:>7.1f} {r['old_seconds']:>12.3f} "
              f"{r['old_rss']:>11.1f}")
    print("state KB: every state object after the history, gzip (the joined pairs' grow with their "
          "dimensions, 1 row per 1,600 or 2,400 source rows); orders s / addresses s: the increment's "
          "two objects")
    first, last = results[sizes[0]], results[sizes[-1]]
    figures = {f"seconds_{label(n)}": f"{r['seconds']:.3f}" for n, r in results.items()}
    figures[f"rss_mb_{label(sizes[-1])}"] = f"{last['rss']:.1f}"
    figures["ratio"] = f"{last['seconds'] / first['seconds']:.2f}"
    figures[f"floor_s_{label(sizes[-1])}"] = f"{last['floor']:.3f}"
    figures[f"old_seconds_{label(sizes[-1])}"] = f"{last['old_seconds']:.3f}"
    figures[f"old_rss_mb_{label(sizes[-1])}"] = f"{last['old_rss']:.1f}"
    report(ROOT, "transform-incremental", [
        (f"landfall star-transform, a 1,000-row increment after {label(sizes[-1])} rows", "landfall",
         last["seconds"], last["rss"]),
        (f"the same after {label(sizes[0])} rows (a history of totesys's size)", "landfall",
         first["seconds"], first["rss"]),
        ("floor: the increment's objects read and written back through moto", "floor",
         last["floor"], None),
        (f"the old design (one state object) after {label(sizes[-1])} rows", "before",
         last["old_seconds"], last["old_rss"]),
    ], figures)


if __name__ == "__main__":
    main()
