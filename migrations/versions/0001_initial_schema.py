"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-26
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None

# PostgreSQL enum types the tables below create; dropped last on downgrade
ENUM_TYPES = (
    "merchant_type", "merchant_status", "payment_method_type", "payment_method_status",
    "payment_status", "payment_gateway", "refund_status", "delivery_status",
)


# each part on its own: 0005 puts the record function and the fold trigger back on downgrade
RECORD_DELTAS_SQL = """
CREATE OR REPLACE FUNCTION payment_totals_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO payment_total_deltas (txid, merchant_id, hour, currency, status, payments, amount)
        VALUES (txid_current(), OLD.merchant_id,
                date_trunc('hour', OLD.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
                OLD.currency, OLD.status, -1, -OLD.amount);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO payment_total_deltas (txid, merchant_id, hour, currency, status, payments, amount)
        VALUES (txid_current(), NEW.merchant_id,
                date_trunc('hour', NEW.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
                NEW.currency, NEW.status, 1, NEW.amount);
    END IF;
    RETURN NULL;
END
$$;
"""

RECORD_TRIGGERS_SQL = """
CREATE TRIGGER payments_totals_insert_delete AFTER INSERT OR DELETE ON payments
    FOR EACH ROW EXECUTE FUNCTION payment_totals_record();
CREATE TRIGGER payments_totals_update AFTER UPDATE ON payments FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.amount IS DISTINCT FROM NEW.amount
          OR OLD.currency IS DISTINCT FROM NEW.currency
          OR OLD.created_at IS DISTINCT FROM NEW.created_at
          OR OLD.merchant_id IS DISTINCT FROM NEW.merchant_id)
    EXECUTE FUNCTION payment_totals_record();
"""

FLUSH_SQL = """
CREATE FUNCTION payment_totals_flush() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- one event per delta fires at commit; the first folds them all, the rest find theirs gone
    IF NOT EXISTS (SELECT 1 FROM payment_total_deltas WHERE id = NEW.id) THEN
        RETURN NULL;
    END IF;
    WITH moved AS (
        DELETE FROM payment_total_deltas WHERE txid = txid_current()
        RETURNING merchant_id, hour, currency, status, payments, amount
    )
    INSERT INTO payment_hourly_totals AS t (merchant_id, hour, currency, status, payments, amount)
    SELECT merchant_id, hour, currency, status, sum(payments), sum(amount)
    FROM moved
    GROUP BY merchant_id, hour, currency, status
    HAVING sum(payments) <> 0 OR sum(amount) <> 0
    ORDER BY merchant_id, hour, currency, status
    ON CONFLICT (merchant_id, hour, currency, status) DO UPDATE
        SET payments = t.payments + EXCLUDED.payments, amount = t.amount + EXCLUDED.amount;
    RETURN NULL;
END
$$;
"""

FOLD_TRIGGER_SQL = """
CREATE CONSTRAINT TRIGGER payment_total_deltas_fold AFTER INSERT ON payment_total_deltas
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION payment_totals_flush();
"""

PAYMENT_TOTALS_SQL = RECORD_DELTAS_SQL + RECORD_TRIGGERS_SQL + FLUSH_SQL + FOLD_TRIGGER_SQL

DROP_PAYMENT_TOTALS_SQL = """
DROP TRIGGER IF EXISTS payment_total_deltas_fold ON payment_total_deltas;
DROP TRIGGER IF EXISTS payments_totals_update ON payments;
DROP TRIGGER IF EXISTS payments_totals_insert_delete ON payments;
DROP FUNCTION IF EXISTS payment_totals_flush();
DROP FUNCTION IF EXISTS payment_totals_record();
"""


def upgrade() -> None:
    op.create_table('login_failures',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('realm', sa.String(length=20), server_default='merchant', nullable=False),
    sa.Column('failed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failures'))
    )
    op.create_index('ix_login_failures_email_failed_at', 'login_failures', ['email', 'failed_at'], unique=False)
    op.create_table('merchants',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('password_hash', sa.String(length=100), nullable=False),
    sa.Column('password_changed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('merchant_type', sa.Enum('individual', 'business', 'enterprise', name='merchant_type'), nullable=False),
    sa.Column('status', sa.Enum('pending', 'active', 'inactive', 'suspended', name='merchant_status'), server_default='pending', nullable=False),
    sa.Column('business_name', sa.String(length=200), nullable=True),
    sa.Column('business_id', sa.String(length=100), nullable=True),
    sa.Column('phone', sa.String(length=40), nullable=True),
    sa.Column('address', sa.String(length=500), nullable=True),
    sa.Column('website', sa.String(length=500), nullable=True),
    sa.Column('country', sa.String(length=2), nullable=True),
    sa.Column('default_currency', sa.String(length=3), server_default='USD', nullable=False),
    sa.Column('id', sa.Uuid(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_by', sa.String(length=120), nullable=True),
    sa.Column('updated_by', sa.String(length=120), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_merchants')),
    sa.UniqueConstraint('business_id', name=op.f('uq_merchants_business_id')),
    sa.UniqueConstraint('email', name=op.f('uq_merchants_email'))
    )
    op.create_index('ix_merchants_status_created_at', 'merchants', ['status', 'created_at'], unique=False)
    op.create_table('operators',
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('password_hash', sa.String(length=100), nullable=False),
    sa.Column('is_active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_operators')),
    sa.UniqueConstraint('email', name=op.f('uq_operators_email'))
    )
    op.create_table('api_keys',
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_api_keys_merchant_id_merchants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('digest', name=op.f('uq_api_keys_digest'))
    )
    op.create_index(op.f('ix_api_keys_merchant_id'), 'api_keys', ['merchant_id'], unique=False)
    op.create_table('audit_log',
    sa.Column('merchant_id', sa.Uuid(), nullable=True),
    sa.Column('actor', sa.String(length=120), nullable=False),
    sa.Column('action', sa.String(length=60), nullable=False),
    sa.Column('from_value', sa.String(length=60), nullable=True),
    sa.Column('to_value', sa.String(length=60), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('id', sa.Uuid(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_audit_log_merchant_id_merchants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    op.create_index('ix_audit_log_merchant_id_created_at', 'audit_log', ['merchant_id', 'created_at'], unique=False)
    op.create_table('dashboard_sessions',
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=True),
    sa.Column('operator_id', sa.Uuid(), nullable=True),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('(merchant_id IS NULL) <> (operator_id IS NULL)', name=op.f('ck_dashboard_sessions_one_owner')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_dashboard_sessions_merchant_id_merchants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['operator_id'], ['operators.id'], name=op.f('fk_dashboard_sessions_operator_id_operators'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('digest', name=op.f('pk_dashboard_sessions'))
    )
    op.create_index(op.f('ix_dashboard_sessions_merchant_id'), 'dashboard_sessions', ['merchant_id'], unique=False)
    op.create_index(op.f('ix_dashboard_sessions_operator_id'), 'dashboard_sessions', ['operator_id'], unique=False)
    op.create_table('idempotency_keys',
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('request_method', sa.String(length=10), nullable=False),
    sa.Column('request_path', sa.String(length=500), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('response_status', sa.SmallInteger(), nullable=True),
    sa.Column('response_body', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_idempotency_keys_merchant_id_merchants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('merchant_id', 'key', name=op.f('pk_idempotency_keys'))
    )
    op.create_index('ix_idempotency_keys_created_at', 'idempotency_keys', ['created_at'], unique=False)
    op.create_table('outbox_events',
    sa.Column('id', sa.Uuid(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('payment_id', sa.Uuid(), nullable=True),
    sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('correlation_id', sa.String(length=128), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('dispatched_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_outbox_events_merchant_id_merchants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_events'))
    )
    op.create_index('ix_outbox_events_merchant_id_created_at_id', 'outbox_events', ['merchant_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_outbox_events_merchant_id_type_created_at_id', 'outbox_events', ['merchant_id', 'type', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_outbox_events_payment_id'), 'outbox_events', ['payment_id'], unique=False)
    op.create_index('ix_outbox_events_undispatched', 'outbox_events', ['created_at'], unique=False, postgresql_where=sa.text('dispatched_at IS NULL'))
    op.create_index('ix_outbox_events_unpublished', 'outbox_events', ['next_attempt_at'], unique=False, postgresql_where=sa.text('published_at IS NULL'))
    op.create_table('password_reset_tokens',
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_password_reset_tokens_merchant_id_merchants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_password_reset_tokens')),
    sa.UniqueConstraint('digest', name=op.f('uq_password_reset_tokens_digest'))
    )
    op.create_index(op.f('ix_password_reset_tokens_merchant_id'), 'password_reset_tokens', ['merchant_id'], unique=False)
    op.create_table('payment_methods',
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('type', sa.Enum('card', 'bank_account', 'mobile_money', 'crypto', 'paypal', 'stripe', name='payment_method_type'), nullable=False),
    sa.Column('status', sa.Enum('active', 'inactive', 'expired', 'blocked', name='payment_method_status'), server_default='active', nullable=False),
    sa.Column('is_default', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('brand', sa.String(length=20), nullable=True),
    sa.Column('last4', sa.String(length=4), nullable=True),
    sa.Column('exp_month', sa.SmallInteger(), nullable=True),
    sa.Column('exp_year', sa.SmallInteger(), nullable=True),
    sa.Column('holder_name', sa.String(length=200), nullable=True),
    sa.Column('bank_name', sa.String(length=200), nullable=True),
    sa.Column('provider', sa.String(length=100), nullable=True),
    sa.Column('sealed_details', sa.Text(), nullable=True),
    sa.Column('external_id', sa.String(length=255), nullable=True),
    sa.Column('external_provider', sa.String(length=100), nullable=True),
    sa.Column('metadata', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_by', sa.String(length=120), nullable=True),
    sa.Column('updated_by', sa.String(length=120), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_payment_methods_merchant_id_merchants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_methods'))
    )
    op.create_index('ix_payment_methods_merchant_id_created_at_id', 'payment_methods', ['merchant_id', 'created_at', 'id'], unique=False, postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_index('ix_payment_methods_merchant_id_type_created_at_id', 'payment_methods', ['merchant_id', 'type', 'created_at', 'id'], unique=False, postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_index('ix_payment_methods_merchant_id_status_created_at_id', 'payment_methods', ['merchant_id', 'status', 'created_at', 'id'], unique=False, postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_index('uq_payment_methods_one_default', 'payment_methods', ['merchant_id'], unique=True, postgresql_where=sa.text('is_default AND deleted_at IS NULL'))
    op.create_table('refresh_tokens',
    sa.Column('jti', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('family_id', sa.Uuid(), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_refresh_tokens_merchant_id_merchants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('jti', name=op.f('pk_refresh_tokens'))
    )
    op.create_index(op.f('ix_refresh_tokens_family_id'), 'refresh_tokens', ['family_id'], unique=False)
    op.create_index(op.f('ix_refresh_tokens_merchant_id'), 'refresh_tokens', ['merchant_id'], unique=False)
    op.create_table('webhook_endpoints',
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=True),
    sa.Column('events', postgresql.ARRAY(sa.String(length=64)), nullable=False),
    sa.Column('enabled', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('sealed_secret', sa.Text(), nullable=False),
    sa.Column('id', sa.Uuid(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_by', sa.String(length=120), nullable=True),
    sa.Column('updated_by', sa.String(length=120), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_webhook_endpoints_merchant_id_merchants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_endpoints'))
    )
    op.create_index('ix_webhook_endpoints_merchant_id_created_at_id', 'webhook_endpoints', ['merchant_id', 'created_at', 'id'], unique=False)
    op.create_table('payments',
    sa.Column('reference', sa.String(length=40), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('payment_method_id', sa.Uuid(), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.Enum('pending', 'processing', 'completed', 'failed', 'cancelled', 'expired', 'partially_refunded', 'refunded', 'disputed', name='payment_status'), server_default='pending', nullable=False),
    sa.Column('gateway', sa.Enum('internal', 'stripe', 'paystack', 'flutterwave', 'paypal', name='payment_gateway'), server_default='internal', nullable=False),
    sa.Column('description', sa.String(length=1000), nullable=True),
    sa.Column('customer_email', sa.String(length=320), nullable=True),
    sa.Column('customer_name', sa.String(length=200), nullable=True),
    sa.Column('customer_phone', sa.String(length=40), nullable=True),
    sa.Column('metadata', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('gateway_reference', sa.String(length=255), nullable=True),
    sa.Column('failure_code', sa.String(length=100), nullable=True),
    sa.Column('failure_reason', sa.String(length=1000), nullable=True),
    sa.Column('amount_refunded', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('platform_fee', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('gateway_fee', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('net_amount', sa.BigInteger(), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('processing_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expired_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('refunded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('disputed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('id', sa.Uuid(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_by', sa.String(length=120), nullable=True),
    sa.Column('updated_by', sa.String(length=120), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_payments_amount_positive')),
    sa.CheckConstraint('amount_refunded >= 0 AND amount_refunded <= amount', name=op.f('ck_payments_refunds_within_amount')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_payments_merchant_id_merchants'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['payment_method_id'], ['payment_methods.id'], name=op.f('fk_payments_payment_method_id_payment_methods'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payments')),
    sa.UniqueConstraint('reference', name=op.f('uq_payments_reference'))
    )
    op.create_index('ix_payments_gateway_reference', 'payments', ['gateway', 'gateway_reference'], unique=False)
    op.create_index('ix_payments_merchant_id_created_at_id', 'payments', ['merchant_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_payments_merchant_id_customer_email_created_at_id', 'payments', ['merchant_id', 'customer_email', 'created_at', 'id'], unique=False, postgresql_ops={'customer_email': 'text_pattern_ops'})
    op.create_index('ix_payments_merchant_id_reference_prefix', 'payments', ['merchant_id', 'reference'], unique=False, postgresql_ops={'reference': 'text_pattern_ops'})
    op.create_index('ix_payments_merchant_id_status_created_at_id', 'payments', ['merchant_id', 'status', 'created_at', 'id'], unique=False)
    op.create_index('ix_payments_pending_expires_at', 'payments', ['expires_at'], unique=False, postgresql_where=sa.text("status = 'pending'"))
    op.create_table('webhook_deliveries',
    sa.Column('endpoint_id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('event_id', sa.Uuid(), nullable=False),
    sa.Column('event_type', sa.String(length=64), nullable=False),
    sa.Column('status', sa.Enum('pending', 'succeeded', 'failed', name='delivery_status'), server_default='pending', nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=True),
    sa.Column('last_status_code', sa.SmallInteger(), nullable=True),
    sa.Column('last_error', sa.String(length=1000), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('id', sa.Uuid(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoints.id'], name=op.f('fk_webhook_deliveries_endpoint_id_webhook_endpoints'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['event_id'], ['outbox_events.id'], name=op.f('fk_webhook_deliveries_event_id_outbox_events'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_webhook_deliveries_merchant_id_merchants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_deliveries')),
    sa.UniqueConstraint('endpoint_id', 'event_id', name=op.f('uq_webhook_deliveries_endpoint_id_event_id'))
    )
    op.create_index('ix_webhook_deliveries_due', 'webhook_deliveries', ['next_attempt_at'], unique=False, postgresql_where=sa.text("status = 'pending'"))
    op.create_index('ix_webhook_deliveries_endpoint_id_created_at_id', 'webhook_deliveries', ['endpoint_id', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_webhook_deliveries_event_id'), 'webhook_deliveries', ['event_id'], unique=False)
    op.create_table('gateway_webhooks',
    sa.Column('gateway', sa.String(length=20), nullable=False),
    sa.Column('gateway_event_id', sa.String(length=255), nullable=False),
    sa.Column('event_type', sa.String(length=100), nullable=False),
    sa.Column('signature_valid', sa.Boolean(), nullable=False),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('reference', sa.String(length=100), nullable=True),
    sa.Column('payment_id', sa.Uuid(), nullable=True),
    sa.Column('merchant_id', sa.Uuid(), nullable=True),
    sa.Column('target_status', sa.String(length=30), nullable=True),
    sa.Column('outcome', sa.String(length=20), nullable=True),
    sa.Column('outcome_detail', sa.String(length=500), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_gateway_webhooks_merchant_id_merchants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_gateway_webhooks_payment_id_payments'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gateway_webhooks')),
    sa.UniqueConstraint('gateway', 'gateway_event_id', name=op.f('uq_gateway_webhooks_gateway_gateway_event_id'))
    )
    op.create_index('ix_gateway_webhooks_parked', 'gateway_webhooks', ['payment_id', 'received_at'], unique=False, postgresql_where=sa.text("outcome = 'parked'"))
    op.create_index(op.f('ix_gateway_webhooks_payment_id'), 'gateway_webhooks', ['payment_id'], unique=False)
    op.create_table('payment_transitions',
    sa.Column('id', sa.Uuid(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('payment_id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('from_status', sa.Enum('pending', 'processing', 'completed', 'failed', 'cancelled', 'expired', 'partially_refunded', 'refunded', 'disputed', name='payment_status'), nullable=True),
    sa.Column('to_status', sa.Enum('pending', 'processing', 'completed', 'failed', 'cancelled', 'expired', 'partially_refunded', 'refunded', 'disputed', name='payment_status'), nullable=False),
    sa.Column('source', sa.String(length=40), nullable=False),
    sa.Column('actor', sa.String(length=120), nullable=True),
    sa.Column('reason', sa.String(length=1000), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_payment_transitions_merchant_id_merchants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_payment_transitions_payment_id_payments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_transitions'))
    )
    op.create_index('ix_payment_transitions_payment_id_created_at', 'payment_transitions', ['payment_id', 'created_at'], unique=False)
    op.create_table('refunds',
    sa.Column('reference', sa.String(length=40), nullable=False),
    sa.Column('payment_id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('reason', sa.String(length=1000), nullable=True),
    sa.Column('status', sa.Enum('pending', 'succeeded', 'failed', name='refund_status'), server_default='succeeded', nullable=False),
    sa.Column('source', sa.String(length=40), server_default='api', nullable=False),
    sa.Column('gateway_refund_id', sa.String(length=255), nullable=True),
    sa.Column('id', sa.Uuid(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_by', sa.String(length=120), nullable=True),
    sa.Column('updated_by', sa.String(length=120), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_refunds_amount_positive')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_refunds_merchant_id_merchants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_refunds_payment_id_payments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refunds')),
    sa.UniqueConstraint('reference', name=op.f('uq_refunds_reference'))
    )
    op.create_index(op.f('ix_refunds_merchant_id'), 'refunds', ['merchant_id'], unique=False)
    op.create_index(op.f('ix_refunds_payment_id'), 'refunds', ['payment_id'], unique=False)
    op.create_table('webhook_delivery_attempts',
    sa.Column('delivery_id', sa.Uuid(), nullable=False),
    sa.Column('attempted_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('status_code', sa.SmallInteger(), nullable=True),
    sa.Column('latency_ms', sa.Integer(), nullable=True),
    sa.Column('error', sa.String(length=1000), nullable=True),
    sa.Column('next_retry_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.ForeignKeyConstraint(['delivery_id'], ['webhook_deliveries.id'], name=op.f('fk_webhook_delivery_attempts_delivery_id_webhook_deliveries'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_delivery_attempts'))
    )
    op.create_index('ix_webhook_delivery_attempts_delivery_id_attempted_at', 'webhook_delivery_attempts', ['delivery_id', 'attempted_at'], unique=False)
    op.create_table('payment_hourly_totals',
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('hour', sa.DateTime(timezone=True), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.Enum('pending', 'processing', 'completed', 'failed', 'cancelled', 'expired', 'partially_refunded', 'refunded', 'disputed', name='payment_status'), nullable=False),
    sa.Column('payments', sa.BigInteger(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_payment_hourly_totals_merchant_id_merchants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('merchant_id', 'hour', 'currency', 'status', name=op.f('pk_payment_hourly_totals'))
    )
    op.create_table('payment_total_deltas',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('txid', sa.BigInteger(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('hour', sa.DateTime(timezone=True), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.Enum('pending', 'processing', 'completed', 'failed', 'cancelled', 'expired', 'partially_refunded', 'refunded', 'disputed', name='payment_status'), nullable=False),
    sa.Column('payments', sa.BigInteger(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_total_deltas'))
    )
    op.create_index('ix_payment_total_deltas_txid', 'payment_total_deltas', ['txid'], unique=False)
    op.create_index('ix_payment_total_deltas_merchant_id_hour', 'payment_total_deltas', ['merchant_id', 'hour'], unique=False)
    # the dashboard's rollup (payportal/portal/models.py): deltas per payment change, folded
    # into the hourly totals once per transaction, at commit, in key order
    op.execute(PAYMENT_TOTALS_SQL)


def downgrade() -> None:
    op.execute(DROP_PAYMENT_TOTALS_SQL)
    op.drop_index('ix_payment_total_deltas_merchant_id_hour', table_name='payment_total_deltas')
    op.drop_index('ix_payment_total_deltas_txid', table_name='payment_total_deltas')
    op.drop_table('payment_total_deltas')
    op.drop_table('payment_hourly_totals')
    op.drop_index('ix_webhook_delivery_attempts_delivery_id_attempted_at', table_name='webhook_delivery_attempts')
    op.drop_table('webhook_delivery_attempts')
    op.drop_index(op.f('ix_refunds_payment_id'), table_name='refunds')
    op.drop_index(op.f('ix_refunds_merchant_id'), table_name='refunds')
    op.drop_table('refunds')
    op.drop_index('ix_payment_transitions_payment_id_created_at', table_name='payment_transitions')
    op.drop_table('payment_transitions')
    op.drop_index(op.f('ix_gateway_webhooks_payment_id'), table_name='gateway_webhooks')
    op.drop_index('ix_gateway_webhooks_parked', table_name='gateway_webhooks', postgresql_where=sa.text("outcome = 'parked'"))
    op.drop_table('gateway_webhooks')
    op.drop_index(op.f('ix_webhook_deliveries_event_id'), table_name='webhook_deliveries')
    op.drop_index('ix_webhook_deliveries_endpoint_id_created_at_id', table_name='webhook_deliveries')
    op.drop_index('ix_webhook_deliveries_due', table_name='webhook_deliveries', postgresql_where=sa.text("status = 'pending'"))
    op.drop_table('webhook_deliveries')
    op.drop_index('ix_payments_pending_expires_at', table_name='payments', postgresql_where=sa.text("status = 'pending'"))
    op.drop_index('ix_payments_merchant_id_status_created_at_id', table_name='payments')
    op.drop_index('ix_payments_merchant_id_reference_prefix', table_name='payments')
    op.drop_index('ix_payments_merchant_id_customer_email_created_at_id', table_name='payments')
    op.drop_index('ix_payments_merchant_id_created_at_id', table_name='payments')
    op.drop_index('ix_payments_gateway_reference', table_name='payments')
    op.drop_table('payments')
    op.drop_index('ix_webhook_endpoints_merchant_id_created_at_id', table_name='webhook_endpoints')
    op.drop_table('webhook_endpoints')
    op.drop_index(op.f('ix_refresh_tokens_merchant_id'), table_name='refresh_tokens')
    op.drop_index(op.f('ix_refresh_tokens_family_id'), table_name='refresh_tokens')
    op.drop_table('refresh_tokens')
    op.drop_index('uq_payment_methods_one_default', table_name='payment_methods', postgresql_where=sa.text('is_default AND deleted_at IS NULL'))
    op.drop_index('ix_payment_methods_merchant_id_status_created_at_id', table_name='payment_methods', postgresql_where=sa.text('deleted_at IS NULL'))
    op.drop_index('ix_payment_methods_merchant_id_type_created_at_id', table_name='payment_methods', postgresql_where=sa.text('deleted_at IS NULL'))
    op.drop_index('ix_payment_methods_merchant_id_created_at_id', table_name='payment_methods', postgresql_where=sa.text('deleted_at IS NULL'))
    op.drop_table('payment_methods')
    op.drop_index(op.f('ix_password_reset_tokens_merchant_id'), table_name='password_reset_tokens')
    op.drop_table('password_reset_tokens')
    op.drop_index('ix_outbox_events_unpublished', table_name='outbox_events', postgresql_where=sa.text('published_at IS NULL'))
    op.drop_index('ix_outbox_events_undispatched', table_name='outbox_events', postgresql_where=sa.text('dispatched_at IS NULL'))
    op.drop_index(op.f('ix_outbox_events_payment_id'), table_name='outbox_events')
    op.drop_index('ix_outbox_events_merchant_id_type_created_at_id', table_name='outbox_events')
    op.drop_index('ix_outbox_events_merchant_id_created_at_id', table_name='outbox_events')
    op.drop_table('outbox_events')
    op.drop_index('ix_idempotency_keys_created_at', table_name='idempotency_keys')
    op.drop_table('idempotency_keys')
    op.drop_index(op.f('ix_dashboard_sessions_operator_id'), table_name='dashboard_sessions')
    op.drop_index(op.f('ix_dashboard_sessions_merchant_id'), table_name='dashboard_sessions')
    op.drop_table('dashboard_sessions')
    op.drop_index('ix_audit_log_merchant_id_created_at', table_name='audit_log')
    op.drop_table('audit_log')
    op.drop_index(op.f('ix_api_keys_merchant_id'), table_name='api_keys')
    op.drop_table('api_keys')
    op.drop_table('operators')
    op.drop_index('ix_merchants_status_created_at', table_name='merchants')
    op.drop_table('merchants')
    op.drop_index('ix_login_failures_email_failed_at', table_name='login_failures')
    op.drop_table('login_failures')
    for enum_name in ENUM_TYPES:
        sa.Enum(name=enum_name).drop(op.get_bind(), checkfirst=True)
