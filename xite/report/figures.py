"""The report's figures, drawn with matplotlib's object API (no pyplot state) as inline SVG.

SVG keeps text and lines sharp at any zoom and in print, and is small for dot plots and bars;
scatter layers with many points are rasterised (``rasterized=True``), which matplotlib embeds in
the SVG as a ``data:`` PNG, so dense maps stay light. Each SVG's element ids are prefixed with
the figure's id: several inline SVGs share one HTML document, and matplotlib reuses ids such as
glyph names across figures.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

KIND_STYLE = {
    # kind: (colour, marker, marker size)
    "zero-shot": ("#4d4d4d", "o", 6.5),
    "self-training": ("#d95f02", "o", 6.0),
    "upper-bound": ("#1b9e77", "s", 6.0),
    "arm": ("#2b6cb0", "o", 5.5),
    "recipe": ("#0b2e6b", "D", 6.5),
}
PALETTE = ["#2b6cb0", "#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d",
           "#17becf", "#8c564b", "#bcbd22", "#e377c2", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd"]
SOURCE_COLOUR = "#7f7f7f"
RC = {
    "font.size": 9.5,
    "axes.titlesize": 10.5,
    "axes.labelsize": 9.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e3e6ea",
    "grid.linewidth": 0.7,
    "legend.fontsize": 8.5,
    "legend.frameon": False,
    "svg.fonttype": "path",  # glyphs as paths: the page renders the same without any font installed
}


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def new_figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def to_svg(fig, prefix: str) -> str:
    """The figure as an inline ``<svg>`` element (no XML prolog, no namespaces, ids prefixed)."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({**RC, "svg.hashsalt": prefix}):
        fig.savefig(buf, format="svg", dpi=150, metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    # Inline SVG in HTML needs no namespace declarations, and SVG 2's plain href replaces xlink:href.
    svg = re.sub(r'\s+xmlns(?::xlink)?="[^"]*"', "", svg)
    svg = svg.replace("xlink:href=", "href=")
    # Keep only the ids something points at (glyphs, markers, clip paths), prefixed; matplotlib's
    # per-artist group ids would only bloat the page.
    used = set(re.findall(r'href="#([^"]+)"', svg)) | set(re.findall(r"url\(#([^)]+)\)", svg))
    svg = re.sub(r'\s\bid="([^"]+)"', lambda m: f' id="{prefix}-{m.group(1)}"' if m.group(1) in used else "", svg)
    svg = re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}-{m.group(1)}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}-{m.group(1)})", svg)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{prefix}" ', 1)


def _draw(builder, prefix: str, width: float, height: float) -> str:
    import matplotlib

    with matplotlib.rc_context(RC):
        fig = new_figure(width, height)
        builder(fig)
        return to_svg(fig, prefix)


def _pct(v):
    return None if v is None else 100.0 * v


# ---------------------------------------------------------------------------------------------
# Experiment figures


@dataclass
class MethodRow:
    name: str
    kind: str  # a KIND_STYLE key
    values: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)  # panel -> (mean, std)


def accuracy_panels(fid: str, rows: list[MethodRow], panels: list[tuple[str, str]], reference: str | None) -> str:
    """A dot plot per panel (methods down, value across, seed std as error bars) sharing the
    method axis; a dashed line marks the ``reference`` method's mean in each panel."""
    n = len(rows)

    def build(fig):
        axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
        ys = np.arange(n)
        for ax, (key, title) in zip(axes, panels):
            ref = next((r.values.get(key, (None, None))[0] for r in rows if r.name == reference), None)
            if ref is not None:
                ax.axvline(100 * ref, color=KIND_STYLE["zero-shot"][0], ls="--", lw=0.9, zorder=1)
            seen = []
            for y, r in zip(ys, rows):
                mean, std = r.values.get(key, (None, None))
                if mean is None:
                    continue
                c, marker, size = KIND_STYLE[r.kind]
                ax.errorbar(100 * mean, y, xerr=100 * (std or 0.0), fmt=marker, color=c, ms=size, capsize=2.5,
                            elinewidth=1.1, zorder=3)
                seen += [100 * (mean - (std or 0.0)), 100 * (mean + (std or 0.0))]
            if seen:
                lo, hi = max(0.0, min(seen)), min(100.0, max(seen))
                pad = max(1.0, 0.06 * (hi - lo))
                ax.set_xlim(lo - pad, hi + pad)
            ax.set_title(title)
            ax.set_xlabel("%")
            ax.grid(axis="y", visible=False)
        axes[0].set_yticks(ys, [r.name for r in rows])
        for tick, r in zip(axes[0].get_yticklabels(), rows):
            if r.kind == "recipe":
                tick.set_fontweight("bold")
            tick.set_color(KIND_STYLE[r.kind][0])
        axes[0].set_ylim(n - 0.5, -0.5)

    return _draw(build, fid, 11.0, 0.9 + 0.27 * n)


def delta_heatmap(fid: str, methods: list[str], columns: list[str], values: np.ndarray, bold: str | None) -> str:
    """Methods x columns, differences in points, a diverging colour scale centred on 0."""

    def build(fig):
        ax = fig.subplots()
        finite = values[np.isfinite(values)]
        vmax = max(0.5, float(np.abs(finite).max())) if finite.size else 1.0
        masked = np.ma.masked_invalid(values)
        import matplotlib

        cmap = matplotlib.colormaps["RdBu"].with_extremes(bad="#eeeeee")
        im = ax.imshow(masked, cmap=cmap, vmin=-vmax, vmax=vmax, aspect="auto")
        ax.set_xticks(range(len(columns)), columns)
        ax.set_yticks(range(len(methods)), methods)
        ax.tick_params(axis="x", top=True, labeltop=True, bottom=False, labelbottom=False)
        ax.grid(False)
        for t in ax.get_yticklabels():
            if t.get_text() == bold:
                t.set_fontweight("bold")
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                v = values[i, j]
                if np.isfinite(v):
                    ax.text(j, i, f"{v:+.1f}", ha="center", va="center", fontsize=8.5,
                            color="white" if abs(v) > 0.6 * vmax else "#1d232a")
        fig.colorbar(im, ax=ax, shrink=0.8, label="points vs zero-shot")

    return _draw(build, fid, 1.6 + 1.0 * len(columns) + 2.2, 0.8 + 0.3 * len(methods))


@dataclass
class PseudoGroup:
    label: str
    points: dict[str, tuple[float, float, float, float]]  # lang -> (kept mean, kept std, acc mean, acc std)


def pseudo_label_tradeoff(fid: str, langs: list[str], groups: list[PseudoGroup], classifier_dev: dict[str, float | None]) -> str:
    """Per language: pseudo-label accuracy on the kept target dev rows against the share kept;
    the zero-shot classifier's own dev accuracy (every row kept) is the reference."""
    ncols = min(4, max(1, len(langs)))
    nrows = math.ceil(len(langs) / ncols)

    def build(fig):
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        markers = "oDs^v<>PXh*p"
        for ax, lang in zip(axes, langs):
            ref = classifier_dev.get(lang)
            if ref is not None:
                ax.axhline(100 * ref, color=KIND_STYLE["zero-shot"][0], ls="--", lw=0.9)
                ax.plot([100], [100 * ref], marker="o", color=KIND_STYLE["zero-shot"][0], ms=6, ls="none")
            for gi, g in enumerate(groups):
                if lang not in g.points:
                    continue
                kept, kept_sd, acc, acc_sd = g.points[lang]
                # Open markers of different shapes: adopters that land on the same point stay visible.
                ax.errorbar(100 * kept, 100 * acc, xerr=100 * kept_sd, yerr=100 * acc_sd, fmt=markers[gi % len(markers)],
                            color=colour(gi), mfc="none", mew=1.6, ms=7, capsize=2, elinewidth=1)
            ax.set_title(lang)
            ax.set_xlabel("target dev rows kept (%)")
            ax.set_ylabel("pseudo-label accuracy on kept rows (%)")
            ax.set_xlim(-3, 103)
        for ax in axes[len(langs):]:
            ax.set_visible(False)
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], marker="o", color=KIND_STYLE["zero-shot"][0], ls="--", label="zero-shot classifier (all rows, dev accuracy)")]
        handles += [Line2D([], [], marker=markers[i % len(markers)], color=colour(i), mfc="none", mew=1.6, ls="none", label=g.label)
                    for i, g in enumerate(groups)]
        fig.legend(handles=handles, loc="outside lower center", ncols=2 if len(groups) > 3 else 1)

    return _draw(build, fid, 11.0, 3.3 * nrows + 0.35 * (len(groups) + 2) / 2 + 0.4)


# ---------------------------------------------------------------------------------------------
# Run figures


@dataclass
class Layer:
    """Points of one legend entry in a 2-D map."""

    label: str
    xy: np.ndarray
    colour: str
    marker: str = "o"
    size: float = 9.0
    alpha: float = 0.6


def embedding_map(fid: str, panels: list[tuple[str, list[Layer]]], axis_names: tuple[str, str]) -> str:
    def build(fig):
        axes = fig.subplots(1, len(panels), squeeze=False, sharex=True, sharey=True)[0]
        for ax, (title, layers) in zip(axes, panels):
            for layer in layers:
                if len(layer.xy) == 0:
                    continue
                ax.scatter(layer.xy[:, 0], layer.xy[:, 1], s=layer.size, c=layer.colour, marker=layer.marker,
                           alpha=layer.alpha, linewidths=0.6 if layer.marker in "x+" else 0, label=layer.label, rasterized=True)
            ax.set_title(title)
            ax.set_xlabel(axis_names[0])
            ax.set_ylabel(axis_names[1])
            ax.legend(loc="best", markerscale=1.6, fontsize=8)

    return _draw(build, fid, 11.0, 5.2)


def histograms(fid: str, panels: list[dict]) -> str:
    """Panels of overlaid step histograms. A panel: title, xlabel, series [(label, values, colour)],
    optional lines [(x, label)] and optional bins."""

    def build(fig):
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        for ax, p in zip(axes, panels):
            series = [s for s in p["series"] if len(s[1])]
            allv = np.concatenate([np.asarray(s[1], dtype=np.float64) for s in series]) if series else np.zeros(0)
            bins = p.get("bins")
            if bins is None:
                lo, hi = (float(allv.min()), float(allv.max())) if allv.size else (0.0, 1.0)
                if hi - lo < 1e-9:
                    lo, hi = lo - 0.05, hi + 0.05
                bins = np.linspace(lo, hi, 31)
            for label, values, col in series:
                values = np.asarray(values, dtype=np.float64)
                weights = np.full(len(values), 100.0 / len(values)) if p.get("share", True) else None
                ax.hist(values, bins=bins, histtype="step", lw=1.6, color=col, weights=weights, label=f"{label} (n={len(values)})")
            for x, label in p.get("lines", []):
                ax.axvline(x, color="#b3261e", ls=":", lw=1.2, label=label)
            ax.set_title(p["title"])
            ax.set_xlabel(p["xlabel"])
            ax.set_ylabel("share of rows (%)" if p.get("share", True) else "rows")
            if series:
                ax.legend(loc="best")

    return _draw(build, fid, 11.0, 3.6)


def separation(fid: str, series: list[tuple[str, np.ndarray, str]], xlabel: str, scatter: list[Layer] | None, scatter_axes: tuple[str, str]) -> str:
    """Histograms of the rows' coordinate on the first projection direction, one per language;
    with ``scatter``, a second panel maps the first two directions."""

    def build(fig):
        axes = fig.subplots(1, 2 if scatter else 1, squeeze=False)[0]
        ax = axes[0]
        allv = np.concatenate([s[1] for s in series if len(s[1])])
        bins = np.linspace(float(allv.min()), float(allv.max()) + 1e-9, 41)
        for label, values, col in series:
            if len(values) == 0:
                continue
            dashed = label.startswith("synthetic")
            ax.hist(values, bins=bins, histtype="step", lw=1.6, color=col, ls="--" if dashed else "-",
                    weights=np.full(len(values), 100.0 / len(values)), label=f"{label} (n={len(values)})")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("share of the language's rows (%)")
        ax.set_title("coordinate on the first direction")
        ax.legend(loc="best")
        if scatter:
            sx = axes[1]
            for layer in scatter:
                sx.scatter(layer.xy[:, 0], layer.xy[:, 1], s=layer.size, c=layer.colour, marker=layer.marker, alpha=layer.alpha,
                           linewidths=0.6 if layer.marker in "x+" else 0, label=layer.label, rasterized=True)
            sx.set_xlabel(scatter_axes[0])
            sx.set_ylabel(scatter_axes[1])
            sx.set_title("first two directions")
            sx.legend(loc="best", markerscale=1.6, fontsize=8)

    return _draw(build, fid, 11.0, 4.2)


def label_bars(fid: str, groups: list[str], label_names: list[str], counts: list[Sequence[int]]) -> str:
    """Grouped bars: the share of each label within each group (a language's rows), counts on top."""

    def build(fig):
        ax = fig.subplots()
        n = len(label_names)
        width = 0.8 / max(n, 1)
        x = np.arange(len(groups))
        for j, name in enumerate(label_names):
            shares, texts = [], []
            for row in counts:
                total = sum(row)
                shares.append(100.0 * row[j] / total if total else 0.0)
                texts.append(str(row[j]))
            bars = ax.bar(x + (j - (n - 1) / 2) * width, shares, width * 0.95, color=colour(j), label=name)
            ax.bar_label(bars, labels=texts, fontsize=7.5, padding=1.5)
        ax.set_xticks(x, groups)
        ax.set_ylabel("share of the group's rows (%)")
        ax.set_ylim(0, 110)
        ax.grid(axis="x", visible=False)
        ax.legend(loc="upper right", ncols=min(n, 4))

    return _draw(build, fid, min(11.0, 2.5 + 0.7 * len(groups) * max(1, len(label_names))), 3.6)
