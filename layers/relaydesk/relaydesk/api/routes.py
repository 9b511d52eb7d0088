"""The routes of the support addresses API; each one calls the admin lifecycle, which enforces every rule."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Annotated
from urllib.parse import unquote

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from relaydesk.addresses import lifecycle
from relaydesk.api import errors, uniqueness
from relaydesk.api.responses import documented
from relaydesk.api.schemas import (
    ACCOUNT_ID_MAX_LENGTH,
    AddressList,
    AddressOut,
    CreateAddress,
    DeletedAddress,
    UpdateAddress,
)
from relaydesk.wiring import Stores

logger = Logger(child=True)

ID_DESCRIPTION = "the support address, URL-encoded (support%40acme.com); the address is its stable id"
CREATE_DESCRIPTION = (
    "An address is unique across every account, and across the sandbox and production environments (separate "
    "stacks): one already in the other environment is refused with 409 `address_in_use`. When the other environment "
    f"cannot be read, the address is added and the `{uniqueness.NOTE_HEADER}` header says it was not checked there.")
NOTE = {uniqueness.NOTE_HEADER: {"description": "present when the other environment (sandbox or production) could "
                                                "not be checked for this address", "schema": {"type": "string"}}}


def build_resolver(get_stores: Callable[[], Stores]) -> APIGatewayHttpResolver:
    """The resolver with validation and its OpenAPI document; `get_stores` is called per request (cached in AWS)."""
    app = APIGatewayHttpResolver(enable_validation=True)

    @app.get("/support_addresses", summary="List an account's support addresses", tags=["support addresses"],
             responses=documented(200, AddressList, "the account's addresses, by email", 404))
    def list_addresses(
        account_id: Annotated[str, Query(min_length=1, max_length=ACCOUNT_ID_MAX_LENGTH,
                                         description="the account whose addresses to list")],
    ) -> AddressList:
        stores = get_stores()
        stores.directory.get_account(account_id)  # an unknown account is a 404, not an empty list
        addresses = sorted(stores.directory.list_addresses(account_id), key=lambda a: a.email)
        return AddressList(support_addresses=[AddressOut.of(a) for a in addresses])

    @app.post("/support_addresses", status_code=HTTPStatus.CREATED, tags=["support addresses"],
              summary="Add a forwarding address (connector addresses only through `relaydesk addresses connect`)",
              description=CREATE_DESCRIPTION,
              responses=documented(201, AddressOut, "the new forwarding address", 400, 404, 409, headers=NOTE))
    def create_address(body: CreateAddress) -> AddressOut:
        address, note = uniqueness.add_forwarding_address(get_stores(), body.account_id, body.email, body.name,
                                                          body.kind)
        # A Response to carry the note header; powertools still validates and serializes its body as AddressOut.
        response = Response(HTTPStatus.CREATED, content_types.APPLICATION_JSON, AddressOut.of(address),
                            headers={uniqueness.NOTE_HEADER: note} if note else None)
        return response  # type: ignore[return-value]

    @app.get("/support_addresses/<id>", summary="Show one support address", tags=["support addresses"],
             responses=documented(200, AddressOut, "the address", 404))
    def show_address(id: Annotated[str, Path(description=ID_DESCRIPTION)]) -> AddressOut:
        return AddressOut.of(lifecycle.locate_address(get_stores(), unquote(id)))

    @app.put("/support_addresses/<id>", summary="Rename an address or make it the default (only when verified)",
             tags=["support addresses"], responses=documented(200, AddressOut, "the updated address", 400, 404, 409))
    def update_address(id: Annotated[str, Path(description=ID_DESCRIPTION)],
                       body: UpdateAddress) -> AddressOut:
        stores = get_stores()
        found = lifecycle.locate_address(stores, unquote(id))
        address = lifecycle.update_address(stores, found.account_id, found.email, name=body.name,
                                           is_default=body.default)
        return AddressOut.of(address)

    @app.delete("/support_addresses/<id>", tags=["support addresses"],
                summary="Delete one address; a connector's secret is scheduled for deletion",
                responses=documented(200, DeletedAddress, "the address was removed", 404, 409))
    def delete_address(id: Annotated[str, Path(description=ID_DESCRIPTION)]) -> DeletedAddress:
        stores = get_stores()
        found = lifecycle.locate_address(stores, unquote(id))
        address = lifecycle.delete_address(stores, found.account_id, found.email)
        connected = address.connector is not None
        return DeletedAddress(id=address.email, email=address.email, secret_deletion_scheduled=connected,
                              recovery_window_days=lifecycle.SECRET_RECOVERY_DAYS if connected else None)

    errors.install_handlers(app, on_no_route=lambda: errors.route_not_found(app.current_event.http_method,
                                                                            app.current_event.path))

    return app
