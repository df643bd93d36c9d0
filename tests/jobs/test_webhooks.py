"""Job webhooks, delivered to a throwaway receiver on 127.0.0.1 and checked with the
``standardwebhooks`` library's own verifier (no internet, no timing thresholds)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from whisperd.api.errors import status_of
from whisperd.config import Settings
from whisperd.errors import InvalidWebhookUrlError
from whisperd.jobs.webhooks import (
    WebhookAttempt,
    WebhookSender,
    _retry_after_s,
    check_webhook_url,
    webhook_sender,
)

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(bytes(range(100, 132))).decode()
PAYLOAD = {"id": "job_0123", "status": "succeeded", "text": "héllo wörld", "seconds": 1.5}


@dataclass(frozen=True)
class Received:
    """One request the receiver got."""

    headers: dict[str, str]
    body: bytes


class _Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, statuses: Sequence[int], headers: dict[str, str]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.statuses = list(statuses)
        self.extra_headers = headers
        self.received: list[Received] = []
        self.release = threading.Event()
        self.hang = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/whisperd?token=abc"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (timeout test) is expected; stay quiet."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Receiver

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output clean."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(Received(dict(self.headers.items()), body))
        if self.server.hang:
            self.server.release.wait()
            return
        index = len(self.server.received) - 1
        status = self.server.statuses[min(index, len(self.server.statuses) - 1)]
        self.send_response(status)
        for name, value in self.server.extra_headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


@contextlib.contextmanager
def receiver(
    statuses: Sequence[int] = (204,), headers: dict[str, str] | None = None
) -> Iterator[_Receiver]:
    """A receiver answering the i-th request with ``statuses[i]`` (the last one repeats)."""
    server = _Receiver(statuses, headers or {})
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join()


def sender(**overrides: Any) -> WebhookSender:
    options: dict[str, Any] = {
        "allow_private_networks": True,
        "max_attempts": 3,
        "first_delay_s": 0.001,
        "max_delay_s": 0.004,
        "timeout_s": 5.0,
    }
    options.update(overrides)
    return WebhookSender(SECRET, **options)


def deliver(webhooks: WebhookSender, url: str, **kwargs: Any) -> tuple[bool, list[WebhookAttempt]]:
    """Run one delivery; return its result and the attempts ``on_attempt`` saw."""
    attempts: list[WebhookAttempt] = []

    async def record(attempt: WebhookAttempt) -> None:
        attempts.append(attempt)

    async def run() -> bool:
        async with webhooks:
            return await webhooks.deliver(url, "job.succeeded", PAYLOAD, record, **kwargs)

    return asyncio.run(run()), attempts


def verified(received: Received, secret: str = SECRET) -> Any:
    """The body as the receiver's library reads it; raises if the signature is wrong."""
    return Webhook(secret).verify(received.body, received.headers)


# ------------------------------------------------------------------------------- delivery


def test_a_delivery_is_signed_per_the_standard_webhooks_spec() -> None:
    with receiver([200]) as server:
        delivered, attempts = deliver(sender(), server.url, occurred_at=1_700_000_000.25)
    assert delivered is True
    [got] = server.received
    assert verified(got) == {
        "type": "job.succeeded",
        "timestamp": "2023-11-14T22:13:20.250000Z",
        "data": PAYLOAD,
    }
    assert got.headers["webhook-id"].startswith("msg_")
    assert got.headers["content-type"] == "application/json"
    assert got.headers["webhook-signature"].startswith("v1,")
    assert [(a.status_code, a.error) for a in attempts] == [(200, None)]
    assert attempts[0].at > 1_700_000_000


def test_another_secret_does_not_verify() -> None:
    with receiver([200]) as server:
        deliver(sender(), server.url)
    with pytest.raises(WebhookVerificationError):
        verified(server.received[0], OTHER_SECRET)


def test_a_receiver_failing_twice_gets_three_attempts_with_one_id() -> None:
    with receiver([500, 503, 200]) as server:
        delivered, attempts = deliver(sender(max_attempts=5), server.url)
    assert delivered is True
    assert len(server.received) == 3
    assert len({got.headers["webhook-id"] for got in server.received}) == 1
    bodies = [verified(got) for got in server.received]
    assert bodies[0] == bodies[1] == bodies[2]
    assert [a.status_code for a in attempts] == [500, 503, 200]
    assert attempts[0].error == "The receiver answered HTTP 500 Internal Server Error."
    assert attempts[2].error is None
    assert attempts[0].at <= attempts[1].at <= attempts[2].at


def test_a_receiver_that_always_fails_gets_max_attempts() -> None:
    with receiver([500]) as server:
        delivered, attempts = deliver(sender(max_attempts=4), server.url)
    assert delivered is False
    assert len(server.received) == 4
    assert len(attempts) == 4
    assert all(a.status_code == 500 and a.error for a in attempts)
    for got in server.received:
        verified(got)


def test_a_redirect_is_a_failure_and_is_not_followed() -> None:
    with receiver([302], {"Location": "http://127.0.0.1:9/elsewhere"}) as server:
        delivered, attempts = deliver(sender(max_attempts=2), server.url)
    assert delivered is False
    assert [a.status_code for a in attempts] == [302, 302]
    assert len(server.received) == 2


def test_410_gone_stops_the_delivery() -> None:
    with receiver([410]) as server:
        delivered, attempts = deliver(sender(max_attempts=5), server.url)
    assert delivered is False
    assert len(server.received) == 1
    assert attempts[0].status_code == 410
    assert attempts[0].error is not None
    assert "no more webhooks" in attempts[0].error


def test_the_caller_can_fix_the_message_id() -> None:
    with receiver([200]) as server:
        deliver(sender(), server.url, message_id="msg_job_0123_succeeded")
    assert server.received[0].headers["webhook-id"] == "msg_job_0123_succeeded"
    verified(server.received[0])


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_connection_error_is_retried() -> None:
    delivered, attempts = deliver(sender(max_attempts=3), f"http://127.0.0.1:{_closed_port()}/")
    assert delivered is False
    assert len(attempts) == 3
    assert all(a.status_code is None for a in attempts)
    assert all(a.error and a.error.startswith("The connection") for a in attempts)


def test_a_receiver_that_does_not_answer_times_out_and_is_retried() -> None:
    with receiver() as server:
        server.hang = True
        delivered, attempts = deliver(sender(max_attempts=2, timeout_s=0.2), server.url)
    assert delivered is False
    assert len(server.received) == 2
    assert [a.error for a in attempts] == ["The receiver did not answer within 0.2 seconds."] * 2


def test_a_name_resolving_to_loopback_is_refused_at_connect_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DNS is checked at every attempt, on the address actually connected to."""
    with receiver([200]) as server:
        port = server.server_address[1]

        async def resolve(host: str, port: int, **kwargs: Any) -> list[Any]:
            assert host == "hooks.example.com"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

        monkeypatch.setattr(anyio, "getaddrinfo", resolve)
        url = f"http://hooks.example.com:{port}/"
        refused, attempts = deliver(sender(allow_private_networks=False), url)
        allowed, _ = deliver(sender(allow_private_networks=True), url)
    assert refused is False
    assert len(attempts) == 1  # not retried: the address is refused, not unreachable
    assert attempts[0].status_code is None
    assert attempts[0].error == (
        "The URL's host 'hooks.example.com' resolves to a loopback address, which is not allowed."
    )
    assert allowed is True
    assert len(server.received) == 1


def test_every_attempt_resolves_the_host_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """No connection is kept between attempts, so each one checks what the name is now."""
    lookups: list[str] = []
    with receiver([500, 503, 200]) as server:
        port = server.server_address[1]

        async def resolve(host: str, port: int, **kwargs: Any) -> list[Any]:
            lookups.append(host)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

        monkeypatch.setattr(anyio, "getaddrinfo", resolve)
        delivered, attempts = deliver(sender(max_attempts=3), f"http://hooks.example.com:{port}/")
    assert delivered is True
    assert len(attempts) == len(server.received) == 3
    assert lookups == ["hooks.example.com"] * 3


def test_a_refused_url_fails_its_one_attempt_without_a_request() -> None:
    delivered, attempts = deliver(sender(allow_private_networks=False), "http://127.0.0.1:9/")
    assert delivered is False
    assert len(attempts) == 1
    assert attempts[0].error is not None
    assert "loopback" in attempts[0].error


def test_the_waits_double_with_jitter_up_to_the_cap() -> None:
    webhooks = sender(first_delay_s=1.0, max_delay_s=8.0)
    for failed, (low, high) in enumerate([(0.5, 1), (1, 2), (2, 4), (4, 8), (4, 8), (4, 8)], 1):
        for _ in range(20):
            assert low <= webhooks._delay_s(failed, None) <= high
    assert webhooks._delay_s(1, retry_after_s=3.0) == 3.0
    assert webhooks._delay_s(1, retry_after_s=3600.0) == 8.0
    asyncio.run(webhooks.aclose())


def test_a_message_id_that_would_make_the_signed_text_ambiguous_is_refused() -> None:
    with receiver([200]) as server, pytest.raises(ValueError, match="webhook-id"):
        deliver(sender(), server.url, message_id="msg_1.1700000000")
    assert server.received == []


def test_retry_after_is_read_in_seconds_or_as_an_http_date() -> None:
    assert _retry_after_s("120") == 120.0
    assert _retry_after_s(" 7 ") == 7.0
    assert _retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert _retry_after_s(format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True))
    assert _retry_after_s("soon") is None
    assert _retry_after_s(None) is None


def test_a_receivers_retry_after_is_honoured_within_the_cap() -> None:
    with receiver([503, 200], {"Retry-After": "3600"}) as server:
        delivered, attempts = deliver(sender(max_attempts=2, max_delay_s=0.01), server.url)
    assert delivered is True
    assert [a.status_code for a in attempts] == [503, 200]


# ------------------------------------------------------------------------------- URL checks


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/hook", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("http://user:pw@example.com/hook", "user name or password"),
        ("http://169.254.169.254/latest/meta-data", "cloud metadata"),
        ("http://metadata.google.internal/", "cloud metadata"),
        ("http://127.0.0.1:8000/hook", "loopback"),
        ("http://127.1/hook", "loopback"),
        ("http://2130706433/hook", "loopback"),
        ("http://localhost:8000/hook", "loopback"),
        ("http://api.localhost/hook", "loopback"),
        ("http://[::1]/hook", "loopback"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),
        ("http://10.1.2.3/hook", "private"),
        ("http://192.168.1.1/hook", "private"),
        ("http://[fe80::1]/hook", "link-local"),
        ("http:///hook", "no host"),
        ("not a url", "http:// or https://"),
        ("https://example.com/" + "a" * 2100, "longer than"),
    ],
)
def test_check_url_refuses(url: str, reason: str) -> None:
    webhooks = sender(allow_private_networks=False)
    with pytest.raises(InvalidWebhookUrlError) as caught:
        webhooks.check_url(url)
    assert reason in caught.value.message
    assert caught.value.param == "webhook_url"
    assert caught.value.code == "invalid_webhook_url"
    assert status_of(caught.value) == (400, "invalid_request_error")
    asyncio.run(webhooks.aclose())


@pytest.mark.parametrize(
    "url", ["https://hooks.example.com/whisperd", "http://8.8.8.8:8080/x", "HTTPS://Ex.com"]
)
def test_check_url_accepts_public_urls_without_a_lookup(url: str) -> None:
    webhooks = sender(allow_private_networks=False)
    webhooks.check_url(url)
    asyncio.run(webhooks.aclose())


def test_private_networks_can_be_allowed_but_never_metadata() -> None:
    webhooks = sender(allow_private_networks=True)
    webhooks.check_url("http://127.0.0.1:8000/hook")
    webhooks.check_url("http://localhost/hook")
    webhooks.check_url("http://10.1.2.3/hook")
    with pytest.raises(InvalidWebhookUrlError, match="cloud metadata"):
        webhooks.check_url("http://169.254.169.254/")
    asyncio.run(webhooks.aclose())


# ------------------------------------------------------------------------------- settings


def test_without_a_secret_webhooks_are_refused_with_a_400() -> None:
    assert webhook_sender(Settings(_env_file=None)) is None
    with pytest.raises(InvalidWebhookUrlError, match="WHISPERD_WEBHOOK_SECRET") as caught:
        check_webhook_url(None, "https://hooks.example.com/")
    assert caught.value.param == "webhook_url"
    assert status_of(caught.value) == (400, "invalid_request_error")


def test_the_sender_follows_the_settings() -> None:
    settings = Settings(
        _env_file=None,
        webhook_secret=SECRET,
        webhook_max_attempts=2,
        webhook_first_delay_s=0.001,
        allow_private_networks=True,
    )
    webhooks = webhook_sender(settings)
    assert webhooks is not None
    check_webhook_url(webhooks, "http://127.0.0.1/")
    with pytest.raises(InvalidWebhookUrlError, match="cloud metadata"):
        check_webhook_url(webhooks, "http://169.254.169.254/")
    with receiver([500]) as server:
        delivered, attempts = deliver(webhooks, server.url)
    assert delivered is False
    assert len(attempts) == len(server.received) == 2


@pytest.mark.parametrize(
    "secret",
    ["", "s3cret", "whsec_", "whsec_not*base64", "whsec_" + base64.b64encode(b"short").decode()],
)
def test_a_malformed_secret_is_refused(secret: str) -> None:
    with pytest.raises(ValueError, match="webhook secret"):
        WebhookSender(
            secret,
            allow_private_networks=False,
            max_attempts=1,
            first_delay_s=0,
            max_delay_s=0,
            timeout_s=1,
        )
    with pytest.raises(ValueError, match="webhook secret"):
        Settings(_env_file=None, webhook_secret=secret)


def test_the_secret_is_not_shown() -> None:
    assert SECRET not in repr(Settings(_env_file=None, webhook_secret=SECRET))


# ------------------------------------------------------------------------------- through a server


def test_a_finished_job_posts_its_signed_event(job_server: Callable[..., Any]) -> None:
    with (
        receiver([500, 200]) as hooks,
        job_server(
            webhook_secret=SECRET,
            allow_private_networks=True,
            webhook_first_delay_s=0.001,
            webhook_max_delay_s=0.004,
        ) as server,
    ):
        response = server.submit(webhook_url=hooks.url, metadata='{"ticket": 7}')
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        server.until(
            job_id, lambda job: job["webhook"]["status"] == "delivered", "webhook delivered"
        )
        job = server.job(job_id)
    assert len(hooks.received) == 2
    assert hooks.received[0].headers["webhook-id"] == hooks.received[1].headers["webhook-id"]
    event = verified(hooks.received[1])
    assert event["type"] == "job.succeeded"
    assert event["data"]["id"] == job_id
    assert event["data"]["status"] == "succeeded"
    assert event["data"]["metadata"] == {"ticket": 7}
    assert [a["status_code"] for a in job["webhook"]["attempts"]] == [500, 200]


def test_a_job_asking_for_an_internal_webhook_is_refused(job_server: Callable[..., Any]) -> None:
    with job_server(webhook_secret=SECRET) as server:
        response = server.submit(webhook_url="http://127.0.0.1:9/hook")
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "webhook_url"
        assert response.json()["error"]["code"] == "invalid_webhook_url"
        assert server.http.get("/v1/jobs").json()["data"] == []


def test_without_a_secret_a_job_asking_for_a_webhook_is_refused(
    job_server: Callable[..., Any],
) -> None:
    with job_server() as server:
        response = server.submit(webhook_url="https://hooks.example.com/whisperd")
        assert response.status_code == 400
        error = response.json()["error"]
        assert (error["param"], error["code"]) == ("webhook_url", "invalid_webhook_url")
        assert "WHISPERD_WEBHOOK_SECRET" in error["message"]
