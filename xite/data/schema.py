"""The in-memory shape of an input corpus, and label helpers.

A :class:`Corpus` holds either single texts (sentiment) or text pairs (NLI), optional raw label
strings, and the source line of every row so that later stages (label encoding, the pipeline)
can still point the user at the exact line of a bad row.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from xite.errors import InputError

PAIR_SEPARATOR = " ||| "


@dataclass
class Corpus:
    """Rows read from one file.

    Exactly one of ``texts`` (single-text corpora) and ``pairs`` (``(premises, hypotheses)``) is
    set. ``labels`` holds the raw label strings, or ``None`` for an unlabeled corpus.
    ``digest`` is the sha256 of the file's bytes (or, for a corpus built in memory without one, a
    fingerprint of its content). ``fields`` says which source fields were used, by role
    (``text`` or ``premise``/``hypothesis``, and ``label``). ``line_numbers[i]`` is the 1-based
    source line (row number for Parquet) of row ``i``.
    """

    path: str
    texts: list[str] | None = None
    pairs: tuple[list[str], list[str]] | None = None
    labels: list[str] | None = None
    digest: str = ""
    fields: dict = field(default_factory=dict)
    line_numbers: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.path = str(self.path)
        self._check_shape()
        # In-memory corpora (tests, API users) need not invent line numbers or a digest.
        if not self.line_numbers:
            self.line_numbers = list(range(1, len(self) + 1))
        if not self.digest:
            self.digest = self.content_fingerprint()

    def _check_shape(self) -> None:
        # A shape mistake here is a programming error, not bad user input: fail loudly.
        if (self.texts is None) == (self.pairs is None):
            raise ValueError("Corpus needs exactly one of texts and pairs")
        if self.pairs is not None and len(self.pairs[0]) != len(self.pairs[1]):
            raise ValueError("Corpus pairs: premises and hypotheses differ in length")
        n = len(self)
        if self.labels is not None and len(self.labels) != n:
            raise ValueError(f"Corpus has {n} rows but {len(self.labels)} labels")
        if self.line_numbers and len(self.line_numbers) != n:
            raise ValueError(f"Corpus has {n} rows but {len(self.line_numbers)} line numbers")

    def __len__(self) -> int:
        if self.texts is not None:
            return len(self.texts)
        return len(self.pairs[0])

    @property
    def is_pair(self) -> bool:
        return self.pairs is not None

    @property
    def is_labeled(self) -> bool:
        return self.labels is not None

    @property
    def label_field(self) -> str:
        return self.fields.get("label") or "label"

    def line_of(self, i: int) -> int:
        return self.line_numbers[i]

    def texts_for_display(self, i: int) -> str:
        """Row ``i`` as one string for people to read (pairs joined by ``|||``)."""
        if self.texts is not None:
            return self.texts[i]
        return f"{self.pairs[0][i]}{PAIR_SEPARATOR}{self.pairs[1][i]}"

    def label_names(self) -> list[str]:
        if self.labels is None:
            raise InputError(self.path, "corpus has no labels")
        return label_set(self.labels)

    def encode_labels(self, names: Sequence[str]) -> np.ndarray:
        """Label ids against ``names``; an unknown label names its source line."""
        if self.labels is None:
            raise InputError(self.path, "corpus has no labels")
        return encode_labels(
            self.labels, names, path=self.path, line_numbers=self.line_numbers, field=self.label_field
        )

    def content_fingerprint(self) -> str:
        """A digest of the rows' content (independent of file format and field names)."""
        if self.texts is not None:
            return fingerprint(self.texts)
        return fingerprint(zip(self.pairs[0], self.pairs[1]))


def label_set(labels: Iterable[str]) -> list[str]:
    """The sorted unique labels: a stable label-name -> id order for every run."""
    return sorted(set(labels))


def encode_labels(
    labels: Sequence[str],
    names: Sequence[str],
    *,
    path: str = "<labels>",
    line_numbers: Sequence[int] | None = None,
    field: str = "label",
) -> np.ndarray:
    """``labels`` as int64 indices into ``names``.

    A label not in ``names`` is an :class:`InputError` naming ``path`` and the row's line
    (``line_numbers[i]`` when given, else the 1-based row index).
    """
    index = {name: i for i, name in enumerate(names)}
    out = np.empty(len(labels), dtype=np.int64)
    for i, label in enumerate(labels):
        code = index.get(label)
        if code is None:
            line = line_numbers[i] if line_numbers is not None else i + 1
            known = ", ".join(repr(n) for n in names)
            raise InputError(path, f"label {label!r} is not one of the known labels: {known}", line, field)
        out[i] = code
    return out


def fingerprint(items: Iterable[str | tuple[str, ...]]) -> str:
    """sha256 over the sha256 of each item; a tuple item (a text pair) is hashed part by part.

    Hashing each item separately keeps item boundaries unambiguous (``["ab"]`` differs from
    ``["a", "b"]``) without any separator that a text could contain.
    """
    outer = hashlib.sha256()
    for item in items:
        outer.update(_item_digest(item))
    return outer.hexdigest()


def _item_digest(item: str | tuple[str, ...]) -> bytes:
    if isinstance(item, str):
        return hashlib.sha256(item.encode("utf-8")).digest()
    inner = hashlib.sha256()
    for part in item:
        inner.update(hashlib.sha256(part.encode("utf-8")).digest())
    return inner.digest()
