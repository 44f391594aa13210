"""The report page of an ``xite augment`` run directory.

The run stores only the synthetic rows. To place them among the English and target rows, the
report re-reads the corpora named in the manifest (checking their digests) and encodes them with
the manifest's encoder through the embedding cache (after the run itself, a cache hit). The
projection basis is not stored either: it is refitted with the manifest's projector on the
re-encoded rows, and, when every row could be used, checked against the stored synthetic rows.
When the encoder cannot be built or a corpus is gone or changed, the page plots the synthetic rows
only and says why.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from xite.report import figures as F
from xite.report.html import Cell, Page, esc, figure, json_block, note, table

MAX_FIT_ROWS = 20000  # rows per corpus re-encoded for the refit (a seeded sample beyond that)
PAIRS_SHOWN = 3  # example rows per language from pairs.jsonl
SEED = 0


class Unavailable(Exception):
    """Why the English / target rows cannot be re-encoded (shown in the page)."""


@dataclass
class Encoded:
    language: str
    role: str  # source | target | extra
    x: np.ndarray
    labels: np.ndarray | None  # source only: label ids
    rows: int  # rows in the file
    sampled: bool


@dataclass
class Reencoded:
    encoder: str
    corpora: list[Encoded]
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not any(c.sampled for c in self.corpora)


def build(path: Path, *, max_points: int = 2000, progress: bool = False, log: Callable[[str], None] | None = None) -> str:
    from xite.run_io import read_run

    say = log or (lambda _m: None)
    run = read_run(path)
    m = run.manifest
    t = run.tensors
    names = run.label_names
    targets = [x for x in m.get("targets", []) if isinstance(x, dict) and "language" in x]
    syn_lang = _row_languages(targets, t["target_index"])
    langs = [x["language"] for x in targets]
    src_lang = (m.get("source") or {}).get("language", "en")

    page = Page(f"xite augment run: {path.name}")
    enc = m.get("encoder", {})
    c = m.get("counts", {})
    meta = [
        f"directory <code>{esc(path)}</code>; {esc(src_lang)} → {esc(', '.join(langs))}; "
        f"{esc(c.get('synthetic', len(t['labels'])))} synthetic rows from {esc(c.get('target_rows', '?'))} target rows "
        f"({esc(c.get('filtered', '?'))} filtered)",
        f"encoder {esc(enc.get('spec') or enc.get('name'))} ({esc(enc.get('name'))}@{esc(enc.get('version'))}, dim {esc(enc.get('dim'))}); "
        f"labels {esc(', '.join(names))}; {'text pairs' if m.get('pairs') else 'single texts'}",
    ]

    say("re-encoding the run's corpora through the embedding cache")
    try:
        re_enc = _reencode(m, names, progress)
        reason = None
    except Unavailable as exc:
        re_enc, reason = None, str(exc)
    source_labels = _source_labels(m, names)

    _map_section(page, t, syn_lang, langs, names, src_lang, re_enc, reason, max_points)
    _separation_section(page, m, t, syn_lang, langs, src_lang, re_enc, reason, max_points)
    _distributions_section(page, m, t, syn_lang, langs, names, src_lang, source_labels)
    _manifest_section(page, m, path)
    return page.render(meta)


# ---------------------------------------------------------------------------------------------
# Data


def _row_languages(targets: list[dict], target_index: np.ndarray) -> np.ndarray:
    """The language of each synthetic row, from the targets' offsets in the manifest."""
    offsets = np.array([int(x.get("offset", 0)) for x in targets] + [np.iinfo(np.int64).max])
    names = np.array([x["language"] for x in targets] + ["?"], dtype=object)
    if not targets:
        return np.array(["?"] * len(target_index), dtype=object)
    block = np.searchsorted(offsets, np.asarray(target_index, dtype=np.int64), side="right") - 1
    return names[np.clip(block, 0, len(targets) - 1)]


def _read_kwargs(m: dict) -> dict:
    fields = (m.get("source") or {}).get("fields") or {}
    return dict(text_field=fields.get("text"), premise_field=fields.get("premise"), hypothesis_field=fields.get("hypothesis"),
                label_field=fields.get("label"))


def _read(entry: dict, what: str, labeled: bool | None, m: dict):
    from xite.data.readers import read_corpus
    from xite.errors import XiteError

    path = entry.get("path")
    if not path:
        raise Unavailable(f"the manifest names no file for the {what}")
    try:
        corpus = read_corpus(path, labeled=labeled, **_read_kwargs(m))
    except (XiteError, OSError) as exc:
        raise Unavailable(f"the {what} cannot be read: {_one_line(exc)}") from None
    if entry.get("digest") and corpus.digest != entry["digest"]:
        raise Unavailable(f"the {what} {path} changed since the run (its digest differs from the manifest's)")
    return corpus


def _source_labels(m: dict, names: list[str]) -> np.ndarray | None:
    """English gold labels without an encoder (for the label distribution)."""
    from xite.errors import XiteError

    try:
        corpus = _read(m.get("source") or {}, "source corpus", True, m)
        return np.asarray(corpus.encode_labels(names))
    except (Unavailable, XiteError):  # the distribution is then drawn without English
        return None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def _build_encoder(m: dict):
    from xite import plugins

    enc_m = m.get("encoder") or {}
    spec = enc_m.get("spec") or enc_m.get("name")
    if not spec:
        raise Unavailable("the manifest names no encoder")
    try:
        reg, _ = plugins.lookup("encoders", spec)
        try:
            params = inspect.signature(reg.factory).parameters
        except (TypeError, ValueError):
            params = {}
        # The manifest holds the encoder's config(); pass back what its constructor takes.
        opts = {k: v for k, v in enc_m.items() if k in params and k not in ("spec", "name", "version", "package")}
        enc = plugins.create("encoders", spec, opts)
    except Exception as exc:  # noqa: BLE001 - any failure to build it is reported in the page
        raise Unavailable(f"the run's encoder {spec!r} cannot be built here: {_one_line(exc)}") from None
    if str(enc.version) != str(enc_m.get("version")) or int(enc.dim) != int(enc_m.get("dim", enc.dim)):
        raise Unavailable(f"the encoder {spec!r} here is {enc.name}@{enc.version} (dim {enc.dim}); "
                          f"the run used {enc_m.get('name')}@{enc_m.get('version')} (dim {enc_m.get('dim')})")
    return spec, enc


def _subset(corpus, keep: np.ndarray):
    from xite.data.schema import Corpus

    pick = lambda seq: [seq[i] for i in keep]  # noqa: E731
    return Corpus(corpus.path, texts=None if corpus.texts is None else pick(corpus.texts),
                  pairs=None if corpus.pairs is None else (pick(corpus.pairs[0]), pick(corpus.pairs[1])),
                  labels=None if corpus.labels is None else pick(corpus.labels), digest=corpus.digest)


def _reencode(m: dict, names: list[str], progress: bool) -> Reencoded:
    from xite.encoders.cache import EmbeddingCache, encode_corpus

    spec, enc = _build_encoder(m)
    cache = EmbeddingCache(enc.cache_key)
    rng = np.random.default_rng(SEED)
    wanted = [("source", m.get("source") or {}, True)] + [("target", x, False) for x in m.get("targets", [])]
    wanted += [("extra", x, None) for x in m.get("extra_languages", [])]
    corpora, notes = [], []
    for role, entry, labeled in wanted:
        what = {"source": "source corpus", "target": f"target corpus ({entry.get('language')})",
                "extra": f"extra-language corpus ({entry.get('language')})"}[role]
        try:
            corpus = _read(entry, what, labeled, m)
        except Unavailable as exc:
            if role == "extra":  # only the refit misses it: say so and go on
                notes.append(f"{exc}; the refit leaves it out")
                continue
            raise
        n = len(corpus)
        sampled = n > MAX_FIT_ROWS
        if sampled:
            corpus = _subset(corpus, np.sort(rng.permutation(n)[:MAX_FIT_ROWS]))
        try:
            x = encode_corpus(enc, cache, corpus, 64, progress)
        except Exception as exc:  # noqa: BLE001 - a model that fails at run time is reported like one that fails to load
            raise Unavailable(f"encoding the {what} with {spec!r} failed: {_one_line(exc)}") from None
        labels = np.asarray(corpus.encode_labels(names)) if role == "source" else None
        lang = (m.get("source") or {}).get("language", "en") if role == "source" else entry.get("language")
        corpora.append(Encoded(lang, role, x, labels, n, sampled))
    return Reencoded(spec, corpora, notes)


def _sample(n: int, k: int, salt: int) -> np.ndarray:
    if n <= k:
        return np.arange(n)
    return np.sort(np.random.default_rng(SEED + salt).permutation(n)[:k])


def _two_d(x: np.ndarray) -> tuple[np.ndarray, tuple[str, str], str]:
    try:
        import umap  # type: ignore[import-not-found]
    except ImportError:
        umap = None
    if umap is not None and len(x) > 15:
        xy = umap.UMAP(n_components=2, random_state=SEED, n_neighbors=min(15, len(x) - 1)).fit_transform(x)
        return np.asarray(xy), ("UMAP 1", "UMAP 2"), "UMAP (umap-learn)"
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, random_state=SEED).fit(x)
    r = pca.explained_variance_ratio_
    return pca.transform(x), (f"PC 1 ({100 * r[0]:.1f}% of variance)", f"PC 2 ({100 * r[1]:.1f}%)"), "PCA (scikit-learn)"


# ---------------------------------------------------------------------------------------------
# Sections


def _map_section(page, t, syn_lang, langs, names, src_lang, re_enc: Reencoded | None, reason, max_points) -> None:
    parts = page.section("sec-map", "Embedding map")
    z, y = t["embeddings"], t["labels"]
    lang_colour = {lang: F.colour(i) for i, lang in enumerate(langs)}
    chunks: list[tuple[str, str, np.ndarray, np.ndarray | None]] = []  # (kind, language, rows, labels)
    if re_enc is not None:
        for i, c in enumerate(re_enc.corpora):
            if c.role == "extra":
                continue
            keep = _sample(len(c.x), max_points, 10 + i)
            chunks.append((c.role, c.language, c.x[keep], None if c.labels is None else c.labels[keep]))
    else:
        parts.append(note(f"Synthetic rows only: {reason}.", "note-reencode"))
    for i, lang in enumerate(langs):
        rows = np.flatnonzero(syn_lang == lang)
        keep = rows[_sample(len(rows), max_points, 100 + i)]
        chunks.append(("synthetic", lang, z[keep], y[keep]))
    chunks = [ch for ch in chunks if len(ch[2])]
    if not chunks or sum(len(ch[2]) for ch in chunks) < 3:
        parts.append(note("Too few rows to draw a map."))
        return
    xy, axes, method = _two_d(np.concatenate([ch[2] for ch in chunks]).astype(np.float64))
    by_lang, by_label, start = [], [], 0
    for kind, lang, rows, labels in chunks:
        pts = xy[start : start + len(rows)]
        start += len(rows)
        col = F.SOURCE_COLOUR if kind == "source" else lang_colour.get(lang, "#333333")
        marker, size = {"source": ("o", 10), "target": ("^", 10), "synthetic": ("x", 12)}[kind]
        by_lang.append(F.Layer(f"{lang} ({kind})", pts, col, marker, size))
        if kind == "target":
            by_label.append(F.Layer("target rows (unlabeled)", pts, "#c9ced4", "^", 7, 0.5))
            continue
        for j, name in enumerate(names):
            sel = labels == j
            if sel.any():
                by_label.append(F.Layer(f"{name} ({'gold, ' + lang if kind == 'source' else 'synthetic'})", pts[sel], F.colour(j),
                                        marker, size))
    # One legend entry per label for the synthetic rows of every language.
    by_label = _merge_layers(by_label)
    svg = F.embedding_map("fig-embedding-map", [("by language", by_lang), ("by label", by_label)], axes)
    what = "English, target and synthetic rows" if re_enc is not None else "synthetic rows"
    parts.append(figure("fig-embedding-map", svg,
                        f"{esc(method)} of the {what} (at most {max_points} per group, a seeded sample), fitted on the points shown. "
                        "Circles: English (gold labels); triangles: target rows; crosses: synthetic rows (adopted labels)."))


def _merge_layers(layers: list[F.Layer]) -> list[F.Layer]:
    merged: dict[tuple, F.Layer] = {}
    for layer in layers:
        key = (layer.label, layer.colour, layer.marker)
        if key in merged:
            merged[key].xy = np.concatenate([merged[key].xy, layer.xy])
        else:
            merged[key] = F.Layer(layer.label, layer.xy, layer.colour, layer.marker, layer.size, layer.alpha)
    return list(merged.values())


def _fit_direction(m: dict, re_enc: Reencoded, src_lang: str):
    """Refit the manifest's projector (an LDA for the report when the run projected nothing)."""
    from xite import plugins

    comp = (m.get("components") or {}).get("projector") or {}
    x = np.concatenate([c.x for c in re_enc.corpora]).astype(np.float64)
    tags = [c.language for c in re_enc.corpora for _ in range(len(c.x))]
    name, options, own = comp.get("name"), dict(comp.get("options") or {}), True
    projection, why = None, ""
    if name and int((m.get("projection") or {}).get("rank", 0) or 0) > 0:
        try:
            projection = plugins.create("projectors", name, options).fit(x, tags, source_language=src_lang)
        except Exception as exc:  # noqa: BLE001 - fall back to a plain LDA and say so
            why = f"refitting {name} failed ({_one_line(exc)}); "
    if projection is None or projection.basis is None:
        own = False
        projection = plugins.create("projectors", "lda", {}).fit(x, tags, source_language=src_lang)
        why += f"the run's projector ({name or 'none'}) has no language directions; the direction shown is an LDA fitted for this report"
    return projection, own, why


def _reproduce(m: dict, t: dict, re_enc: Reencoded, projection) -> str | None:
    """Recompute the synthetic rows from the refitted basis; how far they are from the stored ones."""
    from xite import plugins

    comp = (m.get("components") or {}).get("interpolator") or {}
    try:
        mode = plugins.create("interpolators", comp.get("name"), comp.get("options") or {}).interp
    except Exception:  # noqa: BLE001
        return None
    if mode != "linear" or not re_enc.complete:
        return None
    x_src = next(c.x for c in re_enc.corpora if c.role == "source").astype(np.float64)
    x_tgt = np.concatenate([c.x for c in re_enc.corpora if c.role == "target"]).astype(np.float64)
    ti, si = t["target_index"].astype(np.int64), t["source_index"].astype(np.int64)
    if len(ti) == 0 or ti.max() >= len(x_tgt) or si.max() >= len(x_src):
        return None
    u = projection.basis.astype(np.float64)
    mu = np.zeros(u.shape[0]) if projection.mean is None else projection.mean.astype(np.float64)
    xt = x_tgt[ti]
    coef = (xt - mu) @ u @ u.T
    p = mu + coef if projection.mode == "keep" else xt - coef
    lam = t["lam"].astype(np.float64)[:, None]
    z_hat = lam * p + (1 - lam) * x_src[si]
    diff = float(np.abs(z_hat - t["embeddings"].astype(np.float64)).max())
    return f"{diff:.2g}"


def _separation_section(page, m, t, syn_lang, langs, src_lang, re_enc: Reencoded | None, reason, max_points) -> None:
    parts = page.section("sec-separation", "Language separation")
    info = (m.get("projection") or {}).get("info") or {}
    if re_enc is None:
        parts.append(note(f"Not drawn: the projection basis is not stored in the run and refitting it needs the English and "
                          f"target rows re-encoded, but {reason}.", "note-separation"))
        return
    projection, own, why = _fit_direction(m, re_enc, src_lang)
    u = projection.basis[:, 0].astype(np.float64)
    series, stats = [], []
    order = re_enc.corpora
    colours = {lang: F.colour(i) for i, lang in enumerate(langs)}
    for i, c in enumerate(order):
        v = c.x.astype(np.float64) @ u
        col = F.SOURCE_COLOUR if c.role == "source" else colours.get(c.language, F.colour(len(langs) + i))
        series.append((f"{c.language} ({c.role})", v, col))
        stats.append((c.language, c.role, v))
    syn = t["embeddings"].astype(np.float64) @ u if len(t["embeddings"]) else np.zeros(0)
    series.append(("synthetic (all languages)", syn, "#111111"))
    scatter = None
    if projection.rank >= 2:
        u2 = projection.basis[:, :2].astype(np.float64)
        scatter = []
        for i, c in enumerate(order):
            keep = _sample(len(c.x), max_points, 200 + i)
            col = F.SOURCE_COLOUR if c.role == "source" else colours.get(c.language, F.colour(len(langs) + i))
            scatter.append(F.Layer(c.language, c.x[keep].astype(np.float64) @ u2, col, "o", 8, 0.5))
        keep = _sample(len(syn), max_points, 300)
        scatter.append(F.Layer("synthetic", t["embeddings"][keep].astype(np.float64) @ u2, "#111111", "x", 10, 0.6))
    name = ((m.get("components") or {}).get("projector") or {}).get("name", "?") if own else "lda"
    svg = F.separation("fig-language-separation", series, f"coordinate on {name} direction 1", scatter, (f"{name} direction 1", f"{name} direction 2"))
    ratio = info.get("explained_variance_ratio")
    cap = (f"Each language's rows projected on the first direction of the {esc(name)} subspace refitted on the re-encoded rows "
           f"(rank {projection.rank}"
           + (f"; the run's fit explained {', '.join(f'{100 * r:.0f}%' for r in ratio[:4])} of the between-language variance" if isinstance(ratio, list) and ratio else "")
           + "). Well separated peaks mean the subspace carries the language; synthetic rows (dashed) sit between English and the targets.")
    if why:
        parts.append(note(why))
    if own:
        diff = _reproduce(m, t, re_enc, projection)
        if diff is not None:
            cap += f" Check: the refitted basis recomputes the stored synthetic rows to within max |Δ| = {esc(diff)}."
    if any(c.sampled for c in re_enc.corpora):
        cap += f" Corpora larger than {MAX_FIT_ROWS} rows were sampled ({MAX_FIT_ROWS} rows, seeded) for the refit."
    for n in re_enc.notes:
        parts.append(note(n))
    parts.append(figure("fig-language-separation", svg, cap))
    en = next(v for lang, role, v in stats if role == "source")
    rows = []
    for lang, role, v in stats + [("synthetic", "all languages", syn)]:
        pooled = np.sqrt((v.var() + en.var()) / 2) if len(v) else 0.0
        d = (v.mean() - en.mean()) / pooled if len(v) and pooled > 0 else None
        rows.append([lang, role, Cell(str(len(v)), "num"), Cell(f"{v.mean():.4f}" if len(v) else "–", "num"),
                     Cell(f"{v.std():.4f}" if len(v) else "–", "num"), Cell("–" if d is None else f"{d:+.2f}", "num")])
    parts.append(table("tab-separation", ["language", "role", "n", "mean coordinate", "std", f"d′ vs {src_lang}"], rows))


def _distributions_section(page, m, t, syn_lang, langs, names, src_lang, source_labels) -> None:
    parts = page.section("sec-distributions", "Neighbours, λ and labels")
    sim, lam, y = t["similarity"].astype(np.float64), t["lam"].astype(np.float64), t["labels"]
    per_lang_sim = [(lang, sim[syn_lang == lang], F.colour(i)) for i, lang in enumerate(langs)]
    adopter = ((m.get("components") or {}).get("adopter") or {}).get("options") or {}
    lines = [(float(adopter["min_sim"]), f"min_sim {adopter['min_sim']}")] if adopter.get("min_sim") is not None else []
    svg = F.histograms("fig-similarity", [{"title": "similarity of the adopted English neighbour", "xlabel": "cosine similarity",
                                           "series": per_lang_sim, "lines": lines}])
    means = ", ".join(f"{lang} {s.mean():.3f}" for lang, s, _ in per_lang_sim if len(s))
    parts.append(figure("fig-similarity", svg, f"Cosine similarity between each kept target row and its English neighbour, per language "
                                               f"(mean: {esc(means or '–')})."))
    per_lang_lam = [(lang, lam[syn_lang == lang], F.colour(i)) for i, lang in enumerate(langs)]
    interp = (m.get("components") or {}).get("interpolator") or {}
    const = len(lam) and float(lam.max() - lam.min()) < 1e-9
    panel = {"title": f"λ ({interp.get('name', '?')})", "xlabel": "λ (weight of the target row)", "series": per_lang_lam,
             "bins": np.linspace(0.0, 1.0, 26)}
    svg = F.histograms("fig-lambda", [panel])
    parts.append(figure("fig-lambda", svg, "Interpolation weights of the synthetic rows, per language"
                        + (f": every row has λ = {lam[0]:.3g}." if const else ".")))
    groups, counts = [], []
    if source_labels is not None:
        groups.append(f"{src_lang} (source, gold)")
        counts.append(np.bincount(source_labels, minlength=len(names)).tolist())
    for lang in langs:
        groups.append(f"{lang} (synthetic)")
        counts.append(np.bincount(y[syn_lang == lang], minlength=len(names)).tolist()[: len(names)])
    svg = F.label_bars("fig-labels", groups, names, counts)
    parts.append(figure("fig-labels", svg, "Label shares per language: the English source's gold labels and the labels adopted "
                        "by each target language's synthetic rows (counts on the bars)."
                        + ("" if source_labels is not None else " The English source could not be read, so it is not shown.")))
    parts.append(table("tab-labels", ["group"] + names + ["total"], [[g] + [Cell(str(v), "num") for v in c] + [Cell(str(sum(c)), "num")]
                                                                      for g, c in zip(groups, counts)]))


def _manifest_section(page, m: dict, path: Path) -> None:
    parts = page.section("sec-manifest", "Manifest")
    c = m.get("counts") or {}
    proj = m.get("projection") or {}
    summary = [
        ("format", m.get("format")), ("xite version", m.get("xite_version")), ("seed", m.get("seed")),
        ("synthetic rows per kept target row", m.get("per_target")), ("label names", ", ".join(m.get("label_names", []))),
        ("target rows", c.get("target_rows")), ("kept", c.get("kept")), ("filtered", c.get("filtered")),
        ("synthetic rows", c.get("synthetic")), ("mean similarity", m.get("mean_similarity")),
        ("projection", f"{proj.get('mode')}, rank {proj.get('rank')}{', centred' if proj.get('centred') else ''}"),
        ("kernel backend", m.get("ops_backend")),
        ("embedding cache", f"{(m.get('cache') or {}).get('hits')} hits, {(m.get('cache') or {}).get('encoded')} encoded"),
        ("written to", m.get("output", str(path))),
    ]
    warning = (proj.get("info") or {}).get("warning")
    if warning:
        summary.append(("projection note", warning))
    parts.append(table("tab-run-summary", ["item", "value"], [[k, "–" if v is None else v] for k, v in summary]))

    parts.append("<h3>Components</h3>")
    enc = m.get("encoder") or {}
    comp_rows = [["encoder", enc.get("spec") or enc.get("name"), enc.get("package", ""),
                  ", ".join(f"{k}={v}" for k, v in enc.items() if k not in ("spec", "package"))]]
    for kind, entry in (m.get("components") or {}).items():
        opts = entry.get("options") or {}
        comp_rows.append([kind, entry.get("name"), entry.get("package", ""), ", ".join(f"{k}={v}" for k, v in opts.items())])
    parts.append(table("tab-components", ["kind", "name", "package", "options"], comp_rows))

    parts.append("<h3>Inputs</h3>")
    src = m.get("source") or {}
    inputs = [[src.get("language"), "source", src.get("path"), Cell(str(src.get("rows")), "num"), src.get("digest")]]
    inputs += [[x.get("language"), "target", x.get("path"), Cell(str(x.get("rows")), "num"), x.get("digest")] for x in m.get("targets", [])]
    inputs += [[x.get("language"), "extra language", x.get("path"), Cell(str(x.get("rows")), "num"), x.get("digest")]
               for x in m.get("extra_languages", [])]
    parts.append(table("tab-inputs", ["language", "role", "path", "rows", "sha256"], inputs))

    parts.append("<h3>Targets</h3>")
    trs = []
    for x in m.get("targets", []):
        dist = ", ".join(f"{k} {v}" for k, v in (x.get("label_distribution") or {}).items())
        ms = x.get("mean_similarity")
        trs.append([x.get("language"), Cell(str(x.get("rows")), "num"), Cell(str(x.get("kept")), "num"), Cell(str(x.get("synthetic")), "num"),
                    dist, Cell("–" if ms is None else f"{ms:.3f}", "num")])
    parts.append(table("tab-targets", ["language", "rows", "kept", "synthetic", "labels", "mean similarity"], trs))

    timings = m.get("timings_s") or {}
    if timings:
        parts.append("<h3>Timings</h3>")
        total = sum(float(v) for v in timings.values())
        parts.append(table("tab-timings", ["stage", "seconds"], [[k, Cell(f"{float(v):.2f}", "num")] for k, v in timings.items()]
                           + [["sum of the stages", Cell(f"{total:.2f}", "num")]]))
    examples = _example_pairs(path)
    if examples:
        parts.append(f"<h3>Example rows (first {PAIRS_SHOWN} per language, pairs.jsonl)</h3>")
        parts.append(table("tab-pairs", ["language", "target", "English neighbour", "label", "similarity", "λ"],
                           [[r.get("language"), Cell(str(r.get("target")), "text"), Cell(str(r.get("source")), "text"), r.get("label"),
                             Cell(f"{float(r.get('similarity', 0)):.3f}", "num"), Cell(f"{float(r.get('lam', 0)):.3g}", "num")] for r in examples]))
    parts.append(json_block(m, "full manifest.json"))


def _example_pairs(path: Path) -> list[dict]:
    from xite.run_io import PAIRS

    out, per_lang = [], {}
    p = path / PAIRS
    if not p.is_file():
        return out
    with open(p, encoding="utf-8") as fh:
        for line in fh:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            lang = row.get("language")
            if per_lang.get(lang, 0) < PAIRS_SHOWN:
                per_lang[lang] = per_lang.get(lang, 0) + 1
                out.append(row)
    return out
