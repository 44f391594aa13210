"""``finetune``: the encoder-level XITE, composed from the same stages as ``augment`` plus the
training loop (:mod:`xite.finetuning.loop`).

Retrieval, label adoption and λ are the recipe's components through :mod:`xite.stages`: the pairs
are found once with the encoder as loaded (through the embedding cache when that is the recipe's
own encoder), read from an ``augment`` run (``pairs_from``), or found again each epoch with the
encoder being trained (``refresh_pairs``). The projection is fitted by the recipe's projector on
embeddings taken at the mixing point.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from xite import stages
from xite.errors import ConfigError, InputError, XiteError
from xite.finetuning.loop import FinetuneOptions, LabeledRows, PairSet, XiteSource
from xite.finetuning.loop import train_encoder
from xite.recipe import Recipe
from xite.stages import Fields


def finetune(
    source: str | Path,
    targets: Mapping[str, str | Path] | Sequence[tuple[str, str | Path]] | None = None,
    recipe: Recipe | str | Path | Mapping | None = None,
    *,
    out: str | Path,
    dev: str | Path | None = None,
    options: FinetuneOptions | Mapping[str, Any] | None = None,
    init: str | Path | None = None,
    pairs_from: str | Path | None = None,
    fields: Fields = Fields(),
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    log: Callable[[dict], None] | None = None,
    **choices: Any,
):
    """Fine-tune the encoder (and a linear head) on the English ``source`` plus XITE rows made from
    the unlabeled ``targets`` (none: plain English fine-tuning, the zero-shot baseline of this
    level). ``recipe``/``choices`` pick retriever, adopter, projector and interpolator as for
    ``augment``; ``options`` are the training options (:class:`FinetuneOptions`). Returns the
    :class:`~xite.finetuning.modeldir.FinetunedModel` written to ``out``."""
    from xite.data.readers import label_set, read_corpus
    from xite.pipeline import as_lang_paths, make_recipe

    rec = make_recipe(recipe, **choices)
    opts = _options(options, rec)
    target_list = as_lang_paths(targets)
    from xite.checks import check_output_not_input

    check_output_not_input(out, [source, dev, init, pairs_from, *(p for _, p in target_list),
                                 recipe if isinstance(recipe, (str, Path)) else None])
    if out is not None and Path(out).exists() and not (overwrite or resume):
        raise XiteError(f"output directory {out} exists; pass --overwrite to replace it (or --resume to continue)")
    if target_list:
        inputs = stages.read_inputs(source, target_list, fields=fields, source_language=rec.source_language)
        src, names = inputs.source, inputs.label_names
    else:
        if pairs_from is not None:
            raise ConfigError("--pairs needs the --target corpora the run was made from")
        src = read_corpus(source, labeled=True, **fields.reader_kwargs())
        names = label_set(src.labels)
        if len(names) < 2:
            raise InputError(src.path, f"the source needs at least two labels, found {names}", field=src.label_field)
    english = LabeledRows.from_corpus(src, names)
    dev_rows = _dev_rows(dev, fields, names, src.is_pair)
    xite = None if not target_list else xite_source(inputs, rec, opts, init=init, pairs_from=pairs_from, progress=progress)
    return train_encoder(english, dev_rows, xite, opts, out, init=init, resume=resume, overwrite=overwrite, progress=progress, log=log)


def _options(options: FinetuneOptions | Mapping[str, Any] | None, rec: Recipe) -> FinetuneOptions:
    """Training options; the recipe's seed unless the options name one, the recipe's encoder."""
    if isinstance(options, FinetuneOptions):
        return options
    values = dict(options or {})
    values.setdefault("seed", rec.seed)
    values.setdefault("encoder", rec.encoder.name)
    return FinetuneOptions.from_dict(values)


def _dev_rows(dev, fields: Fields, names: list[str], pairs: bool) -> LabeledRows | None:
    from xite.data.readers import read_corpus

    if dev is None:
        return None
    corpus = read_corpus(dev, labeled=True, **fields.reader_kwargs())
    if corpus.is_pair != pairs:
        raise InputError(corpus.path, "holds text pairs and the source single texts (or the reverse)")
    unknown = sorted(set(corpus.labels) - set(names))
    if unknown:
        raise InputError(corpus.path, f"labels {unknown} are not among the source's {names}", field=corpus.label_field)
    return LabeledRows.from_corpus(corpus, names)


def _rows(corpus):
    return corpus.texts if not corpus.is_pair else corpus.pairs


def _concat_rows(corpora) -> Any:
    if corpora[0].is_pair:
        return ([t for c in corpora for t in c.pairs[0]], [t for c in corpora for t in c.pairs[1]])
    return [t for c in corpora for t in c.texts]


def xite_source(inputs: stages.Inputs, rec: Recipe, opts: FinetuneOptions, *, init=None, pairs_from=None,
                progress: bool = True) -> XiteSource:
    """The target rows and the two callables the loop uses: pairs (retrieve + adopt + λ) and the
    projection at the mixing point, each through the recipe's components."""
    from xite.pipeline import create_components

    parts = create_components(rec)
    corpora = [c for _, c in inputs.targets]
    languages = [lang for lang, c in inputs.targets for _ in range(len(c))]
    fixed = read_pairs(pairs_from, inputs) if pairs_from is not None else None
    state = {"calls": 0}

    def make_pairs(embed_fn) -> PairSet:
        state["calls"] += 1
        if fixed is not None and state["calls"] == 1:
            return fixed
        if state["calls"] == 1 and init is None and rec.encoder.name == opts.encoder:
            # The encoder as loaded is the recipe's own encoder: its cached vectors are the same.
            x_src, x_tgt = _cached_embeddings(parts["encoder"], inputs, progress)
        else:
            x_src, x_tgt = embed_fn(_rows(inputs.source)), embed_fn(_concat_rows(corpora))
        return find_pairs(parts, rec, x_src, x_tgt, inputs.source_labels, len(inputs.label_names))

    return XiteSource(_concat_rows(corpora), languages, make_pairs, projection_fitter(parts["projector"], rec),
                      source_language=rec.source_language, digest=":".join(c.digest for c in corpora))


def projection_fitter(projector, rec: Recipe):
    """``make_projection`` for the loop: the recipe's projector fitted through the stage on the
    embeddings taken at the mixing point, keyed by language (the source language included)."""
    def make_projection(by_language: dict[str, np.ndarray]):
        src = stages.Encoded(rec.source_language, None, by_language[rec.source_language])
        others = [stages.Encoded(lang, None, x) for lang, x in by_language.items() if lang != rec.source_language]
        return stages.fit_projection(projector, rec.projector.name, src, others)

    return make_projection


def _cached_embeddings(encoder, inputs: stages.Inputs, progress: bool) -> tuple[np.ndarray, np.ndarray]:
    from xite.encoders.cache import EmbeddingCache

    cache = EmbeddingCache(encoder.cache_key)
    src = stages.encode(encoder, cache, inputs.source, inputs.source_language, progress=progress)
    tgts = [stages.encode(encoder, cache, c, lang, progress=progress) for lang, c in inputs.targets]
    return src.x, np.concatenate([e.x for e in tgts])


def find_pairs(parts: dict, rec: Recipe, x_src: np.ndarray, x_tgt: np.ndarray, source_labels: np.ndarray,
               n_classes: int, predictions: np.ndarray | None = None) -> PairSet:
    """retrieve -> adopt -> expand (λ from the interpolator, seeded), as ``augment`` does."""
    index = stages.build_index(parts["retriever"], rec.retriever.name, x_src)
    neighbours = stages.retrieve(index, rec.retriever.name, x_tgt, parts["adopter"].k, len(x_src))
    adoption = stages.adopt(parts["adopter"], rec.adopter.name, neighbours, source_labels, n_classes, predictions)
    ex = stages.expand(adoption, rec.per_target, parts["interpolator"], rec.interpolator.name, np.random.default_rng(rec.seed))
    return PairSet(ex.target_index, ex.source_index, ex.labels, ex.lam)


def read_pairs(run_dir: str | Path, inputs: stages.Inputs) -> PairSet:
    """The pairs of an ``augment`` run, checked against the corpora given here (same source,
    same targets in the same order, same labels)."""
    from xite.run_io import read_run

    run = read_run(run_dir)
    info = run.info
    path = Path(run_dir) / "manifest.json"
    if info.source.get("digest") != inputs.source.digest:
        raise InputError(path, f"the run was made from another source corpus than {inputs.source.path}", field="source.digest")
    got = [(t.get("language"), t.get("digest")) for t in info.targets]
    want = [(lang, c.digest) for lang, c in inputs.targets]
    if got != want:
        raise InputError(path, "the run was made from other target corpora (or another order) than the --target ones", field="targets")
    if list(info.label_names) != list(inputs.label_names):
        raise InputError(path, f"labels {info.label_names} differ from the source's {inputs.label_names}", field="label_names")
    t = run.tensors
    return PairSet(t["target_index"], t["source_index"], t["labels"], t["lam"])
