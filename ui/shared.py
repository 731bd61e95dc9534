"""What every page shares: the API client, and how a page says the API is down or something is missing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import streamlit as st

from common.settings import get_settings
from ui.client import ApiClient, ApiUnavailable, NotReady


@st.cache_resource
def client() -> ApiClient:
    settings = get_settings()
    read_key = settings.api_read_key.get_secret_value() if settings.api_read_key else None
    return ApiClient(settings.api_base_url, read_key)


def api_path(*parts: str) -> str:
    """An API path from its segments, each quoted: a typed id with '/', '?', '#' or '..' stays one segment."""
    return "/" + "/".join(quote(part, safe="") for part in parts)


def fetch(path: str, **params: Any) -> Any:
    """The API's answer, or a clear message on the page and `None`."""
    try:
        return client().get(path, **params)
    except ApiUnavailable as exc:
        st.error(f"API unavailable: {exc}")
    except NotReady as exc:
        st.info(f"Not ready yet: {exc}")
    return None


def when(ts: float | None) -> str:
    """A timestamp as a UTC date and time; '-' for none (None, 0 or NaN, as pandas gives for a missing value)."""
    if ts is None or ts != ts or not ts:
        return "-"
    return datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%d %H:%M")
