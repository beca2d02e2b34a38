"""Task metrics: how well a generated answer does the adapter's job (1.0 = right).

One metric is chosen per adapter (:class:`MetricSpec`): exact match, label accuracy with
normalisation, JSON-schema validity, or a Python callable named by dotted path. ROUGE-L is
computed beside it for the report and never decides alone.

>>> m = build_metric(MetricSpec(kind="label_accuracy", labels=("billing", "tech")))
>>> m("Queue: Billing.", "billing"), m("tech or billing", "billing")
(1.0, 0.0)
"""

from __future__ import annotations

import importlib
import json
import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MetricFn = Callable[[str, str], float]
MetricKind = Literal["exact_match", "label_accuracy", "json_schema", "callable"]

_WS = re.compile(r"\s+")
_EDGE_PUNCT = re.compile(r"^[\W_]+|[\W_]+$")
_WORD = re.compile(r"\w+")


class MetricSpec(BaseModel):
    """Which task metric an adapter is judged by, with its options."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: MetricKind = "exact_match"
    #: exact_match / label_accuracy: compare case-insensitively.
    ignore_case: bool = True
    #: label_accuracy: the known labels; the first one found in the answer is its label.
    labels: tuple[str, ...] = ()
    #: json_schema: the schema the answer must satisfy (valid JSON is required regardless).
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    #: json_schema: also require the parsed answer to equal the parsed reference.
    json_match_reference: bool = False
    #: callable: ``package.module:function`` or ``package.module.function``,
    #: called as ``fn(prediction, reference)`` and returning a number in [0, 1] or a bool.
    path: str | None = None

    @model_validator(mode="after")
    def _options_fit(self) -> MetricSpec:
        if self.kind == "json_schema" and self.json_schema is None:
            raise ValueError("json_schema metric needs a schema")
        if self.kind == "callable" and not self.path:
            raise ValueError("callable metric needs a dotted path")
        return self


def normalize_text(text: str, *, ignore_case: bool = True) -> str:
    """NFKC, collapse whitespace, strip; casefold when ``ignore_case``."""
    t = _WS.sub(" ", unicodedata.normalize("NFKC", text)).strip()
    return t.casefold() if ignore_case else t


def normalize_label(text: str, *, ignore_case: bool = True) -> str:
    """A label as written in free text: normalized, surrounding punctuation and quotes off."""
    return _EDGE_PUNCT.sub("", normalize_text(text, ignore_case=ignore_case))


def exact_match(prediction: str, reference: str, *, ignore_case: bool = True) -> float:
    same = normalize_text(prediction, ignore_case=ignore_case) == normalize_text(
        reference, ignore_case=ignore_case
    )
    return 1.0 if same else 0.0


def extract_label(prediction: str, labels: Sequence[str], *, ignore_case: bool = True) -> str:
    """The known label appearing first (as whole words) in ``prediction``; else the whole
    normalized prediction. Longer labels win ties at the same position."""
    text = normalize_text(prediction, ignore_case=ignore_case)
    best: tuple[int, int, str] | None = None
    for label in labels:
        norm = normalize_label(label, ignore_case=ignore_case)
        if not norm:
            continue
        m = re.search(rf"(?<!\w){re.escape(norm)}(?!\w)", text)
        if m is not None:
            key = (m.start(), -len(norm), norm)
            if best is None or key < best:
                best = key
    return best[2] if best is not None else normalize_label(prediction, ignore_case=ignore_case)


def label_accuracy(
    prediction: str, reference: str, *, labels: Sequence[str] = (), ignore_case: bool = True
) -> float:
    got = extract_label(prediction, labels, ignore_case=ignore_case)
    return 1.0 if got == normalize_label(reference, ignore_case=ignore_case) else 0.0


def _parse_json(text: str) -> tuple[bool, Any]:
    t = text.strip()
    if t.startswith("```"):  # a fenced answer is still an answer
        t = t.strip("`").removeprefix("json").strip()
    try:
        return True, json.loads(t)
    except ValueError:
        return False, None


def json_schema_valid(
    prediction: str, reference: str, *, schema: dict[str, Any], match_reference: bool = False
) -> float:
    import jsonschema

    ok, value = _parse_json(prediction)
    if not ok:
        return 0.0
    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError:
        return 0.0
    if match_reference:
        ref_ok, ref = _parse_json(reference)
        return 1.0 if ref_ok and ref == value else 0.0
    return 1.0


def load_callable(path: str) -> MetricFn:
    """Import ``package.module:function`` (or ``package.module.function``)."""
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ValueError(f"metric path {path!r} is not 'module:function'")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot import metric {path!r}: {exc}") from exc
    if not callable(fn):
        raise ValueError(f"metric {path!r} is not callable")

    def call(prediction: str, reference: str) -> float:
        value = fn(prediction, reference)
        if isinstance(value, bool):
            return 1.0 if value else 0.0
        score = float(value)
        if not 0.0 <= score <= 1.0:
            raise ValueError(f"metric {path!r} returned {score}, outside [0, 1]")
        return score

    return call


def build_metric(spec: MetricSpec) -> MetricFn:
    """The scoring function for ``spec``; raises ``ValueError`` for an unusable spec."""
    if spec.kind == "exact_match":
        return lambda p, r: exact_match(p, r, ignore_case=spec.ignore_case)
    if spec.kind == "label_accuracy":
        labels = spec.labels
        return lambda p, r: label_accuracy(p, r, labels=labels, ignore_case=spec.ignore_case)
    if spec.kind == "json_schema":
        schema = spec.json_schema or {}
        import jsonschema

        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise ValueError(f"invalid JSON schema: {exc.message}") from exc
        return lambda p, r: json_schema_valid(
            p, r, schema=schema, match_reference=spec.json_match_reference
        )
    assert spec.path is not None  # checked by the model validator
    return load_callable(spec.path)


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1 over lower-cased word tokens (reported beside the task metric only).

    >>> round(rouge_l("the cat sat on the mat", "the cat is on the mat"), 3)
    0.833
    """
    a = _WORD.findall(prediction.casefold())
    b = _WORD.findall(reference.casefold())
    if not a or not b:
        return 1.0 if a == b else 0.0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    lcs = prev[-1]
    if lcs == 0:
        return 0.0
    p, r = lcs / len(a), lcs / len(b)
    return 2 * p * r / (p + r)


def mean_score(fn: MetricFn, predictions: Sequence[str], references: Sequence[str]) -> float:
    """Mean of ``fn`` over aligned pairs (0.0 for no pairs)."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not predictions:
        return 0.0
    return sum(fn(p, r) for p, r in zip(predictions, references, strict=True)) / len(predictions)
