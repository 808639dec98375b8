"""Every model, imported once so that metadata is complete (Alembic, tests, the app)."""

from backend.core import leases
from backend.core.database import Base
from backend.identity import models as identity_models
from backend.invitations import models as invitation_models
from backend.projects import models as project_models
from backend.webhooks import models as webhook_models
from tenants import idempotency as idempotency_models
from tenants import models as tenant_models
from tenants import outbox as outbox_models

metadata = Base.metadata

__all__ = [
    "idempotency_models",
    "identity_models",
    "invitation_models",
    "leases",
    "metadata",
    "outbox_models",
    "project_models",
    "tenant_models",
    "webhook_models",
]
