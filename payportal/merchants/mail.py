"""Outgoing mail: rendered from templates/mail/, sent through SMTP_URL after the transaction
commits, or (with no SMTP configured) saved under settings.mail_dir and written to the log so a
developer can follow the link."""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
import uuid
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

import jinja2

from payportal import PROJECT_ROOT
from payportal.db import utcnow

log = logging.getLogger(__name__)

SMTP_TIMEOUT = 10
# smtp:// upgrades with STARTTLS whenever the server offers it; smtps:// is TLS from the start
SMTP_DEFAULT_PORTS = {"smtp": 25, "smtps": 465}


@cache
def _templates() -> jinja2.Environment:
    # plain-text mail: nothing to escape, and a missing variable is a bug, not a blank
    return jinja2.Environment(  # noqa: S701 - text/plain bodies, never HTML
        loader=jinja2.FileSystemLoader(str(Path(PROJECT_ROOT) / "templates" / "mail")),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def compose(settings, *, to: str, subject: str, template: str, **context) -> EmailMessage:
    """A text/plain message rendered from templates/mail/<template>."""
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = make_msgid(domain="payportal")
    message.set_content(_templates().get_template(template).render(**context))
    return message


def _send_smtp(smtp_url: str, message: EmailMessage) -> None:
    parts = urlsplit(smtp_url)
    if parts.scheme not in SMTP_DEFAULT_PORTS or not parts.hostname:
        raise ValueError("SMTP_URL must look like smtp://[user:password@]host[:port] or smtps://")
    port = parts.port or SMTP_DEFAULT_PORTS[parts.scheme]
    if parts.scheme == "smtps":
        client = smtplib.SMTP_SSL(
            parts.hostname, port, timeout=SMTP_TIMEOUT, context=ssl.create_default_context()
        )
    else:
        client = smtplib.SMTP(parts.hostname, port, timeout=SMTP_TIMEOUT)
    with client:
        client.ehlo()
        if parts.scheme == "smtp" and client.has_extn("starttls"):
            client.starttls(context=ssl.create_default_context())
            client.ehlo()
        if parts.username:
            client.login(unquote(parts.username), unquote(parts.password or ""))
        client.send_message(message)


def _save_locally(settings, message: EmailMessage) -> Path:
    directory = Path(settings.mail_dir)
    directory.mkdir(parents=True, exist_ok=True)
    stamp = utcnow().strftime("%Y%m%dT%H%M%S")
    path = directory / f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
    path.write_bytes(message.as_bytes())
    return path


def deliver(settings, message: EmailMessage) -> None:
    """Send now: through SMTP_URL when set, else to a file under mail_dir and the log."""
    if settings.smtp_url:
        _send_smtp(settings.smtp_url, message)
        log.info("mail %r sent to %s", message["Subject"], message["To"])
        return
    path = _save_locally(settings, message)
    if settings.is_production:
        # the body may hold a sign-in link: production logs never carry it
        log.warning("SMTP_URL is not set: mail to %s saved as %s, not sent", message["To"], path)
        return
    log.info(
        "SMTP_URL is not set: mail to %s saved as %s\n%s",
        message["To"],
        path,
        message.get_content(),
    )


def _deliver_logged(settings, message: EmailMessage) -> None:
    try:
        deliver(settings, message)
    except (OSError, smtplib.SMTPException, ValueError) as exc:
        # the body holds a secret link: log what failed, never the message
        log.error("mail %r to %s not delivered: %s", message["Subject"], message["To"], exc)


def deliver_after_commit(transaction, settings, message: EmailMessage) -> None:
    """Send once `transaction` commits (never for a rolled-back change), on a thread of its
    own: the answer must not wait for the mail server, nor take longer when a mail goes out
    than when none does (that difference would tell which emails have accounts)."""

    def send(committed: bool) -> None:
        if committed:
            threading.Thread(
                target=_deliver_logged, args=(settings, message), name="payportal-mail", daemon=True
            ).start()

    transaction.addAfterCommitHook(send)
