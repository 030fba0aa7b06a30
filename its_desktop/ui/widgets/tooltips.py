"""Tooltips that depend on where the mouse is in a painted widget (a bar, a timeline marker)."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPointF
from PySide6.QtGui import QHelpEvent
from PySide6.QtWidgets import QToolTip, QWidget


def show_tooltip_at(widget: QWidget, event: QEvent, text_at) -> bool:
    """Answer a ToolTip event with ``text_at(position)`` (none when it is empty); True when the
    event was a tooltip request and is handled."""
    if event.type() != QEvent.Type.ToolTip or not isinstance(event, QHelpEvent):
        return False
    text = text_at(QPointF(event.pos()))
    if text:
        QToolTip.showText(event.globalPos(), text, widget)
    else:
        QToolTip.hideText()
        event.ignore()
    return True
