"""What every route needs: the engine the app was created with, and its settings."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from contree_tui.engine.engine import Engine


@dataclass
class Settings:
    keepalive: float = 15.0  # seconds of silence before an SSE `: keepalive` comment
    cancel_wait: float = 5.0  # DELETE /operations/{id} waits this long for the run to wind down
    stdin_timeout: float = 30.0  # a stdin write blocked longer (the process stopped reading) answers 504


# Set in the ASGI scope of requests that came over TCP with the bearer token (serve.TokenOnTcp): such a
# client is trusted to use the engine, not to reach the host through it (SECURITY.md), so it may not name
# host paths (an import's oci:/rootfs:/archive sources). Unix-socket clients are the engine's own user.
TOKEN_CLIENT = "contree.token_client"


def is_token_client(request: Request) -> bool:
    return bool(request.scope.get(TOKEN_CLIENT))


def engine_of(request: Request) -> Engine:
    return request.app.state.engine  # type: ignore[no-any-return]


def settings_of(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def api_path(request: Request, path: str) -> str:
    """An absolute path under this app's mount point, for Location headers."""
    return f"{request.scope.get('root_path', '')}/v1{path}"
