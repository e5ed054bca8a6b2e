-- PulseVault: batch jobs (re-analyse, evaluate against ground truth) over a
-- user's recordings, run on Ray by a driver process (lib/jobs).
-- Apply after 003_trust.sql. Safe to run again: every statement is idempotent.
--
-- A job row is a fact in the sense of sql/003_trust.sql: the server decides
-- from it (which recordings a driver signs links for and writes results to,
-- whether a job still runs, what the Jobs page reports), so only the server
-- writes it, with the service role and naming the owner's user id in every
-- statement (lib/jobs/store.py). A signed-in user's token may read their own
-- jobs (row-level security by owner) and nothing else: starting and
-- cancelling a job are requests to the app server, which checks the session
-- first. A user who could write a job row could point a driver at another
-- user's record ids or mark unfinished work finished.
--
-- results holds one entry per recording the driver has finished with:
--   {"<record id>": {"status": "done|skipped|failed|deleted|cancelled",
--                    "attempts": n, "message": "...", "digest": "...",
--                    "hr_bpm": 71.9, "finished_at": "..."}}
-- where digest is the SHA-256 of the analysis the job wrote, so a later job
-- with the same parameters (fingerprint) skips a recording whose saved
-- analysis is still exactly that one.

create table if not exists public.jobs (
  id              uuid primary key default gen_random_uuid(),
  user_id         uuid not null references auth.users (id) on delete cascade,
  kind            text not null check (kind in ('reanalyse', 'evaluate')),
  parameters      jsonb not null default '{}',
  fingerprint     text not null,
  record_ids      uuid[] not null check (cardinality(record_ids) > 0),
  status          text not null default 'queued'
                  check (status in ('queued', 'running', 'cancelling', 'cancelled', 'finished', 'failed')),
  error           text,
  results         jsonb not null default '{}',
  done_count      integer not null default 0 check (done_count >= 0),
  failed_count    integer not null default 0 check (failed_count >= 0),
  skipped_count   integer not null default 0 check (skipped_count >= 0),
  summary         jsonb,
  driver_attempts integer not null default 0 check (driver_attempts >= 0),
  created_at      timestamptz not null default now(),
  started_at      timestamptz,
  finished_at     timestamptz,
  heartbeat_at    timestamptz,
  updated_at      timestamptz not null default now()
);

create index if not exists jobs_user_created_idx on public.jobs (user_id, created_at desc);
-- A driver looks for work it may take over: unfinished jobs, oldest first.
create index if not exists jobs_unfinished_idx on public.jobs (created_at)
  where status in ('queued', 'running', 'cancelling');

-- As for user_files: the owner and the identity never change, updated_at is the database's clock.
create or replace function public.jobs_before_update() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.user_id is distinct from old.user_id then
    raise exception 'jobs.user_id cannot change' using errcode = '42501';
  end if;
  new.id := old.id;
  new.created_at := old.created_at;
  new.updated_at := now();
  return new;
end
$$;

revoke execute on function public.jobs_before_update() from public, anon, authenticated;

drop trigger if exists jobs_before_update on public.jobs;
create trigger jobs_before_update
  before update on public.jobs
  for each row execute function public.jobs_before_update();

revoke all on table public.jobs from public, anon, authenticated;
grant select on table public.jobs to authenticated;
grant all on table public.jobs to service_role;

alter table public.jobs enable row level security;

drop policy if exists jobs_select_own on public.jobs;
create policy jobs_select_own on public.jobs
  for select to authenticated
  using ((select auth.uid()) = user_id);
