"""notify the authentication caches when a merchant's dashboard session must end or changes face

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26

The web processes now cache merchant dashboard sessions for a few seconds beside tokens and API
keys (payportal/merchants/authcache.py). Whatever ends such a session, or changes what its
pages show, sends `NOTIFY payportal_auth, '<merchant id>'` in the same transaction:

- a session revoked (sign-out, sign-in elsewhere in that browser, a password change), deleted
  while still valid, or moved towards its end (expiry or last activity set earlier);
- a merchant's name or email changing (the sidebar shows them); status and password already
  notify (0002).

Moving last_seen_at forward (the once-a-minute touch of every active session) does not notify,
and neither does retention deleting sessions long expired or revoked.
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# OLD for an UPDATE too: the cached entry is filed under the merchant the session had
FUNCTION = """
CREATE FUNCTION payportal_session_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('payportal_auth', OLD.merchant_id::text);
    RETURN NULL;
END
$$
"""

TRIGGERS = (
    """
    CREATE TRIGGER dashboard_sessions_auth_changed AFTER UPDATE ON dashboard_sessions
    FOR EACH ROW WHEN (
        OLD.merchant_id IS NOT NULL AND (
            OLD.revoked_at IS DISTINCT FROM NEW.revoked_at
            OR NEW.expires_at < OLD.expires_at
            OR NEW.last_seen_at < OLD.last_seen_at
            OR OLD.created_at IS DISTINCT FROM NEW.created_at
            OR OLD.digest IS DISTINCT FROM NEW.digest
            OR OLD.csrf_token IS DISTINCT FROM NEW.csrf_token
            OR OLD.merchant_id IS DISTINCT FROM NEW.merchant_id
        )
    )
    EXECUTE FUNCTION payportal_session_changed()
    """,
    """
    CREATE TRIGGER dashboard_sessions_auth_deleted AFTER DELETE ON dashboard_sessions
    FOR EACH ROW WHEN (
        OLD.merchant_id IS NOT NULL AND OLD.revoked_at IS NULL AND OLD.expires_at > now()
    )
    EXECUTE FUNCTION payportal_session_changed()
    """,
    """
    CREATE TRIGGER merchants_profile_changed AFTER UPDATE OF name, email ON merchants
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.email IS DISTINCT FROM NEW.email)
    EXECUTE FUNCTION payportal_auth_changed('id')
    """,
)


def upgrade() -> None:
    op.execute(FUNCTION)
    for trigger in TRIGGERS:
        op.execute(trigger)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS merchants_profile_changed ON merchants")
    op.execute("DROP TRIGGER IF EXISTS dashboard_sessions_auth_deleted ON dashboard_sessions")
    op.execute("DROP TRIGGER IF EXISTS dashboard_sessions_auth_changed ON dashboard_sessions")
    op.execute("DROP FUNCTION IF EXISTS payportal_session_changed()")
