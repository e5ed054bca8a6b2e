-- PulseVault: consent and retention. Each recording is held under a consent state; withdrawing it (or a
-- study's retention period running out) erases it and leaves a tombstone that holds no personal data.
-- Apply after 005_studies.sql (it needs is_member). Safe to run again: every statement is idempotent.
--
-- Consent states:
--   internal   the participants agreed to the lab's own use only: no share link beyond the study's members;
--   shareable  they also agreed to sharing with collaborators: share links may be made;
--   withdrawn  they withdrew: the recording is being erased (a row in this state exists only until its
--              erasure finishes; it is never played, shared or shown as ready again, and never leaves it).
-- Existing rows and new uploads start as 'internal': nobody recorded that participants agreed to sharing, so
-- the safe reading is the lab's own use. (The upload page's "consent on file" box, settings.require_consent,
-- gates storing at all; sharing needs this column to say so.)
--
-- consent_date is the date of the consent the recording is held under (the signed form's date), set with the
-- state; NULL until someone records it.
--
-- Who changes consent: the recording's uploader (while still allowed to upload to its study) or an owner of
-- its study; in a personal space its uploader. That is narrower than the research fields (any member edits
-- those), so consent is not among 003's column grants: a user's token changes it only through set_consent()
-- below, which checks exactly that, and can never set 'withdrawn' (withdrawal is the server's erasure, which
-- must empty the bucket first). The server (service role) marks a row withdrawn as the erasure's first step.
--
-- Tombstones: one row per erased recording (id, study, subject id, why, when, by whom): the answer to an ethics
-- board's "show that the withdrawn subject's data is gone" after the data itself is. A study's tombstones are
-- read by its owners; a personal space's by its owner (who alone erases there). Nobody changes or deletes one;
-- the server writes them only through erase_recording(), in the same transaction that deletes the row.

-- --- consent on every recording --------------------------------------------------------

alter table public.user_files add column if not exists consent text not null default 'internal';
alter table public.user_files add column if not exists consent_date date;

alter table public.user_files drop constraint if exists user_files_consent_known;
alter table public.user_files add constraint user_files_consent_known
  check (consent in ('internal', 'shareable', 'withdrawn'));

-- Withdrawal is final, for every role: a row marked withdrawn is being erased and can only be erased.
create or replace function public.user_files_withdrawal_final() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if old.consent = 'withdrawn' and new.consent <> 'withdrawn' then
    raise exception 'a withdrawn recording stays withdrawn until it is erased' using errcode = '42501',
      hint = 'withdrawn';
  end if;
  return new;
end
$$;

revoke execute on function public.user_files_withdrawal_final() from public, anon, authenticated;

drop trigger if exists user_files_withdrawal_final on public.user_files;
create trigger user_files_withdrawal_final
  before update of consent on public.user_files
  for each row execute function public.user_files_withdrawal_final();

-- True when the caller (auth.uid()) may change the consent of, or withdraw, the recording: its uploader in a
-- personal space; in a study an owner, or the uploader while a member (lib/studies.py may_delete: the same rule).
create or replace function public.may_manage_consent(uploader uuid, study uuid) returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select case when study is null then uploader = (select auth.uid())
              else public.is_member(study, 'owner')
                   or (uploader = (select auth.uid()) and public.is_member(study, 'member')) end
$$;

revoke execute on function public.may_manage_consent(uuid, uuid) from public, anon;
grant execute on function public.may_manage_consent(uuid, uuid) to authenticated, service_role;

-- The caller sets a recording's consent state (internal or shareable) and its date. Refusals, by hint:
-- 'not_found' (P0002: no such row the caller sees), 'not_allowed' (42501: they see it but may not change its
-- consent), 'withdrawn' (42501, from the trigger), 'bad_state' (22023: anything but internal/shareable).
create or replace function public.set_consent(p_record uuid, p_consent text, p_consent_date date default null)
returns public.user_files
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  found public.user_files;
begin
  if p_consent is null or p_consent not in ('internal', 'shareable') then
    raise exception 'consent is internal or shareable; withdrawing erases the recording' using errcode = '22023',
      hint = 'bad_state';
  end if;
  select * into found from public.user_files f
   where f.id = p_record
     and case when f.study_id is null then f.user_id = (select auth.uid())
              else public.is_member(f.study_id, 'viewer') end;
  if found.id is null then
    raise exception 'no such recording' using errcode = 'P0002', hint = 'not_found';
  end if;
  if not public.may_manage_consent(found.user_id, found.study_id) then
    raise exception 'only the uploader or a study owner changes consent' using errcode = '42501',
      hint = 'not_allowed';
  end if;
  update public.user_files set consent = p_consent, consent_date = p_consent_date
   where id = p_record
  returning * into found;
  return found;
end
$$;

revoke execute on function public.set_consent(uuid, text, date) from public, anon;
grant execute on function public.set_consent(uuid, text, date) to authenticated;

-- --- tombstones ---------------------------------------------------------------------------
--
-- No foreign keys: a tombstone outlives its study and the accounts it names (it is the evidence that the data
-- is gone), and holds ids only (the subject id is the lab's pseudonymous code, never a name).

create table if not exists public.recording_tombstones (
  id          uuid primary key,
  study_id    uuid,
  subject_id  text not null default '',
  reason      text not null check (reason in ('withdrawn', 'retention')),
  erased_at   timestamptz not null default now(),
  erased_by   uuid not null
);

create index if not exists recording_tombstones_study_idx on public.recording_tombstones (study_id, erased_at desc);

revoke all on table public.recording_tombstones from public, anon, authenticated;
grant select on table public.recording_tombstones to authenticated;
grant select, insert on table public.recording_tombstones to service_role;

alter table public.recording_tombstones enable row level security;

drop policy if exists recording_tombstones_select_owner on public.recording_tombstones;
create policy recording_tombstones_select_owner on public.recording_tombstones
  for select to authenticated
  using (case when study_id is null then erased_by = (select auth.uid())
              else public.is_member(study_id, 'owner') end);

-- Append-only, the service role included (grants are the first wall, this the second).
create or replace function public.recording_tombstones_fixed() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  raise exception 'a tombstone is never changed or removed' using errcode = '42501';
end
$$;

revoke execute on function public.recording_tombstones_fixed() from public, anon, authenticated;

drop trigger if exists recording_tombstones_fixed on public.recording_tombstones;
create trigger recording_tombstones_fixed
  before update or delete on public.recording_tombstones
  for each row execute function public.recording_tombstones_fixed();

-- --- erasure: the row goes and its tombstone comes, in one step ----------------------------
--
-- The server calls this after it has removed the recording's objects and checked the bucket holds nothing
-- under its prefix (lib/consent.py). It refuses a row that was not first marked withdrawn (so the objects are
-- always removed before the row, never after) and an eraser who may not erase it (a second wall behind the
-- server's own check). Refusals, by hint: 'not_found' (P0002), 'not_marked' (55000), 'not_allowed' (42501).
create or replace function public.erase_recording(p_record uuid, p_erased_by uuid, p_reason text)
returns public.recording_tombstones
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  found public.user_files;
  allowed boolean;
  stone public.recording_tombstones;
begin
  select * into found from public.user_files where id = p_record for update;
  if found.id is null then
    raise exception 'no such recording' using errcode = 'P0002', hint = 'not_found';
  end if;
  if found.consent <> 'withdrawn' then
    raise exception 'mark the recording withdrawn (and empty its objects) before erasing it' using
      errcode = '55000', hint = 'not_marked';
  end if;
  allowed := case when found.study_id is null then found.user_id = p_erased_by
                  else exists (select 1 from public.study_members m
                                where m.study_id = found.study_id and m.user_id = p_erased_by
                                  and (m.role = 'owner' or (m.role = 'member' and found.user_id = p_erased_by))) end;
  if not allowed then
    raise exception 'only the uploader or a study owner erases a recording' using errcode = '42501',
      hint = 'not_allowed';
  end if;
  insert into public.recording_tombstones (id, study_id, subject_id, reason, erased_by)
  values (found.id, found.study_id, found.subject_id, p_reason, p_erased_by)
  returning * into stone;
  delete from public.user_files where id = found.id;
  return stone;
end
$$;

revoke execute on function public.erase_recording(uuid, uuid, text) from public, anon, authenticated;
grant execute on function public.erase_recording(uuid, uuid, text) to service_role;
