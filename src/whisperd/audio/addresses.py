"""Which hosts and network addresses a URL fetch may connect to (the SSRF policy).

:func:`address_block_reason` judges one resolved address; :func:`check_host_name` and
:func:`check_address` apply the policy to a URL's host and raise
:class:`~whisperd.errors.UrlBlockedError` with a message meant for the user.
"""

from __future__ import annotations

import ipaddress
import logging

from whisperd.errors import UrlBlockedError

__all__ = [
    "IPAddress",
    "address_block_reason",
    "check_address",
    "check_host_name",
    "literal_address",
]

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_BLOCKED_HOST_NAMES = frozenset({"metadata.google.internal", "metadata"})

# Instance-metadata endpoints: refused even when private networks are allowed.
_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OCI, DigitalOcean, ...
        "169.254.170.2",  # AWS ECS task credentials
        "169.254.170.23",  # AWS EKS pod identity
        "100.100.100.200",  # Alibaba Cloud
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",  # AWS EKS pod identity over IPv6
    )
)

# Allowed only with ``allow_private_networks=True``; the label names the category in messages.
_INTERNAL_NETWORKS: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.ip_network(net), label)
    for net, label in (
        ("127.0.0.0/8", "loopback"),
        ("::1/128", "loopback"),
        ("10.0.0.0/8", "private"),
        ("172.16.0.0/12", "private"),
        ("192.168.0.0/16", "private"),
        ("fc00::/7", "private"),
        ("169.254.0.0/16", "link-local"),
        ("fe80::/10", "link-local"),
        ("100.64.0.0/10", "shared (CGNAT)"),
    )
)

_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
# Transition ranges whose embedded IPv4 address cannot be recovered reliably: always refused.
_OPAQUE_TRANSITION_NETWORKS = (
    ipaddress.IPv6Network("64:ff9b:1::/48"),  # local-use NAT64 (RFC 8215), prefix-dependent
    ipaddress.IPv6Network("2001::/32"),  # Teredo (client address is obfuscated)
)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address carried inside an IPv4-mapped, 6to4 or well-known NAT64 address."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64_WELL_KNOWN:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _internal_label(address: IPAddress) -> str | None:
    """The category of a loopback/private/link-local/CGNAT address, or None for other ones."""
    for network, label in _INTERNAL_NETWORKS:
        if address in network:
            return label
    return None


def _always_blocked_reason(address: IPAddress) -> str | None:
    """Why an address is refused whatever the private-network setting, or None."""
    if address in _METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if any(address in network for network in _OPAQUE_TRANSITION_NETWORKS):
        return "an IPv6 transition address"
    return None


def address_block_reason(address: IPAddress, *, allow_private_networks: bool = False) -> str | None:
    """Say why the fetcher must not connect to ``address``, or return None when it may.

    IPv4-mapped, 6to4 and well-known NAT64 (``64:ff9b::/96``) IPv6 addresses are judged by the
    IPv4 address they carry. Always refused: cloud metadata addresses (169.254.169.254 and a few
    others), unspecified, multicast, local-use NAT64 and Teredo addresses, and anything else that
    is not globally routable (reserved, documentation, benchmark, site-local ranges).
    Loopback, private (RFC 1918, ``fc00::/7``), link-local and shared CGNAT (``100.64.0.0/10``)
    addresses are refused unless ``allow_private_networks`` is true.

    Args:
        address: A resolved address.
        allow_private_networks: Allow loopback, private, link-local and CGNAT addresses.

    Returns:
        A short phrase such as ``"a loopback address"`` when refused, else None.
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        # Judge the carried IPv4 address; otherwise drop any %scope so set lookups match.
        address = embedded if embedded is not None else ipaddress.IPv6Address(int(address))
    reason = _always_blocked_reason(address)
    if reason is not None:
        return reason
    label = _internal_label(address)
    if label is not None:
        return None if allow_private_networks else f"a {label} address"
    if not address.is_global or address.is_reserved:
        return "a reserved or non-public address"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "a reserved or non-public address"
    return None


def _normalized_host_name(host: str) -> str:
    """``host`` without a trailing dot, lower-cased."""
    return host.rstrip(".").lower()


def check_host_name(host: str) -> None:
    """Refuse the metadata host names before any DNS lookup."""
    if _normalized_host_name(host) in _BLOCKED_HOST_NAMES:
        logger.warning("Refused URL fetch: host %r is a metadata host name", host)
        raise UrlBlockedError(f"The URL's host {host!r} is a cloud metadata service.")


def check_address(host: str, address: IPAddress, *, allow_private_networks: bool) -> None:
    """Raise :class:`UrlBlockedError` when ``host``'s resolved ``address`` is refused."""
    reason = address_block_reason(address, allow_private_networks=allow_private_networks)
    if reason is None:
        return
    logger.warning("Refused URL fetch: host %r resolves to %s, %s", host, address, reason)
    # Name the host the user gave and the category, never the address a name resolved to.
    verb = "is" if literal_address(host) is not None else "resolves to"
    raise UrlBlockedError(f"The URL's host {host!r} {verb} {reason}, which is not allowed.")


def literal_address(host: str) -> IPAddress | None:
    """``host`` as an IP address when it is one, else None."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
