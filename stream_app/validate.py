"""Turn raw bytes from the purchases topic into a PurchaseEvent, or a one-line reason it is not one."""

from __future__ import annotations

from pydantic import ValidationError

from common.events import PurchaseEvent, describe_validation_error


def parse_purchase(raw: bytes | None, max_bytes: int) -> PurchaseEvent | str:
    if not raw:
        return "empty payload"
    if len(raw) > max_bytes:
        return f"oversized payload ({len(raw)} bytes > {max_bytes})"
    try:
        return PurchaseEvent.from_bytes(raw)
    except ValidationError as exc:
        kinds = {e["type"] for e in exc.errors()}
        if "json_invalid" in kinds or "model_type" in kinds:
            return "not JSON: " + describe_validation_error(exc) if "json_invalid" in kinds else "not a JSON object"
        if any(e["loc"][:1] == ("schema_version",) for e in exc.errors()):
            return f"unknown schema version: {describe_validation_error(exc)}"
        return describe_validation_error(exc)
