"""The OpenAPI documents the fuzz run uses: each app's own, plus the request bodies it
does not declare.

The gateway answers ``POST /v1/chat/completions`` and ``/v1/completions`` before
FastAPI (``gateway/hotpath.py``), so they are missing from its document; several
routes read their body themselves (the gateway's feedback and review labels, the drift
service's events, feedback, review labels and reference pins), so FastAPI documents them
without a body. Both are added here from the models the routes parse with, so the fuzzer
sends bodies to the whole public API.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel, SecretStr

from drift.app import PinReference
from drift.settings import DriftSettings
from driftgate.core.events import EventBatch, FeedbackEvent, ReviewLabel
from driftgate.deployables.drift_service import app as drift_app
from gateway.app import create_app as create_gateway
from gateway.settings import GatewaySettings
from rollout.settings import RolloutSettings

Schema = dict[str, Any]

_ERROR = {
    "description": "An error in the OpenAI shape",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OpenAIError"}}},
}
_OPENAI_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {},
                "code": {},
            },
        }
    },
}
_MESSAGE = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {
        "role": {"type": "string", "enum": ["system", "user", "assistant"]},
        "content": {"type": "string", "maxLength": 200},
    },
}
_SAMPLING: dict[str, Any] = {
    "max_tokens": {"type": "integer", "minimum": 1, "maximum": 64},
    "n": {"type": "integer", "minimum": 1, "maximum": 4},
    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
    "stream": {"type": "boolean"},
    "stream_options": {
        "type": "object",
        "properties": {"include_usage": {"type": "boolean"}},
    },
}
_GATEWAY_FEEDBACK = {
    "type": "object",
    "additionalProperties": False,
    "required": ["request_id"],
    "minProperties": 2,
    "properties": {
        "request_id": {"type": "string", "minLength": 1, "maxLength": 128},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "label": {"type": "string", "maxLength": 256},
        "correction": {"type": "string", "maxLength": 500},
    },
}

_GATEWAY_REVIEW_LABEL = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "label": {"type": "string", "minLength": 1, "maxLength": 256},
        "correction": {"type": "string", "minLength": 1, "maxLength": 500},
    },
}


def _inference(models: list[str], chat: bool) -> Schema:
    prompt: Schema = (
        {"messages": {"type": "array", "minItems": 1, "maxItems": 3, "items": _MESSAGE}}
        if chat
        else {
            "prompt": {
                "anyOf": [
                    {"type": "string", "maxLength": 200},
                    {"type": "array", "minItems": 1, "maxItems": 3, "items": {"type": "string"}},
                ]
            }
        }
    )
    return {
        "type": "object",
        "required": ["model", "messages" if chat else "prompt"],
        "properties": {"model": {"type": "string", "enum": models}, **prompt, **_SAMPLING},
    }


def _post(summary: str, body: Schema, ok: str) -> Schema:
    return {
        "summary": summary,
        "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
        "responses": {ok: {"description": "Accepted"}, "4XX": _ERROR},
    }


def _model_schema(model: type[BaseModel], components: Schema) -> Schema:
    """``model``'s JSON schema, its definitions moved into the document's components."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(schema.pop("$defs", {}))
    return schema


def _with_body(doc: Schema, path: str, body: Schema) -> None:
    doc["paths"][path]["post"]["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": body}},
    }


def gateway_schema(models: list[str]) -> Schema:
    """The gateway's document with the two hot routes and the feedback body added.

    ``models``: the values of ``model`` a valid body names (a fuzzed one names others).
    """
    placeholder = GatewaySettings(state_url="sqlite://", admin_key=SecretStr("x"))
    doc = copy.deepcopy(create_gateway(placeholder).openapi())
    doc.setdefault("components", {}).setdefault("schemas", {})["OpenAIError"] = _OPENAI_ERROR
    doc["paths"]["/v1/chat/completions"] = {
        "post": _post("Chat completion", _inference(models, chat=True), "200")
    }
    doc["paths"]["/v1/completions"] = {
        "post": _post("Completion", _inference(models, chat=False), "200")
    }
    _with_body(doc, "/v1/feedback", _GATEWAY_FEEDBACK)
    _with_body(doc, "/v1/review/items/{item_id}", _GATEWAY_REVIEW_LABEL)
    return doc


def drift_schema() -> Schema:
    """The drift service's document (rollout API included) with its three bodies added."""
    # Building the app opens nothing (its lifespan does), so no database is needed here.
    app = drift_app(DriftSettings(state_url="sqlite://"), RolloutSettings(state_url="sqlite://"))
    doc = copy.deepcopy(app.openapi())
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    _with_body(doc, "/v1/events", _model_schema(EventBatch, components))
    _with_body(doc, "/v1/feedback", _model_schema(FeedbackEvent, components))
    _with_body(doc, "/v1/drift/reference", _model_schema(PinReference, components))
    _with_body(doc, "/v1/review/items/{item_id}/label", _model_schema(ReviewLabel, components))
    return doc
