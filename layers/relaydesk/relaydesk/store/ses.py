"""SES adapter for the default outbound: one raw message, sent as composed (SendRawEmail)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError, EndpointConnectionError

from relaydesk.errors import PermanentDeliveryError, TransientDeliveryError

# SES errors that say the message itself will never go (RFC 3463 5.x.x in spirit); everything else is worth a retry.
PERMANENT_CODES = frozenset({"MessageRejected", "MailFromDomainNotVerifiedException", "ConfigurationSetDoesNotExist",
                             "InvalidParameterValue"})
# Sending paused (SES's reputation review, or an operator): nothing is wrong with the message, so it waits and is
# retried like any transient failure; the relay raises it to the operator (metric `ses_sending_paused`).
PAUSED_CODES = frozenset({"ConfigurationSetSendingPausedException", "AccountSendingPausedException"})


def is_sending_paused(reply: str) -> bool:
    """True for the reply of a send refused because SES sending is paused."""
    return reply.split(":", 1)[0] in PAUSED_CODES


class SesRawOutbound:
    def __init__(self, client: Any, configuration_set: str = "") -> None:
        self._client = client
        self._configuration_set = configuration_set

    def send_raw(self, source: str, destinations: list[str], data: bytes) -> str:
        """SES's message id; a typed delivery error with SES's error code as the reply otherwise."""
        kwargs: dict[str, Any] = {"Source": source, "Destinations": destinations, "RawMessage": {"Data": data}}
        if self._configuration_set:
            kwargs["ConfigurationSetName"] = self._configuration_set
        try:
            return self._client.send_raw_email(**kwargs)["MessageId"]
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            text = f"{code}: {error.response.get('Error', {}).get('Message', '')}"
            kind = PermanentDeliveryError if code in PERMANENT_CODES else TransientDeliveryError
            raise kind(f"SES refused the message: {text}", server_reply=text) from None
        except EndpointConnectionError:
            raise TransientDeliveryError("SES could not be reached") from None
