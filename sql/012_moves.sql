-- PulseVault: moving a recording between spaces (a study, or its uploader's personal space), and the audit
-- trail's actions for it, for a study's deletion, for a consent change and for a batch job's regenerated previews.
-- Apply after 011_study_jobs.sql (it needs 005 and 008 to 011). Safe to run again: every statement is idempotent.
--
-- A move is the server's (lib/moves.py): it copies every object of the recording to the keys of the new space,
-- checks the copies, then switches the row with move_recording() below, and only then deletes the old objects.
-- The row keeps its id, so its audit history stays with it. Who moves: someone who owns both spaces: in a study
-- an owner; a personal space is its uploader's alone (so only the uploader moves a recording into or out of it).
-- The user's token cannot change study_id or any key (003's column grants); the trigger of 005, redefined here,
-- still refuses any change of space except the one move_recording() makes, for the server's role too.

-- --- the audit trail knows the new actions --------------------------------------------------
--
-- 'move': a recording moved between spaces (an entry in each space's trail, detail from/to);
-- 'study_delete': a study was deleted (its entries stay: audit_log has no foreign keys, 008);
-- 'consent': a recording's consent state or date changed (before and after in the detail);
-- 'rederive': a batch job (011) is about to make a recording's preview and thumbnail again.
-- The one list of actions after 008 (lib.audit.AuditAction names the same): one place, so running the files
-- again in name order never meets a row a narrower list would refuse.
alter table public.audit_log drop constraint if exists audit_log_action_check;
alter table public.audit_log add constraint audit_log_action_check
  check (action in ('view', 'download', 'share', 'edit_research', 'upload', 'reanalyse', 'delete', 'export',
                    'member_add', 'member_remove', 'member_role', 'erase', 'move', 'study_delete',
                    'consent', 'rederive'));

-- --- a row changes space only through move_recording() ------------------------------------

create or replace function public.user_files_study_rules() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if tg_op = 'UPDATE' then
    if new.study_id is distinct from old.study_id
       and coalesce(current_setting('pulsevault.moving_record', true), '') <> old.id::text then
      raise exception 'a recording moves to another study or space only with its objects (move_recording)'
        using errcode = '42501';
    end if;
    return new;
  end if;
  if new.study_id is not null and not public.holds_study_role(new.study_id, new.user_id, 'member') then
    raise exception 'only a study''s members upload into it' using errcode = '42501', hint = 'not_member';
  end if;
  return new;
end
$$;

revoke execute on function public.user_files_study_rules() from public, anon, authenticated;

-- True when p_user owns the space: a study's owner, or (p_study NULL) the uploader of a personal recording.
create or replace function public.owns_space(p_study uuid, p_user uuid, p_uploader uuid) returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select case when p_study is null then p_user = p_uploader
              else public.holds_study_role(p_study, p_user, 'owner') end
$$;

revoke execute on function public.owns_space(uuid, uuid, uuid) from public, anon, authenticated;
grant execute on function public.owns_space(uuid, uuid, uuid) to service_role;

-- The switch: the row's space and every key in one statement, after the server copied and checked the objects.
-- p_keys holds the new s3_key, thumbnail_key, preview_key and ground_truth_key (the key layout check of 005
-- refuses any that does not lie in the new space). A study target must fit its quota (010's hold_study_quota,
-- under the uploads' per-study lock; the personal quota counts by uploader, which a move does not change).
-- Refusals, by hint:
-- 'not_found' (P0002), 'same_space' (22023), 'not_ready' (55000: pending, failed or withdrawn),
-- 'not_allowed' (42501: the mover does not own both spaces), 'study_quota_exceeded' (P0001, figures in detail).
create or replace function public.move_recording(p_record uuid, p_mover uuid, p_study uuid, p_keys jsonb,
                                                 p_study_quota_bytes bigint)
returns public.user_files
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  found public.user_files;
begin
  select * into found from public.user_files where id = p_record for update;
  if found.id is null then
    raise exception 'no such recording' using errcode = 'P0002', hint = 'not_found';
  end if;
  if found.study_id is not distinct from p_study then
    raise exception 'the recording is in that space already' using errcode = '22023', hint = 'same_space';
  end if;
  if found.status <> 'ready' or found.consent = 'withdrawn' then
    raise exception 'only a stored recording moves' using errcode = '55000', hint = 'not_ready';
  end if;
  if not (public.owns_space(found.study_id, p_mover, found.user_id)
          and public.owns_space(p_study, p_mover, found.user_id)) then
    raise exception 'only someone who owns both spaces moves a recording' using errcode = '42501',
      hint = 'not_allowed';
  end if;
  if p_study is not null then
    perform public.hold_study_quota(p_study, found.size_bytes + found.ground_truth_bytes, p_study_quota_bytes);
  end if;
  perform set_config('pulsevault.moving_record', p_record::text, true);
  update public.user_files
     set study_id = p_study, s3_key = p_keys ->> 's3_key', thumbnail_key = p_keys ->> 'thumbnail_key',
         preview_key = p_keys ->> 'preview_key', ground_truth_key = p_keys ->> 'ground_truth_key'
   where id = p_record
  returning * into found;
  perform set_config('pulsevault.moving_record', '', true);
  return found;
end
$$;

revoke execute on function public.move_recording(uuid, uuid, uuid, jsonb, bigint) from public, anon, authenticated;
grant execute on function public.move_recording(uuid, uuid, uuid, jsonb, bigint) to service_role;
