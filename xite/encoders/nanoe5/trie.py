"""SentencePiece's "precompiled charsmap": a darts-clone double-array trie plus replacement strings.

tokenizers' Precompiled normaliser is the one XLM-R's own tokenizer.json uses; it looks up a
darts-clone double-array trie from UTF-8 key -> replacement. Building that trie here (rather
than thousands of Replace normalisers, each a full pass over the text) keeps tokenization fast
and gives XLM-R's exact semantics (it works on grapheme clusters).
"""

from __future__ import annotations

import struct

import numpy as np

from .format import ConversionError

# darts-clone stores the XOR offset in 21 bits, so no unit index may reach 2**21.
_CAPACITY = 1 << 21
_LEAF_BIT = 1 << 31


def _darts_unit(label: int = 0, offset: int = 0, has_leaf: bool = False) -> int:
    if offset >= _CAPACITY:
        raise ConversionError("normaliser trie too large for darts-clone offsets")
    return (offset << 10) | (int(has_leaf) << 8) | label


def _plain_trie(keys_to_values: dict[bytes, int]) -> tuple[list[dict[int, int]], dict[int, int]]:
    """Node -> {byte: child node} and terminal node -> value; node 0 is the root."""
    children: list[dict[int, int]] = [{}]
    values: dict[int, int] = {}
    for key, value in keys_to_values.items():
        node = 0
        for byte in key:
            nxt = children[node].get(byte)
            if nxt is None:
                nxt = len(children)
                children[node][byte] = nxt
                children.append({})
            node = nxt
        values[node] = value
    return children, values


def _find_base(used: bytearray, used_bases: set[int], labels: list[int], probe: int) -> int:
    """The first base, searching from the free unit ``probe``, whose slots (base ^ 0 for the leaf,
    base ^ label per child) are all free and that no other node uses: unique bases are what make
    the lookup's label check sufficient."""
    slots = [0] + labels
    while True:
        probe = used.find(0, probe)
        base = probe ^ labels[0] if labels else probe
        if base not in used_bases and all(not used[base ^ s] for s in slots):
            return base
        probe += 1


def build_darts_trie(keys_to_values: dict[bytes, int]) -> np.ndarray:
    """A darts-clone double array (uint32 units) for the given keys.

    Unit layout (darts-clone): label in bits 0-7, has_leaf in bit 8, XOR offset to the node's
    children base in bits 10-30; a leaf unit holds its value with bit 31 set. Children of a node
    whose base is b sit at b ^ label, its leaf at b ^ 0 = b (reserved even when there is none).
    """
    children, values = _plain_trie(keys_to_values)
    used = bytearray(_CAPACITY)
    used[0] = 1  # the root's own unit
    used_bases: set[int] = set()
    units = np.zeros(_CAPACITY, dtype=np.uint32)
    position = {0: 0}
    first_free = 1
    queue = [0]
    top = 1
    for node in queue:  # breadth first; the list grows while iterating
        labels = sorted(children[node])
        if not labels and node not in values:
            continue
        first_free = used.find(0, first_free)
        base = _find_base(used, used_bases, labels, first_free)
        used_bases.add(base)
        for s in [0] + labels:
            used[base ^ s] = 1
        top = max(top, base | 0xFF)
        pos = position[node]
        label = units[pos] & 0xFF
        units[pos] = _darts_unit(int(label), pos ^ base, node in values)
        if node in values:
            units[base] = values[node] | _LEAF_BIT
        for byte in labels:
            child = children[node][byte]
            position[child] = base ^ byte
            units[base ^ byte] = byte
            queue.append(child)
    return units[: top + 1].copy()


def precompiled_charsmap(rules: dict[bytes, str]) -> bytes:
    """SentencePiece's precompiled charsmap: u32 trie size in bytes, the trie, then the
    NUL-terminated replacement strings the trie's values point into."""
    blob = bytearray()
    offsets: dict[str, int] = {}
    keys_to_values = {}
    for key, target in rules.items():
        if target not in offsets:
            offsets[target] = len(blob)
            blob += target.encode("utf-8") + b"\0"
        keys_to_values[key] = offsets[target]
    trie = build_darts_trie(keys_to_values).astype("<u4").tobytes()
    return struct.pack("<I", len(trie)) + trie + bytes(blob)
