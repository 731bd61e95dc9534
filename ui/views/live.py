"""Live: the stream's counters and the latest purchases, refreshed in place every few seconds."""

import time

import altair as alt
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
    memory = body.get("memory") or {}
    if memory.get("warning"):
        st.warning(f"Redis holds {memory['used_bytes'] / 2**20:,.0f} MiB of its {memory['max_bytes'] / 2**20:,.0f} MiB "
                   f"({memory['share']:.0%}). When it is full ({memory['policy']}) Redis refuses writes and the stream "
                   "stops until there is room: raise RECSYS_REDIS_MAXMEMORY or end experiments (`recsys ab stop`).")
    if not stats:
        st.info("No events yet: start the worker (`recsys stream`) and a replay (`recsys replay --speed 86400`).")
        return
    age = time.time() - float(stats.get("last_batch_at", 0))
    if age > 30:
        st.warning(f"The stream worker has not written for {age:,.0f} s: is `recsys stream` running?")
    cols = st.columns([1, 1, 1, 1, 1.6])
    cols[0].metric("events/s", f"{float(stats.get('rate_eps', 0)):,.0f}")
    cols[1].metric("events processed", f"{int(stats.get('processed', 0)):,}")
    cols[2].metric("dead-lettered", f"{int(stats.get('dead_lettered', 0)):,}")
    cols[3].metric("consumer lag", "unknown" if stats.get("lag", "") == "" else f"{int(stats['lag']):,}")
    cols[4].metric("last event time", when(stats.get("last_event_ts")))
    samples = st.session_state.setdefault("rate_samples", [])
    samples.append({"time": pd.Timestamp.now(tz="UTC").floor("s"), "events/s": float(stats.get("rate_eps", 0))})
    del samples[:-HISTORY]
    st.subheader("Throughput")
    st.altair_chart(throughput_chart(pd.DataFrame(samples)), use_container_width=True)
    st.subheader("Latest purchases")
    st.dataframe(pd.DataFrame(body["latest"]), hide_index=True, use_container_width=True)


def throughput_chart(frame: pd.DataFrame) -> alt.Chart:
    """Events/s against wall-clock time, labelled HH:MM:SS in UTC. Vega's default labels for a few seconds of
    data are sub-second ticks (".900", ".300"); whole seconds and at least a second between ticks avoid them."""
    chart: alt.Chart = alt.Chart(frame).mark_line(point=True, strokeWidth=2).encode(
        x=alt.X("time:T", title="wall clock (UTC)", scale=alt.Scale(type="utc"),
                axis=alt.Axis(format="%H:%M:%S", tickMinStep=1000, labelOverlap=True)),
        y=alt.Y("events/s:Q", title="events/s"),
    ).properties(height=220)
    return chart


live()
