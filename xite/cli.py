"""The ``xite`` command line: parses options and composes components. No logic of its own."""

from __future__ import annotations

import json
import os
import sys
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
out_console = Console(soft_wrap=True, highlight=False)


def _lang_path(values: Optional[List[str]], flag: str) -> list[tuple[str, Path]]:
    pairs = []
    for value in values or []:
        lang, sep, path = value.partition("=")
        if not sep or not lang or not path:
            raise typer.BadParameter(f"expected LANG=PATH, got {value!r}", param_hint=flag)
        pairs.append((lang.strip(), Path(path)))
    return pairs


def _generic_options(values: Optional[List[str]]) -> dict[str, dict]:
    """``--option projector.rank=4`` -> {"projector": {"rank": 4}} (values parsed as JSON when they can be)."""
    found: dict[str, dict] = {}
    for value in values or []:
        key, sep, raw = value.partition("=")
        kind, dot, name = key.partition(".")
        if not sep or not dot or kind not in ("encoder", "retriever", "projector", "interpolator", "adopter"):
            raise typer.BadParameter(f"expected KIND.NAME=VALUE with KIND in encoder|retriever|projector|interpolator|adopter, got {value!r}", param_hint="--option")
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError:
            parsed = raw
        found.setdefault(kind, {})[name] = parsed
    return found


def _drop_none(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


@app.command()
def augment(
    source: Optional[Path] = typer.Argument(None, help="Labeled English corpus (JSONL, CSV/TSV, Parquet)."),
    target: Optional[List[str]] = typer.Option(None, "--target", "-t", help="Unlabeled target corpus, LANG=PATH (repeat)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory to write (atomically)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output directory."),
    demo: bool = typer.Option(False, "--demo", help="Use the small demo corpus shipped with xite (en -> ko, ar, hi, ur)."),
    encoder: str = typer.Option("e5-small", help="Encoder name (e5-small, hf:NAME_OR_PATH, or a plugin's)."),
    retriever: str = typer.Option("faiss", help="Retriever name (faiss, exact, ...)."),
    projector: str = typer.Option("lda", help="Projector name (lda, pca, none, ...)."),
    interpolator: str = typer.Option("linear", help="Interpolator name (linear, mixup, slerp, ...)."),
    adopter: str = typer.Option("top1", help="Label adoption (top1, vote, ...)."),
    index: Optional[str] = typer.Option(None, help="faiss index: flat (default), ivf, hnsw."),
    nlist: Optional[int] = typer.Option(None, help="faiss ivf: number of lists."),
    nprobe: Optional[int] = typer.Option(None, help="faiss ivf: lists probed per query."),
    hnsw_m: Optional[int] = typer.Option(None, help="faiss hnsw: links per node."),
    ef_search: Optional[int] = typer.Option(None, help="faiss hnsw: search breadth."),
    k: Optional[int] = typer.Option(None, "--k", help="vote: neighbours that vote."),
    min_sim: Optional[float] = typer.Option(None, help="Drop target rows whose neighbour is less similar."),
    min_margin: Optional[float] = typer.Option(None, help="vote: drop rows with a smaller vote margin."),
    balance: Optional[bool] = typer.Option(None, "--balance/--no-balance", help="Equalise pseudo-label classes."),
    rank: Optional[int] = typer.Option(None, help="Projector rank (lda: at most languages-1)."),
    mode: Optional[str] = typer.Option(None, help="Projector mode: keep (default) or remove."),
    center: Optional[bool] = typer.Option(None, "--center/--no-center", help="Centre the projection."),
    extra_language: Optional[List[str]] = typer.Option(None, "--extra-language", help="Extra unlabeled corpus LANG=PATH to enrich the LDA subspace."),
    lam: Optional[float] = typer.Option(None, "--lam", help="linear/slerp: weight of the target row."),
    alpha: Optional[float] = typer.Option(None, help="mixup: Beta(alpha, alpha)."),
    per_target: int = typer.Option(1, help="Synthetic rows per target row."),
    seed: int = typer.Option(0, help="Seed for every random choice."),
    source_language: str = typer.Option("en", help="Language code of the source corpus."),
    batch_size: int = typer.Option(64, help="Encoding batch size."),
    text_field: Optional[str] = typer.Option(None, help="Text field (default: detected)."),
    premise_field: Optional[str] = typer.Option(None, help="Premise field for pairs."),
    hypothesis_field: Optional[str] = typer.Option(None, help="Hypothesis field for pairs."),
    label_field: Optional[str] = typer.Option(None, help="Label field (default: label)."),
    option: Optional[List[str]] = typer.Option(None, "--option", help="Any component option, KIND.NAME=VALUE (repeat)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
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
    generic = _generic_options(option)
    options = {
        "retriever": _drop_none(dict(index=index, nlist=nlist, nprobe=nprobe, hnsw_m=hnsw_m, ef_search=ef_search)),
        "projector": _drop_none(dict(rank=rank, mode=mode, center=center)),
        "interpolator": _drop_none(dict(lam=lam, alpha=alpha)),
        "adopter": _drop_none(dict(k=k, min_sim=min_sim, min_margin=min_margin, balance=balance)),
        "encoder": {},
    }
    for kind, extra in generic.items():
        options[kind].update(extra)
    result = run_augment(
        source,
        targets,
        out=out,
        overwrite=overwrite,
        encoder=encoder,
        retriever=retriever,
        projector=projector,
        interpolator=interpolator,
        adopter=adopter,
        encoder_options=options["encoder"],
        retriever_options=options["retriever"],
        projector_options=options["projector"],
        interpolator_options=options["interpolator"],
        adopter_options=options["adopter"],
        extra_languages=_lang_path(extra_language, "--extra-language"),
        source_language=source_language,
        per_target=per_target,
        seed=seed,
        batch_size=batch_size,
        text_field=text_field,
        premise_field=premise_field,
        hypothesis_field=hypothesis_field,
        label_field=label_field,
        progress=not quiet,
        log=lambda msg: console.print(f"[dim]{msg}[/dim]"),
    )
    _print_summary(result.manifest, result.out_dir)


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
    from xite.train import train as run_train

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
    from xite.evaluate import evaluate as run_evaluate

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
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """The whole protocol: zero-shot, XITE variants, self-training, upper bound, over seeds."""
    from xite.experiment import experiment as run_experiment

    out = out or Path(f"xite-experiment-{task}")
    results = run_experiment(data, task, config=config, out=out, languages=language or None, seeds=seed or None,
                             progress=not quiet, log=lambda msg: console.print(f"[dim]{msg}[/dim]"))
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


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point: user errors become one line on stderr and exit code 2."""
    exceptions = _click_exceptions()
    try:
        _load_plugin_commands()
        rv = app(args=argv, standalone_mode=False, prog_name="xite")
    except XiteError as exc:
        from rich.markup import escape

        console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 2
    except exceptions.ClickException as exc:
        exc.show()
        return 2
    except (KeyboardInterrupt, typer.Abort):
        return _interrupted()
    except typer.Exit as exc:
        return int(exc.exit_code)
    # Without standalone mode Typer returns the exit code of an interrupted command (130).
    if rv == 130:
        return _interrupted()
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
