"""Batch scoring throughput and memory: CLI vs in-process predict vs Dask.

Scores N spectra of shape (52, 3) stored in a float32 ``.npy`` with a small,
fast network (an MLP on the flattened spectra) saved in the safe format
(``--format pickle`` for a joblib pickle), three ways, each in its own
process:

* in-process: ``skestimators.load`` then ``model.predict`` on the memory-mapped
  array (timed around ``predict`` only);
* CLI: ``skestimators score MODEL X.npy -o OUT.parquet`` (wall time of the
  whole command, and the scoring time the command reports);
* Dask: the same command with ``--dask`` (a LocalCluster of 2 workers).

For each it prints rows/s and the peak resident memory (RSS) of the process,
or of the whole process tree for Dask (sampled every 0.1 s), and the peak RSS
of the CLI at 1x and 4x the input size.

Run: ``python benchmarks/scoring.py`` (``--rows 400000`` for a shorter run).
Goals: CLI >= 0.9x the in-process throughput; CLI peak RSS flat (within 10 %)
from 1x to 4x the input.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

import skestimators
from skestimators import NetRegressor

N_WAVELENGTHS, N_CHANNELS = 52, 3


def write_spectra(path: Path, n_rows: int, seed: int = 0, block: int = 200_000):
    """A float32 ``.npy`` of ``n_rows`` spectra, written block by block."""
    rng = np.random.default_rng(seed)
    out = np.lib.format.open_memmap(
        path, mode="w+", dtype=np.float32, shape=(n_rows, N_WAVELENGTHS, N_CHANNELS)
    )
    for start in range(0, n_rows, block):
        stop = min(start + block, n_rows)
        out[start:stop] = rng.standard_normal(
            (stop - start, N_WAVELENGTHS, N_CHANNELS), dtype=np.float32
        )
    out.flush()
    del out


def train_model(folder: Path, format: str) -> Path:
    """A small, fast network (the package's MLP, 2 layers of 256 units, on the
    flattened spectra), saved in ``format``."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((2000, N_WAVELENGTHS, N_CHANNELS), dtype=np.float32)
    y = np.column_stack([X[:, :, 1].mean(1), X[:, :, 2].std(1)])
    model = NetRegressor(
        module_params={"width": 256, "depth": 2},
        max_epochs=2,
        batch_size=256,
        device="cpu",
        random_state=0,
    ).fit(X, y)
    return skestimators.save(model, folder / f"model.{format}", format=format)


# A small launcher runs each measured command, so that the peak RSS reported
# for its child (ru_maxrss) does not start at the RSS of this (large) process.
LAUNCHER = textwrap.dedent(
    """
    import resource, subprocess, sys
    code = subprocess.call(sys.argv[1:])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(f"MAXRSS_KIB {peak}", flush=True)
    sys.exit(code)
    """
)


def _vm_hwm(proc) -> int:
    """Peak RSS of one process so far (VmHWM), in bytes."""
    with open(f"/proc/{proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def run_measured(command, env, tree=False):
    """Run a command; return (wall seconds, peak RSS in MiB, its output).

    The peak is the command's own ``ru_maxrss``; with ``tree=True`` (Dask, whose
    workers are separate processes) the sum over the process tree of each
    process's peak RSS (VmHWM, sampled every 0.1 s): an upper bound.
    """
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, *command],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    peaks = {}
    while child.poll() is None:
        if tree:
            try:
                for proc in psutil.Process(child.pid).children(recursive=True):
                    try:
                        peaks[proc.pid] = max(peaks.get(proc.pid, 0), _vm_hwm(proc))
                    except OSError:
                        pass
            except psutil.Error:
                pass
        time.sleep(0.1)
    wall = time.perf_counter() - start
    output = child.stdout.read()
    if child.returncode != 0:
        raise RuntimeError(f"{command[:4]} failed ({child.returncode}):\n{output}")
    peak = int(re.search(r"MAXRSS_KIB (\d+)", output).group(1)) * 1024
    if tree:
        peak = max(peak, sum(peaks.values()))
    return wall, peak / 2**20, output


IN_PROCESS = textwrap.dedent(
    """
    import sys, time
    import numpy as np, skestimators
    model = skestimators.load(sys.argv[1])
    X = np.load(sys.argv[2], mmap_mode="r")
    start = time.perf_counter()
    pred = model.predict(X)
    print(f"PREDICT {time.perf_counter() - start:.3f} {pred.shape[0]}")
    """
)


def cli(model, data, out, chunk_rows, extra=()):
    command = [
        sys.executable,
        "-m",
        "skestimators.cli",
        "score",
        str(model),
        str(data),
        "-o",
        str(out),
        "--no-progress",
        *extra,
    ]
    if chunk_rows:
        command += ["--chunk-rows", str(chunk_rows)]
    return command


def reported_seconds(output: str) -> float:
    match = re.search(r"rows in ([0-9.]+) s", output)
    return float(match.group(1)) if match else float("nan")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows",
        type=int,
        default=2_000_000,
        help="input rows at 4x (the 1x input has a quarter)",
    )
    parser.add_argument("--chunk-rows", type=int, default=None)
    parser.add_argument(
        "--format",
        choices=("safe", "pickle"),
        default="safe",
        help="model file format (default: safe, skops + safetensors)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-dask", action="store_true")
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="working folder (default: a temporary one)",
    )
    args = parser.parse_args(argv)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp)
        model = train_model(folder, args.format)
        n_big, n_small = args.rows, args.rows // 4
        big, small = folder / "big.npy", folder / "small.npy"
        write_spectra(big, n_big)
        write_spectra(small, n_small, seed=1)
        print(
            f"{n_big:,} spectra (52, 3) float32 = "
            f"{big.stat().st_size / 2**30:.2f} GiB; "
            f"model {model.stat().st_size / 2**10:.0f} KiB ({args.format}); "
            "OMP_NUM_THREADS="
            f"{env['OMP_NUM_THREADS']}; {os.cpu_count()} cores\n",
            flush=True,
        )
        rows = []

        wall, rss, out = run_measured(
            [sys.executable, "-c", IN_PROCESS, str(model), str(big)], env
        )
        seconds = float(re.search(r"PREDICT ([0-9.]+)", out).group(1))
        rows.append(("in-process predict", n_big, seconds, wall, rss))

        for n, data in ((n_small, small), (n_big, big)):
            out_path = folder / f"cli-{n}.parquet"
            wall, rss, out = run_measured(
                cli(model, data, out_path, args.chunk_rows), env
            )
            name = "CLI score (1x input)" if n == n_small else "CLI score"
            rows.append((name, n, reported_seconds(out), wall, rss))
            if n == n_big:
                check = pd.read_parquet(out_path, columns=["id"])
                assert len(check) == n_big

        if not args.no_dask:
            extra = ("--dask", "--workers", str(args.workers))
            wall, rss, out = run_measured(
                cli(model, big, folder / "dask.parquet", args.chunk_rows, extra),
                env,
                tree=True,
            )
            rows.append(
                (
                    f"CLI --dask ({args.workers} workers)",
                    n_big,
                    reported_seconds(out),
                    wall,
                    rss,
                )
            )

    pd.set_option("display.width", 120)
    table = pd.DataFrame(
        rows, columns=["run", "rows", "scoring_s", "wall_s", "peak_rss_mib"]
    ).set_index("run")
    table["rows/s (scoring)"] = table["rows"] / table["scoring_s"]
    table["rows/s (wall)"] = table["rows"] / table["wall_s"]
    print(table.round(1).to_string())
    base = table.loc["in-process predict"]
    cli_big = table.loc["CLI score"]
    cli_small = table.loc["CLI score (1x input)"]

    scoring, wall = "rows/s (scoring)", "rows/s (wall)"
    lines = [
        ("CLI / in-process throughput (goal >= 0.9):", None, None),
        (
            # The CLI's own clock starts at the top of score(): it includes
            # loading the model, locking, reading and writing the files.
            "  scoring: CLI score() (load, read, predict, write) vs predict",
            cli_big[scoring],
            base[scoring],
        ),
        ("  whole processes (start, imports, load)", cli_big[wall], base[wall]),
        ("  whole CLI process vs predict call alone", cli_big[wall], base[scoring]),
    ]
    if "CLI --dask" in " ".join(table.index):
        dask = table.iloc[-1]
        lines += [
            ("Dask / in-process throughput:", None, None),
            ("  scoring (incl. cluster start)", dask[scoring], base[scoring]),
            ("  whole processes", dask[wall], base[wall]),
        ]
    print()
    width = max(len(label) for label, a, _ in lines if a is not None) + 2
    for label, a, b in lines:
        print(label if a is None else f"{label:<{width}}{a / b:.2f}")
    print(
        "\nCLI peak RSS, 4x vs 1x input (goal: within +-10 %): "
        f"{cli_small['peak_rss_mib']:.0f} -> {cli_big['peak_rss_mib']:.0f} MiB "
        f"({cli_big['peak_rss_mib'] / cli_small['peak_rss_mib'] - 1:+.1%}); "
        f"in-process predict: {base['peak_rss_mib']:.0f} MiB"
    )


if __name__ == "__main__":
    main()
