"""A training history packed by column, for checkpoints.

A history is a list of one dict per epoch. Pickled as it is, every number is
an object of its own: at each epoch a checkpoint serialises all the earlier
epochs again, and the cost grows with the epoch count (about 55 ms per write
after 2,000 epochs, against a few for the network of a small model). Packed,
each key becomes one tensor when its values are all floats, all integers or
all booleans, so a write stores a few tensors whatever the epoch count.

Unpacking gives back the same rows: the same keys in the same order, the same
values of the same Python types (float64 holds a Python float exactly). Keys
whose values are of mixed or other types (texts, lists, tensors) keep a list
of their values. The rows' ``"batches"`` (the per-batch records) are kept for
the last epoch only, packed the same way, and are empty lists before it, as a
checkpoint has always stored them.

:class:`HistoryPacker` keeps the rows of past epochs converted between
writes: a write converts only the epochs added since the last one and the
current epoch, whose row callbacks may still be filling.
"""

from __future__ import annotations

import operator

import torch

__all__ = ["HistoryPacker", "pack_history", "unpack_history"]

_BATCHES = "batches"

#: The tensor type of a column whose values all have exactly this type.
_DTYPES = {float: torch.float64, int: torch.int64, bool: torch.bool}


def _pack_values(values, kinds=None):
    """One tensor for values of one scalar type, else the list itself.

    ``kinds``, the set of the values' types, when the caller knows it.
    """
    kinds = {type(v) for v in values} if kinds is None else set(kinds)
    if len(kinds) == 1:
        dtype = _DTYPES.get(kinds.pop())
        if dtype is not None:
            try:
                return torch.tensor(values, dtype=dtype)
            except (OverflowError, ValueError, RuntimeError):  # an int beyond 64 bits
                pass
    return list(values)


def _pack_rows(rows):
    """``rows`` (dicts) as their key orders and one packed value per column."""
    orders, order_of_row, columns = {}, [], {}
    for row in rows:
        keys = tuple(row)
        order_of_row.append(orders.setdefault(keys, len(orders)))
        for key in keys:
            columns.setdefault(key, []).append(row[key])
    return {
        "orders": [list(keys) for keys in orders],
        "row_order": torch.tensor(order_of_row, dtype=torch.int64),
        "columns": {k: _pack_values(v) for k, v in columns.items()},
    }


def _unpack_rows(packed, special=None):
    """The rows of a packing; ``special(key, i)`` gives row ``i``'s value of
    a key without a column (the batches, which :class:`HistoryPacker` keeps
    apart)."""
    columns = {
        k: iter(v.tolist() if isinstance(v, torch.Tensor) else v)
        for k, v in packed["columns"].items()
    }
    orders = packed["orders"]
    rows = []
    for i, order in enumerate(packed["row_order"].tolist()):
        rows.append(
            {
                key: special(key, i) if key not in columns else next(columns[key])
                for key in orders[order]
            }
        )
    return rows


class HistoryPacker:
    """Packs a growing history, converting each past epoch's row once.

    Parameters
    ----------
    plain : callable
        Converts a row to plain values (NumPy scalars to Python numbers).

    Notes
    -----
    A row is converted for good once a later epoch has begun: skorch's
    ``History.record`` writes to the last row only. The converted rows are
    reused while the history starts with the same row objects; a history
    replaced or cut (a resumed fit, ``warm_start``) is converted again.
    """

    def __init__(self, plain):
        self.plain = plain
        self._reset()

    def _reset(self):
        self._rows = []  # the history's row objects converted so far
        self._orders = {}  # key order -> its index
        self._row_order = []
        self._columns = {}  # key -> [values], without the last row's
        self._kinds = {}  # key -> set of the values' types

    def pack(self, history):
        """``history`` (a list of dicts) packed; see :func:`pack_history`."""
        rows = list(history)
        if not rows:
            return {"epochs": _pack_rows([]), "last_batches": _pack_rows([])}
        done = len(self._rows)
        if done >= len(rows) or not all(map(operator.is_, self._rows, rows)):
            self._reset()
            done = 0
        for row in rows[done:-1]:
            self._add(self.plain({**row, _BATCHES: []}), self._columns, self._kinds)
            self._rows.append(row)
        last = rows[-1]
        last = self.plain({**last, _BATCHES: last.get(_BATCHES, [])})
        columns = {k: list(v) for k, v in self._columns.items()}
        kinds = {k: set(v) for k, v in self._kinds.items()}
        order = self._add(last, columns, kinds, keep=False)
        return {
            "epochs": {
                "orders": [list(keys) for keys in self._orders],
                "row_order": torch.tensor([*self._row_order, order]),
                "columns": {k: _pack_values(v, kinds[k]) for k, v in columns.items()},
            },
            "last_batches": _pack_rows(last[_BATCHES]),
        }

    def _add(self, row, columns, kinds, keep=True):
        """Append ``row``'s values (not its batches) to ``columns``; return
        the index of its key order (recorded in the packer when ``keep``)."""
        keys = tuple(row)
        order = self._orders.setdefault(keys, len(self._orders))
        if keep:
            self._row_order.append(order)
        for key in keys:
            if key != _BATCHES:
                value = row[key]
                columns.setdefault(key, []).append(value)
                kinds.setdefault(key, set()).add(type(value))
        return order


def pack_history(rows):
    """Pack a history whose values are plain (numbers, texts, lists, dicts,
    tensors): see the module's docstring."""
    return HistoryPacker(lambda row: row).pack(rows)


def unpack_history(packed):
    """The rows of :func:`pack_history`; a list of rows is returned as it is
    (a checkpoint written before histories were packed)."""
    if isinstance(packed, list):
        return packed
    last = len(packed["epochs"]["row_order"]) - 1
    batches = _unpack_rows(packed["last_batches"])

    def special(key, i):  # only "batches" is skipped when packing
        return batches if i == last else []

    return _unpack_rows(packed["epochs"], special)
