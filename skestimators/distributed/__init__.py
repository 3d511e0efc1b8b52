"""Data-parallel training across processes and GPUs.

Nothing to call to train data-parallel: run the unchanged script under
``torchrun --nproc_per_node=N script.py`` (or ``accelerate launch``), and
every ``fit`` trains on ``N`` processes, each on its shard of every batch,
with gradients averaged (see the user guide, *Training on several GPUs*).
These two functions let a script ask where it runs.
"""

from .._engine import is_main_process, world_size

__all__ = ["is_main_process", "world_size"]
