"""Regression: PySide6 6.12.0 on Python 3.11 drops a reference to None on every call of a Qt
method that returns nothing, until CPython aborts with "none_dealloc". pyproject pins it away;
this test fails if a broken build slips back in."""

import sys

from PySide6.QtCore import QObject


def test_void_qt_calls_keep_none_refcount():
    obj = QObject()
    before = sys.getrefcount(None)
    for _ in range(20_000):
        obj.setObjectName("x")
    after = sys.getrefcount(None)
    assert abs(after - before) < 1_000, f"None refcount moved by {after - before}"
