-- 003 was edited after it shipped: its first version gave the sandbox
-- acquirer's table an `answered` column that nothing reads. Databases that
-- ran that version still have it; this brings them in line with the rest.
-- (From now on migrations are never edited: migrate.ts refuses a changed one.)
alter table sandbox_acquirer_authorizations drop column if exists answered;
