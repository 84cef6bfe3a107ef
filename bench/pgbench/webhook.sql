-- Every statement a verified Paystack charge.success sends: record the delivery, find and lock
-- the pending payment, complete it, its transition and outbox event, look for parked
-- deliveries, record the outcome. Payments are drawn at random from the pgbench-owned set.
-- (pgbench reads ':name' even inside quotes, so values with a colon come in as variables.)
\set n random(1, :pending)
BEGIN;
INSERT INTO gateway_webhooks (id, gateway, gateway_event_id, event_type, signature_valid, payload,
    reference, received_at)
VALUES (gen_random_uuid(), 'paystack', 'charge.success:' || md5(random()::text), 'charge.success',
    true, :event_data::jsonb, 'pay_pgbench' || lpad(:n::text, 17, '0'), clock_timestamp())
ON CONFLICT (gateway, gateway_event_id) DO NOTHING
RETURNING id AS webhook_id \gset
SELECT id AS payment_id FROM payments WHERE reference = 'pay_pgbench' || lpad(:n::text, 17, '0') \gset
SELECT id, status, version FROM payments WHERE id = :payment_id FOR UPDATE;
INSERT INTO outbox_events (id, merchant_id, type, payment_id, data, correlation_id, created_at,
    attempts, next_attempt_at)
VALUES (gen_random_uuid(), :merchant_id, 'payment.completed', :payment_id, :event_data::jsonb,
    md5(random()::text), now(), 0, now());
UPDATE payments SET status = 'completed', gateway_reference = 'pgbench', platform_fee = 60,
    gateway_fee = 50, net_amount = amount - 110, completed_at = now(), version = version + 1,
    updated_by = :gateway_actor, updated_at = now()
WHERE id = :payment_id;
INSERT INTO payment_transitions (id, payment_id, merchant_id, from_status, to_status, source,
    actor, created_at)
VALUES (gen_random_uuid(), :payment_id, :merchant_id, 'pending', 'completed', :webhook_source,
    :gateway_actor, now());
SELECT id FROM gateway_webhooks WHERE payment_id = :payment_id AND outcome = 'parked'
ORDER BY received_at, id;
UPDATE gateway_webhooks SET payment_id = :payment_id, merchant_id = :merchant_id,
    target_status = 'completed', outcome = 'processed', processed_at = now()
WHERE id = :webhook_id;
END;
