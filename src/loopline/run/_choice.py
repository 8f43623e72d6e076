"""Pick an executor by name, as ``loopline run --executor`` does."""

from __future__ import annotations

from loopline.core.errors import ConfigError
from loopline.run._executor import Executor, LocalExecutor, SequentialExecutor

EXECUTORS_HINT = (
    "Use --executor local (threads, the default), sequential (one step at a time), dask (a local Dask cluster of "
    "worker processes) or dask://HOST:PORT (a running Dask scheduler)."
)


def make_executor(spec: str) -> Executor:
    """The executor named by ``spec``: ``local``, ``sequential``, ``dask`` (a :class:`distributed.LocalCluster`
    of worker processes) or ``dask://HOST:PORT`` (a running scheduler; ``tcp://`` and ``tls://`` work too)."""
    if spec == "local":
        return LocalExecutor()
    if spec == "sequential":
        return SequentialExecutor()
    if spec == "dask" or spec.startswith(("dask://", "tcp://", "tls://")):
        from loopline.run._dask import DaskExecutor

        address = None if spec == "dask" else spec
        if address is not None and not address.partition("://")[2]:
            raise ConfigError(f"executor {spec!r} names no scheduler address.", key="executor", hint=EXECUTORS_HINT)
        return DaskExecutor(address)
    raise ConfigError(f"unknown executor {spec!r}.", key="executor", hint=EXECUTORS_HINT)
