"""The import URI filter: Glance's import_filtering_opts, and every spelling of an
address inside the deployment refused unless the operator allows it."""

from __future__ import annotations

import ipaddress

import pytest

from skylens.domain.errors import ImportUriRefused
from skylens.domain.uris import AddressKind, UriFilter, classify, parse_uri

# Every one names (or spells) an address inside the deployment, or hides which.
INTERNAL = [
    "http://127.0.0.1/",
    "http://127.0.0.2/",
    "HTTP://127.0.0.1/",
    "http://127.0.0.1./",
    "http://2130706433/",
    "http://0177.0.0.1/",
    "http://0x7f.0.0.1/",
    "http://0x7f.1/",
    "http://127.1/",
    "http://127.000.000.001/",
    "http://017700000001/",
    "http://0x7f000001/",
    "http://%31%32%37.0.0.1/",
    "http://127%2e0.0.1/",
    "http://good.example@127.0.0.1/",
    "http://127.0.0.1:80@good.example/",
    "http://127.0.0.1\\@good.example/",
    "http://[::1]/",
    "http://[0:0:0:0:0:0:0:1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::127.0.0.1]/",
    "http://[64:ff9b::7f00:1]/",
    "http://[fe80::1%25eth0]/",
    "http://[fe80::1]/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::ffff:169.254.169.254]/",
    "http://[fd00:ec2::254]/",
    "http://0.0.0.0/",
    "http://0/",
    "http://[::]/",
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://172.31.255.255/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://[fc00::1]/",
    "http://224.0.0.1/",
    "http://[ff02::1]/",
    "http://255.255.255.255/",
    "http://192.0.2.1/",
    "http://[2002:7f00:1::]/",
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",
    "http://\uff11\uff12\uff17.0.0.1/",  # fullwidth digits, which IDNA maps to ASCII
    "http://127.0.0.1 /",
    "http://127.0.0.1\t/",
]


@pytest.mark.parametrize("uri", INTERNAL)
def test_every_spelling_of_an_internal_address_is_refused(uri: str) -> None:
    with pytest.raises(ImportUriRefused) as refused:
        UriFilter().check(uri)

    assert refused.value.message == f"URI for web-download does not pass filtering: {uri}"


@pytest.mark.parametrize(
    "uri",
    ["http://example.com/a.img", "https://EXAMPLE.com./a.img?x=1", "http://8.8.8.8/",
     "http://[2001:4860:4860::8888]/", "http://[::ffff:8.8.8.8]/", "https://example.com:443/"],
)  # fmt: skip
def test_public_hosts_pass(uri: str) -> None:
    UriFilter().check(uri)


def test_the_uri_is_read_once_into_what_the_fetcher_sends() -> None:
    source = parse_uri("https://Images.Example.COM.:8443/path/a.img?sig=x#fragment")

    assert (source.scheme, source.host, source.port) == ("https", "images.example.com", 8443)
    assert source.authority == "images.example.com:8443"
    assert source.target == "/path/a.img?sig=x"
    assert parse_uri("http://[2001:DB8::1]/").authority == "[2001:db8::1]"
    assert parse_uri("http://example.com").target == "/"


@pytest.mark.parametrize(
    ("address", "kind"),
    [("127.0.0.1", AddressKind.LOOPBACK), ("::1", AddressKind.LOOPBACK),
     ("169.254.169.254", AddressKind.LINK_LOCAL), ("fe80::1%eth0", AddressKind.LINK_LOCAL),
     ("10.0.0.1", AddressKind.PRIVATE), ("100.127.255.255", AddressKind.PRIVATE),
     ("100.128.0.0", AddressKind.PUBLIC), ("172.32.0.1", AddressKind.PUBLIC),
     ("::ffff:10.0.0.1", AddressKind.PRIVATE), ("0.0.0.0", AddressKind.UNSPECIFIED),
     ("::", AddressKind.UNSPECIFIED), ("239.1.1.1", AddressKind.MULTICAST),
     ("4000::1", AddressKind.RESERVED), ("2a00:1450::1", AddressKind.PUBLIC)],
)  # fmt: skip
def test_addresses_are_classified(address: str, kind: AddressKind) -> None:
    assert classify(ipaddress.ip_address(address)) is kind


def test_glance_allow_lists_win_over_deny_lists() -> None:
    both = UriFilter(allowed_schemes=("https",), disallowed_schemes=("https",))
    both.check("https://example.com/")
    with pytest.raises(ImportUriRefused, match=r"http://example\.com/"):
        both.check("http://example.com/")

    hosts = UriFilter(allowed_hosts=("a.example",), disallowed_hosts=("a.example",))
    hosts.check("http://a.example/")
    with pytest.raises(ImportUriRefused):
        hosts.check("http://b.example/")


def test_deny_lists_refuse_when_there_is_no_allow_list() -> None:
    deny = UriFilter(
        allowed_schemes=(), disallowed_schemes=("http",), disallowed_hosts=("Bad.Example.",),
        allowed_ports=(), disallowed_ports=(8080,),
    )  # fmt: skip
    deny.check("https://good.example:9000/")
    for uri in ("http://good.example/", "https://bad.example/", "https://good.example:8080/"):
        with pytest.raises(ImportUriRefused):
            deny.check(uri)


def test_ports_are_checked_when_named_as_in_glance() -> None:
    refused = UriFilter()
    refused.check("http://example.com/")
    refused.check("http://example.com:443/")
    with pytest.raises(ImportUriRefused) as error:
        refused.check("http://example.com:8/x.img")
    assert error.value.reason == "port 8 is not allowed"


@pytest.mark.parametrize(
    "uri",
    ["ftp://example.com/", "file:///etc/passwd", "gopher://x/", "example.com/a.img",
     "//example.com/", "", "http:///a"],
)  # fmt: skip
def test_only_http_and_https_uris_with_a_host_are_fetched(uri: str) -> None:
    with pytest.raises(ImportUriRefused):
        UriFilter(allowed_schemes=()).check(uri)


def test_no_uri_is_refused_in_glances_words() -> None:
    with pytest.raises(ImportUriRefused) as refused:
        UriFilter().check(None)

    assert refused.value.message == "URI for web-download does not pass filtering: None"


def test_a_host_the_operator_allows_may_be_anything() -> None:
    allowed = UriFilter(allowed_hosts=("127.0.0.1", "[::1]"), allowed_ports=(8080,))

    assert allowed.check("http://127.0.0.1:8080/").address == ipaddress.ip_address("127.0.0.1")
    allowed.check("http://[0::1]:8080/")
    for uri in ("http://127.1:8080/", "http://2130706433:8080/", "http://127.0.0.2:8080/"):
        with pytest.raises(ImportUriRefused):
            allowed.check(uri)


def test_private_networks_only_when_allowed_and_never_loopback_or_link_local() -> None:
    private = UriFilter(allow_private_networks=True)

    for uri in (
        "http://10.1.2.3/",
        "http://192.168.0.10/",
        "http://[fd12::1]/",
        "http://100.64.1.1/",
    ):
        private.check(uri)
    for uri in ("http://127.0.0.1/", "http://169.254.169.254/", "http://0.0.0.0/"):
        with pytest.raises(ImportUriRefused):
            private.check(uri)


def test_resolved_addresses_are_checked_for_the_name_that_resolved_to_them() -> None:
    uri_filter = UriFilter(disallowed_hosts=("203.0.114.9",))
    source = uri_filter.check("http://images.example/")

    uri_filter.check_address(source, ipaddress.ip_address("93.184.216.34"))
    for address in ("127.0.0.1", "::ffff:127.0.0.1", "fe80::1%eth0", "10.0.0.1", "203.0.114.9"):
        with pytest.raises(ImportUriRefused):
            uri_filter.check_address(source, ipaddress.ip_address(address))
    exempt = UriFilter(allowed_hosts=("images.example",))
    exempt.check_address(exempt.check("http://images.example/"), ipaddress.ip_address("10.0.0.1"))
