"""The agent's server: one thread, one selector, every socket non-blocking.

A request is answered from memory on the socket thread (a grant check, a dictionary lookup in
the unlocked vault), so a read costs tens of microseconds and no client can hold up another:
a client that sends half a frame, sends garbage, stops reading its replies or waits for the
user's approval only ever stalls its own connection. The slow parts run elsewhere:

* identifying a new client (``/proc``, hashing its executable and script) on a small pool;
* audit records and grant changes on a writer thread, which batches the records of a burst of
  requests into one append (one fsync) once the burst is over;
* listings with metadata (they read the audit log for last-access times) on the pool.

The vault comes from ``vault_source`` at every request (the app's vault changes at each unlock
and is None while locked), and the grants in force are re-read whenever its generation moves
(``its-vault grant add`` in another process, an approval saved by this agent).
"""

from __future__ import annotations

import collections
import fcntl
import logging
import os
import select
import selectors
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol

from .. import __version__
from ..core.audit import Actor, AuditEvent, AuditFiles, record_pending
from ..core.errors import FieldNotFound, InvalidInput, SecretNotFound, VaultError, VaultLocked
from ..core.vault.storage import file_stamp, writer_lock
from . import protocol as wire
from .grants import ONCE, Grant, Policy, add_to_settings, grant_command, load_grants, pattern_matches, \
    remove_from_settings, suggest_pattern
from .listing import listing_rows
from .peer import ClientIdentity, Hasher, Peer, ProcessGone, Unidentifiable, identify, peer_credentials

if TYPE_CHECKING:
    from ..core.secrets import Secret
    from ..core.vault.api import Vault

log = logging.getLogger(__name__)

SERVER = f"its-desktop/{__version__}"
MAX_BUFFERED = 4 * (wire.MAX_REQUEST + wire.HEADER_SIZE)  # unread request bytes per connection
FRAMES_PER_TURN = 32  # requests handled for one connection before the others get their turn
CHECK_EVERY = 0.25  # seconds between checks of timeouts
PENDING_MAX = 100  # audit records written one by one to the pending file when the vault locked


@dataclass(frozen=True)
class ApprovalRequest:
    """A question for the user: may ``client`` read (or list) ``pattern``? ``name`` is what it
    asked for (a secret, or a folder prefix to list)."""

    id: str
    client: ClientIdentity
    name: str
    pattern: str
    action: str  # "read" or "list"


@dataclass(frozen=True)
class Decision:
    """The user's answer: ``deny``, ``once``, ``always`` or a duration (``8h``), for
    ``pattern`` (None: the one asked about)."""

    choice: str
    pattern: str | None = None


DENY = Decision("deny")


class Approver(Protocol):
    """Asks the user (the app's dialog). Both methods are called on the agent's thread and
    must not block; the answer comes back through ``AgentServer.resolve`` from any thread."""

    def ask(self, request: ApprovalRequest) -> None: ...

    def cancel(self, request_id: str) -> None: ...


class _Pending:
    __slots__ = ("request", "waiters", "deadline")

    def __init__(self, request: ApprovalRequest, deadline: float) -> None:
        self.request = request
        self.waiters: list[_Conn] = []
        self.deadline = deadline


class _Conn:
    __slots__ = ("sock", "peer", "client", "actor", "inbuf", "outbuf", "cache", "cache_epoch", "waiting", "busy",
                 "eof", "events", "closed", "draining", "via", "opened", "last_seen", "partial_since", "stalled_since")

    def __init__(self, sock: socket.socket, peer: Peer, now: float) -> None:
        self.sock = sock
        self.peer = peer
        self.client: ClientIdentity | None = None
        self.actor: Actor | None = None
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.cache: dict[str, Grant] = {}
        self.cache_epoch = -1
        self.waiting: tuple[_Pending, dict, Any] | None = None  # for the user's approval
        self.busy = False  # a reply is being made on the pool
        self.eof = False  # the client will send nothing more (it may still read)
        self.events = selectors.EVENT_READ  # what the selector watches for
        self.closed = False
        self.via = ""  # "via agent: python bot.py (pid 1234) in /srv/bots": audit details start so
        self.draining: float | None = None  # saying goodbye: input discarded, closed at EOF or then
        self.opened = now
        self.last_seen = now
        self.partial_since: float | None = None
        self.stalled_since: float | None = None


class AgentServer:
    def __init__(self, vault_source: Callable[[], Vault | None], *, mode: str = "headless",
                 approver: Approver | None = None, on_lock: Callable[[], None] | None = None,
                 on_lockdown: Callable[[], None] | None = None,
                 folder: str | None = None, approval_timeout: float = 120.0, frame_timeout: float = 10.0,
                 idle_timeout: float = 3600.0, max_connections: int = 256, audit_quiet: float = 0.02,
                 audit_max_age: float = 2.0) -> None:
        self.vault_source = vault_source
        self.mode = mode
        self.approver = approver
        self.on_lock = on_lock
        self.on_lockdown = on_lockdown  # after a lockdown (vault changed, sessions revoked); else on_lock
        self.folder = folder or wire.agent_dir()
        self.approval_timeout = approval_timeout
        self.frame_timeout = frame_timeout
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.writer = AuditWriter(audit_quiet, audit_max_age)
        self._uid = os.getuid()
        self._hasher = Hasher()
        self._policy = Policy()
        self._policy_vault: Vault | None = None
        self._policy_generation = -1
        self._last_path: Path | None = None
        # Secrets looked up since the vault file last changed: a read takes no vault lock, so
        # it never waits behind the audit writer's append (which holds the vault's guard).
        self._secrets: dict[str, Secret] = {}
        self._secrets_of: tuple = ()
        self._conns: dict[int, _Conn] = {}
        self._pending: dict[str, _Pending] = {}
        self._backlog: set[_Conn] = set()
        self._inbox: collections.deque[Callable[[], None]] = collections.deque()
        self._locked = False
        self._stopping = False
        self._next_id = 0
        self._thread: threading.Thread | None = None
        self._listener: socket.socket | None = None
        self._lock_fd: int | None = None
        self._socket_inode: int | None = None
        self._ops = {"hello": self._op_hello, "status": self._op_status, "get": self._op_get,
                     "list": self._op_list, "lock": self._op_lock,
                     "lockdown": self._op_lockdown}

    @property
    def socket_path(self) -> str:
        return wire.socket_path(self.folder)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Take the agent lock, bind the socket (0600 in a 0700 folder) and serve on a thread of
        its own. AgentAlreadyRunning if another agent holds the lock."""
        wire.private_dir(self.folder)
        self._lock_fd = _take_lock(os.path.join(self.folder, wire.LOCK_NAME))
        try:
            path = self.socket_path
            try:
                os.unlink(path)  # a stale socket: its agent died without removing it
            except FileNotFoundError:
                pass
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(path)
            os.chmod(path, 0o600)
            self._socket_inode = os.stat(path).st_ino
            listener.listen(128)
            listener.setblocking(False)
        except BaseException:
            os.close(self._lock_fd)
            self._lock_fd = None
            raise
        self._listener = listener
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(listener, selectors.EVENT_READ, "listener")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="its-agent-work")
        self.writer.start()
        self._thread = threading.Thread(target=self._serve, name="its-agent", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving: close every connection, write the audit records still queued, remove
        the socket, release the lock. Safe to call twice."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping = True
        self._wake()
        thread.join(10)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.writer.stop()
        try:
            if os.stat(self.socket_path).st_ino == self._socket_inode:
                os.unlink(self.socket_path)
        except FileNotFoundError:
            pass
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def resolve(self, request_id: str, decision: Decision) -> None:
        """The user's answer to an approval request (from any thread)."""
        self._call_soon(lambda: self._resolved(request_id, decision))

    def revoke_sessions(self) -> None:
        """Forget every grant given for a session ("once") and every pending question: what
        locking the vault does (from any thread)."""
        self._call_soon(self._revoke)

    def flush_audit(self, timeout: float = 10.0) -> bool:
        """Write the queued audit records now; True once they are written."""
        return self.writer.flush(timeout)

    # -- the loop ----------------------------------------------------------------------------

    def _call_soon(self, fn: Callable[[], None]) -> None:
        self._inbox.append(fn)
        self._wake()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError, AttributeError):
            pass  # already awake (or not started)

    def _serve(self) -> None:
        next_check = time.monotonic() + CHECK_EVERY
        try:
            while not self._stopping:
                if self._backlog or self._inbox:
                    timeout: float | None = 0
                elif self._conns or self._pending:
                    timeout = max(0.0, next_check - time.monotonic())
                else:
                    timeout = None
                for key, mask in self._selector.select(timeout):
                    data = key.data
                    if data == "listener":
                        _logged(self._accept)
                    elif data == "wake":
                        try:
                            while self._wake_r.recv(4096):
                                pass
                        except BlockingIOError:
                            pass
                    else:
                        self._guarded(data, self._on_ready, data, mask)
                while self._inbox:
                    _logged(self._inbox.popleft())
                if self._backlog:
                    for conn in list(self._backlog):
                        self._backlog.discard(conn)
                        self._guarded(conn, self._process, conn)
                now = time.monotonic()
                if now >= next_check:
                    self._check_deadlines(now)
                    next_check = now + CHECK_EVERY
        except Exception:  # a bug: say so in the log, and stop cleanly rather than spin
            log.exception("the agent's loop failed")
        finally:
            self._shutdown_loop()

    def _guarded(self, conn: _Conn, fn: Callable, *args: Any) -> None:
        """One connection's mistake (or ours on its behalf) ends that connection, never the agent."""
        try:
            fn(*args)
        except Exception:
            log.exception("agent request failed")
            self._send_error(conn, wire.INTERNAL, "internal error in the agent (see its log)")
            self._close(conn)

    def _shutdown_loop(self) -> None:
        for pending in list(self._pending.values()):
            self._cancel_pending(pending, wire.LOCKED, "the agent stopped")
        for conn in list(self._conns.values()):
            self._close(conn)
        for sock in (self._listener, self._wake_r, self._wake_w):
            try:
                self._selector.unregister(sock)
            except (KeyError, ValueError):
                pass
            sock.close()
        self._selector.close()

    def _accept(self) -> None:
        assert self._listener is not None
        for _ in range(64):
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:  # out of file descriptors: the others keep being served
                log.warning("agent cannot accept a connection: %s", error.strerror)
                return
            sock.setblocking(False)
            try:
                peer = peer_credentials(sock)
            except OSError:
                sock.close()
                continue
            conn = _Conn(sock, peer, time.monotonic())
            if peer.uid != self._uid:
                self._conns[sock.fileno()] = conn
                self._selector.register(sock, selectors.EVENT_READ, conn)
                self._refuse(conn)
                continue
            if len(self._conns) >= self.max_connections:
                _send_and_close(sock, wire.error_reply(wire.BUSY, "the agent has too many connections; try again"))
                continue
            self._conns[sock.fileno()] = conn
            self._selector.register(sock, selectors.EVENT_READ, conn)
            self._pool.submit(self._identify, conn)

    def _refuse(self, conn: _Conn) -> None:
        """Another user: refused before a byte of its request is looked at, and audited."""
        peer = conn.peer
        self._send_error(conn, wire.DENIED, "this agent serves only the user who unlocked the vault")
        self._goodbye(conn)
        self._audit(Actor("agent", peer.pid, ""), "agent-connect", None, "denied",
                    f"refused a process of uid {peer.uid}: not the vault owner")

    def _goodbye(self, conn: _Conn) -> None:
        """End a connection after the reply already queued: stop handling its requests, shut
        the sending side once the reply is out, and close when the client closes (or in 2 s).
        Closing at once would discard what it sent meanwhile, and the kernel would then reset
        the connection before the client reads the reply."""
        conn.inbuf.clear()
        conn.draining = time.monotonic() + 2.0
        if not conn.outbuf:
            _shut_writing(conn.sock)

    def _identify(self, conn: _Conn) -> None:  # on the pool
        try:
            client: ClientIdentity | None = identify(conn.peer, self._hasher)
        except ProcessGone:
            client = None
        except Unidentifiable:
            self._call_soon(lambda: self._unidentifiable(conn))
            return
        self._call_soon(lambda: self._identified(conn, client))

    def _unidentifiable(self, conn: _Conn) -> None:
        if conn.closed:
            return
        pid = conn.peer.pid
        self._send_error(conn, wire.DENIED, f"access denied: cannot identify process {pid} (its /proc entry is not "
                                            "readable: is it marked non-dumpable?)")
        self._goodbye(conn)
        self._audit(Actor("agent", pid, ""), "agent-connect", None, "denied", f"pid {pid} could not be identified")

    def _identified(self, conn: _Conn, client: ClientIdentity | None) -> None:
        if conn.closed:
            return
        if client is None:
            self._close(conn)
            return
        conn.client = client
        conn.actor = Actor("agent", client.pid, client.exe)
        conn.via = f"via agent: {self._who(conn)}"
        self._guarded(conn, self._process, conn)

    def _on_ready(self, conn: _Conn, mask: int) -> None:
        if mask & selectors.EVENT_WRITE and not conn.closed:
            self._flush(conn)
        if mask & selectors.EVENT_READ and not conn.closed:
            try:
                data = conn.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._close(conn)
                return
            if conn.draining is not None:
                if not data:
                    self._close(conn)
                return
            if not data:
                if _peer_gone(conn.sock):  # it closed (or died): nobody to answer
                    self._close(conn)
                    return
                conn.eof = True  # it only shut its sending side: answer what it sent, then close
                self._watch(conn)
                self._process(conn)
                return
            conn.inbuf += data
            conn.last_seen = time.monotonic()
            if len(conn.inbuf) > MAX_BUFFERED:
                self._bad(conn, wire.TOO_LARGE, "too many unanswered bytes on this connection", fatal=True)
                return
            self._process(conn)

    def _process(self, conn: _Conn) -> None:
        """Handle the complete frames waiting on ``conn``, a few at a time."""
        handled = 0
        while (conn.client is not None and conn.waiting is None and not conn.busy and not conn.closed
               and not conn.outbuf and conn.draining is None):
            try:
                payload = wire.take_frame(conn.inbuf, wire.MAX_REQUEST)
            except wire.AgentTooLarge as error:
                self._bad(conn, wire.TOO_LARGE, str(error), fatal=True)
                return
            if payload is None:
                break
            self._handle(conn, payload)
            handled += 1
            if handled >= FRAMES_PER_TURN:
                self._backlog.add(conn)
                break
        if conn.inbuf and conn.partial_since is None:
            conn.partial_since = time.monotonic()
        elif not conn.inbuf:
            conn.partial_since = None
        if (conn.eof and not conn.closed and conn.client is not None and conn.waiting is None and not conn.busy
                and not conn.outbuf and conn not in self._backlog and conn.draining is None):
            self._close(conn)  # everything it sent is answered (a partial frame never will be)

    def _watch(self, conn: _Conn) -> None:
        """Watch for what the connection needs: reading until EOF, writing while replies wait."""
        events = (0 if conn.eof else selectors.EVENT_READ) | (selectors.EVENT_WRITE if conn.outbuf else 0)
        if events == conn.events:
            return
        if conn.events and events:
            self._selector.modify(conn.sock, events, conn)
        elif events:
            self._selector.register(conn.sock, events, conn)
        else:
            self._selector.unregister(conn.sock)
        conn.events = events

    def _check_deadlines(self, now: float) -> None:
        for pending in [p for p in self._pending.values() if now >= p.deadline]:
            self._cancel_pending(pending, wire.TIMEOUT,
                                 f"nobody answered the approval request within {self.approval_timeout:g} s")
        for conn in list(self._conns.values()):
            if conn.draining is not None:
                if now >= conn.draining:
                    self._close(conn)
            elif conn.client is None and now - conn.opened > 30:
                self._close(conn)  # /proc or hashing stuck: do not hold a slot forever
            elif (conn.waiting is None and conn.partial_since is not None
                  and now - conn.partial_since > self.frame_timeout):
                self._close(conn)  # half a frame for too long (slowloris)
            elif conn.stalled_since is not None and now - conn.stalled_since > 6 * self.frame_timeout:
                self._close(conn)  # does not read its replies
            elif conn.waiting is None and now - conn.last_seen > self.idle_timeout:
                self._close(conn)

    # -- sending -------------------------------------------------------------------------------

    def _send(self, conn: _Conn, message: dict) -> None:
        if conn.closed:
            return
        data = wire.encode_frame(message)
        if conn.outbuf:
            conn.outbuf += data
            return
        try:
            sent = conn.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._close(conn)
            return
        if sent < len(data):
            conn.outbuf += data[sent:]
            conn.stalled_since = time.monotonic()
            self._watch(conn)

    def _flush(self, conn: _Conn) -> None:
        try:
            sent = conn.sock.send(conn.outbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        del conn.outbuf[:sent]
        if conn.outbuf:
            return
        conn.stalled_since = None
        if conn.draining is not None:
            _shut_writing(conn.sock)
        self._watch(conn)
        self._process(conn)

    def _send_error(self, conn: _Conn, code: str, message: str, request_id: Any = None, **extra: Any) -> None:
        self._send(conn, wire.error_reply(code, message, request_id, **extra))

    def _close(self, conn: _Conn) -> None:
        if conn.closed:
            return
        conn.closed = True
        self._backlog.discard(conn)
        if conn.waiting is not None:
            pending = conn.waiting[0]
            if conn in pending.waiters:
                pending.waiters.remove(conn)
            if not pending.waiters and self._pending.pop(pending.request.id, None) is not None:
                self._tell_approver_cancel(pending.request.id)
            conn.waiting = None
        self._conns.pop(conn.sock.fileno(), None)
        if conn.events:
            self._selector.unregister(conn.sock)
            conn.events = 0
        conn.sock.close()

    def _bad(self, conn: _Conn, code: str, message: str, request_id: Any = None, fatal: bool = False) -> None:
        """A malformed request: an error reply and an audit record; a fatal one (the frame
        boundaries are lost) ends the connection once the reply is out."""
        self._send_error(conn, code, message, request_id)
        self._audit(conn.actor or Actor("agent", conn.peer.pid, ""), "agent-request", None, code,
                    f"{message[:120]} ({self._who(conn)})")
        if fatal:
            self._goodbye(conn)

    # -- requests --------------------------------------------------------------------------------

    def _handle(self, conn: _Conn, payload: bytes) -> None:
        try:
            request = wire.decode_payload(payload)
        except wire.AgentBadRequest as error:
            self._bad(conn, wire.BAD_REQUEST, str(error))
            return
        request_id = request.get("id")
        if not isinstance(request_id, (int, str)) or isinstance(request_id, bool) or \
                (isinstance(request_id, str) and len(request_id) > 64):
            request_id = None
        version = request.get("v")
        if isinstance(version, bool) or not isinstance(version, int) or version not in wire.SUPPORTED_VERSIONS:
            self._send_error(conn, wire.UNSUPPORTED_VERSION,
                             f"protocol version {str(request.get('v'))[:20]} is not supported (this agent speaks 1)",
                             request_id, versions=list(wire.SUPPORTED_VERSIONS))
            self._audit(conn.actor, "agent-request", None, wire.UNSUPPORTED_VERSION, self._who(conn))
            return
        op = self._ops.get(request.get("op")) if isinstance(request.get("op"), str) else None
        if op is None:
            self._bad(conn, wire.BAD_REQUEST, f"unknown op '{str(request.get('op'))[:40]}'", request_id)
            return
        op(conn, request, request_id)

    def _ok(self, conn: _Conn, request_id: Any, **fields: Any) -> None:
        reply: dict[str, Any] = {"v": wire.VERSION, "ok": True}
        if request_id is not None:
            reply["id"] = request_id
        reply.update(fields)
        self._send(conn, reply)

    def _op_hello(self, conn: _Conn, request: dict, request_id: Any) -> None:
        self._ok(conn, request_id, version=wire.VERSION, versions=list(wire.SUPPORTED_VERSIONS), server=SERVER,
                 mode=self.mode, max_request=wire.MAX_REQUEST)

    def _op_status(self, conn: _Conn, request: dict, request_id: Any) -> None:
        vault = self._vault()
        self._ok(conn, request_id, locked=vault is None or self._locked, mode=self.mode, pid=os.getpid(),
                 server=SERVER, vault=str(vault.path) if vault is not None else None)

    def _op_lock(self, conn: _Conn, request: dict, request_id: Any) -> None:
        self._audit(conn.actor, "lock", None, "ok", f"asked through the agent by {self._who(conn)}")
        self._locked = True
        self._revoke()
        self._ok(conn, request_id)
        if self.on_lock is not None:
            self.on_lock()

    def _op_lockdown(self, conn: _Conn, request: dict, request_id: Any) -> None:
        """Emergency lockdown of the unlocked vault (grants revoked, every secret marked
        "rotate now"), then a lock. A locked agent replies ``done: false``: the caller then
        unlocks the vault itself to do it."""
        from .lockdown import lockdown

        vault = self._vault()
        report = None
        if vault is not None:
            try:
                report = lockdown(vault)
            except VaultError as exc:
                self._send_error(conn, wire.INTERNAL, f"lockdown failed: {exc}", request_id)
                return
        self._audit(conn.actor, "lock", None, "ok", f"lockdown asked through the agent by {self._who(conn)}")
        self._locked = True
        self._revoke()
        self._ok(conn, request_id, done=report is not None,
                 grants_revoked=report.grants_revoked if report else 0,
                 secrets_marked=report.secrets_marked if report else 0)
        callback = self.on_lockdown or self.on_lock
        if callback is not None:
            callback()

    def _op_get(self, conn: _Conn, request: dict, request_id: Any) -> None:
        name, field, with_fields = request.get("name"), request.get("field"), request.get("with_fields", False)
        if not isinstance(name, str) or not 0 < len(name) <= 1024 or not (field is None or isinstance(field, str)) \
                or not isinstance(with_fields, bool):
            self._bad(conn, wire.BAD_REQUEST, "get needs a name (and optionally a field) as strings", request_id)
            return
        vault = self._vault()
        if vault is None:
            self._refuse_locked(conn, "read", name, request_id)
            return
        try:
            secret = self._secret(vault, name)
        except VaultLocked:
            self._refuse_locked(conn, "read", name, request_id)
            return
        except VaultError as error:
            self._send_error(conn, wire.INTERNAL, str(error), request_id)
            return
        self._sync_policy(vault)
        now = time.time()
        grant = self._grant_for(conn, name, now)
        if grant is None:
            self._no_grant(conn, request, request_id, name, "read")
            return
        detail = f"{conn.via}, grant {grant.id}"
        if secret is None:
            self._audit(conn.actor, "read", name, "not-found", detail, vault)
            self._send_error(conn, wire.NOT_FOUND, f"no secret named '{name}'", request_id, name=name)
            return
        if field is None:
            value = secret.value
        else:
            try:
                value = secret.field(field)
            except FieldNotFound as error:
                self._audit(conn.actor, "read", name, "not-found", detail, vault)
                self._send_error(conn, wire.NOT_FOUND, str(error), request_id, name=name)
                return
        self._audit(conn.actor, "read", name, "ok", detail, vault)
        extra: dict[str, Any] = {}
        if with_fields:
            extra["fields"] = dict(secret.fields)
        if secret.expires_at is not None and secret.expires_at <= datetime.now(timezone.utc):
            extra["expired"] = secret.expires_at.date().isoformat()
        self._ok(conn, request_id, value=value, **extra)

    def _op_list(self, conn: _Conn, request: dict, request_id: Any) -> None:
        prefix, meta, complete = request.get("prefix", ""), request.get("meta", False), request.get("complete", False)
        if not isinstance(prefix, str) or len(prefix) > 1024 or not isinstance(meta, bool) \
                or not isinstance(complete, bool):
            self._bad(conn, wire.BAD_REQUEST, "list takes a prefix (a string), meta and complete (true or false)",
                      request_id)
            return
        vault = self._vault()
        if vault is None:
            self._refuse_locked(conn, "list", prefix or None, request_id)
            return
        try:
            names = [n for n in vault.names() if n.startswith(prefix)]
        except VaultLocked:
            self._refuse_locked(conn, "list", prefix or None, request_id)
            return
        self._sync_policy(vault)
        now = time.time()
        allowed = [n for n in names if self._grant_for(conn, n, now) is not None]
        covered = self._policy.covers_prefix(conn.client, prefix, now)
        if not covered and (complete or not allowed):
            self._no_grant(conn, request, request_id, prefix, "list")
            return
        self._audit(conn.actor, "list", prefix or None, "ok", f"{conn.via}: {len(allowed)} names", vault)
        if not meta:
            self._ok(conn, request_id, names=allowed)
            return

        def rows() -> None:  # on the pool: reads the audit log for last-access times
            try:
                result: dict = {"v": wire.VERSION, "ok": True, "rows": listing_rows(vault, allowed)}
                if request_id is not None:
                    result["id"] = request_id
            except VaultError as error:
                result = wire.error_reply(wire.LOCKED if isinstance(error, VaultLocked) else wire.INTERNAL,
                                          str(error), request_id)
            self._call_soon(lambda: self._send_then_resume(conn, result))

        conn.busy = True  # the connection's next requests wait until the rows are out
        self._pool.submit(rows)

    def _send_then_resume(self, conn: _Conn, reply: dict) -> None:
        conn.busy = False
        self._send(conn, reply)
        self._process(conn)

    def _refuse_locked(self, conn: _Conn, op: str, name: str | None, request_id: Any) -> None:
        self._audit(conn.actor, op, name, "locked", f"via agent: {self._who(conn)}")
        self._send_error(conn, wire.LOCKED, "the vault is locked: unlock it in ITS Desktop or start 'its-vault agent'",
                         request_id)

    # -- grants and approvals ----------------------------------------------------------------------

    def _vault(self) -> Vault | None:
        if self._locked:
            return None
        vault = self.vault_source()
        if vault is None or vault.is_locked:
            if self._secrets_of:
                self._secrets.clear()
                self._secrets_of = ()
            return None
        self._last_path = vault.path
        return vault

    def _secret(self, vault: Vault, name: str) -> Secret | None:
        """``vault.peek(name)``, remembered until the vault file or generation changes."""
        seen = (vault, vault.generation, file_stamp(vault.path))
        if seen != self._secrets_of:
            vault.refresh()  # another process saved: the vault re-reads (under its guard)
            self._secrets.clear()
            self._secrets_of = seen
        secret = self._secrets.get(name)
        if secret is None:
            try:
                secret = vault.peek(name)
            except SecretNotFound:
                return None
            self._secrets[name] = secret
        return secret

    def _sync_policy(self, vault: Vault) -> None:
        if vault is self._policy_vault and vault.generation == self._policy_generation:
            return
        try:
            settings = vault.settings()
        except VaultError:
            return
        self._policy.load(load_grants(settings))
        self._policy_vault, self._policy_generation = vault, vault.generation

    def _grant_for(self, conn: _Conn, name: str, now: float) -> Grant | None:
        policy = self._policy
        if conn.cache_epoch != policy.epoch:
            conn.cache.clear()
            conn.cache_epoch = policy.epoch
        grant = conn.cache.get(name)
        if grant is not None and not grant.expired(now):
            return grant
        assert conn.client is not None
        grant = policy.find(conn.client, name, now)
        if policy.to_remove:
            self._remove_used_once_grants()
        if conn.cache_epoch != policy.epoch:
            conn.cache.clear()
            conn.cache_epoch = policy.epoch
        if grant is not None:
            conn.cache[name] = grant
        return grant

    def _remove_used_once_grants(self) -> None:
        ids, self._policy.to_remove = self._policy.to_remove, []
        vault = self._policy_vault
        if vault is None:
            return
        for grant_id in ids:
            def remove(grant_id: str = grant_id) -> None:
                vault.change_settings(lambda s: remove_from_settings(s, grant_id), op="grant-use",
                                      detail=f"grant {grant_id} (once) taken by its first client")
            self.writer.task(remove)

    def _no_grant(self, conn: _Conn, request: dict, request_id: Any, name: str, action: str) -> None:
        client = conn.client
        assert client is not None
        pattern = suggest_pattern(name) if action == "read" else f"{name}*"
        if request.get("prompt", True) is not False and self.approver is not None:
            self._park(conn, request, request_id, name, pattern, action)
            return
        what = f"read '{name}'" if action == "read" else (f"list '{name}*'" if name else "list the vault")
        if self.approver is None:
            message = (f"access denied: no grant lets {client.command} in {client.cwd} {what}; "
                       f"allow it with: {grant_command(client, pattern)}")
        else:
            message = (f"access denied: no grant lets {client.command} {what}, and it asked not to be "
                       "approved interactively (approve it in ITS Desktop, or use 'its-vault grant add')")
        self._deny(conn, action, name, request_id, message, "no grant")

    def _deny(self, conn: _Conn, action: str, name: str | None, request_id: Any, message: str, why: str) -> None:
        self._audit(conn.actor, action, name or None, "denied", f"via agent: {self._who(conn)}: {why}")
        self._send_error(conn, wire.DENIED, message, request_id)

    def _park(self, conn: _Conn, request: dict, request_id: Any, name: str, pattern: str, action: str) -> None:
        """Hold the request until the user answers; one question per client and scope."""
        client = conn.client
        assert client is not None
        for pending in self._pending.values():
            asked = pending.request
            if (asked.client.key == client.key and asked.client.session == client.session and asked.action == action
                    and (pattern_matches(asked.pattern, name) if action == "read" else asked.pattern == pattern)):
                break
        else:
            self._next_id += 1
            request_obj = ApprovalRequest(f"a{self._next_id}", client, name, pattern, action)
            pending = _Pending(request_obj, time.monotonic() + self.approval_timeout)
            self._pending[request_obj.id] = pending
            try:
                self.approver.ask(request_obj)  # type: ignore[union-attr]
            except Exception:
                log.exception("the approver failed")
                self._pending.pop(request_obj.id, None)
                self._deny(conn, action, name, request_id, "access denied: the approval could not be asked",
                           "no approver")
                return
        pending.waiters.append(conn)
        conn.waiting = (pending, request, request_id)

    def _resolved(self, request_id: str, decision: Decision) -> None:
        pending = self._pending.pop(request_id, None)
        if pending is None:
            return
        asked = pending.request
        grant = None
        if decision.choice != "deny":
            try:
                grant = Grant.for_client(asked.client, decision.pattern or asked.pattern, decision.choice)
            except InvalidInput:
                log.warning("ignored an approval with an invalid scope or duration")
        vault = self._vault()
        if grant is None or vault is None:
            for conn in list(pending.waiters):
                rid = _waiting_id(pending, conn)
                conn.waiting = None
                if grant is None:
                    self._deny(conn, asked.action, asked.name, rid, "access denied by the user", "denied by the user")
                else:
                    self._refuse_locked(conn, asked.action, asked.name or None, rid)
                self._guarded(conn, self._process, conn)
            return
        self._policy.add_session(grant)
        if grant.ttl != ONCE:
            client = asked.client

            def persist() -> None:
                vault.change_settings(lambda s: add_to_settings(s, grant), op="grant-add", name=grant.pattern,
                                      detail=f"grant {grant.id} ({grant.ttl}) approved in the app for {client.command}")
            self.writer.task(persist)
        for conn in list(pending.waiters):
            _, request, rid = conn.waiting  # type: ignore[misc]
            conn.waiting = None
            self._guarded(conn, self._handle_again, conn, {**request, "prompt": False}, rid)

    def _handle_again(self, conn: _Conn, request: dict, request_id: Any) -> None:
        self._ops[request["op"]](conn, request, request_id)
        self._process(conn)

    def _cancel_pending(self, pending: _Pending, code: str, message: str) -> None:
        self._pending.pop(pending.request.id, None)
        self._tell_approver_cancel(pending.request.id)
        for conn in list(pending.waiters):
            rid = _waiting_id(pending, conn)
            conn.waiting = None
            self._audit(conn.actor, pending.request.action, pending.request.name or None, "denied",
                        f"via agent: {self._who(conn)}: {message}")
            self._send_error(conn, code, message, rid)
            self._guarded(conn, self._process, conn)

    def _tell_approver_cancel(self, request_id: str) -> None:
        if self.approver is not None:
            try:
                self.approver.cancel(request_id)
            except Exception:
                log.exception("the approver failed to cancel a request")

    def _revoke(self) -> None:
        self._policy.revoke_sessions()
        for pending in list(self._pending.values()):
            self._cancel_pending(pending, wire.LOCKED, "the vault was locked")

    # -- audit -------------------------------------------------------------------------------------

    @staticmethod
    def _who(conn: _Conn) -> str:
        client = conn.client
        return f"{client.command} (pid {client.pid}) in {client.cwd}" if client else f"pid {conn.peer.pid}"

    def _audit(self, actor: Actor | None, op: str, name: str | None, outcome: str, detail: str,
               vault: Vault | None = None) -> None:
        vault = vault if vault is not None else self._vault()
        path = vault.path if vault is not None else self._last_path
        if path is None:
            return  # never saw a vault: nothing to chain to
        self.writer.event((time.time(), time.monotonic(), vault, path, op, name, outcome,
                           actor or Actor("agent", 0, ""), detail))


def _logged(fn: Callable[[], None]) -> None:
    """Run a step of the loop that belongs to no one connection; a bug in it is logged, and
    the agent goes on serving."""
    try:
        fn()
    except Exception:
        log.exception("agent step failed")


def _waiting_id(pending: _Pending, conn: _Conn) -> Any:
    return conn.waiting[2] if conn.waiting is not None and conn.waiting[0] is pending else None


def _peer_gone(sock: socket.socket) -> bool:
    """Did the peer close its end altogether (POLLHUP), not just shut its sending side?"""
    poller = select.poll()
    poller.register(sock, select.POLLOUT)
    return any(events & (select.POLLHUP | select.POLLERR) for _, events in poller.poll(0))


def _shut_writing(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _send_and_close(sock: socket.socket, message: dict) -> None:
    try:
        sock.send(wire.encode_frame(message))
    except OSError:
        pass
    sock.close()


def _take_lock(path: str) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
        finally:
            os.close(fd)
        raise wire.AgentAlreadyRunning(
            f"an agent is already running (pid {holder}): stop it with 'its-vault lock'") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


# -- the writer thread ---------------------------------------------------------------------------

_Event = tuple  # (time, monotonic, vault, path, op, name, outcome, actor, detail)


class AuditWriter:
    """Audit records and vault changes, written off the socket thread.

    Records wait until requests pause for ``quiet`` seconds (or the oldest is ``max_age`` old),
    then go in one append per hundred: a bot reading in a tight loop costs one fsync per burst,
    not one per read. Records of a vault that was locked meanwhile go to the pending file, which
    the next unlock folds into the chain (what a failed unlock does too)."""

    BATCH = 100  # records per append: the vault's guard is held for one append at a time

    def __init__(self, quiet: float = 0.02, max_age: float = 2.0) -> None:
        self.quiet = quiet
        self.max_age = max_age
        self._events: collections.deque[_Event] = collections.deque()
        self._tasks: collections.deque[Callable[[], None]] = collections.deque()
        self._cond = threading.Condition()
        self._sleeping = False
        self._stop = False
        self._flushed: list[threading.Event] = []  # callers of flush(), waiting
        self._last = 0.0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="its-agent-audit", daemon=True)
        self._thread.start()

    def event(self, item: _Event) -> None:
        self._events.append(item)
        self._last = item[1]
        if self._sleeping:
            with self._cond:
                self._cond.notify()

    def task(self, fn: Callable[[], None]) -> None:
        self._tasks.append(fn)
        with self._cond:
            self._cond.notify()

    def flush(self, timeout: float = 10.0) -> bool:
        if self._thread is None or not self._thread.is_alive():
            return not self._events
        done = threading.Event()
        with self._cond:
            self._flushed.append(done)
            self._cond.notify()
        return done.wait(timeout)

    def stop(self) -> None:
        self._stop = True
        with self._cond:
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None

    def _run(self) -> None:
        while True:
            with self._cond:
                self._sleeping = True
                while not (self._events or self._tasks or self._stop or self._flushed):
                    self._cond.wait()
                self._sleeping = False
            while self._events and not (self._stop or self._flushed):
                now = time.monotonic()
                quiet_for, age = now - self._last, now - self._events[0][1]
                if quiet_for >= self.quiet or age >= self.max_age:
                    break
                time.sleep(max(0.001, min(self.quiet - quiet_for, self.max_age - age)))
            with self._cond:
                flushed, self._flushed = self._flushed, []
            self._write_events()
            while self._tasks:
                task = self._tasks.popleft()
                try:
                    task()
                except Exception:
                    log.exception("an agent task failed")
            self._write_events()  # what the tasks recorded
            for done in flushed:
                done.set()
            if self._stop and not self._events and not self._tasks:
                return

    def _write_events(self) -> None:
        """Everything queued: chained in appends of BATCH records while the vault is unlocked,
        else (the vault locked meanwhile) as pending records."""
        while self._events:
            vault, path = self._events[0][2], self._events[0][3]
            group: list[AuditEvent] = []
            while self._events and self._events[0][2] is vault and self._events[0][3] == path:
                t, _, _, _, op, name, outcome, actor, detail = self._events.popleft()
                group.append(AuditEvent(op, outcome, actor, name, detail, datetime.fromtimestamp(t, timezone.utc)))
            for start in range(0, len(group), self.BATCH):
                if vault is None or vault.is_locked or not _chain(vault, group[start:start + self.BATCH]):
                    _pending(path, group[start:])
                    break


def _chain(vault: Vault, events: list[AuditEvent]) -> bool:
    """Append ``events`` to the vault's audit chain; False if the vault locked meanwhile (or the
    append failed: the records then go to the pending file)."""
    try:
        append_events(vault, events)
        return True
    except VaultLocked:
        return False
    except (VaultError, OSError) as error:
        log.warning("could not chain %d agent audit records (%s); keeping them as pending", len(events), error)
        return False
    except Exception:  # a bug must not end the audit thread: every later request would go unrecorded
        log.exception("could not chain %d agent audit records; keeping them as pending", len(events))
        return False


def _pending(path: Path, events: list[AuditEvent]) -> None:
    """Records for the next unlock to fold into the chain. Each costs an fsync (and the pending
    file keeps no names), so past PENDING_MAX the rest become one summary record."""
    if len(events) > PENDING_MAX:
        rest = events[PENDING_MAX - 1:]
        events = [*events[:PENDING_MAX - 1], AuditEvent(
            "agent-request", "not-chained", Actor("agent", os.getpid(), ""), None,
            f"{len(rest)} more agent requests from {rest[0].time.isoformat(timespec='milliseconds')} to "
            f"{rest[-1].time.isoformat(timespec='milliseconds')}: the vault locked before they were written",
            rest[-1].time)]
    try:
        files = AuditFiles.beside(path)
        with writer_lock(path):
            for event in events:
                record_pending(files, event)
    except (VaultError, OSError) as error:
        log.error("lost %d agent audit records: %s", len(events), error)


def append_events(vault: Vault, events: list[AuditEvent]) -> None:
    """Chain ``events`` in one locked, fsynced append, each with its client as the actor."""
    vault.record_events(events)
