"""Fine-tune the multilingual encoder itself on English rows plus XITE rows (the paper's setting).

- ``run.finetune``: the composition a user calls (``xite.finetune``, ``xite finetune``): the
  recipe's components make the XITE rows through :mod:`xite.stages`;
- ``loop.train_encoder``: the training loop (joint or adapt schedule, checkpoints, resume);
- ``model.EncoderClassifier``: transformers encoder + linear head, mixing at the pooled embedding
  or after a layer;
- ``modeldir``: the model directory that ``load_finetuned``, ``xite.predict`` and
  ``xite.evaluate`` read.
"""

from xite.finetuning.loop import FinetuneOptions, LabeledRows, PairSet, XiteSource, train_encoder
from xite.finetuning.model import Batch, EncoderClassifier, TorchProjection
from xite.finetuning.modeldir import FORMAT, FinetunedModel, is_finetuned_dir, load_finetuned
from xite.finetuning.run import finetune

__all__ = [
    "FORMAT", "Batch", "EncoderClassifier", "FinetuneOptions", "FinetunedModel", "LabeledRows", "PairSet",
    "TorchProjection", "XiteSource", "finetune", "train_encoder", "is_finetuned_dir", "load_finetuned",
]
