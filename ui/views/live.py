"""Live: the stream's counters and the latest purchases, refreshed in place every few seconds."""

import time

import pandas as pd
import streamlit as st

from common.settings import get_settings
from ui.shared import fetch, when

st.title("Live stream")
HISTORY = 120  # rate samples kept for the chart


@st.fragment(run_every=get_settings().ui_refresh_s)
def live() -> None:
    body = fetch("/stream/stats")
    if body is None:
        return
    stats = body["stats"]
    if not stats:
        st.info("No events yet: start the worker (`recsys stream`) and a replay (`recsys replay --speed 86400`).")
        return
    age = time.time() - float(stats.get("last_batch_at", 0))
    if age > 30:
        st.warning(f"The stream worker has not written for {age:,.0f} s: is `recsys stream` running?")
    cols = st.columns(5)
    cols[0].metric("events/s", f"{float(stats.get('rate_eps', 0)):,.0f}")
    cols[1].metric("events processed", f"{int(stats.get('processed', 0)):,}")
    cols[2].metric("dead-lettered", f"{int(stats.get('dead_lettered', 0)):,}")
    cols[3].metric("consumer lag", "unknown" if stats.get("lag", "") == "" else f"{int(stats['lag']):,}")
    cols[4].metric("last event time", when(stats.get("last_event_ts")))
    samples = st.session_state.setdefault("rate_samples", [])
    samples.append({"time": pd.Timestamp.now(tz="UTC"), "events/s": float(stats.get("rate_eps", 0))})
    del samples[:-HISTORY]
    st.subheader("Throughput")
    st.line_chart(pd.DataFrame(samples), x="time", y="events/s", height=220)
    st.subheader("Latest purchases")
    st.dataframe(pd.DataFrame(body["latest"]), hide_index=True, use_container_width=True)


live()
