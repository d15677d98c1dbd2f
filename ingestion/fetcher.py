"""SafeFetcher: the one way the app downloads an address a user gave.

Such an address can point anywhere this server can reach: its own loopback, the private
network, the cloud metadata service. So every hop of every fetch is checked:

* only http and https, without a user name or password in the address;
* numeric hosts are normalised the way browsers and `inet_aton` read them (2130706433,
  0177.0.0.1, 0x7f.0.0.1 and 127.1 all mean 127.0.0.1) and checked without any lookup;
* a host name is resolved once, through `resolver`, and refused if ANY of its addresses is
  not publicly routable (IPv4-mapped, 6to4 and NAT64 IPv6 addresses are judged by the IPv4
  address they carry). The socket then connects to a checked address itself, so a second
  lookup that would answer differently (DNS rebinding) never happens; the Host header, SNI
  and certificate check still use the original name;
* redirects are followed by hand, and each one is checked from scratch;
* `allowlist` (FETCH_ALLOWLIST: host names and/or CIDRs) is the only way past the check.

Limits: a connect timeout, a read timeout per socket read, an overall deadline of four read
timeouts (a server dripping a byte at a time cannot hold a worker), a byte cap counted while
reading (Content-Length is only used to refuse early), and a cap on the decompressed size
(gzip and deflate are inflated piece by piece, so a bomb stops at the cap).

The body's type is sniffed from its first bytes and weighed against the header: only HTML,
PDF, CSV, Markdown and plain text pass, whatever the header claims.
"""

from __future__ import annotations

import codecs
import functools
import http.client
import io
import ipaddress
import logging
import re
import socket
import ssl
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

from django.conf import settings

logger = logging.getLogger(__name__)

USER_AGENT = "MultiLLMChat/1.0 (+ingestion)"
ACCEPT = "text/html,application/xhtml+xml,application/pdf,text/csv,text/markdown,text/plain;q=0.9,*/*;q=0.1"
# The overall deadline of one fetch (every hop and the body), in read timeouts.
DEADLINE_READ_TIMEOUTS = 4

_READ_SIZE = 64 * 1024
_SNIFF_SIZE = 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[..., Sequence[tuple[Any, ...]]]


@dataclass(frozen=True)
class FetchResult:
    """What a fetch brought back.

    `content_type` is one of text/html, application/pdf, text/csv, text/plain and
    text/markdown, or "" when `not_modified` (a conditional request got 304, and `body` is
    empty). `charset` is the header's, or "". `body` is already decompressed.
    """

    url: str
    status: int
    content_type: str
    charset: str
    body: bytes
    etag: str = ""
    last_modified: str = ""
    not_modified: bool = False


class FetchError(Exception):
    """Why an address could not be fetched, said so that a user can act on it.

    `code` is one of: blocked_address, bad_url, dns_failed, connect_failed, timeout,
    too_many_redirects, http_error, too_large, decompression_bomb, unsupported_type, empty.
    `permanent` errors will fail again if retried (a blocked address, a 404, a file too
    large); the others (timeouts, refused connections, 429, 5xx) may pass later.
    `retry_after` is the site's own hint in seconds (429, 503), if it gave one.
    """

    def __init__(self, message: str, *, code: str, permanent: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.permanent = permanent
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"FetchError({self.message!r}, code={self.code!r}, permanent={self.permanent})"


class SafeFetcher:
    """Fetches user-given http(s) addresses with the guard and limits described above.

    Arguments left as None come from the FETCH_* settings; `ssl_context` (default: the
    system's trusted certificates) verifies https servers.
    """

    def __init__(
        self,
        *,
        resolver: Resolver = socket.getaddrinfo,
        allowlist: Iterable[str] | None = None,
        max_bytes: int | None = None,
        max_decompressed_bytes: int | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        max_redirects: int | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.resolver = resolver
        self.allowlist = _Allowlist(settings.FETCH_ALLOWLIST if allowlist is None else allowlist)
        self.max_bytes = settings.FETCH_MAX_BYTES if max_bytes is None else max_bytes
        self.max_decompressed_bytes = (
            settings.FETCH_MAX_DECOMPRESSED_BYTES if max_decompressed_bytes is None else max_decompressed_bytes
        )
        self.connect_timeout = settings.FETCH_CONNECT_TIMEOUT if connect_timeout is None else connect_timeout
        self.read_timeout = settings.FETCH_READ_TIMEOUT if read_timeout is None else read_timeout
        self.max_redirects = settings.FETCH_MAX_REDIRECTS if max_redirects is None else max_redirects
        self.ssl_context = ssl_context or _system_ssl_context()

    def fetch(self, url: str, *, etag: str = "", last_modified: str = "") -> FetchResult:
        """Fetch `url`, following redirects; a conditional request when `etag`/`last_modified` are given."""
        started = time.monotonic()
        deadline = started + DEADLINE_READ_TIMEOUTS * self.read_timeout
        conditions = {"If-None-Match": _header_value(etag), "If-Modified-Since": _header_value(last_modified)}
        conditions = {name: value for name, value in conditions.items() if value}
        current = url
        try:
            for hop in range(self.max_redirects + 1):
                target = _parse_url(current, redirected=hop > 0)
                addresses = self._addresses(target)
                outcome = self._exchange(target, addresses, deadline, conditions)
                if isinstance(outcome, FetchResult):
                    logger.info(
                        "Fetched %s: HTTP %s, %s, %d bytes in %.2f s",
                        target.display,
                        outcome.status,
                        outcome.content_type or "not modified",
                        len(outcome.body),
                        time.monotonic() - started,
                    )
                    return outcome
                logger.debug("%s redirects to %s", target.display, _display(outcome))
                current = outcome
            raise FetchError(
                f"The address redirected more than {self.max_redirects} times (perhaps in a loop), so it was not "
                "followed further.",
                code="too_many_redirects",
                permanent=True,
            )
        except FetchError as exc:
            redirected = f" (redirected to {_display(current)})" if current != url else ""
            level = logging.WARNING if exc.code == "blocked_address" else logging.INFO
            logger.log(level, "Could not fetch %s%s: %s (%s)", _display(url), redirected, exc.code, exc.message)
            raise

    # One hop: resolve and check, connect, ask, answer.

    def _addresses(self, target: _Target) -> list[IPAddress]:
        """The checked addresses to connect to: the literal one, or what one lookup returned."""
        if target.address is not None:
            self._check(target, target.address, resolved=False)
            return [target.address]
        try:
            infos = self.resolver(target.host, target.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            if exc.errno in _NAME_UNKNOWN:
                message = f"The address {target.host} could not be found (no such name)."
            else:
                message = f"The address {target.host} could not be looked up right now; try again later."
            raise FetchError(message, code="dns_failed", permanent=exc.errno in _NAME_UNKNOWN) from exc
        except (OSError, UnicodeError) as exc:
            raise FetchError(
                f"The address {target.host} could not be looked up right now; try again later.",
                code="dns_failed",
                permanent=False,
            ) from exc
        addresses: list[IPAddress] = []
        for info in infos:
            address = _address_of(info)
            if address is not None and address not in addresses:
                addresses.append(address)
        if not addresses:
            raise FetchError(
                f"The address {target.host} could not be found (it has no address).", code="dns_failed", permanent=True
            )
        for address in addresses:
            self._check(target, address, resolved=True)
        return addresses

    def _check(self, target: _Target, address: IPAddress, *, resolved: bool) -> None:
        if self.allowlist.allows(target.host, address):
            return
        kind = _non_public_kind(address)
        if not kind:
            return
        shown = _show(address)
        if resolved:
            what = f"resolves to {kind} ({shown})"
        elif target.shown_host != shown:
            what = f"is {kind} ({shown})"
        else:
            what = f"is {kind}"
        if target.redirected:
            message = f"The page redirected to {target.shown_host}, which {what}; only public addresses can be fetched."
        else:
            message = f"The address {target.shown_host} {what}; only public addresses can be fetched."
        raise FetchError(message, code="blocked_address", permanent=True)

    def _exchange(
        self, target: _Target, addresses: list[IPAddress], deadline: float, conditions: dict[str, str]
    ) -> FetchResult | str:
        """One request to a checked address: the result, or the next URL of a redirect."""
        sock = self._open(target, addresses, deadline)
        connection = http.client.HTTPConnection(f"[{target.host}]" if ":" in target.host else target.host, target.port)
        # Never let http.client (re)connect by itself: that would look the name up again.
        connection.auto_open = 0
        connection.sock = sock
        connection.response_class = functools.partial(  # type: ignore[assignment]
            _DeadlineResponse, deadline=deadline, read_timeout=self.read_timeout
        )
        response: http.client.HTTPResponse | None = None
        try:
            connection.putrequest("GET", target.path, skip_host=True, skip_accept_encoding=True)
            headers = {
                "Host": target.host_header,
                "User-Agent": USER_AGENT,
                "Accept": ACCEPT,
                "Accept-Encoding": "gzip, deflate",
                "Connection": "close",
                **conditions,
            }
            for name, value in headers.items():
                connection.putheader(name, value)
            connection.endheaders()
            response = connection.getresponse()
            return self._answer(target, response, conditions)
        except TimeoutError as exc:
            raise self._timeout(target, deadline) from exc
        except http.client.IncompleteRead as exc:
            raise _broke_off(target) from exc
        except http.client.HTTPException as exc:
            raise FetchError(
                f"{target.host} did not answer like a web server; try again later.", code="http_error", permanent=False
            ) from exc
        except OSError as exc:
            raise _broke_off(target) from exc
        finally:
            if response is not None:
                response.close()
            connection.close()

    def _open(self, target: _Target, addresses: list[IPAddress], deadline: float) -> socket.socket:
        last_error: OSError | None = None
        for address in addresses:
            timeout = min(self.connect_timeout, deadline - time.monotonic())
            if timeout <= 0:
                raise self._timeout(target, deadline)
            try:
                sock = _connect_socket((str(address), target.port), timeout)
            except OSError as exc:
                logger.info("Could not connect to %s at %s: %s", target.host, address, exc)
                last_error = exc
                continue
            if target.scheme == "https":
                sock = self._wrap_tls(target, sock, deadline)
            return sock
        if isinstance(last_error, TimeoutError):
            raise FetchError(
                f"Connecting to {target.host} took too long (more than {self.connect_timeout:g} seconds); the site "
                "may be down, try again later.",
                code="timeout",
                permanent=False,
            ) from last_error
        reason = "the connection was refused" if isinstance(last_error, ConnectionRefusedError) else "a network error"
        raise FetchError(
            f"Could not connect to {target.host} ({reason}); the site may be down, try again later.",
            code="connect_failed",
            permanent=False,
        ) from last_error

    def _wrap_tls(self, target: _Target, sock: socket.socket, deadline: float) -> socket.socket:
        """TLS over the socket to the checked address, verified against the original host name."""
        try:
            sock.settimeout(max(0.001, min(self.read_timeout, deadline - time.monotonic())))
            return self.ssl_context.wrap_socket(sock, server_hostname=target.host)
        except ssl.SSLCertVerificationError as exc:
            sock.close()
            raise FetchError(
                f"The secure connection to {target.host} could not be verified ({exc.verify_message}); the site's "
                "certificate is not valid for this address.",
                code="connect_failed",
                permanent=True,
            ) from exc
        except TimeoutError as exc:
            sock.close()
            raise self._timeout(target, deadline) from exc
        except OSError as exc:
            sock.close()
            raise FetchError(
                f"A secure connection to {target.host} could not be set up; try again later.",
                code="connect_failed",
                permanent=False,
            ) from exc

    def _answer(
        self, target: _Target, response: http.client.HTTPResponse, conditions: dict[str, str]
    ) -> FetchResult | str:
        status = response.status
        etag = response.getheader("ETag", "")
        last_modified = response.getheader("Last-Modified", "")
        if status in _REDIRECTS:
            location = (response.getheader("Location") or "").strip()
            if not location:
                raise FetchError(
                    f"The page redirected without saying where to (HTTP {status}).", code="http_error", permanent=True
                )
            return urljoin(target.url, location)
        if status == 304 and conditions:
            return FetchResult(
                url=target.url,
                status=304,
                content_type="",
                charset="",
                body=b"",
                etag=etag or conditions.get("If-None-Match", ""),
                last_modified=last_modified or conditions.get("If-Modified-Since", ""),
                not_modified=True,
            )
        if not 200 <= status < 300:
            raise _http_error(status, response.getheader("Retry-After"))
        media_type, charset = _parse_content_type(response.getheader("Content-Type", ""))
        body = self._read_body(target, response)
        if not body or body.isspace():
            raise FetchError("The page is empty: the site sent nothing to read.", code="empty", permanent=True)
        content_type = _sniff(body, media_type, target.path)
        if content_type is None:
            raise _unsupported(target, body, media_type)
        return FetchResult(
            url=target.url,
            status=status,
            content_type=content_type,
            charset=charset,
            body=body,
            etag=etag,
            last_modified=last_modified,
        )

    def _read_body(self, target: _Target, response: http.client.HTTPResponse) -> bytes:
        declared = (response.getheader("Content-Length") or "").strip()
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise _too_large(target, self.max_bytes)
        encoding = (response.getheader("Content-Encoding") or "identity").strip().lower()
        if encoding not in ("identity", "gzip", "x-gzip", "deflate"):
            raise FetchError(
                f"{target.host} sent the file compressed as “{encoding}”, which cannot be read.",
                code="unsupported_type",
                permanent=True,
            )
        inflater = _Inflater(encoding, self.max_decompressed_bytes)
        received = 0
        while chunk := response.read1(_READ_SIZE):
            received += len(chunk)
            if received > self.max_bytes:
                raise _too_large(target, self.max_bytes)
            inflater.feed(chunk)
        if response.length:
            # The connection closed before the announced Content-Length arrived.
            raise _broke_off(target)
        return inflater.finish()

    def _timeout(self, target: _Target, deadline: float) -> FetchError:
        if time.monotonic() >= deadline - 0.01:
            message = (
                f"Fetching from {target.host} took longer than "
                f"{DEADLINE_READ_TIMEOUTS * self.read_timeout:g} seconds in all and was stopped; try again later."
            )
        else:
            message = (
                f"{target.host} took too long to answer (nothing for {self.read_timeout:g} seconds); try again later."
            )
        return FetchError(message, code="timeout", permanent=False)


# The address: parsing, normalising, judging.


@dataclass(frozen=True)
class _Target:
    url: str  # normalised: no fragment, ASCII host, path quoted
    scheme: str
    host: str  # an ASCII host name, or an address in its canonical form
    shown_host: str  # as the user wrote it, for messages
    port: int
    path: str  # path and query, as sent in the request line
    address: IPAddress | None  # when the URL names an address itself
    redirected: bool

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == _DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    @property
    def display(self) -> str:
        """The address without its query string (which may hold a token), for logs."""
        return f"{self.scheme}://{self.host_header}{self.path.split('?', 1)[0]}"


_DEFAULT_PORTS = {"http": 80, "https": 443}
_NOT_IN_URL = re.compile(r"[\x00-\x20\x7f\\]")
_HOST_NAME = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*")
_IPV4_PART = re.compile(r"0x[0-9a-f]*|[0-9]+")
_USERINFO = re.compile(r"//[^/?#]*@")  # hidden in messages as "//…@"
_PATH_SAFE = "/%:@!$&'()*+,;=?~-._"
_NAME_UNKNOWN = {code for code in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None)) if code is not None}


def _parse_url(url: str, *, redirected: bool) -> _Target:
    # Messages are shown and logged: leave out a user name and password.
    shown = _shorten(_USERINFO.sub("//…@", url))
    where = "The page redirected to" if redirected else "The address"

    def bad(reason: str) -> FetchError:
        return FetchError(f"{where} “{shown}” {reason}", code="bad_url", permanent=True)

    url = url.strip()
    if not url or _NOT_IN_URL.search(url):
        raise bad("is not a valid web address.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise bad("is not a valid web address.") from exc
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise bad("is not a web address; only http:// and https:// addresses can be fetched.")
    if "@" in parts.netloc:
        raise bad("contains a user name or password, which is not allowed.")
    raw_host = parts.hostname or ""
    if not raw_host:
        raise bad("has no host name.")
    if port == 0:
        raise bad("has an invalid port.")
    address: IPAddress | None = None
    if parts.netloc.startswith("["):
        try:
            address = ipaddress.IPv6Address(raw_host.split("%", 1)[0])
        except ValueError as exc:
            raise bad("is not a valid web address.") from exc
        host = str(address)
    else:
        host = raw_host.removesuffix(".")
        if not host.isascii():
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError as exc:
                raise bad("has a host name that is not valid.") from exc
        if not _HOST_NAME.fullmatch(host):
            raise bad("has a host name that is not valid.")
        if _IPV4_PART.fullmatch(host.rsplit(".", 1)[-1]):
            # Like a browser: a host ending in a number is an IPv4 address in some notation.
            try:
                address = _parse_ipv4(host)
            except ValueError as exc:
                raise bad("is not a valid IP address.") from exc
            host = str(address)
    path = quote(parts.path or "/", safe=_PATH_SAFE)
    if parts.query:
        path += "?" + quote(parts.query, safe=_PATH_SAFE)
    target = _Target(
        url="",
        scheme=scheme,
        host=host,
        shown_host=raw_host,
        port=port or _DEFAULT_PORTS[scheme],
        path=path,
        address=address,
        redirected=redirected,
    )
    return replace(target, url=f"{scheme}://{target.host_header}{path}")


def _parse_ipv4(host: str) -> ipaddress.IPv4Address:
    """An IPv4 host in any notation `inet_aton` and browsers accept: dotted, short, decimal, octal, hex."""
    parts = host.split(".")
    if len(parts) > 4 or not all(_IPV4_PART.fullmatch(part) for part in parts):
        raise ValueError(host)
    numbers = [_parse_ipv4_number(part) for part in parts]
    if any(number > 255 for number in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise ValueError(host)
    value = numbers[-1] + sum(number << (8 * (3 - index)) for index, number in enumerate(numbers[:-1]))
    return ipaddress.IPv4Address(value)


def _parse_ipv4_number(part: str) -> int:
    if part.startswith("0x"):
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        return int(part[1:], 8)
    return int(part, 10)


def _address_of(info: tuple[Any, ...]) -> IPAddress | None:
    try:
        return ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
    except (ValueError, IndexError, TypeError):
        return None


_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_BROADCAST = ipaddress.IPv4Address("255.255.255.255")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped, 6to4 or NAT64 address leads to."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _show(address: IPAddress) -> str:
    """An address as people write it: IPv4-mapped ones in their dotted form."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return f"::ffff:{address.ipv4_mapped}"
    return str(address)


def _non_public_kind(address: IPAddress) -> str:
    """What kind of non-public address this is, as a phrase; "" for a public one."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return _non_public_kind(embedded)
    if address.is_loopback:
        return "a loopback address (this server itself)"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_link_local:
        return "a link-local address (such as a cloud metadata service)"
    if address.is_multicast:
        return "a multicast address"
    if address == _BROADCAST:
        return "a broadcast address"
    if address in _CGNAT:
        return "a shared carrier network address"
    if address.is_private or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local):
        return "a private network address"
    if address.is_reserved or not address.is_global:
        return "a reserved address"
    return ""


class _Allowlist:
    """FETCH_ALLOWLIST: host names (exact) and addresses or CIDRs that may be fetched though not public."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.hosts: set[str] = set()
        self.networks: list[IPNetwork] = []
        for entry in entries:
            entry = entry.strip().lower().removesuffix(".")
            if not entry:
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.hosts.add(entry.encode("idna").decode("ascii") if not entry.isascii() else entry)

    def allows(self, host: str, address: IPAddress) -> bool:
        if host in self.hosts:
            return True
        candidates: list[IPAddress] = [address]
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            candidates.append(address.ipv4_mapped)
        return any(candidate in network for candidate in candidates for network in self.networks)


@functools.cache
def _system_ssl_context() -> ssl.SSLContext:
    """Verifies certificates and host names against the system's trusted CAs; made once (loading them is slow)."""
    return ssl.create_default_context()


def _connect_socket(address: tuple[str, int], timeout: float) -> socket.socket:
    """A TCP connection to an address (never a name: there is no lookup here)."""
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock


# Reading under a deadline.


class _DeadlineReader(io.RawIOBase):
    """The socket's reader, where each read waits at most the read timeout and none starts after the deadline."""

    def __init__(self, raw: io.RawIOBase, sock: socket.socket, deadline: float, read_timeout: float) -> None:
        self._raw = raw
        self._sock = sock
        self._deadline = deadline
        self._read_timeout = read_timeout

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the fetch deadline passed")
        self._sock.settimeout(min(self._read_timeout, remaining))
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()
        super().close()


class _DeadlineResponse(http.client.HTTPResponse):
    """An HTTPResponse whose status line, headers and body are all read under the deadline."""

    def __init__(self, sock: socket.socket, *, deadline: float, read_timeout: float, **kwargs: Any) -> None:
        super().__init__(sock, **kwargs)
        # The raw socket file keeps the socket open after HTTPConnection.close() hands it over.
        raw = self.fp.detach()
        self.fp = io.BufferedReader(_DeadlineReader(raw, sock, deadline, read_timeout), _READ_SIZE)


# The body: decompression and sniffing.


class _Inflater:
    """Undoes a gzip or deflate Content-Encoding piece by piece, never growing past `limit` bytes."""

    def __init__(self, encoding: str, limit: int) -> None:
        self._encoding = {"x-gzip": "gzip"}.get(encoding, encoding)
        self._limit = limit
        self._parts: list[bytes] = []
        self._size = 0
        self._head = b""
        self._decompressor: Any = None
        self._member_open = False  # a gzip member or deflate stream has started but not ended
        self._finished = False  # trailing bytes after the last complete member are ignored

    def feed(self, data: bytes) -> None:
        if self._encoding == "identity":
            self._parts.append(data)
            return
        if self._decompressor is None:
            # A deflate body may or may not have the zlib wrapper: its first two bytes tell.
            self._head += data
            if len(self._head) < 2:
                return
            data, self._head = self._head, b""
            self._decompressor = zlib.decompressobj(self._wbits(data))
        self._inflate(data)

    def finish(self) -> bytes:
        if self._head:
            self._decompressor = zlib.decompressobj(self._wbits(self._head))
            self._inflate(self._head)
        if self._member_open:
            raise FetchError(
                "The page arrived damaged (its compressed data was cut off); try again later.",
                code="http_error",
                permanent=False,
            )
        return b"".join(self._parts)

    def _wbits(self, head: bytes) -> int:
        if self._encoding == "gzip":
            return 16 + zlib.MAX_WBITS
        has_zlib_header = len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0
        return zlib.MAX_WBITS if has_zlib_header else -zlib.MAX_WBITS

    def _inflate(self, data: bytes) -> None:
        while data and not self._finished:
            if self._decompressor.eof:
                if self._encoding != "gzip":
                    return
                self._decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)  # the next gzip member
            try:
                out = self._decompressor.decompress(data, self._limit - self._size + 1)
            except zlib.error as exc:
                if self._parts and not self._member_open:
                    self._finished = True  # padding after a complete body
                    return
                raise FetchError(
                    "The page arrived damaged (its compressed data could not be read).",
                    code="http_error",
                    permanent=True,
                ) from exc
            self._member_open = not self._decompressor.eof
            self._size += len(out)
            if self._size > self._limit:
                raise FetchError(
                    f"The page unpacks to more than {_size(self._limit)}, more than may be downloaded; it was "
                    "refused (it may be a “zip bomb”).",
                    code="decompression_bomb",
                    permanent=True,
                )
            self._parts.append(out)
            data = self._decompressor.unconsumed_tail or (
                self._decompressor.unused_data if self._decompressor.eof else b""
            )


_HTML_MARKERS = (b"<!doctype html", b"<html", b"<head", b"<body")
_DECLARED_TYPES = {
    "text/html": "text/html",
    "application/xhtml+xml": "text/html",
    "text/csv": "text/csv",
    "application/csv": "text/csv",
    "text/markdown": "text/markdown",
    "text/x-markdown": "text/markdown",
}
_SUFFIX_TYPES = {".csv": "text/csv", ".md": "text/markdown", ".markdown": "text/markdown"}
_CONTROL_BYTES = frozenset(range(0x20)) - set(b"\t\n\r\f\x1b") | {0x7F}


def _parse_content_type(header: str) -> tuple[str, str]:
    """The media type (lowercase) and charset of a Content-Type header."""
    media_type, _, params = header.partition(";")
    charset = ""
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip("\"'").lower()
    return media_type.strip().lower(), charset


def sniff_content_type(body: bytes, *, declared: str, name: str) -> str | None:
    """The type of an uploaded file, judged like a fetched body; None when unsupported."""
    return _sniff(body, _parse_content_type(declared)[0], name)


def _sniff(body: bytes, media_type: str, path: str) -> str | None:
    """The body's type from its first bytes, weighed against the header; None for an unsupported one."""
    head = body[:_SNIFF_SIZE]
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # UTF-16 text (a spreadsheet's "Unicode text" export) is full of NUL bytes: judge it decoded.
        head = head[: len(head) // 2 * 2].decode("utf-16", errors="replace").encode()
    start = head.removeprefix(codecs.BOM_UTF8).lstrip()
    if start.startswith(b"%PDF-"):
        return "application/pdf"
    if _looks_binary(head):
        return None
    declared = _DECLARED_TYPES.get(media_type)
    suffix = _SUFFIX_TYPES.get(PurePosixPath(path.split("?", 1)[0]).suffix.lower())
    labelled_text = media_type in ("text/plain", "text/csv", "text/markdown") or suffix is not None
    lowered = head.lower()
    # A CSV or Markdown file may mention <html> in passing; it is HTML only when it starts so.
    if any(start.lower().startswith(marker) for marker in _HTML_MARKERS) or (
        not labelled_text and any(marker in lowered for marker in _HTML_MARKERS)
    ):
        return "text/html"
    if declared:
        return declared
    if media_type.startswith("text/") or media_type in ("", "application/octet-stream"):
        return suffix or "text/plain"
    return None


def _looks_binary(head: bytes) -> bool:
    """NUL bytes, or bytes that are not UTF-8 and full of control characters (a legacy 8-bit text has few)."""
    if b"\x00" in head:
        return True
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return sum(byte in _CONTROL_BYTES for byte in head) * 50 > len(head)
    return False


# Messages.


def _http_error(status: int, retry_after: str | None) -> FetchError:
    if status in (404, 410):
        return FetchError(f"The page was not found (HTTP {status}).", code="http_error", permanent=True)
    if status in (401, 403):
        return FetchError(
            f"The page needs a login (HTTP {status}); only pages anyone can open can be fetched.",
            code="http_error",
            permanent=True,
        )
    if status == 429:
        return FetchError(
            "The site is receiving too many requests (HTTP 429); try again later.",
            code="http_error",
            permanent=False,
            retry_after=_retry_after(retry_after),
        )
    if status >= 500 or status == 408:
        return FetchError(
            f"The site had a problem answering (HTTP {status}); try again later.",
            code="http_error",
            permanent=False,
            retry_after=_retry_after(retry_after),
        )
    if 400 <= status < 500:
        return FetchError(f"The site refused the request (HTTP {status}).", code="http_error", permanent=True)
    return FetchError(f"The site gave an unexpected answer (HTTP {status}).", code="http_error", permanent=True)


def _retry_after(value: str | None) -> float | None:
    value = (value or "").strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def _unsupported(target: _Target, body: bytes, media_type: str) -> FetchError:
    where = _shorten(target.url)
    if _looks_binary(body[:_SNIFF_SIZE]):
        what = f"binary data (labelled {media_type})" if media_type else "binary data"
    else:
        what = f"a file of type {media_type}" if media_type else "a file of unknown type"
    return FetchError(
        f"The address {where} serves {what}, which cannot be used; only web pages, PDF, CSV, Markdown and plain "
        "text files can.",
        code="unsupported_type",
        permanent=True,
    )


def _too_large(target: _Target, limit: int) -> FetchError:
    return FetchError(
        f"The file at {target.host} is larger than the limit of {_size(limit)}.", code="too_large", permanent=True
    )


def _broke_off(target: _Target) -> FetchError:
    return FetchError(
        f"The connection to {target.host} broke off before the whole page arrived; try again later.",
        code="connect_failed",
        permanent=False,
    )


def _header_value(value: str) -> str:
    """A validator from an earlier answer, if it can be sent back safely."""
    value = value.strip()
    return value if value.isascii() and value.isprintable() else ""


def _size(count: int) -> str:
    if count >= 1024 * 1024:
        return f"{count / (1024 * 1024):.3g} MB"
    return f"{count / 1024:.3g} KB"


def _shorten(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _display(url: str) -> str:
    """A URL for the logs: without user name, password, query string and fragment, which may hold secrets."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(an invalid address)"
    return _shorten(f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}", 200)
