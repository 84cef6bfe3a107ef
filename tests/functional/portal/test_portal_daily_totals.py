"""The daily rollup (payment_daily_totals) always holds the hourly rollup summed by UTC day, which
is what the payments themselves say once the folder has run: after commits of every kind of
change, under concurrent writers and a folder, in any session TimeZone, and through the
migrations that backfill it (0003) and that move the fold off the commit (0005)."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.orm import Session, sessionmaker

from payportal.db import utcnow
from payportal.payments.models import Payment
from payportal.payments.services import refund_payment
from payportal.payments.state import SETTLED, apply_transition, lock_payment
from payportal.portal.models import PaymentDailyTotal, PaymentHourlyTotal, PaymentTotalDelta
from payportal.portal.rollup import fold_deltas, settled_volumes
from tests.factories import create_merchant, create_payment
from tests.functional.portal.conftest import folders_at_work

ROOT = Path(__file__).resolve().parents[3]
# UTC+12:45 (+13:45 in its summer): a session there truncating its own way would shift days
FAR_ZONE = "Pacific/Chatham"


def utc_day(at: dt.datetime) -> dt.datetime:
    return at.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def without_empty(groups: dict) -> dict:
    return {key: value for key, value in groups.items() if value != (0, 0)}


def live_by_day(conn, merchant_ids) -> dict:
    """(merchant, UTC day, currency, status) -> (payments, amount), from the payments."""
    found: dict = {}
    rows = conn.execute(
        sa.select(Payment.merchant_id, Payment.created_at, Payment.currency, Payment.status,
                  Payment.amount).where(Payment.merchant_id.in_(merchant_ids))
    )  # fmt: skip
    for merchant_id, created_at, currency, status, amount in rows:
        key = (merchant_id, utc_day(created_at), currency, str(status))
        payments, total = found.get(key, (0, 0))
        found[key] = (payments + 1, total + amount)
    return found


def hourly_by_day(conn, merchant_ids) -> dict:
    """The hourly rollup summed by UTC day, in Python."""
    found: dict = {}
    t = PaymentHourlyTotal
    rows = conn.execute(
        sa.select(t.merchant_id, t.hour, t.currency, t.status, t.payments, t.amount).where(
            t.merchant_id.in_(merchant_ids)
        )
    )
    for merchant_id, hour, currency, status, payments, amount in rows:
        key = (merchant_id, utc_day(hour), currency, str(status))
        so_far, total = found.get(key, (0, 0))
        found[key] = (so_far + payments, total + amount)
    return without_empty(found)


def daily(conn, merchant_ids) -> dict:
    t = PaymentDailyTotal
    rows = conn.execute(
        sa.select(t.merchant_id, t.day, t.currency, t.status, t.payments, t.amount).where(
            t.merchant_id.in_(merchant_ids)
        )
    )
    found = {(m, day, c, str(s)): (n, amount) for m, day, c, s, n, amount in rows}
    assert all(day == utc_day(day) for _m, day, _c, _s in found), "days start at UTC midnight"
    return without_empty(found)


def assert_rollups_exact(conn, merchant_ids) -> None:
    live = live_by_day(conn, merchant_ids)
    assert daily(conn, merchant_ids) == live
    assert hourly_by_day(conn, merchant_ids) == live


def move(session, payment_id, created_at: dt.datetime) -> None:
    session.execute(
        sa.update(Payment).where(Payment.id == payment_id).values(created_at=created_at)
    )


def in_far_zone(session) -> None:
    """This transaction in a session TimeZone far from UTC."""
    session.execute(sa.text(f"SET LOCAL TIME ZONE '{FAR_ZONE}'"))


@pytest.fixture
def far_zone_folder(committed_db):
    """fold_deltas' sessions, in a session TimeZone far from UTC."""
    engine = sa.create_engine(committed_db.url, connect_args={"options": f"-c TimeZone={FAR_ZONE}"})
    yield sessionmaker(bind=engine)
    engine.dispose()


MIX = [
    ("USD", "completed", 10_050),
    ("USD", "pending", 7_000),
    ("USD", "failed", 5_000),
    ("EUR", "partially_refunded", 12_345),
    ("EUR", "pending", 2_000),
    ("EUR", "cancelled", 300),
    ("JPY", "completed", 777),
    ("JPY", "disputed", 1_500),
    ("KWD", "refunded", 1_234),
    ("GBP", "expired", 4_200),
]


def test_every_kind_of_change_lands_in_the_daily_totals(committed_db, settings, far_zone_folder):
    today = dt.datetime.combine(utcnow().date(), dt.time(), dt.UTC)
    with Session(committed_db, expire_on_commit=False) as session:
        in_far_zone(session)
        merchant = create_merchant(session, settings)
        other = create_merchant(session, settings)
        ids = []
        for n, (currency, status, amount) in enumerate(MIX * 2):
            owner = merchant if n < len(MIX) + 6 else other
            payment = create_payment(
                session, settings, owner, status=status, currency=currency, amount=amount
            )
            # across days and hours, on both sides of UTC midnights
            at = today - dt.timedelta(days=n % 4, hours=(5 * n) % 24, minutes=n)
            if n % 5 == 0:
                at = today - dt.timedelta(days=n % 3, microseconds=1)
            elif n % 5 == 1:
                at = today - dt.timedelta(days=n % 3)
            move(session, payment.id, at)
            ids.append(payment.id)
        session.commit()
        assert fold_deltas(far_zone_folder) > 0
        assert_rollups_exact(session, [merchant.id, other.id])

        # settle, refund, cancel; move one payment over a UTC midnight and one within its day
        # (its hours change, its day's totals net to nothing)
        in_far_zone(session)
        by_status = {}
        for payment_id in ids:
            by_status.setdefault(str(session.get(Payment, payment_id).status), []).append(
                payment_id
            )
        first_pending, second_pending = by_status["pending"][:2]
        apply_transition(
            session, lock_payment(session, payment_id=first_pending), "completed",
            source="api", settings=settings,
        )  # fmt: skip
        apply_transition(
            session, lock_payment(session, payment_id=second_pending), "cancelled",
            source="api", settings=settings,
        )  # fmt: skip
        for payment_id, amount in ((by_status["completed"][0], None), (first_pending, 1_000)):
            refund_payment(
                session, settings, lock_payment(session, payment_id=payment_id), amount=amount,
                reason=None, source="api", actor="test", correlation_id=None,
            )  # fmt: skip
        move(session, by_status["failed"][0], today - dt.timedelta(days=1, microseconds=1))
        move(session, by_status["failed"][0], today + dt.timedelta(minutes=1))
        move(session, by_status["expired"][0], today - dt.timedelta(days=2, hours=-3))
        move(session, by_status["expired"][0], today - dt.timedelta(days=2, hours=-20))
        session.commit()
        assert fold_deltas(far_zone_folder) > 0
        assert_rollups_exact(session, [merchant.id, other.id])

        # a change rolled back changes neither table
        before = daily(session, [merchant.id])
        move(session, ids[0], today - dt.timedelta(days=40))
        session.rollback()
        assert fold_deltas(far_zone_folder) == 0
        assert daily(session, [merchant.id]) == before
        assert session.scalar(sa.select(sa.func.count()).select_from(PaymentTotalDelta)) == 0


def test_concurrent_commits_over_several_days_stay_exact(committed_db, settings):
    """Threads on separate connections commit changes of the same merchant spanning several
    days and currencies at once while a folder moves them into the same daily and hourly rows
    (a deadlock or a lost delta would show)."""
    today = dt.datetime.combine(utcnow().date(), dt.time(), dt.UTC)
    with Session(committed_db, expire_on_commit=False) as session:
        merchant = create_merchant(session, settings)
        session.commit()
    workers, rounds = 8, 4
    barrier = threading.Barrier(workers + 1)
    errors: list[BaseException] = []
    factory = sessionmaker(bind=committed_db)

    def work(n: int):
        try:
            with Session(committed_db, expire_on_commit=False) as session:
                barrier.wait()
                for i in range(rounds):
                    created = [
                        create_payment(session, settings, merchant, currency=currency)
                        for currency in ("USD", "EUR", "USD")
                    ]
                    for k, payment in enumerate(created):
                        move(session, payment.id, today - dt.timedelta(days=(n + i + k) % 3))
                    session.commit()
                    for k, payment in enumerate(created):
                        target = ("completed", "failed", "cancelled")[(n + i + k) % 3]
                        locked = lock_payment(session, payment_id=payment.id)
                        apply_transition(session, locked, target, source="api", settings=settings)
                    move(session, created[0].id, today - dt.timedelta(days=(n + i) % 2, hours=1))
                    session.commit()
        except BaseException as exc:  # reported to the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
    with folders_at_work(factory, 1, batch=7, barrier=barrier, errors=errors):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert errors == []
    fold_deltas(factory)
    with Session(committed_db) as session:
        assert_rollups_exact(session, [merchant.id])
        assert sum(n for n, _amount in daily(session, [merchant.id]).values()) == (
            workers * rounds * 3
        )


def test_operator_volumes_from_the_daily_totals_and_open_changes(committed_db, settings):
    """settled_volumes since a UTC midnight (daily totals) and since an hour (hourly totals)
    both give what the payments say: folded, committed and not folded yet, and the reading
    transaction's own changes."""
    today = dt.datetime.combine(utcnow().date(), dt.time(), dt.UTC)
    with Session(committed_db, expire_on_commit=False) as session:
        merchant = create_merchant(session, settings)
        for n, (currency, status, amount) in enumerate(MIX):
            payment = create_payment(
                session, settings, merchant, status=status, currency=currency, amount=amount
            )
            move(session, payment.id, today - dt.timedelta(days=n % 5, hours=n))
            if n == 4:
                session.commit()
                fold_deltas(sessionmaker(bind=committed_db))
        session.commit()
        create_payment(session, settings, merchant, status="completed", currency="KWD")
        late = create_payment(session, settings, merchant, status="completed", amount=5)
        move(session, late.id, today - dt.timedelta(days=2, hours=-5))
        for since in (today - dt.timedelta(days=3), today - dt.timedelta(days=3, hours=-4)):
            expected: dict[str, tuple[int, int]] = {}
            for payment in session.scalars(
                sa.select(Payment).where(
                    Payment.merchant_id == merchant.id,
                    Payment.created_at >= since,
                    Payment.status.in_(SETTLED),
                )
            ):
                amount, count = expected.get(payment.currency, (0, 0))
                expected[payment.currency] = (amount + payment.amount, count + 1)
            found = settled_volumes(session, [merchant.id], since)[merchant.id]
            assert {c: (a, n) for c, a, n in found} == expected
            assert [a for _c, a, _n in found] == sorted(
                (a for a, _n in expected.values()), reverse=True
            )
        session.rollback()


# the backfill, on a database of its own migrated step by step


@pytest.fixture
def far_zone_database_url(postgres_server_url):
    """An empty database whose sessions all run in FAR_ZONE, the migrations' included."""
    name = f"payportal_daily_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        conn.execute(sa.text(f"ALTER DATABASE \"{name}\" SET TIME ZONE '{FAR_ZONE}'"))
    yield sa.engine.make_url(postgres_server_url).set(database=name)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


# payments every 37 minutes over ten days (crossing every hour and midnight at some point),
# with a currency and status mix, plus one at a UTC midnight and one just before it
SEED_PAYMENTS = """
WITH m AS (
    INSERT INTO merchants (name, email, password_hash, merchant_type)
    SELECT 'Merchant ' || n, 'merchant' || n || '@example.com', '!', 'business'
    FROM generate_series(1, 2) AS n
    RETURNING id, name
)
INSERT INTO payments (reference, merchant_id, amount, currency, status, created_at)
SELECT 'pay_' || i, m.id, 100 + i * 7,
       (ARRAY['USD', 'EUR', 'JPY'])[1 + i % 3],
       (ARRAY['pending', 'completed', 'failed', 'refunded'])[1 + i % 4]::payment_status,
       CASE i WHEN 1 THEN :midnight
              WHEN 2 THEN :midnight - interval '1 microsecond'
              ELSE :midnight - i * interval '37 minutes' END
FROM generate_series(1, 400) AS i
JOIN m ON m.name = 'Merchant ' || (1 + i % 2)
"""


def test_the_migration_backfills_the_daily_totals_and_downgrades_cleanly(far_zone_database_url):
    url = far_zone_database_url.render_as_string(hide_password=False)
    config = Config(str(ROOT / "development.ini"))
    config.attributes["database_url"] = url
    engine = sa.create_engine(far_zone_database_url, poolclass=sa.pool.NullPool)
    midnight = dt.datetime.combine(utcnow().date(), dt.time(), dt.UTC)
    command.upgrade(config, "0002")
    with engine.begin() as conn:
        conn.execute(sa.text(SEED_PAYMENTS), {"midnight": midnight})
    with engine.begin() as conn:  # moves leave hourly rows whose payments net to zero
        conn.execute(sa.text("UPDATE payments SET status = 'completed' WHERE status = 'pending'"))
        conn.execute(
            sa.text("UPDATE payments SET created_at = created_at + interval '2 hours' "
                    "WHERE reference LIKE 'pay\\_1%'")
        )  # fmt: skip

    command.upgrade(config, "head")
    folder = sessionmaker(bind=engine)
    with engine.begin() as conn:
        merchants = list(conn.execute(sa.text("SELECT id FROM merchants")).scalars())
        assert len(daily(conn, merchants)) > 100
        assert_rollups_exact(conn, merchants)
        conn.execute(sa.text("UPDATE payments SET status = 'refunded' WHERE status = 'completed'"))
    assert fold_deltas(folder) > 0
    with engine.begin() as conn:
        assert_rollups_exact(conn, merchants)
        # left for the downgrade to fold: the fold at commit it puts back only sees its own
        conn.execute(sa.text("UPDATE payments SET status = 'disputed' WHERE status = 'refunded'"))

    command.downgrade(config, "0002")
    with engine.begin() as conn:
        assert sa.inspect(conn).has_table("payment_daily_totals") is False
        assert hourly_by_day(conn, merchants) == live_by_day(conn, merchants)
        # payments still change (the fold at commit no longer writes the dropped table)
        conn.execute(sa.text("UPDATE payments SET status = 'failed' WHERE status = 'disputed'"))
    with engine.begin() as conn:
        assert hourly_by_day(conn, merchants) == live_by_day(conn, merchants)
        assert conn.scalar(sa.text("SELECT count(*) FROM payment_total_deltas")) == 0

    command.upgrade(config, "head")
    with engine.begin() as conn:
        assert_rollups_exact(conn, merchants)
        conn.execute(sa.text("UPDATE payments SET status = 'completed' WHERE status = 'failed'"))
    assert fold_deltas(folder) > 0
    with engine.begin() as conn:
        assert_rollups_exact(conn, merchants)
    engine.dispose()
