"""A seeded synthetic shop in the case study's schema: the embedded default a fresh machine runs on.

Structure a recommender can learn from: Zipf-like product popularity, ~50 categories, bundles bought together,
repeat purchases of each customer's staples, and customer groups that differ in recency, frequency and spend.
A little realistic dirt (exact duplicates, missing categories, zero-unit lines, customers absent from the
customers table) gives the cleaning report something to count.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

CATEGORIES = [
    "Galletas", "Bebidas Para Preparar", "Esparcibles", "Golosinas", "Lácteos", "Quesos", "Yogures", "Cereales",
    "Café", "Té e Infusiones", "Chocolates", "Snacks", "Pasabocas", "Gaseosas", "Jugos", "Aguas", "Cervezas",
    "Vinos", "Licores", "Panadería", "Pastas", "Arroz", "Granos", "Aceites", "Salsas", "Condimentos", "Enlatados",
    "Conservas", "Harinas", "Azúcar y Endulzantes", "Huevos", "Carnes Frías", "Embutidos", "Congelados",
    "Helados", "Frutas", "Verduras", "Cuidado Personal", "Cuidado del Cabello", "Cuidado Oral", "Desodorantes",
    "Pañales", "Cuidado del Bebé", "Aseo del Hogar", "Detergentes", "Papel Higiénico", "Servilletas", "Mascotas",
    "Cocina", "Desechables",
]
PLACES = {
    "Antioquia": ["Medellín", "Envigado", "Bello", "Itagüí"],
    "Cundinamarca": ["Bogotá", "Soacha", "Chía", "Zipaquirá"],
    "Valle del Cauca": ["Cali", "Palmira", "Buenaventura"],
    "Atlántico": ["Barranquilla", "Soledad"],
    "Santander": ["Bucaramanga", "Floridablanca"],
    "Bolívar": ["Cartagena"],
    "Risaralda": ["Pereira", "Dosquebradas"],
    "Caldas": ["Manizales"],
    "Tolima": ["Ibagué"],
    "Nariño": ["Pasto"],
}
# Bundles and the minimum of one order per customer make baskets ~12% larger than the drawn sizes
# (measured on the default spec); the order rate is scaled down by it so the line count lands near the target.
BASKET_INFLATION = 1.12
PRODUCT_COLUMNS = ["COD_PRODUCTO", "NOMBRE_PRODUCTO", "CATEGORIA"]
TRANSACTION_COLUMNS = [
    "UUID_CLIENTE_CONSUMIDOR", "PEDIDO", "FECHA_SOLUCION", "COD_PRODUCTO", "CATEGORIA", "UNIDADES_BRUTAS",
    "VENTA_BRUTA_CON_IVA",
]


@dataclass(frozen=True)
class Segment:
    name: str
    share: float
    orders_per_year: float
    lines_per_order: float
    spend: float
    active_from: float  # fraction of the year
    active_to: float


SEGMENTS = (
    Segment("vip", 0.08, 26.0, 4.0, 1.6, 0.0, 1.0),
    Segment("loyal", 0.22, 12.0, 3.0, 1.1, 0.0, 1.0),
    Segment("occasional", 0.35, 3.5, 2.5, 1.0, 0.0, 1.0),
    Segment("lapsing", 0.20, 9.0, 2.5, 1.0, 0.0, 0.55),
    Segment("new", 0.15, 12.0, 2.5, 0.9, 0.75, 1.0),
)


@dataclass(frozen=True)
class SyntheticSpec:
    customers: int = 5000
    products: int = 1000
    lines: int = 100_000
    seed: int = 42
    start: date = date(2022, 12, 1)
    days: int = 365
    staple_share: float = 0.35  # chance a basket slot is one of the customer's staples
    favourite_share: float = 0.35  # chance it comes from the customer's favourite categories
    bundle_probability: float = 0.6  # chance a bundle anchor brings its partners along
    popularity_exponent: float = 1.05  # Zipf exponent of product popularity: higher, a shorter head and longer tail


@dataclass
class _Catalogue:
    product_codes: np.ndarray
    category_of: np.ndarray
    price: np.ndarray
    popularity_cdf: np.ndarray
    by_category: list[tuple[np.ndarray, np.ndarray]]  # (product indices, popularity cdf)
    bundle_partners: dict[int, np.ndarray]


def _cdf(weights: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(weights, dtype=np.float64)
    return np.asarray(cdf / cdf[-1], dtype=np.float64)


def _pick(rng: np.random.Generator, cdf: np.ndarray) -> int:
    return int(np.searchsorted(cdf, rng.random(), side="right"))


def _catalogue(spec: SyntheticSpec, rng: np.random.Generator) -> _Catalogue:
    n = spec.products
    n_cat = min(len(CATEGORIES), max(1, n // 5))
    codes = np.sort(rng.choice(np.arange(2, 342_422), size=n, replace=False))
    category_weights = 1.0 / np.arange(1, n_cat + 1) ** 0.6
    category_of = rng.choice(n_cat, size=n, p=category_weights / category_weights.sum())
    popularity = 1.0 / rng.permutation(np.arange(1, n + 1)).astype(float) ** spec.popularity_exponent
    category_price = rng.lognormal(np.log(5500), 0.5, size=n_cat)
    price = np.round(category_price[category_of] * rng.lognormal(0.0, 0.45, size=n), -1).clip(500)

    by_category = []
    for c in range(n_cat):
        members = np.flatnonzero(category_of == c)
        if members.size == 0:
            members = np.array([int(rng.integers(n))])
        by_category.append((members, _cdf(popularity[members])))

    complement = rng.permutation(n_cat)
    anchors = np.argsort(-popularity)[: max(1, n // 8)]
    partners: dict[int, np.ndarray] = {}
    for anchor in anchors:
        members, cdf = by_category[complement[category_of[anchor]]]
        size = int(rng.integers(1, 3))
        chosen = {int(members[_pick(rng, cdf)]) for _ in range(size)} - {int(anchor)}
        if chosen:
            partners[int(anchor)] = np.array(sorted(chosen))
    return _Catalogue(codes, category_of, price, _cdf(popularity), by_category, partners)


def _expected_lines(spec: SyntheticSpec) -> float:
    per_customer = sum(s.share * s.orders_per_year * (s.active_to - s.active_from) * s.lines_per_order
                       for s in SEGMENTS)
    return per_customer * spec.customers * BASKET_INFLATION


def generate(spec: SyntheticSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(transactions, customers) in the case study's schema; identical for the same spec."""
    rng = np.random.default_rng(spec.seed)
    cat = _catalogue(spec, rng)
    rate_scale = spec.lines / _expected_lines(spec)
    day_weights = _day_weights(spec)
    customer_ids = np.array([rng.bytes(16).hex() for _ in range(spec.customers)])
    segment_of = rng.choice(len(SEGMENTS), size=spec.customers, p=[s.share for s in SEGMENTS])

    # One typed column per field (about 24 bytes a line; a list of tuples took ~10x that at 10M lines).
    columns: dict[str, array[Any]] = {"customer": array("i"), "day": array("i"), "order": array("q"),
                                      "product": array("i"), "units": array("d")}
    order_seq = 0
    for customer in range(spec.customers):
        segment = SEGMENTS[segment_of[customer]]
        favourites = [int(c) for c in rng.choice(len(cat.by_category), size=3)]
        staples = [int(cat.by_category[c][0][_pick(rng, cat.by_category[c][1])]) for c in favourites
                   for _ in range(int(rng.integers(1, 4)))]
        span = segment.active_to - segment.active_from
        n_orders = 1 + rng.poisson(max(segment.orders_per_year * span * rate_scale - 1, 0.0))
        days = _order_days(rng, day_weights, segment, n_orders)
        for day in days:
            basket = _basket(rng, cat, spec, segment, favourites, staples, rate_scale)
            for product in basket:
                columns["customer"].append(customer)
                columns["day"].append(int(day))
                columns["order"].append(order_seq)
                columns["product"].append(product)
                columns["units"].append(float(rng.geometric(1 / 2.19)))
            order_seq += 1

    lines = pd.DataFrame({name: np.frombuffer(values, dtype=values.typecode) for name, values in columns.items()})
    transactions = _to_case_study_schema(lines, cat, customer_ids, segment_of, spec, rng)
    customers = _customers_table(customer_ids, spec, rng)
    return _add_dirt(transactions, customers, rng)


def _day_weights(spec: SyntheticSpec) -> np.ndarray:
    days = [spec.start + timedelta(days=i) for i in range(spec.days)]
    weekend = np.array([d.weekday() >= 5 for d in days], dtype=float)
    december = np.array([d.month == 12 for d in days], dtype=float)
    return _cdf(1.0 + 0.3 * weekend + 0.4 * december)


def _order_days(rng: np.random.Generator, cdf: np.ndarray, segment: Segment, n: int) -> np.ndarray:
    first = int(segment.active_from * (len(cdf) - 1))
    lo = cdf[first - 1] if first > 0 else 0.0
    hi = cdf[int(segment.active_to * (len(cdf) - 1))]
    return np.sort(np.searchsorted(cdf, rng.uniform(lo, hi, size=n), side="right").clip(0, len(cdf) - 1))


def _basket(
    rng: np.random.Generator, cat: _Catalogue, spec: SyntheticSpec, segment: Segment,
    favourites: list[int], staples: list[int], rate_scale: float,
) -> list[int]:
    size = 1 + rng.poisson(max(segment.lines_per_order - 1, 0.0))
    basket: dict[int, None] = {}
    while len(basket) < size:
        roll = rng.random()
        if roll < spec.staple_share and staples:
            product = staples[int(rng.integers(len(staples)))]
        elif roll < spec.staple_share + spec.favourite_share:
            members, cdf = cat.by_category[favourites[int(rng.integers(len(favourites)))]]
            product = int(members[_pick(rng, cdf)])
        else:
            product = _pick(rng, cat.popularity_cdf)
        basket[product] = None
        partners = cat.bundle_partners.get(product)
        if partners is not None and rng.random() < spec.bundle_probability:
            basket.update(dict.fromkeys(int(p) for p in partners))
    return list(basket)


def _to_case_study_schema(
    lines: pd.DataFrame, cat: _Catalogue, customer_ids: np.ndarray, segment_of: np.ndarray,
    spec: SyntheticSpec, rng: np.random.Generator,
) -> pd.DataFrame:
    # Order numbers grow with time, as a shop's would.
    lines = lines.sort_values(["day", "order"], kind="stable").reset_index(drop=True)
    order_rank = lines["order"].rank(method="dense").astype(np.int64).to_numpy()
    first_order = 36_260_000
    spend = np.array([s.spend for s in SEGMENTS])[segment_of[lines["customer"].to_numpy()]]
    units = lines["units"].to_numpy()
    products = lines["product"].to_numpy()
    discount = rng.uniform(0.9, 1.0, size=len(lines))
    amount = np.round(units * cat.price[products] * spend * discount, -1)
    # Labels are made once per day and per customer and shared by reference (10M lines: 80 MB, not 1.3 GB).
    day_labels = (pd.Timestamp(spec.start) + pd.to_timedelta(np.arange(spec.days + 1), unit="D")).strftime("%Y-%m-%d")
    return pd.DataFrame(
        {
            "UUID_CLIENTE_CONSUMIDOR": customer_ids.astype(object)[lines["customer"].to_numpy()],
            "PEDIDO": first_order + order_rank,
            "FECHA_SOLUCION": np.asarray(day_labels, dtype=object)[lines["day"].to_numpy()],
            "COD_PRODUCTO": cat.product_codes[products],
            "CATEGORIA": np.array(CATEGORIES)[cat.category_of[products]],
            "UNIDADES_BRUTAS": units.astype(np.int64),
            "VENTA_BRUTA_CON_IVA": amount,
        }
    )


def _customers_table(customer_ids: np.ndarray, spec: SyntheticSpec, rng: np.random.Generator) -> pd.DataFrame:
    n = len(customer_ids)
    departments = np.array(list(PLACES))
    dept = departments[rng.choice(len(departments), size=n, p=_place_weights(len(departments)))]
    city = np.array([PLACES[d][int(rng.integers(len(PLACES[d])))] for d in dept])
    gender = rng.choice(np.array(["F", "M"], dtype=object), size=n, p=[0.55, 0.45])
    gender[rng.random(n) < 0.15] = None
    age_days = rng.integers(18 * 365, 80 * 365, size=n)
    end = pd.Timestamp(spec.start) + pd.Timedelta(days=spec.days)
    birth = (end - pd.to_timedelta(age_days, unit="D")).normalize().strftime("%Y-%m-%dT00:00:00Z").to_numpy(object)
    birth[rng.random(n) < 0.13] = None
    return pd.DataFrame(
        {
            "UUID_CLIENTE_CONSUMIDOR": customer_ids,
            "DEPARTAMENTO": dept,
            "CIUDAD": city,
            "GENERO_DIM_CLIENTE": gender,
            "FECHANACIMIENTO_DIM_CLIENTE": birth,
        }
    )


def _place_weights(n: int) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1)
    return np.asarray(weights / weights.sum(), dtype=np.float64)


def _add_dirt(
    transactions: pd.DataFrame, customers: pd.DataFrame, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    n = len(transactions)
    dirty = transactions.copy()
    dirty.loc[rng.random(n) < 0.005, "CATEGORIA"] = None
    zero = rng.random(n) < 0.001
    dirty.loc[zero, "UNIDADES_BRUTAS"] = 0
    dirty.loc[zero, "VENTA_BRUTA_CON_IVA"] = 0.0
    copies = dirty.iloc[np.flatnonzero(rng.random(n) < 0.0005)]
    dirty = pd.concat([dirty, copies]).sort_index(kind="stable").reset_index(drop=True)
    missing_from_table = rng.random(len(customers)) < 0.002
    return dirty, customers[~missing_from_table].reset_index(drop=True)


def products_table(spec: SyntheticSpec) -> pd.DataFrame:
    """The shop's catalogue: code, a name "<category> <n>" (n-th product of its category by code) and category.
    The catalogue is the generator's first draw from the seed, so this is the catalogue `generate` sold from."""
    cat = _catalogue(spec, np.random.default_rng(spec.seed))
    categories = np.array(CATEGORIES)[cat.category_of]
    number = pd.Series(cat.category_of).groupby(cat.category_of).cumcount().to_numpy() + 1
    return pd.DataFrame({"COD_PRODUCTO": cat.product_codes,
                         "NOMBRE_PRODUCTO": [f"{c} {n}" for c, n in zip(categories, number, strict=True)],
                         "CATEGORIA": categories})


def write(spec: SyntheticSpec, folder: Path) -> tuple[Path, Path, Path]:
    """The case study's two tables, and the catalogue with product names (products.csv)."""
    transactions, customers = generate(spec)
    folder.mkdir(parents=True, exist_ok=True)
    tx_path, cu_path = folder / "dataset_sample_1.csv", folder / "dataset_sample_2.csv"
    products_path = folder / "products.csv"
    transactions.to_csv(tx_path, index=False)
    customers.to_csv(cu_path, index=False)
    products_table(spec).to_csv(products_path, index=False)
    return tx_path, cu_path, products_path
