"""The run directory of ``xite augment`` (DESIGN §4): write it atomically, read it back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xite.data.writers import atomic_output_dir, write_jsonl
from xite.errors import InputError

SYNTHETIC = "synthetic.safetensors"
MANIFEST = "manifest.json"
PAIRS = "pairs.jsonl"
TENSORS = ("embeddings", "labels", "lam", "target_index", "source_index", "similarity")


def write_run(result, out: Path, overwrite: bool = False) -> Path:
    """Write the three files into a temp dir next to ``out``, then rename it into place."""
    from safetensors.numpy import save_file

    with atomic_output_dir(out, overwrite=overwrite) as tmp:
        tensors = {k: np.ascontiguousarray(v) for k, v in result.tensors().items()}
        save_file(tensors, str(Path(tmp) / SYNTHETIC))
        write_jsonl(Path(tmp) / PAIRS, result.pairs)
        result.manifest["output"] = str(out)
        (Path(tmp) / MANIFEST).write_text(json.dumps(result.manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return out


@dataclass
class Run:
    path: Path
    manifest: dict
    tensors: dict[str, np.ndarray]

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
    """Load a run directory, with one-line errors for anything missing or inconsistent."""
    from safetensors.numpy import load_file

    path = Path(path)
    manifest = read_json_dir(path, (SYNTHETIC, MANIFEST), MANIFEST, "an xite augment run directory")
    try:
        tensors = load_file(str(path / SYNTHETIC))
    except Exception as exc:  # safetensors raises its own error types
        raise InputError(path / SYNTHETIC, f"unreadable safetensors file: {exc}") from None
    for name in TENSORS:
        if name not in tensors:
            raise InputError(path / SYNTHETIC, "missing tensor", field=name)
    if "label_names" not in manifest or "encoder" not in manifest:
        raise InputError(path / MANIFEST, "missing key", field="label_names" if "label_names" not in manifest else "encoder")
    return Run(path, manifest, tensors)
