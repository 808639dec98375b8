"""Request and response bodies of projects, project members and tasks."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from backend.core.schemas import RequestBody
from backend.core.text import NAME_PATTERN, TEXT_PATTERN, strip_surrounding_space
from backend.projects.models import TaskStatus
from tenants.roles import ProjectRole

Name = Annotated[
    str,
    Field(min_length=1, max_length=200, pattern=NAME_PATTERN),
    AfterValidator(strip_surrounding_space),
]
Title = Annotated[
    str,
    Field(min_length=1, max_length=300, pattern=NAME_PATTERN),
    AfterValidator(strip_surrounding_space),
]
Description = Annotated[str, Field(max_length=20_000, pattern=TEXT_PATTERN)]


class ProjectCreate(RequestBody):
    name: Name
    description: Description = ""


class ProjectUpdate(RequestBody):
    name: Name | None = None
    description: Description | None = None


class ProjectData(BaseModel):
    """A project as its webhook events show it: as the API does, less the caller's own role."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    description: str
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class ProjectOut(ProjectData):
    role: ProjectRole = Field(description="The caller's effective role on the project.")


class ProjectMemberOut(BaseModel):
    user_id: uuid.UUID
    email: str
    full_name: str
    role: ProjectRole
    created_at: datetime = Field(description="When the user joined the project.")


class ProjectMemberPut(RequestBody):
    role: ProjectRole


class TaskCreate(RequestBody):
    title: Title
    description: Description = ""
    status: TaskStatus = TaskStatus.TODO
    assignee_id: uuid.UUID | None = Field(
        default=None, description="A member of the project (422 otherwise)."
    )


class TaskUpdate(RequestBody):
    """Only the fields sent change; `"assignee_id": null` unassigns."""

    title: Title | None = None
    description: Description | None = None
    status: TaskStatus | None = None
    assignee_id: uuid.UUID | None = None

    def changes(self) -> dict[str, Any]:
        """The fields sent; a null means "unchanged", except for assignee_id."""
        sent = self.model_dump(exclude_unset=True)
        return {f: v for f, v in sent.items() if v is not None or f == "assignee_id"}


class TaskOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    project_id: uuid.UUID
    title: str
    description: str
    status: TaskStatus
    assignee_id: uuid.UUID | None
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class TrashItem(BaseModel):
    type: Literal["project", "task"]
    id: uuid.UUID
    project_id: uuid.UUID = Field(
        description="The project the entry belongs to (a project's own id for a project)."
    )
    name: str = Field(description="A project's name or a task's title.")
    deleted_at: datetime
    deleted_by: uuid.UUID | None = Field(description="The user who deleted it, when a user did.")
    purge_after: datetime = Field(description="When the purge removes it for good.")
