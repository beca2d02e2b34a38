"""Every table of the shared state database, on one ``MetaData``; one module per owner.

- :mod:`.control`: ``dg_tenants``, ``dg_api_keys``, ``dg_adapters``,
  ``dg_training_opt_ins``, ``dg_adapter_versions``, ``dg_routes``
  (used by ``driftgate.core.state.store``)
- :mod:`.heartbeats`: ``dg_gateway_heartbeats`` (``driftgate.core.state.heartbeats``)
- :mod:`.rollouts`: ``dg_rollouts``, ``dg_rollout_transitions`` (``rollout.store``)
- :mod:`.drift`: ``drift_requests``, ``drift_feedback``, ``drift_alarms``,
  ``drift_triggers``, ``drift_references`` (``drift.store``)
- :mod:`.runs`: ``retrain_runs`` (``retrain.runs``)

Services import their tables from here; this package imports no service. Changing a
table means a new Alembic revision in ``driftgate/core/state/migrations/versions``, which
:func:`driftgate.core.state.migrate.upgrade` applies at every start.
"""

from driftgate.core.state.schema import control, drift, heartbeats, rollouts, runs
from driftgate.core.state.schema.base import Base, metadata

__all__ = ["Base", "control", "drift", "heartbeats", "metadata", "rollouts", "runs"]
