"""Which tenants' traffic may train an adapter: the opt-in list (``dg_training_opt_ins``).

An explicit opt-in per (adapter, tenant); no row means no training data, so an adapter
nobody opted in is never trained from traffic. The gateway's admin API sets it
(``PUT /admin/adapters/{adapter}/training-tenants``), the retrain job reads it through
:meth:`driftgate.core.state.StateStore.training_tenants` at the start of every run and
records it in the registry metadata of the version it trains.

Rows point at the tenant's id: deleting a tenant removes its opt-ins (foreign-key
cascade), and a new tenant created under a deleted one's name is not opted in.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from driftgate.core.adapters import is_valid_adapter_name
from driftgate.core.errors import InvalidRequest, NotFound
from driftgate.core.state.models import ALL_ADAPTERS, AdapterInfo
from driftgate.core.state.schema.control import AdapterRow, TenantRow, TrainingOptInRow

#: More tenants than this in one opt-in list is a mistake, not a policy.
MAX_TRAINING_TENANTS = 1000


def _adapter_row(s: Session, adapter: str) -> AdapterRow:
    if not is_valid_adapter_name(adapter):
        raise InvalidRequest(f"invalid adapter name {adapter!r}", param="adapter")
    row = s.get(AdapterRow, adapter)
    if row is None:
        raise NotFound(f"adapter {adapter!r} not found", code="adapter_not_found")
    return row


def training_tenants(s: Session, adapter: str) -> tuple[str, ...]:
    """Names of the tenants opted in to train ``adapter``, sorted; empty if none (or no
    such adapter)."""
    q = (
        select(TenantRow.name)
        .join(TrainingOptInRow, TrainingOptInRow.tenant_id == TenantRow.id)
        .where(TrainingOptInRow.adapter == adapter)
        .order_by(TenantRow.name)
    )
    return tuple(s.scalars(q))


def get_adapter(s: Session, adapter: str) -> AdapterInfo:
    row = _adapter_row(s, adapter)
    return AdapterInfo(
        name=row.name, training_tenants=training_tenants(s, adapter), created_at=row.created_at
    )


def set_training_tenants(s: Session, adapter: str, tenants: Iterable[str]) -> AdapterInfo:
    """Replace the opt-in list of ``adapter``; ``[]`` opts everyone out.

    Every tenant must exist and be allowed to use the adapter (a tenant that cannot call
    it has no traffic of it to give; opting it in is a typo, refused rather than kept).
    """
    row = _adapter_row(s, adapter)
    names = list(dict.fromkeys(tenants))
    if len(names) > MAX_TRAINING_TENANTS:
        raise InvalidRequest(
            f"at most {MAX_TRAINING_TENANTS} tenants may be opted in", param="tenants"
        )
    found = {t.name: t for t in s.scalars(select(TenantRow).where(TenantRow.name.in_(names)))}
    for name in names:
        tenant = found.get(name)
        if tenant is None:
            raise NotFound(f"tenant {name!r} not found", param="tenants", code="tenant_not_found")
        if ALL_ADAPTERS not in tenant.adapters and adapter not in tenant.adapters:
            raise InvalidRequest(
                f"tenant {name!r} may not use adapter {adapter!r}, so it has no traffic to "
                "train it; allow the adapter for the tenant first",
                param="tenants",
                code="tenant_not_allowed",
            )
    s.execute(delete(TrainingOptInRow).where(TrainingOptInRow.adapter == adapter))
    now = time.time()
    for name in names:
        s.add(TrainingOptInRow(adapter=adapter, tenant_id=found[name].id, created_at=now))
    s.flush()
    return AdapterInfo(
        name=row.name, training_tenants=training_tenants(s, adapter), created_at=row.created_at
    )
