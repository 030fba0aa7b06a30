"""Any FIDO2 key through its hmac-secret extension (python-fido2).

Enrolment makes a non-resident credential for rp id ``its-desktop`` with hmac-secret. A slot
stores what systemd-cryptenroll stores: the credential id, the rp id, whether a PIN, user
presence and user verification were required, plus ``salt``, the 32-byte input whose output
currently wraps the vault key. Unlock replays exactly the enrolment's UV mode, because an
authenticator returns a different hmac-secret with and without UV. Both salts (current and
next) go in one assertion, so a re-armed unlock still costs one touch.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import IncorrectFactor
from ..core.vault.header import KeySlot
from .base import FactorError, PinRequired, Prompter, TouchTimeout, WrongPin

KIND = "fido2"
RP_ID = "its-desktop"
ORIGIN = "https://" + RP_ID


@dataclass
class Fido2Key:
    device: Any = field(repr=False)  # a fido2.ctap.CtapDevice
    label: str = "FIDO2 key"
    kind: str = KIND
    input_param: str = "salt"

    def serves(self, slot: KeySlot) -> bool:
        return slot.kind == KIND  # only the key itself can tell whether it holds the credential

    def _client(self, prompter: Prompter):
        from fido2.client import DefaultClientDataCollector, Fido2Client, UserInteraction
        from fido2.ctap2.extensions import HmacSecretExtension

        label = self.label

        class Interaction(UserInteraction):
            def prompt_up(self) -> None:
                prompter.touch(f"Touch your {label}")

            def request_pin(self, permissions, rp_id):
                return prompter.pin(f"PIN for {label}")

            def request_uv(self, permissions, rp_id) -> bool:
                return True

        return Fido2Client(self.device, DefaultClientDataCollector(ORIGIN), Interaction(),
                           extensions=[HmacSecretExtension(allow_hmac_secret=True)])

    def has_pin(self) -> bool:
        from fido2.ctap2 import Ctap2

        return bool(Ctap2(self.device).info.options.get("clientPin"))

    def enroll(self, prompter: Prompter, options: dict[str, Any]) -> dict[str, Any]:
        from fido2.webauthn import (
            AuthenticatorSelectionCriteria,
            PublicKeyCredentialCreationOptions,
            PublicKeyCredentialParameters,
            PublicKeyCredentialRpEntity,
            PublicKeyCredentialType,
            PublicKeyCredentialUserEntity,
            ResidentKeyRequirement,
        )

        pin = self.has_pin()
        uv = "required" if pin else "discouraged"
        with _mapped_errors():
            result = self._client(prompter).make_credential(
                PublicKeyCredentialCreationOptions(
                    rp=PublicKeyCredentialRpEntity(id=RP_ID, name="ITS Desktop"),
                    user=PublicKeyCredentialUserEntity(id=os.urandom(16), name="its-vault"),
                    challenge=os.urandom(32),
                    pub_key_cred_params=[PublicKeyCredentialParameters(type=PublicKeyCredentialType.PUBLIC_KEY, alg=-7),
                                         PublicKeyCredentialParameters(type=PublicKeyCredentialType.PUBLIC_KEY, alg=-8)],
                    authenticator_selection=AuthenticatorSelectionCriteria(
                        resident_key=ResidentKeyRequirement.DISCOURAGED, user_verification=uv),
                    extensions={"hmacCreateSecret": True},
                ),
                event=prompter.cancel,
            )
        if not result.client_extension_results.hmac_create_secret:
            raise FactorError(f"{self.label} does not support the hmac-secret extension")
        return {"credential_id": _b64(result.raw_id), "pin": pin, "rp_id": RP_ID, "up": True, "uv": uv}

    def respond(self, params: dict[str, Any], inputs: list[bytes], prompter: Prompter) -> list[bytes]:
        from fido2.webauthn import (
            PublicKeyCredentialDescriptor,
            PublicKeyCredentialRequestOptions,
            PublicKeyCredentialType,
        )

        if not 1 <= len(inputs) <= 2:
            raise ValueError("hmac-secret takes one or two salts")
        salts = {"salt1": inputs[0], **({"salt2": inputs[1]} if len(inputs) == 2 else {})}
        credential = PublicKeyCredentialDescriptor(type=PublicKeyCredentialType.PUBLIC_KEY,
                                                   id=base64.b64decode(params["credential_id"]))
        with _mapped_errors():
            selection = self._client(prompter).get_assertion(
                PublicKeyCredentialRequestOptions(
                    challenge=os.urandom(32), rp_id=params.get("rp_id", RP_ID),
                    allow_credentials=[credential], user_verification=params.get("uv", "discouraged"),
                    extensions={"hmacGetSecret": salts},
                ),
                event=prompter.cancel,
            )
        output = selection.get_response(0).client_extension_results.hmac_get_secret
        if output is None:
            raise FactorError(f"{self.label} gave no hmac-secret output")
        outputs = [bytes(output.output1)]
        if len(inputs) == 2:
            outputs.append(bytes(output.output2))
        return outputs


class _mapped_errors:
    """python-fido2's errors in our words: not-this-key, timeout, PIN trouble."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        from fido2.client import ClientError
        from fido2.ctap import CtapError

        if exc is None:
            return False
        if isinstance(exc, ClientError):
            cause = exc.cause
            code = cause.code if isinstance(cause, CtapError) else None
            if exc.code == ClientError.ERR.DEVICE_INELIGIBLE:
                raise IncorrectFactor() from None
            if exc.code == ClientError.ERR.TIMEOUT:
                raise TouchTimeout() from None
            if code == CtapError.ERR.PIN_INVALID:
                raise WrongPin() from None
            if code in (CtapError.ERR.PIN_BLOCKED, CtapError.ERR.PIN_AUTH_BLOCKED, CtapError.ERR.UV_BLOCKED):
                raise FactorError("the FIDO2 key's PIN is blocked (unplug it and plug it in again, or reset it)") from None
            if code == CtapError.ERR.PUAT_REQUIRED or "PIN" in str(cause or ""):
                raise PinRequired() from None
            raise FactorError(f"the FIDO2 key refused the request ({exc.code.name.lower().replace('_', ' ')})") from None
        if isinstance(exc, CtapError):
            raise FactorError(f"the FIDO2 key answered with an error ({exc.code.name})") from None
        return False


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def list_fido2_keys() -> list[Fido2Key]:
    """Plugged-in FIDO2 keys (the emulated one when ITS_EMULATED_KEYS is set)."""
    from .emulated import keyfile

    emulated = keyfile.open_key_file()
    if emulated is not None:
        from .emulated.ctap2 import open_emulated_device

        device = open_emulated_device(emulated.state["fido2"], emulated.persist, keyfile.touch_policy())
        return [Fido2Key(device, "ITS Emulated FIDO2 key")]
    try:
        from fido2.hid import CtapHidDevice

        return [Fido2Key(d, getattr(d.descriptor, "product_name", None) or "FIDO2 key")
                for d in CtapHidDevice.list_devices()]
    except Exception:  # no hidraw access: no usable key
        return []
