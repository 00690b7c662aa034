"""Networks AQE does not send requests to for users: parsing, matching, and resolution of real names."""

from __future__ import annotations

import pytest

from jobs import netpolicy

DEFAULT = netpolicy.parse_networks(",".join(netpolicy.DEFAULT_DENIED))


def test_the_default_list_denies_metadata_addresses_and_allows_private_networks() -> None:
    assert netpolicy.denied_address(["169.254.169.254"], DEFAULT) == "169.254.169.254"
    assert netpolicy.denied_address(["::ffff:169.254.169.254"], DEFAULT) == "169.254.169.254"  # v4-mapped
    assert netpolicy.denied_address(["fd00:ec2::254"], DEFAULT) == "fd00:ec2::254"
    assert netpolicy.denied_address(["100.100.100.200"], DEFAULT) == "100.100.100.200"
    assert netpolicy.denied_address(["127.0.0.1", "10.0.0.5", "192.168.1.9", "::1"], DEFAULT) is None


def test_parsing_names_the_bad_entry_and_none_means_no_list() -> None:
    assert netpolicy.parse_networks("none") == ()
    assert [str(n) for n in netpolicy.parse_networks(" 10.0.0.0/8 , 127.0.0.1")] == ["10.0.0.0/8", "127.0.0.1/32"]
    with pytest.raises(ValueError, match="'10.0.0.0/33'"):
        netpolicy.parse_networks("10.0.0.0/33")


async def test_a_url_is_refused_by_the_address_its_name_resolves_to() -> None:
    loopback = netpolicy.parse_networks("127.0.0.0/8")
    why = await netpolicy.refusal("http://localhost:8080/health", loopback)
    assert why is not None and "127.0.0.1" in why and "AQE_DENY_NETWORKS" in why
    assert await netpolicy.refusal("http://127.0.0.1:9/", DEFAULT) is None
    assert await netpolicy.refusal("http://169.254.169.254/latest/meta-data/", DEFAULT) is not None
    assert await netpolicy.refusal("http://no-such-host.invalid/", loopback) is None  # left to the request
    assert await netpolicy.refusal("http://169.254.169.254/", ()) is None


def test_the_setting_is_validated_at_start_up(make_settings) -> None:  # type: ignore[no-untyped-def]
    from jobs.settings import SettingsError

    assert make_settings().denied_networks == DEFAULT
    assert make_settings(AQE_DENY_NETWORKS="none").denied_networks == ()
    with pytest.raises(SettingsError, match="AQE_DENY_NETWORKS: 'nope'"):
        make_settings(AQE_DENY_NETWORKS="nope")
