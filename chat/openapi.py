"""The OpenAPI 3.1 document of `/api/v1`, written by hand: the API is small and its shapes are OpenAI's."""

from __future__ import annotations

from typing import Any

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}
MESSAGE = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {
        "role": {"type": "string", "enum": ["system", "user", "assistant"]},
        "content": {
            "oneOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "object", "required": ["type", "text"],
                                            "properties": {"type": {"const": "text"}, "text": {"type": "string"}}}},
            ]
        },
    },
}  # fmt: skip
USAGE = {
    "type": "object",
    "properties": {n: {"type": "integer"} for n in ("prompt_tokens", "completion_tokens", "total_tokens")},
}
CHAT_REQUEST = {
    "type": "object",
    "required": ["model", "messages"],
    "properties": {
        "model": {"type": "string", "description": "A model id from GET /models, `<provider>/<model>`."},
        "messages": {"type": "array", "minItems": 1, "items": MESSAGE},
        "stream": {"type": "boolean", "default": False},
        "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}}},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "max_tokens": {"type": "integer", "minimum": 1},
        "max_completion_tokens": {"type": "integer", "minimum": 1},
        "stop": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "maxItems": 4}]},
        "n": {"type": "integer", "const": 1},
        "store": {"type": "boolean", "default": True, "description": "Save the exchange to your history."},
        "sources": {
            "type": "array",
            "maxItems": 20,
            "items": {"type": "string", "format": "uuid"},
            "description": "Ids of your ready sources (GET /sources): the answer is grounded in their best "
            "passages for the last user message, and `citations` lists them.",
        },
    },
}
CHAT_RESPONSE = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "chat.completion"},
        "created": {"type": "integer"},
        "model": {"type": "string"},
        "choices": {"type": "array", "items": {"type": "object", "properties": {
            "index": {"type": "integer"}, "finish_reason": {"type": "string"},
            "message": {"type": "object", "properties": {"role": {"const": "assistant"}, "content": {"type": "string"}}},
        }}},
        "usage": USAGE,
        "citations": {"type": "array", "description": "With `sources`: the passages given to the model, numbered as "
                      "the answer cites them ([1], [2]...). A stream sends them in its first chunk.",
                      "items": {"type": "object", "properties": {
                          "number": {"type": "integer"}, "source": {"type": "string"}, "title": {"type": "string"},
                          "url": {"type": "string"}, "page": {"type": ["integer", "null"]},
                          "rows": {"type": ["array", "null"]}, "excerpt": {"type": "string"}}}},
        "notice": {"type": "string", "description": "With `sources`: why the answer could not use them, if it could not."},
    },
}  # fmt: skip
EMBEDDINGS_REQUEST = {
    "type": "object",
    "required": ["model", "input"],
    "properties": {
        "model": {"type": "string"},
        "input": {"oneOf": [{"type": "string", "minLength": 1},
                            {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1, "maxItems": 2048}]},
    },
}  # fmt: skip


def _errors(*statuses: int) -> dict[str, Any]:
    return {
        str(status): {"description": description, "content": {"application/json": {"schema": ERROR}}}
        for status, description in {
            400: "Invalid request", 401: "Missing, wrong or revoked API key", 403: "Model not allowed for you",
            404: "Unknown model", 413: "Body too large", 429: "Over a limit; see Retry-After",
            502: "The model's provider failed", 504: "The model's provider timed out",
        }.items()
        if status in statuses
    }  # fmt: skip


def openapi_document(*, base_url: str) -> dict[str, Any]:
    json_body = lambda schema: {"required": True, "content": {"application/json": {"schema": schema}}}  # noqa: E731
    return {
        "openapi": "3.1.0",
        "info": {"title": "Multi-LLM Chat API", "version": "1.0",
                 "description": "OpenAI-compatible: point an OpenAI client's base_url here and use your API key."},
        "servers": [{"url": base_url}],
        "security": [{"bearer": []}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": {
            "/models": {"get": {
                "operationId": "listModels", "summary": "Models you may use",
                "responses": {"200": {"description": "The models", "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": {
                        "type": "object", "properties": {"id": {"type": "string"}, "object": {"const": "model"},
                                                         "created": {"type": "integer"}, "owned_by": {"type": "string"}}}}}}}}},
                              **_errors(401)},
            }},
            "/chat/completions": {"post": {
                "operationId": "createChatCompletion", "summary": "Chat; `stream: true` answers with Server-Sent Events",
                "requestBody": json_body(CHAT_REQUEST),
                "responses": {"200": {"description": "The answer (JSON), or `data:` chunks ending with `data: [DONE]`",
                                      "content": {"application/json": {"schema": CHAT_RESPONSE},
                                                  "text/event-stream": {"schema": {"type": "string"}}}},
                              **_errors(400, 401, 403, 404, 413, 429, 502, 504)},
            }},
            "/sources": {"get": {
                "operationId": "listSources", "summary": "Your sources (web pages, PDFs, CSVs), newest first",
                "responses": {"200": {"description": "The sources", "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": {
                        "type": "object", "properties": {
                            "id": {"type": "string"}, "object": {"const": "source"}, "name": {"type": "string"},
                            "url": {"type": ["string", "null"]}, "file_name": {"type": ["string", "null"]},
                            "status": {"enum": ["queued", "fetching", "extracting", "embedding", "ready", "failed"]},
                            "error": {"type": ["string", "null"]}, "created": {"type": "integer"},
                            "conversation": {"type": ["string", "null"]}}}}}}}}},
                              **_errors(401)},
            }},
            "/embeddings": {"post": {
                "operationId": "createEmbedding", "summary": "Vectors from an embedding model",
                "requestBody": json_body(EMBEDDINGS_REQUEST),
                "responses": {"200": {"description": "One vector per input", "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"object": {"const": "list"}, "model": {"type": "string"}, "usage": USAGE,
                    "data": {"type": "array", "items": {"type": "object", "properties": {
                        "index": {"type": "integer"}, "embedding": {"type": "array", "items": {"type": "number"}}}}}}}}}},
                              **_errors(400, 401, 403, 404, 413, 429, 502, 504)},
            }},
        },
    }  # fmt: skip
