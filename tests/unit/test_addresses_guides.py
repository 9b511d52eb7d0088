"""Which forwarding guide an address shows: its recorded provider profile decides, whatever host relays for it; an
address recorded before profiles were gets the guide its smarthost's name suggests."""

from __future__ import annotations

import pytest
from relaydesk.addresses.guides import GUIDES, GUIDES_OF_PROFILE, guide_for
from relaydesk.addresses.providers import PROFILES


@pytest.mark.parametrize(("provider", "host", "oauth", "guide"), [
    ("microsoft365", "relay.hybrid.acme.com", False, "microsoft365"),  # the hybrid Exchange relay
    ("microsoft365", "relay.hybrid.acme.com", True, "microsoft365-oauth"),
    ("google", "smtp-relay.acme.com", True, "google-service-account"),
    ("exchange", "smtp.office365.com", False, "exchange"),  # the profile wins over the host
    ("postfix", "smtp.gmail.com", False, "postfix"),
    ("amazon-ses", "email-smtp.eu-west-1.amazonaws.com", False, "postfix"),
    ("other", "mail.acme.com", False, "postfix"),
    (None, "SMTP.Office365.com", False, "microsoft365"),  # recorded before profiles: by the host
    (None, "smtp.office365.com", True, "microsoft365-oauth"),
    (None, "smtp.gmail.com", False, "google"),
    (None, "mail.acme.com", False, "postfix"),
    (None, None, False, "postfix"),
    ("no-such-profile", "smtp.office365.com", False, "microsoft365"),  # an unknown name: as if none were recorded
])
def test_the_guide_of_an_address(provider, host, oauth, guide):
    assert guide_for(provider, host, oauth=oauth).key == guide


def test_every_provider_profile_has_a_guide_for_each_way_of_signing_in():
    assert set(GUIDES_OF_PROFILE) == set(PROFILES)
    assert {key for pair in GUIDES_OF_PROFILE.values() for key in pair} <= set(GUIDES)
