"""The agent's wire protocol, version 1, and where its socket lives (docs/agent-protocol.md).

Both ends use this module, and every bot imports it through ``its_desktop.client``, so it
imports nothing a bare interpreter has not loaded already except the C halves of ``json``
(``_json``): importing ``json`` would load ``re`` and cost a fresh process ~6 ms, more than the
whole read.

A frame is a 4-byte big-endian unsigned length followed by that many bytes of one UTF-8 JSON
object. Requests carry ``v`` (the protocol version), ``op`` and an optional ``id`` echoed in the
reply. A reply carries ``ok``; when false, ``error`` (one of the codes below) and ``message``
(one line for a person).
"""

from __future__ import annotations

import os

from ..core.errors import InvalidInput, SecretNotFound, VaultError, VaultLocked

VERSION = 1
SUPPORTED_VERSIONS = (1,)
MAX_REQUEST = 64 * 1024  # a request frame's payload, at most (the agent's limit)
MAX_REPLY = 16 * 1024 * 1024  # a reply frame's payload, at most (the client's limit)
HEADER_SIZE = 4

AGENT_DIR_ENV = "ITS_AGENT_DIR"
SOCKET_NAME = "agent.sock"
LOCK_NAME = "agent.lock"

# Error codes (docs/agent-protocol.md, "Errors").
DENIED = "denied"
LOCKED = "locked"
NOT_FOUND = "not_found"
BAD_REQUEST = "bad_request"
TOO_LARGE = "too_large"
UNSUPPORTED_VERSION = "unsupported_version"
TIMEOUT = "timeout"
BUSY = "busy"
INTERNAL = "internal"


# -- errors, one class per code --------------------------------------------------------------


class AgentError(VaultError):
    """Base of what the agent (or the way to it) reports; the message is one line."""

    code = INTERNAL

    def __init__(self, message: str) -> None:
        VaultError.__init__(self, message)


class AgentUnavailable(AgentError):
    """No agent answers (none running, the app is locked, or the socket is unreachable)."""

    code = "unavailable"


class AgentAlreadyRunning(AgentError):
    """Another agent (the app or ``its-vault agent``) already serves this user."""

    code = "already_running"


class AccessDenied(AgentError):
    code = DENIED


class AgentLocked(AgentError, VaultLocked):
    code = LOCKED


class AgentSecretNotFound(AgentError, SecretNotFound):
    code = NOT_FOUND

    def __init__(self, message: str, name: str | None = None) -> None:
        AgentError.__init__(self, message)
        self.name = name


class AgentBadRequest(AgentError, InvalidInput):
    code = BAD_REQUEST


class AgentTooLarge(AgentBadRequest):
    code = TOO_LARGE


class AgentUnsupportedVersion(AgentError):
    code = UNSUPPORTED_VERSION


class AgentTimeout(AgentError):
    code = TIMEOUT


class AgentBusy(AgentError):
    code = BUSY


_BY_CODE = {cls.code: cls for cls in (AccessDenied, AgentLocked, AgentSecretNotFound, AgentBadRequest,
                                      AgentTooLarge, AgentUnsupportedVersion, AgentTimeout, AgentBusy)}


def error_from_reply(reply: dict) -> AgentError:
    """The exception a failed reply stands for (an unknown code is an ``AgentError``)."""
    code = reply.get("error")
    message = reply.get("message")
    if not isinstance(message, str) or not message:
        message = f"the agent refused the request ({code})"
    message = message.replace("\n", " ")[:500]
    cls = _BY_CODE.get(code, AgentError) if isinstance(code, str) else AgentError
    if cls is AgentSecretNotFound:
        name = reply.get("name")
        return AgentSecretNotFound(message, name if isinstance(name, str) else None)
    return cls(message)


# -- encoding ----------------------------------------------------------------------------------

def _refuse(obj: object) -> object:
    raise TypeError(f"cannot send a {type(obj).__name__} to the agent")


def _no_constants(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


try:
    import _json

    class _DecodeContext:
        """What the C scanner reads off a ``json.JSONDecoder``: strict, no hooks, no NaN."""

        strict = True
        object_hook = None
        object_pairs_hook = None
        parse_float = float
        parse_int = int
        parse_constant = staticmethod(_no_constants)
        memo: dict = {}

    _encode = _json.make_encoder(None, _refuse, _json.encode_basestring_ascii, None, ":", ",",
                                 False, False, False)
    _scan = _json.make_scanner(_DecodeContext())

    def _dumps(message: dict) -> str:
        return "".join(_encode(message, 0))

    def _loads(text: str) -> object:
        obj, end = _scan(text, 0)
        if end != len(text):
            raise ValueError("extra data after the JSON object")
        return obj

except ImportError:  # an interpreter without the C accelerator
    import json as _json_module

    def _dumps(message: dict) -> str:
        return _json_module.dumps(message, separators=(",", ":"), allow_nan=False, default=_refuse)

    def _loads(text: str) -> object:
        return _json_module.loads(text, parse_constant=_no_constants)


def encode_frame(message: dict) -> bytes:
    """One frame: length, then the message as compact ASCII JSON."""
    payload = _dumps(message).encode("ascii")
    return len(payload).to_bytes(HEADER_SIZE, "big") + payload


def decode_payload(payload: bytes) -> dict:
    """A frame's payload as a JSON object; AgentBadRequest for anything else (bad UTF-8, bad
    JSON, nesting too deep, NaN, a list...)."""
    try:
        text = payload.decode("utf-8").strip(" \t\r\n")
        message = _loads(text)
    except (ValueError, StopIteration, RecursionError):
        raise AgentBadRequest("the frame is not one JSON object in UTF-8") from None
    if not isinstance(message, dict) or (("\\ud" in text or "\\uD" in text) and _lone_surrogate(message)):
        raise AgentBadRequest("the frame is not one JSON object in UTF-8")
    return message


def _lone_surrogate(message: dict) -> bool:
    """Whether a string in ``message`` holds half a surrogate pair (a JSON ``\\ud800`` escape):
    not Unicode, so no name, audit record or reply could carry it. Looked for only when the
    text has such an escape; iterative, so no nesting the scanner accepted can overflow it."""
    stack: list = [message]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack += item.keys()
            stack += item.values()
        elif isinstance(item, list):
            stack += item
    return False


def take_frame(buffer: bytearray, limit: int) -> bytes | None:
    """Remove the first complete frame from ``buffer`` and return its payload (None while it is
    incomplete). AgentTooLarge when the header announces more than ``limit`` bytes: the stream
    cannot be resynchronised after that, so the connection must end."""
    if len(buffer) < HEADER_SIZE:
        return None
    size = int.from_bytes(buffer[:HEADER_SIZE], "big")
    if size > limit:
        raise AgentTooLarge(f"frame of {size} bytes exceeds the limit of {limit}")
    end = HEADER_SIZE + size
    if len(buffer) < end:
        return None
    payload = bytes(buffer[HEADER_SIZE:end])
    del buffer[:end]
    return payload


def error_reply(code: str, message: str, request_id: object = None, **extra: object) -> dict:
    reply: dict = {"v": VERSION, "ok": False, "error": code, "message": message}
    if request_id is not None:
        reply["id"] = request_id
    reply.update(extra)
    return reply


# -- where the socket lives --------------------------------------------------------------------


def agent_dir() -> str:
    """``$ITS_AGENT_DIR``, else ``$XDG_RUNTIME_DIR/its-desktop``, else ``/tmp/its-desktop-UID``.

    Not ``$TMPDIR``: the agent and its clients must agree on the place whatever their
    environment says."""
    folder = os.environ.get(AGENT_DIR_ENV)
    if folder:
        return os.path.abspath(os.path.expanduser(folder))
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime) and os.path.isdir(runtime):
        return os.path.join(runtime, "its-desktop")
    return f"/tmp/its-desktop-{os.getuid()}"


def socket_path(folder: str | None = None) -> str:
    return os.path.join(folder or agent_dir(), SOCKET_NAME)


def private_dir(folder: str) -> str:
    """Create ``folder`` (mode 0700) or check an existing one: a real folder (not a link),
    owned by this user, which nobody else can enter (an open mode is tightened). Raises
    AgentError if another user owns it: under /tmp someone could have made it first."""
    import stat

    try:
        os.makedirs(os.path.dirname(folder) or ".", exist_ok=True)
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode):
        raise AgentError(f"{folder} is not a folder: remove it, or set {AGENT_DIR_ENV}")
    if info.st_uid != os.getuid():
        raise AgentError(f"{folder} belongs to another user: remove it, or set {AGENT_DIR_ENV}")
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(folder, 0o700)
    return folder
