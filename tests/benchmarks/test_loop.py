"""The loop benchmark's replay (feedback and labels per seed) and its figures."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.loop.replay import draw, window_of
from benchmarks.loop.report import figures, summary
from benchmarks.loop.window import ServedRow, ServedWindow, load_window, save_window
from benchmarks.suite.contract import check_document, document
from driftgate.demo.tickets import TicketGenerator


def _row(shifted: bool, gen: TicketGenerator) -> ServedRow:
    t = gen.sample(shifted=shifted)
    answer = "Q-ACC" if t.queue == "Q-NOVA" else t.queue
    return ServedRow.of(t, answer, -0.1, 3.0)


def _window(n_stable: int = 60, n_drifted: int = 80) -> tuple[Any, np.ndarray, np.ndarray]:
    gen = TicketGenerator(seed=3)
    stable = [_row(False, gen) for _ in range(n_stable)]
    drifted = [_row(True, gen) for _ in range(n_drifted)]
    window = window_of(stable, drifted, pre_shift=40)
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(len(window.rows), 8))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return window, emb, emb[: window.shift_index].mean(axis=0)


def test_selection_and_random_share_the_feedback_draw_and_spend_the_budget() -> None:
    window, emb, centre = _window()
    a = draw(window, "selection", 1, budget=10, embeddings=emb, centroid=centre)
    b = draw(window, "random", 1, budget=10)
    unlabelled = [
        (
            [(f.score, f.correction) for f in ra.feedback],
            [(f.score, f.correction) for f in rb.feedback],
        )
        for ra, rb in zip(a.records, b.records, strict=True)
        if "review" not in (ra.feedback_source, rb.feedback_source)
    ]
    assert all(fa == fb for fa, fb in unlabelled)
    assert any(fa for fa, _ in unlabelled)
    assert a.labels == b.labels == 10
    labelled = [r for r in a.records if r.feedback_source == "review"]
    assert len(labelled) == 10
    assert all(int(r.request_id.split("-")[1]) >= window.shift_index for r in labelled)


def test_nearest_reference_variant_spends_the_budget_on_drifted_requests() -> None:
    window, emb, _ = _window()
    d = draw(window, "nearest", 4, budget=10, embeddings=emb)
    labelled = [r for r in d.records if r.feedback_source == "review"]
    assert d.labels == len(labelled) == 10
    assert all(int(r.request_id.split("-")[1]) >= window.shift_index for r in labelled)


def test_dense_feedback_rates_most_requests_and_labels_none() -> None:
    """120 requests, each rated with chance 0.8 (seeded: the same draw every run); a draw
    outside [70, 118] has chance below 1e-6 for any seed."""
    window, _, _ = _window()
    d = draw(window, "feedback80", 2, budget=10)
    assert d.labels == 0
    assert 70 <= d.feedback <= 118


def test_window_round_trips(tmp_path: Any) -> None:
    window, _, _ = _window(5, 5)
    saved = ServedWindow({"k": 1}, {"stable": list(window.rows)})
    save_window(saved, tmp_path / "w.json.gz")
    assert load_window(tmp_path / "w.json.gz") == saved


def _trial(seed: int, strategy: str, recovery: float) -> dict[str, Any]:
    return {"seed": seed, "strategy": strategy, "recovery": recovery, "labels": 40,
            "feedback": 30, "gate_promote": True}  # fmt: skip


def test_figures_judge_the_target_on_ten_seeds_only() -> None:
    trials = [_trial(k, "selection", 0.97) for k in range(10)]
    trials += [_trial(k, "random", 0.9) for k in range(10)]
    figs = figures(trials, 10)
    assert figs[0]["value"] == 10 and figs[0]["met"] is True
    assert figs[1]["met"] is True
    assert check_document(document(
        area="loop", title="t", command="c", quick=False, loadavg_before=[1.0],
        figures=figs, details_md="",
    )) == []  # fmt: skip
    few = figures(trials[:3] + trials[10:13], 10)
    assert few[0]["met"] is False and "only 3 of 10" in few[0]["note"]
    assert summary(trials)["median_a_minus_b"] > 0


def test_figures_without_trials_still_make_a_document() -> None:
    figs = figures([], 10)
    assert [f["met"] for f in figs] == [False, False, None]
    assert check_document(document(
        area="loop", title="t", command="c", quick=True, loadavg_before=[1.0],
        figures=figs, details_md="",
    )) == []  # fmt: skip
