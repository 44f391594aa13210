"""The repository paths that README.md and docs/ name are in the repository.

A path a user is told to open or pass (a results snapshot, a config file, a module) must be
tracked by git, not merely present in this checkout: an over-broad .gitignore pattern once kept
docs/results/ (the README's tables and the NLI grid's config) out of every clone."""

import functools
import itertools
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOP = ("xite", "docs", "csrc", "plugins", "benchmarks", "tests", ".ci")
# A path token: starts at a word boundary with one of the top-level folders, runs to the
# first character that cannot be part of a path in these documents.
PATH = re.compile(r"(?<![\w./-])((?:%s)/[\w./{},*-]*)" % "|".join(re.escape(t) for t in TOP))


def _documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _expand(token: str) -> list[str]:
    """``a/{x,y}-b`` names two paths, as a shell would expand it."""
    parts = re.split(r"\{([^{}]*)\}", token)
    options = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(combo) for combo in itertools.product(*options)]


def _placeholder(path: str) -> bool:
    """``plugins/NAME``: a segment in capitals stands for the user's own name."""
    return any(seg.isupper() for seg in path.split("/"))


def _named_paths() -> list[tuple[str, str]]:
    named = []
    for doc in _documents():
        for token in PATH.findall(doc.read_text(encoding="utf-8")):
            token = token.rstrip(".,")
            named += [(doc.name, path) for path in _expand(token) if not _placeholder(path)]
    return sorted(set(named))


@functools.lru_cache(maxsize=1)
def _tracked() -> frozenset[str] | None:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None  # not a git checkout (an sdist): the files on disk are what was shipped
    return frozenset(out.splitlines())


def _present(path: str, tracked: frozenset[str] | None) -> bool:
    if "*" in path:
        pattern = re.compile(re.escape(path).replace(r"\*", "[^/]*"))
        candidates = tracked if tracked is not None else {str(p.relative_to(ROOT)) for p in ROOT.rglob("*")}
        return any(pattern.fullmatch(c) for c in candidates)
    if tracked is None:
        return (ROOT / path).exists()
    path = path.rstrip("/")
    return path in tracked or any(t.startswith(path + "/") for t in tracked)


def test_the_documents_name_repository_paths():
    # The check below must have something to check: the README names its results snapshots.
    paths = [p for _, p in _named_paths()]
    assert "docs/results/nli-encoder/config.toml" in paths
    assert "docs/results/sentiment-encoder/cells.jsonl" in paths


@pytest.mark.parametrize("doc,path", _named_paths())
def test_every_repository_path_a_document_names_is_tracked(doc, path):
    assert _present(path, _tracked()), f"{doc} names {path}, which is not in the repository (untracked or ignored?)"
