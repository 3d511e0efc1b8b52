"""Prediction batches staged for a CUDA device through pinned buffers.

The CUDA calls are replaced by stand-ins that record what is asked of them
(this suite runs without a GPU): what is checked is the bookkeeping, that
every batch arrives whole and that a pinned buffer is refilled only once the
copy that last read it has finished. ``benchmarks/gpu.py`` checks the same
on a GPU (predictions in one call equal those made batch by batch).
"""

import contextlib

import pytest
import torch

from skestimators._engine import _staging
from skestimators._engine._batching import TensorData
from skestimators._engine._staging import _STAGE_BYTES, BatchStager

CUDA = torch.device("cuda")


LOG = []  # what the host did, in order: ("fill", buffer) and ("sync", event)


class FakeEvent:
    def __init__(self):
        self.synchronized = False

    def record(self, stream):
        stream.recorded.append(self)

    def synchronize(self):
        self.synchronized = True
        LOG.append(("sync", self))


class FakeStream:
    def __init__(self, device=None):
        self.recorded, self.waited = [], []

    def wait_stream(self, other):
        self.waited.append(other)


@pytest.fixture
def fake_cuda(monkeypatch):
    """torch.cuda stand-ins; ``.to("cuda")`` makes a copy on the host."""
    compute = FakeStream()
    pinned = []
    real_empty, real_to, real_copy = torch.empty, torch.Tensor.to, torch.Tensor.copy_
    LOG.clear()

    def empty(*args, pin_memory=False, **kwargs):
        tensor = real_empty(*args, **kwargs)
        if pin_memory:
            pinned.append(tensor)
        return tensor

    def to(self, *args, **kwargs):
        if args and isinstance(args[0], torch.device) and args[0].type == "cuda":
            return self.clone()
        return real_to(self, *args, **kwargs)

    def copy_(self, src, *args, **kwargs):
        base = self._base if self._base is not None else self
        if any(base.data_ptr() == p.data_ptr() for p in pinned):
            LOG.append(("fill", base.data_ptr()))
        return real_copy(self, src, *args, **kwargs)

    monkeypatch.setattr(torch.cuda, "Stream", FakeStream)
    monkeypatch.setattr(torch.Tensor, "copy_", copy_)
    monkeypatch.setattr(torch.cuda, "stream", lambda s: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: compute)
    monkeypatch.setattr(torch, "empty", empty)
    monkeypatch.setattr(torch.Tensor, "to", to)
    monkeypatch.setattr(torch.Tensor, "record_stream", lambda self, s: None)
    return compute, pinned


def _data(n, width):
    X = {
        "big": torch.arange(n * width, dtype=torch.float32).reshape(n, width),
        "small": torch.arange(n * 3, dtype=torch.float32).reshape(n, 3),
    }
    return TensorData(X)


def test_every_batch_arrives_whole_and_buffers_wait_for_their_copies(fake_cuda):
    compute, pinned = fake_cuda
    batch, width = 100, _STAGE_BYTES // (4 * 100) + 1  # just over the threshold
    data = _data(350, width)  # three full batches and a partial one
    stager = BatchStager(data, batch, CUDA)
    events = []
    for start in range(0, 350, batch):
        host, placed = stager.get(start)
        stager.ready()
        events.append(stager._stream.recorded[-1])
        for key in ("big", "small"):
            expected = data.X[key][start : start + batch]
            assert placed[key].shape == expected.shape
            assert torch.equal(placed[key], expected)
            assert torch.equal(host[key], expected)
    assert len(pinned) == 4  # two buffers per input, reused
    assert compute.waited == [stager._stream] * 4
    # A buffer is refilled only after the copy that last read it finished:
    # batch 2 refills batch 0's buffers once its event is synchronised.
    assert [e.synchronized for e in events] == [True, True, False, False]
    fills = [i for i, (what, _) in enumerate(LOG) if what == "fill"]
    assert len(fills) == 8  # two inputs, four batches
    for batch_no, event in ((2, events[0]), (3, events[1])):
        first_fill = fills[2 * batch_no]
        assert LOG.index(("sync", event)) < first_fill
        assert LOG[first_fill][1] == LOG[fills[2 * (batch_no - 2)]][1]


def test_very_large_batches_are_copied_as_they_are(fake_cuda, monkeypatch):
    # Two pinned buffers per input stay in torch's host cache: not for
    # batches over _STAGE_MAX_BYTES.
    _, pinned = fake_cuda
    monkeypatch.setattr(_staging, "_STAGE_MAX_BYTES", 2 * _STAGE_BYTES)
    data = _data(200, 3 * _STAGE_BYTES // 400)
    stager = BatchStager(data, 100, CUDA)
    _, placed = stager.get(100)
    assert torch.equal(placed["big"], data.X["big"][100:200])
    assert stager.pinned is False and not pinned


def test_small_batches_are_copied_as_they_are(fake_cuda):
    _, pinned = fake_cuda
    data = _data(50, 4)
    stager = BatchStager(data, 16, CUDA)
    _, placed = stager.get(16)
    assert torch.equal(placed["big"], data.X["big"][16:32])
    assert stager.pinned is False and not pinned and stager._stream is None


def test_without_page_locked_memory_batches_are_copied_as_they_are(
    fake_cuda, monkeypatch
):
    def refuse(*args, pin_memory=False, **kwargs):
        raise RuntimeError("CUDA error: out of memory (cudaHostAlloc)")

    monkeypatch.setattr(torch, "empty", refuse)
    data = _data(300, _STAGE_BYTES // 400 + 1)
    stager = BatchStager(data, 100, CUDA)
    for start in (0, 100, 200):
        _, placed = stager.get(start)
        assert torch.equal(placed["small"], data.X["small"][start : start + 100])
    assert stager.pinned is False


def test_on_the_cpu_batches_are_the_host_views():
    data = _data(30, 4)
    host, placed = BatchStager(data, 8, torch.device("cpu")).get(8)
    assert placed is host
    assert torch.equal(host["big"], data.X["big"][8:16])
