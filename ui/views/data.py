"""Data: the cleaning report (every removed row by reason) and the exploration of the training history."""

import altair as alt
import pandas as pd
import streamlit as st

from ui.shared import fetch

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

st.subheader("Rows removed, by reason")
removed = pd.DataFrame([{"reason": k, "rows": v} for k, v in cleaning["removed"].items()])
if removed.empty or not removed["rows"].any():
    st.info("No row was removed.")
else:
    st.altair_chart(alt.Chart(removed[removed["rows"] > 0]).mark_bar().encode(
        x="rows:Q", y=alt.Y("reason:N", sort="-x")), use_container_width=True)

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
