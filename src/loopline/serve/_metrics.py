"""Prometheus metrics of one service instance (its own registry, never the global one)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ServiceMetrics:
    """Requests, errors by cause, latency and batch size per model and version, in-flight requests, swaps.

    ``loopline_batch_size`` counts the records of each request; ``loopline_model_batch_rows`` and
    ``loopline_model_batch_requests`` those of each model call, after micro-batching merged requests.

    Error causes: ``validation``, ``not_found``, ``http_4xx`` (body refused), ``overload`` (refused at the
    concurrency limit), ``unauthorized`` / ``forbidden`` (predict token), ``bad_name``. A name that is not served
    is counted under model ``_unknown``, so a client cannot grow the label set.

    The input policy's counts: ``loopline_input_extra_fields`` (fields the model does not take, ignored; no
    field label, since clients name them) and ``loopline_input_missing_fields`` (by field of the model's schema:
    fields a record lacked, taken as null).

    Challengers (see :mod:`loopline.serve._challenger`): a canary's answers are counted in ``loopline_requests``
    under its own version; a shadow's in ``loopline_shadow_predictions`` (records), ``loopline_shadow_dropped``
    and ``loopline_shadow_errors`` (requests), ``loopline_shadow_call_seconds``.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "loopline_requests", "Prediction requests.", ["model", "version", "endpoint"], registry=self.registry
        )
        self.errors = Counter(
            "loopline_errors", "Rejected or failed requests.", ["model", "cause"], registry=self.registry
        )
        self.extra_fields = Counter(
            "loopline_input_extra_fields",
            "Fields of accepted records the model does not take (ignored), one per field and record.",
            ["model"],
            registry=self.registry,
        )
        self.missing_fields = Counter(
            "loopline_input_missing_fields",
            "Fields accepted records lacked, taken as null (the model imputes them).",
            ["model", "field"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "loopline_request_latency_seconds",
            "Prediction latency.",
            ["model", "version"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch = Histogram(
            "loopline_batch_size",
            "Records per request.",
            ["model"],
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
            registry=self.registry,
        )
        self.model_batch_rows = Histogram(
            "loopline_model_batch_rows",
            "Records per model call (concurrent requests merged by micro-batching).",
            ["model"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
            registry=self.registry,
        )
        self.model_batch_requests = Histogram(
            "loopline_model_batch_requests",
            "Requests merged into one model call.",
            ["model"],
            buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64),
            registry=self.registry,
        )
        self.load_time = Gauge(
            "loopline_model_load_seconds",
            "Time to load the serving version.",
            ["model", "version"],
            registry=self.registry,
        )
        self.prep_events = Gauge(
            "loopline_prep_events",
            "Preprocessing events met while serving (values outside the kept categories, out-of-range values...),"
            " counted by the model's transforms since the version was loaded.",
            ["model", "version", "event"],
            registry=self.registry,
        )
        self.log_depth = Gauge(
            "loopline_prediction_log_queue_depth", "Prediction rows not yet written.", registry=self.registry
        )

        self.in_flight = Gauge(
            "loopline_requests_in_flight", "Prediction requests being answered now.", registry=self.registry
        )
        self.served_version = Gauge(
            "loopline_served_version", "The version each model is answered with.", ["model"], registry=self.registry
        )
        self.swaps = Counter(
            "loopline_model_swaps",
            "Versions loaded and switched to (the first load included).",
            ["model"],
            registry=self.registry,
        )

        self.shadow_predictions = Counter(
            "loopline_shadow_predictions",
            "Records scored by a shadow version (logged, never returned).",
            ["model", "version"],
            registry=self.registry,
        )
        self.shadow_dropped = Counter(
            "loopline_shadow_dropped",
            "Requests whose shadow scoring was dropped: the shadow's queue was full (it fell behind the traffic).",
            ["model"],
            registry=self.registry,
        )
        self.shadow_errors = Counter(
            "loopline_shadow_errors",
            "Requests a shadow version failed to score (the champion answered them all the same).",
            ["model"],
            registry=self.registry,
        )
        self.shadow_queue = Gauge(
            "loopline_shadow_queue_depth", "Requests waiting for shadow scoring.", registry=self.registry
        )
        self.shadow_latency = Histogram(
            "loopline_shadow_call_seconds",
            "Time of one shadow model call (requests merged).",
            ["model", "version"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )

    def observe_model_call(self, name: str, requests: int, rows: int) -> None:
        """One model call of ``requests`` merged requests holding ``rows`` records (thread-safe)."""
        self.model_batch_rows.labels(name).observe(rows)
        self.model_batch_requests.labels(name).observe(requests)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
