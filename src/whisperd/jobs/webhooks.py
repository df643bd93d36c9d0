"""Job webhooks: signed POSTs of a job's outcome, retried with backoff, never to internal hosts.

One delivery is one event, POSTed as the JSON body
``{"type": event_type, "timestamp": "<ISO-8601, UTC>", "data": payload}`` with the three headers
of the Standard Webhooks specification 1.0
(https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md):

- ``webhook-id``: ``msg_`` and 32 hex digits, the same on every attempt of one delivery, so a
  receiver can use it as its idempotency key;
- ``webhook-timestamp``: when the attempt was made, in integer unix seconds (receivers refuse
  timestamps more than 5 minutes off, so every attempt is signed anew);
- ``webhook-signature``: ``v1,`` and the base64 HMAC-SHA256 of ``{id}.{timestamp}.{body}``,
  made by the ``standardwebhooks`` library with the server's ``whsec_`` secret.

Outcomes follow the specification's "Delivery success and failure": a 2xx answer delivers;
anything else fails and is retried (redirects are not followed, a ``Retry-After`` header is
honoured up to the longest wait), except ``410 Gone``, which stops the delivery. Connection
errors and timeouts are retried too. The waits grow exponentially with jitter, as the
specification recommends.

SSRF: :meth:`WebhookSender.check_url` refuses a URL at submission (scheme, credentials,
literal internal addresses, metadata and ``localhost`` names) with the rules of
:mod:`whisperd.audio.addresses`; every attempt then connects through
:func:`whisperd.audio.fetch.guarded_transport`, which resolves the host once, refuses it if any
address is internal, and connects to the checked address, so DNS cannot rebind in between.
"""

from __future__ import annotations

import email.utils
import ipaddress
import json
import logging
import random
import re
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.cookiejar import CookieJar, DefaultCookiePolicy
from types import TracebackType
from typing import Self

import anyio
import httpx2
from standardwebhooks import Webhook

from whisperd import __version__
from whisperd.audio.addresses import IPAddress, check_address, check_host_name, literal_address
from whisperd.audio.fetch import guarded_transport
from whisperd.config import Settings, check_webhook_secret
from whisperd.errors import InvalidWebhookUrlError, UrlBlockedError, UrlFetchError
from whisperd.jobs.model import WebhookAttempt

__all__ = ["WebhookAttempt", "WebhookSender", "check_webhook_url", "webhook_sender"]

logger = logging.getLogger(__name__)

_ALLOWED_SCHEMES = frozenset({"http", "https"})
_MAX_URL_LENGTH = 2048
_MESSAGE_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_LOOPBACK = ipaddress.IPv4Address("127.0.0.1")
_USER_AGENT = f"whisperd/{__version__} (webhooks)"
_NOT_CONFIGURED = (
    "This server sends no webhooks: its operator has not set WHISPERD_WEBHOOK_SECRET "
    "(the Standard Webhooks signing secret)."
)

OnAttempt = Callable[[WebhookAttempt], Awaitable[None]]
"""Called after every attempt, before any wait (for example to store it with the job)."""


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What one attempt came to."""

    attempt: WebhookAttempt
    delivered: bool = False
    final: bool = False
    """No later attempt can help (410 Gone, or a refused address)."""
    retry_after_s: float | None = None
    """The receiver's ``Retry-After``, in seconds from now."""


class WebhookSender:
    """Delivers job events to their ``webhook_url``, signed with the server's secret.

    The sender keeps one HTTP client without keep-alive (every attempt opens, checks and
    closes its own connection); :meth:`aclose` (or ``async with``) releases it.

    Args:
        secret: The signing secret, ``whsec_`` and the base64 of 24 to 64 bytes.
        allow_private_networks: Also allow loopback, private, link-local and CGNAT addresses
            (never cloud metadata ones).
        max_attempts: Attempts per delivery, 1 or more.
        first_delay_s: Wait after the first failed attempt, in seconds; each later wait doubles.
        max_delay_s: Longest wait between two attempts, in seconds (``Retry-After`` included).
        timeout_s: Seconds an attempt may take, connecting included.

    Raises:
        ValueError: A malformed secret, or a count or time out of range.
    """

    def __init__(
        self,
        secret: str,
        *,
        allow_private_networks: bool,
        max_attempts: int,
        first_delay_s: float,
        max_delay_s: float,
        timeout_s: float,
    ) -> None:
        check_webhook_secret(secret)
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be 1 or more, not {max_attempts}")
        if min(first_delay_s, max_delay_s) < 0 or timeout_s <= 0:
            raise ValueError("webhook delays must be 0 or more and the timeout above 0")
        self._signer = Webhook(secret)
        self._allow_private_networks = allow_private_networks
        self._max_attempts = max_attempts
        self._first_delay_s = first_delay_s
        self._max_delay_s = max_delay_s
        self._timeout_s = timeout_s
        # Jitter only spreads retries out; nothing secret depends on it.
        self._random = random.Random()  # noqa: S311
        self._client = httpx2.AsyncClient(
            transport=guarded_transport(allow_private_networks=allow_private_networks),
            trust_env=False,
            follow_redirects=False,
            # A jar that accepts no domain: no receiver's cookie is ever sent back.
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
            timeout=httpx2.Timeout(timeout_s),
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Release the HTTP client."""
        await self._client.aclose()

    # ----------------------------------------------------------------------------- checking

    def check_url(self, url: str) -> None:
        """Refuse a webhook URL before a job is stored; no DNS lookup is made here.

        Host names are resolved, and their addresses checked, at every attempt instead.

        Raises:
            InvalidWebhookUrlError: ``url`` is too long, not an ``http(s)`` URL, holds a user
                name or password, has no host, or names a metadata host or an address that
                :func:`~whisperd.audio.addresses.address_block_reason` refuses (``localhost``
                counts as a loopback address). Its ``param`` is ``webhook_url``.
        """
        if len(url) > _MAX_URL_LENGTH:
            raise InvalidWebhookUrlError(
                f"The webhook URL is longer than {_MAX_URL_LENGTH} characters."
            )
        try:
            parsed = httpx2.URL(url)
        except (httpx2.InvalidURL, TypeError, ValueError):
            raise InvalidWebhookUrlError("The webhook URL is not a valid URL.") from None
        if parsed.scheme not in _ALLOWED_SCHEMES:
            raise InvalidWebhookUrlError("The webhook URL must be an http:// or https:// URL.")
        if parsed.userinfo:
            raise InvalidWebhookUrlError("The webhook URL must not hold a user name or password.")
        if not parsed.host:
            raise InvalidWebhookUrlError("The webhook URL has no host.")
        try:
            check_host_name(parsed.host)
            address = _address_of(parsed.host)
            if address is not None:
                check_address(
                    parsed.host, address, allow_private_networks=self._allow_private_networks
                )
        except UrlBlockedError as exc:
            raise InvalidWebhookUrlError(exc.message) from None

    # ----------------------------------------------------------------------------- delivering

    async def deliver(
        self,
        url: str,
        event_type: str,
        payload: Mapping[str, object],
        on_attempt: OnAttempt,
        *,
        message_id: str | None = None,
        occurred_at: float | None = None,
    ) -> bool:
        """POST one event to ``url`` until it is delivered or the attempts run out.

        Args:
            url: The receiver (checked again here: a refused URL fails its one attempt).
            event_type: The event's ``type``, such as ``job.succeeded``.
            payload: The event's ``data``; it must be JSON-serialisable.
            on_attempt: Awaited after every attempt with what it came to; its errors
                propagate and end the delivery.
            message_id: The ``webhook-id`` (letters, digits, ``_`` and ``-``); a new
                ``msg_<32 hex>`` if None. Pass the same one to deliver an event again (after a
                restart) under the same id.
            occurred_at: When the event happened, unix seconds (the body's ``timestamp``);
                now if None.

        Returns:
            True once a receiver answered 2xx; False after ``max_attempts`` failed attempts,
            a ``410 Gone``, or a refused URL or address.

        Raises:
            TypeError, ValueError: ``payload`` cannot be written as JSON, or ``message_id``
                holds other characters.
        """
        msg_id = message_id or f"msg_{uuid.uuid4().hex}"
        if not _MESSAGE_ID.fullmatch(msg_id):
            # The id is signed as "{id}.{timestamp}.{body}": a "." in it would be ambiguous.
            raise ValueError(f"a webhook-id must match {_MESSAGE_ID.pattern}, not {msg_id!r}")
        body = _body(event_type, payload, time.time() if occurred_at is None else occurred_at)
        for number in range(1, self._max_attempts + 1):
            outcome = await self._attempt(url, msg_id, body)
            await on_attempt(outcome.attempt)
            if outcome.delivered:
                return True
            if outcome.final or number == self._max_attempts:
                logger.warning(
                    "Webhook %s to %s failed for good after %d attempt(s): %s",
                    msg_id,
                    _origin(url),
                    number,
                    outcome.attempt.error,
                )
                return False
            await anyio.sleep(self._delay_s(number, outcome.retry_after_s))
        return False  # pragma: no cover - the loop always returns

    def _delay_s(self, failed_attempts: int, retry_after_s: float | None) -> float:
        """The wait after ``failed_attempts`` attempts: exponential, jittered, capped."""
        exponent = min(failed_attempts - 1, 62)
        base = min(self._max_delay_s, self._first_delay_s * 2.0**exponent)
        # "Equal jitter": half the wait is fixed, the other half random.
        delay = base / 2 + self._random.uniform(0, base / 2)
        if retry_after_s is not None:
            delay = max(delay, retry_after_s)
        return min(delay, self._max_delay_s)

    async def _attempt(self, url: str, msg_id: str, body: bytes) -> _Outcome:
        at = time.time()
        try:
            self.check_url(url)
        except InvalidWebhookUrlError as exc:
            return _Outcome(WebhookAttempt(at, None, exc.message), final=True)
        request = self._client.build_request(
            "POST", url, content=body, headers=self._headers(msg_id, body)
        )
        try:
            with anyio.fail_after(self._timeout_s):
                response = await self._client.send(request, stream=True)
                await response.aclose()
        except (TimeoutError, httpx2.TimeoutException):
            error = f"The receiver did not answer within {self._timeout_s:g} seconds."
            return _Outcome(WebhookAttempt(at, None, error))
        except UrlBlockedError as exc:
            return _Outcome(WebhookAttempt(at, None, exc.message), final=True)
        except UrlFetchError as exc:
            return _Outcome(WebhookAttempt(at, None, exc.message))
        except httpx2.HTTPError as exc:
            logger.info("Webhook %s to %s: %s: %s", msg_id, _origin(url), type(exc).__name__, exc)
            error = f"The connection to the receiver failed ({type(exc).__name__})."
            return _Outcome(WebhookAttempt(at, None, error))
        return _answer(at, response)

    def _headers(self, msg_id: str, body: bytes) -> dict[str, str]:
        """The request's headers, signed now (the attempt's time is part of the signature)."""
        timestamp = int(time.time())
        signature = self._signer.sign(
            msg_id, datetime.fromtimestamp(timestamp, tz=UTC), body.decode()
        )
        return {
            "content-type": "application/json",
            "user-agent": _USER_AGENT,
            # A new connection per attempt: the host is resolved and checked each time.
            "connection": "close",
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature,
        }


def _answer(at: float, response: httpx2.Response) -> _Outcome:
    """The outcome of an attempt the receiver answered."""
    status = response.status_code
    if 200 <= status < 300:
        return _Outcome(WebhookAttempt(at, status, None), delivered=True)
    phrase = f"{status} {response.reason_phrase}".strip()
    if status == 410:
        error = f"The receiver answered HTTP {phrase}: it takes no more webhooks."
        return _Outcome(WebhookAttempt(at, status, error), final=True)
    retry_after = _retry_after_s(response.headers.get("retry-after"))
    return _Outcome(
        WebhookAttempt(at, status, f"The receiver answered HTTP {phrase}."),
        retry_after_s=retry_after,
    )


def _retry_after_s(value: str | None) -> float | None:
    """A ``Retry-After`` header (seconds, or an HTTP date) as seconds from now, or None."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _body(event_type: str, payload: Mapping[str, object], occurred_at: float) -> bytes:
    """The minified JSON body; the same bytes are signed and sent."""
    moment = datetime.fromtimestamp(occurred_at, tz=UTC)
    event = {
        "type": event_type,
        "timestamp": moment.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "data": dict(payload),
    }
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _address_of(host: str) -> IPAddress | None:
    """The address a host stands for without DNS: a literal, a legacy numeric IPv4 form
    (``127.1``, ``2130706433``, ``0x7f.0.0.1``, which resolvers accept), or ``localhost``."""
    literal = literal_address(host)
    if literal is not None:
        return literal
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return _LOOPBACK  # RFC 6761: always loopback
    if name and all(c in "0123456789abcdefx." for c in name) and name[0].isdigit():
        try:
            return ipaddress.IPv4Address(socket.inet_aton(name))
        except OSError:
            return None
    return None


def _origin(url: str) -> str:
    """``scheme://host:port`` of ``url`` for logs (no path or query, which may hold tokens)."""
    try:
        parsed = httpx2.URL(url)
    except (httpx2.InvalidURL, TypeError, ValueError):
        return "an invalid URL"
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}"


def webhook_sender(settings: Settings) -> WebhookSender | None:
    """The server's sender, from its ``webhook_*`` settings; None without a secret."""
    if settings.webhook_secret is None:
        return None
    return WebhookSender(
        settings.webhook_secret.get_secret_value(),
        allow_private_networks=settings.allow_private_networks,
        max_attempts=settings.webhook_max_attempts,
        first_delay_s=settings.webhook_first_delay_s,
        max_delay_s=settings.webhook_max_delay_s,
        timeout_s=settings.webhook_timeout_s,
    )


def check_webhook_url(sender: WebhookSender | None, url: str) -> None:
    """Refuse ``url`` unless this server sends webhooks (it has a secret) and allows the URL.

    Raises:
        InvalidWebhookUrlError: No sender (``WHISPERD_WEBHOOK_SECRET`` is unset), or
            :meth:`WebhookSender.check_url` refuses ``url``.
    """
    if sender is None:
        raise InvalidWebhookUrlError(_NOT_CONFIGURED)
    sender.check_url(url)
