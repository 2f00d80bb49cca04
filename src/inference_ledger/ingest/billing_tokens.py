"""Token lines of a bill: a token meter's model, direction and cache action, from FOCUS
SkuPriceDetails or else from the meter's name."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from inference_ledger.ingest.billing_columns import service_category_map

# Azure OpenAI / Foundry Models token meters, lowercased: `<model> [shortco|longco] [batch|pp|
# dev ft|ft] [cached|cchd|cd] <inp|inpt|input|outp|outpt|opt|output> [deployment] [1K|1M]
# [Tokens]`, words separated by spaces or hyphens, some run together (`gpt-4o-0513 Inp regnl 1K
# Tokens`, `GPT 5 cchd Inpt Glbl 1M Tokens`, `gpt-4o-mini-0718-Outp-regnl`, `5.4 cd inp Gl`,
# `gpt 4o mini0718 BatchOutp DataZone Tokens`, `5.5 ShortCo inp Gl 1M Tokens`,
# `Phi-4-reasoning-Output`). One regexp_replace turns a match into
# `model<SEP>cache word<SEP>direction`.
METER_SEP = "\u0001"
METER_PATTERN = (
    r"^(.+?)[\s-]+(?:(?:shortco|longco)[\s-]+)?(?:(?:batch|pp|dev[\s-]+ft|ft)[\s-]*)?"
    r"(?:(cached|cchd|cd|cache|cach)[\s-]+)?"
    r"(inp|inpt|input|outp|outpt|opt|output)(?:[\s-].*)?$"
)
# A cache write / cache read named anywhere in a meter (`Cache Write Input Tokens`,
# `gpt 4o 1120 cached Inp regnl Tokens`): the cache action when the bill states none.
CACHE_WRITE_PATTERN = r"(^|[\s-])(cache|cached|cach|cchd)[\s-]*(write|writes|creation)([\s-]|$)"
CACHE_READ_PATTERN = r"(^|[\s-])(cached|cchd|cd|cach|cache[\s-]*read|cache[\s-]*hit)([\s-]|$)"
# Units of measure Azure writes on token meters besides `... Tokens`: a block of tokens
# (`1K`, `1M`, `10K`), as the price sheet and cost details give them.
TOKEN_BLOCK_UNIT = r"^\d+\s*[km]?$"


def token_meter(is_focus: Column) -> Column:
    """A token meter's name split into [model, cache word, direction] (one regex pass); a
    one-element array for a meter that names no direction; null for other lines. A line is
    a token meter when its unit or meter name says tokens, or when an AI service's meter
    names a direction in a block unit (`gpt 4.1 Inp regnl` in `1K`). FOCUS lines that carry
    a ModelId in SkuPriceDetails are described by it, not by their meter name."""
    meter = F.lower(F.trim(F.col("meter_name")))
    unit = F.lower(F.trim(F.coalesce(F.col("unit"), F.lit(""))))
    split = F.split(
        F.regexp_replace(meter, METER_PATTERN, f"$1{METER_SEP}$2{METER_SEP}$3"), METER_SEP
    )
    ai_service = (
        service_category_map()[F.trim(F.col("service_name"))] == "AI and Machine Learning"
    ) | (F.trim(F.col("service_category")) == "AI and Machine Learning")
    tokens = (
        unit.contains("token")
        | F.coalesce(meter, F.lit("")).endswith("tokens")
        | (ai_service & unit.rlike(TOKEN_BLOCK_UNIT) & (F.size(split) == 3))
    )
    has_model = F.nullif(F.trim(F.col("_p_spd")["ModelId"]), F.lit("")).isNotNull()
    return F.when(tokens & ~(is_focus & has_model), split)


def token_columns() -> list[Column]:
    """model_id, token_direction, token_cache_action: FOCUS SkuPriceDetails (ModelId,
    TokenDirection Input/Output, TokenCacheAction Uncached/Read/Write; some producers write
    TokenType Input/Output/CacheRead/CacheWrite instead), else the meter name: its model and
    direction, and a cache write or read named in it (an Azure input meter naming neither is
    uncached)."""
    spd, meter = F.col("_p_spd"), F.col("_p_meter")
    parsed = F.size(meter) == 3
    meter_dir = F.when(parsed, F.when(meter[2].startswith("i"), "input").otherwise("output"))
    words = F.lower(F.trim(F.coalesce(F.col("meter_name"), F.col("sku_description"))))
    named_cache = (
        F.when(words.rlike(CACHE_WRITE_PATTERN), F.lit("write"))
        .when(words.rlike(CACHE_READ_PATTERN), F.lit("read"))
        .when(parsed & (meter[1] != ""), F.lit("read"))
    )
    spd_model = F.nullif(F.trim(spd["ModelId"]), F.lit(""))
    # A FOCUS token line (a ModelId) whose SkuPriceDetails names no direction: its SkuMeter
    # (`Input Tokens`, `Cache Read Input Tokens`) does.
    named_dir = F.when(
        spd_model.isNotNull() | meter.isNotNull(),
        F.when(words.rlike(r"(^|[\s-])(output|outp|outpt)([\s-]|$)"), F.lit("output")).when(
            words.rlike(r"(^|[\s-])(input|inp|inpt)([\s-]|$)"), F.lit("input")
        ),
    )
    kind = F.regexp_replace(
        F.lower(F.trim(F.coalesce(spd["TokenDirection"], spd["TokenType"]))), r"[\s_-]", ""
    )
    spd_dir = F.when(kind.isin("input", "output"), kind).when(kind.startswith("cache"), "input")
    spd_cache = F.lower(F.trim(spd["TokenCacheAction"]))
    spd_cache = F.coalesce(
        F.when(spd_cache.isin("uncached", "read", "write"), spd_cache),
        F.when(kind == "cacheread", F.lit("read")).when(kind == "cachewrite", F.lit("write")),
    )
    direction = F.coalesce(spd_dir, meter_dir, named_dir)
    return [
        F.coalesce(spd_model, F.when(parsed, F.regexp_replace(meter[0], r"[\s-]+", "-"))).alias(
            "model_id"
        ),
        direction.alias("token_direction"),
        F.coalesce(
            spd_cache,
            F.when(direction == "input", F.coalesce(named_cache, F.when(parsed, "uncached"))),
        ).alias("token_cache_action"),
    ]
