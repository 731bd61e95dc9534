"""Customer: purchases, RFM and segment, their buy cycle beside what each A/B group is recommended, and what was
bought after it was shown."""

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from ui.i18n import Speaker
from ui.shared import api_path, fetch, plot, speaker

sp = speaker()
_ = sp.gettext


def cycle_frame(cycle: list[dict[str, Any]], sp: Speaker) -> pd.DataFrame:
    """One row per purchase of a product the customer buys again, and one per due date."""
    _ = sp.gettext
    rows = []
    for product in cycle:
        name = product.get("name") or product["product_id"]
        for ts in product["purchases"]:
            rows.append({"product": name, "date": pd.Timestamp(ts, unit="s"), "kind": _("bought")})
        rows.append({"product": name, "date": pd.Timestamp(product["due_at"], unit="s"),
                     "kind": _("overdue") if product["overdue"] else _("due next"),
                     "cycle": _("every {days} days").format(days=sp.number(product["cycle_days"], 1))})
    return pd.DataFrame(rows)


def cycle_chart(frame: pd.DataFrame, as_of: float, sp: Speaker) -> alt.LayerChart:
    _ = sp.gettext
    kinds = [_("bought"), _("due next"), _("overdue")]
    colour = alt.Color("kind:N", title=None, legend=alt.Legend(orient="bottom"),
                       scale=alt.Scale(domain=kinds, range=["#1f4e9c", "#2b8a3e", "#e8590c"]))
    base = alt.Chart(frame).encode(
        x=alt.X("date:T", title=_("date"), axis=alt.Axis(format="%Y-%m-%d", labelOverlap=True)),
        y=alt.Y("product:N", title=None, axis=alt.Axis(labelLimit=260)))
    span = base.mark_line(color="#adb5bd").encode(detail="product:N")
    points = base.mark_point(size=110, filled=True).encode(
        color=colour, shape=alt.Shape("kind:N", scale=alt.Scale(domain=kinds, range=["circle", "diamond", "diamond"]),
                                      legend=None),
        tooltip=[alt.Tooltip("product:N", title=_("product")), alt.Tooltip("date:T", title=_("date"),
                                                                           format="%Y-%m-%d"),
                 alt.Tooltip("kind:N", title=" ")])
    today = alt.Chart(pd.DataFrame({"date": [pd.Timestamp(as_of, unit="s")]})).mark_rule(
        color="gray", strokeDash=[4, 4]).encode(x="date:T")
    chart: alt.LayerChart = (span + points + today).properties(
        height=max(34 * frame["product"].nunique() + 60, 160))
    return chart


def recommended_table(items: list[dict[str, Any]], sp: Speaker) -> pd.DataFrame:
    _ = sp.gettext
    return pd.DataFrame([{_("product"): i.get("name") or i["product_id"], _("why"): i["reason"],
                          _("score"): sp.number(i["score"], 3), _("product id"): i["product_id"]} for i in items])


st.title(_("Customer"))
latest = fetch("/stream/stats")
recent_ids = list(dict.fromkeys(p["customer_id"] for p in (latest or {}).get("latest", [])))
default = st.query_params.get("customer_id", recent_ids[0] if recent_ids else "")
picked = st.selectbox(_("Recent customers"), recent_ids, index=None, placeholder=_("pick one who just bought"))
customer_id = st.text_input(_("Customer id"), value=picked or default).strip()

if not customer_id:
    st.info(_("Type a customer id, or pick one of the customers who just bought (needs the stream running)."))
    st.stop()
view = fetch(api_path("customers", customer_id))
if view is None:
    st.warning(_("No customer {id} in the stream or the model.").format(id=customer_id))
    st.stop()

rfm = view["rfm"]
live = view.get("live_segment") or {}
last_night = view.get("segment") or {}
cols = st.columns(3)
cols[0].metric(_("segment, last night"), last_night.get("label", "-"),
               help=_("From the published model (the nightly batch)."))
cols[1].metric(_("segment, live"), live.get("label", "-"),
               help=_("Today's RFM from the stream, scored with last night's quintile edges (cut at {day}).").format(
                   day=sp.day(live["cut_points_as_of"]) if live else "-"))
cols[2].metric(_("orders"), sp.number(int(rfm.get("orders", 0))))
figures = st.columns(3)
figures[0].metric(_("spent"), sp.money(rfm.get("monetary_cents", 0) / 100))
figures[1].metric(_("recency (days)"), sp.number(view["recency_days"], 1))
figures[2].metric(_("last purchase"), sp.when(rfm.get("last_ts")))
if live:
    st.caption(_("Live R/F/M scores {live} against last night's {last}.").format(
        live=f"{live['r']}/{live['f']}/{live['m']}",
        last="/".join(str(last_night.get(score, "-")) for score in ("r", "f", "m"))))
if last_night.get("action"):
    st.markdown(_("**What to do with this segment:** {action}").format(action=last_night["action"]))

profile = view.get("profile")
if profile:
    about = st.columns(4)
    about[0].metric(_("department"), profile.get("region") or "-")
    about[1].metric(_("city"), profile.get("city") or "-")
    about[2].metric(_("gender"), sp.label(profile["gender"]) if profile.get("gender") else "-")
    about[3].metric(_("age band"), sp.label(profile["age_band"]) if profile.get("age_band") else "-")
else:
    st.caption(_("No profile for this customer (the customers table has none, or it was not sent)."))

cycle, recommended = st.columns([1.2, 1])
with cycle:
    st.subheader(_("Buy cycle"))
    buys = view.get("buy_cycle") or []
    if buys:
        st.caption(_("When they bought each product they buy again, and when it is due (dashed line: now)."))
        plot(cycle_chart(cycle_frame(buys, sp), view["as_of"], sp), cycle)
    else:
        st.info(_("This customer has bought no product more than once yet: no cycle to show."))
with recommended:
    st.subheader(_("Recommended now"))
    preview = fetch("/recommend/preview", customer_id=customer_id, k=10)
    if preview is not None:
        assigned = preview["groups"][preview["assigned_group"]]
        st.dataframe(recommended_table(assigned["items"], sp), hide_index=True, width="stretch")

st.subheader(_("Purchase timeline (latest products)"))
recent = pd.DataFrame(view["recent"])
if recent.empty:
    st.info(_("No live purchases for this customer yet (the stream has not seen them)."))
else:
    recent["when"] = pd.to_datetime(recent["last_purchased_at"], unit="s", utc=True)
    recent["product"] = recent["name"].fillna(recent["product_id"])
    plot(alt.Chart(recent).mark_circle(size=90).encode(
        x=alt.X("when:T", title=_("last purchased"), axis=alt.Axis(format="%Y-%m-%d")),
        y=alt.Y("product:N", title=_("product"), sort="-x", axis=alt.Axis(labelLimit=260)),
        tooltip=[alt.Tooltip("product:N", title=_("product")), alt.Tooltip("category:N", title=_("category")),
                 alt.Tooltip("when:T", title=_("last purchased"), format="%Y-%m-%d %H:%M")]).properties(
        height=min(30 * len(recent) + 40, 500)))

st.subheader(_("Recommendations per arm of the experiment"))
if preview is not None:
    group_name = sp.label(preview["assigned_group"])
    note = _("Model {version}; this customer is in the **{group}** group.").format(
        version=preview["model_version"], group=group_name)
    if preview["cold_start"]:
        note += " " + _("Cold start: the model does not know them yet.")
    st.caption(note)
    for column, (group, shown) in zip(st.columns(len(preview["groups"])), preview["groups"].items(), strict=True):
        column.markdown(f"**{sp.label(group)}** ({sp.label(shown['strategy'])})")
        column.dataframe(recommended_table(shown["items"], sp), hide_index=True, width="stretch")

st.subheader(_("Shown to them, and bought after"))
exposures = fetch(api_path("customers", customer_id, "exposures"))
if exposures and exposures["shown"]:
    shown = pd.DataFrame([{_("product"): row.get("name") or row["product_id"], _("shown"): sp.when(row["shown_at"]),
                           _("bought after"): sp.when(row["bought_at"]), _("product id"): row["product_id"]}
                          for row in exposures["shown"]])
    st.dataframe(shown, hide_index=True, width="stretch")
else:
    st.info(_("Nothing shown to this customer yet (exposures come from `/recommend` or a replay with "
              "`--simulate-visits`)."))
