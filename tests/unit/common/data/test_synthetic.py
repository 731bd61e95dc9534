import pandas as pd
import pytest

from common.data.synthetic import SEGMENTS, SyntheticSpec, generate

SMALL = SyntheticSpec(customers=800, products=300, lines=15_000, seed=7)


@pytest.fixture(scope="module")
def small() -> tuple[pd.DataFrame, pd.DataFrame]:
    return generate(SMALL)


def test_same_seed_same_data(small: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    again = generate(SMALL)
    pd.testing.assert_frame_equal(small[0], again[0])
    pd.testing.assert_frame_equal(small[1], again[1])


def test_other_seed_other_data(small: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    other = generate(SyntheticSpec(customers=800, products=300, lines=15_000, seed=8))
    assert not small[0].equals(other[0])


def test_case_study_schema(small: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    lines, customers = small
    assert list(lines.columns) == [
        "UUID_CLIENTE_CONSUMIDOR", "PEDIDO", "FECHA_SOLUCION", "COD_PRODUCTO", "CATEGORIA", "UNIDADES_BRUTAS",
        "VENTA_BRUTA_CON_IVA",
    ]
    assert list(customers.columns) == [
        "UUID_CLIENTE_CONSUMIDOR", "DEPARTAMENTO", "CIUDAD", "GENERO_DIM_CLIENTE", "FECHANACIMIENTO_DIM_CLIENTE",
    ]
    assert lines["UUID_CLIENTE_CONSUMIDOR"].str.fullmatch("[0-9a-f]{32}").all()


def test_size_is_near_the_target(small: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    assert 0.85 * SMALL.lines < len(small[0]) < 1.15 * SMALL.lines


def test_popularity_is_skewed(small: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    counts = small[0]["COD_PRODUCTO"].value_counts()
    top_decile_share = counts.iloc[: len(counts) // 10].sum() / counts.sum()
    assert top_decile_share > 0.4


def test_about_fifty_categories() -> None:
    lines, _ = generate(SyntheticSpec(customers=500, products=1000, lines=8000, seed=1))
    assert 40 <= lines["CATEGORIA"].nunique() <= 50


def test_a_year_of_dates(small: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    dates = pd.to_datetime(small[0]["FECHA_SOLUCION"])
    assert (dates.max() - dates.min()).days >= 350


def test_repeat_purchases(small: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    lines = small[0]
    orders_per_pair = lines.groupby(["UUID_CLIENTE_CONSUMIDOR", "COD_PRODUCTO"])["PEDIDO"].nunique()
    assert (orders_per_pair >= 2).mean() > 0.15


def test_items_bought_together(small: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """Some pair of products co-occurs in orders far more often than independence predicts."""
    lines = small[0]
    baskets = lines.groupby("PEDIDO")["COD_PRODUCTO"].apply(set)
    n = len(baskets)
    top = lines["COD_PRODUCTO"].value_counts().index[:40]
    best_lift = 0.0
    support = {p: sum(p in b for b in baskets) / n for p in top}
    for i, a in enumerate(top):
        for b in top[i + 1:]:
            both = sum(a in s and b in s for s in baskets) / n
            if both * n >= 20:
                best_lift = max(best_lift, both / (support[a] * support[b]))
    assert best_lift > 3


def test_customer_groups_differ_in_frequency_and_recency(small: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    lines = small[0]
    dates = pd.to_datetime(lines["FECHA_SOLUCION"])
    per_customer = lines.assign(date=dates).groupby("UUID_CLIENTE_CONSUMIDOR").agg(
        orders=("PEDIDO", "nunique"), last=("date", "max")
    )
    recency_days = (dates.max() - per_customer["last"]).dt.days
    assert per_customer["orders"].quantile(0.95) > 4 * per_customer["orders"].median()
    assert (recency_days > 120).mean() > 0.1  # a lapsing group exists
    assert len(SEGMENTS) >= 4


def test_dirt_for_the_cleaning_report(small: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    lines, customers = small
    assert lines.duplicated().sum() > 0
    assert lines["CATEGORIA"].isna().sum() > 0
    assert (lines["UNIDADES_BRUTAS"] == 0).sum() > 0
    assert (~lines["UUID_CLIENTE_CONSUMIDOR"].isin(customers["UUID_CLIENTE_CONSUMIDOR"])).sum() > 0


def test_the_catalogue_names_products_by_category_deterministically() -> None:
    from common.data.synthetic import products_table

    spec = SyntheticSpec(customers=200, products=120, lines=3000, seed=4)
    catalogue = products_table(spec)
    pd.testing.assert_frame_equal(catalogue, products_table(spec))
    lines, _ = generate(spec)
    assert set(lines["COD_PRODUCTO"]) <= set(catalogue["COD_PRODUCTO"])
    assert catalogue["COD_PRODUCTO"].is_unique and catalogue["NOMBRE_PRODUCTO"].is_unique
    for category, group in catalogue.groupby("CATEGORIA"):
        assert list(group["NOMBRE_PRODUCTO"]) == [f"{category} {n}" for n in range(1, len(group) + 1)]
    sold = lines.dropna(subset=["CATEGORIA"]).drop_duplicates("COD_PRODUCTO")
    assert (sold["CATEGORIA"].to_numpy() == catalogue.set_index("COD_PRODUCTO").loc[sold["COD_PRODUCTO"],
                                                                                      "CATEGORIA"].to_numpy()).all()
