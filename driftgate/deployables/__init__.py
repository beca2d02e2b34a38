"""The composition roots: each long-running deployable assembled from its settings.

The only place that puts services together, one module per deployable so that a process
imports only its own services; ``uvicorn --factory`` runs them::

    uvicorn --factory driftgate.deployables.gateway:app
    uvicorn --factory driftgate.deployables.drift_service:app

The retrain job is assembled by ``python -m retrain`` from its own settings.
:mod:`driftgate.deployables.inventory` lists every setting each deployable reads.
"""
