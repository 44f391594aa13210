"""The ``xite`` command line: parses options and composes components. No logic of its own."""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from xite.errors import XiteError

app = typer.Typer(
    name="xite",
    help="XITE: cross-lingual interpolation for transfer using embeddings.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True)
_default_showwarning = warnings.showwarning
out_console = Console(soft_wrap=True, highlight=False)


def _lang_path(values: Optional[List[str]], flag: str) -> list[tuple[str, Path]]:
    from xite.checks import check_language
    from xite.errors import ConfigError

    pairs = []
    for value in values or []:
        lang, sep, path = value.partition("=")
        if not sep or not lang or not path:
            raise typer.BadParameter(f"expected LANG=PATH, got {value!r}", param_hint=flag)
        try:
            check_language(lang, flag)
        except ConfigError as exc:
            raise typer.BadParameter(str(exc).split(": ", 1)[1], param_hint=flag) from None
        if any(seen == lang for seen, _ in pairs):
            # A dict keyed by language would keep only the last one without a word.
            raise typer.BadParameter(f"language {lang!r} is given twice", param_hint=flag)
        pairs.append((lang, Path(path)))
    return pairs


def _generic_options(values: Optional[List[str]]) -> dict[str, dict]:
    """``--option projector.rank=4`` -> {"projector": {"rank": 4}}. Values are read as JSON when
    they can be (numbers, true/false, lists), else kept as strings; the component's declared
    option types then check them."""
    from xite.recipe import KINDS

    found: dict[str, dict] = {}
    for value in values or []:
        key, sep, raw = value.partition("=")
        kind, dot, name = key.partition(".")
        if not sep or not dot or not name or kind not in KINDS:
            raise typer.BadParameter(f"expected KIND.KEY=VALUE with KIND in {'|'.join(KINDS)}, got {value!r}", param_hint="--option")
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError:
            parsed = raw
        found.setdefault(kind, {})[name] = parsed
    return found


def _logger(quiet: bool):
    """Progress notes go to stderr; --quiet keeps only the notes and warnings that say something
    about the result (an LDA rank of 1, an encoder that does not cover a language)."""
    from rich.markup import escape

    def log(msg: str) -> None:
        if not quiet or msg.startswith(("note:", "warning:")):
            console.print(f"[dim]{escape(msg)}[/dim]", soft_wrap=True)

    return log


def _recipe_choices(option: Optional[List[str]], shorthands: dict, **named) -> dict:
    """The keyword choices ``make_recipe`` takes: the named components and scalars given, and
    every component option (``--option KIND.KEY=VALUE`` plus shorthands such as ``--lam``, keyed
    "KIND.KEY")."""
    options = _generic_options(option)
    for key, value in shorthands.items():
        if value is not None:
            kind, _, name = key.partition(".")
            options.setdefault(kind, {})[name] = value
    choices = _drop_none(named)
    choices.update({f"{kind}_options": opts for kind, opts in options.items()})
    return choices


def _drop_none(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


def _fields(text_field, premise_field, hypothesis_field, label_field):
    from xite.stages import Fields

    return Fields(text_field, premise_field, hypothesis_field, label_field)


@app.command()
def augment(
    source: Optional[Path] = typer.Argument(None, help="Labeled English corpus (JSONL, CSV/TSV, Parquet)."),
    target: Optional[List[str]] = typer.Option(None, "--target", "-t", help="Unlabeled target corpus, LANG=PATH (repeat)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory to write (atomically)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output directory."),
    demo: bool = typer.Option(False, "--demo", help="Use the small demo corpus shipped with xite (en -> ko, ar, hi, ur)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Recipe: a TOML file, or a run's manifest.json to reproduce that run."),
    encoder: Optional[str] = typer.Option(None, help="Encoder name (default e5-small; hf:NAME_OR_PATH, or a plugin's)."),
    retriever: Optional[str] = typer.Option(None, help="Retriever name (default faiss; exact, ...)."),
    adopter: Optional[str] = typer.Option(None, help="Label adoption (default top1; vote, ...)."),
    projector: Optional[str] = typer.Option(None, help="Projector name (default lda; pca, none, ...)."),
    interpolator: Optional[str] = typer.Option(None, help="Interpolator name (default linear; mixup, slerp, ...)."),
    option: Optional[List[str]] = typer.Option(None, "--option", "-O", help="A component option, KIND.KEY=VALUE (repeat); `xite describe KIND NAME` lists them."),
    lam: Optional[float] = typer.Option(None, "--lam", help="Shorthand for --option interpolator.lam=VALUE (weight of the target row)."),
    precision: Optional[str] = typer.Option(None, "--precision", help="Shorthand for --option encoder.precision=VALUE: fp32 (default) or int8 (CTranslate2, ~2-10x faster on CPU)."),
    per_target: Optional[int] = typer.Option(None, help="Synthetic rows per target row (default 1)."),
    seed: Optional[int] = typer.Option(None, help="Seed for every random choice (default 0)."),
    source_language: Optional[str] = typer.Option(None, help="Language code of the source corpus (default en)."),
    extra_language: Optional[List[str]] = typer.Option(None, "--extra-language", help="Extra unlabeled corpus LANG=PATH to enrich the projection subspace."),
    device: str = typer.Option("cpu", help="Where the interpolation kernel runs: cpu or cuda."),
    batch_size: int = typer.Option(64, help="Encoding batch size."),
    text_field: Optional[str] = typer.Option(None, help="Text field (default: detected)."),
    premise_field: Optional[str] = typer.Option(None, help="Premise field for pairs."),
    hypothesis_field: Optional[str] = typer.Option(None, help="Hypothesis field for pairs."),
    label_field: Optional[str] = typer.Option(None, help="Label field (default: label)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    executor: str = typer.Option("local", "--executor", help="local (one process) or ray (a Ray Data stream; writes shards)."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Ray cluster to join (e.g. 10.0.0.5:6379 or auto); default: RAY_ADDRESS, else a local Ray."),
    ray_option: Optional[List[str]] = typer.Option(None, "--ray-option", help="KEY=VALUE (repeat): block_rows, fit_sample, encode_actors, retrieve_actors, interpolate_actors, num_gpus."),
) -> None:
    """Retrieve, adopt labels, project and interpolate: write synthetic labeled examples."""
    from xite.pipeline import augment as run_augment

    targets = _lang_path(target, "--target")
    if demo:
        from xite.demo import demo_paths

        paths = demo_paths()
        source = source or paths["en"]
        targets = targets or [(lang, p) for lang, p in paths.items() if lang != "en"]
    if source is None:
        raise typer.BadParameter("give a SOURCE corpus (or --demo)", param_hint="SOURCE")
    choices = _recipe_choices(option, {"interpolator.lam": lam, "encoder.precision": precision}, encoder=encoder,
                              retriever=retriever, adopter=adopter, projector=projector, interpolator=interpolator,
                              per_target=per_target, seed=seed, source_language=source_language)
    result = run_augment(
        source, targets, config,
        out=out, overwrite=overwrite, extra_languages=_lang_path(extra_language, "--extra-language"),
        fields=_fields(text_field, premise_field, hypothesis_field, label_field), batch_size=batch_size, device=device,
        progress=not quiet, log=_logger(quiet),
        executor=executor, ray_address=ray_address, ray_options=_ray_options(ray_option), **choices,
    )
    _print_summary(result.manifest, result.out_dir)


def _ray_options(values: Optional[List[str]]) -> dict:
    """``--ray-option block_rows=50000`` -> {"block_rows": 50000} (values read as JSON when they can be)."""
    found = {}
    for value in values or []:
        key, sep, raw = value.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {value!r}", param_hint="--ray-option")
        try:
            found[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            found[key.strip()] = raw
    return found


def _print_summary(manifest: dict, out_dir: Optional[Path]) -> None:
    table = Table(title="xite augment", show_lines=False)
    for col in ("language", "rows in", "kept", "synthetic out", "labels", "mean sim"):
        table.add_column(col, justify="right" if col not in ("language", "labels") else "left")
    src = manifest["source"]
    table.add_row(f"{src['language']} (source)", str(src["rows"]), "", "", "", "")
    for t in manifest["targets"]:
        labels = ", ".join(f"{k} {v}" for k, v in t["label_distribution"].items())
        sim = "" if t["mean_similarity"] is None else f"{t['mean_similarity']:.3f}"
        table.add_row(t["language"], str(t["rows"]), str(t["kept"]), str(t["synthetic"]), labels, sim)
    out_console.print(table)
    proj = manifest["components"]["projector"]
    info = manifest["projection"]
    out_console.print(
        f"encoder {manifest['encoder']['spec']} (dim {manifest['encoder']['dim']}), "
        f"retriever {manifest['components']['retriever']['name']}, projector {proj['name']} "
        f"(rank {info['rank']}, {info['mode']}{', centred' if info['centred'] else ''}), "
        f"interpolator {manifest['components']['interpolator']['name']}, adopter {manifest['components']['adopter']['name']}"
    )
    if info["info"].get("warning"):
        out_console.print(f"note: {info['info']['warning']}")
    c = manifest["counts"]
    out_console.print(
        f"synthetic rows: {c['synthetic']} (filtered {c['filtered']} of {c['target_rows']} target rows); "
        f"mean similarity {manifest['mean_similarity'] if manifest['mean_similarity'] is None else round(manifest['mean_similarity'], 3)}; "
        f"embeddings cached {manifest['cache']['hits']}, encoded {manifest['cache']['encoded']}; kernel: {manifest['ops_backend']}"
    )
    timings = ", ".join(f"{k} {v:.2f}s" for k, v in manifest["timings_s"].items())
    out_console.print(f"timings: {timings}")
    out_console.print(f"output: {out_dir if out_dir else '(in memory only: pass --out DIR to write)'}")


@app.command()
def train(
    source: Path = typer.Option(..., "--source", help="Labeled English corpus."),
    synthetic: Optional[List[Path]] = typer.Option(None, "--synthetic", help="Run directory of `xite augment` (repeat)."),
    head: str = typer.Option("linear", "--head", help="Classifier head: linear or mlp."),
    out: Path = typer.Option(..., "--out", "-o", help="Model directory to write (atomically)."),
    dev: Optional[Path] = typer.Option(None, "--dev", help="Labeled English dev set: early stopping and model selection."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing model directory."),
    encoder: Optional[str] = typer.Option(None, help="Encoder (default: the synthetic runs', else e5-small)."),
    epochs: Optional[int] = typer.Option(None, help="Most epochs."),
    patience: Optional[int] = typer.Option(None, help="Epochs without English-dev improvement before stopping."),
    lr: Optional[float] = typer.Option(None, help="Learning rate (AdamW)."),
    hidden: Optional[int] = typer.Option(None, help="mlp: hidden units."),
    seed: int = typer.Option(0, help="Seed for initialisation and shuffling."),
    batch_size: int = typer.Option(64, help="Encoding batch size."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Train a classifier head on frozen embeddings of English + synthetic rows."""
    from xite.training import train as run_train

    model = run_train(
        source, synthetic or [], dev=dev, head=head, out=out, overwrite=overwrite, encoder=encoder, seed=seed,
        head_options=_drop_none(dict(epochs=epochs, patience=patience, lr=lr, hidden=hidden)),
        batch_size=batch_size, progress=not quiet,
    )
    fit = model.config()["fit"]
    dev_note = "" if fit["dev_accuracy"] is None else f", English dev accuracy {fit['dev_accuracy']:.4f} at epoch {fit['best_epoch']}"
    out_console.print(f"trained a {head} head on {model.input_dim}-d {model.encoder['name']} embeddings "
                      f"({model.training['source']['rows']} English + {sum(r['rows'] for r in model.training['synthetic'])} synthetic rows{dev_note})")
    out_console.print(f"model: {out}")


@app.command()
def evaluate(
    model_dir: Path = typer.Argument(..., help="Model directory written by `xite train`."),
    test: List[str] = typer.Option(..., "--test", help="Labeled test corpus, LANG=PATH (repeat)."),
    encoder: Optional[str] = typer.Option(None, help="Refuse unless the model was trained on this encoder."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    batch_size: int = typer.Option(64, help="Encoding batch size."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Accuracy, macro-F1 and a confusion matrix per language."""
    from xite.evaluation import evaluate as run_evaluate

    results = run_evaluate(model_dir, _lang_path(test, "--test"), encoder=encoder, batch_size=batch_size, progress=not quiet)
    if as_json:
        out_console.print_json(json.dumps(results))
        return
    table = Table(title=f"xite evaluate {model_dir}")
    for col in ("language", "n", "accuracy", "macro-F1", "confusion (rows gold, cols predicted)"):
        table.add_column(col, justify="left" if col in ("language", "confusion (rows gold, cols predicted)") else "right")
    for lang, m in results.items():
        confusion = "\n".join(f"{name}: {row}" for name, row in zip(m["label_names"], m["confusion"]))
        table.add_row(lang, str(m["n"]), f"{m['accuracy']:.4f}", f"{m['macro_f1']:.4f}", confusion)
    out_console.print(table)


@app.command()
def experiment(
    data: Path = typer.Option(..., "--data", help="Benchmark directory: DATA/<task>/<lang>/{train,unlabeled,dev,test}.jsonl."),
    task: str = typer.Option(..., "--task", help="Task directory under DATA (sentiment, nli)."),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML file merged over the default grid."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output directory (default: xite-experiment-TASK)."),
    language: Optional[List[str]] = typer.Option(None, "--language", "-l", help="Target language (repeat; default: the config's)."),
    seed: Optional[List[int]] = typer.Option(None, "--seed", help="Seed (repeat; default: the config's)."),
    level: str = typer.Option("head", "--level", help="head: heads on the frozen encoder; encoder: fine-tune the encoder (the paper's setting)."),
    summarise: bool = typer.Option(False, "--summarise", help="--level encoder: train nothing; write results from the cells already finished."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """The whole protocol: zero-shot, XITE variants, self-training, upper bound, over seeds."""
    from xite.experiments import experiment as run_experiment

    out = out or Path(f"xite-experiment-{task}" + ("-encoder" if level == "encoder" else ""))
    results = run_experiment(data, task, config=config, out=out, languages=language or None, seeds=seed or None, level=level,
                             progress=not quiet, log=_logger(quiet), compute=not summarise)
    out_console.print((out / "results.md").read_text(encoding="utf-8"))
    out_console.print(f"results: {out / 'results.json'}, {out / 'results.md'} ({results['timing_s']['total']:.0f} s)")


def _plugin_failures_lines() -> list[str]:
    from xite import plugins as plugin_registry

    return [
        f"plugin {r.package}{' ' + r.version if r.version else ''} ({r.name}) failed to load: {r.error}"
        for r in plugin_registry.failed_plugins()
    ]


def _options_table(kind: str, name: str) -> Table:
    from xite.options import REQUIRED, describe as describe_options

    table = Table(title=f"{kind} {name}", title_justify="left")
    for col in ("option", "type", "default", "doc"):
        table.add_column(col)
    for info in describe_options(kind, name):
        default = "(required)" if info.default is REQUIRED else repr(info.default)
        table.add_row(info.name, info.type, default, info.doc or "(undocumented)")
    return table


@app.command()
def finetune(
    source: Path = typer.Argument(..., help="Labeled English corpus."),
    target: Optional[List[str]] = typer.Option(None, "--target", "-t", help="Unlabeled target corpus, LANG=PATH (repeat; none: plain English fine-tuning)."),
    out: Path = typer.Option(..., "--out", "-o", help="Model directory to write (atomically)."),
    dev: Optional[Path] = typer.Option(None, "--dev", help="Labeled English dev set: model selection (never target labels)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Recipe (TOML, or a run's manifest.json) for retriever/adopter/projector/interpolator."),
    encoder: Optional[str] = typer.Option(None, help="Encoder to fine-tune (default e5-small; hf:NAME_OR_PATH)."),
    retriever: Optional[str] = typer.Option(None, help="Retriever (default faiss)."),
    adopter: Optional[str] = typer.Option(None, help="Label adoption (default top1)."),
    projector: Optional[str] = typer.Option(None, help="Projector (default lda)."),
    interpolator: Optional[str] = typer.Option(None, help="Interpolator (default linear)."),
    option: Optional[List[str]] = typer.Option(None, "--option", "-O", help="A component option, KIND.KEY=VALUE (repeat)."),
    lam: Optional[float] = typer.Option(None, "--lam", help="Shorthand for --option interpolator.lam=VALUE."),
    mix_at: str = typer.Option("pooled", "--mix-at", help="pooled (sentence embeddings) or layer:L (hidden states after layer L; 0 = input embeddings)."),
    schedule: str = typer.Option("joint", help="joint (English and XITE batches from the first step) or adapt (needs --init)."),
    init: Optional[Path] = typer.Option(None, "--init", help="Start from this fine-tuned model directory (adapt)."),
    replay: float = typer.Option(0.25, help="adapt: share of English rows in each batch."),
    pairs: Optional[Path] = typer.Option(None, "--pairs", help="Read the pairs from this augment run directory instead of finding them."),
    refresh_pairs: bool = typer.Option(False, "--refresh-pairs", help="Find the pairs again each epoch with the encoder being trained."),
    refit_projector: bool = typer.Option(False, "--refit-projector", help="Refit the projection each epoch."),
    epochs: int = typer.Option(1, help="Epochs (passes over the rows)."),
    max_steps: Optional[int] = typer.Option(None, help="Optimizer steps (overrides --epochs; rows are cycled)."),
    batch_size: int = typer.Option(16, help="Rows per optimizer step (before accumulation)."),
    grad_accum: int = typer.Option(1, help="Gradient accumulation steps."),
    max_length: int = typer.Option(128, help="Tokens per text."),
    lr_encoder: float = typer.Option(2e-5, help="Learning rate of the encoder."),
    lr_head: float = typer.Option(1e-3, help="Learning rate of the head."),
    warmup_ratio: float = typer.Option(0.1, help="Share of steps with a linear warm-up."),
    freeze_embeddings: bool = typer.Option(True, "--freeze-embeddings/--train-embeddings", help="Keep the word-embedding matrix frozen."),
    train_layers: Optional[int] = typer.Option(None, help="Train only the top N transformer layers (and the head); default all."),
    head_init: str = typer.Option("random", help="random, or probe: fit the head on the frozen encoder's embeddings before the first step (LP-FT)."),
    seed: Optional[int] = typer.Option(None, help="Seed (default 0)."),
    device: str = typer.Option("auto", help="auto, cpu or cuda (bf16 autocast on CUDA)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the checkpoint in --out."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing model directory."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Fine-tune the encoder itself on English + XITE rows (the paper's setting)."""
    from xite.finetuning.run import finetune as run_finetune

    choices = _recipe_choices(option, {"interpolator.lam": lam}, encoder=encoder, retriever=retriever, adopter=adopter,
                              projector=projector, interpolator=interpolator, seed=seed)
    training = _drop_none(dict(mix_at=mix_at, schedule=schedule, replay=replay, refresh_pairs=refresh_pairs, refit_projector=refit_projector,
                               epochs=epochs, max_steps=max_steps, batch_size=batch_size, grad_accum=grad_accum, max_length=max_length,
                               lr_encoder=lr_encoder, lr_head=lr_head, warmup_ratio=warmup_ratio, freeze_embeddings=freeze_embeddings,
                               train_layers=train_layers, head_init=head_init, device=device))
    if seed is not None:
        training["seed"] = seed
    if encoder is not None:
        training["encoder"] = encoder
    model = run_finetune(source, _lang_path(target, "--target"), config, out=out, dev=dev, options=training, init=init,
                         pairs_from=pairs, resume=resume, overwrite=overwrite, progress=not quiet, **choices)
    t = model.training
    before = "" if t.get("dev_accuracy_before") is None else f"English dev accuracy before {t['dev_accuracy_before']:.4f}, "
    after = "" if t.get("dev_accuracy") is None else f"{before}after {t['dev_accuracy']:.4f} (epoch {t.get('best_epoch')}); "
    out_console.print(f"fine-tuned {model.encoder.get('name')} for {t['steps']} steps on {t['rows']['english']} English + "
                      f"{t['rows']['xite']} XITE rows; {after}model: {out}")


@app.command()
def predict(
    model_dir: Path = typer.Argument(..., help="Model directory (xite train or xite finetune)."),
    file: Path = typer.Argument(..., help="Rows to label (JSONL, CSV/TSV, Parquet; labels, if any, are ignored)."),
    out: Path = typer.Option(..., "--out", "-o", help="JSONL to write (atomically): each row with label and probabilities."),
    batch_size: int = typer.Option(64, help="Batch size."),
    text_field: Optional[str] = typer.Option(None, help="Text field (default: detected)."),
    premise_field: Optional[str] = typer.Option(None, help="Premise field for pairs."),
    hypothesis_field: Optional[str] = typer.Option(None, help="Hypothesis field for pairs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Labels and class probabilities for new rows."""
    from xite.prediction import predict as run_predict

    rows = run_predict(model_dir, file, out=out, batch_size=batch_size, text_field=text_field, premise_field=premise_field,
                       hypothesis_field=hypothesis_field, progress=not quiet)
    out_console.print(f"labelled {len(rows)} rows: {out}")


@app.command()
def plugins(
    show_options: bool = typer.Option(False, "--options", help="Also print every component's options."),
) -> None:
    """List registered components (kind, name, package, version), plugin commands and failed plugins."""
    from xite import plugins as plugin_registry
    from xite.ops import backend

    table = Table(title="xite components")
    for col in ("kind", "name", "package", "version"):
        table.add_column(col)
    for reg in plugin_registry.components():
        note = f" (overrides {reg.replaces}'s)" if reg.replaces else ""
        table.add_row(reg.kind[:-1], reg.name, reg.package + note, reg.version)
    out_console.print(table)
    for report in plugin_registry.reports():
        for command in report.commands:
            out_console.print(f"command {command}: from {report.package} {report.version}".rstrip())
    for line in _plugin_failures_lines():
        out_console.print(line)
    out_console.print(f"kernel backend: {backend()}")
    if show_options:
        for reg in plugin_registry.components():
            out_console.print(_options_table(reg.kind[:-1], reg.name))


@app.command()
def describe(
    kind: str = typer.Argument(..., help="encoder, retriever, projector, interpolator or adopter."),
    name: str = typer.Argument(..., help="Component name (as in `xite plugins`)."),
) -> None:
    """Print a component's options: name, type, default and what each does."""
    from xite import plugins as plugin_registry

    reg, _ = plugin_registry.lookup(kind, name)
    out_console.print(_options_table(reg.kind[:-1], reg.name))
    out_console.print(f"from {reg.package} {reg.version}; set with --option {reg.kind[:-1]}.OPTION=VALUE".replace("  ", " "))


@app.command()
def doctor() -> None:
    """Versions, the active kernel backend, faiss GPUs, XITE_HOME and plugins that failed to load."""
    import faiss
    import torch

    from xite import __version__
    from xite import plugins as plugin_registry
    from xite.ops import backend
    from xite.paths import xite_home

    out_console.print(f"xite {__version__}; torch {torch.__version__} (cuda available: {torch.cuda.is_available()})")
    out_console.print(f"faiss {faiss.__version__}; GPUs visible to faiss: {faiss.get_num_gpus() if hasattr(faiss, 'get_num_gpus') else 0}")
    out_console.print(f"kernel backend: {backend()}")
    out_console.print(f"XITE_HOME: {xite_home()}")
    loaded = [r for r in plugin_registry.reports() if r.ok and r.package != "xite"]
    selected = os.environ.get(plugin_registry.ENV_VAR)
    scope = "all installed" if selected is None else f"{plugin_registry.ENV_VAR}={selected!r}"
    names = ", ".join(f"{r.package} {r.version}".strip() for r in loaded) or "none"
    out_console.print(f"plugins ({scope}): {names}")
    for line in _plugin_failures_lines():
        out_console.print(line)


@app.command()
def report(
    directory: Path = typer.Argument(..., help="Experiment directory (results.json) or augment run directory (manifest.json)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="HTML file to write (default: DIRECTORY/report.html)."),
    max_points: int = typer.Option(2000, help="Run map: at most this many points per language and kind."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """One self-contained HTML report (figures inline, opens offline) of an experiment or a run."""
    from xite.report import write_report

    path = write_report(directory, out, max_points=max_points, progress=not quiet,
                        log=None if quiet else (lambda msg: console.print(f"[dim]{msg}[/dim]")))
    out_console.print(f"report: {path}")


def _load_plugin_commands() -> None:
    from xite import plugins as plugin_registry

    try:
        plugin_registry.install_commands(app)
    except Exception as exc:  # xite's own commands (and --help) must work whatever plugins do
        console.print(f"[yellow]warning:[/yellow] plugin commands not loaded: {type(exc).__name__}: {exc}",
                      highlight=False, soft_wrap=True)


def _click_exceptions():
    # Typer >= 0.20 vendors click as typer._click; older Typer uses click itself.
    try:
        from typer._click import exceptions
    except ImportError:  # pragma: no cover - depends on the installed Typer
        from click import exceptions
    return exceptions


def _interrupted() -> int:
    console.print("interrupted: no output was written (cached embeddings are kept; rerun to resume)")
    return 130


def _error_line(message: str) -> int:
    from rich.markup import escape

    console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    return 2


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """xite's notes to the user (XiteWarning) as one line each; other warnings as Python shows them."""
    from xite.errors import XiteWarning

    if issubclass(category, XiteWarning):
        from rich.markup import escape

        console.print(f"[yellow]warning:[/yellow] {escape(str(message))}", highlight=False, soft_wrap=True)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


def _os_error_message(exc: OSError) -> str:
    where = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None)
    reason = exc.strerror or str(exc)
    return f"{where}: {reason}" if where else reason


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point: user errors become one line on stderr and exit code 2."""
    from xite.errors import XiteWarning

    exceptions = _click_exceptions()
    with warnings.catch_warnings():
        # Every note is shown, not once per place in the code: two files can need the same note.
        warnings.simplefilter("always", XiteWarning)
        warnings.showwarning = _show_warning
        try:
            _load_plugin_commands()
            rv = app(args=argv, standalone_mode=False, prog_name="xite")
        except XiteError as exc:
            return _error_line(str(exc))
        except exceptions.UsageError as exc:
            # A bad flag or value: one line, like every other error, with where to find help.
            command = exc.ctx.command_path if exc.ctx is not None else "xite"
            return _error_line(f"{exc.format_message()} (see `{command} --help`)")
        except exceptions.ClickException as exc:
            return _error_line(exc.format_message())
        except KeyboardInterrupt:
            return _interrupted()
        except typer.Abort as exc:
            # Click turns an EOFError raised anywhere in a command into Abort, which would read as
            # Ctrl-C; only a real interrupt is one. Anything else is a bug: keep its traceback.
            cause = exc.__cause__ or exc.__context__
            if cause is None or isinstance(cause, KeyboardInterrupt):
                return _interrupted()
            raise cause from None
        except OSError as exc:
            # A filesystem fault (full disk, read-only or missing folder, permissions) is the
            # environment, not a bug: one line with the path and the system's reason. An OSError
            # without an errno is not such a fault and keeps its traceback.
            if exc.errno is None:
                raise
            return _error_line(_os_error_message(exc))
        except typer.Exit as exc:
            return int(exc.exit_code)
    # Without standalone mode Typer returns the exit code of an interrupted command (130).
    if rv == 130:
        return _interrupted()
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
