"""xite: Cross-lingual Interpolation for Transfer using Embeddings (XITE).

Make multilingual classifiers work in languages that have no labeled data: retrieve the nearest
labeled English example for each unlabeled target-language text, adopt its label, and interpolate
the two embeddings into synthetic labeled examples.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "augment", "train", "evaluate", "experiment"]


def augment(*args, **kwargs):
    """Run the XITE augmentation in memory; see :func:`xite.pipeline.augment`."""
    from xite.pipeline import augment as _augment

    return _augment(*args, **kwargs)


augment.__doc__ = "Run the XITE augmentation; see xite.pipeline.augment for the arguments."


# train, evaluate and experiment share their names with their modules. Importing the functions
# here, after the modules (which need only numpy at import time), keeps ``xite.train`` the
# function: Python binds a submodule to its parent only when the submodule is first loaded.
from xite.evaluate import evaluate  # noqa: E402
from xite.experiment import experiment  # noqa: E402
from xite.train import train  # noqa: E402
