"""The ``its-vault`` command line: the only place that maps errors to exit codes."""
