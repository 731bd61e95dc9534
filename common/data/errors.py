class DataError(Exception):
    """Input data that cannot be loaded: the message names the file or column and what to do."""
