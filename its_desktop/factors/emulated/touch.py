"""How the emulated user answers an emulated key's request for a touch."""

from __future__ import annotations

from dataclasses import dataclass

TOUCH_TIMEOUT_S = 30.0  # real keys give up after 15 to 30 s; tests use fractions of a second


@dataclass(frozen=True)
class TouchPolicy:
    """``delay_s``: when the touch happens after the key starts blinking (None: never);
    ``timeout_s``: when the key gives up waiting."""

    delay_s: float | None = 0.0
    timeout_s: float = TOUCH_TIMEOUT_S

    @classmethod
    def immediate(cls) -> TouchPolicy:
        return cls(0.0)

    @classmethod
    def after_ms(cls, ms: float, timeout_s: float = TOUCH_TIMEOUT_S) -> TouchPolicy:
        return cls(ms / 1000, timeout_s)

    @classmethod
    def never(cls, timeout_s: float = TOUCH_TIMEOUT_S) -> TouchPolicy:
        return cls(None, timeout_s)

    def touched(self, waited_s: float) -> bool:
        return self.delay_s is not None and self.delay_s <= self.timeout_s and waited_s >= self.delay_s

    def timed_out(self, waited_s: float) -> bool:
        return not self.touched(waited_s) and waited_s >= self.timeout_s

    def seconds_to_outcome(self, waited_s: float) -> float:
        due = self.timeout_s if self.delay_s is None else min(self.delay_s, self.timeout_s)
        return max(due - waited_s, 0.0)
