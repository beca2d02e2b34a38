"""Training data keeps its tenant: no tenant outweighs the others, and no tenant's feedback
labels another tenant's request.

Against a real SQLite store written as the drift service writes it, read by the retrain
job's own edge (``retrain.wiring.read_traffic``) and curated as a run curates.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from drift.store import DriftStore
from retrain.dataset import CurationConfig, curate
from retrain.errors import InsufficientData
from retrain.wiring import read_traffic
from tests.security.governance import corrected, log_traffic, prompts

SMALL = CurationConfig(min_train=2, min_validation=1)


def _store(tmp_path: Path) -> tuple[str, DriftStore]:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = DriftStore.from_url(url)
    store.create_all()
    return url, store


def test_a_tenant_over_its_share_is_capped(tmp_path: Path) -> None:
    """``acme`` floods the adapter with 60 corrections, ``globex`` gives 20; both are opted
    in. With the default 50% cap each supplies 20: acme's 40 oldest are dropped, and the
    counts per tenant are what the version's metadata records."""
    url, store = _store(tmp_path)
    try:
        log_traffic(store, "acme", corrected("acme", prompts(60, seed=11), "Q-ACME"), ts0=1000)
        log_traffic(store, "globex", corrected("globex", prompts(20, seed=12)), ts0=5000)
    finally:
        store.close()
    opted = ("acme", "globex")
    data = curate(read_traffic(url, "support", opted), SMALL, tenants=opted)
    assert data.tenants == {"acme": 20, "globex": 20}
    assert data.stats["excluded_tenant_share"] == 40
    acme = [e for e in (*data.train, *data.validation) if e.tenant == "acme"]
    kept_acme = sorted(int(str(e.request_id).removeprefix("acme-")) for e in acme)
    assert kept_acme == list(range(40, 60))  # the newest of acme's
    meta = data.metadata()
    assert meta["tenants"] == {"acme": 20, "globex": 20}
    assert meta["tenant_share"] == {"max": 0.5, "capped": True}
    # A stricter share: each of two tenants may give a third at most -> nothing is left.
    strict = CurationConfig(min_train=1, min_validation=1, max_tenant_share=0.34)
    with pytest.raises(InsufficientData, match="no tenant may supply more than 34%"):
        curate(read_traffic(url, "support", opted), strict, tenants=opted)


def test_feedback_never_joins_another_tenants_request_with_the_same_id(tmp_path: Path) -> None:
    """``mallory`` rates and corrects a request id that ``acme`` made (the same id in both
    tenants' logs): the correction labels only mallory's own request, never acme's, so it
    cannot become a training target for acme's prompt."""
    url, store = _store(tmp_path)
    try:
        texts = prompts(6, seed=21)
        # acme: six requests, no feedback of its own on "shared-0".
        acme = [(f"shared-{i}", p, {} if i == 0 else {"score": 1.0}) for i, p in enumerate(texts)]
        log_traffic(store, "acme", acme)
        # mallory: a request under the same id, and a poisoning correction on that id.
        log_traffic(
            store,
            "mallory",
            [("shared-0", "mallory's own question", {"score": 0.0, "correction": "Q-EVIL"})],
        )
        joined = store.requests_with_feedback("support")
    finally:
        store.close()
    by_key = {(x.tenant, x.request_id): x for x in joined}
    assert ("acme", "shared-0") not in by_key  # acme gave no feedback on it
    assert by_key[("mallory", "shared-0")].prompt == "mallory's own question"
    assert all(x.correction != "Q-EVIL" for x in joined if x.tenant == "acme")
    # Through the retrain job's edge, acme's training data never carries the correction.
    records = read_traffic(url, "support", ["acme"])
    assert {r.tenant for r in records} == {"acme"}
    assert all(f.tenant == "acme" for r in records for f in r.feedback)
    data = curate(records, SMALL, tenants=["acme"])
    examples = [*data.train, *data.validation]
    assert data.tenants == {"acme": 5}
    assert all(e.completion == "Q-OLD" for e in examples)
    assert "shared-0" not in {e.request_id for e in examples}
