-- PulseVault: the sessions the server keeps for signed-in browsers (issue 19, cloud mode).
-- Apply after 004_usage_by_day.sql. Safe to run again: every statement is idempotent.
--
-- A browser holds one HttpOnly cookie with an opaque random id; this table holds the rest
-- (lib/sessions.py, PostgrestSessionStore): who, the sign-in service's tokens encrypted by the
-- app with its session key (a Fernet blob the database cannot open), when the session was
-- created and last used, when it ends, and from which address and browser. Only SHA-256
-- hashes of the cookie's id and of the one-time sign-in ticket are stored, never the values:
-- a copy of this table alone does not let anyone act as a user.
--
-- Who may do what:
--
-- * The app server, with the service_role key (which it holds like the S3 secret key, as for
--   lib/repository's ServerRecords), opens, claims, resumes, touches, lists and revokes rows.
--   Claiming a ticket and resuming from a cookie happen before any user token exists (the
--   cookie is the only credential the request carries), so they cannot run as the user; and a
--   `security definer` function the anon key could call with a cookie hash would put the token
--   lookup within reach of every browser. So the service role it is: every statement the
--   server makes names the verified user or the cookie's hash itself (the role is not limited
--   by row-level security), and nothing else can read the secret columns.
-- * A signed-in user's own token (PostgREST as `authenticated`: Supabase serves every table of
--   `public` to it) may see only their own rows, and of them only the columns the Account page
--   shows (column privileges), never `tokens`, `secret_hash` or `ticket_hash`. It may revoke
--   its own live sessions (set `revoked_at`) and nothing more: no insert (a row it planted
--   could not be resumed without a secret the server made, but it would still be a lie on the
--   Account page), no delete (a revoked row is the record that it was), no un-revoke.
-- * Revoking, by whoever, wipes the encrypted tokens and the cookie hash in the same
--   statement (the trigger below): a revoked session holds nothing worth stealing.

create table if not exists public.app_sessions (
  id                uuid primary key,
  user_id           uuid not null references auth.users (id) on delete cascade,
  secret_hash       text unique,
  ticket_hash       text unique,
  ticket_expires_at timestamptz,
  tokens            text not null,
  created_at        timestamptz not null,
  last_seen_at      timestamptz not null,
  expires_at        timestamptz not null,
  client_address    text not null default '',
  user_agent        text not null default '',
  flagged           text not null default '',
  revoked_at        timestamptz
);

create index if not exists app_sessions_user on public.app_sessions (user_id);
create index if not exists app_sessions_expires on public.app_sessions (expires_at);

alter table public.app_sessions enable row level security;

-- --- who may read and change which columns ----------------------------------------

revoke all on table public.app_sessions from public, anon, authenticated;
grant select (id, user_id, created_at, last_seen_at, expires_at, client_address, user_agent, flagged, revoked_at)
  on table public.app_sessions to authenticated;
grant update (revoked_at) on table public.app_sessions to authenticated;
grant all on table public.app_sessions to service_role;

drop policy if exists app_sessions_select_own on public.app_sessions;
create policy app_sessions_select_own on public.app_sessions
  for select to authenticated
  using (user_id = (select auth.uid()));

-- A live session of one's own may become revoked; a revoked one never live again.
drop policy if exists app_sessions_revoke_own on public.app_sessions;
create policy app_sessions_revoke_own on public.app_sessions
  for update to authenticated
  using (user_id = (select auth.uid()) and revoked_at is null)
  with check (user_id = (select auth.uid()) and revoked_at is not null);

-- --- revoking wipes what the session could be used with --------------------------------

create or replace function public.app_sessions_on_revoke()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.revoked_at is not null then
    new.tokens := '';
    new.secret_hash := null;
    new.ticket_hash := null;
    new.ticket_expires_at := null;
    if old.revoked_at is null and current_user <> 'service_role' then
      -- A user's own revoke is dated by the database, not by what the request said.
      new.revoked_at := now();
    end if;
  end if;
  return new;
end
$$;

revoke execute on function public.app_sessions_on_revoke() from public, anon, authenticated;

drop trigger if exists app_sessions_on_revoke on public.app_sessions;
create trigger app_sessions_on_revoke
  before update on public.app_sessions
  for each row execute function public.app_sessions_on_revoke();
