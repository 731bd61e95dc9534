"""`recsys ui`: the Streamlit app. Every page is a client of the API."""

import hmac
from pathlib import Path

import streamlit as st

from common.settings import get_settings

PAGES = Path(__file__).parent / "views"

st.set_page_config(page_title="recsys", page_icon=":shopping_trolley:", layout="wide")
password = get_settings().ui_password
if password is not None and not st.session_state.get("signed_in"):
    st.title("recsys")
    given = st.text_input("Password", type="password")
    if given and hmac.compare_digest(given.encode(), password.get_secret_value().encode()):
        st.session_state["signed_in"] = True
        st.rerun()
    if given:
        st.error("Wrong password.")
    st.stop()
navigation = st.navigation([
    # The default page is served at "/"; the hidden twin answers "/live" (otherwise "Page not found").
    st.Page(PAGES / "live.py", title="Live", url_path="home", default=True),
    st.Page(PAGES / "live.py", title="Live", url_path="live", visibility="hidden"),
    st.Page(PAGES / "customer.py", title="Customer", url_path="customer"),
    st.Page(PAGES / "segments.py", title="Segments", url_path="segments"),
    st.Page(PAGES / "rules.py", title="Rules", url_path="rules"),
    st.Page(PAGES / "model.py", title="Model", url_path="model"),
    st.Page(PAGES / "ab.py", title="A/B test", url_path="ab"),
    st.Page(PAGES / "data.py", title="Data", url_path="data"),
])
navigation.run()
