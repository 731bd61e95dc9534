"""Segments: how many customers in each RFM segment, what they look like, who moved where since last night, and
what to offer each one."""

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from ui.i18n import Speaker
from ui.shared import api_path, fetch, plot, speaker

sp = speaker()
_ = sp.gettext
CHART_HEIGHT = 300


def measure_chart(table: pd.DataFrame, measure: str, title: str, percent: bool = False) -> alt.Chart:
    # Bars across: every segment's name stays readable in half the page's width.
    chart: alt.Chart = alt.Chart(table).mark_bar().encode(
        y=alt.Y("label:N", sort=None, title=None, axis=alt.Axis(labelLimit=200)),
        x=alt.X(f"{measure}:Q", title=None, axis=alt.Axis(format="%" if percent else ",.0f")),
        tooltip=[alt.Tooltip("label:N", title=_("segment")),
                 alt.Tooltip(f"{measure}:Q", title=title, format=".1%" if percent else ",.1f")],
    ).properties(title=alt.TitleParams(title, anchor="start"), height=CHART_HEIGHT)
    return chart


def movement_chart(moves: list[dict[str, Any]], sp: Speaker) -> alt.Chart:
    """A heat map: last night's segment down, the live one across, customers in each cell."""
    _ = sp.gettext
    frame = pd.DataFrame(moves)
    frame["stayed"] = frame["from_segment"] == frame["to_segment"]
    base = alt.Chart(frame).encode(
        x=alt.X("to_label:N", title=_("live segment (now)"), axis=alt.Axis(labelAngle=-30, labelLimit=160)),
        y=alt.Y("from_label:N", title=_("segment last night"), axis=alt.Axis(labelLimit=160)))
    cells = base.mark_rect().encode(
        color=alt.Color("customers:Q", title=_("customers"), scale=alt.Scale(scheme="blues")),
        tooltip=[alt.Tooltip("from_label:N", title=_("segment last night")),
                 alt.Tooltip("to_label:N", title=_("live segment (now)")),
                 alt.Tooltip("customers:Q", title=_("customers"), format=",")])
    counts = base.mark_text(fontSize=13).encode(
        text=alt.Text("customers:Q", format=","),
        color=alt.condition(alt.datum.stayed, alt.value("#868e96"), alt.value("black")))
    chart: alt.Chart = (cells + counts).properties(
        title=_("Who moved where since last night's model (grey: stayed)"),
        height=max(46 * frame["from_label"].nunique() + 80, 200))
    return chart


st.title(_("Customer segments (RFM)"))
body = fetch("/segments")
if body is None:
    st.stop()
table = pd.DataFrame(body["segments"])
if table.empty:
    st.info(_("The published model has no segments."))
    st.stop()
st.caption(_("Model {version}. Recency, frequency and monetary are scored in quintiles, 5 the best; each segment "
             "is a rule on those scores, with what to do with its customers.").format(version=body["model_version"]))
plot(alt.Chart(table).mark_bar().encode(
    x=alt.X("label:N", sort=None, title=None, axis=alt.Axis(labelAngle=0, labelLimit=160)),
    y=alt.Y("customers:Q", title=_("customers")),
    tooltip=[alt.Tooltip("label:N", title=_("segment")), alt.Tooltip("customers:Q", title=_("customers"), format=","),
             alt.Tooltip("share:Q", title=_("share of customers"), format=".1%"),
             alt.Tooltip("description:N", title=_("who they are"))],
).properties(title=_("Customers per segment"), height=CHART_HEIGHT))

measures = [("recency_days", _("mean days since the last order"), False), ("frequency", _("mean orders"), False),
            ("monetary", _("mean spend ({currency})").format(currency=sp.currency), False)]
if "revenue_share" in table:
    measures.append(("revenue_share", _("share of revenue"), True))
for left_right in (measures[:2], measures[2:]):
    for column, (measure, title, percent) in zip(st.columns(2), left_right, strict=False):
        plot(measure_chart(table, measure, title, percent), column)

people = pd.DataFrame({
    _("segment"): table["label"], _("who they are"): table["description"], _("what to do"): table["action"],
    _("customers"): table["customers"].map(sp.number), _("share of customers"): table["share"].map(sp.percent),
    _("mean days since the last order"): table["recency_days"].map(lambda v: sp.number(v, 1)),
    _("mean orders"): table["frequency"].map(lambda v: sp.number(v, 1)),
    _("mean spend"): table["monetary"].map(sp.money),
})
st.dataframe(people, hide_index=True, width="stretch")

st.subheader(_("Movement since last night"))
moved = fetch("/segments/movement")
if moved is not None and moved["moves"]:
    changed = sum(m["customers"] for m in moved["moves"] if m["from_segment"] != m["to_segment"])
    st.caption(_("{customers} customers bought since the model's data ends ({since}); {changed} of them are in "
                 "another segment now.").format(customers=sp.number(moved["customers"]), since=sp.when(moved["since"]),
                                                changed=sp.number(changed))
               + (" " + _("Only the most recent buyers are counted.") if moved["limited"] else ""))
    plot(movement_chart(moved["moves"], sp))
elif moved is not None:
    st.info(_("Nobody has bought since the model's data ends: no movement yet."))

st.subheader(_("What to offer a segment"))
labels = dict(zip(table["segment"], table["label"], strict=True))
name = st.selectbox(_("Segment"), list(table["segment"]), format_func=labels.__getitem__)
offer = fetch(api_path("segments", name)) if name else None
if offer is None:
    st.info(_("This model version has no offers (published before offers existed): run `recsys batch run`."))
else:
    st.markdown(_("**Suggested action:** {action}").format(action=offer["action"]))
    figures = st.columns(3)
    figures[0].metric(_("customers"), sp.number(offer["customers"]))
    figures[1].metric(_("share of customers"), sp.percent(offer["share"]))
    figures[2].metric(_("share of revenue"), sp.percent(offer["revenue_share"]))
    st.caption(_("Lift = the item's share of this segment's purchase lines / its share of all purchase lines; items "
                 "bought by at least {buyers} of the segment's customers. The campaign export (customer id, segment, "
                 "offered products) is `offers.csv` in the model's artifacts folder.").format(
        buyers=offer["min_segment_buyers"]))
    products = pd.DataFrame(offer["products"])
    if products.empty:
        st.info(_("No product makes up more of this segment's purchases than of the shop's, with enough buyers."))
    else:
        products["product"] = products["name"].fillna(products["product_id"])
        plot(alt.Chart(products).mark_bar().encode(
            x=alt.X("lift:Q", title=_("lift")), y=alt.Y("product:N", sort="-x", title=None,
                                                       axis=alt.Axis(labelLimit=260)),
            tooltip=[alt.Tooltip("product:N", title=_("product")), alt.Tooltip("category:N", title=_("category")),
                     alt.Tooltip("lift:Q", title=_("lift"), format=".2f"),
                     alt.Tooltip("segment_buyers:Q", title=_("buyers in the segment"))],
        ).properties(title=_("Products this segment buys more than the shop"), height=CHART_HEIGHT))
        st.dataframe(pd.DataFrame({
            _("product"): products["product"], _("category"): products["category"],
            _("lift"): products["lift"].map(lambda v: sp.number(v, 2)),
            _("buyers in the segment"): products["segment_buyers"].map(sp.number),
            _("lines in the segment"): products["segment_lines"].map(sp.number),
            _("lines in the shop"): products["shop_lines"].map(sp.number),
            _("product id"): products["product_id"]}), hide_index=True, width="stretch")
    categories = pd.DataFrame(offer["categories"])
    if not categories.empty:
        st.dataframe(pd.DataFrame({
            _("category"): categories["category"], _("lift"): categories["lift"].map(lambda v: sp.number(v, 2)),
            _("buyers in the segment"): categories["segment_buyers"].map(sp.number),
            _("lines in the segment"): categories["segment_lines"].map(sp.number),
            _("lines in the shop"): categories["shop_lines"].map(sp.number)}), hide_index=True,
            width="stretch")
