"""The folder tree beside the secrets list: ``brokers``, ``brokers/ibkr``... taken from the
names, under one "All secrets" root. Folders appear and disappear one row at a time as
secrets come and go, so the tree keeps its expansion and selection across vault changes."""

from __future__ import annotations

from bisect import bisect_left
from typing import Iterable

from PySide6.QtCore import QModelIndex, QObject, Qt
from PySide6.QtGui import QStandardItem, QStandardItemModel

PATH_ROLE = Qt.ItemDataRole.UserRole + 1  # a folder's full path; "" for "All secrets"
ALL_SECRETS = "All secrets"


def folders_of(names: Iterable[str]) -> set[str]:
    """Every folder that holds a secret, with its ancestors: ``a/b/c`` gives ``a`` and ``a/b``."""
    folders: set[str] = set()
    for name in names:
        cut = name.rfind("/")
        while cut > 0:
            folder = name[:cut]
            if folder in folders:
                break  # its ancestors are in already
            folders.add(folder)
            cut = folder.rfind("/")
    return folders


class FolderModel(QStandardItemModel):
    """Folders as a tree of items; ``set_folders`` applies the difference incrementally."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._items: dict[str, QStandardItem] = {}

    def set_folders(self, folders: set[str]) -> None:
        if "" not in self._items:
            root = self._item("", ALL_SECRETS)
            self.appendRow(root)
            self._items[""] = root
        gone = [f for f in self._items if f and f not in folders]
        for folder in sorted(gone, key=lambda f: f.count("/"), reverse=True):  # children first
            item = self._items.pop(folder)
            (item.parent() or self.invisibleRootItem()).removeRow(item.row())
        for folder in sorted(folders - self._items.keys()):  # "a" sorts before "a/b": parents first
            parent_path, _, leaf = folder.rpartition("/")
            parent = self._items[parent_path]
            siblings = [parent.child(i).text() for i in range(parent.rowCount())]
            item = self._item(folder, leaf)
            parent.insertRow(bisect_left(siblings, leaf), item)
            self._items[folder] = item

    @staticmethod
    def _item(path: str, text: str) -> QStandardItem:
        item = QStandardItem(text)
        item.setEditable(False)
        item.setData(path, PATH_ROLE)
        if path:
            item.setToolTip(path)
        return item

    def index_of(self, folder: str) -> QModelIndex:
        item = self._items.get(folder)
        return item.index() if item is not None else QModelIndex()

    def clear(self) -> None:  # noqa: D102 (QStandardItemModel.clear, plus our index)
        self._items = {}
        super().clear()
