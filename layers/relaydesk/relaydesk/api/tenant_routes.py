"""The tenant API's route table: every route under `/accounts/{account_id}`, the role it needs, and what it calls.

A signed-in user (Cognito ID token, checked by API Gateway's JWT authorizer) reaches these routes only through the
gate (`relaydesk.api.gate`), which has already checked that the path's account is the caller's own and that the
caller's role may use the route. A route therefore acts for `caller().account_id` only; every domain call takes it.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Annotated, Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path

from relaydesk.addresses import lifecycle
from relaydesk.api import console_routes, errors, uniqueness
from relaydesk.api.gate import Refused, admit
from relaydesk.api.identity import Caller, Role
from relaydesk.api.responses import documented
from relaydesk.api.routing import RouteTable
from relaydesk.api.schemas import (
    ACCOUNT_ID_MAX_LENGTH,
    AccountOut,
    AddressList,
    AddressOut,
    DeletedAddress,
    ErrorBody,
    NewAddress,
    UpdateAddress,
)
from relaydesk.api.ticket_routes import add_ticket_routes
from relaydesk.store.ports import Stores

TAG = "support addresses"
AccountId = Annotated[str, Path(max_length=ACCOUNT_ID_MAX_LENGTH, description="your account's id (the token's)")]
AddressId = Annotated[str, Path(max_length=3 * 254, description="the support address, URL-encoded "
                                                                "(support%40acme.com); the address is its stable id")]
NOTE = {uniqueness.NOTE_HEADER: {"description": "present when the other environment (sandbox or production) could "
                                                "not be checked for this address", "schema": {"type": "string"}}}
AUTH_ERRORS = (401, 403, 404)  # the gate's answers, on every route
NO_ROUTE = ErrorBody(code="route_not_found", message="no such route")


class TenantApi:
    """The resolver behind the gate. `resolve` is the Lambda handler's whole job."""

    def __init__(self, app: APIGatewayHttpResolver, table: RouteTable, console_client_id: str = "") -> None:
        self.app = app
        self.table = table
        self.console_client_id = console_client_id

    def resolve(self, event: Any, context: Any) -> dict[str, Any]:
        try:
            caller = admit(event, self.table, console_client_id=self.console_client_id)
        except Refused as refused:
            return refused.response()
        self.app.append_context(caller=caller)
        return self.app.resolve(event, context)


def build_tenant_api(stores_for: Callable[[str], Stores], *, console_client_id: str = "") -> TenantApi:
    """The routes, each with its role. `stores_for(account_id)`: the stores acting for the caller's account, per
    request (`wiring.tenant_stores`: its secrets through a session tagged with the account)."""
    app = APIGatewayHttpResolver(enable_validation=True)
    routes = RouteTable(app)

    def caller() -> Caller:
        """Who the gate admitted. Routes act for `caller().account_id`, which the gate proved equal to the path's
        account; the path's own text (perhaps URL-encoded) is never used."""
        return app.context["caller"]

    def get_stores() -> Stores:
        return stores_for(caller().account_id)

    add_ticket_routes(routes, caller, get_stores)  # agents' work on tickets, in a module of its own

    @routes.get("", role=Role.AGENT, summary="Your account: name, kind, system address, settings", tags=["account"],
                responses=documented(200, AccountOut, "the caller's account", *AUTH_ERRORS))
    def show_account(account_id: AccountId) -> AccountOut:
        stores = get_stores()
        return AccountOut.of(stores.directory.get_account(caller().account_id), stores.settings.mail_domain)

    @routes.get("/support_addresses", role=Role.AGENT, summary="List your account's support addresses", tags=[TAG],
                responses=documented(200, AddressList, "the account's addresses, by email", *AUTH_ERRORS))
    def list_addresses(account_id: AccountId) -> AddressList:
        stores = get_stores()
        addresses = sorted(stores.directory.list_addresses(caller().account_id), key=lambda a: a.email)
        return AddressList(support_addresses=[AddressOut.of(a) for a in addresses])

    @routes.post("/support_addresses", role=Role.ADMIN, status_code=HTTPStatus.CREATED, tags=[TAG],
                 summary="Add a forwarding address (connector addresses only through `relaydesk addresses connect`)",
                 description="Any account may add an address no one has verified; the first account to verify its "
                             "forwarding owns it. An address another account has verified is refused with 409 "
                             "`address_in_use`, naming no account.",
                 responses=documented(201, AddressOut, "the new forwarding address", 400, *AUTH_ERRORS, 409,
                                      headers=NOTE))
    def create_address(account_id: AccountId, body: NewAddress) -> AddressOut:
        address, note = uniqueness.add_forwarding_address(get_stores(), caller().account_id, body.email, body.name,
                                                          body.kind)
        response = Response(HTTPStatus.CREATED, content_types.APPLICATION_JSON, AddressOut.of(address),
                            headers={uniqueness.NOTE_HEADER: note} if note else None)
        return response  # type: ignore[return-value]

    @routes.get("/support_addresses/<id>", role=Role.AGENT, summary="Show one of your support addresses", tags=[TAG],
                responses=documented(200, AddressOut, "the address", *AUTH_ERRORS))
    def show_address(account_id: AccountId, id: AddressId) -> AddressOut:
        return AddressOut.of(lifecycle.get_address(get_stores(), caller().account_id, unquote(id)))

    @routes.put("/support_addresses/<id>", role=Role.ADMIN, tags=[TAG],
                summary="Rename an address or make it the default (only when verified)",
                responses=documented(200, AddressOut, "the updated address", 400, *AUTH_ERRORS, 409))
    def update_address(account_id: AccountId, id: AddressId, body: UpdateAddress) -> AddressOut:
        address = lifecycle.update_address(get_stores(), caller().account_id, unquote(id), name=body.name,
                                           is_default=body.default)
        return AddressOut.of(address)

    @routes.delete("/support_addresses/<id>", role=Role.ADMIN, tags=[TAG],
                   summary="Delete one address; a connector's secret is scheduled for deletion",
                   responses=documented(200, DeletedAddress, "the address was removed", *AUTH_ERRORS, 409))
    def delete_address(account_id: AccountId, id: AddressId) -> DeletedAddress:
        address = lifecycle.delete_address(get_stores(), caller().account_id, unquote(id))
        connected = address.connector is not None
        return DeletedAddress(id=address.email, email=address.email, secret_deletion_scheduled=connected,
                              recovery_window_days=lifecycle.SECRET_RECOVERY_DAYS if connected else None)

    console_routes.register(routes, caller, get_stores)  # the admin console's routes, in their own module

    # Unreachable through the gate, which answers for unknown routes itself; kept so nothing is ever unhandled.
    errors.install_handlers(app, on_no_route=lambda: errors.error_response(HTTPStatus.NOT_FOUND, NO_ROUTE))
    return TenantApi(app, routes, console_client_id)
