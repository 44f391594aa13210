"""Fine-tune the multilingual encoder itself on English rows plus XITE rows.

``finetune`` trains an :class:`EncoderClassifier` (transformers encoder + linear head) and writes
a model directory that ``load_finetuned``, ``xite.predict.predict`` and ``xite.evaluate`` read.
"""

from xite.finetune.loop import FinetuneOptions, LabeledRows, PairSet, XiteSource, finetune
from xite.finetune.model import Batch, EncoderClassifier, TorchProjection
from xite.finetune.modeldir import FORMAT, FinetunedModel, is_finetuned_dir, load_finetuned

__all__ = [
    "FORMAT", "Batch", "EncoderClassifier", "FinetuneOptions", "FinetunedModel", "LabeledRows", "PairSet",
    "TorchProjection", "XiteSource", "finetune", "is_finetuned_dir", "load_finetuned",
]
