"""The bare floor: a FastAPI app with no middleware that answers one constant JSON body, of the size a real
`/recommend` answer has (the benchmark passes that body in a file named by `BARE_BODY_FILE`)."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI, Response

BODY_FILE_ENV = "BARE_BODY_FILE"


def create_app() -> FastAPI:
    body = Path(os.environ[BODY_FILE_ENV]).read_bytes()
    app = FastAPI()

    @app.get("/constant")
    async def constant() -> Response:
        return Response(body, media_type="application/json")

    return app
