"""Projects, their members and their tasks: tenant tables keyed by `(tenant_id, id)`."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, ForeignKeyConstraint, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.core.database import (
    Base,
    CreatedAt,
    UUIDPrimaryKey,
    Versioned,
    string_enum,
    utcnow,
)
from backend.core.search import trigram_index
from backend.core.soft_delete import SoftDeletable
from backend.identity.models import User
from tenants.isolation import TenantScoped
from tenants.models import Tenant
from tenants.roles import ProjectRole

# Deleted rows are in the trash: they keep no name from anyone, and the trash lists them by
# deletion time.
_LIVE = text("deleted_at IS NULL")
_DELETED = text("deleted_at IS NOT NULL")


def _live_index(name: str, *columns: str, unique: bool = False) -> Index:
    """An index of the rows not in the trash: every read but the trash's is about those only."""
    return Index(name, *columns, unique=unique, sqlite_where=_LIVE, postgresql_where=_LIVE)


class Project(TenantScoped, UUIDPrimaryKey, CreatedAt, Versioned, SoftDeletable, Base):
    __tablename__ = "projects"
    __table_args__ = (
        # Lists and searches read the rows not in the trash only (0011).
        _live_index("ix_projects_tenant_id_created_at_id_live", "tenant_id", "created_at", "id"),
        trigram_index("projects", "name", where=_LIVE),
        # A project's name is unique in its tenant among the projects not in the trash.
        _live_index("ix_projects_tenant_id_name_live", "tenant_id", "name", unique=True),
        Index(
            "ix_projects_tenant_id_deleted_at_id",
            "tenant_id",
            "deleted_at",
            "id",
            sqlite_where=_DELETED,
            postgresql_where=_DELETED,
        ),
    )

    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    tenant: Mapped[Tenant] = relationship(lazy="raise", viewonly=True)
    creator: Mapped[User | None] = relationship(
        foreign_keys=[created_by], lazy="raise", viewonly=True
    )
    deleter: Mapped[User | None] = relationship(
        primaryjoin="foreign(Project.deleted_by) == User.id", lazy="raise", viewonly=True
    )


class ProjectMember(TenantScoped, CreatedAt, Versioned, Base):
    __tablename__ = "project_members"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "project_id"], ["projects.tenant_id", "projects.id"], ondelete="CASCADE"
        ),
        # Leaving the tenant removes every project membership in it.
        ForeignKeyConstraint(
            ["tenant_id", "user_id"],
            ["memberships.tenant_id", "memberships.user_id"],
            ondelete="CASCADE",
        ),
        Index(
            "ix_project_members_tenant_id_project_id_created_at_user_id",
            "tenant_id",
            "project_id",
            "created_at",
            "user_id",
        ),
        Index("ix_project_members_tenant_id_user_id", "tenant_id", "user_id"),
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    # No foreign key of its own to users: the one to memberships implies the user, and cascades
    # when they leave the tenant or the account is deleted.
    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    role: Mapped[ProjectRole] = mapped_column(string_enum(ProjectRole, "project_role"))

    user: Mapped[User] = relationship(
        primaryjoin="foreign(ProjectMember.user_id) == User.id", lazy="raise", viewonly=True
    )
    tenant: Mapped[Tenant] = relationship(lazy="raise", viewonly=True)
    project: Mapped[Project] = relationship(
        primaryjoin="and_(foreign(ProjectMember.tenant_id) == Project.tenant_id, "
        "foreign(ProjectMember.project_id) == Project.id)",
        lazy="raise",
        viewonly=True,
    )


class TaskStatus(StrEnum):
    TODO = "todo"
    DOING = "doing"
    DONE = "done"


class Task(TenantScoped, UUIDPrimaryKey, CreatedAt, Versioned, SoftDeletable, Base):
    __tablename__ = "tasks"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "project_id"], ["projects.tenant_id", "projects.id"], ondelete="CASCADE"
        ),
        # An assignee is a member of the tenant; the service also requires project membership
        # and unassigns tasks when someone leaves the project.
        ForeignKeyConstraint(
            ["tenant_id", "assignee_id"], ["memberships.tenant_id", "memberships.user_id"]
        ),
        Index(
            "ix_tasks_tenant_id_project_id_created_at_id",
            "tenant_id",
            "project_id",
            "created_at",
            "id",
        ),
        Index(
            "ix_tasks_tenant_id_project_id_status_created_at_id",
            "tenant_id",
            "project_id",
            "status",
            "created_at",
            "id",
        ),
        # Serves the assignee filter in its list order, and unassigning (by tenant, by project).
        Index(
            "ix_tasks_tenant_id_assignee_id_project_id_created_at_id",
            "tenant_id",
            "assignee_id",
            "project_id",
            "created_at",
            "id",
        ),
        # The admin's task list, most recently updated first (in the platform view by tenant),
        # and its search: of the rows not in the trash, which are all they read (0011).
        _live_index("ix_tasks_tenant_id_updated_at_id_live", "tenant_id", "updated_at", "id"),
        trigram_index("tasks", "title", where=_LIVE),
        Index(
            "ix_tasks_tenant_id_deleted_at_id",
            "tenant_id",
            "deleted_at",
            "id",
            sqlite_where=_DELETED,
            postgresql_where=_DELETED,
        ),
    )

    project_id: Mapped[uuid.UUID]
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[TaskStatus] = mapped_column(
        string_enum(TaskStatus, "task_status"), default=TaskStatus.TODO
    )
    assignee_id: Mapped[uuid.UUID | None]
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    tenant: Mapped[Tenant] = relationship(lazy="raise", viewonly=True)
    project: Mapped[Project] = relationship(
        primaryjoin="and_(foreign(Task.tenant_id) == Project.tenant_id, "
        "foreign(Task.project_id) == Project.id)",
        lazy="raise",
        viewonly=True,
    )
    # The assignee's foreign key is to memberships (tenant_id, user_id); the user is implied.
    assignee: Mapped[User | None] = relationship(
        primaryjoin="foreign(Task.assignee_id) == User.id", lazy="raise", viewonly=True
    )
    creator: Mapped[User | None] = relationship(
        foreign_keys=[created_by], lazy="raise", viewonly=True
    )
    deleter: Mapped[User | None] = relationship(
        primaryjoin="foreign(Task.deleted_by) == User.id", lazy="raise", viewonly=True
    )
