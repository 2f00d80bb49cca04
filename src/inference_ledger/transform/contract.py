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


def ratio(numerator, denominator, scale: int = 10):
    """numerator / denominator rounded to `scale` places, null when the denominator is 0.

    Spark gives decimal(38,10) / decimal(38,10) only 6 decimal places; narrowing the operands
    first keeps 14, which rounds exactly to the marts' 10.
    """
    from pyspark.sql import types as T

    num = numerator.cast(T.DecimalType(28, 10))
    den = denominator.cast(T.DecimalType(24, 10))
    return F.when(den != 0, F.round(num / den, scale))


def minus(a, b):
    """a - b keeping all 10 places: Spark gives decimal(38,10) - decimal(38,10) only 9, so the
    operands narrow to decimal(24,10) (up to 10^14 USD) first."""
    from pyspark.sql import types as T

    a = F.col(a) if isinstance(a, str) else a
    b = F.col(b) if isinstance(b, str) else b
    return a.cast(T.DecimalType(24, 10)) - b.cast(T.DecimalType(24, 10))
