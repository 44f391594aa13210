"""xite: Cross-lingual Interpolation for Transfer using Embeddings (XITE).

Make multilingual classifiers work in languages that have no labeled data: retrieve the nearest
labeled English example for each unlabeled target-language text, adopt its label, and interpolate
the two embeddings into synthetic labeled examples.

The public functions live in modules named for what they do (``xite.pipeline``,
``xite.training``, ``xite.evaluation``, ``xite.experiments``), so ``xite.train`` is a function
and never shadows a module: ``mock.patch("xite.training.fit_head")`` patches what it says.
Importing xite is cheap: torch and transformers load when a function first needs them.
"""

from __future__ import annotations

__version__ = "0.1.0"

from xite.evaluation import evaluate
from xite.experiments import experiment
from xite.pipeline import augment
from xite.recipe import ComponentSpec, Recipe
from xite.training import train

__all__ = ["__version__", "augment", "train", "evaluate", "experiment", "finetune", "predict", "Recipe", "ComponentSpec"]

# finetune and predict load torch and transformers as they are imported: xite loads them only
# when one is first used (PEP 562), so `import xite` and the CLI's start-up stay fast.
_LAZY = {"finetune": ("xite.finetuning.run", "finetune"), "predict": ("xite.prediction", "predict")}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'xite' has no attribute {name!r}")
