-- PulseVault: one row per recording stored in S3.
-- Apply in the Supabase SQL editor (or `psql "$DATABASE_URL" -f sql/001_user_files.sql`).
-- Safe to run again: every statement is idempotent.
--
-- Who may touch a row is decided here, by row-level security on the caller's
-- JWT (`auth.uid()`), not by the app: a bug in the app cannot show or change
-- another researcher's recordings. What a user may change of their own rows,
-- and what only the server writes, is sql/003_trust.sql.

create table if not exists public.user_files (
  id               uuid primary key default gen_random_uuid(),
  user_id          uuid not null default auth.uid() references auth.users (id) on delete cascade,
  bucket           text not null,
  s3_key           text not null unique,
  original_name    text not null,
  content_type     text not null,
  size_bytes       bigint not null default 0 check (size_bytes >= 0),
  sha256           text,
  status           text not null default 'pending' check (status in ('pending', 'ready', 'failed')),
  error            text,
  thumbnail_key    text,
  preview_key      text,
  ground_truth_key text,
  ground_truth_name text,
  ground_truth_bytes bigint not null default 0 check (ground_truth_bytes >= 0),
  -- video properties (null until probed)
  duration_s       double precision check (duration_s is null or duration_s >= 0),
  fps              double precision check (fps is null or fps >= 0),
  width            integer check (width is null or width >= 0),
  height           integer check (height is null or height >= 0),
  frame_count      bigint check (frame_count is null or frame_count >= 0),
  codec            text,
  lossless         boolean,
  browser_playable boolean,
  bit_rate         bigint,
  -- research fields
  subject_id       text not null default '',
  session_label    text not null default '',
  notes            text not null default '',
  tags             text[] not null default '{}',
  -- quick-look analysis results (a fact, like everything above the research fields)
  analysis         jsonb,
  created_at       timestamptz not null default now(),
  updated_at       timestamptz not null default now()
  -- Which object keys a row may hold (exactly the app's layout, under the
  -- owner's prefix) is checked by sql/003_trust.sql.
);

-- Columns added since the first release: a database made by it gains them here.
alter table public.user_files add column if not exists ground_truth_name text;
alter table public.user_files add column if not exists ground_truth_bytes bigint not null default 0
  check (ground_truth_bytes >= 0);

-- Listing a user's files newest first, and the duplicate check by checksum.
create index if not exists user_files_user_created_idx on public.user_files (user_id, created_at desc);
create index if not exists user_files_user_sha256_idx on public.user_files (user_id, sha256)
  where sha256 is not null;
create index if not exists user_files_tags_idx on public.user_files using gin (tags);

-- updated_at is the database's clock, and identity columns never change: a
-- row cannot be handed to another user even by a caller who passes RLS.
create or replace function public.user_files_before_update() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.user_id is distinct from old.user_id then
    raise exception 'user_files.user_id cannot change' using errcode = '42501';
  end if;
  new.id := old.id;
  new.created_at := old.created_at;
  new.updated_at := now();
  return new;
end
$$;

revoke execute on function public.user_files_before_update() from public, anon, authenticated;

drop trigger if exists user_files_before_update on public.user_files;
create trigger user_files_before_update
  before update on public.user_files
  for each row execute function public.user_files_before_update();

-- Grants: nothing for anon; signed-in users read their own rows (RLS below)
-- and may change only their research fields, which sql/003_trust.sql grants
-- column by column with the reasoning; every other write is the server's,
-- through the service role.
revoke all on table public.user_files from public, anon, authenticated;
grant select on table public.user_files to authenticated;
grant all on table public.user_files to service_role;

alter table public.user_files enable row level security;

drop policy if exists user_files_select_own on public.user_files;
create policy user_files_select_own on public.user_files
  for select to authenticated
  using ((select auth.uid()) = user_id);

drop policy if exists user_files_update_own on public.user_files;
create policy user_files_update_own on public.user_files
  for update to authenticated
  using ((select auth.uid()) = user_id)
  with check ((select auth.uid()) = user_id);
