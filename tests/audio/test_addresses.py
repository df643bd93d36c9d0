"""Tests for :mod:`whisperd.audio.addresses`: which resolved addresses a URL fetch may reach."""

from __future__ import annotations

import ipaddress

import pytest

from whisperd.audio.addresses import address_block_reason


@pytest.mark.parametrize(
    ("address", "default", "with_private"),
    [
        ("8.8.8.8", None, None),
        ("2001:4860:4860::8888", None, None),
        ("127.0.0.1", "loopback", None),
        ("127.255.0.9", "loopback", None),
        ("::1", "loopback", None),
        ("10.1.2.3", "private", None),
        ("172.16.0.1", "private", None),
        ("192.168.1.1", "private", None),
        ("fd12::1", "private", None),
        ("169.254.1.1", "link-local", None),
        ("fe80::1", "link-local", None),
        ("fe80::1%eth0", "link-local", None),
        ("100.64.0.1", "CGNAT", None),
        ("169.254.169.254", "metadata", "metadata"),
        ("100.100.100.200", "metadata", "metadata"),
        ("fd00:ec2::254", "metadata", "metadata"),
        ("0.0.0.0", "unspecified", "unspecified"),
        ("::", "unspecified", "unspecified"),
        ("224.0.0.1", "multicast", "multicast"),
        ("239.255.255.250", "multicast", "multicast"),
        ("ff02::1", "multicast", "multicast"),
        ("ff0e::1", "multicast", "multicast"),
        ("::ffff:127.0.0.1", "loopback", None),
        ("::ffff:10.0.0.1", "private", None),
        ("::ffff:169.254.169.254", "metadata", "metadata"),
        ("::ffff:8.8.8.8", None, None),
        ("64:ff9b::7f00:1", "loopback", None),
        ("64:ff9b::a9fe:a9fe", "metadata", "metadata"),
        ("64:ff9b::808:808", None, None),
        ("64:ff9b:1::a00:1", "transition", "transition"),
        ("2002:7f00:1::1", "loopback", None),
        ("2002:a9fe:a9fe::1", "metadata", "metadata"),
        ("2002:808:808::1", None, None),
        ("2001::1", "transition", "transition"),
        ("0.1.2.3", "reserved", "reserved"),
        ("192.0.2.1", "reserved", "reserved"),
        ("198.18.0.1", "reserved", "reserved"),
        ("240.0.0.1", "reserved", "reserved"),
        ("255.255.255.255", "reserved", "reserved"),
        ("2001:db8::1", "reserved", "reserved"),
        ("fec0::1", "reserved", "reserved"),
        ("::7f00:1", "reserved", "reserved"),
        ("100::1", "reserved", "reserved"),
    ],
)
def test_address_policy(address: str, default: str | None, with_private: str | None) -> None:
    ip = ipaddress.ip_address(address)
    for allow, expected in ((False, default), (True, with_private)):
        reason = address_block_reason(ip, allow_private_networks=allow)
        if expected is None:
            assert reason is None, (address, allow, reason)
        else:
            assert reason is not None, (address, allow)
            assert expected in reason, (address, allow, reason)
