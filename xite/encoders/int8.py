"""The int8 fast path: a transformers BERT-family encoder run by CTranslate2 with int8 weights.

Chosen by measurement against torch's dynamic quantization and onnxruntime's (README, "Encoding
speed"): CTranslate2 quantizes each weight row and, at run time, each token's activations with
their own scale, which keeps every sentence's embedding at cosine >= 0.99 to fp32; both
per-tensor schemes fell to about 0.96-0.98 on some sentences of the same mix.

The CTranslate2 model is built once from the fp32 model's weights (the same tensors, no
transformers converter: CTranslate2's own rejects transformers 5 configs) and kept under
``xite_home()/models/ct2-int8/<encoder cache key>``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from ..errors import ConfigError
from ..paths import xite_home
from .model_dirs import build_atomically, build_once

ENGINE = "ct2"
# Model types whose base-model state dict has BertModel's layout; XLM-R only shifts positions.
SUPPORTED_MODEL_TYPES = ("bert", "xlm-roberta")
_INFO_FILE = "xite_int8.json"


def require_ctranslate2():
    try:
        import ctranslate2
    except ImportError as exc:
        raise ConfigError(
            "precision int8 needs the 'ctranslate2' package: pip install 'xite[int8]'"
        ) from exc
    return ctranslate2


def check_model_type(config, label: str) -> None:
    model_type = getattr(config, "model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ConfigError(
            f"{label}: precision int8 supports {', '.join(SUPPORTED_MODEL_TYPES)} models; "
            f"this one is {model_type!r} (use precision fp32)"
        )
    if getattr(config, "position_embedding_type", "absolute") != "absolute":
        raise ConfigError(f"{label}: precision int8 needs absolute position embeddings")


def _array(state: Mapping, key: str) -> np.ndarray:
    return state[key].detach().float().cpu().numpy()


def _set_linear(spec, state: Mapping, prefix: str) -> None:
    spec.weight = _array(state, f"{prefix}.weight")
    spec.bias = _array(state, f"{prefix}.bias")


def _set_layer_norm(spec, state: Mapping, prefix: str) -> None:
    spec.gamma = _array(state, f"{prefix}.weight")
    spec.beta = _array(state, f"{prefix}.bias")


def _position_offset(config) -> int:
    """XLM-R numbers positions from padding_idx + 1 (rows before it are never used);
    BERT from 0."""
    return config.pad_token_id + 1 if config.model_type == "xlm-roberta" else 0


def _fused_qkv(state: Mapping, prefix: str):
    """CTranslate2 runs query, key and value as one [3H, H] product."""
    from ctranslate2.specs import common_spec

    fused = common_spec.LinearSpec()
    parts = [f"{prefix}.attention.self.{name}" for name in ("query", "key", "value")]
    fused.weight = np.concatenate([_array(state, f"{p}.weight") for p in parts])
    fused.bias = np.concatenate([_array(state, f"{p}.bias") for p in parts])
    return fused


def _set_layer(layer_spec, state: Mapping, prefix: str) -> None:
    attention = layer_spec.self_attention
    fused = _fused_qkv(state, prefix)
    attention.linear[0].weight, attention.linear[0].bias = fused.weight, fused.bias
    _set_linear(attention.linear[1], state, f"{prefix}.attention.output.dense")
    _set_layer_norm(attention.layer_norm, state, f"{prefix}.attention.output.LayerNorm")
    _set_linear(layer_spec.ffn.linear_0, state, f"{prefix}.intermediate.dense")
    _set_linear(layer_spec.ffn.linear_1, state, f"{prefix}.output.dense")
    _set_layer_norm(layer_spec.ffn.layer_norm, state, f"{prefix}.output.LayerNorm")


def encoder_spec(model, vocabulary: list[str]):
    """A CTranslate2 TransformerEncoderModelSpec holding ``model``'s weights (a BertModel or
    XLMRobertaModel, post-norm, token-type embeddings added to the word embeddings)."""
    from ctranslate2.converters.transformers import _SUPPORTED_ACTIVATIONS
    from ctranslate2.specs import common_spec, transformer_spec

    config = model.config
    activation = _SUPPORTED_ACTIVATIONS.get(config.hidden_act)
    if activation is None:
        raise ConfigError(f"precision int8: activation {config.hidden_act!r} is not supported")
    encoder = transformer_spec.TransformerEncoderSpec(
        config.num_hidden_layers,
        config.num_attention_heads,
        pre_norm=False,
        activation=activation,
        layernorm_embedding=True,
        num_source_embeddings=2,
        embeddings_merge=common_spec.EmbeddingsMerge.ADD,
    )
    encoder.scale_embeddings = False
    state = model.state_dict()
    encoder.embeddings[0].weight = _array(state, "embeddings.word_embeddings.weight")
    encoder.embeddings[1].weight = _array(state, "embeddings.token_type_embeddings.weight")
    positions = _array(state, "embeddings.position_embeddings.weight")
    encoder.position_encodings.encodings = positions[_position_offset(config) :]
    _set_layer_norm(encoder.layernorm_embedding, state, "embeddings.LayerNorm")
    for index, layer_spec in enumerate(encoder.layer):
        _set_layer(layer_spec, state, f"encoder.layer.{index}")

    spec = transformer_spec.TransformerEncoderModelSpec(encoder)
    spec.config.layer_norm_epsilon = config.layer_norm_eps
    spec.register_vocabulary(_padded_vocabulary(vocabulary, config.vocab_size))
    return spec


def _padded_vocabulary(tokens: list[str], size: int) -> list[str]:
    """One entry per embedding row: xite passes token ids, so names only need to be distinct."""
    tokens = list(tokens[:size])
    return tokens + [f"<xite_extra_{i}>" for i in range(size - len(tokens))]


def tokenizer_vocabulary(tokenizer) -> list[str]:
    return [token for token, _ in sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])]


def int8_dir(cache_key: str) -> Path:
    return xite_home() / "models" / "ct2-int8" / cache_key


def _is_current(path: Path) -> bool:
    return (path / _INFO_FILE).is_file() and (path / "model.bin").is_file()


def ensure_int8_model(cache_key: str, load_fp32: Callable[[], tuple]) -> Path:
    """The CTranslate2 int8 model for the encoder whose fp32 vectors ``cache_key`` names,
    building it (once, ~10-20 s) from ``load_fp32() -> (model, tokenizer)`` if missing."""
    ctranslate2 = require_ctranslate2()

    def write(tmp: Path) -> None:
        model, tokenizer = load_fp32()
        spec = encoder_spec(model, tokenizer_vocabulary(tokenizer))
        del model
        spec.validate()
        spec.optimize(quantization="int8")
        spec.save(str(tmp))
        info = {"source": cache_key, "ctranslate2_version": ctranslate2.__version__, "quantization": "int8"}
        (tmp / _INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")

    return build_once(int8_dir(cache_key), _is_current, lambda dest: build_atomically(dest, write))


def ct2_forward(model_dir: Path, pooling: str, threads: int):
    """batch of token id lists -> pooled float32 [rows, hidden], computed in int8 by CTranslate2
    (which pads and masks the batch itself)."""
    import torch

    from ._transformers import length_mask, pool

    ctranslate2 = require_ctranslate2()
    engine = ctranslate2.Encoder(str(model_dir), device="cpu", compute_type="int8", intra_threads=threads)

    def forward(batch: list[list[int]]) -> np.ndarray:
        hidden = torch.from_numpy(np.asarray(engine.forward_batch(batch).last_hidden_state))
        mask = length_mask([len(ids) for ids in batch])
        return pool(hidden, mask, pooling).numpy()

    return forward
