"""Raw input bytes, read strictly: shared by the readers (unreadable or empty files, incomplete zstd frames)."""

from __future__ import annotations

from pathlib import Path

import zstandard

from flowsense.errors import IngestError

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def decompress_frames(raw: bytes, path: str | Path) -> bytes:
    """Decompress every zstd frame of ``raw``; a corrupt frame or one cut short raises :class:`IngestError`
    (``zstandard`` alone would silently return the bytes of a truncated frame)."""
    out: list[bytes] = []
    rest = raw
    frame = 0
    while rest:
        frame += 1
        dec = zstandard.ZstdDecompressor().decompressobj()
        try:
            out.append(dec.decompress(rest))
        except zstandard.ZstdError as exc:
            raise IngestError(path, f"corrupt zstd data in frame {frame}: {exc}") from exc
        if not dec.eof:
            raise IngestError(path, f"file is truncated: zstd frame {frame} is incomplete")
        rest = dec.unused_data
    return b"".join(out)


def read_nonempty(path: Path) -> bytes:
    """The bytes of ``path``; an unreadable or empty file raises :class:`IngestError`."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise IngestError(path, f"cannot read file ({exc})") from exc
    if not raw:
        raise IngestError(path, "file is empty")
    return raw
