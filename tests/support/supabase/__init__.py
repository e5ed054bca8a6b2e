"""A Supabase stand-in for tests: GoTrue (auth) and a PostgREST subset over a real PostgreSQL.

There is no Supabase server on the test machines. This threaded HTTP server
answers what supabase-py 2.34 sends, closely enough that ``SupabaseAuth`` and
``SupabaseRepository`` run unchanged against it, and is no looser than
Supabase where that matters to the app: only the project's anon and
service-role keys pass the gateway, GoTrue checks a token's audience, upserts
resolve conflicts as PostgREST does, and sign-up can require a confirmed
e-mail address.

- ``server``     the HTTP server, the gateway's API-key check, routing, test controls
- ``gotrue``     ``/auth/v1``: sign-in, refresh, sign-up, user, sign-out, recovery, admin users
- ``postgrest``  ``/rest/v1``: a request on a table or function as SQL run as the caller
- ``filters``    PostgREST's query-string grammar (filters, logic trees, select, order) as SQL
- ``tokens``     the project's keys and JWTs
- ``database``   the connection pool and ``auth.users``
- ``protocol``   the request value and the error shapes clients parse
- ``fixtures``   ``supabase_standin`` (reset per test) and ``supabase_standin_server``
- ``__main__``   ``python -m tests.support.supabase`` for other processes (e2e in cloud mode)
"""
