"""What the bench drivers share."""
import os
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
