-- PulseVault: batch jobs over a study's recordings (lib/jobs), under the same
-- row-level security as the study.
-- Apply after 010_study_ops.sql. Safe to run again: every statement is idempotent.
--
-- A job with a study_id covers recordings of that study only (null: the
-- owner's personal space, as in 007_jobs.sql). Every member of the study,
-- viewers included, reads its jobs; a non-member reads nothing of them. Only
-- the server writes job rows (007's grants stand), and the database checks
-- again what lib/jobs checks first: the job's owner is a member or owner of
-- the study (a viewer may not start one: a re-analysis writes analyses) and
-- each of its recordings lies in the study.
--
-- The driver writes a study recording's analysis with set_study_analysis:
-- one statement that writes only while the job's owner still holds the
-- member role (or owner) in the study and the row is still the study's, so a
-- member removed (or made a viewer) mid-job gets nothing written.

alter table public.jobs add column if not exists study_id uuid references public.studies (id) on delete cascade;
alter table public.jobs add column if not exists owner_email text not null default '';

-- A third kind: regenerate each recording's preview and thumbnail (lib/jobs/derive.py).
alter table public.jobs drop constraint if exists jobs_kind_check;
alter table public.jobs add constraint jobs_kind_check check (kind in ('reanalyse', 'evaluate', 'rederive'));

create index if not exists jobs_study_created_idx on public.jobs (study_id, created_at desc)
  where study_id is not null;

-- True when p_user holds p_min_role or a stronger one in the study: 005's is_member for a named user rather than
-- the caller, for the server's checks on behalf of a job's owner (here) or a mover (012).
create or replace function public.holds_study_role(p_study uuid, p_user uuid, p_min_role text) returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (
    select 1 from public.study_members m
     where m.study_id = p_study and m.user_id = p_user
       and public.study_role_rank(m.role) >= public.study_role_rank(p_min_role))
$$;

revoke execute on function public.holds_study_role(uuid, uuid, text) from public, anon, authenticated;
grant execute on function public.holds_study_role(uuid, uuid, text) to service_role;

-- The one rule of who runs jobs over a study (lib.studies.Action.RUN_JOBS): its members and owners.
create or replace function public.may_run_study_jobs(p_study uuid, p_user uuid) returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select public.holds_study_role(p_study, p_user, 'member')
$$;

revoke execute on function public.may_run_study_jobs(uuid, uuid) from public, anon, authenticated;
grant execute on function public.may_run_study_jobs(uuid, uuid) to service_role;

create or replace function public.jobs_study_rules() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if tg_op = 'UPDATE' then
    if new.study_id is distinct from old.study_id then
      raise exception 'jobs.study_id cannot change' using errcode = '42501';
    end if;
    return new;
  end if;
  if new.study_id is null then
    return new;
  end if;
  if not public.may_run_study_jobs(new.study_id, new.user_id) then
    raise exception 'only a study''s members and owners start jobs over it' using errcode = '42501',
      hint = 'not_member';
  end if;
  if exists (
      select 1 from unnest(new.record_ids) as r(id)
       where not exists (select 1 from public.user_files f where f.id = r.id and f.study_id = new.study_id)) then
    raise exception 'a study''s job covers only the study''s recordings' using errcode = '42501',
      hint = 'outside_study';
  end if;
  return new;
end
$$;

revoke execute on function public.jobs_study_rules() from public, anon, authenticated;

drop trigger if exists jobs_study_rules on public.jobs;
create trigger jobs_study_rules
  before insert or update of study_id on public.jobs
  for each row execute function public.jobs_study_rules();

-- 007's policy read by owner only; a study's jobs are its members' to read.
drop policy if exists jobs_select_own on public.jobs;
drop policy if exists jobs_select_own_or_study on public.jobs;
create policy jobs_select_own_or_study on public.jobs
  for select to authenticated
  using (case when study_id is null then (select auth.uid()) = user_id
              else public.is_member(study_id, 'viewer') end);

-- A job's write into a study goes ahead only while its owner still holds the member role there.
create or replace function public.require_study_job_owner(p_study uuid, p_user uuid) returns void
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  if not public.may_run_study_jobs(p_study, p_user) then
    raise exception 'the job''s owner no longer holds the member role in this study' using errcode = '42501',
      hint = 'access_lost';
  end if;
end
$$;

revoke execute on function public.require_study_job_owner(uuid, uuid) from public, anon, authenticated;
grant execute on function public.require_study_job_owner(uuid, uuid) to service_role;

create or replace function public.set_study_analysis(p_record uuid, p_study uuid, p_user uuid, p_analysis jsonb)
returns setof public.user_files
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform public.require_study_job_owner(p_study, p_user);
  return query
    update public.user_files f set analysis = p_analysis
     where f.id = p_record and f.study_id = p_study and f.status = 'ready'
    returning f.*;
end
$$;

revoke execute on function public.set_study_analysis(uuid, uuid, uuid, jsonb) from public, anon, authenticated;
grant execute on function public.set_study_analysis(uuid, uuid, uuid, jsonb) to service_role;

-- The same for a regenerated preview and thumbnail: their keys (the key checks of 005 apply to them).
create or replace function public.set_study_derivatives(p_record uuid, p_study uuid, p_user uuid,
                                                        p_thumbnail_key text, p_preview_key text)
returns setof public.user_files
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform public.require_study_job_owner(p_study, p_user);
  return query
    update public.user_files f set thumbnail_key = p_thumbnail_key, preview_key = p_preview_key
     where f.id = p_record and f.study_id = p_study and f.status = 'ready'
    returning f.*;
end
$$;

revoke execute on function public.set_study_derivatives(uuid, uuid, uuid, text, text)
  from public, anon, authenticated;
grant execute on function public.set_study_derivatives(uuid, uuid, uuid, text, text) to service_role;
