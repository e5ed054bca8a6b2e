-- PulseVault: the Usage page's figures in one round trip, public.usage_summary(daily_since).
-- Apply after 002_usage.sql (and 003). Safe to run again. (002 defined it first without an argument; a short
-- history drawn per month was one dot, so it now also counts uploads per day.) A recording's bytes include its
-- ground-truth file's (ground_truth_bytes), as everywhere in usage (002).
--
-- Returns {"total_bytes", "total_count", "by_day", "by_month", "by_content_type", "by_lossless",
-- "by_subject"}, each breakdown a list of {"label", "bytes", "count"}: by_day ("YYYY-MM-DD", UTC) and
-- by_month ("YYYY-MM") in date order, the others largest first. by_day covers only uploads on or after
-- daily_since (none without it): the page asks for the recent days it may chart, so a long history
-- does not send one entry per day ever uploaded.
drop function if exists public.usage_summary();

create or replace function public.usage_summary(daily_since date default null) returns jsonb
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
  ),
  -- The recent days only: a range scan of the (user_id, created_at) index.
  days as (
    select to_char(date_trunc('day', created_at, 'UTC'), 'YYYY-MM-DD') as label,
           sum(size_bytes + ground_truth_bytes)::bigint as bytes,
           count(*)::bigint as n
    from public.user_files
    where daily_since is not null and user_id = (select auth.uid()) and status = 'ready'
      and created_at >= (daily_since::timestamp at time zone 'UTC')
    group by 1
  )
  select jsonb_build_object(
    'total_bytes', coalesce((select bytes from grouped where kind = 15), 0),
    'total_count', coalesce((select n from grouped where kind = 15), 0),
    'by_day', coalesce((select jsonb_agg(jsonb_build_object('label', label, 'bytes', bytes, 'count', n)
                                         order by label) from days), '[]'::jsonb),
    'by_month', coalesce((select items from lists where kind = 7), '[]'::jsonb),
    'by_content_type', coalesce((select items from lists where kind = 11), '[]'::jsonb),
    'by_lossless', coalesce((select items from lists where kind = 13), '[]'::jsonb),
    'by_subject', coalesce((select items from lists where kind = 14), '[]'::jsonb)
  )
$$;

revoke execute on function public.usage_summary(date) from public, anon;
grant execute on function public.usage_summary(date) to authenticated, service_role;
