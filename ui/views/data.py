"""Data: the cleaning reports (the source file's, as recorded when it was replayed, and what the batch read), the
two tables' consistency, and the exploration of purchases and customers."""

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from ui.shared import fetch


def removed_chart(report: dict[str, Any], nothing: str) -> None:
    removed = pd.DataFrame([{"reason": k, "rows": v} for k, v in report["removed"].items()])
    if removed.empty or not removed["rows"].any():
        st.info(nothing)
    else:
        st.altair_chart(alt.Chart(removed[removed["rows"] > 0]).mark_bar().encode(
            x="rows:Q", y=alt.Y("reason:N", sort="-x"), tooltip=["reason", "rows"]), use_container_width=True)


def bars(rows: list[dict[str, Any]], column: str, measure: str, title: str) -> alt.Chart:
    chart: alt.Chart = alt.Chart(pd.DataFrame(rows)).mark_bar().encode(
        x=f"{measure}:Q", y=alt.Y(f"{column}:N", sort=None if column == "age_band" else "-x"),
        tooltip=[column, "customers", "buyers", "revenue", "revenue_share"]).properties(title=title, height=260)
    return chart


st.title("Data quality and exploration")
card = fetch("/model")
if card is None:
    st.stop()
cleaning, eda = card["cleaning"], card["eda"]
cols = st.columns(4)
cols[0].metric("raw rows", f"{cleaning['raw_rows']:,}")
cols[1].metric("kept rows", f"{cleaning['kept_rows']:,}")
cols[2].metric("orders", f"{eda['totals']['orders']:,}")
cols[3].metric("customers", f"{eda['totals']['customers']:,}")

sources = card.get("source_reports") or []
for source in sources:
    report = source["cleaning"]
    st.subheader("The source file's cleaning, as recorded when it was replayed")
    st.caption(f"{source['source']} (mapping {report['mapping']}), replayed {source['recorded_at'][:19]}: "
               f"{report['raw_rows']:,} rows in the file, {report['kept_rows']:,} kept; these rows never reached "
               "the topic.")
    removed_chart(report, "The file had no row to remove.")
st.subheader("Rows removed, by reason" + (" (reading the topic)" if sources else ""))
removed_chart(cleaning, "No row was removed reading the topic." if sources else "No row was removed.")

CONSISTENCY = ("profiles_without_purchases", "purchasing_without_profile")
consistency = next((report.get("customers") or {} for report in (cleaning, *(s["cleaning"] for s in sources[::-1]))
                    if set(CONSISTENCY) <= set(report.get("customers") or {})), {})
if consistency:
    st.subheader("Customers table against the purchases")
    counts = st.columns(3)
    counts[0].metric("customers with purchases and a profile", f"{consistency.get('with_purchases', 0):,}")
    counts[1].metric("customers with purchases, no profile", f"{consistency.get('purchasing_without_profile', 0):,}")
    counts[2].metric("profiles with no purchases", f"{consistency.get('profiles_without_purchases', 0):,}")

st.subheader("Revenue by month")
st.altair_chart(alt.Chart(pd.DataFrame(eda["sales_by_month"])).mark_bar().encode(
    x=alt.X("month:O"), y="revenue:Q", tooltip=["month", "revenue", "orders"]), use_container_width=True)
st.subheader("Revenue by category (top 15)")
st.altair_chart(alt.Chart(pd.DataFrame(eda["sales_by_category"][:15])).mark_bar().encode(
    x="revenue:Q", y=alt.Y("category:N", sort="-x")), use_container_width=True)
st.subheader("Distributions")
st.dataframe(pd.DataFrame({k: eda[k] for k in ("orders_per_customer", "orders_per_product", "basket_size")}),
             use_container_width=True)
st.caption(f"Repeat customers: {eda['repeat_customer_share']:.1%}. History {eda['window']['start'][:10]} .. "
           f"{eda['window']['end'][:10]}.")

people = eda.get("customers")
if people:
    st.subheader("Customers")
    st.caption(f"{people['profiles']:,} profiles, {people['with_purchases']:,} of them with purchases; missing "
               "values count as 'unknown'.")
    left, right = st.columns(2)
    left.altair_chart(bars(people["by_region"], "region", "customers", "Customers by department"),
                      use_container_width=True)
    right.altair_chart(bars(people["by_city"], "city", "customers", "Top cities"), use_container_width=True)
    left.altair_chart(bars(people["by_gender"], "gender", "customers", "Customers by gender"),
                      use_container_width=True)
    right.altair_chart(bars(people["by_age_band"], "age_band", "customers", "Customers by age band"),
                       use_container_width=True)
    left.altair_chart(bars(people["by_region"], "region", "revenue", "Revenue by department"),
                      use_container_width=True)
    right.altair_chart(bars(people["by_age_band"], "age_band", "revenue", "Revenue by age band"),
                       use_container_width=True)
    for column, (key, title) in zip(st.columns(2), (("segment_mix_by_region", "region"),
                                                    ("segment_mix_by_age_band", "age_band")), strict=True):
        mix = pd.DataFrame(people[key])
        if not mix.empty:
            column.altair_chart(alt.Chart(mix).mark_bar().encode(
                x=alt.X("share:Q", stack="normalize", title="share of the group's customers"),
                y=alt.Y(f"{title}:N", sort=None), color="segment:N",
                tooltip=[title, "segment", "customers", "share"]).properties(
                title=f"Segment mix by {title.replace('_', ' ')}", height=260), use_container_width=True)
