"""`recsys serve`: the API under uvicorn, as it runs in production (uvloop, httptools writing each answer once)."""

from __future__ import annotations

from typing import TypedDict

import typer
import uvicorn

from common.settings import get_settings


class UvicornOptions(TypedDict):
    loop: str
    http: str
    access_log: bool


# How the API runs in production; benchmarks/serving.py starts its floors with the same options. The protocol is
# uvicorn's httptools one writing an answer's head and body in one socket write (`api.adapters.http_protocol`).
UVICORN_OPTIONS = UvicornOptions(loop="uvloop", http="api.adapters.http_protocol:OneWriteHttpToolsProtocol",
                                 access_log=False)


def serve_command(
    host: str | None = typer.Option(None, help="Bind address (default: settings api_host)."),
    port: int | None = typer.Option(None, help="Port (default: settings api_port)."),
    workers: int = typer.Option(1, min=1, help="Worker processes."),
    log_level: str = typer.Option("warning", "--log-level"),
) -> None:
    """Serve /recommend and friends from Redis."""
    settings = get_settings()
    uvicorn.run("api.main:create_app", factory=True, host=host or settings.api_host, port=port or settings.api_port,
                workers=workers, log_level=log_level, **UVICORN_OPTIONS)
