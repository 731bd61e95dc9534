"""`recsys ui`: the Streamlit app. Every page is a client of the API."""

import hmac
from pathlib import Path

import streamlit as st

from common.i18n import LANGUAGES
from common.settings import get_settings
from ui.i18n import LANGUAGE_NAMES
from ui.shared import LANGUAGE_KEY, first_language, speaker

PAGES = Path(__file__).parent / "views"

st.set_page_config(page_title="recsys", page_icon=":shopping_trolley:", layout="wide")
# The sidebar's choice is kept in the browser session (switching pages keeps it); a new session starts in the
# URL's `?lang=` or RECSYS_UI_LANGUAGE.
st.session_state.setdefault(LANGUAGE_KEY, first_language())
st.sidebar.radio("Idioma / Language", LANGUAGES, key=LANGUAGE_KEY, format_func=LANGUAGE_NAMES.__getitem__,
                 horizontal=True)
_ = speaker().gettext
password = get_settings().ui_password
if password is not None and not st.session_state.get("signed_in"):
    st.title("recsys")
    given = st.text_input(_("Password"), type="password")
    if given and hmac.compare_digest(given.encode(), password.get_secret_value().encode()):
        st.session_state["signed_in"] = True
        st.rerun()
    if given:
        st.error(_("Wrong password."))
    st.stop()
navigation = st.navigation([
    # The default page is served at "/"; the hidden twin answers "/live" (otherwise "Page not found").
    st.Page(PAGES / "live.py", title=_("Live"), url_path="home", default=True),
    st.Page(PAGES / "live.py", title=_("Live"), url_path="live", visibility="hidden"),
    st.Page(PAGES / "customer.py", title=_("Customer"), url_path="customer"),
    st.Page(PAGES / "segments.py", title=_("Segments"), url_path="segments"),
    st.Page(PAGES / "rules.py", title=_("Rules"), url_path="rules"),
    st.Page(PAGES / "model.py", title=_("Model"), url_path="model"),
    st.Page(PAGES / "ab.py", title=_("A/B test"), url_path="ab"),
    st.Page(PAGES / "data.py", title=_("Data"), url_path="data"),
])
navigation.run()
