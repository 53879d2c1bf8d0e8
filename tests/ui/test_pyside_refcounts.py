"""Guards against a Qt binding that corrupts reference counts (PySide6 6.12.0 on Python 3.11 did:
each signal emit lost a reference to True, each index.data() yielding None one to None, and the
app aborted after a few minutes of use). Checked on the installed binding, so an upgrade that
brings the bug back fails here instead of on a user's desktop."""

from __future__ import annotations

import sys

from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, Qt, Signal


class _Emitter(QObject):
    fired = Signal(str, int)


class _NoneModel(QAbstractListModel):
    def rowCount(self, parent=QModelIndex()):  # noqa: B008
        return 1

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        return None


def test_signal_emit_keeps_reference_counts(qapp):
    sender, got = _Emitter(), []
    sender.fired.connect(lambda text, n: got.append(n))
    before = sys.getrefcount(True)
    for i in range(500):
        sender.fired.emit("x", i)
    assert len(got) == 500
    assert sys.getrefcount(True) >= before - 50


def test_index_data_returning_none_keeps_reference_counts(qapp):
    model = _NoneModel()
    index = model.index(0)
    before = sys.getrefcount(None)
    for _ in range(500):
        assert index.data(Qt.ItemDataRole.DecorationRole) is None
    assert sys.getrefcount(None) >= before - 50
