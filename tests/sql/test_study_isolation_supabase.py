"""Studies are walled from each other in the cloud: the isolation scenario of tests/support/study_isolation.py on
the cloud stores (each user's JWT, so row-level security decides; the server's records with the service role)
over the Supabase stand-in and a real PostgreSQL with sql/ applied."""

from __future__ import annotations

from moto import mock_aws

from lib.jobs.store import SupabaseJobs
from lib.storage import ObjectStore
from tests.support.records import supabase_rows
from tests.support.study_isolation import check_no_way_from_x_into_y, two_studies
from tests.support.unit_world import BUCKET, S3, SETTINGS

PEOPLE = ("x_owner", "x_member", "y_owner", "y_member")


def test_a_member_of_one_study_reaches_nothing_of_another(supabase_standin) -> None:
    people = {name: supabase_rows(supabase_standin, name.replace("_", "-")) for name in PEOPLE}
    emails = {name: f"{name.replace('_', '-')}@lab.test" for name in PEOPLE}
    member = people["x_member"]
    jobs = SupabaseJobs(member.repo._client, member.server._client, member.repo.user_id)
    with mock_aws():
        store = ObjectStore(S3, settings=SETTINGS)
        store._client.create_bucket(Bucket=BUCKET)
        check_no_way_from_x_into_y(two_studies(store, people, emails), store, jobs)
