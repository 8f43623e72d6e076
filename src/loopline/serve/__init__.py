"""The prediction service (FastAPI): plain JSON, Open Inference Protocol v2, health and metrics."""

from loopline.serve._app import ServeSettings, create_app
from loopline.serve._server import BackgroundServer, serve

__all__ = ["BackgroundServer", "ServeSettings", "create_app", "serve"]
