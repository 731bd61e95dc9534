"""Live: the stream's counters and the latest purchases, refreshed in place every few seconds."""

import time
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from common.settings import get_settings
from ui.i18n import Speaker
from ui.shared import fetch, plot, speaker

HISTORY = 120  # rate samples kept for the chart
sp = speaker()
_ = sp.gettext
st.title(_("Live stream"))


@st.fragment(run_every=get_settings().ui_refresh_s)
def live() -> None:
    body = fetch("/stream/stats")
    if body is None:
        return
    stats = body["stats"]
    memory = body.get("memory") or {}
    if memory.get("warning"):
        st.warning(_("Redis holds {used} MiB of its {limit} MiB ({share}). When it is full ({policy}) Redis refuses "
                     "writes and the stream stops until there is room: raise RECSYS_REDIS_MAXMEMORY or end "
                     "experiments (`recsys ab stop`).").format(
            used=sp.number(memory["used_bytes"] / 2**20), limit=sp.number(memory["max_bytes"] / 2**20),
            share=sp.percent(memory["share"], 0), policy=memory["policy"]))
    if not stats:
        st.info(_("No events yet: start the worker (`recsys stream`) and a replay (`recsys replay --speed 86400`)."))
        return
    age = time.time() - float(stats.get("last_batch_at", 0))
    if age > 30:
        st.warning(_("The stream worker has not written for {seconds} s: is `recsys stream` running?").format(
            seconds=sp.number(age)))
    cols = st.columns([1, 1, 1, 1, 2])
    cols[0].metric(_("events/s"), sp.number(float(stats.get("rate_eps", 0))))
    cols[1].metric(_("events processed"), sp.number(int(stats.get("processed", 0))))
    cols[2].metric(_("dead-lettered"), sp.number(int(stats.get("dead_lettered", 0))))
    cols[3].metric(_("consumer lag"), _("unknown") if stats.get("lag", "") == "" else sp.number(int(stats["lag"])))
    cols[4].metric(_("last event time"), sp.when(stats.get("last_event_ts")))
    samples = st.session_state.setdefault("rate_samples", [])
    samples.append({"time": pd.Timestamp.now(tz="UTC").floor("s"), "rate": float(stats.get("rate_eps", 0))})
    del samples[:-HISTORY]
    st.subheader(_("Throughput"))
    plot(throughput_chart(pd.DataFrame(samples), sp))
    st.subheader(_("Latest purchases"))
    st.dataframe(latest_table(body["latest"], sp), hide_index=True, width="stretch")


def latest_table(latest: list[dict[str, Any]], sp: Speaker) -> pd.DataFrame:
    """Who bought what, for people: the customer's segment and the product first, the ids last."""
    _ = sp.gettext
    rows = [{
        _("segment"): sp.segment(p["segment"]) if p.get("segment") else _("new to the model"),
        _("product"): p.get("name") or p["product_id"],
        _("category"): p["category"],
        _("units"): sp.number(p["units"]),
        _("amount"): sp.money(p["amount"]),
        _("when"): sp.when(pd.Timestamp(p["event_time"]).timestamp()),
        _("order"): p["order_id"],
        _("customer id"): p["customer_id"],
    } for p in latest]
    return pd.DataFrame(rows)


def throughput_chart(frame: pd.DataFrame, sp: Speaker) -> alt.Chart:
    """Events/s against wall-clock time, labelled HH:MM:SS in UTC. Vega's default labels for a few seconds of
    data are sub-second ticks (".900", ".300"); whole seconds and at least a second between ticks avoid them."""
    _ = sp.gettext
    chart: alt.Chart = alt.Chart(frame).mark_line(point=True, strokeWidth=2).encode(
        x=alt.X("time:T", title=_("wall clock (UTC)"), scale=alt.Scale(type="utc"),
                axis=alt.Axis(format="%H:%M:%S", tickMinStep=1000, labelOverlap=True)),
        y=alt.Y("rate:Q", title=_("events/s")),
        tooltip=[alt.Tooltip("time:T", title=_("time"), format="%H:%M:%S"),
                 alt.Tooltip("rate:Q", title=_("events/s"))],
    ).properties(height=220)
    return chart


live()
