"""Thread markers survive a round trip through subject and body; foreign Message-IDs are not taken for ours."""

from relaydesk import markers
from relaydesk.ids import new_id


def test_subject_token_names_its_ticket_even_after_reply_prefixes():
    ticket_id = new_id("T")
    subject = f"RE: AW: Printer on fire {markers.subject_token(ticket_id)}"
    assert markers.ticket_id_from_subject(subject) == ticket_id


def test_hidden_body_marker_names_its_ticket_in_a_quoted_reply():
    ticket_id = new_id("T")
    body = f"Thanks!\n\n> On Monday you wrote:\n> {markers.body_marker(ticket_id)}\n"
    assert markers.ticket_id_from_body(body) == ticket_id


def test_our_message_id_maps_back_to_its_notification_and_foreign_ones_do_not():
    notification_id = new_id("N")
    ours = markers.message_id_for(notification_id, "Acme.Test")
    assert markers.notification_id_from_message_id(ours, {"acme.test"}) == notification_id
    assert markers.notification_id_from_message_id(ours, {"other.test"}) is None
    assert markers.notification_id_from_message_id("<CAF1234@mail.gmail.com>") is None
