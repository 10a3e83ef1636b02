"""/v1/fixtures: the bundled partner fixtures a request may name."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from api.routes.common import documented_auth, require_api_key
from api.schemas import FixtureListSchema
from fixtures import list_fixtures

blp = Blueprint(
    "fixtures",
    __name__,
    url_prefix="/v1/fixtures",
    description='Bundled partner fixtures; use one with `"partners": {"fixture": "<name>"}`.',
)
blp.before_request(require_api_key)


@blp.route("")
class Fixtures(MethodView):
    @blp.response(200, FixtureListSchema)
    @documented_auth(blp, write=False)
    def get(self) -> dict[str, Any]:
        """The bundled fixtures."""
        return {"fixtures": [asdict(info) for info in list_fixtures()]}
