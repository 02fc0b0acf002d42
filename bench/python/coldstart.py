"""make bench-coldstart: every function's cold start through the devstack's Lambda Runtime API
(bench-coldstart: a fresh process each run, timed from its start to its first request for
work — Lambda's Init Duration — with its peak RSS after the first answer), beside:

  floor    a bootstrap that is only sh + curl asking for work and answering: the cost of
           starting any process that speaks the Runtime API
  python   awslambdaric running a handler with the original designs' imports (boto3, pandas,
           pyarrow, pymysql, sqlalchemy), the Python a user deploys for the same jobs

The functions are this machine's release builds (x86_64; Lambda runs the arm64 builds of the
same code and profile, which cannot run here). largest_zip_mb is from `make sizes`'s packages
when they exist (`make build` takes half an hour cold, so this bench does not force it).
Medians of --runs starts per function.
"""
import json
import pathlib
import stat
import subprocess
import sys

from benchlib import arguments, moto, report

ROOT = pathlib.Path(__file__).resolve().parents[2]
BINARIES = ROOT / "target/coldstart"
BENCH = ROOT / "target/release/bench-coldstart"
FUNCTIONS = sorted(p.name for p in (ROOT / "functions").iterdir() if (p / "Cargo.toml").exists())

FLOOR = """#!/bin/sh
api="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation"
id=$(curl -sS -D - -o /dev/null "$api/next" | tr -d '\\r' | sed -n 's/^lambda-runtime-aws-request-id: //Ip')
curl -sS -X POST -d '{"batchItemFailures":[]}' "$api/$id/response" >/dev/null
exec sleep 600
"""


def launcher(name, text):
    path = BINARIES / name
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def largest_zip_mb():
    build = ROOT / ".aws-sam/build"
    if not build.is_dir():
        print("no .aws-sam/build: run make sizes for the packages' sizes")
        return None
    out = subprocess.run([sys.executable, str(ROOT / "scripts/sizes.py"), str(build)], capture_output=True, text=True)
    line = next((l for l in out.stdout.splitlines() if l.startswith("sizes:")), None)
    if line is None:
        sys.exit(f"sizing .aws-sam/build failed: {out.stderr}")
    return float(line.split("largest_zip_mb=")[1].split()[0])


def main():
    args = arguments(ROOT, 0).parse_args()
    BINARIES.mkdir(parents=True, exist_ok=True)
    for name in FUNCTIONS:
        link = BINARIES / name
        link.unlink(missing_ok=True)
        link.symlink_to(ROOT / "target/release" / name)
    launcher("floor", FLOOR)
    launcher("python-baseline", f"#!/bin/sh\ncd '{ROOT / 'bench/python'}' && exec '{args.python}' -m awslambdaric coldstart_handler.handler\n")

    names = FUNCTIONS + ["floor", "python-baseline"]
    with moto(str(ROOT)) as env:
        out = subprocess.run([str(BENCH), str(BINARIES), str(args.runs), *names], cwd=ROOT, env=env,
                             capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"bench-coldstart failed:\n{out.stdout}\n{out.stderr}")
    rows = {r["function"]: r for r in map(json.loads, out.stdout.splitlines())}

    print(f"{'function':<20} {'init ms':>8} {'answered ms':>12} {'peak RSS MB':>12}  first answer")
    for name in names:
        r = rows[name]
        print(f"{name:<20} {r['init_ms']:8.1f} {r['answered_ms']:12.1f} {r['rss_mb']:12.1f}  {r['answer']}")
    worst = max((rows[n] for n in FUNCTIONS), key=lambda r: r["init_ms"])
    python, floor = rows["python-baseline"], rows["floor"]
    worst_rss = max(rows[n]["rss_mb"] for n in FUNCTIONS)
    figures = {
        "functions": len(FUNCTIONS),
        "worst_init_ms": round(worst["init_ms"], 1),
        "floor_init_ms": round(floor["init_ms"], 1),
        "python_init_ms": round(python["init_ms"], 1),
        "ratio": round(python["init_ms"] / worst["init_ms"], 1),
        "worst_rss_mb": round(worst_rss, 1),
        "python_rss_mb": round(python["rss_mb"], 1),
    }
    zipped = largest_zip_mb()
    if zipped is not None:
        figures["largest_zip_mb"] = zipped
    report(str(ROOT), "coldstart", [
        (f"landfall (slowest: {worst['function']})", "landfall", worst["init_ms"] / 1000, worst_rss),
        ("sh + curl (floor)", "floor", floor["init_ms"] / 1000, floor["rss_mb"]),
        ("Python: boto3, pandas, pyarrow, pymysql, sqlalchemy", "python", python["init_ms"] / 1000, python["rss_mb"]),
    ], figures)


if __name__ == "__main__":
    main()
