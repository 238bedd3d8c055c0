"""Size, pixel, frame and duration budgets every loader checks before decoding.

The budgets are checked against what a file *declares* (file size, header
dimensions, frame count, container duration) so that a hostile or damaged file
is refused before any large allocation or long decode happens.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import InputTooLargeError

MiB = 1024 * 1024


@dataclass(frozen=True)
class InputLimits:
    """Upper bounds for one uploaded input.

    Attributes:
        max_bytes: largest encoded file accepted (default 512 MiB, a large CR/DX
            study or a long uncompressed WAV).
        max_pixels: largest decoded frame, rows x columns (default 100 Mpx; a
            full-field mammogram is ~30 Mpx, a 12 Mpx phone photo is far below).
        max_frames: most frames a multi-frame DICOM may declare (default 2000).
        max_audio_s: longest audio clip in seconds (default 15 minutes).
        max_audio_channels: most channels a recording may have (default 64; every
            channel is decoded before the down-mix to mono).
        max_decoded_pixels: the memory budget of one decoded image: larger frames are
            area-downscaled by an integer factor while they are decoded (default
            2048 x 2048 = 4.2 Mpx, 48 MiB as float32 RGB; the encoders read 224 px and
            the viewer shows at most 1024). ``meta`` keeps the original size.
    """

    max_bytes: int = 512 * MiB
    max_pixels: int = 100_000_000
    max_frames: int = 2000
    max_audio_s: float = 15 * 60.0
    max_audio_channels: int = 64
    max_decoded_pixels: int = 2048 * 2048

    def capped(self, max_bytes: int) -> "InputLimits":
        """These limits with ``max_bytes`` lowered to at most ``max_bytes`` (a server's upload cap)."""
        return replace(self, max_bytes=min(self.max_bytes, int(max_bytes)))

    def shrink_factor(self, height: int, width: int) -> int:
        """The integer downscale factor that brings ``height x width`` within ``max_decoded_pixels``."""
        from .shrink import factor

        return factor(height, width, self.max_decoded_pixels)

    def check_bytes(self, n: int) -> None:
        """Refuse an encoded input of ``n`` bytes when it exceeds ``max_bytes``."""
        if n > self.max_bytes:
            raise InputTooLargeError(
                f"The file is too large ({n / MiB:.0f} MiB); the limit is "
                f"{self.max_bytes / MiB:.0f} MiB."
            )

    def check_pixels(self, height: int, width: int) -> None:
        """Refuse a frame of ``height x width`` pixels above ``max_pixels``."""
        if int(height) * int(width) > self.max_pixels:
            raise InputTooLargeError(
                f"The image is too large ({int(height)} x {int(width)} pixels); the limit is "
                f"{self.max_pixels / 1e6:.0f} megapixels."
            )

    def check_frames(self, n: int) -> None:
        """Refuse a multi-frame image declaring more than ``max_frames`` frames."""
        if n > self.max_frames:
            raise InputTooLargeError(
                f"The image declares {int(n)} frames; at most {self.max_frames} are accepted."
            )

    def check_channels(self, n: int) -> None:
        """Refuse a recording with more than ``max_audio_channels`` channels."""
        if int(n) > self.max_audio_channels:
            raise InputTooLargeError(
                f"The recording has {int(n)} channels; the limit is {self.max_audio_channels}."
            )

    def check_duration(self, seconds: float) -> None:
        """Refuse audio longer than ``max_audio_s`` seconds."""
        if seconds > self.max_audio_s:
            raise InputTooLargeError(
                f"The recording is too long ({seconds / 60:.1f} minutes); the limit is "
                f"{self.max_audio_s / 60:.1f} minutes."
            )


DEFAULT_LIMITS = InputLimits()
