"""What the bench drivers share."""
import contextlib
import os
import socket
import subprocess
import sys
import time


def timed(command, env=None, shell=False):
    """Runs a command to completion: wall seconds, its peak RSS in MB, and its stdout."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env, shell=shell, executable="/bin/bash" if shell else None)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    out, err = process.stdout.read(), process.stderr.read()
    if status != 0:
        sys.exit(f"{command if shell else command[0]} failed:\n{out}\n{err}")
    return seconds, usage.ru_maxrss / 1024, out


@contextlib.contextmanager
def moto(root):
    """A moto_server on a free port for the duration: the environment that points the AWS SDKs
    (Rust and boto3) at it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([os.path.join(root, ".venv/bin/moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            sys.exit("moto_server did not start within 10 s")
        yield dict(os.environ, AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_REGION="eu-west-2",
                   AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    finally:
        server.kill()


def arguments(root, rows):
    """The options every driver takes (--rows, --runs, --python); a driver adds its own."""
    import argparse
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=rows)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--python", default=os.path.join(root, "bench/.venv/bin/python"))
    return parser


def machine():
    """What the figures were measured on, for the record and the chart's caption."""
    import platform
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as info:
            model = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), model)
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {model}, {memory_gb:.0f} GiB, {platform.system()} {platform.release()}"


def report(root, name, paths, figures):
    """The last line, `bench-<name>: key=value …`, and the same figures as JSON in
    bench/results/<name>.json for `make bench-chart`.

    paths: (label, role, seconds, peak RSS MB or None) for each way measured; role is
    "landfall", "floor" or "python" (a baseline a user would write).
    figures: the line's key=value pairs, in order."""
    import datetime
    import json
    results = os.path.join(root, "bench/results")
    os.makedirs(results, exist_ok=True)
    record = {
        "bench": name,
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "paths": [{"label": label, "role": role, "seconds": round(seconds, 3),
                   "rss_mb": None if rss is None else round(rss, 1)} for label, role, seconds, rss in paths],
        "figures": figures,
    }
    with open(os.path.join(results, f"{name}.json"), "w") as out:
        json.dump(record, out, indent=2)
        out.write("\n")
    print(f"bench-{name}: " + " ".join(f"{key}={value}" for key, value in figures.items()))
