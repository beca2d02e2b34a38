"""The retrain job's errors: subclasses of the shared tree, each with the run outcome it means.

Every failure that ends a run is one of these; :mod:`retrain.job` records ``outcome`` and
the message in the ``retrain_runs`` table, so no run ends without a recorded reason.
"""

from __future__ import annotations

from driftgate.core.errors import Conflict, DriftgateError, InvalidRequest, NotFound


class RetrainError(DriftgateError):
    """Base of the retrain job's errors; ``outcome`` is what the run table records."""

    outcome = "failed"


class UnknownAdapter(NotFound, RetrainError):
    """The adapter is not known to the state store (or its name is invalid)."""

    outcome = "failed"
    code = "adapter_not_found"


class InsufficientData(Conflict, RetrainError):
    """Too little usable data after curation: the run ends with no new version."""

    outcome = "insufficient_data"
    code = "insufficient_data"


class NoTrainingTenants(Conflict, RetrainError):
    """No tenant is opted in to train the adapter: it trains on nothing from traffic."""

    outcome = "insufficient_data"
    code = "no_training_tenants"


class GoldenSetRequired(Conflict, RetrainError):
    """The adapter has no golden set and the opt-out is off: nothing may be promoted."""

    outcome = "failed"
    code = "golden_set_required"


class BaseModelError(RetrainError):
    """The base model directory is missing, incomplete or corrupt."""

    outcome = "failed"
    code = "base_model_unusable"


class AdapterConfigError(InvalidRequest, RetrainError):
    """A LoRA configuration vLLM could not load (DoRA, modules_to_save, rank too high)."""

    outcome = "failed"
    code = "adapter_config_invalid"


class RegistryError(RetrainError):
    """The adapter registry could not store a version (nothing was half-registered)."""

    outcome = "failed"
    code = "registry_error"


class OutOfDisk(RegistryError):
    """Saving ran out of disk space; the partial files were removed."""

    code = "out_of_disk"


class EvaluationError(RetrainError):
    """The evaluation gate could not generate through the serving path."""

    outcome = "failed"
    code = "evaluation_failed"
