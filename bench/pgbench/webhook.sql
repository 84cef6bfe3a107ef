-- Every statement a verified Paystack charge.success for a pending payment sends: the pool's
-- pre-ping (psycopg's empty query), BEGIN, the claim of the delivery and the lock of its payment
-- in one statement (_CLAIM_AND_LOCK of payportal/gateways/services.py), the move and its outcome
-- in another (payportal/payments/state.py: the payment completed, its transition and
-- payment.completed event, the delivery's outcome, and whether the payment has parked
-- deliveries), COMMIT. Captured with log_statement=all under bench/inproc.py webhook.
-- Each delivery names a different pending payment of the pgbench-owned set: client c takes
-- n = c + 1, c + 1 + clients, ... (`clients` and `step`, 0, come from bench/run.py). Past the
-- set it wraps round to completed payments, which the app records as ignored (the \else).
-- The app makes every value in Python (ids, times, fees, net, version from the locked row);
-- here ids are gen_random_uuid() or md5 of a random number (the delivery's id, used twice),
-- times now(), the amounts the seeded payment's (5000, Paystack's fees 75, no platform fee).
-- The claim's row is read with gset, each column into the variable of its name: the payment's
-- "id" comes after the claim's, so :id is the payment's.
-- (pgbench reads ':name' even inside quotes: the JSON below has a space after each colon.)
\set n 1 + mod(:client_id + :clients * :step, :pending)
\set step :step + 1
\set delivery random(1, 9223372036854775806)
\set event random(1, 9223372036854775806)
;
BEGIN;
WITH claim AS (
    INSERT INTO gateway_webhooks
        (id, gateway, gateway_event_id, event_type, signature_valid, payload, reference,
         received_at)
    VALUES (CAST(md5(:delivery::text) AS uuid), 'paystack', 'charge.success:' || :event,
            'charge.success', true, CAST('{"event": "charge.success", "data": {"id": ' || :event
            || ', "reference": "pay_pgbench' || lpad(:n::text, 17, '0') || '", "amount": 5000, '
            || '"currency": "USD", "fees": 75, "status": "success", '
            || '"gateway_response": "Successful"}}' AS jsonb),
            'pay_pgbench' || lpad(:n::text, 17, '0'), clock_timestamp())
    ON CONFLICT (gateway, gateway_event_id) DO NOTHING
    RETURNING id
)
SELECT claim.id, locked.* FROM claim LEFT JOIN LATERAL (
    SELECT payments."reference", payments."merchant_id", payments."payment_method_id",
        payments."amount", payments."currency", payments."status", payments."gateway",
        payments."description", payments."customer_email", payments."customer_name",
        payments."customer_phone", payments."metadata", payments."gateway_reference",
        payments."failure_code", payments."failure_reason", payments."amount_refunded",
        payments."platform_fee", payments."gateway_fee", payments."net_amount",
        payments."expires_at", payments."processing_at", payments."completed_at",
        payments."failed_at", payments."cancelled_at", payments."expired_at",
        payments."refunded_at", payments."disputed_at", payments."version", payments."id",
        payments."created_by", payments."updated_by", payments."created_at",
        payments."updated_at" FROM payments
    WHERE payments.reference = 'pay_pgbench' || lpad(:n::text, 17, '0') AND claim.id IS NOT NULL
    FOR UPDATE
) AS locked ON true \gset
\if :version = 1
\set net :amount - 75
\set next_version :version + 1
WITH moved AS (UPDATE payments SET "completed_at" = now(), "gateway_fee" = 75,
    "gateway_reference" = :event, "net_amount" = :net, "platform_fee" = 0,
    "status" = 'completed', "updated_at" = now(), "updated_by" = :gateway_actor,
    "version" = :next_version WHERE id = :id RETURNING 1),
step AS (INSERT INTO payment_transitions (id, payment_id, merchant_id, from_status, to_status,
    source, actor, reason, created_at) VALUES (gen_random_uuid(), :id, :merchant_id, 'pending',
    'completed', :webhook_source, :gateway_actor, 'paystack charge.success', now())),
event AS (INSERT INTO outbox_events (id, merchant_id, type, payment_id, data, correlation_id,
    created_at, next_attempt_at, attempts) VALUES (gen_random_uuid(), :merchant_id,
    'payment.completed', :id, :event_data::jsonb, md5(random()::text), now(), now(), 0)),
also AS (UPDATE gateway_webhooks SET outcome = 'processed', outcome_detail = NULL,
    target_status = 'completed', processed_at = now(), payment_id = :id,
    merchant_id = :merchant_id WHERE id = CAST(md5(:delivery::text) AS uuid))
SELECT (SELECT count(*) FROM moved),
    EXISTS (SELECT 1 FROM gateway_webhooks WHERE payment_id = :id AND outcome = 'parked');
\else
UPDATE gateway_webhooks SET outcome = 'ignored',
    outcome_detail = 'a completed payment cannot become completed', target_status = 'completed',
    processed_at = now(), payment_id = :id, merchant_id = :merchant_id
WHERE id = CAST(md5(:delivery::text) AS uuid);
\endif
COMMIT;
