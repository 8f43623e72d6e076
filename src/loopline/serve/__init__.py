"""The prediction service (FastAPI): plain JSON, Open Inference Protocol v2, MLflow scoring, health and metrics.

The wire protocols are plugins (:mod:`loopline.serve.protocols`); ``ServeSettings.protocols`` selects them.
"""

from loopline.serve._app import create_app
from loopline.serve._guards import HostCheck, allowed_hosts
from loopline.serve._server import BackgroundServer, serve
from loopline.serve._settings import ServeSettings

__all__ = ["BackgroundServer", "HostCheck", "ServeSettings", "allowed_hosts", "create_app", "serve"]
