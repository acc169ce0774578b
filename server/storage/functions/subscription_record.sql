-- tessera_subscription_record: a subscription as the API reports it
-- (SubscriptionRecord in server/subscriptions/records.ts). The one list of
-- its reported columns: reads select it, changes return it, and its events
-- keep it.

create or replace function tessera_subscription_record(s subscriptions) returns json
language sql
stable
as $$
  select json_build_object(
    'id', s.id, 'token', s.token, 'customer', s.customer, 'amount', s.amount, 'currency', s.currency,
    'interval_unit', s.interval_unit, 'interval_count', s.interval_count, 'start_at', s.start_at, 'reference', s.reference,
    'status', s.status, 'period', s.period, 'attempt', s.attempt, 'next_charge_at', s.next_charge_at,
    'current_period_start', s.current_period_start, 'current_period_end', s.current_period_end,
    'latest_payment', s.latest_payment, 'canceled_at', s.canceled_at, 'created_at', s.created_at, 'updated_at', s.updated_at
  )
$$;
