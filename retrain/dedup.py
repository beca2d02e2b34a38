"""Exact and near-duplicate detection for prompts: normalized text, character shingles,
MinHash with LSH banding to find candidates, exact Jaccard to confirm.

>>> idx = NearDuplicateIndex(threshold=0.8)
>>> idx.add("a", "My printer will not connect to the office wifi network")
>>> idx.find("my printer will NOT connect to the office wi-fi network!")
'a'
>>> idx.find("How do I reset my password?") is None
True
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

import numpy as np

_JOINERS = re.compile(r"[-'\u2019]+")
_NON_WORD = re.compile(r"[^\w\s]+")
_WS = re.compile(r"\s+")
_PRIME = (1 << 31) - 1


def normalize_for_dedup(text: str) -> str:
    """NFKC, casefold, hyphens and apostrophes dropped (``wi-fi`` = ``wifi``), other
    punctuation made a space, whitespace collapsed."""
    t = _JOINERS.sub("", unicodedata.normalize("NFKC", text).casefold())
    return _WS.sub(" ", _NON_WORD.sub(" ", t)).strip()


def shingles(normalized: str, k: int) -> frozenset[str]:
    """Character k-shingles of an already normalized text (the text itself when shorter)."""
    if len(normalized) <= k:
        return frozenset([normalized])
    return frozenset(normalized[i : i + k] for i in range(len(normalized) - k + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


class NearDuplicateIndex:
    """Texts added under a key; :meth:`find` returns the key of an exact or near duplicate.

    Parameters
    ----------
    threshold
        Jaccard similarity of character shingles at or above which two texts are duplicates.
    k
        Shingle length in characters.
    bands, rows
        LSH banding of ``bands * rows`` MinHash values; candidates share one band.
    seed
        Seeds the MinHash permutations (results do not depend on it beyond LSH recall).
    """

    def __init__(
        self, threshold: float = 0.85, k: int = 5, bands: int = 16, rows: int = 4, seed: int = 0
    ) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold {threshold} outside (0, 1]")
        self.threshold = threshold
        self.k = k
        self.bands = bands
        self.rows = rows
        rng = np.random.default_rng(seed)
        n = bands * rows
        self._a = rng.integers(1, _PRIME, size=n, dtype=np.int64)
        self._b = rng.integers(0, _PRIME, size=n, dtype=np.int64)
        self._exact: dict[str, str] = {}
        self._shingles: dict[str, frozenset[str]] = {}
        self._buckets: dict[tuple[int, bytes], list[str]] = {}

    def _signature(self, sh: frozenset[str]) -> np.ndarray:
        hashes = np.fromiter(
            (
                int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "little")
                % _PRIME
                for s in sh
            ),
            dtype=np.int64,
            count=len(sh),
        )
        sig: np.ndarray = ((np.outer(self._a, hashes) + self._b[:, None]) % _PRIME).min(axis=1)
        return sig

    def _bands(self, sig: np.ndarray) -> list[tuple[int, bytes]]:
        return [(b, sig[b * self.rows : (b + 1) * self.rows].tobytes()) for b in range(self.bands)]

    def find(self, text: str) -> str | None:
        """Key of an added text that ``text`` duplicates (exactly first), else ``None``."""
        norm = normalize_for_dedup(text)
        if norm in self._exact:
            return self._exact[norm]
        sh = shingles(norm, self.k)
        best: tuple[float, str] | None = None
        seen: set[str] = set()
        for band in self._bands(self._signature(sh)):
            for key in self._buckets.get(band, ()):
                if key in seen:
                    continue
                seen.add(key)
                sim = jaccard(sh, self._shingles[key])
                if sim >= self.threshold and (best is None or sim > best[0]):
                    best = (sim, key)
        return None if best is None else best[1]

    def is_exact(self, text: str) -> bool:
        return normalize_for_dedup(text) in self._exact

    def add(self, key: str, text: str) -> None:
        if key in self._shingles:
            raise KeyError(f"key {key!r} already added")
        norm = normalize_for_dedup(text)
        self._exact.setdefault(norm, key)
        sh = shingles(norm, self.k)
        self._shingles[key] = sh
        for band in self._bands(self._signature(sh)):
            self._buckets.setdefault(band, []).append(key)

    def __len__(self) -> int:
        return len(self._shingles)
