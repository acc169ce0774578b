-- Background network tokens provisioned in memory (docs/decisions.md,
-- "Background network tokens without a job"): the vault process that made a
-- token asks the network for its network token itself, without a job row.
-- `provisioning_since` is when that began; a network token still not settled
-- a job lease later (the process died, or stalled) is handed to a
-- `network_token.provision` job by the job sweep, which clears it. Null: a
-- job holds it, or it never was in memory (an explicit request, a batch's).
alter table network_tokens add column provisioning_since timestamptz;
create index network_tokens_in_memory on network_tokens (provisioning_since) where provisioning_since is not null and settled_at is null;
