"""Data-parallel training: one process against two (torchrun, Gloo on the CPU).

    python benchmarks/ddp.py [--quick] [--nproc 2]

For each network (an MLP ``NetRegressor`` and the CNN-LSTM
``SpatioTemporalRegressor``) the same fit runs in one process and under
``torchrun --nproc_per_node=N``, with the same global batch size, and the
table gives the seconds per epoch, the final training loss and the largest
weight difference from the single process. Each process first fits one epoch
untimed (imports, the first optimizer and, under torchrun, the process group
are set up there), and the seconds per epoch are the median of the timed
fit's epochs after its first. On the CPU every process runs one thread: one
process uses one core and N processes N cores, so the ratio mixes N times
the compute with the cost of the collective calls (with N processes on N
cores and no other load, a ratio near 1/N means the calls cost little). On a
machine with several GPUs (``--device cuda``) each process gets its own GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def _worker(out, quick, device):
    import torch
    from sklearn.base import clone

    from skestimators import NetRegressor, SpatioTemporalRegressor
    from skestimators.datasets import make_soc

    torch.set_num_threads(1) if device == "cpu" else None
    rank = int(os.environ.get("RANK", "0"))
    n = 2000 if quick else 8000
    rng = np.random.RandomState(0)
    X = rng.normal(size=(n, 64)).astype("float32")
    y = (np.tanh(X[:, :8]).sum(1) + 0.1 * rng.normal(size=n)).astype("float32")
    Xp, yp, _ = make_soc(400 if quick else 1200, n_years=4, random_state=0)
    epochs = 3 if quick else 6
    cases = {
        "NetRegressor (MLP 256x3)": (
            NetRegressor(
                module_params={"width": 256, "depth": 3, "dropout": 0.0,
                               "batch_norm": False},
                max_epochs=epochs, batch_size=128, early_stopping=False,
                validation_fraction=None, random_state=0, device=device,
            ),
            X, y,
        ),
        "SpatioTemporalRegressor (CNN-LSTM)": (
            SpatioTemporalRegressor(
                dropout=0.0, max_epochs=epochs, batch_size=64,
                early_stopping=False, validation_fraction=None,
                random_state=0, device=device,
            ),
            Xp, np.log(yp),
        ),
    }  # fmt: skip
    results = {}
    for name, (est, Xc, yc) in cases.items():
        # Imports, the first optimizer and the process group, outside the clock.
        clone(est).set_params(max_epochs=1).fit(Xc, yc)
        est.fit(Xc, yc)
        durations = est.history_["dur"].to_numpy()
        seconds = float(np.median(durations[1:] if len(durations) > 1 else durations))
        state = torch.cat(
            [v.detach().double().cpu().ravel() for v in est.net_.module_.parameters()]
        )
        results[name] = {
            "s_per_epoch": seconds,
            "loss": float(est.history_["train_loss"].iloc[-1]),
            "weights": state.numpy().tolist(),
        }
    if rank == 0:
        Path(out).write_text(json.dumps(results))


def _launch(nproc, out, quick, device):
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    args = [__file__, "--worker", out, "--device", device] + (
        ["--quick"] if quick else []
    )
    if nproc == 1:
        cmd = [sys.executable, *args]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={nproc}", *args]  # fmt: skip
    subprocess.run(cmd, env=env, check=True)
    return json.loads(Path(out).read_text())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data")
    parser.add_argument("--nproc", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--device", default="cpu", help="cpu (Gloo) or cuda (NCCL)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args.worker, args.quick, args.device)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        one = _launch(1, f"{tmp}/one.json", args.quick, args.device)
        many = _launch(args.nproc, f"{tmp}/many.json", args.quick, args.device)
    print(f"\n{os.cpu_count()} CPU cores, device {args.device}, "
          f"{args.nproc} processes\n")  # fmt: skip
    print("| network | 1 process s/epoch | "
          f"{args.nproc} processes s/epoch | ratio | final loss 1 / {args.nproc} | "
          "max weight diff |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for name in one:
        a, b = one[name], many[name]
        diff = np.abs(np.array(a["weights"]) - np.array(b["weights"])).max()
        print(
            f"| {name} | {a['s_per_epoch']:.2f} | {b['s_per_epoch']:.2f} | "
            f"{b['s_per_epoch'] / a['s_per_epoch']:.2f} | {a['loss']:.5f} / "
            f"{b['loss']:.5f} | {diff:.1e} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
