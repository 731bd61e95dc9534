"""What every page shares: the API client, the session's language and the shop's currency, how a page draws a
chart in that language, and how it says the API is down or something is missing."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import altair as alt
import streamlit as st

from common.settings import get_settings
from ui.client import ApiClient, ApiUnavailable, NotReady
from ui.i18n import DEFAULT_CURRENCY, Speaker, language_choice

LANGUAGE_KEY = "language"
CURRENCY_TTL_S = 60


@st.cache_resource
def client() -> ApiClient:
    settings = get_settings()
    read_key = settings.api_read_key.get_secret_value() if settings.api_read_key else None
    return ApiClient(settings.api_base_url, read_key)


def api_path(*parts: str) -> str:
    """An API path from its segments, each quoted: a typed id with '/', '?', '#' or '..' stays one segment."""
    return "/" + "/".join(quote(part, safe="") for part in parts)


def first_language() -> str:
    """The language a new browser session starts in: `?lang=es` in the URL, else RECSYS_UI_LANGUAGE."""
    return language_choice(st.query_params.get("lang"), get_settings().ui_language)


def speaker() -> Speaker:
    """The session's language (the sidebar's choice) and the shop's currency."""
    language = language_choice(st.session_state.get(LANGUAGE_KEY), first_language())
    return Speaker(language, get_settings().currency or shop_currency())


@st.cache_data(ttl=CURRENCY_TTL_S, show_spinner=False)
def shop_currency() -> str:
    """The currency the published model's data mapping names (the UCI preset: GBP), else the case study's."""
    try:
        card = client().get("/model")
    except (ApiUnavailable, NotReady):
        return DEFAULT_CURRENCY
    return str((card or {}).get("currency") or DEFAULT_CURRENCY)


def fetch(path: str, **params: Any) -> Any:
    """The API's answer, or a clear message on the page (in the session's language) and `None`."""
    sp = speaker()
    _ = sp.gettext
    try:
        return client().get(path, sp.language, **params)
    except ApiUnavailable as exc:
        st.error(_("The API at {url} is not answering ({reason}): start it with `recsys serve`.").format(
            url=exc.url, reason=exc.reason))
    except NotReady as exc:
        st.info(_("Not ready yet: {detail}").format(detail=_(exc.detail)))
    return None


def plot(chart: alt.TopLevelMixin, where: Any = st) -> None:
    """A chart, its axes' numbers and dates written as the session's locale writes them."""
    where.altair_chart(chart.configure(locale=speaker().vega_locale()), width="stretch")
