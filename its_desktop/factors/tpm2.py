"""TPM 2.0 slot: "this workstation + PIN", as ``systemd-cryptenroll --tpm2-with-pin`` does.

A random 32-byte secret is sealed by the machine's TPM under a storage primary key the TPM
re-derives from its owner seed whenever asked (the TCG's ECC P-256 storage-key template), so
the sealed blobs kept in the slot open on this TPM only. The sealed object's policy is
PolicyAuthValue (the PIN, hashed with the slot's salt) and, optionally, PolicyPCR over chosen
PCRs (7 = the Secure Boot state, the default as in systemd): the TPM itself counts wrong PINs
and locks out (dictionary-attack protection), which is what makes a short PIN acceptable.
The unsealed secret is the slot's key material; the master password is not involved.

The TPM is reached through a TCTI string in tpm2-tools' syntax: ``ITS_TPM_TCTI``, by default
``device:/dev/tpmrm0`` (the kernel's resource manager). Sealing and unsealing run in sessions
salted with the primary key that encrypt the secret on its way in and out, so it never crosses
the bus in the clear (a test reads swtpm's log of every byte). Every transient object is
flushed, since a TPM without a resource manager keeps them.
"""

from __future__ import annotations

import base64
import hashlib
import os
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator

from ..core.crypto import random_bytes, wipe
from ..core.errors import InvalidInput, WrongCredentials
from ..core.vault import slots as slotlib
from ..core.vault.api import Vault
from ..core.vault.header import KeySlot
from .base import FactorError

KIND = "tpm2"
TCTI_ENV = "ITS_TPM_TCTI"
PIN_ENV = "ITS_TPM_PIN"
DEFAULT_TCTI = "device:/dev/tpmrm0"
DEFAULT_PCRS: tuple[int, ...] = (7,)
PCR_BANK = "sha256"
SECRET_SIZE = 32
MIN_PIN_LENGTH = 4
PRIMARY_TEMPLATE = "srk-ecc256"  # recorded in the slot by name, so a later default cannot orphan it

# The TSS prints every TPM error to stderr itself; ours are one line each.
os.environ.setdefault("TSS2_LOG", "all+NONE")


class WrongTpmPin(WrongCredentials):
    def __init__(self) -> None:
        super().__init__("wrong TPM PIN (the TPM counts failures and locks out after a few)")


class TpmLockedOut(WrongCredentials):
    def __init__(self) -> None:
        super().__init__("the TPM is locked out after too many wrong PINs: wait for it to recover, "
                         "or unlock with the password")


class TpmRefused(WrongCredentials):
    """The TPM will not open this slot for a reason other than the PIN."""


def tcti() -> str:
    return os.environ.get(TCTI_ENV) or DEFAULT_TCTI


def pin_auth(pin: str, salt: bytes) -> bytes:
    """The sealed object's auth value: the PIN is never sent to the TPM as typed."""
    if len(pin) < MIN_PIN_LENGTH:
        raise InvalidInput(f"a TPM PIN has at least {MIN_PIN_LENGTH} characters")
    typed = unicodedata.normalize("NFC", pin).encode("utf-8")
    return hashlib.sha256(b"its-desktop/v1/tpm-pin|" + salt + b"|" + typed).digest()


def parse_pcrs(text: str) -> tuple[int, ...]:
    """``7``, ``0,7`` or ``none``."""
    if text.strip().lower() in ("", "none"):
        return ()
    try:
        pcrs = tuple(sorted({int(part) for part in text.split(",")}))
    except ValueError:
        raise InvalidInput(f"--pcrs expects PCR numbers like 7 or 0,7, or 'none'; got '{text}'") from None
    if any(not 0 <= p <= 23 for p in pcrs):
        raise InvalidInput("PCR numbers go from 0 to 23")
    return pcrs


@dataclass(frozen=True)
class SealedSecret:
    """What a TPM slot keeps: the sealed object's public and private areas and its policy."""

    public: bytes
    private: bytes
    pcrs: tuple[int, ...]
    bank: str = PCR_BANK
    primary: str = PRIMARY_TEMPLATE

    def params(self) -> dict[str, Any]:
        return {"tpm_public": base64.b64encode(self.public).decode("ascii"),
                "tpm_private": base64.b64encode(self.private).decode("ascii"),
                "pcrs": list(self.pcrs), "pcr_bank": self.bank, "primary": self.primary}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> SealedSecret:
        try:
            return cls(base64.b64decode(params["tpm_public"], validate=True),
                       base64.b64decode(params["tpm_private"], validate=True),
                       tuple(int(p) for p in params["pcrs"]), str(params["pcr_bank"]), str(params["primary"]))
        except (KeyError, TypeError, ValueError):
            raise TpmRefused("this TPM slot's data is unreadable") from None


class Tpm:
    """One connection to the TPM: seal and unseal, with TPM errors turned into ours."""

    def __init__(self, tcti_string: str | None = None) -> None:
        self.tcti = tcti_string or tcti()
        try:
            from tpm2_pytss import ESAPI
        except ImportError:
            raise FactorError("TPM support is not installed (pip install 'its-desktop[tpm]', "
                              "which needs the tpm2-tss library)") from None
        try:
            self._esapi = ESAPI(self.tcti)
        except Exception as exc:  # no device, no permission, nothing listening: the TSS says which
            raise FactorError(f"cannot reach the TPM at '{self.tcti}' ({_reason(exc)})") from None

    def close(self) -> None:
        self._esapi.close()

    def __enter__(self) -> Tpm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def seal(self, secret: bytes, auth: bytes, pcrs: tuple[int, ...]) -> SealedSecret:
        from tpm2_pytss.constants import TPM2_ALG, TPM2_SE, TPMA_OBJECT, TPMA_SESSION
        from tpm2_pytss.types import (TPM2B_AUTH, TPM2B_PUBLIC, TPM2B_SENSITIVE_CREATE, TPM2B_SENSITIVE_DATA,
                                      TPMS_KEYEDHASH_PARMS, TPMS_SENSITIVE_CREATE, TPMT_KEYEDHASH_SCHEME,
                                      TPMT_PUBLIC, TPMU_PUBLIC_PARMS)

        with self._calls(), self._primary(PRIMARY_TEMPLATE) as primary:
            template = TPM2B_PUBLIC(TPMT_PUBLIC(
                type=TPM2_ALG.KEYEDHASH, nameAlg=TPM2_ALG.SHA256,
                objectAttributes=TPMA_OBJECT.FIXEDTPM | TPMA_OBJECT.FIXEDPARENT,  # policy only, DA-protected
                authPolicy=self._policy_digest(pcrs, PCR_BANK),
                parameters=TPMU_PUBLIC_PARMS(keyedHashDetail=TPMS_KEYEDHASH_PARMS(
                    scheme=TPMT_KEYEDHASH_SCHEME(scheme=TPM2_ALG.NULL)))))
            sensitive = TPM2B_SENSITIVE_CREATE(TPMS_SENSITIVE_CREATE(
                userAuth=TPM2B_AUTH(auth), data=TPM2B_SENSITIVE_DATA(secret)))
            # A salted HMAC session that encrypts the command's first parameter (the secret and
            # the PIN's auth value) on its way to the TPM, as the unseal's session does back.
            session = self._esapi.start_auth_session(primary, _none(), TPM2_SE.HMAC, _aes128cfb(), TPM2_ALG.SHA256)
            with self._flushing(session):
                self._esapi.trsess_set_attributes(session, TPMA_SESSION.DECRYPT | TPMA_SESSION.CONTINUESESSION)
                private, public, *_ = self._esapi.create(primary, sensitive, template, session1=session)
            return SealedSecret(bytes(public.marshal()), bytes(private.marshal()), pcrs)

    def unseal(self, sealed: SealedSecret, auth: bytes) -> bytearray:
        from tpm2_pytss.constants import TPM2_ALG, TPM2_RC, TPM2_SE, TPMA_SESSION
        from tpm2_pytss.types import TPM2B_PRIVATE, TPM2B_PUBLIC

        try:
            public, _ = TPM2B_PUBLIC.unmarshal(sealed.public)
            private, _ = TPM2B_PRIVATE.unmarshal(sealed.private)
        except Exception:
            raise TpmRefused("this TPM slot's sealed data is damaged") from None
        with self._calls(), self._primary(sealed.primary) as primary:
            try:
                sealed_handle = self._esapi.load(primary, private, public)
            except Exception as exc:
                if _code(exc) not in (None, TPM2_RC.LOCKOUT):
                    raise TpmRefused("this TPM did not seal this slot (another machine, or the TPM was cleared): "
                                     "unlock with the password") from None
                raise
            with self._flushing(sealed_handle):
                self._esapi.tr_set_auth(sealed_handle, auth)
                session = self._esapi.start_auth_session(primary, _none(), TPM2_SE.POLICY, _aes128cfb(),
                                                         TPM2_ALG.SHA256)
                with self._flushing(session):
                    self._esapi.trsess_set_attributes(session, TPMA_SESSION.ENCRYPT | TPMA_SESSION.CONTINUESESSION)
                    self._apply_policy(session, sealed.pcrs, sealed.bank)
                    data = self._esapi.unseal(sealed_handle, session1=session)
                    secret = bytearray(bytes(data))
                    return secret

    def _policy_digest(self, pcrs: tuple[int, ...], bank: str) -> Any:
        from tpm2_pytss.constants import TPM2_ALG, TPM2_SE

        trial = self._esapi.start_auth_session(_none(), _none(), TPM2_SE.TRIAL, None, TPM2_ALG.SHA256)
        with self._flushing(trial):
            self._apply_policy(trial, pcrs, bank)
            return self._esapi.policy_get_digest(trial)

    def _apply_policy(self, session: Any, pcrs: tuple[int, ...], bank: str) -> None:
        """PCRs first, then the PIN: the same order at seal (trial) and unseal time."""
        from tpm2_pytss.types import TPML_PCR_SELECTION

        if pcrs:
            self._esapi.policy_pcr(session, b"", TPML_PCR_SELECTION.parse(f"{bank}:{','.join(map(str, pcrs))}"))
        self._esapi.policy_auth_value(session)

    @contextmanager
    def _primary(self, template: str) -> Iterator[Any]:
        """The storage primary key, derived again from the owner seed. ``srk-ecc256`` is the
        TCG's storage root key template: restricted decrypt, ECC P-256, AES-128-CFB, and noDA
        (the PIN on the sealed object is what the dictionary-attack counter guards)."""
        from tpm2_pytss.constants import TPMA_OBJECT
        from tpm2_pytss.types import TPM2B_PUBLIC

        if template != "srk-ecc256":
            raise TpmRefused(f"this TPM slot uses a primary key template this version does not know ('{template}')")
        attributes = TPMA_OBJECT.DEFAULT_TPM2_TOOLS_CREATEPRIMARY_ATTRS | TPMA_OBJECT.NODA
        public = TPM2B_PUBLIC.parse("ecc256:aes128cfb", objectAttributes=attributes)
        handle, *_ = self._esapi.create_primary(None, public)
        with self._flushing(handle):
            yield handle

    @contextmanager
    def _flushing(self, handle: Any) -> Iterator[None]:
        try:
            yield
        finally:
            try:
                self._esapi.flush_context(handle)
            except Exception:  # already gone (a failed policy session is flushed by the TPM)
                pass

    @contextmanager
    def _calls(self) -> Iterator[None]:
        """TPM response codes as our errors; anything else from the TSS as a FactorError."""
        try:
            yield
        except (WrongCredentials, FactorError):
            raise
        except Exception as exc:
            raise _translate(exc) from None


def _none() -> Any:
    from tpm2_pytss.constants import ESYS_TR

    return ESYS_TR.NONE


def _aes128cfb() -> Any:
    from tpm2_pytss.constants import TPM2_ALG
    from tpm2_pytss.types import TPMT_SYM_DEF, TPMU_SYM_KEY_BITS, TPMU_SYM_MODE

    return TPMT_SYM_DEF(algorithm=TPM2_ALG.AES, keyBits=TPMU_SYM_KEY_BITS(aes=128),
                        mode=TPMU_SYM_MODE(aes=TPM2_ALG.CFB))


def _code(exc: BaseException) -> int | None:
    """The TPM's own response code without its handle/session bits; None for an error of the
    software stack (a dropped connection) or anything else."""
    from tpm2_pytss.TSS2_Exception import TSS2_Exception

    if not isinstance(exc, TSS2_Exception) or exc.rc & 0xFF0000:  # layer 0 is the TPM itself
        return None
    return int(exc.error)


def _translate(exc: BaseException) -> Exception:
    from tpm2_pytss.constants import TPM2_RC

    code = _code(exc)
    if code in (TPM2_RC.AUTH_FAIL, TPM2_RC.BAD_AUTH):
        return WrongTpmPin()
    if code == TPM2_RC.LOCKOUT:
        return TpmLockedOut()
    if code in (TPM2_RC.POLICY_FAIL, TPM2_RC.PCR_CHANGED, TPM2_RC.VALUE):
        return TpmRefused("the TPM refuses: this machine's measured state (its PCRs) changed since the slot "
                          "was enrolled (a firmware or Secure Boot change); unlock with the password and enrol again")
    return FactorError(f"the TPM failed ({_reason(exc)})")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def enroll(vault: Vault, pin: str, pcrs: tuple[int, ...] = DEFAULT_PCRS, name: str = "TPM + PIN",
           tcti_string: str | None = None) -> KeySlot:
    """Seal a fresh secret to this machine's TPM under ``pin`` and add a slot it opens."""
    salt = random_bytes(slotlib.SALT_SIZE)
    auth = pin_auth(pin, salt)
    secret = bytearray(random_bytes(SECRET_SIZE))
    try:
        with Tpm(tcti_string) as tpm:
            sealed = tpm.seal(bytes(secret), auth, pcrs)
        return vault.add_slot(lambda vault_key, vault_id: slotlib.make_slot(
            KIND, name, secret, salt, vault_key, vault_id, params=sealed.params()))
    finally:
        wipe(secret)


@dataclass(repr=False)
class TpmOpener:
    """Open TPM slots with the PIN (a ``SlotOpener`` for ``Vault.open``)."""

    pin: str
    tcti_string: str | None = None
    kinds: tuple[str, ...] = (KIND,)
    _tpm: Tpm | None = field(default=None, init=False)

    def open(self, slot: KeySlot, vault_id: str) -> bytearray:
        secret = self.unseal(slot)
        try:
            return slotlib.open_with_material(slot, secret, vault_id)
        finally:
            wipe(secret)

    def unseal(self, slot: KeySlot) -> bytearray:
        sealed = SealedSecret.from_params(slot.params)
        with Tpm(self.tcti_string) as tpm:
            return tpm.unseal(sealed, pin_auth(self.pin, slot.salt))


def rewrap(vault: Vault, pin: str | None, tcti_string: str | None = None) -> tuple[
        Callable[[bytearray, str], list[KeySlot]], tuple[str, ...]]:
    """For ``rekey``: the TPM slots re-wrapped under the new vault key, their sealed secrets
    unsealed with ``pin`` now, so a wrong PIN, a locked-out or unreachable TPM stops the re-key
    before anything changes. Listed to be dropped: every TPM slot when there is no PIN, and a
    slot this TPM refuses for good (changed PCRs, another machine): it opens nothing anyway."""
    opener = TpmOpener(pin or "", tcti_string)
    opened: list[tuple[KeySlot, bytearray]] = []
    dropped: list[str] = []
    for slot in (s for s in vault.slots if s.kind == KIND):
        if pin is None:
            dropped.append(slot.id)
            continue
        try:
            opened.append((slot, opener.unseal(slot)))
        except (WrongTpmPin, TpmLockedOut):
            for _, secret in opened:
                wipe(secret)
            raise
        except TpmRefused:
            dropped.append(slot.id)

    def rebuild(vault_key: bytearray, vault_id: str) -> list[KeySlot]:
        rebuilt = []
        for slot, secret in opened:
            made = slotlib.make_slot(KIND, slot.name, secret, slot.salt, vault_key, vault_id,
                                     params=slot.params, slot_id=slot.id)
            wipe(secret)
            rebuilt.append(replace(made, created=slot.created))
        return rebuilt

    return rebuild, tuple(dropped)
