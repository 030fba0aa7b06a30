"""YubiKey HMAC-SHA1 challenge-response (an OTP slot, 1 or 2) through yubikit.

Slot params: ``serial``, ``otp_slot`` and ``challenge``, the 32-byte input whose response
currently wraps the vault key (yubikit cannot tell whether a slot wants a touch: the CLI and
GUI say "touch your key" when the key reports that it waits for one). Challenges are
shorter than 64 bytes so the key's variable-length padding rule never applies.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager

from ..core.errors import IncorrectFactor, InvalidInput
from ..core.vault.header import KeySlot
from .base import FactorError, Prompter, TouchTimeout

KIND = "yubikey"
STATUS_WAITING_FOR_TOUCH = 2


@dataclass
class YubiKey:
    serial: int
    label: str
    connect: Callable[[], ContextManager[Any]] = field(repr=False)
    kind: str = KIND
    input_param: str = "challenge"

    def serves(self, slot: KeySlot) -> bool:
        return slot.kind == KIND and slot.params.get("serial") == self.serial

    def enroll(self, prompter: Prompter, options: dict[str, Any]) -> dict[str, Any]:
        from yubikit.yubiotp import SLOT, YubiOtpSession

        otp_slot = int(options.get("otp_slot", 2))
        if otp_slot not in (1, 2):
            raise InvalidInput("a YubiKey OTP slot is 1 or 2")
        with self.connect() as connection:
            state = YubiOtpSession(connection).get_config_state()
        if not state.is_configured(SLOT(otp_slot)):
            raise FactorError(f"slot {otp_slot} of YubiKey {self.serial} is not programmed "
                              f"(program it for HMAC-SHA1 challenge-response, e.g. 'ykman otp chalresp --touch --generate {otp_slot}')")
        return {"otp_slot": otp_slot, "serial": self.serial}

    def respond(self, params: dict[str, Any], inputs: list[bytes], prompter: Prompter) -> list[bytes]:
        from yubikit.core import CommandError, TimeoutError as KeyTimeout
        from yubikit.yubiotp import SLOT, YubiOtpSession

        if params.get("serial") != self.serial:
            raise IncorrectFactor()
        slot = SLOT(int(params["otp_slot"]))
        outputs = []
        with self.connect() as connection:
            session = YubiOtpSession(connection)
            for number, challenge in enumerate(inputs, 1):
                step = f" ({number} of {len(inputs)})" if len(inputs) > 1 else ""

                def keepalive(status: int, step: str = step) -> None:
                    if status == STATUS_WAITING_FOR_TOUCH:
                        prompter.touch(f"Touch your YubiKey {self.serial}{step}")

                try:
                    outputs.append(session.calculate_hmac_sha1(slot, challenge, prompter.cancel, keepalive))
                except KeyTimeout:
                    raise TouchTimeout() from None
                except CommandError:
                    raise FactorError(f"YubiKey {self.serial} refused the challenge on slot {int(slot)}") from None
        return outputs


def list_yubikeys() -> list[YubiKey]:
    """Plugged-in YubiKeys with an OTP interface (the emulated one when ITS_EMULATED_KEYS is
    set). Any failure to enumerate (no HID access) means none."""
    from .emulated import keyfile

    emulated = keyfile.open_key_file()
    if emulated is not None:
        from .emulated.yubikey_otp import EmulatedOtpConnection, emulated_serial

        state = emulated.state["yubikey"]

        def connect() -> ContextManager[Any]:
            return contextlib.closing(EmulatedOtpConnection(state, emulated.persist, keyfile.touch_policy()))

        return [YubiKey(emulated_serial(state), "ITS Emulated YubiKey", connect)]
    try:
        from ykman.device import list_all_devices
        from yubikit.core.otp import OtpConnection

        found = list_all_devices([OtpConnection])
    except Exception:  # no HID access, no udev rules: no usable key
        return []
    return [YubiKey(info.serial, f"{device.name} ({info.serial})",
                    lambda device=device: device.open_connection(OtpConnection))
            for device, info in found if info.serial is not None]
