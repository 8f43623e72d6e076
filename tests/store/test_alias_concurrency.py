"""Ten processes promote different versions of one model at the same moment, several rounds, on SQLite and
PostgreSQL: the database keeps one production, no "database is locked" reaches a caller, every change is
recorded in order, and with compare-and-set exactly one promotion wins each round."""

from __future__ import annotations

import multiprocessing
from itertools import pairwise

from loopline.store import Store
from loopline.store._tables import model_aliases

from ._alias_workers import MODEL, promote_rounds
from ._workers import register_stub

WORKERS = 10
ROUNDS = 3


def _register_versions(store: Store, count: int) -> None:
    for _ in range(count):
        register_stub(store, MODEL)


def test_ten_processes_promote_at_once_one_production_every_change_recorded(
    store_url: str, artifact_location: str
) -> None:
    with Store.open(store_url, artifact_location) as store:
        _register_versions(store, WORKERS + 1)
        store.models.promote(MODEL, 1, reason="start", actor="setup")
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(WORKERS), ctx.Queue()
    procs = [
        ctx.Process(target=promote_rounds, args=(store_url, artifact_location, barrier, i, ROUNDS, results))
        for i in range(WORKERS)
    ]
    for proc in procs:
        proc.start()
    found = [results.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    assert [item[2] for item in found if item[0] == "error"] == []
    outcomes = [(n, result, target, message, item[1]) for item in found for n, result, target, message in item[2]]
    assert not [o for o in outcomes if "locked" in o[3].lower()]

    # compare-and-set rounds: exactly one wins, the others are told another change came first
    for number in range(ROUNDS):
        this_round = [o for o in outcomes if o[0] == number]
        assert [o[1] for o in this_round].count("won") == 1, this_round
        assert all("another change came first" in o[3] for o in this_round if o[1] == "lost")
    # plain rounds: every promotion goes through, one after the other
    assert [o for o in outcomes if o[0] >= ROUNDS and o[1] != "won"] == []

    with Store.open(store_url, artifact_location) as store:
        history = store.models.history(MODEL)
        with store.engine.connect() as conn:
            rows = conn.execute(model_aliases.select().where(model_aliases.c.name == MODEL)).all()
        production = store.models.production(MODEL)
        stages = [v.stage for v in store.models.list(MODEL)]
    assert len(rows) == 1 and stages.count("production") == 1
    assert production is not None and production.version == history[-1].to_version
    chain = [(e.from_version, e.to_version) for e in history]
    assert all(before[1] == after[0] for before, after in pairwise(chain))  # no lost update
    winners = sorted((o[0], f"worker-{o[4]}", o[2]) for o in outcomes if o[0] < ROUNDS and o[1] == "won")
    cas_events = [e for e in history if e.reason in {f"round {n}" for n in range(ROUNDS)}]
    assert [(e.actor, e.to_version) for e in cas_events] == [(who, target) for _, who, target in winners]
    for number in range(ROUNDS, 2 * ROUNDS):  # each worker's target differs from the others' and from production
        events = [e for e in history if e.reason == f"round {number}"]
        assert sorted(e.actor or "" for e in events) == sorted(f"worker-{i}" for i in range(WORKERS))
