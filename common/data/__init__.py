"""Loading purchase histories into one canonical table, with explicit, reported cleaning."""

from common.data.errors import DataError
from common.data.load import LoadedData, load_history
from common.data.mapping import ColumnMapping, load_mapping

__all__ = ["ColumnMapping", "DataError", "LoadedData", "load_history", "load_mapping"]
