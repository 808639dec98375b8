"""Request bodies over MAX_REQUEST_BODY_BYTES are refused with 413 before they are read whole.

A pure ASGI middleware, so that nothing buffers the body first: a declared `Content-Length` over
the limit is refused before a byte is read, and a body without one (chunked) is counted chunk by
chunk as the app reads it, and cut off at the limit. Either way the worker holds at most one
chunk beyond the limit, whatever the client sends.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.core.errors import problem_response

DISCONNECT: Message = {"type": "http.disconnect"}


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return

        received = 0
        response_started = refused = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            if refused:
                return DISCONNECT
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # The app sees a client that went away; the client gets the 413.
                    if not response_started:
                        await self._refuse(scope, receive, send)
                    refused = True
                    return DISCONNECT
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if refused:
                return  # the 413 is the answer; whatever the app says after it goes nowhere
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        await self.app(scope, counting_receive, guarded_send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"The request body is larger than {self.max_bytes} bytes."
        # The rest of the body is never read: the server closes the connection after this answer.
        response = problem_response(413, detail, headers={"Connection": "close"})
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length before the app runs
    return None
