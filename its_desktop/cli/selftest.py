"""``its-vault self-test``: prove an installed or packaged build is complete, headless.

```
its-vault self-test      # one line per check, then "self-test passed" (exit 0) or the failed checks (exit 1)
```

The checks (``its_desktop.selftest``) use a throw-away vault in a temporary folder and the
emulated keys; the user's vault, settings and agent are never touched. ``make package`` runs it
on the built binary.
"""

from __future__ import annotations

import argparse
from typing import Callable


def add_selftest_command(command: Callable[[str, str], argparse.ArgumentParser],
                         common: argparse.ArgumentParser) -> None:
    """The ``self-test`` command, made with ``cli.main``'s ``command`` factory."""
    p = command("self-test", "check that this build works: vault, audit, TOTP, QR, emulated keys, SDKs "
                             "(a throw-away vault; nothing of yours is touched)")
    p.set_defaults(handler=cmd_self_test)


def cmd_self_test(args: argparse.Namespace) -> int:
    from ..selftest import run

    return 0 if run() else 1
