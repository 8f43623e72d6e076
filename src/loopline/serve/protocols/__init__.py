"""Wire protocols of the prediction service, as plugins: one module each, mounted as routers.

Built-ins: ``json`` (:mod:`.json_api`), ``oip`` (:mod:`.oip`), ``mlflow`` (:mod:`.mlflow`), declared as entry
points of the ``loopline.protocols`` group. A package adds its own the same way (an entry point naming its
:class:`WireProtocol` subclass) or from code with ``PROTOCOLS.register(name, protocol)``.
"""

from loopline.serve._service import PredictionService
from loopline.serve.protocols._contract import PROTOCOLS, WireProtocol

__all__ = ["PROTOCOLS", "PredictionService", "WireProtocol"]
