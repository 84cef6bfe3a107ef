"""notify the web processes' authentication caches when access must end

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

A merchant's status or password changing, or an API key being revoked (or deleted), sends
`NOTIFY payportal_auth, '<merchant id>'` in the same transaction, so every process caching
authentication lookups (payportal/merchants/authcache.py) forgets that merchant exactly when
the change commits, whichever process or host made it.
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

FUNCTION = """
CREATE FUNCTION payportal_auth_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed jsonb := to_jsonb(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END);
BEGIN
    PERFORM pg_notify('payportal_auth', changed ->> TG_ARGV[0]);
    RETURN NULL;
END
$$
"""

TRIGGERS = (
    """
    CREATE TRIGGER merchants_auth_changed
    AFTER UPDATE OF status, password_hash, password_changed_at ON merchants
    FOR EACH ROW WHEN (
        OLD.status IS DISTINCT FROM NEW.status
        OR OLD.password_hash IS DISTINCT FROM NEW.password_hash
        OR OLD.password_changed_at IS DISTINCT FROM NEW.password_changed_at
    )
    EXECUTE FUNCTION payportal_auth_changed('id')
    """,
    """
    CREATE TRIGGER merchants_auth_deleted AFTER DELETE ON merchants
    FOR EACH ROW EXECUTE FUNCTION payportal_auth_changed('id')
    """,
    """
    CREATE TRIGGER api_keys_auth_changed
    AFTER UPDATE OF revoked_at, digest, merchant_id ON api_keys
    FOR EACH ROW WHEN (
        OLD.revoked_at IS DISTINCT FROM NEW.revoked_at
        OR OLD.digest IS DISTINCT FROM NEW.digest
        OR OLD.merchant_id IS DISTINCT FROM NEW.merchant_id
    )
    EXECUTE FUNCTION payportal_auth_changed('merchant_id')
    """,
    """
    CREATE TRIGGER api_keys_auth_deleted AFTER DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION payportal_auth_changed('merchant_id')
    """,
)


def upgrade() -> None:
    op.execute(FUNCTION)
    for trigger in TRIGGERS:
        op.execute(trigger)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS api_keys_auth_deleted ON api_keys")
    op.execute("DROP TRIGGER IF EXISTS api_keys_auth_changed ON api_keys")
    op.execute("DROP TRIGGER IF EXISTS merchants_auth_deleted ON merchants")
    op.execute("DROP TRIGGER IF EXISTS merchants_auth_changed ON merchants")
    op.execute("DROP FUNCTION IF EXISTS payportal_auth_changed()")
