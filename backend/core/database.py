"""The async engine, the session factory, the declarative base and the per-request session."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, TypeGuard

import asyncpg
from fastapi import Depends, Request
from sqlalchemy import Connection, DateTime, Enum, MetaData, event
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, declared_attr, mapped_column
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util import await_

from backend.core.config import DatabasePooler, Settings

logger = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every backend; SQLite hands back naive values otherwise."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        # asyncpg already decodes `timestamptz` as an aware UTC datetime: a list of 50 rows
        # would call the conversion above 100 times for nothing.
        if dialect.driver == "asyncpg":
            return None
        return super().result_processor(dialect, coltype)


def string_enum(enum_class: type[StrEnum], name: str) -> Enum:
    """Stored as its value in a short string column with a CHECK, the same on every backend."""
    return Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime}


class UUIDPrimaryKey:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4, sort_order=-50)


class CreatedAt:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Versioned:
    """A row version: 1 on insert, incremented by every ORM UPDATE, which also requires the
    version it read (`WHERE version = :read`), as does the ORM's DELETE. A write that matches
    no row raises `StaleDataError`: someone else's edit landed in between, and is kept.

    A counter rather than `updated_at`: two edits within the clock's resolution, or a clock
    that steps back, would leave a timestamp unchanged. Bulk UPDATEs that change such rows set
    `version=Model.version + 1` themselves.
    """

    version: Mapped[int] = mapped_column(default=1, server_default="1", sort_order=50)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        # A mixin: `__table__` exists on the mapped class it is mixed into, not on the mixin.
        return {"version_id_col": cls.__table__.c.version}  # type: ignore[attr-defined]


class AppSession(Session):
    """The sync session class behind every AsyncSession; the tenant layer hooks its events here."""


AfterCommit = Callable[[], Awaitable[None]]


def call_after_commit(session: AsyncSession, callback: AfterCommit) -> None:
    """Run `callback` once the request's transaction has committed (mail, for instance).

    A failure in the callback is logged and never undoes the committed work.
    """
    session.info.setdefault("after_commit", []).append(callback)


@event.listens_for(AppSession, "after_soft_rollback")
def _forget_after_commit_work(session: Session, previous_transaction: Any) -> None:
    # Work queued for after the commit belongs to what was just undone.
    if previous_transaction.parent is None:
        session.info.pop("after_commit", None)


async def run_after_commit(session: AsyncSession) -> None:
    for callback in session.info.pop("after_commit", []):
        try:
            await callback()
        except Exception:
            logger.exception("after-commit callback failed")


def _enable_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class SettingsAtBeginConnection(asyncpg.Connection):
    """An asyncpg connection that sends a transaction's settings in the same message as BEGIN.

    asyncpg starts a transaction with a simple-protocol `BEGIN` of its own, lazily, just before
    the transaction's first statement. The statements queued by `run_at_transaction_start` ride
    along in that message (`BEGIN; SET LOCAL ...`): the settings cost no round trip, and they
    are in force before anything else runs in the transaction.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sql_at_begin = ""

    async def execute(self, query: str, *args: Any, **options: Any) -> str:
        if self.sql_at_begin and not args and query.startswith("BEGIN"):
            query, self.sql_at_begin = f"{query} {self.sql_at_begin}", ""
        return await super().execute(query, *args, **options)


def _queues_sql_at_begin(driver: object) -> TypeGuard[SettingsAtBeginConnection]:
    # Not isinstance: asyncpg's connection metaclass answers True for any asyncpg connection.
    return SettingsAtBeginConnection in type(driver).__mro__


def queues_sql_at_begin(connection: Connection) -> bool:
    """Whether `connection` is one of our PostgreSQL connections (not SQLite, not a plain one)."""
    return _queues_sql_at_begin(connection.connection.driver_connection)


def run_at_transaction_start(connection: Connection, sql: str) -> None:
    """Make `sql` (a `SET LOCAL`, say) the transaction's first work on PostgreSQL.

    Before the transaction has reached the server, `sql` replaces what was queued and goes with
    BEGIN; once it has, it runs at once, in one simple-protocol round trip (no prepared
    statement, so no statement cache entry per value).
    """
    driver = connection.connection.driver_connection
    if not _queues_sql_at_begin(driver):
        connection.exec_driver_sql(sql)
    elif driver.is_in_transaction():
        await_(driver.execute(sql))
    else:
        driver.sql_at_begin = sql


def _unique_statement_name() -> str:
    return f"__asyncpg_{uuid.uuid4().hex}__"


def _asyncpg_connect_args(settings: Settings, statement_timeout_ms: int) -> dict[str, Any]:
    connect_args: dict[str, Any] = {
        "connection_class": SettingsAtBeginConnection,
        "timeout": settings.database_connect_timeout_seconds,
    }
    if settings.database_pooler is DatabasePooler.PGBOUNCER:
        # A transaction pooler hands each transaction to any server connection: a statement
        # prepared on one is unknown on the next, and startup settings are refused. The
        # statement timeout then belongs to the role (README, "Behind PgBouncer").
        connect_args["statement_cache_size"] = 0
        connect_args["prepared_statement_cache_size"] = 0
        connect_args["prepared_statement_name_func"] = _unique_statement_name
    elif statement_timeout_ms:
        connect_args["server_settings"] = {"statement_timeout": str(statement_timeout_ms)}
    return connect_args


OWNER_POOL_SIZE = 2  # the platform view of the panel: a few superusers at most


def create_engine(
    url: str,
    settings: Settings,
    *,
    pool_size: int | None = None,
    statement_timeout_ms: int = 0,
) -> AsyncEngine:
    """The engine for `url`; `statement_timeout_ms` cuts runaway statements on PostgreSQL."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url)
        event.listen(engine.sync_engine, "connect", _enable_sqlite_pragmas)
        return engine
    return create_async_engine(
        url,
        pool_size=pool_size or settings.database_pool_size,
        max_overflow=settings.database_max_overflow if pool_size is None else pool_size,
        pool_timeout=settings.database_pool_timeout_seconds,
        pool_pre_ping=settings.database_pool_pre_ping,
        connect_args=_asyncpg_connect_args(settings, statement_timeout_ms),
    )


@dataclass(frozen=True)
class Database:
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    # PostgreSQL with a schema owner's URL of its own: read-only sessions as that owner, for the
    # platform view of the admin panel (`tenants.isolation.platform_session`).
    owner_engine: AsyncEngine | None = None
    owner_reads: async_sessionmaker[AsyncSession] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        engine = create_engine(
            settings.database_url,
            settings,
            statement_timeout_ms=settings.database_statement_timeout_ms,
        )
        owner_url = settings.migrations_database_url or settings.database_url
        if settings.is_sqlite or owner_url == settings.database_url:
            return cls(engine, make_session_factory(engine))
        owner = create_engine(
            owner_url,
            settings,
            pool_size=OWNER_POOL_SIZE,
            statement_timeout_ms=settings.database_statement_timeout_ms,
        )
        reads = make_session_factory(owner.execution_options(postgresql_readonly=True))
        return cls(engine, make_session_factory(engine), owner, reads)

    @classmethod
    def as_owner(cls, settings: Settings) -> Database:
        """The schema owner's connection (MIGRATIONS_DATABASE_URL), for what the app role may
        not do: bootstrap and `create-superuser`."""
        engine = create_engine(settings.migrations_database_url or settings.database_url, settings)
        return cls(engine, make_session_factory(engine))

    @property
    def platform_session_factory(self) -> async_sessionmaker[AsyncSession]:
        return self.owner_reads or self.session_factory

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.owner_engine is not None:
            await self.owner_engine.dispose()


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, sync_session_class=AppSession)


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def _commit_and_close(session: Session) -> None:
    session.commit()
    session.close()


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    session = get_database(request).session_factory()
    try:
        yield session
        # One hop into SQLAlchemy's greenlet for both, COMMIT and the connection's return to the
        # pool, rather than one each and a task to shield the close: this runs on every request.
        await session.run_sync(_commit_and_close)
    except BaseException:
        # Closing rolls back what is open, and completes even if the request is cancelled.
        async with session:
            raise
    await run_after_commit(session)


# scope="function": commit (or roll back) before the response is sent, so that a client never
# sees a success whose transaction later failed.
DbSession = Annotated[AsyncSession, Depends(_request_session, scope="function")]
