"""Where the CLI gets passwords and values: environment, stdin or a prompt, never argv."""

from __future__ import annotations

import os
import sys

from ..core.errors import InvalidInput

MASTER_PASSWORD_ENV = "ITS_MASTER_PASSWORD"
NEW_PASSWORD_ENV = "ITS_NEW_MASTER_PASSWORD"
RECOVERY_CODE_ENV = "ITS_RECOVERY_CODE"
TPM_PIN_ENV = "ITS_TPM_PIN"


class UsageError(InvalidInput):
    """Wrong use of the command line (exit 2)."""


class Stdin:
    """Standard input read once and handed out: first the master password line (with
    --password-stdin), then the rest as a value."""

    def __init__(self) -> None:
        self._data: str | None = None
        self._pos = 0

    def _load(self) -> str:
        if self._data is None:
            try:
                self._data = sys.stdin.buffer.read().decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInput("standard input is not UTF-8 text") from None
        return self._data

    def line(self) -> str:
        data = self._load()
        end = data.find("\n", self._pos)
        end = len(data) if end < 0 else end
        line = data[self._pos:end].rstrip("\r")
        self._pos = min(len(data), end + 1)
        return line

    def rest(self) -> str:
        data = self._load()
        rest, self._pos = data[self._pos:], len(data)
        if rest.endswith("\r\n"):
            return rest[:-2]
        return rest[:-1] if rest.endswith("\n") else rest


def interactive() -> bool:
    return sys.stdin.isatty()


def prompt_secret(label: str, confirm: bool = False) -> str:
    import getpass

    if not interactive():
        raise UsageError(f"{label.lower()} needed but there is no terminal to ask in")
    first = getpass.getpass(f"{label}: ")
    if confirm and getpass.getpass(f"{label} (again): ") != first:
        raise UsageError("the two entries do not match")
    return first


def _password(stdin: Stdin, from_stdin: bool, env_var: str, which_line: str, label: str, confirm: bool) -> str:
    """The environment wins; with --password-stdin the stdin line is consumed either way, so
    it can never end up inside a value read after it; else a prompt."""
    from_line = stdin.line() if from_stdin else None
    if from_line == "":
        raise UsageError(f"--password-stdin: the {which_line} line of standard input is empty")
    env = os.environ.get(env_var)
    if env:
        return env
    if from_line is not None:
        return from_line
    if not interactive():
        raise UsageError(f"no {label.lower()}: set {env_var}, use --password-stdin, or run in a terminal")
    return prompt_secret(label, confirm=confirm)


def master_password(stdin: Stdin, from_stdin: bool, confirm: bool = False) -> str:
    return _password(stdin, from_stdin, MASTER_PASSWORD_ENV, "first", "Master password", confirm)


def new_master_password(stdin: Stdin, from_stdin: bool) -> str:
    return _password(stdin, from_stdin, NEW_PASSWORD_ENV, "second (new password)", "New master password", True)


def warn_if_weak(password: str) -> None:
    if len(password) < 12:
        warn("this master password is short; a long passphrase resists offline guessing far better")


def recovery_code(stdin: Stdin) -> str:
    env = os.environ.get(RECOVERY_CODE_ENV)
    if env:
        return env
    return prompt_secret("Recovery code")


def tpm_pin(confirm: bool = False) -> str:
    """The TPM slot's PIN: ITS_TPM_PIN, else a prompt (confirmed when enrolling)."""
    return os.environ.get(TPM_PIN_ENV) or prompt_secret("TPM PIN", confirm=confirm)


def print_json(doc: object) -> None:
    """What every ``--json`` option prints: indented, one trailing newline."""
    import json

    json.dump(doc, sys.stdout, indent=2)
    sys.stdout.write("\n")


def warn(message: str) -> None:
    print(f"its-vault: warning: {message}", file=sys.stderr)


def info(message: str) -> None:
    print(message, file=sys.stderr)
