"""Type names for statements and rows of any shape.

SQLAlchemy types a SELECT by the tuple of what it selects (`Select[User, Tenant]`); code that
takes or extends any SELECT names it with these.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from sqlalchemy import Row, Select

AnySelect: TypeAlias = Select[*tuple[Any, ...]]
AnyRow: TypeAlias = Row[*tuple[Any, ...]]
