"""The run directory of ``xite augment``: its manifest, writing it atomically, reading it back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xite.data.writers import atomic_output_dir, write_jsonl
from xite.errors import InputError, XiteError
from xite.recipe import ComponentSpec, Recipe

SYNTHETIC = "synthetic.safetensors"
MANIFEST = "manifest.json"
PAIRS = "pairs.jsonl"
RUN_FORMAT = "xite-run/1"
# The sharded layout (the ray executor): numbered files, listed in the manifest's "shards".
SHARD_SYNTHETIC = "synthetic-{:05d}.safetensors"
SHARD_PAIRS = "pairs-{:05d}.jsonl"
TENSORS = ("embeddings", "labels", "lam", "target_index", "source_index", "similarity")


def write_run(result, out: Path, overwrite: bool = False) -> Path:
    """Write the three files into a temp dir next to ``out``, then rename it into place."""
    from safetensors.numpy import save_file

    with atomic_output_dir(out, overwrite=overwrite) as tmp:
        tensors = {k: np.ascontiguousarray(v) for k, v in result.tensors().items()}
        save_file(tensors, str(Path(tmp) / SYNTHETIC))
        write_jsonl(Path(tmp) / PAIRS, result.pairs)
        result.run_manifest.output = str(out)
        result.run_manifest.write(Path(tmp))
    return out


def write_shard(directory: Path, number: int, tensors: dict[str, np.ndarray], pairs: list[dict]) -> dict:
    """One shard of a sharded run (its rows' tensors and pairs); returns its manifest entry."""
    from safetensors.numpy import save_file

    names = SHARD_SYNTHETIC.format(number), SHARD_PAIRS.format(number)
    save_file({k: np.ascontiguousarray(tensors[k]) for k in TENSORS}, str(directory / names[0]))
    write_jsonl(directory / names[1], pairs)
    return {"synthetic": names[0], "pairs": names[1], "rows": int(len(tensors["labels"]))}


@dataclass
class RunManifest:
    """What a run directory's manifest.json says: the recipe that made it (so the run can be
    reproduced from its manifest), the inputs with their digests, the components as configured,
    the projection, counts and timings."""

    recipe: Recipe
    label_names: list[str]
    pairs: bool
    source: dict
    targets: list[dict]
    extra_languages: list[dict]
    encoder: dict
    components: dict
    projection: dict
    counts: dict
    mean_similarity: float | None
    ops_backend: str
    cache: dict
    timings_s: dict
    output: str | None = None
    xite_version: str = ""
    format: str = RUN_FORMAT
    shards: list[dict] | None = None  # sharded layout: [{synthetic, pairs, rows}], in row order
    executor: dict | None = None  # recorded when not the local executor

    def to_dict(self) -> dict:
        return {
            "xite_version": self.xite_version, "format": self.format, "recipe": self.recipe.to_dict(),
            "label_names": self.label_names, "pairs": self.pairs, "source": self.source, "targets": self.targets,
            "extra_languages": self.extra_languages, "encoder": self.encoder, "components": self.components,
            "projection": self.projection, "seed": self.recipe.seed, "per_target": self.recipe.per_target,
            "counts": self.counts, "mean_similarity": self.mean_similarity, "ops_backend": self.ops_backend,
            "cache": self.cache, "timings_s": self.timings_s, "output": self.output,
            # Only sharded runs carry these keys, so single-file manifests stay as they were.
            **({"executor": self.executor} if self.executor is not None else {}),
            **({"shards": self.shards} if self.shards is not None else {}),
        }

    def write(self, directory: Path) -> None:
        text = json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"
        (Path(directory) / MANIFEST).write_text(text, encoding="utf-8")

    @classmethod
    def from_dict(cls, data: dict, path: Path | str = MANIFEST) -> "RunManifest":
        """Validate a manifest's shape; anything missing or of the wrong type is a one-line
        InputError naming the file and the key."""
        if not isinstance(data, dict):
            raise InputError(path, f"a manifest is a JSON object, got {type(data).__name__}")
        expect = {"label_names": list, "pairs": bool, "source": dict, "targets": list, "encoder": dict,
                  "components": dict, "projection": dict, "counts": dict}
        for key, typ in expect.items():
            if key not in data:
                raise InputError(path, "missing key", field=key)
            if not isinstance(data[key], typ):
                raise InputError(path, f"must be a {typ.__name__}, got {type(data[key]).__name__}", field=key)
        if len(data["label_names"]) < 2 or not all(isinstance(n, str) for n in data["label_names"]):
            raise InputError(path, "must list two or more label names (strings)", field="label_names")
        _check_entry(path, data["encoder"], "encoder", {"name": str, "dim": int})
        _check_entry(path, data["source"], "source", {"path": str, "rows": int})
        for key, fields in (("targets", {"language": str, "path": str, "digest": str, "rows": int, "offset": int}),
                            ("extra_languages", {"language": str, "path": str, "rows": int})):
            entries = data.get(key, [])
            if not isinstance(entries, list):
                raise InputError(path, f"must be a list, got {type(entries).__name__}", field=key)
            for i, entry in enumerate(entries):
                _check_entry(path, entry, f"{key}[{i}]", fields)
        for key in ("recipe", "mean_similarity", "cache", "timings_s"):
            expected = {"recipe": dict, "mean_similarity": (int, float, type(None)), "cache": dict, "timings_s": dict}[key]
            if key in data and not isinstance(data[key], expected):
                raise InputError(path, f"has the wrong type ({type(data[key]).__name__})", field=key)
        shards = data.get("shards")
        if shards is not None:
            _check_shard_entries(path, shards)
        try:
            recipe = Recipe.from_dict(data["recipe"], str(path)) if "recipe" in data else recipe_of_old_manifest(data)
        except XiteError as exc:
            raise InputError(path, str(exc), field="recipe") from None
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            # An old manifest (no recipe key) whose component entries are not {name, options}.
            raise InputError(path, f"cannot rebuild the recipe from components: {exc!r}", field="components") from None
        return cls(
            recipe=recipe, label_names=list(data["label_names"]), pairs=data["pairs"], source=data["source"],
            targets=data["targets"], extra_languages=list(data.get("extra_languages", [])), encoder=data["encoder"],
            components=data["components"], projection=data["projection"], counts=data["counts"],
            mean_similarity=data.get("mean_similarity"), ops_backend=str(data.get("ops_backend", "")),
            cache=dict(data.get("cache", {})), timings_s=dict(data.get("timings_s", {})), output=data.get("output"),
            xite_version=str(data.get("xite_version", "")), format=str(data.get("format", RUN_FORMAT)),
            shards=shards, executor=data.get("executor"),
        )

    @classmethod
    def read(cls, directory: Path | str) -> "RunManifest":
        path = Path(directory) / MANIFEST
        return cls.from_dict(read_json_dir(Path(directory), (MANIFEST,), MANIFEST, "an xite augment run directory"), path)


def _check_shard_entries(path, shards) -> None:
    if not isinstance(shards, list) or not shards:
        raise InputError(path, "must be a non-empty list of shards", field="shards")
    for n, entry in enumerate(shards):
        ok = isinstance(entry, dict) and all(isinstance(entry.get(k), str) for k in ("synthetic", "pairs"))
        ok = ok and isinstance(entry.get("rows"), int) and not isinstance(entry.get("rows"), bool)
        if not ok or "/" in entry["synthetic"] or "/" in entry["pairs"]:
            raise InputError(path, "each shard needs file names 'synthetic', 'pairs' and an integer 'rows'", field=f"shards[{n}]")


def _check_entry(path, entry, where: str, fields: dict) -> None:
    """A nested manifest entry is an object whose ``fields`` have their JSON types (later steps
    index into them: a list where an object belongs would be an AttributeError there)."""
    if not isinstance(entry, dict):
        raise InputError(path, f"must be an object, got {type(entry).__name__}", field=where)
    for key, typ in fields.items():
        if key not in entry:
            raise InputError(path, "missing key", field=f"{where}.{key}")
        value = entry[key]
        if (isinstance(value, bool) and typ is int) or not isinstance(value, typ):
            raise InputError(path, f"has the wrong type ({type(value).__name__})", field=f"{where}.{key}")


def recipe_of_old_manifest(data: dict) -> Recipe:
    """Runs written before manifests carried their recipe: rebuild it from the component entries."""
    comps = data.get("components", {})
    spec = lambda entry: ComponentSpec(entry["name"], dict(entry.get("options", {})))  # noqa: E731
    enc = data.get("encoder", {})
    return Recipe(
        encoder=ComponentSpec(enc.get("spec") or enc["name"], dict(enc.get("options", {}))),
        **{kind: spec(comps[kind]) for kind in ("retriever", "adopter", "projector", "interpolator") if kind in comps},
        seed=int(data.get("seed", 0)), per_target=int(data.get("per_target", 1)),
        source_language=str(data.get("source", {}).get("language", "en")),
    )


def build_manifest(recipe: Recipe, inputs, src, tgts, extras, parts, projection, adoption, synthetic, cache, timer) -> RunManifest:
    """The manifest of a finished augment (see RunManifest)."""
    import xite
    from xite import plugins
    from xite.ops import backend

    ex = synthetic.expansion
    y, sim, names = ex.labels, ex.similarity, inputs.label_names
    langs = np.asarray(synthetic.languages, dtype=object)
    offsets = np.cumsum([0] + [len(e.x) for e in tgts])
    targets = []
    for i, e in enumerate(tgts):
        lo, hi = int(offsets[i]), int(offsets[i + 1])
        mine = langs == e.language if len(langs) else np.zeros(0, dtype=bool)
        targets.append({
            "language": e.language, "path": str(e.corpus.path), "digest": e.corpus.digest, "rows": hi - lo,
            "offset": lo, "kept": int(adoption.keep[lo:hi].sum()), "synthetic": int(mine.sum()),
            "label_distribution": distribution(y[mine], names),
            "mean_similarity": round(float(sim[mine].mean()), 6) if mine.any() else None,
        })
    package = lambda kind: plugins.lookup(kind + "s", recipe.spec(kind).name)[0].package  # noqa: E731
    enc = parts["encoder"]
    return RunManifest(
        recipe=recipe,
        label_names=names,
        pairs=src.corpus.is_pair,
        source={"language": src.language, "path": str(src.corpus.path), "digest": src.corpus.digest,
                "rows": len(src.corpus), "fields": src.corpus.fields},
        targets=targets,
        extra_languages=[{"language": e.language, "path": str(e.corpus.path), "digest": e.corpus.digest, "rows": len(e.x)} for e in extras],
        encoder={**enc.config(), "package": package("encoder"), "spec": recipe.encoder.name, "options": dict(recipe.encoder.options)},
        components={kind: {"name": recipe.spec(kind).name, "package": package(kind), "options": parts[kind].config()}
                    for kind in ("retriever", "projector", "interpolator", "adopter")},
        projection={"mode": projection.mode, "rank": projection.rank, "centred": projection.mean is not None,
                    "info": jsonable(projection.info)},
        counts={"target_rows": int(len(adoption.keep)), "kept": int(adoption.keep.sum()), "filtered": int((~adoption.keep).sum()),
                "synthetic": int(len(ex)), "label_distribution": distribution(y, names)},
        mean_similarity=round(float(sim.mean()), 6) if len(sim) else None,
        ops_backend=backend(),
        cache={"hits": cache.stats.hits, "encoded": cache.stats.encoded},
        timings_s=dict(timer.seconds),
        xite_version=xite.__version__,
    )


def distribution(y: np.ndarray, label_names: list[str]) -> dict[str, int]:
    counts = np.bincount(y, minlength=len(label_names)) if len(y) else np.zeros(len(label_names), dtype=int)
    return {name: int(c) for name, c in zip(label_names, counts)}


def jsonable(value):
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass
class Run:
    path: Path
    manifest: dict
    tensors: dict[str, np.ndarray]
    info: RunManifest

    @property
    def label_names(self) -> list[str]:
        return list(self.manifest["label_names"])


def read_json_dir(path: Path, files: tuple[str, ...], json_name: str, what: str) -> dict:
    """Check that a directory xite wrote has its ``files`` and return its JSON file, parsed;
    anything missing or unreadable is a one-line InputError naming the file."""
    for name in files:
        if not (path / name).is_file():
            raise InputError(path / name, f"missing: not {what}")
    try:
        return json.loads((path / json_name).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path / json_name, f"unreadable {json_name}: {exc}") from None


def read_run(path: str | Path) -> Run:
    """Load a run directory, single-file or sharded (the shards concatenated in order), with
    one-line errors for anything missing or inconsistent."""
    path = Path(path)
    if not _declares_shards(path / MANIFEST):
        # The single-file layout, checked in the order it always was: the tensors file first.
        manifest = read_json_dir(path, (SYNTHETIC, MANIFEST), MANIFEST, "an xite augment run directory")
        tensors = _load_tensor_file(path / SYNTHETIC)
        info = RunManifest.from_dict(manifest, path / MANIFEST)
        _check_tensors(path / SYNTHETIC, tensors, len(info.label_names))
        return Run(path, manifest, tensors, info)
    manifest = read_json_dir(path, (MANIFEST,), MANIFEST, "an xite augment run directory")
    info = RunManifest.from_dict(manifest, path / MANIFEST)
    parts = list(_iter_tensors(path, info))
    tensors = parts[0] if len(parts) == 1 else {name: np.concatenate([p[name] for p in parts]) for name in TENSORS}
    return Run(path, manifest, tensors, info)


def _declares_shards(manifest_path: Path) -> bool:
    """Whether a readable manifest lists shards; anything else is read as the single-file layout,
    whose reader reports what is wrong."""
    try:
        data = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and "shards" in data


def iter_run_shards(path: str | Path):
    """The tensors of a run one shard at a time (a single-file run is one shard), so a consumer
    of a large sharded run holds one shard in memory, not the run."""
    path = Path(path)
    info = RunManifest.read(path)
    yield from _iter_tensors(path, info)


def _iter_tensors(path: Path, info: RunManifest):
    files = [entry["synthetic"] for entry in info.shards] if info.shards is not None else [SYNTHETIC]
    for n, name in enumerate(files):
        tensors = _load_tensors(path / name, len(info.label_names))
        if info.shards is not None and len(tensors["labels"]) != info.shards[n]["rows"]:
            raise InputError(path / name, f"holds {len(tensors['labels'])} rows, the manifest says {info.shards[n]['rows']}")
        yield tensors


def _load_tensors(file: Path, n_labels: int) -> dict[str, np.ndarray]:
    if not file.is_file():
        raise InputError(file, "missing: not an xite augment run directory")
    tensors = _load_tensor_file(file)
    _check_tensors(file, tensors, n_labels)
    return tensors


def _load_tensor_file(file: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    try:
        tensors = load_file(str(file))
    except Exception as exc:  # safetensors raises its own error types
        raise InputError(file, f"unreadable safetensors file: {exc}") from None
    for name in TENSORS:
        if name not in tensors:
            raise InputError(file, "missing tensor", field=name)
    return tensors


def _check_tensors(path: Path, tensors: dict[str, np.ndarray], n_labels: int) -> None:
    """The arrays must agree in length, labels must name a label, embeddings must be finite."""
    emb = tensors["embeddings"]
    if emb.ndim != 2:
        raise InputError(path, f"must be 2-D [rows, dim], got shape {emb.shape}", field="embeddings")
    for name in TENSORS[1:]:
        if tensors[name].shape != (emb.shape[0],):
            raise InputError(path, f"has shape {tensors[name].shape}, expected ({emb.shape[0]},)", field=name)
    labels = tensors["labels"]
    if len(labels) and (labels.min() < 0 or labels.max() >= n_labels):
        raise InputError(path, f"labels must be in 0..{n_labels - 1}", field="labels")
    if not np.isfinite(emb).all():
        raise InputError(path, "contains NaN or infinite values", field="embeddings")
