"""Reading request bodies within limits: size (streamed bodies counted as they arrive)
and JSON nesting depth. Every refusal is an `ApiError`, so the client gets a 4xx JSON
body instead of a truncated request or a RecursionError."""

from __future__ import annotations

import io
import json
from typing import Any

from flask import current_app, request
from flask_smorest import Blueprint
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.wsgi import get_content_length

from api.errors import BadBody, BodyTooLarge

_CHUNK = 1 << 16
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def parse_json(raw: bytes | str, field: str = "body") -> Any:
    """JSON text → value, refusing invalid text and nesting deeper than MAX_JSON_DEPTH."""
    limit = int(current_app.config["MAX_JSON_DEPTH"])
    try:
        value = json.loads(raw)
    except RecursionError:  # nested far deeper than the limit: the decoder gave up
        raise _too_deep(field, limit) from None
    except ValueError as error:  # UnicodeDecodeError is a ValueError
        raise BadBody(f"{field} is not valid JSON", {field: [f"not valid JSON: {error}"]}) from None
    if nesting_depth(value, stop_after=limit) > limit:
        raise _too_deep(field, limit)
    return value


def _too_deep(field: str, limit: int) -> BadBody:
    message = f"{field} nests JSON deeper than {limit} levels"
    return BadBody(message, {field: [f"nested deeper than {limit} levels"]})


def nesting_depth(value: Any, *, stop_after: int | None = None) -> int:
    """How deeply arrays and objects nest in `value` (a scalar is 0), without recursion;
    stops counting once past `stop_after`."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth + 1)
        if stop_after is not None and deepest > stop_after:
            break
        pending.extend((child, depth + 1) for child in children)
    return deepest


def cap_body() -> None:
    """before_request: refuse a body over MAX_CONTENT_LENGTH with 413.

    A declared Content-Length over the limit is refused at once. A streamed (chunked)
    body has no length, and Werkzeug would stop reading at the limit and hand the view
    the first bytes as if they were all: it is read and counted here instead, and kept
    for the view only when it ends within the limit.
    """
    if request.method not in BODY_METHODS:
        return
    limit = int(current_app.config["MAX_CONTENT_LENGTH"])
    environ = request.environ
    # From the environ, not request.content_length: that property is cached, and the
    # environ changes below.
    length = get_content_length(environ)
    if length is not None:
        if length > limit:
            raise BodyTooLarge(limit)
        return
    if not environ.get("wsgi.input_terminated"):
        return  # Werkzeug reads nothing from a stream of unknown end
    stream = environ["wsgi.input"]
    body = io.BytesIO()
    while chunk := stream.read(_CHUNK):
        body.write(chunk)
        if body.tell() > limit:
            raise BodyTooLarge(limit)
    environ["wsgi.input"] = io.BytesIO(body.getvalue())
    environ["CONTENT_LENGTH"] = str(body.tell())
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    environ.pop("wsgi.input_terminated", None)


class _BoundedJsonParser(FlaskParser):
    """webargs' parser, reading JSON bodies through `parse_json`."""

    def _raw_load_json(self, req: Any) -> Any:
        if not is_json_request(req):
            return core.missing
        return parse_json(req.get_data(cache=True))


class ApiBlueprint(Blueprint):
    """flask-smorest's Blueprint whose @arguments bodies obey the JSON limits."""

    ARGUMENTS_PARSER = _BoundedJsonParser()
