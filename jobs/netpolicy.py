"""Addresses AQE will not send a request to on a user's behalf (load-test targets, completion callbacks).

A URL in a request or in `.aqe.yml` is chosen by whoever can open a pull request or hold an API key; without
this, `http://169.254.169.254/latest/meta-data/` as a load-test target would have the worker read the cloud
metadata service (credentials of the machine) and show the answers' sizes and codes. `AQE_DENY_NETWORKS` lists
the networks refused; the default is the link-local range (where AWS, GCP and Azure serve metadata) and
Alibaba's metadata address. Private networks (10/8, 192.168/16, loopback) stay allowed: preview environments
live there. The name is resolved once before the run; a DNS answer that changes during the run (rebinding) is
not caught here — deny at the network level too when that matters.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

DEFAULT_DENIED = ("169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "100.100.100.200/32")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """`AQE_DENY_NETWORKS`: comma-separated CIDRs (`none` for no list); ValueError names a bad entry."""
    if text.strip().lower() == "none":
        return ()
    networks = []
    for entry in (part.strip() for part in text.split(",")):
        if entry:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(f"{entry!r} is not a network like 169.254.0.0/16") from None
    return tuple(networks)


def denied_address(addresses: list[str], networks: tuple[Network, ...]) -> str | None:
    """The first of `addresses` inside a denied network, or None."""
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address.version == net.version and address in net for net in networks):
            return str(address)
    return None


async def resolved(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def refusal(url: str, networks: tuple[Network, ...]) -> str | None:
    """Why AQE will not send requests to `url`, or None. A name that does not resolve is left to the request."""
    if not networks:
        return None
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    try:
        addresses = await resolved(host, parts.port or (443 if parts.scheme == "https" else 80))
    except (OSError, UnicodeError):
        return None
    if (address := denied_address(addresses, networks)) is not None:
        return f"resolves to {address}, in a network AQE does not send requests to (AQE_DENY_NETWORKS)"
    return None
