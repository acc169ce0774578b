-- tessera_merchant_changed: every vault process caches merchants (settings
-- and keys) for a second at most; a change to a merchant or to its secret
-- keys is announced at commit on the channel `tessera_merchants`, and every
-- process listening drops its cache at once (server/merchants/service.ts).
-- A trigger rather than a call in each service method, so a change made by
-- any statement — the CLI's, a migration's, an operator's — is announced too.
-- No payload: merchants change rarely, and the cache refills in a query.

create or replace function tessera_merchant_changed() returns trigger
language plpgsql
as $$
begin
  perform pg_notify('tessera_merchants', '');
  return null;
end;
$$;

drop trigger if exists merchants_changed on merchants;
create trigger merchants_changed after update or delete on merchants
  for each statement execute function tessera_merchant_changed();
drop trigger if exists merchant_secret_keys_changed on merchant_secret_keys;
create trigger merchant_secret_keys_changed after update or delete on merchant_secret_keys
  for each statement execute function tessera_merchant_changed();
