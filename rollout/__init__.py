"""Hot swap: the rollout state machine, canary judgement and the controller.

``machine`` and ``judge`` are pure; ``store`` persists rollouts; ``controller``
drives them through the gateway's admin API; ``api`` and ``cli`` are the manual
override; ``service`` builds it all inside the drift service's lifespan.
"""
