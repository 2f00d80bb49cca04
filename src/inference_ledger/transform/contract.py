"""Shape a DataFrame to a mart contract."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from inference_ledger import contracts


def select_mart(df: DataFrame, mart: str) -> DataFrame:
    """The mart's columns, in contract order and types."""
    return df.select(
        *[
            F.col(c.name).cast(contracts.spark_type(c)).alias(c.name)
            for c in contracts.columns("marts", mart)
        ]
    )
