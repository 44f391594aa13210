"""The benchmark's corpora, each read and encoded once (through the embedding cache)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from xite.errors import XiteError


@dataclass
class Split:
    x: np.ndarray
    y: np.ndarray | None
    digest: str


@dataclass
class TaskData:
    task: str
    label_names: list[str]
    pairs: bool
    source: dict[str, Split]  # train / dev / test
    targets: dict[str, dict[str, Split]]  # lang -> unlabeled / dev / test
    encoder: dict
    source_language: str = "en"


def load_task(data: Path, task: str, languages: list[str], cfg: Mapping, progress: bool, say: Callable[[str], None]) -> TaskData:
    """Read and encode ``DATA/<task>/<lang>/{train,dev,test,unlabeled}.jsonl``."""
    from xite import plugins, stages
    from xite.data.readers import label_set, read_corpus
    from xite.encoders.cache import EmbeddingCache
    from xite.training import encoder_identity

    exp = cfg["experiment"]
    root = Path(data) / task
    src_lang = exp["source_language"]
    if not root.is_dir():
        raise XiteError(f"{root}: no such task directory (expected DATA/<task>/<lang>/*.jsonl)")
    enc_spec, enc_opts = exp["encoder"], dict(exp.get("encoder_options", {}))
    enc = plugins.create("encoders", enc_spec, enc_opts)
    cache = EmbeddingCache(enc.cache_key)
    batch = int(exp.get("batch_size", 64))

    def split(corpus, lang: str, names: list[str] | None) -> Split:
        encoded = stages.encode(enc, cache, corpus, lang, batch_size=batch, progress=progress)
        return Split(encoded.x, None if names is None else corpus.encode_labels(names), corpus.digest)

    def load(lang: str, name: str, labeled: bool | None, names: list[str] | None) -> Split:
        path = root / lang / f"{name}.jsonl"
        if not path.is_file():
            raise XiteError(f"{path}: missing (the experiment needs {src_lang} train/dev/test and <lang> unlabeled/dev/test)")
        return split(read_corpus(path, labeled=labeled), lang, names)

    say(f"encoding {task} with {enc.name} (cached rows are not encoded again)")
    train_c = read_corpus(root / src_lang / "train.jsonl", labeled=True)
    names = label_set(train_c.labels)
    train_c = sample_rows(train_c, int(exp.get("max_source_rows") or 0), int(exp.get("source_sample_seed", 13)))
    source = {"train": split(train_c, src_lang, names)}
    source.update({name: load(src_lang, name, True, names) for name in ("dev", "test")})
    targets = {
        lang: {"unlabeled": load(lang, "unlabeled", False, None), "dev": load(lang, "dev", True, names), "test": load(lang, "test", True, names)}
        for lang in languages
    }
    return TaskData(task, names, train_c.is_pair, source, targets, encoder_identity(enc, enc_spec, enc_opts), src_lang)


def sample_rows(corpus, n: int, seed: int):
    """At most ``n`` rows of ``corpus`` (0: all), a seeded sample in file order. The sample for a
    smaller ``n`` is a subset of the one for a larger ``n`` (a prefix of one permutation), so an
    embedding cache filled for one size serves every smaller one."""
    from xite.data.schema import Corpus

    if n <= 0 or n >= len(corpus):
        return corpus
    keep = np.sort(np.random.default_rng(seed).permutation(len(corpus))[:n])
    pick = lambda seq: [seq[i] for i in keep]  # noqa: E731
    texts = None if corpus.texts is None else pick(corpus.texts)
    pairs = None if corpus.pairs is None else (pick(corpus.pairs[0]), pick(corpus.pairs[1]))
    labels = None if corpus.labels is None else pick(corpus.labels)
    sub = Corpus(corpus.path, texts=texts, pairs=pairs, labels=labels, fields=dict(corpus.fields),
                 line_numbers=pick(corpus.line_numbers))
    sub.digest = f"{corpus.digest}:sample{n}@{seed}"
    return sub
