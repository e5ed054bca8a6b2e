-- PulseVault: facts only the server writes, keys only the app's layout allows,
-- and a quota that holds under concurrent uploads.
-- Apply after 002_usage.sql. Safe to run again: every statement is idempotent,
-- and it may be applied over an install made by any earlier version of sql/.
--
-- A row holds two kinds of columns.
--
-- * Facts: size, content type, checksum, status, error, object keys, video
--   properties, analysis results, the original name, timestamps. The server
--   decides from them: the quota sums size_bytes, presigned URLs are made for
--   the keys, the player is told what it plays. A user who could change them
--   could store more than their quota (size_bytes = 0), point a link at a key
--   that is not theirs, or mark a half-uploaded recording ready.
-- * Research fields: subject_id, session_label, notes, tags. They are the
--   researcher's own description of a recording and nothing the server
--   decides from.
--
-- A signed-in user's token (PostgREST as `authenticated`) may therefore SELECT
-- its own rows (001) and UPDATE only the research columns of its own rows:
-- column privileges say which columns, row-level security (001) says which
-- rows. It may not INSERT or DELETE: a row is created by the server's quota
-- reservation below, and deleting one is the server's job after the objects
-- are gone (a user deleting rows directly would hide their bytes from the
-- quota and from reconciliation).
--
-- Facts and the row lifecycle (reserve a pending row, mark it ready or failed,
-- analysis, keys, delete) are written by the app server with the project's
-- service_role key, which it holds like it holds the S3 secret key and never
-- hands to a browser. Every such write names the user id of the verified
-- session (lib/repository: ServerRecords); the reservation is a function only
-- the service role may execute.
--
-- Column privileges were chosen over `security definer` functions for the
-- user's own edits because they keep PostgREST's ordinary PATCH for research
-- fields and refuse everything else with the database's own error; over
-- computing quotas from the bucket because a bucket listing per upload is slow
-- and cannot see a reservation before its bytes arrive.

-- --- who may change what ----------------------------------------------------

revoke insert, update, delete on table public.user_files from authenticated;
grant update (subject_id, session_label, notes, tags) on table public.user_files to authenticated;

-- Installs made before this file had these two policies; without the grants
-- they are dead, and dropping them keeps the intent readable.
drop policy if exists user_files_insert_own on public.user_files;
drop policy if exists user_files_delete_own on public.user_files;

-- --- object keys: exactly the app's layout ------------------------------------
--
-- lib/keys.py makes every key as
--   recordings/<user id>/<yyyy>/<mm>/<record id>/<file>
-- with <file> one of original.<ext>, thumb.jpg, preview.mp4,
-- ground_truth<ending> (the format endings of lib/keys.py GROUND_TRUTH_SUFFIXES:
-- .csv, .txt, .json, .xmp, .h5, .hdf5, _physio.tsv, _physio.tsv.gz; a BIDS
-- table's _physio.json sidecar lies beside it and is named by no column).
-- The check matches that and nothing else: the first
-- uuid is the row's owner and the folder is the row's own id, so a row can
-- never point presigned URLs at another user's or another record's objects,
-- and `..`, `//` or any other spelling of a path is refused. (A prefix check
-- alone accepts recordings/<B>/../<A>/..., which S3 treats as a plain name but
-- other tools normalise.)

create or replace function public.user_files_key_ok(key text, owner uuid, record uuid, file_pattern text)
returns boolean
language sql
immutable
parallel safe
set search_path = ''
as $$
  select key ~ ('^recordings/' || owner::text || '/[0-9]{4}/(0[1-9]|1[0-2])/' || record::text || '/'
                || file_pattern || '$')
$$;

-- The earlier prefix-only checks, replaced by the one below.
alter table public.user_files drop constraint if exists user_files_s3_key_owner;
alter table public.user_files drop constraint if exists user_files_derived_keys_owner;

alter table public.user_files drop constraint if exists user_files_keys_canonical_owner;
alter table public.user_files add constraint user_files_keys_canonical_owner check (
  public.user_files_key_ok(s3_key, user_id, id, 'original\.[a-z0-9]{1,10}')
  and (thumbnail_key is null or public.user_files_key_ok(thumbnail_key, user_id, id, 'thumb\.jpg'))
  and (preview_key is null or public.user_files_key_ok(preview_key, user_id, id, 'preview\.mp4'))
  and (ground_truth_key is null
       or public.user_files_key_ok(ground_truth_key, user_id, id,
                                   'ground_truth(_physio\.tsv\.gz|_physio\.tsv|\.csv|\.txt|\.json|\.xmp|\.h5|\.hdf5)'))
) not valid;

-- New and changed rows are checked from now on. Existing rows are checked
-- too; if some predate the layout the migration still completes (and says
-- how to find them) rather than leaving the install half-migrated.
do $$
begin
  alter table public.user_files validate constraint user_files_keys_canonical_owner;
exception when check_violation then
  raise warning 'user_files: some existing rows hold keys outside the app''s layout; they stay readable '
    'but cannot be changed until fixed. Find them with: select id, s3_key from public.user_files where not '
    '(public.user_files_key_ok(s3_key, user_id, id, ''original\.[a-z0-9]{1,10}''))';
end
$$;

-- --- the quota: reservations -----------------------------------------------------
--
-- A recording counts against its owner's quota from the moment its row is
-- reserved (status pending, with the size the upload declared) until the row
-- is deleted: ready and pending rows both hold bytes; failed rows have had
-- their objects removed. A browser upload reserves before any part URL is
-- signed, and every part URL signs its exact length, so an unfinished upload
-- can never hold more than it reserved.
--
-- reserve_upload takes a per-user advisory lock for the rest of the
-- transaction, sums what the user holds and inserts the pending row only if
-- the new size fits: two concurrent reservations of the same user run one
-- after the other, and the second sees the first. The quota is passed in by
-- the server, which reads it from its settings. On refusal it raises P0001
-- with hint 'quota_exceeded' and the figures in detail (JSON), which the app
-- turns into a message.

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
  -- A recording's ground-truth file counts too (ground_truth_bytes, 001), as it does in usage (002).
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
    id, user_id, bucket, s3_key, original_name, content_type, size_bytes, sha256, status,
    thumbnail_key, preview_key, duration_s, fps, width, height, frame_count, codec, lossless,
    browser_playable, bit_rate, subject_id, session_label, notes, tags)
  values (
    wanted.id, wanted.user_id, wanted.bucket, wanted.s3_key, wanted.original_name, wanted.content_type,
    wanted.size_bytes, wanted.sha256, 'pending', wanted.thumbnail_key, wanted.preview_key,
    wanted.duration_s, wanted.fps, wanted.width, wanted.height, wanted.frame_count, wanted.codec,
    wanted.lossless, wanted.browser_playable, wanted.bit_rate, coalesce(wanted.subject_id, ''),
    coalesce(wanted.session_label, ''), coalesce(wanted.notes, ''), coalesce(wanted.tags, '{}'))
  returning * into wanted;
  return wanted;
end
$$;

revoke execute on function public.reserve_upload(jsonb, bigint) from public, anon, authenticated;
grant execute on function public.reserve_upload(jsonb, bigint) to service_role;

-- A reservation never grows: whatever the server later learns about a
-- recording, its row cannot come to hold more bytes than the quota check let
-- it reserve. (The server verifies the stored size equals the reserved one.)
create or replace function public.user_files_reservation_holds() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.size_bytes > old.size_bytes then
    raise exception 'a recording cannot hold more bytes than it reserved' using errcode = '23514';
  end if;
  return new;
end
$$;

revoke execute on function public.user_files_reservation_holds() from public, anon, authenticated;

drop trigger if exists user_files_reservation_holds on public.user_files;
create trigger user_files_reservation_holds
  before update of size_bytes on public.user_files
  for each row execute function public.user_files_reservation_holds();
