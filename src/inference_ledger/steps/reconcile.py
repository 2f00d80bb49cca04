"""The revenue-share reconciliation of an aggregate, over all history: caps accumulate from the
first contract term, and a late change to a closed quarter is recomputed and posted as a
prior-period adjustment into the first open quarter after it (extending the run by a quarter
when the run's last quarter is closed)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from inference_ledger import lake
from inference_ledger.periods import Quarter, quarters_between
from inference_ledger.run.context import RunContext
from inference_ledger.spark import local_frame

log = logging.getLogger(__name__)


@dataclass
class Reconciliation:
    history: DataFrame  # the reconciliation of every period since the first term (cached)
    adjustments: DataFrame | None  # prior-period adjustment rows (cached)
    earliest: date
    start: date
    end: date  # may be one quarter past the planned end (an adjustment to post)
    closed: list[str]

    def periods(self, spark: SparkSession) -> DataFrame:
        from inference_ledger.transform import reconcile

        return reconcile.periods_frame(spark, self.start, self.end)

    def in_run(self, spark: SparkSession) -> DataFrame:
        """marts.revshare_reconciliation of the run's periods, adjustments included."""
        labels = self.periods(spark).select("period_label")
        rec = self.history.join(labels, "period_label", how="left_semi")
        if self.adjustments is None:
            return rec
        return rec.unionByName(self.adjustments.join(labels, "period_label", how="left_semi"))

    def release(self) -> None:
        self.history.unpersist()
        if self.adjustments is not None:
            self.adjustments.unpersist()


def reconcile_history(
    spark: SparkSession,
    ctx: RunContext,
    conn,
    start: date,
    end: date,
    terms,
    prices,
    usage_daily: DataFrame,
) -> Reconciliation:
    """The reconciliation of every period since the first term; `usage_daily` the usage facts
    summed per day, channel and model (spend.daily_usage), which the usage estimate prices."""
    from inference_ledger import close as closing
    from inference_ledger.transform import reconcile

    # Caps accumulate over all history, so reconcile from the first term, then keep the range.
    first = terms.agg(F.min("effective_from")).first()[0] or start
    earliest = min(first, start)
    state = closing.load_closed_state(conn)
    pairs, extra = closing.adjustment_blocks(
        quarters_between(start, end), state.closed, Quarter.of(earliest)
    )
    changed = [
        (target, source, entry)
        for target in sorted({t for t, _ in pairs})
        for source, entry in closing.changed_inputs(
            conn, ctx.run_id, [c for t, c in pairs if t == target]
        )
    ]
    horizon = extra.end if extra is not None and extra.end > end else end
    all_periods = reconcile.periods_frame(spark, earliest, horizon)
    # The estimate of the reported basis reads the partner channel's usage of every period
    # (closed ones are recomputed to find late changes).
    resale_usage = usage_daily.filter(F.col("channel") == reconcile.USAGE_CHANNEL)
    rec_all = reconcile.revshare_reconciliation(
        terms,
        lake.read_table(spark, ctx.lake_dir, "revenue_lines"),
        lake.read_table(spark, ctx.lake_dir, "settlements"),
        all_periods,
        ctx.as_of,
        resale_usage,
        prices,
    ).persist()
    out = Reconciliation(rec_all, None, earliest, start, end, list(state.closed))
    if pairs:
        out.adjustments = _adjustments(spark, rec_all, state.frozen, pairs, all_periods, changed)
        if (
            extra is not None
            and out.adjustments.filter(F.col("period_label") == extra.label).count()
        ):
            log.warning(
                "late changes to closed period(s) before %s: the run extends to %s to post them",
                extra.label,
                extra.label,
            )
            out.end = extra.end
    return out


def _adjustments(spark: SparkSession, rec_all, frozen, pairs, all_periods, changed) -> DataFrame:
    from inference_ledger import contracts
    from inference_ledger.transform import reconcile

    mart_schema = contracts.spark_schema("marts", "revshare_reconciliation")
    nullable = mart_schema.__class__(
        [f.__class__(f.name, f.dataType, True) for f in mart_schema.fields]
    )
    return reconcile.prior_period_adjustments(
        rec_all,
        local_frame(spark, frozen, nullable),
        local_frame(spark, pairs, "target_period string, corrected_period string"),
        all_periods,
        local_frame(spark, changed, "target_period string, source string, entry string"),
    ).persist()
