"""Leak scan: find vault values and well-known credentials in plain files.

``walker`` lists the files (``.gitignore`` honoured, binaries, large files and symlinks
skipped), ``matcher`` finds vault values by keyed fingerprints (it never holds a value as
text once built), ``patterns`` finds well-known credential shapes, ``scanner`` ties them
together, ``fix`` rewrites findings as ``its://`` references and ``report`` holds the results,
which never contain a value or a line of text. No Qt here: the CLI and the GUI share it.
"""
