-- tessera_token_readable: a token that can be read — not deleted, and not a
-- single-use token that expired unused (its card is destroyed). A spent
-- single-use token stays readable, with used_at set. The one definition:
-- TypeScript queries and the other functions call it (SQL functions this
-- simple are inlined by the planner).

create or replace function tessera_token_readable(t tokens) returns boolean
language sql
stable
as $$
  select t.deleted_at is null and (t.reusable or t.used_at is not null or t.expires_at > now())
$$;
