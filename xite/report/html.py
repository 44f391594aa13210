"""One self-contained HTML page: inline CSS, inline SVG figures, no scripts, no external references.

A Content-Security-Policy meta tag forbids every fetch except ``data:`` images, so even a
stray reference could not make the page reach the network when it is opened.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: #1d232a; margin: 0 auto; max-width: 1180px; padding: 0 24px 48px; }
h1 { font-size: 24px; margin: 24px 0 4px; }
h2 { font-size: 19px; margin: 36px 0 8px; padding-top: 8px; border-top: 1px solid #d8dde3; }
h3 { font-size: 16px; margin: 22px 0 6px; }
p.meta { color: #4a5561; margin: 2px 0; }
p.note { background: #fff6dc; border-left: 4px solid #e0a800; padding: 6px 10px; }
nav { font-size: 13px; margin: 12px 0; }
nav a { margin-right: 14px; color: #1f5fa8; text-decoration: none; }
figure { margin: 14px 0 20px; }
figure svg { max-width: 100%; height: auto; display: block; }
figcaption { color: #4a5561; font-size: 13px; margin-top: 4px; max-width: 980px; }
table { border-collapse: collapse; margin: 8px 0 18px; font-size: 13px; }
th, td { border: 1px solid #d8dde3; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f1f4f7; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.recipe td { font-weight: 600; background: #eef5ff; }
td.pos { color: #1b7a36; } td.neg { color: #b3261e; }
code, pre { font: 12px/1.4 ui-monospace, "DejaVu Sans Mono", monospace; }
pre { background: #f6f8fa; padding: 8px 10px; overflow-x: auto; max-height: 420px; }
details { margin: 8px 0; }
td.text { max-width: 420px; }
"""


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


@dataclass
class Cell:
    """A table cell: its text and an optional class (``num``, ``pos``, ``neg``)."""

    text: str
    cls: str = ""


@dataclass
class Page:
    title: str
    sections: list[tuple[str, str, list[str]]] = field(default_factory=list)  # (id, heading, html parts)

    def section(self, sid: str, heading: str) -> list[str]:
        parts: list[str] = []
        self.sections.append((sid, heading, parts))
        return parts

    def render(self, meta: Sequence[str] = ()) -> str:
        nav = " ".join(f'<a href="#{esc(sid)}">{esc(h)}</a>' for sid, h, _ in self.sections)
        body = [f"<h1>{esc(self.title)}</h1>"]
        body += [f'<p class="meta">{m}</p>' for m in meta]
        body.append(f"<nav>{nav}</nav>")
        for sid, heading, parts in self.sections:
            body.append(f'<section id="{esc(sid)}"><h2>{esc(heading)}</h2>')
            body += parts
            body.append("</section>")
        return (
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{esc(self.title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(body)
            + "\n</body>\n</html>\n"
        )


def figure(fid: str, svg: str, caption: str) -> str:
    """A figure block; ``caption`` is HTML (escape user text before passing it)."""
    return f'<figure id="{esc(fid)}">{svg}<figcaption>{caption}</figcaption></figure>'


def note(text: str, nid: str | None = None) -> str:
    ident = f' id="{esc(nid)}"' if nid else ""
    return f'<p class="note"{ident}>{esc(text)}</p>'


def table(tid: str, header: Sequence[str], rows: Iterable[Sequence[Any]], row_classes: Sequence[str] | None = None) -> str:
    """A table with an id; a row entry is a plain value (escaped text) or a :class:`Cell`."""
    out = [f'<table id="{esc(tid)}"><thead><tr>' + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr></thead><tbody>"]
    for i, row in enumerate(rows):
        cls = row_classes[i] if row_classes and i < len(row_classes) and row_classes[i] else ""
        out.append(f'<tr class="{cls}">' if cls else "<tr>")
        for c in row:
            if isinstance(c, Cell):
                # Free text (target-language rows) may be right-to-left: let the browser decide per cell.
                rtl = ' dir="auto"' if c.cls == "text" else ""
                out.append(f'<td class="{esc(c.cls)}"{rtl}>{esc(c.text)}</td>' if c.cls else f"<td>{esc(c.text)}</td>")
            else:
                out.append(f"<td>{esc(c)}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def json_block(value: Any, summary: str) -> str:
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)
    return f"<details><summary>{esc(summary)}</summary><pre>{esc(text)}</pre></details>"


def pct(ms: dict | None, scale: float = 100.0) -> str:
    """``mean ± std`` in percent from a {"mean", "std", "n"} entry; an en dash when missing."""
    if not isinstance(ms, dict) or ms.get("mean") is None:
        return "–"
    std = ms.get("std") or 0.0
    return f"{ms['mean'] * scale:.1f} ± {std * scale:.1f}"


def signed(value: float | None, scale: float = 100.0, digits: int = 1) -> Cell:
    if value is None:
        return Cell("–", "num")
    v = value * scale
    return Cell(f"{v:+.{digits}f}", "num " + ("pos" if v > 0 else "neg" if v < 0 else ""))
