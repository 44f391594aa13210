"""xite: Cross-lingual Interpolation for Transfer using Embeddings (XITE).

Make multilingual classifiers work in languages that have no labeled data: retrieve the nearest
labeled English example for each unlabeled target-language text, adopt its label, and interpolate
the two embeddings into synthetic labeled examples.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "augment"]


def augment(*args, **kwargs):
    """Run the XITE augmentation in memory; see :func:`xite.pipeline.augment`."""
    from xite.pipeline import augment as _augment

    return _augment(*args, **kwargs)


augment.__doc__ = "Run the XITE augmentation; see xite.pipeline.augment for the arguments."
