"""Reading corpora and writing outputs. Importing this package loads neither pyarrow nor torch."""

from xite.data.readers import FORMATS, read_corpus
from xite.data.schema import Corpus, encode_labels, fingerprint, label_set

__all__ = ["FORMATS", "Corpus", "encode_labels", "fingerprint", "label_set", "read_corpus"]
