"""The SSRF-guarded URL fetcher, against a throwaway HTTP server on 127.0.0.1 (no internet)."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import socket
import ssl
import tempfile
import threading
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import anyio
import pytest

from whisperd.audio.fetch import AudioFetcher, FetchLimits
from whisperd.errors import UrlBlockedError, UrlFetchError, UrlTimeoutError, UrlTooLargeError


def _wav_bytes() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(bytes(range(256)) * 64)  # 8192 frames, 16 KiB of samples
    return buffer.getvalue()


WAV = _wav_bytes()
MAX_BYTES = 100_000
LIMITS = FetchLimits(max_bytes=MAX_BYTES, connect_timeout=2.0, read_timeout=2.0, total_timeout=5.0)
GZIP_BOMB = gzip.compress(b"\0" * (4 * 1024 * 1024))  # about 4 KiB on the wire, 4 MiB decoded


@dataclass
class Seen:
    """One request the test server received."""

    path: str
    headers: dict[str, str] = field(default_factory=dict)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[Seen] = []
        self.stop = threading.Event()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hang up on purpose (oversized bodies, timeouts); stay quiet about it."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output clean."""

    def do_GET(self) -> None:
        self.server.seen.append(Seen(self.path, dict(self.headers.items())))
        route = urlsplit(self.path).path
        for prefix, handler in self._routes().items():
            if route == prefix or (prefix.endswith("/") and route.startswith(prefix)):
                handler()
                return
        self._send(404, b"not found")

    def _routes(self) -> dict[str, Callable[[], None]]:
        return {
            "/audio.wav": lambda: self._send(200, WAV, {"Content-Type": "audio/wav"}),
            "/gzip.wav": lambda: self._send(200, gzip.compress(WAV), {"Content-Encoding": "gzip"}),
            "/gzip-bomb": lambda: self._send(200, GZIP_BOMB, {"Content-Encoding": "gzip"}),
            "/redirect/": self._redirect_chain,
            "/to": self._redirect_to,
            "/cookie": lambda: self._send(302, b"", {"Location": "/echo", "Set-Cookie": "s=1"}),
            "/echo": lambda: self._send(200, b"echo"),
            "/status/": lambda: self._send(int(self.path.rsplit("/", 1)[1]), b"oops"),
            "/big": self._big,
            "/chunked": self._chunked,
            "/slow-headers": self._slow_headers,
            "/trickle": self._trickle,
        }

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect_chain(self) -> None:
        hops = int(self.path.rsplit("/", 1)[1])
        location = f"/redirect/{hops - 1}" if hops > 1 else "/audio.wav"
        self._send(302, b"", {"Location": location})

    def _redirect_to(self) -> None:
        target = parse_qs(urlsplit(self.path).query)["u"][0]
        self._send(302, b"", {"Location": target})

    def _big(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(MAX_BYTES + 1))
        self.end_headers()
        self.wfile.write(b"\0" * (MAX_BYTES + 1))

    def _chunked(self) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b"\0" * 16384
        for _ in range(MAX_BYTES // len(chunk) + 2):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")

    def _slow_headers(self) -> None:
        self.server.stop.wait(5)

    def _trickle(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        for _ in range(1000):
            if self.server.stop.wait(0.02):
                return
            self.wfile.write(b"\0")
            self.wfile.flush()


@dataclass
class LocalServer:
    """A running test server."""

    server: _Server

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def paths(self) -> list[str]:
        return [seen.path for seen in self.server.seen]


@pytest.fixture
def server() -> Iterator[LocalServer]:
    httpd = _Server()
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield LocalServer(httpd)
    finally:
        httpd.stop.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def fetch(
    url: str,
    directory: Path | None,
    *,
    limits: FetchLimits = LIMITS,
    allow_private: bool = True,
) -> Path:
    async def run() -> Path:
        async with AudioFetcher(limits, allow_private_networks=allow_private) as fetcher:
            return await fetcher.fetch(url, directory)

    return asyncio.run(run())


def assert_no_files(directory: Path) -> None:
    assert list(directory.iterdir()) == []


# ------------------------------------------------------------------------------ downloads


def test_downloads_the_served_bytes(server: LocalServer, tmp_path: Path) -> None:
    path = fetch(server.url("/audio.wav"), tmp_path)
    assert path.parent == tmp_path
    assert path.read_bytes() == WAV
    assert list(tmp_path.iterdir()) == [path]


def test_downloads_to_the_system_temp_dir_by_default(server: LocalServer) -> None:
    path = fetch(server.url("/audio.wav"), None)
    try:
        assert path.parent == Path(tempfile.gettempdir())
        assert path.read_bytes() == WAV
    finally:
        path.unlink()


def test_gzip_body_is_saved_decoded(server: LocalServer, tmp_path: Path) -> None:
    assert fetch(server.url("/gzip.wav"), tmp_path).read_bytes() == WAV


def test_a_body_exactly_at_the_cap_is_accepted(server: LocalServer, tmp_path: Path) -> None:
    limits = FetchLimits(max_bytes=len(WAV))
    assert fetch(server.url("/audio.wav"), tmp_path, limits=limits).read_bytes() == WAV


def test_one_fetcher_serves_several_downloads(server: LocalServer, tmp_path: Path) -> None:
    async def run() -> list[Path]:
        async with AudioFetcher(LIMITS, allow_private_networks=True) as fetcher:
            return [await fetcher.fetch(server.url("/audio.wav"), tmp_path) for _ in range(3)]

    paths = asyncio.run(run())
    assert len(set(paths)) == 3
    assert all(path.read_bytes() == WAV for path in paths)


# ------------------------------------------------------------------------------ redirects


def test_follows_redirects_up_to_the_cap(server: LocalServer, tmp_path: Path) -> None:
    assert fetch(server.url("/redirect/3"), tmp_path).read_bytes() == WAV
    assert server.paths == ["/redirect/3", "/redirect/2", "/redirect/1", "/audio.wav"]


def test_refuses_redirects_beyond_the_cap(server: LocalServer, tmp_path: Path) -> None:
    with pytest.raises(UrlFetchError, match="redirected more than 3 times"):
        fetch(server.url("/redirect/4"), tmp_path)
    assert server.paths == ["/redirect/4", "/redirect/3", "/redirect/2", "/redirect/1"]
    assert_no_files(tmp_path)


def test_follows_an_absolute_redirect(server: LocalServer, tmp_path: Path) -> None:
    url = server.url("/to?" + urlencode({"u": server.url("/audio.wav")}))
    assert fetch(url, tmp_path).read_bytes() == WAV


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://metadata/",
        "http://0.0.0.0:{port}/audio.wav",
        "http://224.0.0.1/",
        "ftp://127.0.0.1:{port}/audio.wav",
        "file:///etc/passwd",
        "http://user:pw@127.0.0.1:{port}/audio.wav",
    ],
)
def test_a_redirect_to_a_blocked_target_is_refused(
    server: LocalServer, tmp_path: Path, target: str
) -> None:
    # Private networks are allowed here, so only the always-refused rules can stop the hop.
    start = server.url("/to?" + urlencode({"u": target.format(port=server.port)}))
    with pytest.raises(UrlBlockedError):
        fetch(start, tmp_path)
    assert len(server.paths) == 1
    assert server.paths[0].startswith("/to?")
    assert_no_files(tmp_path)


def test_cookies_are_not_kept_between_hops(server: LocalServer, tmp_path: Path) -> None:
    assert fetch(server.url("/cookie"), tmp_path).read_bytes() == b"echo"
    echo = server.server.seen[-1]
    assert echo.path == "/echo"
    assert "cookie" not in {name.lower() for name in echo.headers}


# ------------------------------------------------------------------------------ address policy


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/x",
        "http://localhost:{port}/",
        "http://[::1]:{port}/",
        "http://0x7f000001:{port}/",
        "http://2130706433:{port}/",
        "http://127.1:{port}/",
        "http://0:{port}/",
        "http://[::ffff:127.0.0.1]:{port}/",
        "http://169.254.169.254/",
        "http://100.100.100.200/",
        "http://[64:ff9b::7f00:1]/",
        "http://224.0.0.1/",
        "http://metadata.google.internal/",
        "http://METADATA.google.internal./",
    ],
)
def test_default_policy_blocks_before_any_request(
    server: LocalServer, tmp_path: Path, url: str
) -> None:
    with pytest.raises(UrlBlockedError) as caught:
        fetch(url.format(port=server.port), tmp_path, allow_private=False)
    assert caught.value.code == "url_blocked"
    assert caught.value.param == "file"
    assert server.paths == []
    assert_no_files(tmp_path)


def test_a_name_is_refused_when_any_address_is_blocked(
    server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def resolve(host: str, port: int, **_: object) -> list[Any]:
        assert host == "mixed.example"
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
        ]

    monkeypatch.setattr(anyio, "getaddrinfo", resolve)
    with pytest.raises(UrlBlockedError, match="resolves to a loopback address") as caught:
        fetch(f"http://mixed.example:{server.port}/audio.wav", tmp_path, allow_private=False)
    assert "127.0.0.1" not in str(caught.value)  # the resolved address is not echoed
    assert server.paths == []
    assert_no_files(tmp_path)


def test_connects_to_the_address_it_validated(
    server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups: list[str] = []

    async def resolve(host: str, port: int, **_: object) -> list[Any]:
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(anyio, "getaddrinfo", resolve)
    path = fetch(f"http://pinned.example:{server.port}/audio.wav", tmp_path)
    assert path.read_bytes() == WAV
    assert lookups == ["pinned.example"]  # resolved once; the socket went to the literal IP
    assert server.server.seen[0].headers["Host"] == f"pinned.example:{server.port}"


def test_tls_still_uses_the_url_host_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A TLS listener with no certificate: the handshake fails, but only after the client's
    # ClientHello has shown its SNI name, which must be the URL's host and not the pinned IP.
    names: list[str | None] = []
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.sni_callback = lambda _obj, name, _ctx: names.append(name)
        with contextlib.suppress(OSError), context.wrap_socket(conn, server_side=True):
            pass
        conn.close()

    async def resolve(host: str, port: int, **_: object) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(anyio, "getaddrinfo", resolve)
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    with listener, pytest.raises(UrlFetchError):
        fetch(f"https://pinned.example:{listener.getsockname()[1]}/a.wav", tmp_path)
    thread.join(5)
    assert names == ["pinned.example"]
    assert_no_files(tmp_path)


# ------------------------------------------------------------------------------ URL rules


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1:{port}/audio.wav",
        "file:///etc/passwd",
        "data:audio/wav;base64,UklGRiQAAABXQVZF",
        "javascript:alert(1)",
        "http://user:pass@127.0.0.1:{port}/audio.wav",
        "http://user@127.0.0.1:{port}/audio.wav",
        "http:///audio.wav",
        "127.0.0.1:{port}/audio.wav",
        "",
    ],
)
def test_refuses_other_schemes_credentials_and_junk(
    server: LocalServer, tmp_path: Path, url: str
) -> None:
    with pytest.raises(UrlBlockedError):
        fetch(url.format(port=server.port), tmp_path)
    assert server.paths == []
    assert_no_files(tmp_path)


def test_url_length_is_capped(server: LocalServer, tmp_path: Path) -> None:
    url = server.url("/audio.wav?pad=" + "a" * 40)
    at_cap = FetchLimits(max_url_length=len(url))
    assert fetch(url, tmp_path, limits=at_cap).read_bytes() == WAV
    with pytest.raises(UrlBlockedError, match="longer than"):
        fetch(url, tmp_path, limits=FetchLimits(max_url_length=len(url) - 1))
    with pytest.raises(UrlBlockedError, match="longer than 2048 characters"):
        fetch(server.url("/" + "a" * 2100), tmp_path)
    assert len(server.paths) == 1


# ------------------------------------------------------------------------------ size limits


@pytest.mark.parametrize("path", ["/big", "/chunked", "/gzip-bomb"])
def test_bodies_over_the_cap_are_refused(server: LocalServer, tmp_path: Path, path: str) -> None:
    with pytest.raises(UrlTooLargeError, match="larger than the 100000 bytes limit") as caught:
        fetch(server.url(path), tmp_path)
    assert caught.value.code == "url_too_large"
    assert_no_files(tmp_path)


def test_the_size_message_uses_mebibytes_for_round_limits(
    server: LocalServer, tmp_path: Path
) -> None:
    with pytest.raises(UrlTooLargeError, match="larger than the 1 MiB limit"):
        fetch(server.url("/gzip-bomb"), tmp_path, limits=FetchLimits(max_bytes=1024 * 1024))
    assert_no_files(tmp_path)


# ------------------------------------------------------------------------------ time limits


def test_a_server_that_never_answers_times_out(server: LocalServer, tmp_path: Path) -> None:
    limits = FetchLimits(read_timeout=0.3, total_timeout=5.0)
    with pytest.raises(UrlTimeoutError, match="did not answer in time"):
        fetch(server.url("/slow-headers"), tmp_path, limits=limits)
    assert_no_files(tmp_path)


def test_the_overall_deadline_stops_a_trickling_body(server: LocalServer, tmp_path: Path) -> None:
    limits = FetchLimits(read_timeout=2.0, total_timeout=0.4)
    with pytest.raises(UrlTimeoutError, match=r"within 0\.4 seconds"):
        fetch(server.url("/trickle"), tmp_path, limits=limits)
    assert server.paths == ["/trickle"]
    assert_no_files(tmp_path)


# ------------------------------------------------------------------------------ failures


@pytest.mark.parametrize(("status", "text"), [(404, "404 Not Found"), (500, "500 Internal")])
def test_error_statuses_are_reported(
    server: LocalServer, tmp_path: Path, status: int, text: str
) -> None:
    with pytest.raises(UrlFetchError, match=text) as caught:
        fetch(server.url(f"/status/{status}"), tmp_path)
    assert caught.value.code == "url_http_error"
    assert_no_files(tmp_path)


def test_a_refused_connection_is_a_fetch_error(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(UrlFetchError, match="connection to the URL's server failed"):
        fetch(f"http://127.0.0.1:{port}/audio.wav", tmp_path)
    assert_no_files(tmp_path)


def test_an_unresolvable_name_is_a_fetch_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def resolve(host: str, port: int, **_: object) -> list[Any]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(anyio, "getaddrinfo", resolve)
    with pytest.raises(UrlFetchError, match="could not be resolved"):
        fetch("http://nowhere.example/audio.wav", tmp_path)
    assert_no_files(tmp_path)
