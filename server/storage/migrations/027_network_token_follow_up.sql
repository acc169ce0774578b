-- Network tokens, follow-up (docs/decisions.md, "Network tokens"): when the
-- network's pan_update gives a token new last 4 digits, the card number the
-- vault holds sealed is the old card's. The time it was found out is kept, so
-- a payment that would fall back to that number is refused (card_outdated)
-- until the merchant sets the new card (PATCH /v1/tokens with a card).
alter table tokens add column pan_outdated_at timestamptz;
