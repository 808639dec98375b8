"""A real SMTP server (aiosmtpd) on a free loopback port, keeping what it receives."""

from __future__ import annotations

import asyncio
import email
import email.policy
import time
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session

from tests.harness.postgres import free_port

MAIL_WAIT_SECONDS = 5.0


@dataclass
class Mailbox:
    messages: list[EmailMessage] = field(default_factory=list)
    delay_seconds: float = 0.0  # a slow server: each message is accepted this much later

    async def handle_DATA(self, _server: object, _session: Session, envelope: Envelope) -> str:
        await asyncio.sleep(self.delay_seconds)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(message)  # type: ignore[arg-type]
        return "250 Message accepted for delivery"

    def clear(self) -> None:
        self.messages.clear()

    def to(self, address: str) -> list[EmailMessage]:
        return [message for message in self.messages if message["To"] == address]

    async def wait_for(self, address: str, count: int = 1) -> list[EmailMessage]:
        deadline = time.monotonic() + MAIL_WAIT_SECONDS
        while time.monotonic() < deadline:
            if len(self.to(address)) >= count:
                return self.to(address)
            await asyncio.sleep(0.02)
        raise AssertionError(f"no mail for {address} within {MAIL_WAIT_SECONDS}s")

    @staticmethod
    def text_of(message: EmailMessage) -> str:
        part = message.get_body(preferencelist=("plain",))
        assert part is not None, "the mail has no plain-text part"
        return part.get_content()

    @staticmethod
    def html_of(message: EmailMessage) -> str:
        part = message.get_body(preferencelist=("html",))
        assert part is not None, "the mail has no HTML part"
        return part.get_content()


class SmtpServer:
    def __init__(self, delay_seconds: float = 0.0) -> None:
        self.mailbox = Mailbox(delay_seconds=delay_seconds)
        self.port = free_port()
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
