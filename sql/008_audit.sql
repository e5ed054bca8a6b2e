-- PulseVault: the audit trail. Who did what to which recording or study, when, and from which client address.
-- Apply after 007_jobs.sql. Safe to run again: every statement is idempotent.
--
-- Append-only. Nobody changes or removes an entry, a study's owner included:
--   * no role is granted update, delete or truncate (the service role neither): the grants are the first wall;
--   * a trigger refuses every update, delete and truncate, whoever asks: the second wall. Only the database's
--     owner (a superuser, outside the app) could drop it; that is outside what an API key can reach.
-- Entries are written by the server only (the service role), so a user's token cannot forge one: the actor is
-- the verified session's user, the time is the database's (a trigger sets it), the address the one the app saw.
--
-- Who reads what (row-level security):
--   * a study's owners read every entry of their study;
--   * a user reads the entries about their own personal-space recordings (study_id NULL: in a personal space
--     only its user acts, so those are the entries they wrote);
--   * nobody else reads anything: a member or viewer of a study does not read its trail.
--
-- The trail outlives what it is about: no foreign keys. A deleted recording, a removed member, a deleted study or
-- account keeps its history (a cascade would delete or change entries, which the trigger refuses). The
-- recording's subject id is kept as it was when the entry was written, so "who has seen subject 12's
-- recordings" is one filter even after a recording is gone.

create table if not exists public.audit_log (
  id             bigint generated always as identity primary key,
  at             timestamptz not null default now(),
  actor_id       uuid not null,
  actor_email    text not null default '',
  study_id       uuid,
  record_id      uuid,
  subject_id     text not null default '',
  action         text not null check (action in ('view', 'download', 'share', 'edit_research', 'upload',
                                                 'reanalyse', 'delete', 'export', 'member_add',
                                                 'member_remove', 'member_role', 'erase')),
  detail         jsonb not null default '{}'::jsonb check (jsonb_typeof(detail) = 'object'),
  client_address text not null default ''
);

-- A study's trail, newest first; a user's personal trail, newest first.
create index if not exists audit_log_study_at_idx on public.audit_log (study_id, at desc) where study_id is not null;
create index if not exists audit_log_personal_at_idx on public.audit_log (actor_id, at desc) where study_id is null;

-- --- grants: read under RLS, insert by the server only --------------------------------------------------

revoke all on table public.audit_log from public, anon, authenticated, service_role;
grant select on table public.audit_log to authenticated;
-- The server names every column but the id and the time (both the database's).
grant select on table public.audit_log to service_role;
grant insert (actor_id, actor_email, study_id, record_id, subject_id, action, detail, client_address)
  on table public.audit_log to service_role;

do $$
declare
  seq text := pg_get_serial_sequence('public.audit_log', 'id');
begin
  execute format('revoke all on sequence %s from public, anon, authenticated, service_role', seq);
end
$$;

alter table public.audit_log enable row level security;

drop policy if exists audit_log_select_owner_or_own on public.audit_log;
create policy audit_log_select_owner_or_own on public.audit_log
  for select to authenticated
  using (case when study_id is null then actor_id = (select auth.uid())
              else public.is_member(study_id, 'owner') end);

-- --- the second wall: entries never change, never go ------------------------------------------------------

create or replace function public.audit_log_append_only() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  raise exception 'the audit trail is append-only: its entries are never changed or deleted'
    using errcode = '42501', hint = 'append_only';
end
$$;

revoke execute on function public.audit_log_append_only() from public, anon, authenticated, service_role;

drop trigger if exists audit_log_append_only on public.audit_log;
create trigger audit_log_append_only
  before update or delete on public.audit_log
  for each row execute function public.audit_log_append_only();

drop trigger if exists audit_log_no_truncate on public.audit_log;
create trigger audit_log_no_truncate
  before truncate on public.audit_log
  for each statement execute function public.audit_log_append_only();

-- The time of an entry is the database's, never what the writer claims.
create or replace function public.audit_log_stamp() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.at := now();
  return new;
end
$$;

revoke execute on function public.audit_log_stamp() from public, anon, authenticated, service_role;

drop trigger if exists audit_log_stamp on public.audit_log;
create trigger audit_log_stamp
  before insert on public.audit_log
  for each row execute function public.audit_log_stamp();
