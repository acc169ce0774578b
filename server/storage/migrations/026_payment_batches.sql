-- Batch payment operations (api.md, "Payment links and batch payment
-- operations"): captures, voids, refunds and merchant-initiated charges in
-- one instruction, accepted whole and worked through by the
-- `payment_batch.process` job. Each item's result commits with its
-- operation, so a vault killed mid-batch resumes it with nothing done twice.

create table payment_batches (
  id text primary key,
  merchant_id text not null references merchants (id),
  correlation_id text,
  status text not null default 'pending' check (status in ('pending', 'processing', 'completed')),
  total integer not null check (total between 1 and 10000),
  processed integer not null default 0,
  succeeded integer not null default 0,
  failed integer not null default 0,
  actor text not null,
  client_ip text not null,
  request_id text not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  completed_at timestamptz,
  check (processed = succeeded + failed and processed <= total),
  check ((status = 'completed') = (completed_at is not null))
);
create index payment_batches_merchant on payment_batches (merchant_id, created_at desc, id desc);

create table payment_batch_items (
  batch_id text not null references payment_batches (id),
  item_index integer not null check (item_index between 0 and 9999),
  op text not null check (op in ('capture', 'void', 'refund', 'charge')),
  payment text,
  token text,
  amount bigint,
  currency text,
  reference text,
  agreement text,
  -- the item's own acquirer reference, drawn at acceptance: a charge retried
  -- after a crash asks the acquirer about the same authorization
  attempt_reference text not null,
  state text not null default 'pending' check (state in ('pending', 'succeeded', 'failed')),
  -- the payment the operation made or changed, as it left it
  result_payment text,
  result_status text,
  refund text,
  error_code text,
  error_message text,
  error_param text,
  decline_code text,
  processed_at timestamptz,
  primary key (batch_id, item_index),
  check ((state = 'failed') = (error_code is not null))
);
