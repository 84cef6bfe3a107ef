-- Every statement POST payments/initialize sends with a JWT on a warm process (the merchant's
-- authentication comes from payportal/merchants/authcache.py, no SELECT): the pool's pre-ping
-- (psycopg's empty query), BEGIN, the one INITIALIZE statement of payportal/payments/services.py
-- (payment, first transition and payment.initiated event in one CTE), COMMIT. Captured with
-- log_statement=all under bench/inproc.py initialize. The app makes every value in Python; here
-- ids are gen_random_uuid(), the payment's id md5 of a random number (one value, used three
-- times), the times now() (the app's one `now` for the four columns).
\set amount random(100, 250000)
\set payment random(1, 9223372036854775806)
;
BEGIN;
WITH payment AS (
    INSERT INTO payments (id, reference, merchant_id, payment_method_id, amount, currency,
        status, gateway, description, customer_email, customer_name, customer_phone,
        metadata, amount_refunded, platform_fee, gateway_fee, expires_at, version,
        created_at, updated_at, created_by, updated_by)
    VALUES (CAST(md5(:payment::text) AS uuid), 'pay_' || substr(md5(random()::text), 1, 24),
        :merchant_id, NULL, :amount, 'USD',
        'pending', CAST('internal' AS payment_gateway), 'bench order', 'customer@example.com',
        NULL, NULL, CAST('{}' AS jsonb), 0, 0, 0, now() + interval '30 minutes', 1,
        now(), now(), :actor, :actor)
), transition AS (
    INSERT INTO payment_transitions (id, payment_id, merchant_id, from_status, to_status,
        source, actor, created_at)
    VALUES (gen_random_uuid(), CAST(md5(:payment::text) AS uuid), :merchant_id, NULL, 'pending',
        'api', :actor, now())
)
INSERT INTO outbox_events (id, merchant_id, type, payment_id, data, correlation_id,
    created_at, next_attempt_at)
VALUES (gen_random_uuid(), :merchant_id, 'payment.initiated', CAST(md5(:payment::text) AS uuid),
    CAST(:event_data AS jsonb), md5(random()::text), now(), now());
COMMIT;
