"""``python -m its_desktop``: the GUI, or the CLI when given a subcommand."""

from __future__ import annotations

import sys


def main() -> int:
    args = sys.argv[1:]
    if args and not args[0].startswith("--demo") and args[0] not in ("--help-gui",):
        from .cli.main import harden, main as cli_main

        harden()
        return cli_main(args)
    from .ui.app import main as gui_main

    return gui_main(args)


if __name__ == "__main__":
    sys.exit(main())
