"""Running `its-vault` as a script would, for the CLI test modules: real subprocesses, every
run remembered (for the secret-hygiene checks), exit codes and one-line errors asserted."""

from __future__ import annotations

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ITS_VAULT


@dataclass
class Result:
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str
    seconds: float = 0.0
    pid: int = 0  # the actor pid its audit records carry


def call(*args: str, **options) -> tuple[tuple[str, ...], dict]:
    """One run for `CliRunner.run_all`: the arguments and the keyword options of `run`."""
    return args, options


def expect_ok(result: Result) -> Result:
    assert result.code == 0, f"its-vault {' '.join(result.args)} -> {result.code}: {result.stderr}"
    assert "Traceback" not in result.stderr
    return result


def expect_failure(result: Result, code: int | tuple[int, ...], touch_prompts: bool = False) -> Result:
    """The run exited with `code` (or one of them) and said why in one line. With
    `touch_prompts`, "Touch your ..." lines printed while a key waited may come before it."""
    codes = code if isinstance(code, tuple) else (code,)
    assert result.code in codes, \
        f"its-vault {' '.join(result.args)} -> {result.code}, expected {codes}: {result.stderr}"
    assert_one_line_error(result, touch_prompts)
    return result


def assert_one_line_error(result: Result, touch_prompts: bool = False) -> None:
    assert "Traceback" not in result.stderr
    assert result.stderr.endswith("\n"), result.stderr
    lines = result.stderr.splitlines()
    if touch_prompts:
        assert all(line.startswith("Touch your ") for line in lines[:-1]), result.stderr
    else:
        assert len(lines) == 1, f"stderr of {result.args} is not one line: {result.stderr!r}"
    assert lines[-1].startswith("its-vault: error: "), result.stderr


def error_line(result: Result) -> str:
    return result.stderr.splitlines()[-1]


class CliRunner:
    """Runs `its-vault` in a private environment and remembers every run."""

    def __init__(self, env: dict[str, str], tmp_path: Path) -> None:
        self.env = env
        self.tmp_path = tmp_path
        self.vault = Path(env["ITS_VAULT_PATH"])
        self.results: list[Result] = []

    def run(self, *args: str, input: str | None = None, env: dict[str, str] | None = None,
            unset: tuple[str, ...] = ()) -> Result:
        full_env = {**self.env, **(env or {})}
        for name in unset:
            full_env.pop(name, None)
        started = time.monotonic()
        with subprocess.Popen([*ITS_VAULT, *args], stdin=subprocess.DEVNULL if input is None else subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env,
                              cwd=self.tmp_path) as proc:
            out, err = proc.communicate(None if input is None else input.encode("utf-8"), timeout=120)
        result = Result(args, proc.returncode, out.decode("utf-8"), err.decode("utf-8"),
                        time.monotonic() - started, proc.pid)
        self.results.append(result)
        return result

    def run_all(self, *calls: tuple[tuple[str, ...], dict]) -> list[Result]:
        """Independent runs side by side; results in the order of `calls`."""
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(lambda c: self.run(*c[0], **c[1]), calls))

    def ok(self, *args: str, **options) -> Result:
        return expect_ok(self.run(*args, **options))

    def fails(self, code: int | tuple[int, ...], *args: str, **options) -> Result:
        return expect_failure(self.run(*args, **options), code)

    def all_fail(self, code: int | tuple[int, ...], *calls: tuple[tuple[str, ...], dict]) -> list[Result]:
        return [expect_failure(result, code) for result in self.run_all(*calls)]
