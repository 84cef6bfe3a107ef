-- Every statement GET payments/{reference} sends with a JWT: the merchant lookup of the
-- authentication, then the payment by reference within the merchant.
\set n random(1, :readable)
SELECT status, password_changed_at FROM merchants WHERE id = :merchant_id;
SELECT * FROM payments WHERE merchant_id = :merchant_id AND reference = 'pay_pgread' || lpad(:n::text, 18, '0');
