-- Bulk token updates (PATCH /v1/tokens): each item is one statement, so one
-- item's transaction, apart from every other item of the request.

-- The items of a bulk update already applied under an Idempotency-Key, each
-- recorded in the statement that applied it: a retry of a request that did
-- not finish (its process died, storage went away) answers these from here
-- and applies only the rest. `reference` is the claim's, drawn anew when an
-- expired key is used again, so an old request's items are never taken for a
-- new one's. Deleted with the final response, or with the key.
create table idempotency_bulk_items (
  scope text not null,
  key text not null,
  reference text not null,
  position integer not null,
  -- the token as the item left it (json of the token record); null until the statement that applies the item ends
  token_record text,
  primary key (scope, key, reference, position),
  foreign key (scope, key) references idempotency_keys (scope, key) on delete cascade
);

-- tessera_update_token, which applies one item, lives in
-- server/storage/functions/update_token.sql.
