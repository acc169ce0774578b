-- Where each audit entry came from (PCI DSS 10.2.2: origination): the client
-- address and the id of the request that made it. Null only on entries
-- written before this migration; a trigger refuses a new entry without them
-- (server/storage/functions/audit_chain_trigger.sql).

alter table audit_events
  add column client_ip text,
  add column request_id text;
