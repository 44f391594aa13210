"""``augment`` as a Ray Data stream: the same stages as :mod:`xite.pipeline`, run over blocks of
target rows so that no process ever holds the target corpus' vectors.

The driver reads and validates the corpora (``stages.read_inputs``: the same one-line errors as the
local executor), encodes the English source, builds the index once and puts it in the object store.
Then two passes over the target rows, in blocks of ``block_rows``:

1. encode (an actor pool, one encoder per actor, ``num_gpus`` per actor) -> retrieve (an actor
   pool sharing the index). The vectors stay in Ray's object store (spilled to disk beyond its
   capacity); the driver collects only the neighbours (k ids and scores per row) and the vectors of
   a seeded per-language sample for the projection.
2. the driver runs ``stages.adopt`` and ``stages.expand`` on all neighbours at once — exactly the
   calls of the local executor on the same arrays, so class balancing works and λ is drawn by the
   same seeded generator in the same order — and ``stages.fit_projection`` on the sample (the whole
   corpus when it has at most ``fit_sample`` rows per language, as the local executor does). An
   actor pool then interpolates every block (``stages.interpolate``) and the driver writes each
   output block as a shard as it arrives.

Block order is preserved, so the concatenated shards are the local executor's arrays, row for row.
Memory: each actor holds a block (and the English vectors or index); the driver holds the texts
(read once, also for pairs.jsonl), k neighbours and one expansion entry per target row, and the
projection sample — never target rows x dimension. Between the passes the target vectors live in
Ray's object store (rows x d x 4 bytes), which spills to disk when it is full.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields as dataclass_fields
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from xite import plugins, stages
from xite.errors import ConfigError, XiteError
from xite.recipe import Recipe

DEFAULT_BLOCK_ROWS = 20_000
# LDA/PCA statistics converge long before 50k rows per language; above it the basis is fitted on a
# seeded sample so the fit's float64 copy stays small.
DEFAULT_FIT_SAMPLE = 50_000


@dataclass(frozen=True)
class RayOptions:
    """How the stream is laid out on the cluster. Pool sizes default from the cluster's resources."""

    block_rows: int = DEFAULT_BLOCK_ROWS
    fit_sample: int = DEFAULT_FIT_SAMPLE  # rows per language the projection is fitted on
    encode_actors: int | None = None
    retrieve_actors: int | None = None
    interpolate_actors: int | None = None
    num_gpus: float = 0.0  # per encoder actor (and per interpolation actor when device is cuda)

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any] | None) -> "RayOptions":
        options = dict(options or {})
        known = {f.name for f in dataclass_fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(f"unknown ray option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        made = cls(**options)
        for name in ("block_rows", "fit_sample"):
            value = getattr(made, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"ray option {name} must be an integer >= 1, got {value!r}")
        for name in ("encode_actors", "retrieve_actors", "interpolate_actors"):
            value = getattr(made, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
                raise ConfigError(f"ray option {name} must be an integer >= 1, got {value!r}")
        if not isinstance(made.num_gpus, (int, float)) or made.num_gpus < 0:
            raise ConfigError(f"ray option num_gpus must be a number >= 0, got {made.num_gpus!r}")
        return made

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclass_fields(self)}


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ConfigError("the ray executor needs Ray: pip install 'xite[ray]'") from None
    return ray


# ---------------------------------------------------------------------------------------------
# Actors. Each is built once per pool member and called once per block.


def _block_corpus(batch: dict, is_pair: bool):
    from xite.data.schema import Corpus

    if is_pair:
        return Corpus("<ray block>", pairs=(batch["premise"].tolist(), batch["hypothesis"].tolist()))
    return Corpus("<ray block>", texts=batch["text"].tolist())


class EncodeBlocks:
    """One encoder per actor (a model loads once, not per block)."""

    def __init__(self, spec_name: str, spec_options: dict, is_pair: bool, batch_size: int):
        self.encoder = plugins.create("encoders", spec_name, spec_options)
        self.is_pair = is_pair
        self.batch_size = batch_size

    def __call__(self, batch: dict) -> dict:
        from xite.encoders.cache import EmbeddingCache

        # A fresh cache handle per block: the cache keeps what it wrote in memory, so one handle
        # kept for the whole stream would grow with the corpus.
        cache = EmbeddingCache(self.encoder.cache_key)
        enc = stages.encode(self.encoder, cache, _block_corpus(batch, self.is_pair), "<block>",
                            batch_size=self.batch_size, progress=False)
        n = len(enc.x)
        hits, encoded = np.zeros(n, np.int64), np.zeros(n, np.int64)
        if n:  # per-block cache counts ride on the first row; the driver sums them
            hits[0], encoded[0] = cache.stats.hits, cache.stats.encoded
        return {"target_index": batch["target_index"], "x": enc.x, "cache_hits": hits, "cache_encoded": encoded}


def _resolve(value):
    """Object refs reach an actor's constructor as refs or as values, depending on how they were
    nested; accept both."""
    import ray

    return ray.get(value) if isinstance(value, ray.ObjectRef) else value


class RetrieveBlocks:
    """Searches each block against the English index built once on the driver."""

    def __init__(self, index_ref, x_source_ref, spec_name: str, spec_options: dict, k: int, n_source: int):
        self.spec_name, self.k, self.n_source = spec_name, k, n_source
        if index_ref is not None:
            self.index = _resolve(index_ref)
        else:  # the built index could not travel (a GPU faiss index): build it here, once
            retriever = plugins.create("retrievers", spec_name, spec_options)
            self.index = stages.build_index(retriever, spec_name, _resolve(x_source_ref))

    def __call__(self, batch: dict) -> dict:
        queries = np.ascontiguousarray(batch["x"], dtype=np.float32)
        nb = stages.retrieve(self.index, self.spec_name, queries, self.k, self.n_source)
        return {**batch, "scores": nb.scores, "ids": nb.ids}


def _sampled_rows(batch: dict, wanted) -> dict:
    """The block's rows that are in the projection's sample (``wanted``: sorted target rows)."""
    mine = np.isin(batch["target_index"], _resolve(wanted))
    return {"target_index": batch["target_index"][mine], "x": np.asarray(batch["x"])[mine]}


class InterpolateBlocks:
    """``stages.interpolate`` over the synthetic rows whose target row is in the block."""

    def __init__(self, x_source, expansion: dict, projection, interp: str, device: str):
        # Object-store arrays are read-only and torch warns on those; one writable copy per actor.
        self.x_source = np.array(_resolve(x_source), dtype=np.float32)
        self.ex = _resolve(expansion)
        self.projection = projection
        self.interp = interp
        self.device = device

    def __call__(self, batch: dict) -> dict:
        ti = np.asarray(batch["target_index"], dtype=np.int64)
        x = np.array(batch["x"], dtype=np.float32)
        ex_ti = self.ex["target_index"]
        if len(ti) == 0:
            rows = np.zeros(0, np.int64)
        else:
            lo, hi = int(ti.min()), int(ti.max())
            # The expansion is sorted by target row, so the block's rows are one slice of it.
            a, b = np.searchsorted(ex_ti, lo, "left"), np.searchsorted(ex_ti, hi, "right")
            pos = np.full(hi - lo + 1, -1, np.int64)
            pos[ti - lo] = np.arange(len(ti))
            local = pos[ex_ti[a:b] - lo]
            rows = np.arange(a, b)[local >= 0]
        local_index = pos[ex_ti[rows] - lo] if len(rows) else np.zeros(0, np.int64)
        part = stages.Expansion(local_index, self.ex["source_index"][rows], self.ex["lam"][rows],
                                self.ex["similarity"][rows], self.ex["labels"][rows])
        z = stages.interpolate(x, self.x_source, part, self.projection, self.interp, device=self.device)
        return {"embeddings": z, "labels": part.labels, "lam": part.lam, "target_index": ex_ti[rows],
                "source_index": part.source_index, "similarity": part.similarity}


# ---------------------------------------------------------------------------------------------
# The driver


def _row_tables(inputs: stages.Inputs, block_rows: int) -> list:
    """The target rows as Arrow tables of at most ``block_rows`` rows, in target order."""
    import pyarrow as pa

    tables, offset = [], 0
    for _, corpus in inputs.targets:
        for start in range(0, len(corpus), block_rows):
            stop = min(start + block_rows, len(corpus))
            cols = {"target_index": pa.array(np.arange(offset + start, offset + stop, dtype=np.int64))}
            if corpus.is_pair:
                cols["premise"] = pa.array(corpus.pairs[0][start:stop], pa.large_string())
                cols["hypothesis"] = pa.array(corpus.pairs[1][start:stop], pa.large_string())
            else:
                cols["text"] = pa.array(corpus.texts[start:stop], pa.large_string())
            tables.append(pa.table(cols))
        offset += len(corpus)
    return tables


def sample_rows(n: int, limit: int, seed: int, salt: int) -> np.ndarray:
    """Sorted rows of a seeded sample of at most ``limit`` of ``n`` rows; all of them when n <= limit."""
    if n <= limit:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng([seed, salt])
    return np.sort(rng.choice(n, size=limit, replace=False)).astype(np.int64)


def _subcorpus(corpus, rows: np.ndarray):
    from xite.data.schema import Corpus

    if len(rows) == len(corpus):
        return corpus
    pick = rows.tolist()
    if corpus.is_pair:
        return Corpus(corpus.path, pairs=([corpus.pairs[0][i] for i in pick], [corpus.pairs[1][i] for i in pick]))
    return Corpus(corpus.path, texts=[corpus.texts[i] for i in pick])


def _shareable(ray, index):
    """The built index as an object ref, or None when it cannot be pickled (a GPU index)."""
    import pickle

    try:
        pickle.dumps(index, protocol=5)
    except Exception:
        return None
    return ray.put(index)


def _cluster_sizes(ray, opts: RayOptions, device: str) -> tuple[int, int, int]:
    res = ray.cluster_resources()
    cpus, gpus = int(res.get("CPU", 1)), int(res.get("GPU", 0))
    if opts.num_gpus and gpus == 0:
        # Actors asking for GPUs the cluster lacks would wait forever, not fail.
        raise ConfigError(f"ray option num_gpus={opts.num_gpus} but the Ray cluster has no GPUs; "
                          "start its nodes with `ray start --num-gpus N` or leave num_gpus at 0")
    if device != "cpu" and gpus == 0:
        raise ConfigError(f"--device {device}: the interpolation actors need a GPU and the Ray cluster has none")
    encode = opts.encode_actors or (max(1, int(gpus // opts.num_gpus)) if opts.num_gpus and gpus else max(1, cpus // 2))
    retrieve = opts.retrieve_actors or max(1, cpus // 4)
    interpolate = opts.interpolate_actors or max(1, cpus // 2)
    return encode, retrieve, interpolate


def _unwrap(exc: BaseException) -> BaseException:
    """Ray wraps an error raised in an actor (sometimes twice); give the user xite's own error."""
    seen = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, XiteError):
            return current
        current = getattr(current, "cause", None) or current.__cause__
    return exc


def augment_ray(
    rec: Recipe,
    parts: dict,
    source: str | Path,
    target_list: Sequence[tuple[str, Path]],
    extra_list: Sequence[tuple[str, Path]],
    *,
    out: str | Path | None,
    overwrite: bool,
    fields: stages.Fields,
    batch_size: int,
    device: str,
    progress: bool,
    say: Callable[[str], None],
    address: str | None,
    options: Mapping[str, Any] | None,
):
    opts = RayOptions.from_mapping(options)
    if out is None:
        raise ConfigError("the ray executor writes its rows as shards: give an output directory (--out)")
    ray = import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=progress, configure_logging=False)
    try:
        return _augment(ray, rec, parts, source, target_list, extra_list, out=Path(out), overwrite=overwrite, fields=fields,
                        batch_size=batch_size, device=device, progress=progress, say=say, opts=opts)
    except Exception as exc:
        unwrapped = _unwrap(exc)
        if unwrapped is exc:
            raise
        raise unwrapped from None
    finally:
        if started_here:
            ray.shutdown()


def _augment(ray, rec, parts, source, target_list, extra_list, *, out, overwrite, fields, batch_size, device, progress, say, opts):
    ctx = ray.data.DataContext.get_current()
    saved = ctx.execution_options.preserve_order, ctx.enable_progress_bars
    ctx.execution_options.preserve_order = True  # shards come out in target order
    ctx.enable_progress_bars = progress
    try:
        return _stream(ray, rec, parts, source, target_list, extra_list, out=out, overwrite=overwrite, fields=fields,
                       batch_size=batch_size, device=device, progress=progress, say=say, opts=opts)
    finally:  # the caller's Ray session keeps its own settings
        ctx.execution_options.preserve_order, ctx.enable_progress_bars = saved


def _stream(ray, rec, parts, source, target_list, extra_list, *, out, overwrite, fields, batch_size, device, progress, say, opts):
    from xite.data.writers import atomic_output_dir
    from xite.encoders.cache import EmbeddingCache
    from xite.pipeline import AugmentResult, _warn_uncovered, advise_index, pair_rows
    from xite.run_io import build_manifest, write_shard

    n_encode, n_retrieve, n_interp = _cluster_sizes(ray, opts, device)  # before any work: GPU checks
    timer = stages.Timer()
    with timer.stage("read"):
        inputs = stages.read_inputs(source, target_list, extra_list, fields=fields, source_language=rec.source_language)
    _warn_uncovered(parts["encoder"], [lang for lang, _ in list(target_list) + list(extra_list)], say)
    n_target = sum(len(c) for _, c in inputs.targets)
    advise_index(rec, parts["retriever"], len(inputs.source), n_target, say)

    enc = parts["encoder"]
    cache = EmbeddingCache(enc.cache_key)
    is_pair = inputs.source.is_pair
    with timer.stage("encode"):
        say(f"encoding the source with {enc.name} on the driver ({len(inputs.source)} rows)")
        src = stages.encode(enc, cache, inputs.source, rec.source_language, batch_size=batch_size, progress=progress)
        extra_rows = [sample_rows(len(c), opts.fit_sample, rec.seed, 1_000 + i) for i, (_, c) in enumerate(inputs.extras)]
        extras = [stages.encode(enc, cache, _subcorpus(c, rows), lang, batch_size=batch_size, progress=progress)
                  for (lang, c), rows in zip(inputs.extras, extra_rows)]
    with timer.stage("build_index"):
        index = stages.build_index(parts["retriever"], rec.retriever.name, src.x)
    index_ref = _shareable(ray, index)
    x_source_ref = ray.put(src.x)
    if index_ref is None:
        say("note: the built index cannot be sent to the actors; each retrieval actor builds its own")
    k = parts["adopter"].k
    say(f"ray: {n_target} target rows in blocks of {opts.block_rows}; {n_encode} encoder, {n_retrieve} retrieval, "
        f"{n_interp} interpolation actor(s)")

    # Pass 1: encode + retrieve; the vectors stay in the object store for pass 2.
    started = time.perf_counter()
    rows = ray.data.from_arrow(_row_tables(inputs, opts.block_rows))
    encoded = rows.map_batches(
        EncodeBlocks, batch_size=None, batch_format="numpy",
        fn_constructor_args=(rec.encoder.name, dict(rec.encoder.options), is_pair, batch_size),
        compute=ray.data.ActorPoolStrategy(size=n_encode), num_gpus=opts.num_gpus or None,
    )
    searched = encoded.map_batches(
        RetrieveBlocks, batch_size=None, batch_format="numpy",
        fn_constructor_args=(index_ref, x_source_ref, rec.retriever.name, dict(rec.retriever.options), k, len(src.x)),
        compute=ray.data.ActorPoolStrategy(size=n_retrieve),
    ).materialize()

    # On the driver: every row's neighbours, and the sampled rows' vectors for the projection.
    offsets = np.cumsum([0] + [len(c) for _, c in inputs.targets])
    wanted = np.concatenate([offsets[i] + sample_rows(len(c), opts.fit_sample, rec.seed, i) for i, (_, c) in enumerate(inputs.targets)])
    scores, ids, index_of, sampled, sampled_at = [], [], [], [], []
    hits = encoded_rows = 0
    # The driver takes only small columns and the sampled rows' vectors: pulling whole blocks would
    # map every target vector into the driver.
    small = searched.select_columns(["target_index", "scores", "ids", "cache_hits", "cache_encoded"])
    for batch in small.iter_batches(batch_size=None, batch_format="numpy"):
        scores.append(batch["scores"])
        ids.append(batch["ids"])
        index_of.append(batch["target_index"])
        hits += int(batch["cache_hits"].sum())
        encoded_rows += int(batch["cache_encoded"].sum())
    wanted_ref = ray.put(wanted)
    picked = searched.map_batches(_sampled_rows, batch_size=None, batch_format="numpy", fn_args=(wanted_ref,))
    for batch in picked.iter_batches(batch_size=None, batch_format="numpy"):
        if len(batch["target_index"]):
            sampled.append(np.array(batch["x"], dtype=np.float32).reshape(len(batch["target_index"]), -1))
            sampled_at.append(np.asarray(batch["target_index"]))
    cache.stats.hits += hits
    cache.stats.encoded += encoded_rows
    order = np.concatenate(index_of) if index_of else np.zeros(0, np.int64)
    if not np.array_equal(order, np.arange(n_target)):
        raise RuntimeError("ray executor: the blocks came back out of order or incomplete (preserve_order was not honoured)")
    neighbours = stages.Neighbours(np.concatenate(scores), np.concatenate(ids))
    timer.seconds["encode+retrieve (ray)"] = round(time.perf_counter() - started, 3)

    with timer.stage("adopt"):
        adoption = stages.adopt(parts["adopter"], rec.adopter.name, neighbours, inputs.source_labels, len(inputs.label_names))
    del neighbours, scores, ids
    with timer.stage("project"):
        x_sampled = np.concatenate(sampled) if sampled else np.zeros((0, src.x.shape[1]), np.float32)
        at = np.concatenate(sampled_at) if sampled_at else np.zeros(0, np.int64)
        fitted = []
        for i, (lang, corpus) in enumerate(inputs.targets):
            mine = (at >= offsets[i]) & (at < offsets[i + 1])
            fitted.append(stages.Encoded(lang, corpus, x_sampled[mine]))
        projection = stages.fit_projection(parts["projector"], rec.projector.name, src, fitted + extras)
        del x_sampled, fitted, sampled
    if projection.info.get("warning"):
        say(f"note: {projection.info['warning']}")
    with timer.stage("expand"):
        # The local executor's synthesize: one generator seeded with the recipe's seed, all rows.
        ex = stages.expand(adoption, rec.per_target, parts["interpolator"], rec.interpolator.name, np.random.default_rng(rec.seed))

    # Stand-ins carrying each corpus and its row count, for the per-row languages, pairs and manifest.
    tgts = [stages.Encoded(lang, c, np.empty((len(c), 0), np.float32)) for lang, c in inputs.targets]
    extras_all = [stages.Encoded(lang, c, np.empty((len(c), 0), np.float32)) for lang, c in inputs.extras]
    languages = stages.row_languages(tgts, ex.target_index)

    started = time.perf_counter()
    expansion = {"target_index": ex.target_index, "source_index": ex.source_index, "lam": ex.lam,
                 "similarity": ex.similarity, "labels": ex.labels}
    interpolated = searched.map_batches(
        InterpolateBlocks, batch_size=None, batch_format="numpy",
        fn_constructor_args=(x_source_ref, ray.put(expansion), projection, parts["interpolator"].interp, device),
        compute=ray.data.ActorPoolStrategy(size=n_interp),
        num_gpus=(opts.num_gpus or 1) if device != "cpu" else None,
    )
    shards, written = [], 0
    with atomic_output_dir(out, overwrite=overwrite) as tmp:
        for batch in interpolated.iter_batches(batch_size=None, batch_format="numpy"):
            n = len(batch["target_index"])
            if n == 0 and shards:
                continue
            part = stages.Expansion(*(np.asarray(batch[key]) for key in ("target_index", "source_index", "lam", "similarity", "labels")))
            pairs = pair_rows(src, tgts, part, languages[written:written + n], inputs.label_names)
            tensors = {key: np.asarray(batch[key]) for key in ("embeddings", "labels", "lam", "target_index", "source_index", "similarity")}
            tensors["embeddings"] = tensors["embeddings"].reshape(n, src.x.shape[1])
            shards.append(write_shard(Path(tmp), len(shards), tensors, pairs))
            written += n
        if not shards:  # no target rows at all cannot happen (read_inputs refuses empty files)
            raise RuntimeError("ray executor: the stream produced no blocks")
        if written != len(ex):
            raise RuntimeError(f"ray executor: wrote {written} synthetic rows, expected {len(ex)}")
        timer.seconds["interpolate+write (ray)"] = round(time.perf_counter() - started, 3)
        synthetic = stages.Synthetic(np.zeros((0, src.x.shape[1]), np.float32), ex, languages)
        manifest = build_manifest(rec, inputs, src, tgts, extras_all, parts, projection, adoption, synthetic, cache, timer)
        manifest.shards = shards
        manifest.executor = {"name": "ray", **opts.to_dict(), "actors": {"encode": n_encode, "retrieve": n_retrieve,
                                                                         "interpolate": n_interp}}
        manifest.output = str(out)
        manifest.write(Path(tmp))
    # The rows live in the shards; in memory only what the driver had anyway.
    return AugmentResult(None, ex.labels, ex.lam, ex.target_index, ex.source_index, ex.similarity, languages,
                         inputs.label_names, manifest, [], out_dir=out)
