"""``xite lsar-inspect``: how many directions separate the languages of some corpora.

Prints the singular values of the languages' mean embeddings (centred as LSAR does) per rank,
with each one's share and the cumulative share, so that a rank can be chosen before ``augment``.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import numpy as np
import typer

from xite import plugins
from xite.data.readers import read_corpus
from xite.data.schema import Corpus
from xite.encoders.cache import EmbeddingCache, encode_corpus


def _first_rows(corpus: Corpus, n: int | None) -> Corpus:
    if n is None or len(corpus) <= n:
        return corpus
    if corpus.pairs is not None:
        return Corpus(corpus.path, pairs=(corpus.pairs[0][:n], corpus.pairs[1][:n]))
    return Corpus(corpus.path, texts=corpus.texts[:n])


def singular_value_rows(singular: np.ndarray) -> list[tuple[int, float, float, float]]:
    """(rank, singular value, share of the total squared, cumulative share) per rank."""
    energy = singular.astype(np.float64) ** 2
    total = float(energy.sum()) or 1.0
    cumulative = np.cumsum(energy) / total
    return [(i + 1, float(s), float(e / total), float(c)) for i, (s, e, c) in enumerate(zip(singular, energy, cumulative))]


def lsar_inspect(
    corpus: List[str] = typer.Argument(..., help="LANG=PATH, one per language (at least two)."),
    encoder: str = typer.Option("e5-small", help="Encoder to embed the corpora with."),
    max_rows: Optional[int] = typer.Option(None, "--max-rows", min=1, help="Use at most this many rows of each corpus (the first ones)."),
    batch_size: int = typer.Option(64, help="Encoding batch size."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Print LSAR's singular values per rank for the given corpora (LANG=PATH ...)."""
    from xite_lsar import language_means, lsar_subspace

    pairs = []
    for value in corpus:
        lang, sep, path = value.partition("=")
        if not sep or not lang.strip() or not path:
            raise typer.BadParameter(f"expected LANG=PATH, got {value!r}", param_hint="CORPUS")
        pairs.append((lang.strip(), Path(path)))
    languages = [lang for lang, _ in pairs]
    if len(set(languages)) < 2:
        raise typer.BadParameter("give corpora of at least two different languages", param_hint="CORPUS")
    enc = plugins.create("encoders", encoder)
    cache = EmbeddingCache(enc.cache_key)
    blocks, tags = [], []
    for lang, path in pairs:
        rows = _first_rows(read_corpus(path, labeled=None), max_rows)
        blocks.append(encode_corpus(enc, cache, rows, batch_size, not quiet))
        tags += [lang] * len(rows)
    x = np.concatenate(blocks).astype(np.float64)
    names, means = language_means(x, np.asarray(tags, dtype=object))
    _, singular, agnostic = lsar_subspace(means, len(names) - 1)
    singular = singular[: len(names) - 1]
    counts = ", ".join(f"{lang} {tags.count(lang)}" for lang in names)
    typer.echo(f"LSAR over {len(names)} languages ({counts} rows), encoder {enc.name} (dim {enc.dim})")
    typer.echo(f"language-agnostic component norm: {float(np.linalg.norm(agnostic)):.4f}")
    typer.echo("rank  singular value  share  cumulative")
    for rank, value, share, cumulative in singular_value_rows(singular):
        typer.echo(f"{rank:>4}  {value:>14.5f}  {share:>5.1%}  {cumulative:>10.1%}")
