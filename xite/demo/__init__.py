"""A tiny demo corpus shipped with xite, for `make demo` and the tests.

All sentences were hand-written for xite (none are taken from a dataset): ``en.jsonl`` holds 64
labeled English review sentences about products, films and restaurants ({"text", "label"},
32 "positive" and 32 "negative"); ``ko``, ``ar``, ``hi`` and ``ur`` hold 44 unlabeled review
sentences each ({"text"}) in Korean, Arabic, Hindi and Urdu, about half of them positive.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

LANGUAGES = ("en", "ko", "ar", "hi", "ur")


def demo_paths() -> dict[str, Path]:
    """{"en": .../en.jsonl, "ko": ..., "ar": ..., "hi": ..., "ur": ...}.

    The package is installed as plain files (setuptools package-data), so the resources are real
    paths that readers can open; a zipped install is not supported.
    """
    root = resources.files(__name__)
    return {lang: Path(str(root / f"{lang}.jsonl")) for lang in LANGUAGES}
