"""The UWS job store (``skyvault.server.uws.store``) on its own, without HTTP: who sees a job,
the phases it goes through (UWS 1.1 sections 2.1.3 and 2.2.3), the job list's filters (2.2.2.1),
the queue the workers take jobs from, quotas, and results withheld from an owner who lost a
program the job ran with.

Its jobs belong to services of this module only (``t14a``, ``t14b``): no worker of the session
runs them, and the module deletes them and its users at the end.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from skyvault.access import ANONYMOUS, Requester
from skyvault.accounts.model import create_user, grant_programs, requester_for_user, revoke_programs
from skyvault.db import Database
from skyvault.server.uws.quota import JobQuota, JobQuotaExceeded
from skyvault.server.uws.store import (
    JobNotFound,
    JobQueue,
    JobStore,
    ResultFile,
    ResultsWithheld,
)
from skyvault.vo.dali import Parameters
from skyvault.vo.uws import JobListFilter, Phase, PhaseConflict

SERVICE, OTHER = "t14a", "t14b"
USERS = ("t14-uws-ann", "t14-uws-bob")
ADDRESS = "192.0.2.14"
"""The anonymous client of this module (TEST-NET-1: no other test sends from it)."""


@dataclass(frozen=True)
class World:
    db: Database
    ann: Requester
    bob: Requester


@pytest.fixture(scope="module")
def world(database: Database) -> Iterator[World]:
    with database.admin() as connection:
        ids = [create_user(connection, name) for name in USERS]
        grant_programs(connection, USERS[0], [2])
        ann, bob = (requester_for_user(connection, i) for i in ids)
    yield World(database, ann, bob)
    with database.admin() as connection:
        connection.execute("DELETE FROM archive.uws_jobs WHERE service = ANY(%s)",
                           ([SERVICE, OTHER],))
        connection.execute("DELETE FROM archive.group_members WHERE user_id = ANY(%s)", (ids,))
        connection.execute("DELETE FROM archive.groups WHERE name = ANY(%s)",
                           ([f"user:{name}" for name in USERS],))
        connection.execute("DELETE FROM archive.users WHERE user_id = ANY(%s)", (ids,))


@pytest.fixture
def clean(world: World) -> World:
    with world.db.admin() as connection:
        connection.execute("DELETE FROM archive.uws_jobs WHERE service = ANY(%s)",
                           ([SERVICE, OTHER],))
    return world


def _create(store: JobStore, requester: Requester, *pairs: tuple[str, str],
            destruction: dt.timedelta = dt.timedelta(days=1), run: bool = False) -> str:
    return store.create(requester, Parameters(pairs), run_id="t14", execution_duration=60,
                        destruction_time=dt.datetime.now(dt.UTC) + destruction,
                        base_url="http://archive.example", run=run,
                        client_address=None if requester.user_id else ADDRESS)


def test_a_users_job_exists_for_that_user_alone(clean: World) -> None:
    store = JobStore(clean.db, service=SERVICE)
    job_id = _create(store, clean.ann, ("QUERY", "SELECT 1"), ("UPLOAD", "a,b"),
                     ("upload", "c,d"))
    job = store.get(job_id, clean.ann)
    assert (job.owner_name, job.phase, job.run_id) == (USERS[0], Phase.PENDING, "t14")
    # Parameters keep their order and repeats (names as DALI reads them, upper-cased).
    assert job.parameter_pairs == (("QUERY", "SELECT 1"), ("UPLOAD", "a,b"), ("UPLOAD", "c,d"))
    assert job.parameters.get_all("upload") == ["a,b", "c,d"]
    for stranger in (clean.bob, ANONYMOUS):
        with pytest.raises(JobNotFound):
            store.get(job_id, stranger)
        with pytest.raises(JobNotFound):
            store.change_phase(job_id, stranger, "ABORT")
        with pytest.raises(JobNotFound):
            store.delete(job_id, stranger)
    assert store.get(job_id, clean.ann).phase == Phase.PENDING  # nothing a stranger did stuck
    # Another service does not know the id at all.
    with pytest.raises(JobNotFound):
        JobStore(clean.db, service=OTHER).get(job_id, clean.ann)


def test_an_anonymous_job_is_reached_by_its_id_and_never_listed(clean: World) -> None:
    store = JobStore(clean.db, service=SERVICE)
    job_id = _create(store, ANONYMOUS, ("ID", "x"))
    assert len(job_id) >= 22  # 128 random bits, URL-safe
    assert store.get(job_id, ANONYMOUS).owner_id is None
    assert store.get(job_id, clean.bob).job_id == job_id  # the id is the key
    assert store.list(ANONYMOUS, JobListFilter()) == []
    assert store.list(clean.bob, JobListFilter()) == []


@pytest.mark.parametrize("job_id", ["", "short", "../../../etc/passwd", "a" * 65,
                                    "abcdefghijklmnop'; --", "abcdefghijklmnop\n"])
def test_malformed_ids_are_unknown_jobs(clean: World, job_id: str) -> None:
    store = JobStore(clean.db, service=SERVICE)
    with pytest.raises(JobNotFound):
        store.get(job_id, clean.ann)
    with pytest.raises(JobNotFound):
        store.delete(job_id, clean.ann)


def test_a_job_past_its_destruction_time_is_gone(clean: World) -> None:
    store = JobStore(clean.db, service=SERVICE)
    job_id = _create(store, clean.ann, destruction=dt.timedelta(seconds=-1))
    with pytest.raises(JobNotFound):
        store.get(job_id, clean.ann)
    assert store.list(clean.ann, JobListFilter()) == []


def test_phases_follow_uws(clean: World) -> None:
    store = JobStore(clean.db, service=SERVICE)
    job_id = _create(store, clean.ann, ("A", "1"))
    store.update_parameters(job_id, clean.ann, Parameters([("B", "2")]))
    assert store.change_phase(job_id, clean.ann, "run") == Phase.QUEUED
    assert store.change_phase(job_id, clean.ann, "RUN") == Phase.QUEUED  # again: no change
    with pytest.raises(PhaseConflict):  # 2.1.11: parameters change only while PENDING
        store.update_parameters(job_id, clean.ann, Parameters([("C", "3")]))
    assert store.get(job_id, clean.ann).parameters.get("B") == "2"
    assert store.change_phase(job_id, clean.ann, "ABORT") == Phase.ABORTED
    aborted = store.get(job_id, clean.ann)
    assert aborted.end_time is not None
    with pytest.raises(PhaseConflict):
        store.change_phase(job_id, clean.ann, "RUN")  # a finished job cannot run again
    assert store.change_phase(job_id, clean.ann, "ABORT") == Phase.ABORTED
    with pytest.raises(PhaseConflict):
        store.set_execution_duration(job_id, clean.ann, 10, 100)
    store.delete(job_id, clean.ann)
    with pytest.raises(JobNotFound):
        store.get(job_id, clean.ann)


def test_limits_are_clamped_to_the_services_maxima(clean: World) -> None:
    store = JobStore(clean.db, service=SERVICE)
    job_id = _create(store, clean.ann)
    created = store.get(job_id, clean.ann).creation_time
    store.set_destruction(job_id, clean.ann, created + dt.timedelta(days=30), max_retention=3600)
    assert store.get(job_id, clean.ann).destruction_time == created + dt.timedelta(hours=1)
    store.set_execution_duration(job_id, clean.ann, 0, 900)  # 0, unlimited: the maximum
    assert store.get(job_id, clean.ann).execution_duration == 900
    store.set_execution_duration(job_id, clean.ann, 5000, 900)
    assert store.get(job_id, clean.ann).execution_duration == 900
    store.set_execution_duration(job_id, clean.ann, 30, 900)
    assert store.get(job_id, clean.ann).execution_duration == 30


def test_the_job_list_filters_by_phase_after_and_last(clean: World) -> None:
    store = JobStore(clean.db, service=SERVICE)
    ids = []
    for _ in range(4):
        ids.append(_create(store, clean.ann))
        time.sleep(0.01)  # distinct creation times, so order is defined
    store.change_phase(ids[1], clean.ann, "ABORT")
    _create(JobStore(clean.db, service=OTHER), clean.ann)  # another service's: never listed
    _create(store, clean.bob)  # someone else's: never listed

    every = store.list(clean.ann, JobListFilter())
    assert [j.job_id for j in every] == ids  # oldest first
    pending = store.list(clean.ann, JobListFilter(phases=frozenset({Phase.PENDING})))
    assert [j.job_id for j in pending] == [ids[0], ids[2], ids[3]]
    # LAST: the most recent ones, newest first (UWS 1.1 2.2.2.1).
    assert [j.job_id for j in store.list(clean.ann, JobListFilter(last=2))] == [ids[3], ids[2]]
    after = every[1].creation_time
    assert [j.job_id for j in store.list(clean.ann, JobListFilter(after=after))] == ids[2:]


def test_the_queue_hands_out_the_oldest_queued_job_of_its_services_once(clean: World) -> None:
    store, other = JobStore(clean.db, service=SERVICE), JobStore(clean.db, service=OTHER)
    first = _create(store, clean.ann, run=True)
    time.sleep(0.01)
    _create(store, clean.ann)  # PENDING: not for the queue
    time.sleep(0.01)
    second = _create(store, ANONYMOUS, run=True)
    foreign = _create(other, clean.ann, run=True)
    queue = JobQueue(clean.db, [SERVICE])
    taken = queue.claim_next("w1")
    assert (taken.job_id, taken.phase, taken.worker, taken.attempts) == (
        first, Phase.EXECUTING, "w1", 1)
    assert taken.start_time is not None
    assert queue.claim_next("w2").job_id == second
    assert queue.claim_next("w3") is None  # the other service's job is not this queue's
    assert JobQueue(clean.db, [OTHER]).claim_next("w4").job_id == foreign
    # Only the worker that holds a job ends it; an aborted job stays aborted.
    assert queue.finish(first, "w2", Phase.COMPLETED) is False
    store.change_phase(second, ANONYMOUS, "ABORT")
    assert queue.finish(second, "w2", Phase.COMPLETED) is False
    assert store.get(second, ANONYMOUS).phase == Phase.ABORTED
    assert queue.finish(first, "w1", Phase.ERROR, error="it broke") is True
    failed = store.get(first, clean.ann)
    assert (failed.phase, failed.error_text(), failed.error_type) == (
        Phase.ERROR, "it broke", "fatal")


def test_quotas_count_an_owners_jobs_of_every_service(clean: World) -> None:
    quota = JobQuota(max_active=2, max_stored_bytes=10_000)
    store = JobStore(clean.db, service=SERVICE, quota=quota)
    _create(store, clean.bob)
    _create(JobStore(clean.db, service=OTHER, quota=quota), clean.bob)
    with pytest.raises(JobQuotaExceeded):
        _create(store, clean.bob)
    _create(store, clean.ann)  # another owner's count is their own
    with pytest.raises(JobQuotaExceeded):
        store.create(clean.ann, Parameters(), run_id=None, execution_duration=60,
                     destruction_time=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
                     base_url=None, upload_bytes=20_000)


def test_results_are_withheld_while_the_owner_lacks_a_program_the_job_ran_with(
        clean: World, tmp_path) -> None:
    store = JobStore(clean.db, service=SERVICE)
    job_id = _create(store, clean.ann, run=True)
    queue = JobQueue(clean.db, [SERVICE])
    job = queue.claim_next("w1")
    runs_as = queue.owner_requester(job)
    assert runs_as.programs == {2}
    result = ResultFile("result", "result.vot", "application/x-votable+xml", 1234, rows=7)
    assert queue.finish(job_id, "w1", Phase.COMPLETED, results=[result])
    done = store.get(job_id, clean.ann)
    assert done.results == (result,) and not done.results_withheld
    with clean.db.admin() as connection:
        revoke_programs(connection, USERS[0], [2])
        ann_now = requester_for_user(connection, clean.ann.user_id)
    try:
        seen = store.get(job_id, ann_now)
        assert seen.results == () and seen.results_withheld
        with pytest.raises(ResultsWithheld):
            seen.result_file("result")
        assert store.list(ann_now, JobListFilter())[0].results == ()
    finally:
        with clean.db.admin() as connection:
            grant_programs(connection, USERS[0], [2])
    assert store.get(job_id, clean.ann).results == (result,)
