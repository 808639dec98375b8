"""Request and response bodies of projects, project members and tasks."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from backend.core.text import NoNul, SingleLine
from backend.projects.models import TaskStatus
from tenants.roles import ProjectRole

Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), SingleLine
]
Title = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300), SingleLine
]
Description = Annotated[str, StringConstraints(max_length=20_000), NoNul]


class ProjectCreate(BaseModel):
    name: Name
    description: Description = ""


class ProjectUpdate(BaseModel):
    name: Name | None = None
    description: Description | None = None


class ProjectOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    description: str
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    role: ProjectRole = Field(description="The caller's effective role on the project.")


class ProjectMemberOut(BaseModel):
    user_id: uuid.UUID
    email: str
    full_name: str
    role: ProjectRole
    created_at: datetime = Field(description="When the user joined the project.")


class ProjectMemberPut(BaseModel):
    role: ProjectRole


class TaskCreate(BaseModel):
    title: Title
    description: Description = ""
    status: TaskStatus = TaskStatus.TODO
    assignee_id: uuid.UUID | None = Field(
        default=None, description="A member of the project (422 otherwise)."
    )


class TaskUpdate(BaseModel):
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
