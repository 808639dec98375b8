"""The OpenAPI document: short operation ids, and every error answer documented as problem+json.

The ids name the functions of generated clients (`projects_create`), so they are part of the
API's contract and live in one table rather than follow the Python names. The error answers are
mostly derived from each operation's shape: a bearer token means 401 and 403, a path parameter
404, any input 422, a page cursor 400, the database 503. What only the service knows (a taken
slug is 409) is listed with the id. A create that declares the `Idempotency-Key` header also
documents the `Idempotent-Replayed` answer header, and its 409 and 422 say what they mean there.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel

from backend.core.errors import PROBLEM_JSON, ProblemDetails
from backend.invitations.schemas import InvitationOut
from backend.projects.schemas import ProjectData, TaskOut
from backend.webhooks.schemas import EventPayload, PingData
from tenants.idempotent_routes import HEADER as IDEMPOTENCY_KEY
from tenants.idempotent_routes import REPLAYED_HEADER
from tenants.schemas import MemberOut

PROBLEM_SCHEMA = {"$ref": "#/components/schemas/Problem"}
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer"},
    }
}
ERROR_DESCRIPTIONS = {
    400: "The request cannot be served as it is (see `detail`).",
    401: "The bearer token is missing, not valid, or no longer valid.",
    403: (
        "The caller may not do this (role, a suspended tenant or one scheduled for deletion, "
        "a service client, or an API key outside its tenant's routes)."
    ),
    404: "Not found, or not visible to the caller.",
    409: "The request conflicts with the current state (see `detail`).",
    410: "The link was used, withdrawn, replaced or has expired.",
    413: "The request body is too large.",
    422: "The input is not valid; `errors` names the fields.",
    429: "Too many requests; retry after `Retry-After` seconds.",
    503: "A dependency (the database) is unavailable; retry after `Retry-After` seconds.",
}
HEADERS = {429: RETRY_AFTER, 503: RETRY_AFTER}
# A create that honours Idempotency-Key (it declares the header) also answers these.
IDEMPOTENT_ERRORS = {
    409: "a request with the same `Idempotency-Key` is still being processed (retry later)",
    422: "the `Idempotency-Key` was used with a different request (method, path or body)",
}
REPLAYED = {
    REPLAYED_HEADER: {
        "description": "`true` when this is the stored answer to an earlier request with the "
        "same `Idempotency-Key` (nothing was created again; a secret shown once is null).",
        "schema": {"type": "string", "enum": ["true"]},
    }
}

# What `data` holds in each event: the object as the API shows it.
EVENT_DATA: dict[str, type[BaseModel]] = {
    "member.added": MemberOut,
    "member.role_changed": MemberOut,
    "member.removed": MemberOut,
    "project.created": ProjectData,
    "project.updated": ProjectData,
    "project.deleted": ProjectData,
    "task.created": TaskOut,
    "task.updated": TaskOut,
    "task.deleted": TaskOut,
    "invitation.created": InvitationOut,
    "invitation.accepted": InvitationOut,
    "webhook.ping": PingData,
}
WEBHOOK_DELIVERY = (
    "POSTed to each endpoint subscribed to the type, signed per the Standard Webhooks "
    "specification: verify `webhook-signature` with the endpoint's secret (e.g. "
    "`standardwebhooks.Webhook(secret).verify(body, headers)`). Delivered at least once: "
    "`webhook-id` (the event id) is the same on every retry. No redirect is followed."
)
WEBHOOK_HEADERS = [
    {
        "name": "webhook-id",
        "in": "header",
        "required": True,
        "description": "The event's id; deduplicate by it.",
        "schema": {"type": "string"},
    },
    {
        "name": "webhook-timestamp",
        "in": "header",
        "required": True,
        "description": "Unix seconds when this attempt was signed.",
        "schema": {"type": "string"},
    },
    {
        "name": "webhook-signature",
        "in": "header",
        "required": True,
        "description": (
            '`v1,` and the base64 HMAC-SHA256 of "{id}.{timestamp}.{body}"; two, space-separated, '
            "for 24 hours after a secret rotation."
        ),
        "schema": {"type": "string"},
    },
]


@dataclass(frozen=True)
class Operation:
    id: str
    # Statuses the service answers by design beyond those derived from the operation's shape.
    errors: tuple[int, ...] = ()
    database: bool = True
    # The /oauth endpoints answer RFC 6749 bodies, which their routes document themselves.
    rfc6749: bool = False


# By route name: the handler's function name.
OPERATIONS: dict[str, Operation] = {
    "sign_up": Operation("users-sign-up", errors=(403, 409, 429)),
    "verify_email": Operation("users-verify-email", errors=(400,)),
    "request_password_reset": Operation("users-request-password-reset", errors=(429,)),
    "confirm_password_reset": Operation("users-confirm-password-reset", errors=(400,)),
    "read_me": Operation("me-read"),
    "update_me": Operation("me-update"),
    "change_password": Operation("me-change-password", errors=(400, 429)),
    "log_out_everywhere": Operation("me-log-out-everywhere"),
    "resend_verification_mail": Operation("me-resend-verification-mail", errors=(429,)),
    "token": Operation("oauth-token", rfc6749=True),
    "revoke": Operation("oauth-revoke", rfc6749=True),
    "introspect": Operation("oauth-introspect", rfc6749=True),
    "metadata": Operation("oauth-metadata", database=False),
    "jwks": Operation("oauth-jwks", database=False),
    "create_api_key": Operation("api-keys-create", errors=(404,)),
    "list_api_keys": Operation("api-keys-list"),
    "revoke_api_key": Operation("api-keys-revoke"),
    "create_tenant": Operation("tenants-create", errors=(409,)),
    "export_tenant": Operation("tenants-export"),
    "export_me": Operation("me-export"),
    "erase_me": Operation("me-erase", errors=(400, 409, 429)),
    "list_my_tenants": Operation("tenants-list"),
    "read_tenant": Operation("tenants-read"),
    "update_tenant": Operation("tenants-update", errors=(409,)),
    "delete_tenant": Operation("tenants-delete"),
    "restore_tenant": Operation("tenants-restore", errors=(409,)),
    "list_members": Operation("members-list"),
    "read_member": Operation("members-read"),
    "change_member_role": Operation("members-change-role", errors=(409,)),
    "remove_member": Operation("members-remove", errors=(409,)),
    "list_audit_events": Operation("audit-events-list"),
    "create_service_client": Operation("service-clients-create", errors=(409,)),
    "list_service_clients": Operation("service-clients-list"),
    "revoke_service_client": Operation("service-clients-revoke"),
    "create_project": Operation("projects-create", errors=(409,)),
    "list_projects": Operation("projects-list"),
    "read_project": Operation("projects-read"),
    "update_project": Operation("projects-update", errors=(409,)),
    "delete_project": Operation("projects-delete"),
    "restore_project": Operation("projects-restore", errors=(409,)),
    "list_project_members": Operation("project-members-list"),
    "read_project_member": Operation("project-members-read"),
    "put_project_member": Operation("project-members-put"),
    "remove_project_member": Operation("project-members-remove"),
    "create_task": Operation("tasks-create", errors=(409,)),
    "list_tasks": Operation("tasks-list"),
    "read_task": Operation("tasks-read"),
    "update_task": Operation("tasks-update"),
    "delete_task": Operation("tasks-delete"),
    "restore_task": Operation("tasks-restore"),
    "list_trash": Operation("trash-list"),
    "invite_to_tenant": Operation("invitations-create", errors=(409, 429)),
    "invite_to_project": Operation("project-invitations-create", errors=(409, 429)),
    "list_invitations": Operation("invitations-list"),
    "resend_invitation": Operation("invitations-resend", errors=(409, 429)),
    "revoke_invitation": Operation("invitations-revoke", errors=(409,)),
    "preview_invitation": Operation("invitations-preview", errors=(403, 410)),
    "accept_invitation": Operation("invitations-accept", errors=(404, 409, 410)),
    "accept_invitation_as_new_user": Operation(
        "invitations-accept-new-user", errors=(403, 404, 409, 410)
    ),
    "create_webhook": Operation("webhooks-create"),
    "list_webhooks": Operation("webhooks-list"),
    "read_webhook": Operation("webhooks-read"),
    "update_webhook": Operation("webhooks-update"),
    "delete_webhook": Operation("webhooks-delete"),
    "ping_webhook": Operation("webhooks-ping", errors=(409,)),
    "rotate_webhook_secret": Operation("webhooks-rotate-secret"),
    "list_webhook_deliveries": Operation("webhook-deliveries-list"),
    "retry_webhook_delivery": Operation("webhook-deliveries-retry", errors=(409,)),
    "live": Operation("health-live", database=False),
    "ready": Operation("health-ready"),
}
_BY_ID = {operation.id: operation for operation in OPERATIONS.values()}


def operation_id(route: APIRoute) -> str:
    """The route's short id; a route missing from the table keeps its name with hyphens (and
    tests/api_contract fails until it is listed)."""
    known = OPERATIONS.get(route.name)
    return known.id if known else route.name.replace("_", "-")


def error_statuses(operation: dict[str, Any], path: str) -> set[int]:
    """The error statuses an operation answers, from its shape and the table."""
    known = _BY_ID.get(operation.get("operationId", ""), Operation(""))
    statuses = set(known.errors)
    if known.database:
        statuses.add(503)
    if known.rfc6749:
        return statuses
    parameters = operation.get("parameters", [])
    if operation.get("security"):
        statuses |= {401, 403}
    if "{" in path:
        statuses.add(404)
    if parameters or "requestBody" in operation:
        statuses.add(422)
    if "requestBody" in operation:
        statuses.add(400)  # a body that is not even text (FastAPI's "error parsing the body")
    if any(parameter["name"] == "cursor" for parameter in parameters):
        statuses.add(400)
    if _is_idempotent(operation):
        statuses |= set(IDEMPOTENT_ERRORS)
    return statuses


def _is_idempotent(operation: dict[str, Any]) -> bool:
    return any(
        parameter["name"] == IDEMPOTENCY_KEY and parameter["in"] == "header"
        for parameter in operation.get("parameters", [])
    )


def problem_response(status: int, *, idempotent: bool = False) -> dict[str, Any]:
    description = ERROR_DESCRIPTIONS.get(status, HTTPStatus(status).phrase)
    if idempotent and status in IDEMPOTENT_ERRORS:
        description = f"{description} Also when {IDEMPOTENT_ERRORS[status]}."
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}},
    }
    if status in HEADERS:
        response["headers"] = HEADERS[status]
    return response


def document_problems(schema: dict[str, Any]) -> None:
    """Add a problem+json answer for every error status an operation may answer; FastAPI's own
    422 (a JSON body of another shape) is replaced. Answers a route documents itself stay."""
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if _is_fastapi_validation_error(responses.get("422")):
                del responses["422"]
            idempotent = _is_idempotent(operation)
            for status in sorted(error_statuses(operation, path)):
                responses.setdefault(str(status), problem_response(status, idempotent=idempotent))
            if idempotent:
                for status, response in responses.items():
                    if status.startswith("2"):
                        response.setdefault("headers", {}).update(REPLAYED)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    problem = ProblemDetails.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(problem.pop("$defs", {}))
    components["Problem"] = problem
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)


def _is_fastapi_validation_error(response: dict[str, Any] | None) -> bool:
    if response is None:
        return False
    content = response.get("content", {}).get("application/json", {})
    reference: str = content.get("schema", {}).get("$ref", "")
    return reference.endswith("/HTTPValidationError")


def document_webhooks(schema: dict[str, Any]) -> None:
    """OpenAPI 3.1's `webhooks`: what a subscriber receives for each event type, the object in
    `data` as the API shows it, signed per the Standard Webhooks specification."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for event_type, model in EVENT_DATA.items():
        name = model.__name__
        found = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(found.pop("$defs", {}))
        components.setdefault(name, found)
        payload = {
            "allOf": [
                {"$ref": "#/components/schemas/EventPayload"},
                {
                    "type": "object",
                    "properties": {
                        "type": {"const": event_type},
                        "data": {"$ref": f"#/components/schemas/{name}"},
                    },
                },
            ]
        }
        schema.setdefault("webhooks", {})[event_type] = {
            "post": {
                "operationId": f"event-{event_type.replace('.', '-').replace('_', '-')}",
                "summary": f"`{event_type}`",
                "description": WEBHOOK_DELIVERY,
                "parameters": WEBHOOK_HEADERS,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": payload}},
                },
                "responses": {
                    "2XX": {"description": "Received: the delivery ends."},
                    "default": {"description": "Anything else, or no answer: retried."},
                },
            }
        }
    envelope = EventPayload.model_json_schema(ref_template="#/components/schemas/{model}")
    components["EventPayload"] = envelope


def install_openapi(app: FastAPI) -> None:
    """Serve the document built once, with the error answers and the webhooks documented."""

    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document_problems(generate())  # FastAPI keeps what it generated in openapi_schema
            document_webhooks(app.openapi_schema or {})
        return app.openapi_schema or generate()

    # FastAPI documents replacing `app.openapi` as the way to extend the document.
    app.openapi = openapi  # type: ignore[method-assign]
