"""QR codes for one-time-code enrolment: read them from images, draw them as PNG.

Reading uses zxing-cpp (a maintained C++ reader) on a grayscale Pillow image, whatever the
source: a file, PNG/JPEG bytes, or raw pixels the GUI takes from a screenshot or the
clipboard (this layer never sees Qt). Drawing uses segno (pure Python). Images are checked
for size before they are decoded, so a hostile "image bomb" is refused instead of filling
memory. Errors are one line and never contain what a QR code held.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ..core.errors import InvalidInput

if TYPE_CHECKING:
    from PIL import Image

MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_PIXELS = 50_000_000  # a 4K screen is 8.3 million; several screens side by side still fit
MAX_TEXT = 4096

PixelFormat = Literal["gray", "rgb", "rgba"]
_MODES: dict[str, tuple[str, int]] = {"gray": ("L", 1), "rgb": ("RGB", 3), "rgba": ("RGBA", 4)}


class QrError(InvalidInput):
    """Base of the QR errors."""


class UnreadableImage(QrError):
    """The file or bytes are not an image we can open (or are too large to try)."""


class NoQrCode(QrError):
    def __init__(self, where: str = "the image") -> None:
        super().__init__(f"no QR code found in {where}")


# -- reading ------------------------------------------------------------------------------------


def decode_file(path: str | os.PathLike) -> list[str]:
    """The text of every QR code in an image file (PNG, JPEG, BMP, GIF…)."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise UnreadableImage(f"{path.name} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableImage(f"cannot read {path.name}: {exc.strerror or 'I/O error'}") from None
    return _decode(_open_image(data, path.name), path.name)


def decode_image_bytes(data: bytes, what: str = "the image") -> list[str]:
    """The text of every QR code in encoded image bytes (PNG, JPEG…)."""
    if len(data) > MAX_FILE_BYTES:
        raise UnreadableImage(f"{what} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    return _decode(_open_image(data, what), what)


def decode_pixels(data: bytes | memoryview, width: int, height: int, format: PixelFormat = "rgba",
                  stride: int | None = None, what: str = "the image") -> list[str]:
    """The text of every QR code in raw pixels, rows top to bottom, ``stride`` bytes apart
    (default: packed). For screenshots and clipboard images, which arrive as pixels."""
    from PIL import Image

    if format not in _MODES:
        raise UnreadableImage(f"unknown pixel format '{format}' (use gray, rgb or rgba)")
    mode, size = _MODES[format]
    stride = width * size if stride is None else stride
    if width <= 0 or height <= 0 or width * height > MAX_PIXELS:
        raise UnreadableImage(f"{what} is empty or larger than {MAX_PIXELS // 1_000_000} megapixels")
    if stride < width * size or len(data) < stride * (height - 1) + width * size:
        raise UnreadableImage(f"{what}: fewer pixel bytes than its size needs")
    image = Image.frombuffer(mode, (width, height), bytes(data), "raw", mode, stride, 1)
    return _decode(image, what)


def pick_one(texts: list[str], prefix: str, what: str = "the image") -> str:
    """The QR text to use: the only one found, else the only one starting with ``prefix``
    (e.g. ``otpauth://``); choosing among several would be a guess."""
    if len(texts) == 1:
        return texts[0]
    wanted = [t for t in texts if t.lower().startswith(prefix)]
    if len(wanted) == 1:
        return wanted[0]
    raise QrError(f"{what} holds {len(texts)} QR codes: crop it to the one you want")


def _open_image(data: bytes, what: str) -> Image.Image:
    import warnings

    from PIL import Image, UnidentifiedImageError

    too_large = UnreadableImage(f"{what} is larger than {MAX_PIXELS // 1_000_000} megapixels")
    unreadable = UnreadableImage(f"{what} cannot be read as an image (PNG, JPEG, BMP or GIF)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))  # reads the header only
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise too_large from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise unreadable from None
    if image.width * image.height > MAX_PIXELS:  # checked before the pixels are decoded
        raise too_large
    try:
        image.load()
    except (OSError, ValueError):  # truncated or corrupt pixel data
        raise unreadable from None
    return image


def _decode(image: Image.Image, what: str) -> list[str]:
    """zxing-cpp on a grayscale copy (its fastest input; colour never helps a QR code)."""
    import zxingcpp

    gray = image.convert("L")
    found = zxingcpp.read_barcodes(gray, formats=zxingcpp.BarcodeFormat.QRCode)
    texts: list[str] = []
    for barcode in found:
        if barcode.valid and barcode.text not in texts and len(barcode.text) <= MAX_TEXT:
            texts.append(barcode.text)
    if not texts:
        raise NoQrCode(what)
    return texts


# -- drawing ------------------------------------------------------------------------------------


def encode_png(text: str, scale: int = 8, border: int = 4) -> bytes:
    """A PNG of ``text`` as a QR code (error correction M, quiet zone of 4 modules as the
    standard asks, ``scale`` pixels a module)."""
    import segno

    too_much = QrError(f"too much text for a QR code (at most {MAX_TEXT} characters, fewer if not ASCII)")
    if len(text) > MAX_TEXT:
        raise too_much
    try:
        code = segno.make(text, error="m", micro=False)
    except segno.DataOverflowError:  # more than version 40 holds at level M (2,331 bytes)
        raise too_much from None
    except UnicodeEncodeError:  # a lone surrogate: not text any reader could show
        raise QrError("the text for a QR code is not valid Unicode") from None
    out = io.BytesIO()
    code.save(out, kind="png", scale=scale, border=border)
    return out.getvalue()


def write_png(text: str, path: str | os.PathLike, scale: int = 8) -> Path:
    """Write the QR code of ``text`` to ``path`` readable by its owner only: the file is made
    0600 before any byte is written, then renamed into place (a QR code of a one-time-code
    secret is the secret)."""
    path = Path(path)
    data = encode_png(text, scale=scale)
    folder = path.parent if str(path.parent) else Path(".")
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)  # mode 0600
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path
