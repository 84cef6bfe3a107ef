-- Every statement GET payments/{reference} sends with a JWT on a warm process (the merchant's
-- authentication comes from payportal/merchants/authcache.py, no SELECT): the pool's pre-ping
-- (psycopg's empty query), BEGIN, the payment's 24 columns by merchant and reference
-- (PAYMENT_ROW of payportal/payments/services.py), COMMIT (every request's transaction ends so
-- since 6260392: psycopg forgets its prepared statements at every ROLLBACK). Captured with
-- log_statement=all under bench/inproc.py get; psycopg prepares the SELECT after 5 uses, as
-- pgbench -M prepared does.
\set n random(1, :readable)
;
BEGIN;
SELECT payments.id, payments.merchant_id, payments.reference, payments.amount,
    payments.amount_refunded, payments.currency, payments.status, payments.gateway,
    payments.gateway_reference, payments.description, payments.customer_email,
    payments.customer_name, payments.customer_phone, payments.metadata,
    payments.payment_method_id, payments.failure_code, payments.failure_reason,
    payments.platform_fee, payments.gateway_fee, payments.net_amount, payments.expires_at,
    payments.completed_at, payments.created_at, payments.updated_at
FROM payments
WHERE payments.merchant_id = :merchant_id::UUID
    AND payments.reference = ('pay_pgread' || lpad(:n::text, 18, '0'))::VARCHAR;
COMMIT;
