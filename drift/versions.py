"""Drift state of every (adapter, version): its signals, feedback counts, completed references."""

from __future__ import annotations

from collections.abc import Sequence

from drift.monitor import Alarm, MonitorConfig, SignalMonitor


class VersionMonitor:
    """All signals of one (adapter, version)."""

    def __init__(self, adapter: str, version: int, config: MonitorConfig) -> None:
        self.adapter = adapter
        self.version = version
        self.config = config
        self.signals: dict[str, SignalMonitor] = {}
        self.negative_count = 0
        self.feedback_count = 0

    def signal(self, name: str) -> SignalMonitor:
        mon = self.signals.get(name)
        if mon is None:
            mon = self.signals[name] = SignalMonitor(name, self.config)
        return mon

    def set_reference(self, name: str, values: Sequence[float | str], source: str) -> None:
        self.signals[name] = SignalMonitor(name, self.config, reference=values, source=source)

    def observe(
        self,
        pairs: list[tuple[str, float | str]],
        out: list[Alarm],
        completed: list[tuple[str, int, SignalMonitor]],
    ) -> None:
        for name, value in pairs:
            if name == "negative_feedback":
                self.feedback_count += 1
                self.negative_count += 1 if float(value) >= 0.5 else 0
            mon = self.signal(name)
            hits = mon.update(value)
            if mon.reference_completed:
                mon.reference_completed = False
                completed.append((self.adapter, self.version, mon))
            for hit in hits:
                out.append(
                    Alarm(
                        self.adapter,
                        self.version,
                        name,
                        hit.detector,
                        hit.confirmed,
                        hit.score,
                        hit.p_value,
                        hit.detail,
                    )
                )

    def observe_many(
        self,
        columns: dict[str, list[float | str]],
        out: list[Alarm],
        completed: list[tuple[str, int, SignalMonitor]],
    ) -> None:
        """Like :meth:`observe` with the values of a batch grouped per signal (in order)."""
        for name, values in columns.items():
            if name == "negative_feedback":
                self.feedback_count += len(values)
                self.negative_count += sum(1 for v in values if float(v) >= 0.5)
            mon = self.signal(name)
            hits = mon.update_many(values)
            if mon.reference_completed:
                mon.reference_completed = False
                completed.append((self.adapter, self.version, mon))
            for hit in hits:
                out.append(
                    Alarm(
                        self.adapter,
                        self.version,
                        name,
                        hit.detector,
                        hit.confirmed,
                        hit.score,
                        hit.p_value,
                        hit.detail,
                    )
                )

    @property
    def negative_ratio(self) -> float | None:
        return None if not self.feedback_count else self.negative_count / self.feedback_count


class DriftMonitor:
    """Every (adapter, version) the service has seen."""

    def __init__(self, config: MonitorConfig) -> None:
        self.config = config
        self.versions: dict[tuple[str, int], VersionMonitor] = {}
        #: Signals whose automatic reference filled since the last :meth:`take_completed`.
        self._completed: list[tuple[str, int, SignalMonitor]] = []

    def version(self, adapter: str, version: int) -> VersionMonitor:
        key = (adapter, version)
        mon = self.versions.get(key)
        if mon is None:
            mon = self.versions[key] = VersionMonitor(adapter, version, self.config)
        return mon

    def observe(
        self, adapter: str, version: int, pairs: list[tuple[str, float | str]]
    ) -> list[Alarm]:
        out: list[Alarm] = []
        self.version(adapter, version).observe(pairs, out, self._completed)
        return out

    def observe_many(
        self, adapter: str, version: int, columns: dict[str, list[float | str]]
    ) -> list[Alarm]:
        """Feed a batch of one version, grouped per signal; returns the alarms raised."""
        out: list[Alarm] = []
        self.version(adapter, version).observe_many(columns, out, self._completed)
        return out

    def take_completed(self) -> list[tuple[str, int, SignalMonitor]]:
        """Signals whose automatic reference filled since the last call (to persist)."""
        done, self._completed = self._completed, []
        return done
