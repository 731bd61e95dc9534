"""Data: the cleaning reports (the source file's, as recorded when it was replayed, and what the batch read), the
two tables' consistency, and the exploration of purchases and customers."""

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from ui.i18n import Speaker
from ui.shared import fetch, plot, speaker

sp = speaker()
_ = sp.gettext
STATISTICS = {"mean": _("mean"), "p25": _("25th percentile"), "median": _("median"), "p75": _("75th percentile"),
              "p90": _("90th percentile"), "p99": _("99th percentile"), "max": _("maximum")}
DIMENSIONS = {"region": _("department"), "city": _("city"), "gender": _("gender"), "age_band": _("age band")}


def removed_chart(report: dict[str, Any], nothing: str) -> None:
    removed = pd.DataFrame([{"reason": sp.label(k), "rows": v} for k, v in report["removed"].items() if v > 0])
    if removed.empty:
        st.info(nothing)
    else:
        plot(alt.Chart(removed).mark_bar().encode(
            x=alt.X("rows:Q", title=_("rows removed")),
            y=alt.Y("reason:N", sort="-x", title=None, axis=alt.Axis(labelLimit=320)),
            tooltip=[alt.Tooltip("reason:N", title=_("reason")), alt.Tooltip("rows:Q", title=_("rows"), format=",")],
        ).properties(height=max(32 * len(removed) + 40, 120)))


def bars(rows: list[dict[str, Any]], column: str, measure: str, title: str, sp: Speaker) -> alt.Chart:
    frame = pd.DataFrame(rows)
    frame[column] = frame[column].map(lambda value: sp.label(str(value)))
    chart: alt.Chart = alt.Chart(frame).mark_bar().encode(
        x=alt.X(f"{measure}:Q", title=_("customers") if measure == "customers" else _("revenue ({currency})").format(
            currency=sp.currency)),
        y=alt.Y(f"{column}:N", sort=None if column == "age_band" else "-x", title=None,
                axis=alt.Axis(labelLimit=200)),
        tooltip=[alt.Tooltip(f"{column}:N", title=DIMENSIONS[column]),
                 alt.Tooltip("customers:Q", title=_("customers"), format=","),
                 alt.Tooltip("buyers:Q", title=_("buyers"), format=","),
                 alt.Tooltip("revenue:Q", title=_("revenue"), format=",.0f"),
                 alt.Tooltip("revenue_share:Q", title=_("share of revenue"), format=".1%")],
    ).properties(title=title, height=280)
    return chart


def segment_mix(rows: list[dict[str, Any]], column: str, sp: Speaker) -> alt.Chart:
    mix = pd.DataFrame(rows)
    mix["segment"] = mix["segment"].map(sp.segment)
    mix[column] = mix[column].map(lambda value: sp.label(str(value)))
    chart: alt.Chart = alt.Chart(mix).mark_bar().encode(
        x=alt.X("share:Q", stack="normalize", title=_("share of the group's customers"), axis=alt.Axis(format="%")),
        y=alt.Y(f"{column}:N", sort=None, title=None, axis=alt.Axis(labelLimit=200)),
        color=alt.Color("segment:N", title=_("segment")),
        tooltip=[alt.Tooltip(f"{column}:N", title=DIMENSIONS[column]), alt.Tooltip("segment:N", title=_("segment")),
                 alt.Tooltip("customers:Q", title=_("customers"), format=","),
                 alt.Tooltip("share:Q", title=_("share"), format=".1%")],
    ).properties(title=_("Segment mix by {dimension}").format(dimension=DIMENSIONS[column]), height=300)
    return chart


st.title(_("Data quality and exploration"))
card = fetch("/model")
if card is None:
    st.stop()
cleaning, eda = card["cleaning"], card["eda"]
cols = st.columns(4)
cols[0].metric(_("raw rows"), sp.number(cleaning["raw_rows"]))
cols[1].metric(_("kept rows"), sp.number(cleaning["kept_rows"]))
cols[2].metric(_("orders"), sp.number(eda["totals"]["orders"]))
cols[3].metric(_("customers"), sp.number(eda["totals"]["customers"]))

sources = card.get("source_reports") or []
for source in sources:
    report = source["cleaning"]
    st.subheader(_("The source file's cleaning, as recorded when it was replayed"))
    st.caption(_("{source} (mapping {mapping}), replayed {when}: {raw} rows in the file, {kept} kept; these rows "
                 "never reached the topic.").format(
        source=source["source"], mapping=report["mapping"], when=sp.day(source["recorded_at"]),
        raw=sp.number(report["raw_rows"]), kept=sp.number(report["kept_rows"])))
    removed_chart(report, _("The file had no row to remove."))
st.subheader(_("Rows removed, by reason (reading the topic)") if sources else _("Rows removed, by reason"))
removed_chart(cleaning, _("No row was removed reading the topic.") if sources else _("No row was removed."))

CONSISTENCY = ("profiles_without_purchases", "purchasing_without_profile")
consistency = next((report.get("customers") or {} for report in (cleaning, *(s["cleaning"] for s in sources[::-1]))
                    if set(CONSISTENCY) <= set(report.get("customers") or {})), {})
if consistency:
    st.subheader(_("Customers table against the purchases"))
    counts = st.columns(3)
    counts[0].metric(_("customers with purchases and a profile"), sp.number(consistency.get("with_purchases", 0)))
    counts[1].metric(_("customers with purchases, no profile"),
                     sp.number(consistency.get("purchasing_without_profile", 0)))
    counts[2].metric(_("profiles with no purchases"), sp.number(consistency.get("profiles_without_purchases", 0)))

st.subheader(_("Revenue by month"))
plot(alt.Chart(pd.DataFrame(eda["sales_by_month"])).mark_bar().encode(
    x=alt.X("month:O", title=_("month")), y=alt.Y("revenue:Q", title=_("revenue ({currency})").format(
        currency=sp.currency)),
    tooltip=[alt.Tooltip("month:O", title=_("month")), alt.Tooltip("revenue:Q", title=_("revenue"), format=",.0f"),
             alt.Tooltip("orders:Q", title=_("orders"), format=",")]).properties(height=300))
st.subheader(_("Revenue by category (top 15)"))
plot(alt.Chart(pd.DataFrame(eda["sales_by_category"][:15])).mark_bar().encode(
    x=alt.X("revenue:Q", title=_("revenue ({currency})").format(currency=sp.currency)),
    y=alt.Y("category:N", sort="-x", title=None, axis=alt.Axis(labelLimit=260)),
    tooltip=[alt.Tooltip("category:N", title=_("category")),
             alt.Tooltip("revenue:Q", title=_("revenue"), format=",.0f")]).properties(height=360))
st.subheader(_("Distributions"))
distributions = pd.DataFrame({_("orders per customer"): eda["orders_per_customer"],
                              _("orders per product"): eda["orders_per_product"],
                              _("products per order"): eda["basket_size"]})
distributions.index = [STATISTICS.get(str(name), str(name)) for name in distributions.index]
st.dataframe(distributions.map(lambda v: sp.number(v, 1)), width="stretch")
st.caption(_("Repeat customers: {share}. History {start} to {end}.").format(
    share=sp.percent(eda["repeat_customer_share"]), start=sp.day(eda["window"]["start"]),
    end=sp.day(eda["window"]["end"])))

people = eda.get("customers")
if people:
    st.subheader(_("Customers"))
    st.caption(_("{profiles} profiles, {buyers} of them with purchases; missing values count as 'unknown'.").format(
        profiles=sp.number(people["profiles"]), buyers=sp.number(people["with_purchases"])))
    left, right = st.columns(2)
    plot(bars(people["by_region"], "region", "customers", _("Customers by department"), sp), left)
    plot(bars(people["by_city"], "city", "customers", _("Top cities"), sp), right)
    plot(bars(people["by_gender"], "gender", "customers", _("Customers by gender"), sp), left)
    plot(bars(people["by_age_band"], "age_band", "customers", _("Customers by age band"), sp), right)
    plot(bars(people["by_region"], "region", "revenue", _("Revenue by department"), sp), left)
    plot(bars(people["by_age_band"], "age_band", "revenue", _("Revenue by age band"), sp), right)
    for column, (key, dimension) in zip(st.columns(2), (("segment_mix_by_region", "region"),
                                                        ("segment_mix_by_age_band", "age_band")), strict=True):
        if people[key]:
            plot(segment_mix(people[key], dimension, sp), column)
