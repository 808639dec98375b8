"""The async engine, the session factory, the declarative base and the per-request session."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

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
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util import await_

from backend.core.config import Settings

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


def _queues_sql_at_begin(driver: Any) -> bool:
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


def create_engine(url: str, settings: Settings) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url)
        event.listen(engine.sync_engine, "connect", _enable_sqlite_pragmas)
        return engine
    return create_async_engine(
        url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_timeout=settings.database_pool_timeout_seconds,
        pool_pre_ping=settings.database_pool_pre_ping,
        connect_args={"connection_class": SettingsAtBeginConnection},
    )


@dataclass(frozen=True)
class Database:
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        engine = create_engine(settings.database_url, settings)
        return cls(engine, make_session_factory(engine))

    async def dispose(self) -> None:
        await self.engine.dispose()


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, sync_session_class=AppSession)


def get_database(request: Request) -> Database:
    return request.app.state.database


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with get_database(request).session_factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
        await run_after_commit(session)


# scope="function": commit (or roll back) before the response is sent, so that a client never
# sees a success whose transaction later failed.
DbSession = Annotated[AsyncSession, Depends(_request_session, scope="function")]
