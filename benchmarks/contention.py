"""Training speed on a shared machine: quiet, and with busy processes beside it.

Researchers train on lab machines that other jobs keep busy. This benchmark
times three fits, each in a fresh process, first on a quiet machine and then
while ``--busy`` processes (pure-Python busy loops, one per core by default)
occupy the cores:

* ``exoplanet``: ``skestimators train exoplanet builtin`` (the default
  recipe: a network, gradient boosting and a support vector machine on the
  2,400 bundled planets);
* ``net``: ``NetRegressor`` on a 4,000 x 20 table, 30 epochs;
* ``image``: ``ImageClassifier`` on 600 simulated 32 x 32 galaxy images,
  4 epochs.

Beside each contended time it prints the *fair share*: what the fit would
take if the cores were shared evenly between its process and the busy ones,
its quiet CPU time scaled by ``(busy + 1) / cores`` (a fit using several
cores when the machine is quiet gets fewer of them), and never less than its
quiet time. The CPU time counts the threads' waits at each synchronisation,
so for a fit that gains little from its threads this share is generous.
Goal: contended time at most 1.5 x the fair share.

``--threads N`` runs the fits with ``OMP_NUM_THREADS=N`` (what a user could
set by hand); by default nothing is set and the package chooses. ``--timeout``
bounds each fit (a fit that spins on oversubscribed cores can take tens of
times longer); a fit cut short is reported as ``> timeout``.

Run: ``python benchmarks/contention.py`` (about 5 minutes on 2 cores;
``--only net,image`` for a subset).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKLOADS = {
    "net": """
import numpy as np
from skestimators import NetRegressor
rng = np.random.default_rng(0)
X = rng.standard_normal((4000, 20)).astype("float32")
y = X[:, :5].sum(1) + np.sin(X[:, 5])
NetRegressor(max_epochs=30, early_stopping=False, device="cpu",
             random_state=0).fit(X, y)
""",
    "image": """
from skestimators import ImageClassifier
from skestimators.datasets import make_galaxy_classes
X, y = make_galaxy_classes(600, size=32, random_state=0)
ImageClassifier(max_epochs=4, device="cpu", random_state=0).fit(X, y)
""",
}


def _busy_loop():
    return subprocess.Popen([sys.executable, "-c", "while True:\n    pass"])


def _command(name: str, folder: Path) -> list[str]:
    if name == "exoplanet":
        exe = Path(sys.executable).with_name("skestimators")
        return [str(exe), "train", "exoplanet", "builtin", "-o", str(folder / "m")]
    return [sys.executable, "-c", WORKLOADS[name]]


def run(name: str, env: dict, timeout: float, folder: Path):
    """``(wall seconds, CPU seconds)`` of one fit in a fresh process (None: cut)."""
    start = time.perf_counter()
    before = os.times()
    try:
        subprocess.run(
            _command(name, folder),
            env=env,
            check=True,
            timeout=timeout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
    except subprocess.TimeoutExpired:
        return None, None
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return time.perf_counter() - start, cpu


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--only", default="exoplanet,net,image")
    args = parser.parse_args(argv)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env.pop(var, None)
    if args.threads is not None:
        env["OMP_NUM_THREADS"] = str(args.threads)
    names = [n for n in args.only.split(",") if n]
    print(
        f"{cores} cores; {args.busy} busy processes; OMP_NUM_THREADS="
        f"{env.get('OMP_NUM_THREADS', 'unset')}\n",
        flush=True,
    )
    header = (
        f"{'fit':<10} {'quiet s':>8} {'cpu s':>7} {'busy s':>9} {'cpu s':>7} "
        f"{'fair s':>7} {'busy/fair':>9}"
    )
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name in names:
            run(name, env, args.timeout, folder)  # untimed: warms the file caches
            quiet, quiet_cpu = run(name, env, args.timeout, folder)
            busy_procs = [_busy_loop() for _ in range(args.busy)]
            try:
                time.sleep(1.0)  # the busy loops are running before the fit starts
                busy, busy_cpu = run(name, env, args.timeout, folder)
            finally:
                for proc in busy_procs:
                    proc.kill()
                    proc.wait()
            fair = None
            if quiet is not None:
                fair = max(quiet, quiet_cpu * (args.busy + 1) / cores)
            ratio = "n/a" if busy is None or fair is None else f"{busy / fair:.2f}"

            def fmt(v):
                return f"> {args.timeout:.0f}" if v is None else f"{v:.1f}"

            print(
                f"{name:<10} {fmt(quiet):>8} {fmt(quiet_cpu):>7} {fmt(busy):>9} "
                f"{fmt(busy_cpu):>7} {fmt(fair):>7} {ratio:>9}",
                flush=True,
            )


if __name__ == "__main__":
    main()
