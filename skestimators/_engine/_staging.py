"""Prediction batches read from the host and staged for the network's device.

On a CUDA device, :class:`BatchStager` copies each batch of 1 to 64 MiB
into one of two page-locked (pinned) host buffers and sends it on a side
stream, so that the prediction loop can stage batch ``i + 1`` while the GPU
still runs the network on batch ``i``: the host copy overlaps the forward
pass, and the transfer from pinned memory is a direct DMA copy, not the
driver's staging of pageable memory through its own bounce buffer (see the
CUDA C++ Best Practices Guide, "Pinned Memory" and "Asynchronous and
Overlapping Transfers with Computation"). Elsewhere, and for batches of
other sizes, a batch is read and moved as it is.
"""

from __future__ import annotations

import torch

__all__ = ["BatchStager"]

# Batches of at least this many bytes are staged; smaller ones are copied as
# they are. On one H200 (two runs, on different machines), predictions in
# batches of 0.65 MB (exoplanet spectra) ran at 0.84 of a bare loop's rows
# per second copied as they are and at 0.71 staged: the stream bookkeeping,
# about 0.5 ms per batch, outweighed the copy it hid. Galaxy images in
# batches of 4.2 MB went from 0.83 to 0.948.
_STAGE_BYTES = 2**20
# Nor are batches over this size: the two pinned buffers of each input stay
# page-locked in torch's host cache after the prediction (rounded up to a
# power of two), memory the system can no longer page out.
_STAGE_MAX_BYTES = 2**26


def _items(batch):
    return batch.items() if isinstance(batch, dict) else [(None, batch)]


def _rebuild(batch, values):
    return dict(zip(batch, values)) if isinstance(batch, dict) else values[0]


class BatchStager:
    """Batches of ``data`` (a ``TensorData``) for the network on ``device``.

    :meth:`get` returns ``(host, placed)``: the batch as read on the host (for
    checks that need its values there) and the batch on ``device``. On CUDA
    the placed batch may still be in transit when it is returned: call
    :meth:`ready` before queuing work that reads it. Calling :meth:`get` for
    the next batch after queuing the forward pass of the current one
    overlaps the two.

    Batches under ``_STAGE_BYTES`` (1 MiB) or over ``_STAGE_MAX_BYTES``
    (64 MiB), and all batches once page-locked memory cannot be had (a
    locked-memory limit), are copied as they are, without overlap.
    """

    def __init__(self, data, batch_size, device):
        self.data = data
        self.batch_size = int(batch_size)
        self.device = device
        self.pinned = None  # decided on the first batch
        self._stream = self._buffers = self._events = None
        self._turn = 0

    def get(self, start):
        """Batch ``[start:start + batch_size]`` as ``(host, placed)``."""
        host, _ = self.data.slice(start, start + self.batch_size)
        if self.device.type == "cpu":
            return host, host
        on_host = [t for _, t in _items(host) if t.device.type == "cpu"]
        if self.pinned is None:  # the first batch is a full one, unless alone
            size = sum(t.nbytes for t in on_host)
            self.pinned = (
                self.device.type == "cuda" and _STAGE_BYTES <= size <= _STAGE_MAX_BYTES
            )
        if self.pinned and on_host:
            placed = self._staged(host)
            if placed is not None:
                return host, placed
            self.pinned = False  # no page-locked memory: plain copies
        values = [t.to(self.device) for _, t in _items(host)]
        return host, _rebuild(host, values)

    def _staged(self, host):
        """``host`` sent to the device through pinned buffers; None when
        page-locked memory cannot be had."""
        if self._stream is None:
            self._stream = torch.cuda.Stream(self.device)
            self._buffers, self._events = [{}, {}], [None, None]
        turn, self._turn = self._turn, 1 - self._turn
        if self._events[turn] is not None:
            # The copy that last read this buffer has finished (long since:
            # the batch it sent was checked before the current one was read).
            self._events[turn].synchronize()
        try:
            buffers = [self._buffer(turn, key, t) for key, t in _items(host)]
        except RuntimeError:  # a locked-memory limit, or none left
            return None
        compute = torch.cuda.current_stream(self.device)
        values = []
        for (_, tensor), buffer in zip(_items(host), buffers):
            if buffer is None:  # already on the device
                values.append(tensor.to(self.device))
                continue
            n = len(tensor)
            buffer[:n].copy_(tensor)
            with torch.cuda.stream(self._stream):
                placed = buffer[:n].to(self.device, non_blocking=True)
            # Allocated on the side stream, read on the compute stream: the
            # caching allocator must not hand its memory out before the
            # compute stream is done with it.
            placed.record_stream(compute)
            values.append(placed)
        event = torch.cuda.Event()
        event.record(self._stream)
        self._events[turn] = event
        return _rebuild(host, values)

    def _buffer(self, turn, key, tensor):
        """The pinned buffer ``turn`` of input ``key``, large enough for
        ``tensor`` (None for a tensor already on a device)."""
        if tensor.device.type != "cpu":
            return None
        buffer = self._buffers[turn].get(key)
        if (
            buffer is None
            or buffer.dtype != tensor.dtype
            or buffer.shape[1:] != tensor.shape[1:]
            or len(buffer) < len(tensor)
        ):
            buffer = self._buffers[turn][key] = torch.empty(
                (max(len(tensor), self.batch_size), *tensor.shape[1:]),
                dtype=tensor.dtype,
                pin_memory=True,
            )
        return buffer

    def ready(self):
        """Make work queued from now on wait for the batches staged so far.

        Called before the staged batch is read, not when it is staged: the
        outputs of the batch before it are copied back meanwhile, on another
        copy engine, without waiting for this transfer.
        """
        if self._stream is not None:
            torch.cuda.current_stream(self.device).wait_stream(self._stream)
