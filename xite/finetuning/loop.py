"""Fine-tune the encoder itself on English rows plus XITE rows.

A XITE row is (target text, retrieved English text, adopted label, λ): both texts go through the
encoder, their representations are mixed with :func:`xite.ops.project_interpolate` (pooled, or
token-wise after a layer), and the head is trained on the mix with the adopted label. Retrieval,
label adoption and projection fitting are not done here: the caller passes them in as callables
(:class:`XiteSource`), which run on the current model's embeddings.

Batches. ``joint``: every epoch shuffles English rows and XITE rows together and cuts the
stream into batches, so each batch holds them in proportion to their counts. ``adapt``: start
from an English-only fine-tuned model (``init``); every batch holds ``replay`` x batch_size English
rows (cycled) and XITE rows for the rest; an epoch is one pass over the XITE rows. Without XITE
rows an epoch is one pass over the English rows (the zero-shot baseline, same options).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np

from xite.errors import ConfigError, XiteError
from xite.finetuning.model import Rows, is_pair_rows, row_count, run_batched

SCHEDULES = ("joint", "adapt")
HEAD_INITS = ("random", "probe")
CHECKPOINT = "checkpoint"
STATE = "state.pt"


# ---------------------------------------------------------------------------------------------
# Inputs


@dataclass
class LabeledRows:
    """Labeled rows: single ``texts`` or ``pairs`` (first, second), int ``labels`` indexing
    ``label_names``. ``digest`` identifies the data (a file's sha256); by default a fingerprint
    of the content."""

    texts: list[str] | None
    pairs: tuple[list[str], list[str]] | None
    labels: np.ndarray
    label_names: list[str]
    digest: str = ""

    def __post_init__(self) -> None:
        from xite.data.schema import fingerprint

        if (self.texts is None) == (self.pairs is None):
            raise ValueError("LabeledRows needs exactly one of texts and pairs")
        if self.pairs is not None:
            self.pairs = (list(self.pairs[0]), list(self.pairs[1]))
            if len(self.pairs[0]) != len(self.pairs[1]):
                raise ValueError("LabeledRows pairs: first and second texts differ in length")
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.label_names = list(self.label_names)
        if self.labels.shape != (len(self),):
            raise ValueError(f"LabeledRows has {len(self)} rows but labels of shape {self.labels.shape}")
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(self.label_names)):
            raise ValueError(f"LabeledRows labels must index label_names (0..{len(self.label_names) - 1})")
        if not self.digest:
            self.digest = fingerprint(self.texts if self.texts is not None else zip(*self.pairs))

    def __len__(self) -> int:
        return len(self.texts) if self.texts is not None else len(self.pairs[0])

    @property
    def rows(self) -> Rows:
        return self.texts if self.texts is not None else self.pairs

    @property
    def is_pair(self) -> bool:
        return self.pairs is not None

    @classmethod
    def from_corpus(cls, corpus, label_names: list[str] | None = None) -> "LabeledRows":
        """From a labeled :class:`~xite.data.schema.Corpus` (labels sorted unless given)."""
        names = list(label_names) if label_names is not None else corpus.label_names()
        return cls(corpus.texts, corpus.pairs, corpus.encode_labels(names), names, corpus.digest)


@dataclass
class PairSet:
    """One XITE row each: target row, English source row, adopted label, λ."""

    target_index: np.ndarray
    source_index: np.ndarray
    labels: np.ndarray
    lam: np.ndarray

    def __post_init__(self) -> None:
        self.target_index = np.asarray(self.target_index, dtype=np.int64).reshape(-1)
        self.source_index = np.asarray(self.source_index, dtype=np.int64).reshape(-1)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        self.lam = np.asarray(self.lam, dtype=np.float32).reshape(-1)
        n = len(self.target_index)
        if not (len(self.source_index) == len(self.labels) == len(self.lam) == n):
            raise ValueError("PairSet arrays differ in length")

    def __len__(self) -> int:
        return len(self.target_index)

    def check(self, n_targets: int, n_english: int, n_classes: int) -> None:
        def bad(name: str, arr: np.ndarray, hi: int) -> bool:
            return len(arr) > 0 and (arr.min() < 0 or arr.max() >= hi)

        for name, arr, hi in (("target_index", self.target_index, n_targets), ("source_index", self.source_index, n_english),
                              ("labels", self.labels, n_classes)):
            if bad(name, arr, hi):
                raise XiteError(f"make_pairs returned {name} outside 0..{hi - 1}")
        if len(self.lam) and (not np.isfinite(self.lam).all() or self.lam.min() < 0 or self.lam.max() > 1):
            raise XiteError("make_pairs returned lam outside [0, 1]")


@dataclass
class XiteSource:
    """Unlabeled target rows (all languages concatenated, ``languages[i]`` per row) and how to
    turn them into XITE rows with the current model.

    ``make_pairs(embed_fn)``: retrieval + adoption + λ; ``embed_fn(rows)`` gives the current
    model's pooled, normalised embeddings (no grad) of any rows. ``make_projection(by_language)``:
    a :class:`~xite.projectors.base.Projection` (or None) fitted on embeddings at the mixing point,
    keyed by language (the English rows under ``source_language``)."""

    targets: Rows
    languages: list[str]
    make_pairs: Callable[[Callable[[Rows], np.ndarray]], PairSet]
    make_projection: Callable[[dict[str, np.ndarray]], Any]
    source_language: str = "en"
    digest: str = ""

    def __post_init__(self) -> None:
        from xite.data.schema import fingerprint

        self.languages = [str(x) for x in self.languages]
        if len(self.languages) != row_count(self.targets):
            raise ValueError(f"XiteSource has {row_count(self.targets)} target rows but {len(self.languages)} languages")
        if not self.digest:
            items = self.targets if not is_pair_rows(self.targets) else zip(*self.targets)
            self.digest = fingerprint(list(items) + [f"lang:{x}" for x in self.languages])


# ---------------------------------------------------------------------------------------------
# Options


@dataclass
class FinetuneOptions:
    """Every field is validated here and recorded in the model's config.json."""

    encoder: str = "e5-small"  # e5-small or hf:NAME_OR_PATH (ignored with init: the init's encoder)
    pooling: str | None = None  # None: the encoder's own (e5-small: mean)
    prefix: str | None = None  # None: the encoder's own (e5-small: "passage: ")
    lr_encoder: float = 2e-5
    lr_head: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0  # 0: no clipping
    batch_size: int = 16
    grad_accum: int = 1
    max_length: int = 128
    epochs: int = 1
    max_steps: int | None = None  # optimizer steps; overrides epochs (rows are cycled)
    freeze_embeddings: bool = True  # the word-embedding matrix (96M of e5-small's 118M params)
    train_layers: int | None = None  # train only the top N transformer layers (+ head); None: all
    head_init: str = "random"  # or "probe": fit the head on the starting encoder's embeddings first (LP-FT); ignored with init
    seed: int = 0
    device: str = "auto"
    mix_at: str = "pooled"  # or "layer:L"
    schedule: str = "joint"
    replay: float = 0.25  # adapt: share of English rows in each batch
    refit_projector: bool = False  # refit the projection at every epoch
    refresh_pairs: bool = False  # retrieve and adopt again at every epoch
    eval_every_epoch: bool = True
    eval_batch_size: int = 64
    checkpoint_every: int | None = None  # optimizer steps; a checkpoint is also written each epoch

    def __post_init__(self) -> None:
        from xite.finetuning.model import parse_mix_at

        def need(ok: bool, name: str, what: str) -> None:
            if not ok:
                raise ConfigError(f"option {name} must be {what}; got {getattr(self, name)!r}")

        for name in ("lr_encoder", "lr_head"):
            need(self._num(name) and getattr(self, name) > 0, name, "> 0")
        need(self._num("weight_decay") and self.weight_decay >= 0, "weight_decay", ">= 0")
        need(self._num("warmup_ratio") and 0 <= self.warmup_ratio < 1, "warmup_ratio", "in [0, 1)")
        need(self._num("max_grad_norm") and self.max_grad_norm >= 0, "max_grad_norm", ">= 0")
        for name in ("batch_size", "grad_accum", "epochs", "eval_batch_size"):
            need(self._int(name) and getattr(self, name) >= 1, name, "an integer >= 1")
        need(self._int("max_length") and self.max_length >= 2, "max_length", "an integer >= 2")
        for name in ("max_steps", "checkpoint_every"):
            need(getattr(self, name) is None or (self._int(name) and getattr(self, name) >= 1), name, "None or an integer >= 1")
        need(self._int("seed"), "seed", "an integer")
        need(self.train_layers is None or (self._int("train_layers") and self.train_layers >= 0), "train_layers", "None or an integer >= 0")
        need(self.schedule in SCHEDULES, "schedule", " or ".join(repr(s) for s in SCHEDULES))
        need(self.head_init in HEAD_INITS, "head_init", " or ".join(repr(s) for s in HEAD_INITS))
        need(self._num("replay") and 0 <= self.replay < 1, "replay", "in [0, 1)")
        need(self.pooling in (None, "mean", "cls"), "pooling", "None, 'mean' or 'cls'")
        need(self.prefix is None or isinstance(self.prefix, str), "prefix", "None or a string")
        need(isinstance(self.encoder, str) and bool(self.encoder), "encoder", "an encoder spec (e5-small, hf:NAME_OR_PATH)")
        need(isinstance(self.device, str), "device", "'auto', 'cpu' or 'cuda'")
        parse_mix_at(self.mix_at)
        for name in ("freeze_embeddings", "refit_projector", "refresh_pairs", "eval_every_epoch"):
            need(isinstance(getattr(self, name), bool), name, "true or false")
        if self.schedule == "adapt" and round(self.replay * self.batch_size) >= self.batch_size:
            raise ConfigError(f"option replay: {self.replay} of a batch of {self.batch_size} leaves no room for XITE rows")

    def _num(self, name: str) -> bool:
        v = getattr(self, name)
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    def _int(self, name: str) -> bool:
        v = getattr(self, name)
        return isinstance(v, int) and not isinstance(v, bool)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "FinetuneOptions":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown fine-tuning option {unknown[0]!r}; known: {', '.join(sorted(known))}")
        return cls(**values)


# ---------------------------------------------------------------------------------------------
# The encoder to start from


def base_encoder(spec: str) -> tuple[str, str, str, dict]:
    """(model source, default prefix, default pooling, identity) of a fine-tunable encoder."""
    if spec == "e5-small":
        from xite.encoders.e5_small import E5SmallEncoder

        enc = E5SmallEncoder()
        return str(enc.model_dir), enc.prefix, enc.pooling, {"spec": spec, "name": enc.name, "base_version": enc.version}
    if spec.startswith("hf:"):
        from xite.encoders.hf import resolve_local

        name = spec[len("hf:"):]
        if not name:
            raise ConfigError("option encoder: hf: needs a model name or directory, e.g. hf:intfloat/multilingual-e5-small")
        local = resolve_local(name)
        return str(local or name), "", "mean", {"spec": spec, "name": spec}
    raise ConfigError(f"option encoder: {spec!r} cannot be fine-tuned; use e5-small or hf:NAME_OR_PATH (a transformers model)")


def starting_module(options: FinetuneOptions, n_labels: int, device="cpu"):
    """The classifier a run without ``init`` starts from: ``options.encoder`` as loaded, with a
    fresh head; and the encoder's identity for the model's config."""
    from xite.encoders._transformers import load_model
    from xite.finetuning.model import EncoderClassifier

    source, prefix, pooling, identity = base_encoder(options.encoder)
    encoder, tokenizer = load_model(source, device=str(device), spec=options.encoder)
    module = EncoderClassifier(encoder, tokenizer, n_labels, pooling=options.pooling or pooling,
                               prefix=prefix if options.prefix is None else options.prefix, max_length=options.max_length)
    return module, identity


def fit_probe(module, english: LabeledRows, dev: LabeledRows | None, options: FinetuneOptions,
              x: np.ndarray, x_dev: np.ndarray | None):
    """LP-FT (Kumar et al., 2022): before any encoder step, fit the head as xite's head level does
    (:func:`xite.training.heads.fit_module`, linear, English dev selects the epoch) on the
    starting encoder's embeddings ``x`` of the English rows (``x_dev`` of the dev rows), and start
    from it. A random head sends large, noisy gradients into the encoder during the first steps
    and distorts the multilingual features that transfer to other languages rather than only
    fitting English; with a short budget it also leaves the model below a probe on the frozen
    encoder. Returns the fit's report."""
    import torch

    from xite.training.heads import HeadOptions, fit_module

    head, report = fit_module(x, english.labels, len(english.label_names), HeadOptions(seed=options.seed), x_dev,
                              dev.labels if dev is not None else None)
    with torch.no_grad():
        module.head.weight.copy_(head.weight.to(module.head.weight))
        module.head.bias.copy_(head.bias.to(module.head.bias))
    return report


# ---------------------------------------------------------------------------------------------
# Batches


@dataclass
class MicroBatch:
    english: np.ndarray  # rows of the English set
    xite: np.ndarray  # rows of the PairSet


def epoch_plan(epoch: int, seed: int, n_english: int, n_xite: int, options: FinetuneOptions) -> list[MicroBatch]:
    """The micro-batches of one epoch, a pure function of (seed, epoch, counts): a resumed run
    rebuilds exactly the plan it was interrupted in."""
    rng = np.random.default_rng([seed, epoch])
    b = options.batch_size
    empty = np.zeros(0, dtype=np.int64)
    if n_xite == 0:
        order = rng.permutation(n_english)
        return [MicroBatch(order[i : i + b], empty) for i in range(0, n_english, b)]
    if options.schedule == "joint":
        order = rng.permutation(n_english + n_xite)
        plan = []
        for i in range(0, len(order), b):
            chunk = order[i : i + b]
            plan.append(MicroBatch(chunk[chunk < n_english], chunk[chunk >= n_english] - n_english))
        return plan
    per_en = int(round(options.replay * b))
    per_x = b - per_en
    x_order = rng.permutation(n_xite)
    n_batches = -(-n_xite // per_x)
    # English replay rows: as many shuffled passes as the epoch needs (English is cycled).
    passes = -(-(n_batches * per_en) // n_english) if per_en else 0
    en_order = np.concatenate([rng.permutation(n_english) for _ in range(passes)]) if passes else empty
    return [MicroBatch(en_order[k * per_en : (k + 1) * per_en], x_order[k * per_x : (k + 1) * per_x]) for k in range(n_batches)]


def steps_in(plan_len: int, grad_accum: int) -> int:
    return -(-plan_len // grad_accum)


# ---------------------------------------------------------------------------------------------
# The loop


@dataclass
class _State:
    step: int = 0
    epoch: int = 0
    micro: int = 0  # next micro-batch of the current epoch
    history: list = field(default_factory=list)
    best_epoch: int | None = None
    best_accuracy: float | None = None
    best_weights: dict | None = None
    dev_before: float | None = None
    pairs: PairSet | None = None
    pairs_epoch: int = -1
    projection: Any = None  # xite.projectors.base.Projection or None
    projection_epoch: int = -1
    epoch_loss: float = 0.0
    epoch_rows: int = 0
    # Wall seconds of the run up to its last checkpoint, over every session that worked on it: a
    # resumed run reports its whole cost, not only the part after the resume.
    seconds: float = 0.0


def train_encoder(
    english: LabeledRows,
    dev: LabeledRows | None,
    xite: XiteSource | None,
    options: FinetuneOptions | None,
    out: str | Path,
    *,
    init: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    save: bool = True,
    progress: bool = True,
    log: Callable[[dict], None] | None = None,
):
    """Fine-tune encoder + head; write the model directory ``out`` atomically and return the
    :class:`~xite.finetuning.modeldir.FinetunedModel` (the best epoch on English dev).

    Checkpoints go to ``out/checkpoint/`` (each epoch, and every ``checkpoint_every`` steps);
    ``resume=True`` continues from one (or starts afresh when there is none). ``log`` receives
    one dict per event: ``{"event": "step"|"epoch"|"dev_before"|"probe"|"pairs"|"projection"|"resumed", ...}``.
    """
    import torch

    from xite.encoders._transformers import effective_max_length
    from xite.finetuning.model import TorchProjection, resolve_device
    from xite.finetuning.modeldir import FinetunedModel, load_finetuned

    started = time.perf_counter()
    options = options or FinetuneOptions()
    out = Path(out)
    emit = log or (lambda event: None)
    _check_inputs(english, dev, xite, options, init)
    ckpt_dir = out / CHECKPOINT
    _check_out(out, ckpt_dir, resume, overwrite)
    device = resolve_device(options.device)

    torch.manual_seed(options.seed)
    if init is not None:
        loaded = load_finetuned(init, device=str(device))
        if loaded.label_names != english.label_names:
            raise ConfigError(f"{init}: the model's labels {loaded.label_names} differ from the English rows' {english.label_names}")
        if loaded.pairs != english.is_pair:
            raise ConfigError(f"{init}: the model takes {'text pairs' if loaded.pairs else 'single texts'}, the English rows are not")
        module = loaded.module
        module.max_length = effective_max_length(module.tokenizer, options.max_length)
        identity = dict(loaded.encoder, init=str(init))
    else:
        module, identity = starting_module(options, len(english.label_names), device)
    module.to(device)
    from xite.finetuning.model import parse_mix_at

    parse_mix_at(options.mix_at, module.num_layers)
    if options.mix_at != "pooled":
        module._layers()  # a non-BERT-like encoder fails now, not at the first XITE batch
    if options.freeze_embeddings:
        module.encoder.get_input_embeddings().weight.requires_grad_(False)
    if options.train_layers is not None:
        freeze_below(module, options.train_layers)

    fingerprint = {"english": english.digest, "dev": dev.digest if dev is not None else None,
                   "targets": xite.digest if xite is not None else None, "init": str(init) if init is not None else None}
    en_tokens = module.tokenize(english.rows)
    dev_tokens = module.tokenize(dev.rows) if dev is not None else None
    target_tokens = module.tokenize(xite.targets) if xite is not None else None
    y_en = torch.as_tensor(english.labels, device=device)

    trainable = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [{"params": [p for n, p in trainable if not n.startswith("head.")], "lr": options.lr_encoder},
         {"params": [p for n, p in trainable if n.startswith("head.")], "lr": options.lr_head}],
        weight_decay=options.weight_decay,
    )

    state = _State()
    ckpt = _load_checkpoint(ckpt_dir, options, fingerprint) if resume else None
    if ckpt is not None:
        _restore(ckpt, module, optimizer, state)
        emit({"event": "resumed", "step": state.step, "epoch": state.epoch})
    resumed_at_step, seconds_before = (state.step, state.seconds) if ckpt is not None else (None, 0.0)

    def embed_tokens(tokens) -> np.ndarray:
        if len(tokens) == 0:
            return np.zeros((0, module.dim), dtype=np.float32)
        return run_batched(module, tokens, module.embed, options.eval_batch_size)

    def embed_fn(rows: Rows) -> np.ndarray:
        return embed_tokens(module.tokenize(rows))

    def dev_accuracy() -> float | None:
        if dev is None:
            return None
        logits = run_batched(module, dev_tokens, module.logits, options.eval_batch_size)
        return float((logits.argmax(axis=1) == dev.labels).mean())

    # The starting encoder's pooled English embeddings, taken once: the probe fits on them and,
    # mixing at the pooled embedding, the first projection fit uses them too (the probe changes
    # only the head, so a second forward pass over the English rows would give the same array).
    english_at_start: np.ndarray | None = None
    if ckpt is None and init is None and options.head_init == "probe":
        english_at_start = embed_tokens(en_tokens)
        probe = fit_probe(module, english, dev, options, english_at_start,
                          embed_tokens(dev_tokens) if dev is not None else None)
        # English dev before any encoder step: the probe's (the model's config records it).
        state.dev_before = probe.dev_accuracy
        emit({"event": "probe", "dev_accuracy": probe.dev_accuracy, "epochs": probe.epochs_run})

    if ckpt is None and init is not None and dev is not None:
        state.dev_before = dev_accuracy()
        emit({"event": "dev_before", "dev_accuracy": state.dev_before})

    def prepare_epoch() -> None:
        if xite is None:
            return
        if state.pairs is None or (options.refresh_pairs and state.pairs_epoch != state.epoch):
            pairs = xite.make_pairs(embed_fn)
            if not isinstance(pairs, PairSet):
                raise XiteError(f"make_pairs must return a PairSet, got {type(pairs).__name__}")
            pairs.check(row_count(xite.targets), len(english), len(english.label_names))
            state.pairs, state.pairs_epoch = pairs, state.epoch
            emit({"event": "pairs", "epoch": state.epoch, "rows": len(pairs)})
        if state.projection_epoch < 0 or (options.refit_projector and state.projection_epoch != state.epoch):
            reuse = english_at_start if state.step == 0 and options.mix_at == "pooled" else None
            state.projection = xite.make_projection(_embeddings_at_mix(module, en_tokens, target_tokens, xite, options, reuse))
            state.projection_epoch = state.epoch
            emit({"event": "projection", "epoch": state.epoch, "rank": getattr(state.projection, "rank", 0)})

    def n_xite() -> int:
        return len(state.pairs) if state.pairs is not None else 0

    prepare_epoch()
    first_plan = epoch_plan(state.epoch, options.seed, len(english), n_xite(), options)
    # Fixed once, at the start: a resumed run keeps the schedule it began with.
    total_steps = ckpt["total_steps"] if ckpt is not None else (
        options.max_steps or options.epochs * steps_in(len(first_plan), options.grad_accum))
    warmup = int(options.warmup_ratio * total_steps)

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    if ckpt is not None:
        scheduler.load_state_dict(ckpt["scheduler"])
        # Building the scheduler reset the groups' lr to step 0's; put back the one it had reached.
        for group, lr in zip(optimizer.param_groups, scheduler.get_last_lr()):
            group["lr"] = lr

    def checkpoint() -> None:
        state.seconds = seconds_before + time.perf_counter() - started
        _save_checkpoint(ckpt_dir, module, optimizer, scheduler, state, options, fingerprint, total_steps)

    def finish_epoch(partial: bool) -> None:
        acc = dev_accuracy() if (options.eval_every_epoch or _done(state, options, partial_end=True)) else None
        record = {"epoch": state.epoch + 1, "step": state.step, "train_loss": round(state.epoch_loss / max(1, state.epoch_rows), 6),
                  "dev_accuracy": acc, "partial": partial}
        state.history.append(record)
        emit({"event": "epoch", **record})
        if acc is not None and (state.best_accuracy is None or acc > state.best_accuracy):
            state.best_accuracy, state.best_epoch = acc, state.epoch + 1
            state.best_weights = {n: p.detach().to("cpu", copy=True) for n, p in trainable}
        state.epoch += 1
        state.micro = 0
        state.epoch_loss, state.epoch_rows = 0.0, 0

    from xite.finetuning.model import autocast
    from xite.progress import progress_bar

    module.train()
    with progress_bar(progress, "fine-tuning {task.description}") as bar:
        task = bar.add_task("", total=total_steps, completed=state.step) if bar is not None else None
        tick, tick_rows = time.perf_counter(), 0
        while not _done(state, options):
            prepare_epoch()
            projection = TorchProjection.from_projection(state.projection, module.dim, device)
            plan = epoch_plan(state.epoch, options.seed, len(english), n_xite(), options)
            stopped = False
            while state.micro < len(plan):
                group = plan[state.micro : min(len(plan), state.micro + options.grad_accum)]
                rows = sum(len(mb.english) + len(mb.xite) for mb in group)
                step_loss = 0.0
                optimizer.zero_grad(set_to_none=True)
                for mb in group:
                    with autocast(device):
                        loss_sum = _batch_loss(module, mb, en_tokens, y_en, target_tokens, state.pairs, projection, options, device)
                    (loss_sum / rows).backward()
                    step_loss += float(loss_sum.detach())
                if options.max_grad_norm > 0:
                    torch.nn.utils.clip_grad_norm_([p for _, p in trainable], options.max_grad_norm)
                optimizer.step()
                scheduler.step()
                state.step += 1
                state.micro += len(group)
                state.epoch_loss += step_loss
                state.epoch_rows += rows
                tick_rows += rows
                loss = step_loss / rows
                emit({"event": "step", "step": state.step, "epoch": state.epoch + 1, "loss": loss, "rows": rows,
                      "lr_encoder": optimizer.param_groups[0]["lr"]})
                if bar is not None:
                    rate = tick_rows / max(1e-9, time.perf_counter() - tick)
                    bar.update(task, advance=1, description=f"epoch {state.epoch + 1} · loss {loss:.4f} · {rate:.1f} rows/s")
                if options.max_steps is not None and state.step >= options.max_steps:
                    stopped = state.micro < len(plan)
                    break
                if options.checkpoint_every and state.step % options.checkpoint_every == 0 and state.micro < len(plan):
                    checkpoint()
            finish_epoch(partial=stopped)
            checkpoint()

    if state.best_weights is not None:
        with torch.no_grad():
            for name, p in trainable:
                p.copy_(state.best_weights[name].to(p.device))
    module.eval()
    training = {
        "inputs": fingerprint,
        "rows": {"english": len(english), "dev": len(dev) if dev is not None else 0,
                 "targets": row_count(xite.targets) if xite is not None else 0, "xite": n_xite()},
        "languages": sorted(set(xite.languages)) if xite is not None else [],
        "steps": state.step,
        "history": state.history,
        "best_epoch": state.best_epoch if state.best_weights is not None else (state.history[-1]["epoch"] if state.history else None),
        "dev_accuracy": state.best_accuracy,
        "dev_accuracy_before": state.dev_before,
        "resumed_at_step": resumed_at_step,
        "seconds_before_resume": round(seconds_before, 2),
        "seconds": round(seconds_before + time.perf_counter() - started, 2),
        "projection": None if state.projection is None else {"rank": state.projection.rank, "mode": state.projection.mode,
                                                             "info": _jsonable(state.projection.info)},
    }
    model = FinetunedModel(module, list(english.label_names), english.is_pair, identity, options.to_dict(), training)
    from xite.data.writers import atomic_output_dir
    from xite.finetuning.modeldir import write_model_files

    if not save:
        # The caller only scores the model (the experiment's cells): ~470 MB of e5-small not written.
        import shutil

        shutil.rmtree(out, ignore_errors=True)
        return model
    # Replaces the directory that held the checkpoints: the finished model appears whole or not at all.
    with atomic_output_dir(out, overwrite=True) as tmp:
        write_model_files(model, Path(tmp))
    return model


def freeze_below(module, train_layers: int) -> None:
    """Train only the top ``train_layers`` transformer layers (and the head): the layers below and
    the embeddings stay as loaded. On a CPU this halves the cost of a step or better, since no
    gradient flows below the lowest trained layer."""
    layers = module._layers()
    if train_layers > len(layers):
        raise ConfigError(f"option train_layers: {train_layers} is more than the encoder's {len(layers)} layers")
    trained = {id(p) for layer in list(layers)[len(layers) - train_layers:] for p in layer.parameters()}
    for p in module.encoder.parameters():
        if id(p) not in trained:
            p.requires_grad_(False)


def _done(state: _State, options: FinetuneOptions, partial_end: bool = False) -> bool:
    if options.max_steps is not None:
        return state.step >= options.max_steps
    # At an epoch's end (partial_end) the epoch counter has not moved on yet.
    return state.epoch + (1 if partial_end else 0) >= options.epochs


def _batch_loss(module, mb: MicroBatch, en_tokens, y_en, target_tokens, pairs, projection, options, device):
    """Summed cross-entropy of a micro-batch's English rows and XITE rows."""
    import torch
    import torch.nn.functional as F

    total = torch.zeros((), device=device)
    if len(mb.english):
        logits = module.logits(module.collate([en_tokens[i] for i in mb.english]))
        total = total + F.cross_entropy(logits.float(), y_en[torch.as_tensor(mb.english, device=device)], reduction="sum")
    if len(mb.xite):
        t = module.collate([target_tokens[i] for i in pairs.target_index[mb.xite]])
        s = module.collate([en_tokens[i] for i in pairs.source_index[mb.xite]])
        lam = torch.as_tensor(pairs.lam[mb.xite], device=device)
        logits = module.mixed_logits(t, s, lam, projection, options.mix_at)
        labels = torch.as_tensor(pairs.labels[mb.xite], device=device)
        total = total + F.cross_entropy(logits.float(), labels, reduction="sum")
    return total


def _embeddings_at_mix(module, en_tokens, target_tokens, xite: XiteSource, options: FinetuneOptions,
                       english: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Embeddings at the mixing point of the English rows (``english`` when the caller already
    holds them) and of each target language's rows, from their tokens."""
    def at(tokens) -> np.ndarray:
        return run_batched(module, tokens, lambda b: module.embed_at(b, options.mix_at), options.eval_batch_size)

    out = {xite.source_language: english if english is not None else at(en_tokens)}
    langs = np.asarray(xite.languages)
    for lang in dict.fromkeys(xite.languages):
        idx = np.flatnonzero(langs == lang)
        out[lang] = at([target_tokens[i] for i in idx])
    return out


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)


# ---------------------------------------------------------------------------------------------
# Checks


def _check_inputs(english: LabeledRows, dev, xite, options: FinetuneOptions, init) -> None:
    if not isinstance(options, FinetuneOptions):
        raise TypeError("options must be a FinetuneOptions")
    if len(english) == 0:
        raise XiteError("no English training rows")
    if len(set(english.labels.tolist())) < 2:
        raise XiteError(f"fine-tuning needs at least two labels among the English rows, found {sorted(set(english.labels.tolist()))}")
    if dev is not None:
        if dev.is_pair != english.is_pair:
            raise XiteError("the dev rows and the English rows differ: one holds text pairs, the other single texts")
        if dev.label_names != english.label_names:
            raise XiteError(f"the dev rows' labels {dev.label_names} differ from the English rows' {english.label_names}")
    if xite is not None:
        if is_pair_rows(xite.targets) != english.is_pair:
            raise XiteError("the target rows and the English rows differ: one holds text pairs, the other single texts")
        if row_count(xite.targets) == 0:
            raise XiteError("XiteSource has no target rows")
    if options.schedule == "adapt":
        if init is None:
            raise ConfigError("option schedule: 'adapt' starts from an English fine-tuned model; pass init=MODEL_DIR")
        if xite is None:
            raise ConfigError("option schedule: 'adapt' needs XITE rows (xite=XiteSource(...))")


def _check_out(out: Path, ckpt_dir: Path, resume: bool, overwrite: bool) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise XiteError(f"output path {out} exists and is not a directory")
    if (ckpt_dir / STATE).is_file():
        if not (resume or overwrite):
            raise XiteError(f"{out} holds a checkpoint of an unfinished run; pass resume to continue it or overwrite to start again")
        if overwrite and not resume:
            import shutil

            shutil.rmtree(ckpt_dir)
        return
    if any(out.iterdir()) and not overwrite:
        raise XiteError(f"output directory {out} exists; pass --overwrite")


# ---------------------------------------------------------------------------------------------
# Checkpoints


def _save_checkpoint(ckpt_dir: Path, module, optimizer, scheduler, state: _State, options: FinetuneOptions, fingerprint: dict,
                     total_steps: int) -> None:
    import torch

    from xite.data.writers import atomic_output_dir

    def arr(x):
        return None if x is None else torch.from_numpy(np.ascontiguousarray(x))

    proj = state.projection
    payload = {
        "options": options.to_dict(),
        "fingerprint": fingerprint,
        "weights": {n: p.detach().cpu() for n, p in module.named_parameters() if p.requires_grad},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "total_steps": total_steps,
        "rng": {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
        "progress": {"step": state.step, "epoch": state.epoch, "micro": state.micro, "history": state.history,
                     "best_epoch": state.best_epoch, "best_accuracy": state.best_accuracy, "dev_before": state.dev_before,
                     "pairs_epoch": state.pairs_epoch, "projection_epoch": state.projection_epoch,
                     "epoch_loss": state.epoch_loss, "epoch_rows": state.epoch_rows, "seconds": state.seconds},
        "best_weights": state.best_weights,
        "pairs": None if state.pairs is None else {k: arr(getattr(state.pairs, k)) for k in ("target_index", "source_index", "labels", "lam")},
        "projection": None if proj is None else {"basis": arr(proj.basis), "mean": arr(proj.mean), "mode": proj.mode,
                                                 "info": _jsonable(proj.info)},
    }
    with atomic_output_dir(ckpt_dir, overwrite=True) as tmp:
        torch.save(payload, Path(tmp) / STATE)


def _load_checkpoint(ckpt_dir: Path, options: FinetuneOptions, fingerprint: dict) -> dict | None:
    import torch

    path = ckpt_dir / STATE
    if not path.is_file():
        return None
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: torch raises several types
        raise XiteError(f"{path}: unreadable checkpoint: {str(exc).splitlines()[0]}") from None
    saved = ckpt.get("options", {})
    for key, value in options.to_dict().items():
        if key != "device" and saved.get(key) != value:
            raise ConfigError(f"option {key}: the checkpoint in {ckpt_dir} was made with {saved.get(key)!r}, not {value!r}; "
                              "resume with the same options or start again")
    for key, value in fingerprint.items():
        if ckpt.get("fingerprint", {}).get(key) != value:
            raise ConfigError(f"the checkpoint in {ckpt_dir} was made from other inputs ({key} differs); resume with the same data")
    return ckpt


def _restore(ckpt: dict, module, optimizer, state: _State) -> None:
    import torch

    from xite.projectors.base import Projection

    params = dict(module.named_parameters())
    with torch.no_grad():
        for name, value in ckpt["weights"].items():
            params[name].copy_(value.to(params[name].device))
    optimizer.load_state_dict(ckpt["optimizer"])
    torch.set_rng_state(ckpt["rng"]["torch"])
    if ckpt["rng"]["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])
    for key, value in ckpt["progress"].items():
        setattr(state, key, value)
    state.best_weights = ckpt["best_weights"]
    if ckpt["pairs"] is not None:
        state.pairs = PairSet(**{k: v.numpy() for k, v in ckpt["pairs"].items()})
    if ckpt["projection"] is not None:
        p = ckpt["projection"]
        state.projection = Projection(None if p["basis"] is None else p["basis"].numpy(),
                                      None if p["mean"] is None else p["mean"].numpy(), p["mode"], p["info"])
