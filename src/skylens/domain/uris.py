"""Which web addresses the service may fetch image data from (web-download now, the
read-only http store later).

A URI is read once, here, in one strict way, so that what is checked is what is
fetched: no second parser (a client library's, the resolver's) gets a say. The filter
is Glance's `import_filtering_opts` (schemes, hosts, ports; an allow list, when set,
wins over the deny list) plus what Glance leaves to the operator: no address inside the
deployment (loopback, link-local and the cloud metadata service, private ranges,
multicast, reserved space), in any spelling, unless the operator allows it.

Pure: the adapter that fetches resolves a name, asks `UriFilter.check_address` about
every address it got, and connects to those very addresses (no second lookup).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Collection
from enum import StrEnum
from typing import TypeVar
from urllib.parse import urljoin, urlsplit

from skylens.domain.errors import ImportUriRefused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
T = TypeVar("T")

SUPPORTED_SCHEMES = {"http": 80, "https": 443}  # and their default ports


class AddressKind(StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"  # RFC 1918, CGNAT (RFC 6598), unique-local IPv6, site-local
    LOOPBACK = "loopback"
    LINK_LOCAL = "link-local"  # 169.254.0.0/16 (the metadata service), fe80::/10
    UNSPECIFIED = "unspecified"
    MULTICAST = "multicast"
    RESERVED = "reserved"  # documentation, benchmarking, broadcast, tunnels, unallocated


def _networks(
    *entries: tuple[str, AddressKind],
) -> tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, AddressKind], ...]:
    return tuple((ipaddress.ip_network(net), kind) for net, kind in entries)


K = AddressKind
# IANA's special-purpose registries; every other IPv4 address is public.
_IPV4_SPECIAL = _networks(
    ("0.0.0.0/8", K.UNSPECIFIED),
    ("10.0.0.0/8", K.PRIVATE),
    ("100.64.0.0/10", K.PRIVATE),
    ("127.0.0.0/8", K.LOOPBACK),
    ("169.254.0.0/16", K.LINK_LOCAL),
    ("172.16.0.0/12", K.PRIVATE),
    ("192.0.0.0/24", K.RESERVED),
    ("192.0.2.0/24", K.RESERVED),
    ("192.88.99.0/24", K.RESERVED),
    ("192.168.0.0/16", K.PRIVATE),
    ("198.18.0.0/15", K.RESERVED),
    ("198.51.100.0/24", K.RESERVED),
    ("203.0.113.0/24", K.RESERVED),
    ("224.0.0.0/4", K.MULTICAST),
    ("240.0.0.0/4", K.RESERVED),
)
# Looked at in order; of the rest, only global unicast (2000::/3) is public.
_IPV6_SPECIAL = _networks(
    ("::/128", K.UNSPECIFIED),
    ("::1/128", K.LOOPBACK),
    ("::/8", K.RESERVED),  # IPv4-compatible (::a.b.c.d) and the rest of ::/8
    ("64:ff9b:1::/48", K.PRIVATE),
    ("100::/64", K.RESERVED),
    ("2001::/23", K.RESERVED),  # Teredo and other IETF protocol assignments
    ("2001:db8::/32", K.RESERVED),
    ("2002::/16", K.RESERVED),  # 6to4
    ("3fff::/20", K.RESERVED),
    ("fc00::/7", K.PRIVATE),
    ("fe80::/10", K.LINK_LOCAL),
    ("fec0::/10", K.PRIVATE),
    ("ff00::/8", K.MULTICAST),
)
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def classify(address: IPAddress) -> AddressKind:
    """What kind of address this is; an IPv6 address carrying an IPv4 one (mapped,
    ::ffff:a.b.c.d, or well-known NAT64) is the kind of the IPv4 address it carries."""
    if isinstance(address, ipaddress.IPv6Address):
        address = ipaddress.IPv6Address(int(address))  # without any zone id
        carried = address.ipv4_mapped
        if carried is None and address in _NAT64:
            carried = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if carried is not None:
            return classify(carried)
        for network, kind in _IPV6_SPECIAL:
            if address in network:
                return kind
        return K.PUBLIC if address in _GLOBAL_UNICAST else K.RESERVED
    for network, kind in _IPV4_SPECIAL:
        if address in network:
            return kind
    return K.PUBLIC


@dataclasses.dataclass(frozen=True)
class SourceUri:
    """A URI as the fetcher uses it: where to connect and what to ask for."""

    uri: str  # as given
    scheme: str  # "http" or "https"
    host: str  # a lower-case name without a trailing dot, or an address's canonical text
    address: IPAddress | None  # the host, when it is an address
    port: int  # as given, or the scheme's
    explicit_port: bool
    target: str  # path and query, for the request line

    @property
    def authority(self) -> str:
        """The `Host` header: the name (or bracketed address) and any explicit port."""
        host = f"[{self.host}]" if isinstance(self.address, ipaddress.IPv6Address) else self.host
        return f"{host}:{self.port}" if self.explicit_port else host

    def join(self, reference: str) -> str:
        """A redirect's `Location`, relative or absolute, as an absolute URI."""
        return urljoin(self.uri, reference)


_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)")
_PORT = re.compile(r"[0-9]{1,5}")


def parse_uri(uri: str) -> SourceUri:
    """Read `uri` strictly, or raise `ImportUriRefused` saying why not.

    Refused: anything but printable ASCII (IDN hosts are given in their xn-- form);
    credentials (`user@host`); a host that is percent-encoded or carries an IPv6
    zone id; and every spelling of an IPv4 address but the canonical dotted quad
    (`2130706433`, `0177.0.0.1`, `0x7f.1`, `127.1`), which URL parsers, resolvers and
    browsers each read their own way.
    """
    if not uri or any(not 0x20 < ord(c) < 0x7F or c == "\\" for c in uri):
        raise ImportUriRefused(uri, "only printable ASCII, without spaces or backslashes")
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in SUPPORTED_SCHEMES:
        raise ImportUriRefused(uri, f"scheme {scheme!r} is not supported")
    if "@" in parts.netloc:
        raise ImportUriRefused(uri, "credentials in the URI are not accepted")
    host, port = _split_authority(uri, parts.netloc)
    address: IPAddress | None
    if host.startswith("["):
        address = _ipv6_literal(uri, host[1:-1])
        host = address.compressed
    else:
        host, address = _host(uri, host)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return SourceUri(
        uri=uri,
        scheme=scheme,
        host=host,
        address=address,
        port=SUPPORTED_SCHEMES[scheme] if port is None else port,
        explicit_port=port is not None,
        target=target,
    )


def _split_authority(uri: str, netloc: str) -> tuple[str, int | None]:
    if netloc.startswith("["):
        end = netloc.find("]")
        if end < 0:
            raise ImportUriRefused(uri, "unterminated IPv6 address")
        host, rest = netloc[: end + 1], netloc[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ImportUriRefused(uri, "text after the IPv6 address")
        port_text = rest[1:] if rest else None
    else:
        host, colon, port_text_or_empty = netloc.partition(":")
        port_text = port_text_or_empty if colon else None
    if not host:
        raise ImportUriRefused(uri, "no host")
    if port_text is None:
        return host, None
    if not _PORT.fullmatch(port_text) or not 0 < int(port_text) < 65536:
        raise ImportUriRefused(uri, f"invalid port {port_text!r}")
    return host, int(port_text)


def _ipv6_literal(uri: str, text: str) -> ipaddress.IPv6Address:
    if "%" in text:
        raise ImportUriRefused(uri, "IPv6 zone ids are not accepted")
    try:
        return ipaddress.IPv6Address(text)
    except ValueError:
        raise ImportUriRefused(uri, f"invalid IPv6 address {text!r}") from None


def _host(uri: str, text: str) -> tuple[str, IPAddress | None]:
    if "%" in text:
        raise ImportUriRefused(uri, "percent-encoded hosts are not accepted")
    host = text.lower()
    if host.endswith("."):
        host = host[:-1]
    labels = host.split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        # WHATWG: a host whose last label is a number is an IPv4 address.
        try:
            address = ipaddress.IPv4Address(host)
        except ValueError:
            address = None
        if address is None or str(address) != host:
            raise ImportUriRefused(uri, f"{text!r} is not a canonical IPv4 address")
        return host, address
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ImportUriRefused(uri, f"invalid host name {text!r}")
    return host, None


def _normalise_host(entry: str) -> str:
    """An operator's host entry as `SourceUri.host` spells the same host."""
    text = entry.strip().lower().removeprefix("[").removesuffix("]").removesuffix(".")
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        return text


@dataclasses.dataclass(frozen=True)
class UriFilter:
    """Glance's `import_filtering_opts`, and what Skylens refuses besides.

    For schemes, hosts and ports each, a non-empty allow list wins and the deny list
    is ignored (as in Glance). A port is checked only when the URI names one (as in
    Glance: a URI without one uses its scheme's port, 80 or 443). Then every address
    the host is or resolves to must be public, or private with
    `allow_private_networks`; a host named in `allowed_hosts` is exempt (the operator
    said so), and an address named in `disallowed_hosts` is refused whatever name
    resolves to it.
    """

    allowed_schemes: Collection[str] = ("http", "https")
    disallowed_schemes: Collection[str] = ()
    allowed_hosts: Collection[str] = ()
    disallowed_hosts: Collection[str] = ()
    allowed_ports: Collection[int] = (80, 443)
    disallowed_ports: Collection[int] = ()
    allow_private_networks: bool = False

    def __post_init__(self) -> None:
        normalise = object.__setattr__
        normalise(self, "allowed_schemes", frozenset(s.lower() for s in self.allowed_schemes))
        normalise(self, "disallowed_schemes", frozenset(s.lower() for s in self.disallowed_schemes))
        normalise(self, "allowed_hosts", frozenset(map(_normalise_host, self.allowed_hosts)))
        normalise(self, "disallowed_hosts", frozenset(map(_normalise_host, self.disallowed_hosts)))
        normalise(self, "allowed_ports", frozenset(self.allowed_ports))
        normalise(self, "disallowed_ports", frozenset(self.disallowed_ports))

    def check(self, uri: str | None) -> SourceUri:
        """The URI, read, if the filter lets it through (an address literal included);
        `ImportUriRefused` otherwise. A host name still has to be resolved, and each of
        its addresses checked with `check_address`, before anything connects."""
        if uri is None:
            raise ImportUriRefused(None, "no URI")
        source = parse_uri(uri)
        if not _passes(source.scheme, self.allowed_schemes, self.disallowed_schemes):
            raise ImportUriRefused(uri, f"scheme {source.scheme} is not allowed")
        if not _passes(source.host, self.allowed_hosts, self.disallowed_hosts):
            raise ImportUriRefused(uri, f"host {source.host} is not allowed")
        if source.explicit_port and not _passes(
            source.port, self.allowed_ports, self.disallowed_ports
        ):
            raise ImportUriRefused(uri, f"port {source.port} is not allowed")
        if source.address is not None:
            self.check_address(source, source.address)
        return source

    def check_address(self, source: SourceUri, address: IPAddress) -> None:
        """Raise `ImportUriRefused` unless the fetcher may connect to `address` for
        `source` (whose host is, or resolved to, that address)."""
        if source.host in self.allowed_hosts:
            return
        text = type(address)(int(address)).compressed  # without any zone id
        if text in self.disallowed_hosts:
            raise ImportUriRefused(source.uri, f"address {text} is not allowed")
        kind = classify(address)
        if kind is K.PUBLIC or (kind is K.PRIVATE and self.allow_private_networks):
            return
        raise ImportUriRefused(source.uri, f"{source.host}: {kind} address {text}")


def _passes(value: T, allowed: Collection[T], disallowed: Collection[T]) -> bool:
    return value in allowed if allowed else value not in disallowed
