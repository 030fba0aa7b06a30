"""``postgresql``: a ``database`` secret (fields host, port, user, dbname; the value is the
password). Connect with the current password, ``ALTER ROLE`` to the new one, connect with the
new one, then commit.

The new password leaves this process only as a SCRAM-SHA-256 verifier computed here (as psql's
``\\password`` does), so it never appears in the server's statement log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ..core.passwords import ValuePolicy
from ..core.secrets import Secret, SecretType
from .base import RotationContext, SettingsEdit, StepFailed

if TYPE_CHECKING:
    import psycopg

CONNECT_TIMEOUT = 5
REQUIRED_FIELDS = ("host", "user")
# Passwords end up in connection strings and .pgpass files: no symbols that need quoting there.
DEFAULT_POLICY = ValuePolicy(32, "alnum")


@dataclass
class PostgresRotator:
    name: ClassVar[str] = "postgresql"
    sets_elsewhere: ClassVar[bool] = True
    automatic: ClassVar[bool] = True

    def check(self, secret: Secret) -> str | None:
        if secret.type is not SecretType.DATABASE:
            return f"'{secret.name}' is a {secret.type.value} secret, not a database one"
        missing = [f for f in REQUIRED_FIELDS if not secret.fields.get(f)]
        if missing:
            return f"'{secret.name}' has no {' or '.join(missing)} field"
        return None

    def create(self, ctx: RotationContext) -> str:
        with self._connect(ctx.secret, ctx.secret.value, "the current password"):
            pass
        return (ctx.secret.value_policy or DEFAULT_POLICY).generate()

    def set(self, ctx: RotationContext, new: str) -> None:
        from psycopg import sql

        user = ctx.secret.fields["user"]
        with self._connect(ctx.secret, ctx.secret.value, "the current password") as conn:
            verifier = conn.pgconn.encrypt_password(new.encode(), user.encode(), b"scram-sha-256")
            statement = sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(user), sql.Literal(verifier.decode()))
            try:
                conn.execute(statement)
            except _errors() as exc:
                raise StepFailed(f"the server refused the new password: {_reason(exc)}") from None

    def test(self, ctx: RotationContext, new: str) -> None:
        user = ctx.secret.fields["user"]
        with self._connect(ctx.secret, new, "the new password") as conn:
            row = conn.execute("SELECT current_user").fetchone()
        if row is None or row[0] != user:
            raise StepFailed(f"signed in with the new password but as '{row[0] if row else '?'}', not '{user}'")

    def finish(self, ctx: RotationContext, new: str) -> SettingsEdit | None:
        return None

    @staticmethod
    def _connect(secret: Secret, password: str, which: str) -> psycopg.Connection:
        import psycopg

        fields = secret.fields
        try:
            return psycopg.connect(
                host=fields["host"], port=int(fields.get("port") or 5432), user=fields["user"],
                dbname=fields.get("dbname") or fields["user"], password=password,
                connect_timeout=CONNECT_TIMEOUT, autocommit=True, application_name="its-desktop rotation",
            )
        except ValueError:
            raise StepFailed(f"the port field of '{secret.name}' is not a number") from None
        except _errors() as exc:
            raise StepFailed(f"could not sign in to {fields['host']} with {which}: {_reason(exc)}") from None


def _errors() -> tuple[type[Exception], ...]:
    import psycopg

    return (psycopg.Error, OSError)


def _reason(exc: Exception) -> str:
    """The server's or driver's first line; never the connection string (it holds the password)."""
    import psycopg

    if isinstance(exc, psycopg.Error) and exc.diag.message_primary:
        return exc.diag.message_primary
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__
