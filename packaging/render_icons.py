"""Render resources/its-desktop.svg into the PNG icons desktops and the app use.

    python packaging/render_icons.py

Writes resources/icons/hicolor/NxN/apps/its-desktop.png for every size in ``ICON_SIZES`` (the
freedesktop icon theme layout, so the folder can be copied into ``~/.local/share/icons``). A
PNG is rewritten only when its pixels change, so ``make package`` can run this every time
without touching the committed files. Rendered by Qt's own SVG renderer, which the app uses for
the scalable icon too.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def render(size: int):
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    from its_desktop.ui.app import ICON

    renderer = QSvgRenderer(str(ICON))
    if not renderer.isValid():
        raise SystemExit(f"render_icons: {ICON} is not a valid SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    return image


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, str(ROOT))
    from PySide6.QtGui import QGuiApplication, QImage

    from its_desktop.ui.app import ICON_SIZES, icon_png

    app = QGuiApplication.instance() or QGuiApplication([sys.argv[0]])  # noqa: F841 (QPainter needs it)
    for size in ICON_SIZES:
        path = icon_png(size)
        image = render(size)
        old = QImage(str(path))
        if not old.isNull() and old.convertToFormat(image.format()) == image:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if not image.save(str(path), "PNG"):
            raise SystemExit(f"render_icons: cannot write {path}")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
