"""Decompressing readers for segment files: gzip and zstd as raw binary streams.

Damaged or cut-off compressed data raises EOFError (never ``zlib.error`` or a zstandard
error), so readers handle every kind of damage one way. Used by :func:`.segments.open_segment`.
"""

from __future__ import annotations

import gzip
import io
import zlib
from typing import IO, Any

__all__ = ["GzipRaw", "ZstdRaw"]

_ZSTD_CHUNK = 1024  # compressed bytes per decompression step: at most ~32 MiB of output


class GzipRaw(io.RawIOBase):
    """The decompressed bytes of a gzip file; damaged deflate data (``zlib.error``) raises
    EOFError like a cut-off file does. Closing it closes the file too."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file
        self._gzip = gzip.GzipFile(filename="", mode="rb", fileobj=file)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            return self._gzip.readinto(buffer)
        except zlib.error as exc:
            raise EOFError(f"damaged gzip data: {exc}") from exc

    def close(self) -> None:
        try:
            try:
                self._gzip.close()
            finally:
                self._file.close()
        finally:
            super().close()


class ZstdRaw(io.RawIOBase):
    """The decompressed bytes of a zstd file, every frame of it.

    Damaged data (a ``zstandard.ZstdError``) and data cut off inside a frame raise EOFError,
    as gzip does. Output is bounded per step (small input chunks), so a crafted file cannot
    make one read allocate gigabytes. Closing it closes the file too.
    """

    def __init__(self, file: IO[bytes]) -> None:
        import zstandard

        self._file = file
        self._error: type[Exception] = zstandard.ZstdError
        self._dctx = zstandard.ZstdDecompressor()
        self._frame: Any = None  # the current frame's decompressor; None between frames
        self._out = b""
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self._pos >= len(self._out):
            if not self._decompress():
                return 0
        view = memoryview(buffer).cast("B")
        n = min(len(view), len(self._out) - self._pos)
        view[:n] = self._out[self._pos : self._pos + n]
        self._pos += n
        return n

    def _decompress(self) -> bool:
        """Decompress the next input chunk into ``_out``; False at the clean end of input."""
        data = self._file.read(_ZSTD_CHUNK)
        if not data:
            if self._frame is not None:
                raise EOFError("zstd data ends inside a frame: the file is cut off")
            return False
        parts: list[bytes] = []
        while data:
            if self._frame is None:
                self._frame = self._dctx.decompressobj()
            try:
                parts.append(self._frame.decompress(data))
            except self._error as exc:
                raise EOFError(f"damaged zstd data: {exc}") from exc
            data = b""
            if self._frame.eof:  # the frame ended: what follows starts the next one
                data = self._frame.unused_data
                self._frame = None
        self._out, self._pos = b"".join(parts), 0
        return True

    def close(self) -> None:
        try:
            self._file.close()
        finally:
            super().close()
