-- PulseVault: studies. A lab's recordings belong to a study its members share by role; every user's
-- personal space works exactly as before.
-- Apply after 004_usage_by_day.sql. Safe to run again: every statement is idempotent, and existing rows
-- migrate with no data change (study_id stays NULL: the uploader's personal space).
--
-- Roles, weakest first:
--   viewer  sees the study, its members and its recordings (play, download);
--   member  also uploads into it and edits the research fields of any of its recordings;
--   owner   also manages members and roles, deletes any of its recordings and the study itself.
-- A non-member sees nothing of a study, not even its name; a removed member loses access with the
-- statement that removes them (every policy asks study_members afresh).
--
-- Who may touch what is row-level security through one helper, public.is_member(study, min_role). It is
-- `security definer` so policies on study_members can ask study_members without recursing into their own
-- policy, and pins search_path so no caller's schema can stand in for public or auth.
--
-- The column-grant model of sql/003_trust.sql holds unchanged: a user's token edits research fields only;
-- facts and the row lifecycle (reserve, ready, failed, delete) are the server's, with the service role,
-- which row-level security does not limit, so the server checks membership itself (lib/studies.py, used by
-- ServerRecords), and the database refuses a study row whose uploader is not a member (trigger below).
--
-- Object keys carry the space: personal recordings keep recordings/<user id>/<yyyy>/<mm>/<record id>/<file>
-- (003); a study's are studies/<study id>/<yyyy>/<mm>/<record id>/<file>, checked against the row's
-- study_id, so a row can never point presigned URLs into another study or another user's space.

-- --- tables --------------------------------------------------------------------------

create table if not exists public.studies (
  id             uuid primary key default gen_random_uuid(),
  name           text not null check (length(btrim(name)) between 1 and 200),
  description    text not null default '' check (length(description) <= 5000),
  -- The account that created the study (its first owner); NULL once that account is gone. What anyone may
  -- do is study_members.role, never this column.
  owner          uuid references auth.users (id) on delete set null,
  retention_days integer check (retention_days is null or retention_days > 0),
  created_at     timestamptz not null default now()
);

create table if not exists public.study_members (
  study_id  uuid not null references public.studies (id) on delete cascade,
  user_id   uuid not null references auth.users (id) on delete cascade,
  role      text not null check (role in ('owner', 'member', 'viewer')),
  added_at  timestamptz not null default now(),
  primary key (study_id, user_id)
);

-- "My studies": a user's memberships.
create index if not exists study_members_user_idx on public.study_members (user_id);

-- A recording belongs to a study, or (NULL) to its uploader's personal space. A study that still holds
-- recordings cannot be deleted: their objects must leave the bucket first.
alter table public.user_files add column if not exists study_id uuid references public.studies (id) on delete restrict;
create index if not exists user_files_study_created_idx on public.user_files (study_id, created_at desc)
  where study_id is not null;

-- --- the helper ----------------------------------------------------------------------

create or replace function public.study_role_rank(role text) returns integer
language sql
immutable
parallel safe
set search_path = ''
as $$
  select array_position(array['viewer', 'member', 'owner'], role)
$$;

-- True when the caller (auth.uid()) holds min_role or a stronger one in the study.
create or replace function public.is_member(study uuid, min_role text) returns boolean
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  if public.study_role_rank(min_role) is null then
    raise exception 'is_member: unknown role %', min_role using errcode = '22023';
  end if;
  return exists (
    select 1 from public.study_members m
     where m.study_id = study and m.user_id = (select auth.uid())
       and public.study_role_rank(m.role) >= public.study_role_rank(min_role));
end
$$;

revoke execute on function public.is_member(uuid, text) from public, anon;
grant execute on function public.is_member(uuid, text) to authenticated, service_role;
revoke execute on function public.study_role_rank(text) from public, anon;
grant execute on function public.study_role_rank(text) to authenticated, service_role;

-- --- grants and policies: studies and members ----------------------------------------

revoke all on table public.studies, public.study_members from public, anon, authenticated;
grant all on table public.studies, public.study_members to service_role;
-- A study is created (with its owner's membership, in one step) and a member added (by e-mail, which a
-- user's token cannot look up) through the functions below; everything else is plain PostgREST under RLS.
grant select, delete on table public.studies to authenticated;
grant update (name, description, retention_days) on table public.studies to authenticated;
grant select, delete on table public.study_members to authenticated;
grant update (role) on table public.study_members to authenticated;

alter table public.studies enable row level security;
alter table public.study_members enable row level security;

drop policy if exists studies_select_member on public.studies;
create policy studies_select_member on public.studies
  for select to authenticated using (public.is_member(id, 'viewer'));

drop policy if exists studies_update_owner on public.studies;
create policy studies_update_owner on public.studies
  for update to authenticated using (public.is_member(id, 'owner')) with check (public.is_member(id, 'owner'));

drop policy if exists studies_delete_owner on public.studies;
create policy studies_delete_owner on public.studies
  for delete to authenticated using (public.is_member(id, 'owner'));

drop policy if exists study_members_select_member on public.study_members;
create policy study_members_select_member on public.study_members
  for select to authenticated using (public.is_member(study_id, 'viewer'));

drop policy if exists study_members_update_owner on public.study_members;
create policy study_members_update_owner on public.study_members
  for update to authenticated
  using (public.is_member(study_id, 'owner')) with check (public.is_member(study_id, 'owner'));

-- Owners remove anyone; anyone may leave.
drop policy if exists study_members_delete_owner_or_self on public.study_members;
create policy study_members_delete_owner_or_self on public.study_members
  for delete to authenticated
  using (public.is_member(study_id, 'owner') or user_id = (select auth.uid()));

-- A study always keeps an owner: the last one can be neither removed nor demoted (unless the study itself,
-- or the owner's account, is being deleted, which removes the membership by cascade).
create or replace function public.study_members_keep_an_owner() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if old.role <> 'owner' or (tg_op = 'UPDATE' and new.role = 'owner') then
    return coalesce(new, old);
  end if;
  if not exists (select 1 from public.studies s where s.id = old.study_id)
     or not exists (select 1 from auth.users u where u.id = old.user_id) then
    return coalesce(new, old);
  end if;
  if not exists (select 1 from public.study_members m
                  where m.study_id = old.study_id and m.role = 'owner' and m.user_id <> old.user_id) then
    raise exception 'a study needs an owner: make someone else owner first' using errcode = '23514',
      hint = 'last_owner';
  end if;
  return coalesce(new, old);
end
$$;

revoke execute on function public.study_members_keep_an_owner() from public, anon, authenticated;

drop trigger if exists study_members_keep_an_owner on public.study_members;
create trigger study_members_keep_an_owner
  before update of role or delete on public.study_members
  for each row execute function public.study_members_keep_an_owner();

-- Memberships never change hands or studies (the column grant allows role only; this holds for the server).
create or replace function public.study_members_identity_fixed() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.study_id is distinct from old.study_id or new.user_id is distinct from old.user_id then
    raise exception 'a membership cannot move to another study or user' using errcode = '42501';
  end if;
  new.added_at := old.added_at;
  return new;
end
$$;

revoke execute on function public.study_members_identity_fixed() from public, anon, authenticated;

drop trigger if exists study_members_identity_fixed on public.study_members;
create trigger study_members_identity_fixed
  before update on public.study_members
  for each row execute function public.study_members_identity_fixed();

-- --- functions a user's token calls -------------------------------------------------

-- A new study owned by the caller: the study and the owner's membership in one step.
create or replace function public.create_study(p_name text, p_description text default '')
returns public.studies
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  caller uuid := (select auth.uid());
  made public.studies;
begin
  if caller is null then
    raise exception 'sign in to create a study' using errcode = '42501';
  end if;
  insert into public.studies (name, description, owner)
  values (btrim(p_name), coalesce(p_description, ''), caller)
  returning * into made;
  insert into public.study_members (study_id, user_id, role) values (made.id, caller, 'owner');
  return made;
end
$$;

revoke execute on function public.create_study(text, text) from public, anon;
grant execute on function public.create_study(text, text) to authenticated;

-- An owner adds an existing account by its e-mail address. Refusals, by hint: 'not_owner' (42501),
-- 'no_account' (P0002: nobody has signed up with that address yet), 'already_member' (23505).
create or replace function public.add_study_member(p_study uuid, p_email text, p_role text)
returns public.study_members
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  invitee uuid;
  added public.study_members;
begin
  if not public.is_member(p_study, 'owner') then
    raise exception 'only a study''s owners add members' using errcode = '42501', hint = 'not_owner';
  end if;
  select u.id into invitee from auth.users u where lower(u.email) = lower(btrim(p_email));
  if invitee is null then
    raise exception 'no account has that e-mail address' using errcode = 'P0002', hint = 'no_account';
  end if;
  insert into public.study_members (study_id, user_id, role) values (p_study, invitee, p_role)
  on conflict (study_id, user_id) do nothing
  returning * into added;
  if added is null then
    raise exception 'already a member of this study' using errcode = '23505', hint = 'already_member';
  end if;
  return added;
end
$$;

revoke execute on function public.add_study_member(uuid, text, text) from public, anon;
grant execute on function public.add_study_member(uuid, text, text) to authenticated;

-- A study's members with their e-mail addresses (auth.users is not the caller's to read), for its members
-- only: anyone else gets no rows.
create or replace function public.study_member_list(p_study uuid)
returns table (user_id uuid, email text, role text, added_at timestamptz)
language sql
stable
security definer
set search_path = ''
as $$
  select m.user_id, u.email::text, m.role, m.added_at
    from public.study_members m join auth.users u on u.id = m.user_id
   where m.study_id = p_study and public.is_member(p_study, 'viewer')
   order by public.study_role_rank(m.role) desc, u.email
$$;

revoke execute on function public.study_member_list(uuid) from public, anon;
grant execute on function public.study_member_list(uuid) to authenticated, service_role;

-- --- recordings: who sees and edits which row ---------------------------------------

-- 001 let a user see and edit exactly their own rows; now a personal row is its uploader's and a study's
-- row its members'. A study row's uploader is no exception: removed from the study, they see it no more.
drop policy if exists user_files_select_own on public.user_files;
drop policy if exists user_files_select_own_or_study on public.user_files;
create policy user_files_select_own_or_study on public.user_files
  for select to authenticated
  using (case when study_id is null then (select auth.uid()) = user_id
              else public.is_member(study_id, 'viewer') end);

drop policy if exists user_files_update_own on public.user_files;
drop policy if exists user_files_update_own_or_study on public.user_files;
create policy user_files_update_own_or_study on public.user_files
  for update to authenticated
  using (case when study_id is null then (select auth.uid()) = user_id
              else public.is_member(study_id, 'member') end)
  with check (case when study_id is null then (select auth.uid()) = user_id
                   else public.is_member(study_id, 'member') end);

-- A study row is created only by a member (or owner) of the study, and never moves between spaces
-- (moving a recording must move its objects too; that is not built yet). Holds for the server's role too.
create or replace function public.user_files_study_rules() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if tg_op = 'UPDATE' then
    if new.study_id is distinct from old.study_id then
      raise exception 'a recording cannot move to another study or space' using errcode = '42501';
    end if;
    return new;
  end if;
  if new.study_id is not null and not exists (
      select 1 from public.study_members m
       where m.study_id = new.study_id and m.user_id = new.user_id
         and public.study_role_rank(m.role) >= public.study_role_rank('member')) then
    raise exception 'only a study''s members upload into it' using errcode = '42501', hint = 'not_member';
  end if;
  return new;
end
$$;

revoke execute on function public.user_files_study_rules() from public, anon, authenticated;

drop trigger if exists user_files_study_rules on public.user_files;
create trigger user_files_study_rules
  before insert or update of study_id on public.user_files
  for each row execute function public.user_files_study_rules();

-- --- object keys: the row's space ---------------------------------------------------

create or replace function public.user_files_key_ok(key text, owner uuid, study uuid, record uuid,
                                                    file_pattern text)
returns boolean
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case
    when study is null then public.user_files_key_ok(key, owner, record, file_pattern)
    else key ~ ('^studies/' || study::text || '/[0-9]{4}/(0[1-9]|1[0-2])/' || record::text || '/'
                || file_pattern || '$')
  end
$$;

-- 003's check knew only personal keys; this one is the same for personal rows and checks a study row's
-- keys against its study. Every existing row is personal, so it validates unchanged.
alter table public.user_files drop constraint if exists user_files_keys_canonical_owner;
alter table public.user_files drop constraint if exists user_files_keys_canonical_space;
alter table public.user_files add constraint user_files_keys_canonical_space check (
  public.user_files_key_ok(s3_key, user_id, study_id, id, 'original\.[a-z0-9]{1,10}')
  and (thumbnail_key is null or public.user_files_key_ok(thumbnail_key, user_id, study_id, id, 'thumb\.jpg'))
  and (preview_key is null or public.user_files_key_ok(preview_key, user_id, study_id, id, 'preview\.mp4'))
  and (ground_truth_key is null
       or public.user_files_key_ok(ground_truth_key, user_id, study_id, id,
                                   'ground_truth(_physio\.tsv\.gz|_physio\.tsv|\.csv|\.txt|\.json|\.xmp|\.h5|\.hdf5)'))
) not valid;

do $$
begin
  alter table public.user_files validate constraint user_files_keys_canonical_space;
exception when check_violation then
  raise warning 'user_files: some existing rows hold keys outside the app''s layout; they stay readable '
    'but cannot be changed until fixed. Find them with: select id, s3_key from public.user_files where not '
    '(public.user_files_key_ok(s3_key, user_id, study_id, id, ''original\.[a-z0-9]{1,10}''))';
end
$$;

-- --- the quota reservation knows the space ------------------------------------------
--
-- As in 003 (the quota stays the uploader's, whichever space the recording goes to), with study_id among
-- the columns the pending row is made with; the trigger above refuses a study the uploader may not upload to.

create or replace function public.reserve_upload(p_row jsonb, p_quota_bytes bigint)
returns public.user_files
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  wanted public.user_files;
  held bigint;
  pending bigint;
begin
  wanted := jsonb_populate_record(null::public.user_files, p_row);
  if wanted.id is null or wanted.user_id is null or wanted.size_bytes is null then
    raise exception 'reserve_upload needs the row''s id, user_id and size_bytes' using errcode = '22023';
  end if;
  perform pg_advisory_xact_lock(hashtextextended('pulsevault.quota/' || wanted.user_id::text, 0));
  select coalesce(sum(size_bytes + ground_truth_bytes), 0),
         coalesce(sum(size_bytes) filter (where status = 'pending'), 0)
    into held, pending
    from public.user_files
   where user_id = wanted.user_id and status in ('ready', 'pending');
  if held + wanted.size_bytes > p_quota_bytes then
    raise exception 'quota exceeded' using
      errcode = 'P0001',
      hint = 'quota_exceeded',
      detail = jsonb_build_object('held_bytes', held, 'pending_bytes', pending,
                                  'quota_bytes', p_quota_bytes)::text;
  end if;
  insert into public.user_files (
    id, user_id, study_id, bucket, s3_key, original_name, content_type, size_bytes, sha256, status,
    thumbnail_key, preview_key, duration_s, fps, width, height, frame_count, codec, lossless,
    browser_playable, bit_rate, subject_id, session_label, notes, tags)
  values (
    wanted.id, wanted.user_id, wanted.study_id, wanted.bucket, wanted.s3_key, wanted.original_name,
    wanted.content_type, wanted.size_bytes, wanted.sha256, 'pending', wanted.thumbnail_key, wanted.preview_key,
    wanted.duration_s, wanted.fps, wanted.width, wanted.height, wanted.frame_count, wanted.codec,
    wanted.lossless, wanted.browser_playable, wanted.bit_rate, coalesce(wanted.subject_id, ''),
    coalesce(wanted.session_label, ''), coalesce(wanted.notes, ''), coalesce(wanted.tags, '{}'))
  returning * into wanted;
  return wanted;
end
$$;

revoke execute on function public.reserve_upload(jsonb, bigint) from public, anon, authenticated;
grant execute on function public.reserve_upload(jsonb, bigint) to service_role;

-- --- usage stays the caller's own -----------------------------------------------------
--
-- user_files_usage relied on row-level security showing only the caller's rows; a member now also sees
-- the study's, so the view says whose it counts. (usage_summary, 004, already filters on auth.uid().)
create or replace view public.user_files_usage
with (security_invoker = true)
as
select user_id,
       count(*)::bigint                      as total_count,
       coalesce(sum(size_bytes + ground_truth_bytes), 0)::bigint  as total_bytes
from public.user_files
where status = 'ready' and user_id = (select auth.uid())
group by user_id;
