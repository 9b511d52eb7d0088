"""The error model: every field a constructor argument, an action on each error an operator meets, reply codes as
one IntEnum."""

from __future__ import annotations

import inspect

import pytest
from relaydesk import errors
from relaydesk.errors import (
    AuthenticationFailedError,
    InvalidAddressError,
    NothingAcceptedError,
    RelaydeskError,
    ReplyCode,
    TransientDeliveryError,
)
from relaydesk.outbound.policy import Outcome, classify_code, error_for_reply
from relaydesk.tickets.model import RecipientOutcome

# Bases whose instances always get an action of their own (a rule's, a lookup's) rather than a class-wide one.
ACTION_PER_INSTANCE = {"RelaydeskError", "ConfigurationError", "NotFoundError", "RuleViolation", "ConflictError",
                       "SmtpDeliveryError", "UsageError"}


def test_every_error_an_operator_meets_says_what_to_do():
    classes = [cls for _, cls in inspect.getmembers(errors, inspect.isclass)
               if issubclass(cls, RelaydeskError) and cls.__module__ == errors.__name__]
    assert len(classes) > 20
    silent = [cls.__name__ for cls in classes if not cls.action and cls.__name__ not in ACTION_PER_INSTANCE]
    assert silent == []


def test_the_refused_version_and_recipients_are_constructor_fields():
    error = AuthenticationFailedError("refused", version_id="v7", smtp_code=535, server_reply="535 5.7.8 no")
    assert (error.version_id, error.smtp_code, error.server_reply) == ("v7", 535, "535 5.7.8 no")
    refused = [RecipientOutcome(recipient="a@example.net", smtp_code=550, reply="550 5.1.1 unknown")]
    every = error_for_reply(550, "5.1.1 unknown", "every recipient was refused", refused=refused)
    assert every.refused == refused and every.enhanced_status == "5.1.1"


def test_errors_once_outside_errors_py_are_relaydesk_errors_with_their_action():
    assert issubclass(NothingAcceptedError, TransientDeliveryError)
    assert issubclass(InvalidAddressError, RelaydeskError) and issubclass(InvalidAddressError, ValueError)
    assert InvalidAddressError("not a single plain email address").action


@pytest.mark.parametrize("code,outcome", [(250, Outcome.DELIVERED), (ReplyCode.SERVICE_CLOSING, Outcome.DEFERRED),
                                          (451, Outcome.DEFERRED), (ReplyCode.AUTH_INVALID, Outcome.AUTH_FAILED),
                                          (ReplyCode.AUTH_TOO_WEAK, Outcome.AUTH_FAILED), (550, Outcome.FAILED),
                                          (None, Outcome.DEFERRED)])
def test_a_reply_code_alone_decides_the_outcome(code, outcome):
    assert classify_code(code) is outcome


def test_reply_classes_by_first_digit():
    assert ReplyCode.is_positive(ReplyCode.OK) and not ReplyCode.is_positive(None)
    assert ReplyCode.is_transient(452) and not ReplyCode.is_transient(552)
    assert ReplyCode.is_permanent(ReplyCode.MESSAGE_TOO_BIG) and not ReplyCode.is_permanent(421)
