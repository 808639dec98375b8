"""Outgoing mail: rendered from Jinja2 templates, delivered by the console or SMTP backend.

Callers queue mail with `send_after_commit`: nothing is sent for work that rolled back, delivery
starts once the transaction has committed and runs in the background (a slow SMTP server never
holds up a response, nor tells by timing whether an account exists), and a failure is logged with
the request id instead of breaking anything. A resend is the remedy for a lost mail.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode

import aiosmtplib
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.config import VAR_DIR, EmailBackend, Settings
from backend.core.database import call_after_commit

logger = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"

templates = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    enable_async=False,
)


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str
    html: str


def render_mail(to: str, template: str, **context: Any) -> Mail:
    """Render `mail/<template>.subject.txt`, `.txt` and `.html` into one message."""
    subject = templates.get_template(f"mail/{template}.subject.txt").render(**context).strip()
    return Mail(
        to=to,
        subject=subject,
        text=templates.get_template(f"mail/{template}.txt").render(**context),
        html=templates.get_template(f"mail/{template}.html").render(**context),
    )


class MailBackend(Protocol):
    async def deliver(self, message: EmailMessage) -> None: ...


class ConsoleBackend:
    """Logs who was mailed what; never the body, whose links carry live tokens.

    Outside production the whole message is also saved under `var/mail/`, so that a developer
    can open the links without an SMTP server and without tokens in the log.
    """

    def __init__(self, settings: Settings) -> None:
        self.outbox = None if settings.is_production else VAR_DIR / "mail"

    async def deliver(self, message: EmailMessage) -> None:
        extra: dict[str, Any] = {"mail_to": message["To"], "subject": message["Subject"]}
        if self.outbox is not None:
            extra["saved_to"] = str(await asyncio.to_thread(self._save, message))
        logger.info("mail (console backend)", extra=extra)

    def _save(self, message: EmailMessage) -> Path:
        assert self.outbox is not None  # noqa: S101 (only called when an outbox is set)
        self.outbox.mkdir(parents=True, exist_ok=True)
        path = self.outbox / f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
        path.write_bytes(message.as_bytes())
        return path


class SmtpBackend:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def deliver(self, message: EmailMessage) -> None:
        settings = self.settings
        smtp = aiosmtplib.SMTP(
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            start_tls=settings.smtp_starttls,
            timeout=settings.smtp_timeout_seconds,
        )
        # Not `async with`: on the way out of an error or a cancellation (shutdown), it politely
        # waits for QUIT, as long as the server takes. Close the connection at once instead.
        await smtp.connect()
        try:
            await smtp.send_message(message)
        except BaseException:
            smtp.close()
            raise
        try:
            await smtp.quit()
        except aiosmtplib.SMTPException:
            smtp.close()  # the message was accepted; a failed goodbye changes nothing


class Mailer:
    def __init__(self, settings: Settings, backend: MailBackend | None = None) -> None:
        self.sender = settings.email_from
        self.backend = backend or (
            SmtpBackend(settings)
            if settings.email_backend is EmailBackend.SMTP
            else ConsoleBackend(settings)
        )

    def build(self, mail: Mail) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message.set_content(mail.text)
        message.add_alternative(mail.html, subtype="html")
        return message

    def _build_or_log(self, mail: Mail) -> EmailMessage | None:
        """The message; None, logged with the request id, when it cannot be built (e.g. a line
        break in the subject, which would forge headers). Never dropped silently."""
        try:
            return self.build(mail)
        except ValueError:
            logger.exception("mail could not be built", extra={"mail_to": mail.to})
            return None

    async def send(self, mail: Mail) -> bool:
        """Deliver now; False (and a log line with the request id) when that failed."""
        message = self._build_or_log(mail)
        return message is not None and await self._deliver(message, mail.to)

    async def _deliver(self, message: EmailMessage, to: str) -> bool:
        try:
            await self.backend.deliver(message)
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            logger.exception("mail delivery failed", extra={"mail_to": to})
            return False
        return True

    def send_after_commit(self, session: AsyncSession, mail: Mail) -> None:
        """Build the message now, in the request, and deliver it once the transaction commits."""
        message = self._build_or_log(mail)
        if message is None:
            return

        async def start_delivery() -> None:
            task = asyncio.create_task(self._deliver(message, mail.to))
            _deliveries.add(task)
            task.add_done_callback(_deliveries.discard)

        call_after_commit(session, start_delivery)


def mail_one_time_link(
    session: AsyncSession,
    mailer: Mailer,
    settings: Settings,
    *,
    to: str,
    template: str,
    path: str,
    token: str,
    **context: Any,
) -> None:
    """Mail `to` a link carrying a one-time token (`path?token=...`), once the transaction
    commits: nothing is sent for work that rolled back, and the token is in the mail only.

    The one sequence behind email verification, password reset and invitations.
    """
    link = f"{settings.public_base_url}{path}?{urlencode({'token': token})}"
    mailer.send_after_commit(session, render_mail(to, template, link=link, **context))


# Deliveries under way; kept referenced so that they are not collected before they finish.
_deliveries: set[asyncio.Task[bool]] = set()


async def finish_deliveries(timeout_seconds: float = 30.0) -> None:
    """Wait for mail still being delivered (at shutdown, and in tests before asserting); after
    `timeout_seconds`, give up on what is left, with a WARNING."""
    if not _deliveries:
        return
    _done, pending = await asyncio.wait(set(_deliveries), timeout=timeout_seconds)
    if pending:
        logger.warning("mail not delivered before shutdown", extra={"count": len(pending)})
        for task in pending:
            task.cancel()
        await asyncio.wait(pending)
