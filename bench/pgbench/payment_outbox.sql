-- The issue's reference transaction: one payment INSERT and its outbox event INSERT, committed.
\set amount random(100, 250000)
BEGIN;
INSERT INTO payments (id, reference, merchant_id, amount, currency, status, gateway, description,
    customer_email, metadata, amount_refunded, platform_fee, gateway_fee, expires_at, version,
    created_at, updated_at, created_by, updated_by)
VALUES (gen_random_uuid(), 'pay_' || substr(md5(random()::text), 1, 24), :merchant_id, :amount,
    'USD', 'pending', 'internal', 'bench order', 'customer@example.com', '{}', 0, 0, 0,
    now() + interval '30 minutes', 1, now(), now(), :actor, :actor)
RETURNING id AS payment_id \gset
INSERT INTO outbox_events (id, merchant_id, type, payment_id, data, correlation_id, created_at,
    attempts, next_attempt_at)
VALUES (gen_random_uuid(), :merchant_id, 'payment.initiated', :payment_id, :event_data::jsonb,
    md5(random()::text), now(), 0, now());
END;
