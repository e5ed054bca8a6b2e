-- PulseVault: storage usage, aggregated in the database.
-- Apply after 001_user_files.sql. Safe to run again.
--
-- Usage counts `ready` rows only: pending rows may be half-uploaded and failed
-- rows have had their objects removed. A row's bytes are its recording's plus its
-- ground-truth file's (ground_truth_bytes).
--
-- Everything a normal user can call runs as the caller (security invoker), so
-- row-level security on user_files limits it to the caller's own rows; the
-- explicit user_id filter on top lets the (user_id, created_at) index do the work.

-- The ten largest recordings, straight from an index.
create index if not exists user_files_user_ready_size_idx on public.user_files (user_id, size_bytes desc)
  where status = 'ready';

-- Per-user totals. A signed-in user sees one row: their own.
create or replace view public.user_files_usage
with (security_invoker = true)
as
select user_id,
       count(*)::bigint                      as total_count,
       coalesce(sum(size_bytes + ground_truth_bytes), 0)::bigint  as total_bytes
from public.user_files
where status = 'ready'
group by user_id;

revoke all on table public.user_files_usage from public, anon, authenticated;
grant select on table public.user_files_usage to authenticated, service_role;

-- Everything the Usage page needs in one round trip:
-- {"total_bytes", "total_count", "by_month", "by_content_type", "by_lossless",
--  "by_subject"}, each breakdown a list of {"label", "bytes", "count"}.
create or replace function public.usage_summary() returns jsonb
language sql
stable
security invoker
set search_path = ''
-- Room to hash-aggregate 100k rows in memory (the planner over-estimates the
-- number of groups and would otherwise sort on disk).
set work_mem = '32MB'
as $$
  -- One scan of the caller's ready rows, folded into (month, type, lossless,
  -- subject) combinations; grouping sets then give every breakdown from those.
  with combos as (
    select date_trunc('month', created_at, 'UTC') as month,
           content_type,
           case when lossless then 'lossless' when not lossless then 'lossy' else 'unknown' end
             as lossless_label,
           case when subject_id = '' then '(none)' else subject_id end as subject_label,
           sum(size_bytes + ground_truth_bytes) as bytes,
           count(*) as n
    from public.user_files
    where user_id = (select auth.uid()) and status = 'ready'
    group by 1, 2, 3, 4
  ),
  grouped as (
    select grouping(month, content_type, lossless_label, subject_label) as kind,
           coalesce(to_char(month, 'YYYY-MM'), content_type, lossless_label, subject_label) as label,
           sum(bytes)::bigint as bytes,
           sum(n)::bigint as n
    from combos
    group by grouping sets ((month), (content_type), (lossless_label), (subject_label), ())
  ),
  -- grouping() is a bitmask over (month, content_type, lossless_label, subject_label):
  -- 7 = by month, 11 = by content type, 13 = by lossless, 14 = by subject, 15 = totals.
  lists as (
    select kind,
           jsonb_agg(jsonb_build_object('label', label, 'bytes', bytes, 'count', n)
                     order by case when kind = 7 then label end, bytes desc, label) as items
    from grouped
    where kind <> 15
    group by kind
  )
  select jsonb_build_object(
    'total_bytes', coalesce((select bytes from grouped where kind = 15), 0),
    'total_count', coalesce((select n from grouped where kind = 15), 0),
    'by_month', coalesce((select items from lists where kind = 7), '[]'::jsonb),
    'by_content_type', coalesce((select items from lists where kind = 11), '[]'::jsonb),
    'by_lossless', coalesce((select items from lists where kind = 13), '[]'::jsonb),
    'by_subject', coalesce((select items from lists where kind = 14), '[]'::jsonb)
  )
$$;

revoke execute on function public.usage_summary() from public, anon;
grant execute on function public.usage_summary() to authenticated, service_role;

-- Admin figures across all users. Only the service role (which bypasses RLS)
-- and the database owner may read them; a signed-in user gets "permission
-- denied", and even if a grant slipped in, security_invoker + RLS would still
-- show them only their own rows. (No e-mail column: auth.users is not the
-- service role's to read in every project; join it in the SQL editor if needed.)
create or replace view public.admin_usage_by_user
with (security_invoker = true)
as
select f.user_id,
       count(*)::bigint                       as total_count,
       coalesce(sum(f.size_bytes + f.ground_truth_bytes), 0)::bigint as total_bytes
from public.user_files f
where f.status = 'ready'
group by f.user_id;

create or replace view public.admin_usage_by_month
with (security_invoker = true)
as
select f.user_id,
       to_char(f.created_at at time zone 'UTC', 'YYYY-MM') as month,
       count(*)::bigint                       as total_count,
       coalesce(sum(f.size_bytes + f.ground_truth_bytes), 0)::bigint as total_bytes
from public.user_files f
where f.status = 'ready'
group by f.user_id, 2;

revoke all on table public.admin_usage_by_user, public.admin_usage_by_month from public, anon, authenticated;
grant select on table public.admin_usage_by_user, public.admin_usage_by_month to service_role;
