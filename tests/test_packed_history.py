"""Checkpoint histories packed by column: same rows back, a cost that does not
grow with the epoch count, and checkpoints written before packing resume."""

import io
import math

import numpy as np
import pytest
import torch
from sklearn.datasets import make_regression

from skestimators import NetRegressor
from skestimators._engine import Callback
from skestimators._engine._checkpoint import _plain
from skestimators._engine._packed_history import (
    HistoryPacker,
    pack_history,
    unpack_history,
)

from .test_checkpoint import CrashAt

pytestmark = pytest.mark.xdist_group("checkpoint")


def _round_trip(packed):
    """``packed`` through torch.save and a ``weights_only`` load."""
    buffer = io.BytesIO()
    torch.save(packed, buffer)
    return torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)


def _typed(rows):
    """Rows as (key, type, value) triples: equal only with the same key order
    and the same Python types (``1 == 1.0 == True`` in plain comparison)."""
    return [[(k, type(v), repr(v)) for k, v in row.items()] for row in rows]


def _rows():
    """Rows of every kind a history holds, with keys that come and go."""
    return [
        {
            "batches": [],
            "epoch": 1,
            "train_loss": 0.5,
            "valid_loss_best": True,
            "note": "warm-up",
            "big": 2**70,  # beyond 64 bits: kept as a list
            "mixed": 1,
            "spread": [1.5, 2],
        },
        {
            "batches": [],
            "epoch": 2,
            "train_loss": float("nan"),
            "valid_loss_best": False,
            "note": None,
            "big": 3,
            "mixed": 2.5,  # int then float: not one tensor, the values as given
            "spread": [],
            "event_lr": -0.0,
        },
        {
            # another key order, a key dropped, a tensor value
            "epoch": 3,
            "batches": [
                {"train_loss": 0.25, "train_batch_size": 16},
                {"train_loss": 0.125, "train_batch_size": 4},
            ],
            "train_loss": math.inf,
            "valid_loss_best": False,
            "note": "done",
            "big": 4,
            "mixed": 3,
            "spread": [0.0],
            "weights": torch.arange(3.0),
        },
    ]


def test_rows_come_back_with_their_keys_order_and_types():
    rows = _rows()
    back = unpack_history(_round_trip(pack_history(rows)))
    assert _typed(back) == _typed(rows)
    assert torch.equal(back[-1]["weights"], rows[-1]["weights"])


def test_numbers_of_one_type_are_stored_as_one_tensor():
    columns = pack_history(_rows())["epochs"]["columns"]
    assert columns["train_loss"].dtype == torch.float64
    assert columns["epoch"].dtype == torch.int64
    assert columns["valid_loss_best"].dtype == torch.bool
    for key in ("big", "mixed", "note", "spread", "weights"):
        assert isinstance(columns[key], list), key


def test_the_packer_gives_what_packing_the_whole_history_gives():
    rows = _rows()
    packer = HistoryPacker(_plain)
    for n in range(1, len(rows) + 1):
        # Past epochs lose their batches; the last keeps them.
        expected = [{**r, "batches": []} for r in rows[: n - 1]] + [rows[n - 1]]
        assert _typed(unpack_history(_round_trip(packer.pack(rows[:n])))) == (
            _typed(expected)
        )


def test_the_packer_converts_each_past_epoch_once():
    converted = []

    def plain(row):
        converted.append(row["epoch"])
        return _plain(row)

    rows = [{"batches": [], "epoch": i, "train_loss": 0.1 * i} for i in range(50)]
    packer = HistoryPacker(plain)
    for n in range(1, 51):
        packer.pack(rows[:n])
    # Each write converts the last row; each past row is converted once.
    assert len(converted) == 50 + 49


@pytest.mark.parametrize("n", [10, 50, 51], ids=["shorter", "as long", "longer"])
def test_a_replaced_history_is_converted_again(n):
    rows = [{"batches": [], "epoch": i, "train_loss": 0.1 * i} for i in range(50)]
    packer = HistoryPacker(_plain)
    for k in range(1, 51):
        packer.pack(rows[:k])
    # Other row objects (a resumed fit's), as many as before or not.
    other = [dict(row, train_loss=1.0) for row in rows] + [dict(rows[0])]
    unpacked = unpack_history(packer.pack(other[:n]))
    assert [r["train_loss"] for r in unpacked[: min(n, 50)]] == [1.0] * min(n, 50)


def test_values_recorded_in_the_last_row_after_a_write_reach_the_next():
    rows = [{"batches": [], "epoch": 1, "train_loss": 0.5}]
    packer = HistoryPacker(_plain)
    packer.pack(rows)
    rows[0]["valid_loss"] = 0.25  # a callback after the checkpoint's
    rows.append({"batches": [], "epoch": 2})
    packer.pack(rows)
    rows[1]["train_loss"] = 0.125
    assert unpack_history(packer.pack(rows)) == [
        {"batches": [], "epoch": 1, "train_loss": 0.5, "valid_loss": 0.25},
        {"batches": [], "epoch": 2, "train_loss": 0.125},
    ]


def test_a_write_stores_as_many_objects_after_many_epochs_as_after_few():
    def leaves(value):
        if isinstance(value, dict):
            return sum(leaves(v) for v in value.values())
        if isinstance(value, list):
            return sum(leaves(v) for v in value)
        return 1

    def history(n):
        return [
            {"batches": [], "epoch": i, "train_loss": 1.0 / i, "dur": 0.1}
            for i in range(1, n + 1)
        ]

    def packed(n):  # as the checkpoints of a fit write it, epoch by epoch
        rows, packer = history(n), HistoryPacker(_plain)
        for k in range(1, n):
            packer.pack(rows[:k])
        return packer.pack(rows)

    # Four columns and the row orders: the same count for 10 or 2,000 epochs.
    assert leaves(pack_history(history(10))) == leaves(pack_history(history(2000)))
    assert (
        leaves(packed(10)) == leaves(packed(2000)) == leaves(pack_history(history(10)))
    )


SMALL = dict(max_epochs=5, batch_size=16, device="cpu", random_state=0)


def test_a_checkpoint_with_an_unpacked_history_resumes(tmp_path):
    # Checkpoints written before packing (format 1) stored the rows as a list.
    X, y = make_regression(160, 6, random_state=0)
    y = y / 100
    whole = NetRegressor(**SMALL).fit(X, y)
    with pytest.raises(RuntimeError, match="simulated crash"):
        NetRegressor(**SMALL, checkpoint=tmp_path, callbacks=[CrashAt(3)]).fit(X, y)
    path = tmp_path / "checkpoint.pt"
    state = torch.load(path, weights_only=True)
    assert state["format"] == 2 and state["epoch"] == 2
    torch.save(
        {**state, "format": 1, "history": unpack_history(state["history"])}, path
    )
    resumed = NetRegressor(**SMALL, checkpoint=tmp_path).fit(X, y)
    assert len(resumed.history_) == 5
    np.testing.assert_allclose(
        resumed.history_["train_loss"], whole.history_["train_loss"], rtol=1e-6
    )
    np.testing.assert_allclose(resumed.predict(X), whole.predict(X), rtol=1e-5)


class MarkBestAtTheEnd(Callback):
    """Edits past rows when training ends, as a user's callback might."""

    def on_train_end(self, net, **kwargs):
        for i, row in enumerate(net.history):
            row["chosen"] = i == 1


def test_past_rows_edited_at_the_end_reach_the_final_checkpoint(tmp_path):
    X, y = make_regression(160, 6, random_state=0)
    reg = NetRegressor(**SMALL, checkpoint=tmp_path, callbacks=[MarkBestAtTheEnd()])
    reg.fit(X, y / 100)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["done"]
    chosen = [row["chosen"] for row in unpack_history(state["history"])]
    assert chosen == [False, True, False, False, False]
    # A later fit loads the finished checkpoint: its history is the same.
    again = NetRegressor(**SMALL, checkpoint=tmp_path, callbacks=[MarkBestAtTheEnd()])
    assert again.fit(X, y / 100).history_["chosen"].tolist() == chosen


def test_an_unknown_format_is_still_refused(tmp_path):
    X, y = make_regression(160, 6, random_state=0)
    NetRegressor(**dict(SMALL, max_epochs=2), checkpoint=tmp_path).fit(X, y / 100)
    path = tmp_path / "checkpoint.pt"
    torch.save({**torch.load(path, weights_only=True), "format": 3}, path)
    with pytest.raises(Exception, match="not a checkpoint of this version"):
        NetRegressor(**dict(SMALL, max_epochs=2), checkpoint=tmp_path).fit(X, y / 100)
