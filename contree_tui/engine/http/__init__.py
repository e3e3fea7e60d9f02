"""The Contree v1 HTTP API over an open Engine: `create_app(engine)` returns the ASGI (Starlette) app.

Serving it (a Unix socket, TCP with a token, the daemon) is someone else's job: the app neither opens nor
closes the engine, so tests and the server can drive the same engine in the same event loop.
"""

from contree_tui.engine.http.app import create_app

__all__ = ["create_app"]
