from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from common.settings import get_settings

APP = Path(__file__).resolve().parents[3] / "ui" / "app.py"


@pytest.fixture
def password(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("RECSYS_UI_PASSWORD", "open-sesame-test")
    monkeypatch.setenv("RECSYS_UI_API_URL", "http://127.0.0.1:9")  # nothing listens: pages say so
    get_settings.cache_clear()
    st.cache_resource.clear()
    yield "open-sesame-test"
    get_settings.cache_clear()
    st.cache_resource.clear()


def test_the_ui_asks_for_the_password_first(password: str) -> None:
    app = AppTest.from_file(str(APP), default_timeout=30)
    app.run()
    assert [t.label for t in app.text_input] == ["Password"] and not app.metric
    app.text_input[0].input("guess").run()
    assert app.error[0].value == "Wrong password."
    app.text_input[0].input(password).run()
    assert not app.exception
    assert app.title[0].value == "Live stream"
