"""When each leg's next scheduled check is due: `deadline_due_at`, `followup_due_at` and
`checkin_due_at` on `referrals`, each with a partial index holding only the legs whose check is
still to come (`hub.followups.deadlines.arm_checks`), filled from the legs' status and the checks that
fired already (`referral_checks`).

Revision ID: c3d4e5f6a7b8
Revises: b2c3d4e5f6a7
Create Date: 2026-11-23 12:00:00
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

import hub.db
from hub.followups.deadlines import add_business_days

revision = 'c3d4e5f6a7b8'
down_revision = 'b2c3d4e5f6a7'
branch_labels = None
depends_on = None

COLUMNS = ('deadline_due_at', 'followup_due_at', 'checkin_due_at')
# Frozen here as they were when this revision was written (hub.followups.deadlines, hub.followups.checkins).
CHECKIN_AFTER_BUSINESS_DAYS = 3
CHECKIN_ASKED_UNTIL = timedelta(days=21)


def upgrade() -> None:
    with op.batch_alter_table('referrals') as batch:
        for column in COLUMNS:
            batch.add_column(sa.Column(column, hub.db.UTCDateTime(), nullable=True))
    for column in COLUMNS:
        op.create_index(f'ix_referrals_{column}', 'referrals', [column],
                        postgresql_where=sa.text(f'{column} IS NOT NULL'),
                        sqlite_where=sa.text(f'{column} IS NOT NULL'))
    fill(op.get_bind())


def fill(bind: sa.Connection) -> None:
    """Each leg's due-at columns from its status and the checks that fired already."""
    # The deadline of the leg's status, unless its check fired already.
    bind.execute(sa.text("""
        UPDATE referrals SET deadline_due_at = CASE status
            WHEN 'sent' THEN acknowledge_by WHEN 'acknowledged' THEN decide_by
            ELSE start_by END
        WHERE status IN ('sent', 'acknowledged', 'accepted')
          AND NOT EXISTS (SELECT 1 FROM referral_checks c
                          WHERE c.referral_id = referrals.id
                            AND c.kind = CASE referrals.status
                                WHEN 'sent' THEN 'acknowledge'
                                WHEN 'acknowledged' THEN 'decide' ELSE 'start' END)"""))
    fired = """EXISTS (SELECT 1 FROM referral_checks c
                       WHERE c.referral_id = referrals.id AND c.kind = '{kind}')"""
    completed = "status = 'completed' AND closed_at IS NOT NULL"
    if bind.dialect.name == 'postgresql':
        bind.execute(sa.text(f"""
            UPDATE referrals SET followup_due_at = CASE
                WHEN NOT {fired.format(kind='followup_30')} THEN closed_at + interval '30 days'
                ELSE closed_at + interval '180 days' END
            WHERE {completed} AND NOT {fired.format(kind='followup_180')}"""))
    else:  # SQLite keeps datetimes as text: computed here, one leg at a time
        legs, checks = _tables()
        followed_up = sa.exists().where(checks.c.referral_id == legs.c.id,
                                        checks.c.kind == 'followup_30')
        rows = bind.execute(sa.select(legs.c.id, legs.c.closed_at, followed_up).where(
            sa.text(completed), sa.text(f"NOT {fired.format(kind='followup_180')}"))).all()
        for leg_id, closed_at, followed in rows:
            _set(bind, leg_id, 'followup_due_at',
                 closed_at + timedelta(days=180 if followed else 30))
    # Check-ins: legs accepted within the window the hub still asks about, not asked yet.
    since = datetime.now(UTC) - CHECKIN_ASKED_UNTIL
    referrals, checks = _tables()
    asked = sa.exists().where(checks.c.referral_id == referrals.c.id, checks.c.kind == 'checkin')
    for leg_id, accepted_at in bind.execute(
            sa.select(referrals.c.id, referrals.c.accepted_at)
            .where(referrals.c.status.in_(('accepted', 'in_progress')),
                   referrals.c.accepted_at > since, ~asked)).all():
        _set(bind, leg_id, 'checkin_due_at',
             add_business_days(accepted_at, CHECKIN_AFTER_BUSINESS_DAYS))


def _tables() -> tuple[sa.TableClause, sa.TableClause]:
    legs = sa.table('referrals', sa.column('id', sa.Uuid()), sa.column('status', sa.String()),
                    sa.column('closed_at', hub.db.UTCDateTime()),
                    sa.column('accepted_at', hub.db.UTCDateTime()))
    checks = sa.table('referral_checks', sa.column('referral_id', sa.Uuid()),
                      sa.column('kind', sa.String()))
    return legs, checks


def _set(bind: sa.Connection, leg_id: object, column: str, when: datetime) -> None:
    referrals = sa.table('referrals', sa.column('id', sa.Uuid()),
                         sa.column(column, hub.db.UTCDateTime()))
    bind.execute(sa.update(referrals).where(referrals.c.id == leg_id)
                 .values({column: when}))


def downgrade() -> None:
    for column in COLUMNS:
        op.drop_index(f'ix_referrals_{column}', table_name='referrals')
    with op.batch_alter_table('referrals') as batch:
        for column in reversed(COLUMNS):
            batch.drop_column(column)
