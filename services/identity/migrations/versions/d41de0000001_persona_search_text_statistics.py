"""people search: fewer statistics of a persona's folded text

Revision ID: d41de0000001
Revises: d36de0000001
Create Date: 2026-12-06 18:50:00.000000

PostgreSQL only, and nothing the previous release reads changes (decision 0009). The planner
estimates each ``search_text %> word`` of people search (services/identity/search.py) by
computing the word's similarity to every value of the column's statistics: at the default
target, about a millisecond of planning per misspellable word, more than the statement then
spends reading the index. Every plan of that statement goes through the GIN indexes whatever
the estimate (its connections run with sequential scans off), so a target of 10 values is
enough; planning a two-word name went from about 2.5 to 0.4 ms among 10,000 personas. The new
target applies at the next ANALYZE, run here.
"""

from typing import Sequence, Union

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "d41de0000001"
down_revision: Union[str, Sequence[str], None] = "d36de0000001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

TARGET = 10


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE persona ALTER COLUMN search_text SET STATISTICS {TARGET}")
    op.execute("ANALYZE persona (search_text)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE persona ALTER COLUMN search_text SET STATISTICS -1")
    op.execute("ANALYZE persona (search_text)")
