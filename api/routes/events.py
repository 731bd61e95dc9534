"""Events sent over HTTP: a shop's checkout posts its purchases here instead of writing to Kafka itself."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request

from api.deps import ApiKeyChecked, State
from api.schemas import Problem, PurchasesAccepted
from api.services.ingest import (
    BodyTooLarge,
    InvalidPurchases,
    NotAccepted,
    body_schema,
    max_body_bytes,
    parse_purchases,
    read_body,
    send_purchases,
)
from common.events import EventBounds
from common.settings import Settings

router = APIRouter(prefix="/events", tags=["events"])
DEFAULT_MAX_LINES: int = Settings.model_fields["api_ingest_max_lines"].default  # the documented limit


@router.post(
    "/purchases", status_code=202, response_model=PurchasesAccepted,
    responses={401: {"model": Problem, "description": "no or wrong X-API-Key"},
               403: {"model": Problem, "description": "no API key configured"},
               413: {"model": Problem, "description": "body too large"},
               503: {"model": Problem, "description": "the broker did not acknowledge: nothing accepted, retry"}},
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": body_schema(DEFAULT_MAX_LINES, EventBounds())}}}},
)
async def post_purchases(request: Request, state: State, _key: ApiKeyChecked) -> PurchasesAccepted:
    """One purchase (an order line) or a list of up to `api_ingest_max_lines`, validated by the stream's own
    contract: a bad line is a 422 naming its index and field, and nothing of the request is sent. Accepted (202)
    once the broker has acknowledged every line (acks=all). Each line's event id is the client's `event_id`, or
    derived from order_id, product_id and `line_no`, so a retried request is not counted twice."""
    settings = state.settings
    try:
        body = await read_body(request.stream(), max_body_bytes(settings.api_ingest_max_lines,
                                                                settings.max_event_bytes))
        events = parse_purchases(body, settings.api_ingest_max_lines, settings.max_event_bytes,
                                 settings.event_bounds)
        await send_purchases(state, events)
    except BodyTooLarge as exc:
        raise HTTPException(413, str(exc)) from None
    except InvalidPurchases as exc:
        raise HTTPException(422, [error.detail() for error in exc.errors]) from None
    except NotAccepted as exc:
        raise HTTPException(503, f"not accepted, retry the whole request: {exc}") from None
    return PurchasesAccepted(accepted=len(events), topic=settings.topic_purchases,
                             event_ids=[e.event_id for e in events])
