"""One scenario, both modes: a member of study X tries every input on study Y (ids in queries, keys, share links,
playback, export, jobs, moves, membership and usage) and is refused before anything is read, signed or changed.

The unit tier runs it on the demo's SQLite stores (tests/unit/test_study_isolation.py), the sql tier on the cloud
stores over the Supabase stand-in with row-level security (tests/sql/test_study_isolation_supabase.py); the object
store is moto's in both (the key checks are the app's, before any request)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from lib import library
from lib.errors import AccessDenied, ExportRefused, KeyOwnershipError, NotFound, PulseVaultError, ValidationError
from lib.export.model import Layout, Selection
from lib.export.plan import build_plan
from lib.jobs.model import JobKind, JobParameters
from lib.jobs.service import JobRequest, start_job
from lib.jobs.store import JobStore
from lib.keys import Space, record_keys, study_prefix
from lib.moves import move_record
from lib.records import FileRecord, GroundTruthFile, ListQuery, NewRecord, ResearchFields
from lib.settings import Settings
from lib.storage import ObjectStore
from lib.studies import Role
from lib.usage import UserRows, studies_usage
from tests.support.audit import refused_trail

QUOTA = 10**12
SHA_Y = "ef" * 32


@dataclass(frozen=True)
class TwoStudies:
    """Study X (owner ``x_owner``, member ``x_member``: the one who tries) and study Y (owner ``y_owner``, member
    ``y_member``, who uploaded ``y_record``, whose objects are in the bucket)."""

    people: dict[str, UserRows]
    x: str
    y: str
    y_record: FileRecord
    y_objects: frozenset[str]


def upload(store: ObjectStore, person: UserRows, study: str, sha256: str | None = None) -> FileRecord:
    """A ready recording in ``study`` with its original and thumbnail in the bucket."""
    record_id = str(uuid.uuid4())
    keys = record_keys(person.repo.user_id, record_id, "mp4", datetime.now(UTC), study)
    person.server.reserve(NewRecord(id=record_id, s3_key=keys.original, bucket=store.bucket, original_name="y.mp4",
                                    content_type="video/mp4", size_bytes=1, study_id=study,
                                    research=ResearchFields(subject_id="S12")), QUOTA)
    for key in (keys.original, keys.thumbnail):
        store._client.put_object(Bucket=store.bucket, Key=key, Body=b"x")
    person.server.mark_ready(record_id, size_bytes=1, sha256=sha256, video=None, thumbnail_key=keys.thumbnail,
                             preview_key=None)
    return person.repo.get(record_id)


def two_studies(store: ObjectStore, people: dict[str, UserRows], emails: dict[str, str]) -> TwoStudies:
    x = people["x_owner"].repo.create_study("Study X").id
    y = people["y_owner"].repo.create_study("Study Y").id
    people["x_owner"].repo.add_member(x, emails["x_member"], Role.MEMBER)
    people["y_owner"].repo.add_member(y, emails["y_member"], Role.MEMBER)
    y_record = upload(store, people["y_member"], y, SHA_Y)
    return TwoStudies(people, x, y, y_record, frozenset(_objects(store)))


def _objects(store: ObjectStore) -> set[str]:
    return {o["Key"] for o in store._client.list_objects_v2(Bucket=store.bucket).get("Contents", [])}


Refused = Callable[[type[Exception] | tuple[type[Exception], ...], Callable[[], object]], None]


def _refuser(refusals: list[Exception]) -> Refused:
    def refused(expected: type[Exception] | tuple[type[Exception], ...], call: Callable[[], object]) -> None:
        with pytest.raises(expected) as caught:
            call()
        refusals.append(caught.value)
    return refused


def _queries(world: TwoStudies, refused: Refused) -> None:
    """Record and study ids in every read and research edit of the member's repository."""
    repo, y, record = world.people["x_member"].repo, world.y, world.y_record
    refused(NotFound, lambda: repo.get(record.id))
    assert repo.get_many([record.id]) == []
    refused(NotFound, lambda: repo.list(ListQuery(study_id=y)))
    assert repo.list(ListQuery(study_id=world.x, text="S12")).total == 0
    assert repo.list(ListQuery(text="S12")).total == 0
    refused(NotFound, lambda: repo.find_ready_by_sha256(SHA_Y, y))
    assert repo.find_ready_by_sha256(SHA_Y, world.x) is None
    refused(NotFound, lambda: repo.update_research(record.id, ResearchFields(notes="mine now")))
    assert [s.id for s in repo.studies()] == [world.x]


def _membership(world: TwoStudies, refused: Refused) -> None:
    """Study Y's name, members and invitations are not there for the member of X, nor can they change them."""
    repo, y = world.people["x_member"].repo, world.y
    y_member = world.people["y_member"].repo.user_id
    for call in (lambda: repo.study(y), lambda: repo.members(y), lambda: repo.invites(y),
                 lambda: repo.cancel_invite(y, "someone@lab.test"), lambda: repo.set_role(y, y_member, Role.VIEWER),
                 lambda: repo.remove_member(y, y_member), lambda: repo.delete_study(y)):
        refused(NotFound, call)
    # The database's add refuses non-owners alike (AccessDenied); the demo's says NotFound to a non-member.
    refused((NotFound, AccessDenied), lambda: repo.add_member(y, "friend@evil.test", Role.OWNER))
    assert [u.study.id for u in studies_usage(repo, Settings(mode="demo"))] == [world.x]
    assert {u.study_id for u in repo.study_usage()} <= {world.x}


def _server_writes(world: TwoStudies, refused: Refused) -> None:
    """The server acting for the member of X (what every upload, job and repair runs through)."""
    person, y, record = world.people["x_member"], world.y, world.y_record
    server, user = person.server, person.repo.user_id
    for call in (lambda: server.get(record.id),  # a batch job's driver reads each recording through this
                 lambda: server.mark_failed(record.id, "hijacked"),
                 lambda: server.set_analysis(record.id, {"hr_bpm": 1}),
                 lambda: server.set_ground_truth(record.id, GroundTruthFile(record.s3_key, "gt.csv", 1)),
                 lambda: server.delete(record.id)):
        refused(NotFound, call)
    into_y = str(uuid.uuid4())
    refused(NotFound, lambda: server.reserve(NewRecord(
        id=into_y, s3_key=record_keys(user, into_y, "mp4", datetime.now(UTC), y).original, bucket="b",
        original_name="in.mp4", content_type="video/mp4", size_bytes=1, study_id=y), QUOTA))
    y_key_in_x = str(uuid.uuid4())
    refused(KeyOwnershipError, lambda: server.reserve(NewRecord(
        id=y_key_in_x, s3_key=record_keys(user, y_key_in_x, "mp4", datetime.now(UTC), y).original, bucket="b",
        original_name="in.mp4", content_type="video/mp4", size_bytes=1, study_id=world.x), QUOTA))


def _keys(world: TwoStudies, store: ObjectStore, refused: Refused) -> None:
    """Raw keys of Y, and X's prefix climbing into Y, with the member's space in X."""
    space = Space(world.people["x_member"].repo.user_id, world.x)
    climbing = f"{study_prefix(world.x)}../{world.y}/{world.y_record.s3_key.split('/', 2)[2]}"
    for key in (world.y_record.s3_key, climbing):
        refused(KeyOwnershipError, lambda key=key: store.presign_get(key, owner=space))
        refused(KeyOwnershipError, lambda key=key: store.head(key, owner=space))
        refused(KeyOwnershipError, lambda key=key: store.delete([key], owner=space))
    refused(KeyOwnershipError, lambda: list(store.iter_objects(study_prefix(world.y), owner=space)))


def _links_exports_jobs(world: TwoStudies, store: ObjectStore, jobs: JobStore, refused: Refused) -> None:
    """Playback, download and share links, thumbnails, deletion, re-analysis, export and jobs on Y's id."""
    person, record_id = world.people["x_member"], world.y_record.id
    repo, server = person.repo, person.server
    trail = refused_trail(repo.user_id)
    for make in (library.playback_url, library.download_url):
        refused(NotFound, lambda make=make: make(store, repo, record_id, trail=trail))
    refused(NotFound, lambda: library.share_link(store, repo, record_id, 600, Settings(mode="demo"), trail=trail))
    assert library.thumbnail_urls(store, repo, [record_id]) == {record_id: None}
    report = library.delete_records(store, repo, server, [record_id], trail=trail)
    assert report.deleted == () and report.failed
    refused(NotFound, lambda: library.reanalysis_task(store, repo, server, record_id))
    refused(ExportRefused, lambda: build_plan(store, repo, Selection(record_ids=(record_id,)), Layout.PLAIN))
    refused(NotFound, lambda: build_plan(store, repo, Selection(query=ListQuery(study_id=world.y)), Layout.PLAIN))
    refused(ValidationError, lambda: start_job(jobs, repo, JobRequest(JobKind.REANALYSE, JobParameters(), [record_id]),
                                               lambda: None))
    refused(ValidationError, lambda: start_job(jobs, repo, JobRequest(JobKind.REANALYSE, JobParameters(), [record_id],
                                                                      study_id=world.y), lambda: None))


def _moves(world: TwoStudies, store: ObjectStore, refused: Refused) -> None:
    """Moving Y's recording out (into X, or the member's personal space), or the member's own into Y."""
    person, record = world.people["x_member"], world.y_record
    trail = refused_trail(person.repo.user_id)
    for target in (world.x, None):
        refused(NotFound, lambda target=target: move_record(store, person.repo, person.server, record.id, target,
                                                            trail=trail, study_quota_bytes=QUOTA))
        refused(NotFound, lambda target=target: person.server.move(record.id, target, {"s3_key": record.s3_key}))
    own = str(uuid.uuid4())  # a row only: the refusal comes before its objects are looked for
    person.server.reserve(NewRecord(id=own, s3_key=record_keys(person.repo.user_id, own, "mp4",
                                                               datetime.now(UTC)).original,
                                    bucket=store.bucket, original_name="own.mp4", content_type="video/mp4",
                                    size_bytes=1), QUOTA)
    person.server.mark_ready(own, size_bytes=1, sha256=None, video=None, thumbnail_key=None, preview_key=None)
    refused(NotFound, lambda: move_record(store, person.repo, person.server, own, world.y, trail=trail,
                                          study_quota_bytes=QUOTA))
    refused(NotFound, lambda: person.server.move(own, world.y, {"s3_key": record.s3_key}))


def check_no_way_from_x_into_y(world: TwoStudies, store: ObjectStore, jobs: JobStore) -> None:
    """Every input refused, no message naming Y's keys or people, and Y's row and objects unchanged."""
    refusals: list[Exception] = []
    refused = _refuser(refusals)
    _queries(world, refused)
    _membership(world, refused)
    _server_writes(world, refused)
    _keys(world, store, refused)
    _links_exports_jobs(world, store, jobs, refused)
    _moves(world, store, refused)
    # The record id is the caller's own input (an export refusal repeats it, as it does for a deleted one).
    secrets = (world.y_record.s3_key, world.people["y_member"].repo.user_id, world.people["y_owner"].repo.user_id)
    for exc in refusals:
        assert isinstance(exc, PulseVaultError), exc
        assert not any(s in str(exc) for s in secrets), exc
    assert world.people["y_owner"].repo.get(world.y_record.id) == world.y_record
    assert _objects(store) == world.y_objects
