"""The UI's only source of data: the API over HTTP (the UI reads no Redis keys and no model files)."""

from __future__ import annotations

from typing import Any

import httpx

TIMEOUT_S = 5.0
ACTION_TIMEOUT_S = 120.0  # stopping a big experiment frees many keys
KEY_HEADER = "X-API-Key"


class ApiUnavailable(Exception):
    """The API did not answer (not running, or its Redis is down): the page says so instead of failing."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"the API at {url} is not answering ({reason}): start it with `recsys serve`")
        self.url, self.reason = url, reason


class NotReady(Exception):
    """The API answered that something is missing (e.g. no model yet); the detail says what to run."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ActionRefused(Exception):
    """The API refused a state-changing action (4xx): the detail says why, the page shows it."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status, self.detail = status, detail


class ApiClient:
    def __init__(self, base_url: str, read_key: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        # RECSYS_API_READ_KEY, when the API asks for one
        self.headers = {KEY_HEADER: read_key} if read_key else {}

    def get(self, path: str, language: str | None = None, **params: Any) -> Any:
        """The answer's JSON; `language` asks for the words the API translates (segments, reasons)."""
        headers = self.headers | ({"Accept-Language": language} if language else {})
        # A connection per call: a page makes a handful, and nothing is left open when Streamlit drops the client.
        try:
            with httpx.Client(base_url=self.base_url, timeout=TIMEOUT_S, headers=headers) as http:
                response = http.get(path, params={k: v for k, v in params.items() if v is not None})
        except httpx.HTTPError as exc:
            raise ApiUnavailable(self.base_url, type(exc).__name__) from exc
        if response.status_code == 404:
            return None
        if response.status_code == 503:
            raise NotReady(response.json().get("detail", "the API is not ready"))
        if response.status_code >= 400:
            raise ApiUnavailable(self.base_url, f"{path}: HTTP {response.status_code}: {response.text[:200]}")
        return response.json()

    def post(self, path: str, body: dict[str, Any] | None, key: str) -> Any:
        """A keyed action (`X-API-Key`: RECSYS_API_KEY, which the UI holds behind its password); its JSON answer,
        or ActionRefused with the API's reason."""
        try:
            with httpx.Client(base_url=self.base_url, timeout=ACTION_TIMEOUT_S,
                              headers=self.headers | {KEY_HEADER: key}) as http:
                response = http.post(path, json=body)
        except httpx.HTTPError as exc:
            raise ApiUnavailable(self.base_url, type(exc).__name__) from exc
        if 400 <= response.status_code < 500:
            detail = response.json().get("detail") if "json" in response.headers.get("content-type", "") else None
            raise ActionRefused(response.status_code, str(detail or response.text[:200]))
        if response.status_code >= 500:
            raise ApiUnavailable(self.base_url, f"{path}: HTTP {response.status_code}: {response.text[:200]}")
        return response.json()
