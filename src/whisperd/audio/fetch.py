"""Download audio from a URL given by an untrusted API client, without opening an SSRF hole.

:class:`AudioFetcher` downloads one URL to a new temporary file and returns its path. Every
outbound connection goes through :class:`_GuardedBackend`, an ``httpcore2`` network backend that:

1. refuses the host names ``metadata.google.internal`` and ``metadata``;
2. resolves the host itself with :func:`anyio.getaddrinfo` (on a worker thread, never blocking the
   event loop);
3. refuses the host if **any** resolved address fails
   :func:`~whisperd.audio.addresses.address_block_reason`;
4. connects to the validated literal IP, so no second DNS lookup can rebind the name to another
   address. ``httpcore2`` still passes the URL's host name to ``start_tls`` as the SNI name and
   for certificate checking (``AsyncHTTPConnection._connect``), so HTTPS verification is
   unchanged.

The backend is installed with the public ``network_backend`` parameter of
:class:`httpcore2.AsyncConnectionPool`, owned by :class:`_GuardedTransport` (an
:class:`httpx2.AsyncBaseTransport`). ``httpx2.AsyncHTTPTransport`` has no such parameter, so the
transport is written here instead of swapping its private pool.

Because the check runs on every new connection, each redirect hop is covered too; redirects are
followed by hand (at most :attr:`FetchLimits.max_redirects`) and each hop's URL is re-validated.
The client ignores proxy settings from the environment, stores no cookies, checks
``Content-Length`` before reading, counts *decoded* bytes while streaming (``httpx2`` inflates
gzip/deflate in bounded 1 MiB steps), and runs under an overall deadline.

Every failure is a :class:`~whisperd.errors.UrlError` subclass with a message meant for the user;
no temporary file is left behind on any error path.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import anyio
import anyio.to_thread
import httpcore2
import httpx2

from whisperd import __version__
from whisperd.audio.addresses import IPAddress, check_address, check_host_name, literal_address
from whisperd.errors import UrlBlockedError, UrlFetchError, UrlTimeoutError, UrlTooLargeError

__all__ = ["AudioFetcher", "FetchLimits", "guarded_transport"]

logger = logging.getLogger(__name__)

_ALLOWED_SCHEMES = frozenset({"http", "https"})

_CHUNK_SIZE = 64 * 1024
_MAX_CONNECTIONS = 64
_MAX_KEEPALIVE_CONNECTIONS = 8
_KEEPALIVE_EXPIRY = 5.0
_REQUEST_HEADERS = (("User-Agent", f"whisperd/{__version__} (audio URL fetch)"), ("Accept", "*/*"))

# httpcore2 exceptions to their httpx2 counterparts, most specific first.
_CORE_TO_HTTPX: tuple[tuple[type[Exception], type[httpx2.TransportError]], ...] = (
    (httpcore2.ConnectTimeout, httpx2.ConnectTimeout),
    (httpcore2.ReadTimeout, httpx2.ReadTimeout),
    (httpcore2.WriteTimeout, httpx2.WriteTimeout),
    (httpcore2.PoolTimeout, httpx2.PoolTimeout),
    (httpcore2.TimeoutException, httpx2.TimeoutException),
    (httpcore2.ConnectError, httpx2.ConnectError),
    (httpcore2.ReadError, httpx2.ReadError),
    (httpcore2.WriteError, httpx2.WriteError),
    (httpcore2.NetworkError, httpx2.NetworkError),
    (httpcore2.ProxyError, httpx2.ProxyError),
    (httpcore2.UnsupportedProtocol, httpx2.UnsupportedProtocol),
    (httpcore2.RemoteProtocolError, httpx2.RemoteProtocolError),
    (httpcore2.LocalProtocolError, httpx2.LocalProtocolError),
    (httpcore2.ProtocolError, httpx2.ProtocolError),
)
_CORE_ERRORS = tuple(core for core, _ in _CORE_TO_HTTPX)


@dataclass(frozen=True, slots=True)
class FetchLimits:
    """Bounds on one download.

    Attributes:
        max_bytes: Largest decoded body accepted, in bytes.
        connect_timeout: Seconds allowed to resolve the host and open a connection (also the
            wait for a free pooled connection).
        read_timeout: Seconds allowed between two reads (and for each write).
        total_timeout: Seconds allowed for the whole download, redirects included.
        max_redirects: Redirect hops followed before giving up.
        max_url_length: Longest URL accepted, in characters (each redirect target too).
    """

    max_bytes: int = 25 * 1024 * 1024
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    total_timeout: float = 60.0
    max_redirects: int = 3
    max_url_length: int = 2048


# --------------------------------------------------------------------------- transport


class _GuardedBackend(httpcore2.AsyncNetworkBackend):
    """Resolve, check every address, then connect to a checked literal IP."""

    def __init__(self, *, allow_private_networks: bool) -> None:
        self._allow_private_networks = allow_private_networks
        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore2's backend interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        """Connect to ``host`` only if every address it resolves to is allowed."""
        check_host_name(host)
        try:
            with anyio.fail_after(timeout):
                addresses = await self._resolve(host, port)
                return await self._connect_first(addresses, port, local_address, socket_options)
        except TimeoutError as exc:
            raise httpcore2.ConnectTimeout(f"Connecting to {host!r} timed out.") from exc

    async def _resolve(self, host: str, port: int) -> list[IPAddress]:
        try:
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            logger.info("URL host %r did not resolve: %s", host, exc)
            raise UrlFetchError(f"The URL's host {host!r} could not be resolved.") from None
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
        if not addresses:
            raise UrlFetchError(f"The URL's host {host!r} could not be resolved.")
        for address in addresses:
            check_address(host, address, allow_private_networks=self._allow_private_networks)
        return addresses

    async def _connect_first(
        self,
        addresses: list[IPAddress],
        port: int,
        local_address: str | None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None,
    ) -> httpcore2.AsyncNetworkStream:
        """Try the validated addresses in resolver order; the caller bounds the total time."""
        options = list(socket_options or ())
        *others, last = addresses
        for address in others:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, local_address=local_address, socket_options=options
                )
            except httpcore2.ConnectError as exc:
                logger.debug("Connecting to %s failed (%s); trying the next address", address, exc)
        return await self._inner.connect_tcp(
            str(last), port, local_address=local_address, socket_options=options
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore2's backend interface
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        """Refuse: fetched URLs never reach a Unix socket."""
        raise UrlBlockedError("Unix sockets cannot be fetched.")

    async def sleep(self, seconds: float) -> None:
        """Sleep between connection retries."""
        await anyio.sleep(seconds)


@contextlib.contextmanager
def _httpx_errors() -> Iterator[None]:
    """Re-raise ``httpcore2`` exceptions as their ``httpx2`` counterparts."""
    try:
        yield
    except _CORE_ERRORS as exc:
        httpx_type = next(new for old, new in _CORE_TO_HTTPX if isinstance(exc, old))
        raise httpx_type(str(exc)) from exc


class _ResponseStream(httpx2.AsyncByteStream):
    """An ``httpcore2`` response body seen as an ``httpx2`` stream."""

    def __init__(self, stream: AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        closer = getattr(self._stream, "aclose", None)
        if closer is not None:
            await closer()


class _GuardedTransport(httpx2.AsyncBaseTransport):
    """An ``httpx2`` transport whose connection pool connects through :class:`_GuardedBackend`."""

    def __init__(self, *, allow_private_networks: bool) -> None:
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=httpx2.create_ssl_context(trust_env=False),
            max_connections=_MAX_CONNECTIONS,
            max_keepalive_connections=_MAX_KEEPALIVE_CONNECTIONS,
            keepalive_expiry=_KEEPALIVE_EXPIRY,
            http1=True,
            http2=False,
            network_backend=_GuardedBackend(allow_private_networks=allow_private_networks),
        )

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        """Send ``request`` through the guarded pool."""
        if not isinstance(request.stream, httpx2.AsyncByteStream):
            raise TypeError("The guarded transport needs an async request body.")
        core_request = httpcore2.Request(
            method=request.method,
            url=httpcore2.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _httpx_errors():
            core_response = await self._pool.handle_async_request(core_request)
        if not isinstance(core_response.stream, AsyncIterable):
            raise TypeError("The connection pool returned a synchronous body.")
        return httpx2.Response(
            status_code=core_response.status,
            headers=core_response.headers,
            stream=_ResponseStream(core_response.stream),
            extensions=core_response.extensions,
        )

    async def aclose(self) -> None:
        """Close every pooled connection."""
        await self._pool.aclose()


def guarded_transport(*, allow_private_networks: bool) -> httpx2.AsyncBaseTransport:
    """An ``httpx2`` transport that connects only to addresses the SSRF policy allows.

    Each new connection resolves its host once, refuses it if any address is blocked
    (:mod:`whisperd.audio.addresses`), then connects to a checked address, as described above.
    A refused host raises :class:`~whisperd.errors.UrlBlockedError` out of the request, one that
    does not resolve :class:`~whisperd.errors.UrlFetchError`. The caller closes it (``aclose``).
    Also used by the job webhooks' sender (:mod:`whisperd.jobs.webhooks`).
    """
    return _GuardedTransport(allow_private_networks=allow_private_networks)


# --------------------------------------------------------------------------- fetcher


def _discard(path: Path) -> None:
    """Delete a partial download; synchronous so it also runs while being cancelled."""
    path.unlink(missing_ok=True)


def _describe_bytes(count: int) -> str:
    mib = 1024 * 1024
    if count >= mib and count % mib == 0:
        return f"{count // mib} MiB"
    return f"{count} bytes"


@contextlib.contextmanager
def _url_errors(*, timeout_message: str, failure_message: str) -> Iterator[None]:
    """Turn ``httpx2`` timeouts and other errors into user-facing URL errors."""
    try:
        yield
    except httpx2.TimeoutException:
        raise UrlTimeoutError(timeout_message) from None
    except httpx2.HTTPError as exc:
        logger.info("URL fetch failed: %s: %s", type(exc).__name__, exc)
        raise UrlFetchError(failure_message) from None


class AudioFetcher:
    """Downloads audio from user-given URLs, refusing internal and metadata addresses.

    One fetcher holds a connection pool; share it and close it with :meth:`aclose` (or use it
    as an async context manager).

    Args:
        limits: Size, time and redirect bounds; the defaults of :class:`FetchLimits` if None.
        allow_private_networks: Also allow loopback, private, link-local and CGNAT addresses
            (for deployments that fetch from an internal network, and for tests). Cloud
            metadata addresses and names, multicast and unspecified addresses stay refused.
    """

    def __init__(
        self, limits: FetchLimits | None = None, *, allow_private_networks: bool = False
    ) -> None:
        self._limits = limits or FetchLimits()
        self._allow_private_networks = allow_private_networks
        self._client = httpx2.AsyncClient(
            transport=_GuardedTransport(allow_private_networks=allow_private_networks),
            trust_env=False,
            follow_redirects=False,
            # A jar that accepts no domain: cookies never persist between hops or fetches.
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
            headers=list(_REQUEST_HEADERS),
            timeout=httpx2.Timeout(
                connect=self._limits.connect_timeout,
                read=self._limits.read_timeout,
                write=self._limits.read_timeout,
                pool=self._limits.connect_timeout,
            ),
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
        """Close the connection pool."""
        await self._client.aclose()

    async def fetch(self, url: str, directory: Path | None = None) -> Path:
        """Download ``url`` to a new temporary file and return its path; the caller deletes it.

        Args:
            url: An ``http`` or ``https`` URL given by the client.
            directory: Where to create the file; the system temporary directory if None.

        Returns:
            The path of the new file, holding the decoded response body.

        Raises:
            UrlBlockedError: The URL, a redirect target, or an address it resolves to is refused.
            UrlTooLargeError: The body is larger than :attr:`FetchLimits.max_bytes`.
            UrlTimeoutError: A connect or read timeout, or the overall deadline, passed.
            UrlFetchError: The connection failed, there were too many redirects, or the final
                status was not 2xx.
        """
        total = self._limits.total_timeout
        try:
            with anyio.fail_after(total):
                return await self._download(url, directory)
        except TimeoutError:
            raise UrlTimeoutError(
                f"The URL did not finish downloading within {total:g} seconds."
            ) from None

    async def _download(self, url: str, directory: Path | None) -> Path:
        response = await self._open(url)
        try:
            self._check_declared_size(response)
            return await self._save(response, directory)
        finally:
            await response.aclose()

    def _validate_url(self, url: str) -> httpx2.URL:
        """Check one URL (the first, or a redirect target) before connecting anywhere."""
        if len(url) > self._limits.max_url_length:
            raise UrlBlockedError(
                f"The URL is longer than {self._limits.max_url_length} characters."
            )
        try:
            parsed = httpx2.URL(url)
        except (httpx2.InvalidURL, TypeError, ValueError):
            raise UrlBlockedError("The URL is not valid.") from None
        if parsed.scheme not in _ALLOWED_SCHEMES:
            raise UrlBlockedError("Only http:// and https:// URLs can be fetched.")
        if parsed.userinfo:
            raise UrlBlockedError("URLs with a user name or password are not allowed.")
        if not parsed.host:
            raise UrlBlockedError("The URL has no host.")
        check_host_name(parsed.host)
        literal = literal_address(parsed.host)
        if literal is not None:
            check_address(parsed.host, literal, allow_private_networks=self._allow_private_networks)
        return parsed

    async def _open(self, url: str) -> httpx2.Response:
        """Send the request, following at most ``max_redirects`` re-validated redirects."""
        target = self._validate_url(url)
        redirects = 0
        while True:
            with _url_errors(
                timeout_message="The URL's server did not answer in time.",
                failure_message="The connection to the URL's server failed.",
            ):
                response = await self._client.send(
                    self._client.build_request("GET", target), stream=True
                )
            if not response.has_redirect_location:
                return await self._require_success(response)
            next_request = response.next_request
            await response.aclose()
            if redirects >= self._limits.max_redirects:
                raise UrlFetchError(
                    f"The URL redirected more than {self._limits.max_redirects} times."
                )
            if next_request is None:
                raise UrlFetchError("The URL's server sent an invalid redirect.")
            redirects += 1
            target = self._validate_url(str(next_request.url))

    @staticmethod
    async def _require_success(response: httpx2.Response) -> httpx2.Response:
        if response.is_success:
            return response
        await response.aclose()
        status = f"{response.status_code} {response.reason_phrase}".strip()
        raise UrlFetchError(f"The URL's server answered with HTTP status {status}.")

    def _check_declared_size(self, response: httpx2.Response) -> None:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self._limits.max_bytes:
            raise UrlTooLargeError(self._too_large_message())

    def _too_large_message(self) -> str:
        limit = _describe_bytes(self._limits.max_bytes)
        return f"The file at the URL is larger than the {limit} limit."

    async def _save(self, response: httpx2.Response, directory: Path | None) -> Path:
        """Stream the decoded body into a new temporary file, removed again on any failure."""
        # Created on the event loop on purpose: a worker-thread create could finish after a
        # cancellation and leave an orphan file.
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed by the `with` below
            mode="wb", prefix="whisperd-url-", dir=directory, delete=False
        )
        path = Path(handle.name)
        try:
            with handle:
                await self._write_body(response, handle)
        except BaseException:
            _discard(path)
            raise
        return path

    async def _write_body(self, response: httpx2.Response, handle: IO[bytes]) -> None:
        written = 0
        with _url_errors(
            timeout_message="The URL's server stopped sending data before the download finished.",
            failure_message="The download from the URL was interrupted.",
        ):
            async for chunk in response.aiter_bytes(_CHUNK_SIZE):
                written += len(chunk)
                if written > self._limits.max_bytes:
                    raise UrlTooLargeError(self._too_large_message())
                await anyio.to_thread.run_sync(handle.write, chunk)
