"""Segments: how many customers in each RFM segment, what they look like, and what to offer each one."""

import altair as alt
import pandas as pd
import streamlit as st

from ui.shared import api_path, fetch

st.title("Customer segments (RFM)")
body = fetch("/segments")
if body is None:
    st.stop()
table = pd.DataFrame(body["segments"])
if table.empty:
    st.info("The published model has no segments.")
    st.stop()
st.caption(f"Model {body['model_version']}. Recency, frequency and monetary are scored in quintiles; the rules "
           "and the suggested actions are one table, in common/segments.py.")
st.altair_chart(alt.Chart(table).mark_bar().encode(
    x=alt.X("segment:N", sort=None), y="customers:Q", tooltip=["segment", "customers", "share", "description"]),
    use_container_width=True)
measures = ("recency_days", "frequency", "monetary") + (("revenue_share",) if "revenue_share" in table else ())
grid = [column for _ in range(2) for column in st.columns(2)]
for column, measure in zip(grid, measures, strict=False):
    title = "share of revenue" if measure == "revenue_share" else f"mean {measure.replace('_', ' ')}"
    column.altair_chart(alt.Chart(table).mark_bar().encode(
        x=alt.X("segment:N", sort=None), y=alt.Y(f"{measure}:Q", title=title), tooltip=["segment", measure])
        .properties(title=title, height=240), use_container_width=True)
st.dataframe(table, hide_index=True, use_container_width=True)

st.subheader("What to offer a segment")
name = st.selectbox("Segment", list(table["segment"]))
offer = fetch(api_path("segments", name)) if name else None
if offer is None:
    st.info("This model version has no offers (published before offers existed): run `recsys batch run`.")
else:
    st.markdown(f"**Suggested action:** {offer['action']}")
    figures = st.columns(3)
    figures[0].metric("customers", f"{offer['customers']:,}")
    figures[1].metric("share of customers", f"{offer['share']:.1%}")
    figures[2].metric("share of revenue", f"{offer['revenue_share']:.1%}")
    st.caption("Lift = the item's share of this segment's purchase lines / its share of all purchase lines; items "
               f"bought by at least {offer['min_segment_buyers']} of the segment's customers. The campaign export "
               "(customer id, segment, offered products) is `offers.csv` in the model's artifacts folder.")
    products = pd.DataFrame(offer["products"])
    if products.empty:
        st.info("No product makes up more of this segment's purchases than of the shop's, with enough buyers.")
    else:
        products["product"] = products["name"].fillna(products["product_id"])
        st.altair_chart(alt.Chart(products).mark_bar().encode(
            x="lift:Q", y=alt.Y("product:N", sort="-x"),
            tooltip=["product_id", "product", "category", "lift", "segment_buyers", "segment_lines", "shop_lines"]),
            use_container_width=True)
        st.dataframe(products[["product_id", "name", "category", "lift", "segment_buyers", "segment_lines",
                               "segment_total_lines", "shop_lines", "shop_total_lines"]],
                     hide_index=True, use_container_width=True)
    categories = pd.DataFrame(offer["categories"])
    if not categories.empty:
        st.dataframe(categories[["category", "lift", "segment_buyers", "segment_lines", "segment_total_lines",
                                 "shop_lines", "shop_total_lines"]], hide_index=True, use_container_width=True)

versions = fetch("/model/versions")
if versions and len(versions["versions"]) < 2:
    st.info("Segment movement over time needs at least two published versions (the nightly job adds one a day).")
