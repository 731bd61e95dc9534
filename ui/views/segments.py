"""Segments: how many customers in each RFM segment, and what they look like."""

import altair as alt
import pandas as pd
import streamlit as st

from ui.shared import fetch

st.title("Customer segments (RFM)")
body = fetch("/segments")
if body is None:
    st.stop()
table = pd.DataFrame(body["segments"])
if table.empty:
    st.info("The published model has no segments.")
    st.stop()
st.caption(f"Model {body['model_version']}. Recency, frequency and monetary are scored in quintiles; the rules "
           "are in batch/segments.py.")
st.altair_chart(alt.Chart(table).mark_bar().encode(
    x=alt.X("segment:N", sort=None), y="customers:Q", tooltip=["segment", "customers", "share", "description"]),
    use_container_width=True)
cols = st.columns(3)
for column, measure in zip(cols, ("recency_days", "frequency", "monetary"), strict=True):
    column.altair_chart(alt.Chart(table).mark_bar().encode(x=alt.X("segment:N", sort=None), y=f"{measure}:Q")
                        .properties(title=f"mean {measure.replace('_', ' ')}", height=220), use_container_width=True)
st.dataframe(table, hide_index=True, use_container_width=True)
versions = fetch("/model/versions")
if versions and len(versions["versions"]) < 2:
    st.info("Segment movement over time needs at least two published versions (the nightly job adds one a day).")
