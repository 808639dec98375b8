"""Views of the projects layer: projects, project members, tasks.

Every write calls the projects service the API calls, with the admin as the caller on the
project (`admin.callers`): the same matrix decides (an assignee must belong to the project;
leaving a project unassigns one's tasks there) and the same events are audited.
"""

from __future__ import annotations

from typing import Any

from sqladmin import action
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from admin.base import AdminView, person
from admin.callers import admin_project_caller, tenant_caller
from admin.filters import LookupFilter, TrashFilter, enum_filter
from admin.pickers import ASSIGNEE, MEMBER, PROJECT, TENANT
from admin.scoping import AdminScope
from backend.core.soft_delete import INCLUDE_DELETED
from backend.core.statements import AnySelect
from backend.projects import service as projects
from backend.projects import tasks
from backend.projects.models import Project, ProjectMember, Task, TaskStatus
from tenants.roles import ProjectRole

WORK = "Work"


def project_filter(column: Any) -> LookupFilter:
    return LookupFilter(column, Project.id, Project.name, "Project", "project")


class TrashableView(AdminView):
    """A view of soft-deletable rows: the lists hide deleted rows unless "In the trash" is
    chosen; a deleted row's page shows when and by whom; "Restore" brings rows back through
    the service (`restore_row`)."""

    def get_filters(self) -> list[Any]:
        model: Any = self.model
        return [*super().get_filters(), TrashFilter(model.deleted_at)]

    async def count(self, request: Request, stmt: AnySelect | None = None) -> int:
        # SQLAdmin counts a subquery of the filtered list, which drops its execution options.
        if stmt is not None and TrashFilter.chosen(request):
            stmt = stmt.execution_options(**INCLUDE_DELETED)
        return await super().count(request, stmt)

    def details_query(self, request: Request) -> AnySelect:
        return super().details_query(request).execution_options(**INCLUDE_DELETED)

    async def restore_row(self, session: AsyncSession, scope: AdminScope, obj: Any) -> None:
        raise NotImplementedError

    @action("restore", "Restore", "Restore from the trash?")
    async def restore(self, request: Request) -> Response:
        return await self.run_action(request, self.restore_row, in_trash=True)


def _email(member: Any) -> str:
    return member.user.email if member.user else ""


def _name(obj: Any, prop: Any) -> str:
    """A tenant or project relationship column, by its name."""
    related = getattr(obj, prop if isinstance(prop, str) else prop.key)
    return related.name if related else ""


class ProjectAdmin(TrashableView, model=Project):
    name = "Project"
    icon = "fa-solid fa-folder"
    category = WORK
    column_list = [Project.name, Project.created_at, Project.updated_at]
    column_details_list = [
        Project.id,
        Project.tenant,
        Project.name,
        Project.description,
        Project.created_by,
        Project.created_at,
        Project.updated_at,
        Project.deleted_at,
        Project.deleted_by,
    ]
    column_formatters_detail = {
        Project.tenant: _name,
        Project.created_by: person("creator", "created_by"),
        Project.deleted_by: person("deleter", "deleted_by"),
    }
    column_labels = {Project.created_by: "created by", Project.deleted_by: "deleted by"}
    details_loads = (Project.creator, Project.deleter)
    column_searchable_list = [Project.name]
    column_sortable_list = [Project.name, Project.created_at, Project.updated_at]
    column_default_sort = [(Project.created_at, True)]
    form_columns = [Project.name, Project.description]
    form_pickers = {"tenant_id": TENANT}
    form_create_rules = ["tenant_id", "name", "description"]
    form_edit_rules = ["name", "description"]

    async def create_row(
        self, session: AsyncSession, scope: AdminScope, data: dict[str, Any]
    ) -> Any:
        caller = await tenant_caller(session, scope, data["tenant_id"])
        description = data.get("description") or ""
        created = await projects.create_project(session, caller, data["name"], description)
        return created.project

    async def update_row(
        self, session: AsyncSession, scope: AdminScope, obj: Any, data: dict[str, Any]
    ) -> None:
        caller = await admin_project_caller(session, scope, obj.tenant_id, obj.id)
        await projects.update_project(
            session, caller, name=data.get("name"), description=data.get("description") or ""
        )

    async def delete_row(self, session: AsyncSession, scope: AdminScope, obj: Any) -> None:
        caller = await admin_project_caller(session, scope, obj.tenant_id, obj.id)
        await projects.delete_project(session, caller)

    async def restore_row(self, session: AsyncSession, scope: AdminScope, obj: Any) -> None:
        caller = await tenant_caller(session, scope, obj.tenant_id)
        await projects.restore_project(session, caller, obj.id)


class ProjectMemberAdmin(AdminView, model=ProjectMember):
    name = "Project member"
    icon = "fa-solid fa-user-group"
    category = WORK
    column_list = [
        ProjectMember.project,
        ProjectMember.user,
        ProjectMember.role,
        ProjectMember.created_at,
    ]
    column_details_list = [
        ProjectMember.tenant,
        ProjectMember.project,
        ProjectMember.user,
        ProjectMember.role,
        ProjectMember.created_at,
    ]
    column_formatters = {
        ProjectMember.user: lambda m, _: _email(m),
        ProjectMember.project: _name,
    }
    column_formatters_detail = {**column_formatters, ProjectMember.tenant: _name}
    non_link_related_fields = [ProjectMember.user]
    column_searchable_list = ["user.email"]
    column_labels = {"user.email": "email", "user.full_name": "name"}
    column_sortable_list = [ProjectMember.role, ProjectMember.created_at, "user.email"]
    column_default_sort = [(ProjectMember.created_at, True)]
    column_filters = [
        project_filter(ProjectMember.project_id),
        enum_filter(ProjectMember.role, ProjectRole),
    ]
    column_export_list = [
        ProjectMember.project_id,
        ProjectMember.user_id,
        ProjectMember.role,
        ProjectMember.created_at,
    ]
    form_columns = [ProjectMember.role]
    form_pickers = {"tenant_id": TENANT, "project_id": PROJECT, "user_id": MEMBER}
    form_create_rules = ["tenant_id", "project_id", "user_id", "role"]
    form_edit_rules = ["role"]

    async def _put(
        self, session: AsyncSession, scope: AdminScope, tenant_id: Any, data: dict[str, Any]
    ) -> ProjectMember:
        project_id, user_id = data["project_id"], data["user_id"]
        caller = await admin_project_caller(session, scope, tenant_id, project_id)
        await projects.set_project_member(session, caller, user_id, ProjectRole(data["role"]))
        statement = select(ProjectMember).where(
            ProjectMember.project_id == project_id, ProjectMember.user_id == user_id
        )
        return (await session.scalars(statement)).one()

    async def create_row(
        self, session: AsyncSession, scope: AdminScope, data: dict[str, Any]
    ) -> Any:
        return await self._put(session, scope, data["tenant_id"], data)

    async def update_row(
        self, session: AsyncSession, scope: AdminScope, obj: Any, data: dict[str, Any]
    ) -> None:
        keys = {"project_id": obj.project_id, "user_id": obj.user_id}
        await self._put(session, scope, obj.tenant_id, {**data, **keys})

    async def delete_row(self, session: AsyncSession, scope: AdminScope, obj: Any) -> None:
        caller = await admin_project_caller(session, scope, obj.tenant_id, obj.project_id)
        await projects.remove_project_member(session, caller, obj.user_id)


class TaskAdmin(TrashableView, model=Task):
    name = "Task"
    icon = "fa-solid fa-list-check"
    category = WORK
    column_list = [Task.title, Task.status, Task.project, Task.assignee_id, Task.updated_at]
    column_details_list = [
        Task.id,
        Task.tenant,
        Task.project,
        Task.title,
        Task.description,
        Task.status,
        Task.assignee_id,
        Task.created_by,
        Task.created_at,
        Task.updated_at,
        Task.deleted_at,
        Task.deleted_by,
    ]
    column_formatters = {
        Task.project: _name,
        Task.assignee_id: person("assignee", "assignee_id"),
    }
    column_formatters_detail = {
        **column_formatters,
        Task.tenant: _name,
        Task.created_by: person("creator", "created_by"),
        Task.deleted_by: person("deleter", "deleted_by"),
    }
    column_labels = {
        Task.assignee_id: "assignee",
        Task.created_by: "created by",
        Task.deleted_by: "deleted by",
    }
    list_loads = (Task.assignee,)
    details_loads = (Task.assignee, Task.creator, Task.deleter)
    column_export_list = [  # ids, as before: exports are data, not pages
        Task.title,
        Task.status,
        Task.project_id,
        Task.assignee_id,
        Task.updated_at,
    ]
    column_searchable_list = [Task.title]
    # Sorts only an index serves (a million tasks sorted by title would take seconds).
    column_sortable_list = [Task.updated_at]
    column_default_sort = [(Task.updated_at, True)]
    column_filters = [project_filter(Task.project_id), enum_filter(Task.status, TaskStatus)]
    form_columns = [Task.title, Task.description, Task.status]
    form_pickers = {
        "tenant_id": TENANT,
        "project_id": PROJECT,
        "assignee_id": ASSIGNEE,
    }
    form_create_rules = ["tenant_id", "project_id", "title", "description", "status", "assignee_id"]
    form_edit_rules = ["title", "description", "status", "assignee_id"]

    async def create_row(
        self, session: AsyncSession, scope: AdminScope, data: dict[str, Any]
    ) -> Any:
        caller = await admin_project_caller(session, scope, data["tenant_id"], data["project_id"])
        return await tasks.create_task(
            session,
            caller,
            title=data["title"],
            description=data.get("description") or "",
            status=TaskStatus(data["status"]),
            assignee_id=data.get("assignee_id"),
        )

    async def update_row(
        self, session: AsyncSession, scope: AdminScope, obj: Any, data: dict[str, Any]
    ) -> None:
        fields = ("title", "description", "status", "assignee_id")
        changes = {name: data[name] for name in fields if name in data}
        changes["description"] = changes.get("description") or ""
        changes["status"] = TaskStatus(changes["status"])
        caller = await admin_project_caller(session, scope, obj.tenant_id, obj.project_id)
        await tasks.update_task(session, caller, obj.id, changes)

    async def delete_row(self, session: AsyncSession, scope: AdminScope, obj: Any) -> None:
        caller = await admin_project_caller(session, scope, obj.tenant_id, obj.project_id)
        await tasks.delete_task(session, caller, obj.id)

    async def restore_row(self, session: AsyncSession, scope: AdminScope, obj: Any) -> None:
        caller = await admin_project_caller(session, scope, obj.tenant_id, obj.project_id)
        await tasks.restore_task(session, caller, obj.id)
