"""Variance explanations: plain sentences for each reconciliation row of a quarter, every
figure a column of the mart row or of the explanation query's arithmetic on it."""

from __future__ import annotations

from inference_ledger.report.render import STATUS_MEANING, integer, money, pct, plain, rate


def sentences(r: dict, x: dict) -> list[str]:
    """Sentences for one reconciliation row `r` (the mart row), `x` its explanation row."""
    if r["is_adjustment"]:
        return _adjustment(r)
    basis_def = r["basis_definition"] or ""
    out = _basis(r, x, basis_def)
    out += _expected(r, x)
    out += _statements(r, x, basis_def)
    status = _status(r)
    return out + ([status] if status else [])


def explanations(rec: list[dict], expl: dict) -> list[dict]:
    """One row per reconciliation row: its key, status and sentences (explanations.csv, and
    the page's variance explanations)."""
    out = []
    for r in rec:
        x = expl.get((r["agreement_id"], r["direction"], r["is_adjustment"]), {})
        said = sentences(r, x)
        out.append(
            {
                "agreement_id": r["agreement_id"],
                "direction": r["direction"],
                "is_adjustment": r["is_adjustment"],
                "status": r["status"],
                "explanation": " ".join(said),
                "sentences": said,
            }
        )
    return out


def _adjustment(r: dict) -> list[str]:
    out = [
        f"Prior-period adjustment posted into this open period for closed "
        f"{r['adjustment_of_period']}: recomputed figures minus what the closed period "
        f"holds — {r['adjustment_reason']}."
    ]
    if r["adjustment_inputs"]:
        out.append(
            "Inputs new, changed or removed since the run that published the closed figures: "
            f"{r['adjustment_inputs']}."
        )
    out.append(
        f"Status {r['status']} is the corrected period's status after the adjustment "
        f"({STATUS_MEANING.get(r['status'], '')})."
    )
    return out


def _basis(r: dict, x: dict, basis_def: str) -> list[str]:
    if basis_def.startswith("revenue:"):
        lines = ", ".join(basis_def.removeprefix("revenue:").split("|"))
        return [
            f"Basis: the revenue ledger's product lines {lines} — "
            f"{integer(r['basis_entry_count']) or '0'} entries (highest version of each, "
            f"refunds included) totalling ${money(r['basis_usd']) or '0.00'}."
        ]
    if basis_def == "reported":
        return _reported_basis(r, x)
    if r["status"] == "unexpected_settlement":
        return ["No contract terms are in effect for this agreement in the period."]
    return []


def _reported_basis(r: dict, x: dict) -> list[str]:
    if r["basis_usd"] is None:
        out = [f"Basis: as reported by {r['counterparty']} — no statement yet."]
    else:
        out = [
            f"Basis: as reported by {r['counterparty']} on its statements, "
            f"${money(r['basis_usd'])}."
        ]
    if r["usage_estimate_usd"] is None:
        return out
    text = (
        f"Independent estimate (channel azure_openai usage x price sheet, only days the "
        f"terms are in effect): ${money(r['usage_estimate_usd'])}"
    )
    d = r["usage_estimate_variance_usd"]
    if d is not None and money(abs(d)) == "0.00":
        text += "; the reported basis matches it to the cent"
    elif d is not None:
        side = "above" if d > 0 else "below"
        share = pct(r["usage_estimate_variance_ratio"])
        text += f"; the reported basis is ${money(abs(d))} {side} it ({share})"
    if x.get("share_at_usage_estimate_usd") is not None:
        text += f"; at the rate it implies a share of ${money(x['share_at_usage_estimate_usd'])}"
    out.append(text + ".")
    if r["usage_unpriced_tokens"]:
        out.append(
            f"{integer(r['usage_unpriced_tokens'])} tokens had no USD price in effect "
            "and are not in the estimate."
        )
    return out


def _expected(r: dict, x: dict) -> list[str]:
    if r["expected_usd"] is None:
        return [f"Rate in effect {rate(r['rate'])}."] if r["rate"] is not None else []
    text = f"Rate {rate(r['rate'])}: expected ${money(r['expected_usd'])}"
    if x.get("cap_effect_usd") and x["cap_effect_usd"] > 0:
        text += (
            f" — capped: ${money(x['uncapped_expected_usd'])} before the cap, "
            f"${money(x['cap_effect_usd'])} over it"
        )
    if r["cap_remaining_usd"] is not None:
        text += (
            f" (cap used to date ${money(r['cap_used_usd'])}, "
            f"remaining ${money(r['cap_remaining_usd'])})"
        )
    return [text + "."]


def _statements(r: dict, x: dict, basis_def: str) -> list[str]:
    if not r["statement_ids"]:
        return []
    text = f"Settled ${money(r['settled_usd'])} by statement(s) {r['statement_ids']}"
    if r["superseded_statement_ids"]:
        text += f", which replaced {r['superseded_statement_ids']} (superseded, not counted)"
    out = [text + "."]
    diff = x.get("statement_basis_difference_usd")
    if basis_def.startswith("revenue:") and diff:
        out.append(
            f"The statements report a basis of ${money(r['statement_basis_usd'])}, "
            f"${money(abs(diff))} {'more' if diff > 0 else 'less'} than the ledger's; at the "
            f"rate that accounts for ${money(x['basis_difference_effect_usd'])} of the "
            "variance."
        )
    arith = x.get("statement_arithmetic_difference_usd")
    if arith:
        out.append(
            f"The statements' amount differs by ${money(arith)} from their own basis at the "
            "contract rate."
        )
    return out


def _status(r: dict) -> str:
    status = r["status"]
    if status == "matched":
        return (
            f"Matched: variance ${money(r['variance_usd'])} is within the tolerance of "
            f"${money(r['tolerance_usd'])}."
        )
    if status in ("underpaid", "overpaid"):
        return (
            f"{status.capitalize()}: variance ${money(r['variance_usd'])} "
            f"({pct(r['variance_ratio'])}) exceeds the tolerance of ${money(r['tolerance_usd'])}."
        )
    if status == "pending":
        return f"Pending: no statement yet; payment is due by {plain(r['payment_due_date'])}."
    if status == "missing_settlement":
        return (
            f"Missing settlement: no statement, and payment was due by "
            f"{plain(r['payment_due_date'])}."
        )
    if status == "unexpected_settlement":
        return f"Unexpected settlement of ${money(r['settled_usd'])}."
    return ""
