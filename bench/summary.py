"""The benchmark's results as text: the console table printed after each size, and the
README's Markdown tables from a results file."""

from __future__ import annotations


def print_size(r: dict) -> None:
    print(f"\n== {r['size']}: {r['usage_results']:,} usage results, {r['billing_lines']:,} billing lines"
          f" ({r['landing_mb']} MB of landing files)")  # fmt: skip
    print(f"{'stage':<52}{'seconds':>9}{'rows':>12}{'rows/s':>11}{'driver':>8}{'jvm':>7}{'pg':>6}")
    for name, s in {**r["generate"], **r["stages"]}.items():
        print(
            f"{name:<52}{s['seconds']:>9.2f}{s['rows'] or '':>12}{s['rows_per_s'] or '':>11}"
            f"{s['peak_driver_mb']:>8}{s['peak_jvm_mb']:>7}{s['peak_postgres_mb']:>6}"
        )
    print(f"night (prepare..publish): {r['night_seconds']:.2f} s")
    for k, v in r["ratios"].items():
        print(f"  {k}: {v}")


def markdown(results: dict) -> str:
    """The README's figures from a results file (`python bench/run.py --summarize FILE`)."""
    m = results["machine"]
    out = [
        f"Machine: {m['cores']} cores, {m['ram_gb']} GiB, {m['cpu']}; Spark {m['spark_master']}, "
        f"{m['shuffle_partitions']} shuffle partitions, driver {m.get('driver_memory', '2g')}; load average "
        f"{m['load_avg_at_start'][0]} at start, {m.get('load_avg_at_end', ['?'])[0]} at end. "
        f"{results.get('note', '')}",
        "",
        f"Fixed overhead: Spark session start {results['fixed_overhead']['spark_session_start_s']}"
        f" s, `ledger --help` {results['fixed_overhead'].get('cli_start_s', '?')} s.",
    ]
    for r in results["sizes"]:
        out += [
            "",
            f"**{r['size']}**: {r['usage_results']:,} usage results "
            f"({r['generated']['usage_results_written']:,} with redeliveries, "
            f"{r['generated']['usage_files']} files), {r['billing_lines']:,} billing lines; "
            f"{r['landing_mb']} MB of gzip landing files. Night (prepare..publish): "
            f"{r['night_seconds']:.1f} s.",
            "",
            "| stage | s | rows | rows/s | peak driver MB | peak JVM MB | peak Postgres MB |",
            "|---|--:|--:|--:|--:|--:|--:|",
        ]
        for name, st in {**r["generate"], **r["stages"]}.items():
            out.append(
                f"| {name.strip()} | {st['seconds']:.2f} | {st['rows'] or ''} | "
                f"{st['rows_per_s'] or ''} | {st['peak_driver_mb']} | {st['peak_jvm_mb']} | "
                f"{st['peak_postgres_mb']} |"
            )
        out += ["", "| ratio | value |", "|---|--:|"]
        out += [f"| {k} | {v} |" for k, v in r["ratios"].items()]
    inc = results.get("incremental")
    if inc:
        out += [
            "",
            f"**Incremental** ({inc['size']} night, {inc['history_nights']} nights of history): "
            f"first night {inc['first_night_seconds']:.1f} s, one more night "
            f"{inc['next_night_seconds']:.1f} s, ratio **{inc['ratio_next_vs_first']}**.",
            "",
            "| stage | first night s | one more night s | ratio |",
            "|---|--:|--:|--:|",
        ]
        for k, v in inc["ratio_by_stage"].items():
            a = inc["first_night"].get(k, {}).get("seconds")
            b = inc["next_night"].get(k, {}).get("seconds")
            out.append(f"| {k} | {a} | {b} | {v} |")
    return "\n".join(out)


def print_incremental(inc: dict, inc_size: str, history_nights: int) -> None:
    print(
        f"\n== incremental ({inc_size}, {history_nights} nights of history): "
        f"first night {inc['first_night_seconds']:.2f} s, one more night "
        f"{inc['next_night_seconds']:.2f} s, ratio {inc['ratio_next_vs_first']}"
    )
    print(f"  by stage: {inc['ratio_by_stage']}")
