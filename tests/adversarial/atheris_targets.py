"""Coverage-guided fuzzing of the parsers with atheris (``make soak``; atheris is optional and
installed by the soak only).

    python tests/adversarial/atheris_targets.py TARGET [libFuzzer options, e.g. -runs=100000]

TARGET is one of: header (the vault file and header parser), dotenv, otpauth, agent (the
agent's frames). Each target lets only its parser's typed errors through; anything else is a
crash, which libFuzzer reports with the input that caused it (a bug to fix, see
tests/adversarial/test_fuzz.py for the same properties under hypothesis).

The functions below need no atheris: tests/adversarial/test_fuzz.py runs them on a few seeds
so they stay in step with the code.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

GOLDEN = Path(__file__).parents[1] / "data" / "golden" / "v1.its"


def _imports():
    from its_desktop.agent import protocol
    from its_desktop.core import dotenv, totp
    from its_desktop.core.crypto import checksum
    from its_desktop.core.errors import VaultCorrupted
    from its_desktop.core.vault import header

    return protocol, dotenv, totp, checksum, VaultCorrupted, header


def header(data: bytes) -> None:
    """The file as it is, and the same with its checksum made right (so the header parser is
    reached); with the golden file's prefix when the input's first byte is odd."""
    _, _, _, checksum, VaultCorrupted, hdr = _imports()
    if data[:1] and data[0] & 1:
        data = GOLDEN.read_bytes()[:14] + data[1:]
    for candidate in (data, data + checksum(data)):
        try:
            envelope = hdr.parse_file(candidate)
        except VaultCorrupted:
            continue
        assert envelope.aad == hdr.body_aad(envelope.header.encode())


def dotenv_target(data: bytes) -> None:
    _, dotenv, _, _, _, _ = _imports()
    try:
        entries = dotenv.parse_dotenv(data.decode("utf-8", "surrogateescape"))
    except dotenv.DotenvError:
        return
    assert len({e.key for e in entries}) == len(entries)


def otpauth(data: bytes) -> None:
    _, _, totp, _, _, _ = _imports()
    text = data.decode("utf-8", "surrogateescape")
    try:
        account = totp.parse_uri(text)
    except totp.OtpError:
        return
    assert totp.parse_uri(totp.build_uri(account)) == account


def agent(data: bytes) -> None:
    """The agent's side of a connection: frames split off a byte stream, then decoded."""
    wire = _imports()[0]
    buffer = bytearray(data)
    while True:
        try:
            payload = wire.take_frame(buffer, wire.MAX_REQUEST)
        except wire.AgentTooLarge:
            return
        if payload is None:
            return
        try:
            message = wire.decode_payload(payload)
        except wire.AgentBadRequest:
            continue
        assert isinstance(message, dict)
        wire.encode_frame(message)


TARGETS: dict[str, Callable[[bytes], None]] = {"header": header, "dotenv": dotenv_target, "otpauth": otpauth,
                                               "agent": agent}


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] not in TARGETS:
        sys.exit(f"usage: {argv[0]} {{{','.join(TARGETS)}}} [libFuzzer options]")
    import atheris

    sys.path.insert(0, str(Path(__file__).parents[2]))
    with atheris.instrument_imports(include=["its_desktop"]):
        _imports()
    target = TARGETS[argv[1]]
    atheris.Setup([argv[0], *argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
