from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
UCI_PATH = SHARED_DATA / "online_retail_uci" / "online_retail.csv.gz"
GROCERIES_PATH = SHARED_DATA / "groceries" / "groceries.csv"


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES
