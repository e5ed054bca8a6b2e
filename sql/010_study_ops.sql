-- PulseVault: running studies. Pending invitations for addresses with no account yet, a quota per study that
-- holds under concurrent uploads, usage per study and the administrators' overview of every study.
-- Apply after 005_studies.sql (and 007). Safe to run again: every statement is idempotent.

-- --- pending invitations ---------------------------------------------------------------
--
-- An owner invites an e-mail address. A confirmed account with that address joins at once; any other address
-- waits here until an account confirms it (sign-up with e-mail confirmation, or confirming a changed address),
-- and the trigger on auth.users below turns the invitation into a membership in that same statement. The
-- address is the one GoTrue confirmed (auth.users.email), never anything a user wrote (user_metadata).

create table if not exists public.study_invites (
  study_id    uuid not null references public.studies (id) on delete cascade,
  email       text not null check (email = lower(btrim(email)) and length(email) between 3 and 320),
  role        text not null check (role in ('owner', 'member', 'viewer')),
  invited_by  uuid references auth.users (id) on delete set null,
  invited_at  timestamptz not null default now(),
  primary key (study_id, email)
);

-- Claiming looks invitations up by address.
create index if not exists study_invites_email_idx on public.study_invites (email);

revoke all on table public.study_invites from public, anon, authenticated;
grant all on table public.study_invites to service_role;
-- Owners see and cancel their studies' invitations; they are made only through invite_study_member.
grant select, delete on table public.study_invites to authenticated;
alter table public.study_invites enable row level security;

drop policy if exists study_invites_select_owner on public.study_invites;
create policy study_invites_select_owner on public.study_invites
  for select to authenticated using (public.is_member(study_id, 'owner'));

drop policy if exists study_invites_delete_owner on public.study_invites;
create policy study_invites_delete_owner on public.study_invites
  for delete to authenticated using (public.is_member(study_id, 'owner'));

-- An owner adds someone by e-mail: 'joined' when a confirmed account has the address (through
-- add_study_member, 005, so its rules hold), 'invited' when the address waits for one. Refusals, by hint:
-- 'not_owner' (42501), 'already_member' and 'already_invited' (23505); a role that is none (23514).
create or replace function public.invite_study_member(p_study uuid, p_email text, p_role text)
returns text
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  address text := lower(btrim(p_email));
  inserted integer;
begin
  if not public.is_member(p_study, 'owner') then
    raise exception 'only a study''s owners add members' using errcode = '42501', hint = 'not_owner';
  end if;
  if exists (select 1 from auth.users u where lower(u.email) = address and u.email_confirmed_at is not null) then
    perform public.add_study_member(p_study, address, p_role);
    return 'joined';
  end if;
  insert into public.study_invites (study_id, email, role, invited_by)
  values (p_study, address, p_role, (select auth.uid()))
  on conflict (study_id, email) do nothing;
  get diagnostics inserted = row_count;
  if inserted = 0 then
    raise exception 'that address is invited already' using errcode = '23505', hint = 'already_invited';
  end if;
  return 'invited';
end
$$;

revoke execute on function public.invite_study_member(uuid, text, text) from public, anon;
grant execute on function public.invite_study_member(uuid, text, text) to authenticated;

-- An account whose address is (now) confirmed joins every study that invited the address, with the role it
-- was invited with (a membership it holds already stays as it is), and the invitations are used up.
create or replace function public.claim_study_invites() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into public.study_members (study_id, user_id, role)
  select i.study_id, new.id, i.role from public.study_invites i where i.email = lower(new.email)
  on conflict (study_id, user_id) do nothing;
  delete from public.study_invites i where i.email = lower(new.email);
  return null;
end
$$;

revoke execute on function public.claim_study_invites() from public, anon, authenticated;

drop trigger if exists claim_study_invites on auth.users;
create trigger claim_study_invites
  after insert or update of email, email_confirmed_at on auth.users
  for each row when (new.email_confirmed_at is not null and new.email is not null)
  execute function public.claim_study_invites();

-- --- the quota per study -----------------------------------------------------------------
--
-- A study holds at most p_study_quota_bytes (a server setting, like the personal quota), counted as the
-- personal one is (003): ready and pending rows, ground truth included. The same rule as reserve_upload's,
-- under a per-study advisory lock: two members uploading into one study at once run one after the other.
-- Locks are always taken study first, then user (inside reserve_upload), so no two reservations wait on each
-- other. The personal quota still applies (reserve_upload, which inserts the row). Refused with hint
-- 'study_quota_exceeded' and the figures in detail (JSON).

-- The study's quota, held for the rest of the transaction: takes the per-study lock, then refuses ``p_adding``
-- more bytes if the study's ready and pending rows (ground truth included) would exceed ``p_quota_bytes``.
-- The one home of the study quota rule: an upload's reservation (below) and a move into the study (012) call it.
create or replace function public.hold_study_quota(p_study uuid, p_adding bigint, p_quota_bytes bigint)
returns void
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  held bigint;
  pending bigint;
begin
  perform pg_advisory_xact_lock(hashtextextended('pulsevault.study_quota/' || p_study::text, 0));
  select coalesce(sum(size_bytes + ground_truth_bytes), 0),
         coalesce(sum(size_bytes) filter (where status = 'pending'), 0)
    into held, pending
    from public.user_files
   where study_id = p_study and status in ('ready', 'pending');
  if held + p_adding > p_quota_bytes then
    raise exception 'study quota exceeded' using
      errcode = 'P0001',
      hint = 'study_quota_exceeded',
      detail = jsonb_build_object('held_bytes', held, 'pending_bytes', pending, 'quota_bytes', p_quota_bytes)::text;
  end if;
end
$$;

revoke execute on function public.hold_study_quota(uuid, bigint, bigint) from public, anon, authenticated;
grant execute on function public.hold_study_quota(uuid, bigint, bigint) to service_role;

create or replace function public.reserve_upload_in_space(p_row jsonb, p_quota_bytes bigint,
                                                          p_study_quota_bytes bigint)
returns public.user_files
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  study uuid := (p_row ->> 'study_id')::uuid;
begin
  if study is not null then
    perform public.hold_study_quota(study, coalesce((p_row ->> 'size_bytes')::bigint, 0), p_study_quota_bytes);
  end if;
  return public.reserve_upload(p_row, p_quota_bytes);
end
$$;

revoke execute on function public.reserve_upload_in_space(jsonb, bigint, bigint) from public, anon, authenticated;
grant execute on function public.reserve_upload_in_space(jsonb, bigint, bigint) to service_role;

-- --- usage per study -----------------------------------------------------------------------
--
-- Bytes and ready recordings per study and uploader, for the studies the caller is a member of: security
-- invoker, so row-level security (005) decides which rows are counted; a non-member's study has none.
create or replace function public.study_usage()
returns table (study_id uuid, user_id uuid, bytes bigint, recordings bigint)
language sql
stable
security invoker
set search_path = ''
as $$
  select f.study_id, f.user_id, sum(f.size_bytes + f.ground_truth_bytes)::bigint, count(*)::bigint
    from public.user_files f
   where f.study_id is not null and f.status = 'ready'
   group by f.study_id, f.user_id
$$;

revoke execute on function public.study_usage() from public, anon;
grant execute on function public.study_usage() to authenticated;

-- --- the administrators' overview ---------------------------------------------------------
--
-- Every study with its first owner's address, members, bytes and ready recordings, for an administrator
-- (app_metadata.role = 'admin' in the caller's JWT: set by the server, never by the user) and nobody else.
create or replace function public.admin_study_overview()
returns table (study_id uuid, name text, owner_email text, members bigint, bytes bigint, recordings bigint,
               created_at timestamptz)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  if coalesce((select auth.jwt()) -> 'app_metadata' ->> 'role', '') <> 'admin' then
    raise exception 'only administrators see every study' using errcode = '42501', hint = 'not_admin';
  end if;
  return query
  select s.id, s.name, u.email::text,
         (select count(*) from public.study_members m where m.study_id = s.id),
         (select coalesce(sum(f.size_bytes + f.ground_truth_bytes), 0) from public.user_files f
           where f.study_id = s.id and f.status = 'ready')::bigint,
         (select count(*) from public.user_files f where f.study_id = s.id and f.status = 'ready'),
         s.created_at
    from public.studies s left join auth.users u on u.id = s.owner
   order by lower(s.name), s.id;
end
$$;

revoke execute on function public.admin_study_overview() from public, anon;
grant execute on function public.admin_study_overview() to authenticated;
