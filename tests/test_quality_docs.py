"""A run's Data Docs site, built from real GX runs on Spark frames: it names no remote asset,
every local one is in the site, its pages carry the run id (not GX's `__none__`), it stays
small, a chart page gets the vendored Vega, retention keeps the newest N sites, and headless
Chromium with the network cut renders the validation list (bootstrap-table filled in)."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

from inference_ledger.quality.docs import site_root
from inference_ledger.quality.runner import Suite, build_data_docs, gx_module, run_frame_suites
from inference_ledger.settings import load_settings
from tests.test_report import _chromium, _chromium_args

RUN = "run-20260105T101500Z-d0c5d0"
SIZE_BOUND = 1_500_000  # bytes for this two-suite site; GX's own site was 5.4 MB a run


def _meta(check: str) -> dict:
    return {"check": check, "severity": "critical"}


@pytest.fixture(scope="module")
def outcomes(spark):
    """Two suites: `lake.usage_facts` fails twice (a null model, 5000 tokens over the bound of
    1000), `lake.fx_rates` passes."""
    e = gx_module().expectations
    usage = Suite(
        "lake.usage_facts",
        [
            e.ExpectColumnValuesToNotBeNull(column="model", meta=_meta("required")),
            e.ExpectColumnValuesToBeBetween(
                column="input_tokens", min_value=0, max_value=1000, meta=_meta("token_bounds")
            ),
        ],
    )
    fx = Suite("lake.fx_rates", [e.ExpectColumnValuesToBeUnique(column="currency")])
    usage_df = spark.createDataFrame(
        [("m1", 10), ("m2", 5000), (None, 3)], "model string, input_tokens long"
    )
    fx_df = spark.createDataFrame([("EUR",), ("GBP",)], "currency string")
    return run_frame_suites([(usage, usage_df), (fx, fx_df)])


@pytest.fixture(scope="module")
def site(outcomes, tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("docs_home")
    index = build_data_docs(home, RUN, outcomes)
    assert index == home / "data_docs" / RUN / "index.html"
    return index.parent


class _Refs(HTMLParser):
    """The `<title>` and every asset a page loads: script src, stylesheet/icon href, img src."""

    def __init__(self):
        super().__init__()
        self.assets, self.title, self._in_title = [], "", False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("script", "img") and a.get("src"):
            self.assets.append(a["src"])
        elif tag == "link" and a.get("href"):
            self.assets.append(a["href"])
        self._in_title = tag == "title"

    def handle_endtag(self, tag):
        self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data


def _refs(page: Path) -> _Refs:
    parser = _Refs()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def _pages(site: Path) -> dict[str, Path]:
    return {p.relative_to(site).as_posix(): p for p in sorted(site.rglob("*.html"))}


def test_site_pages_and_run_name(site, outcomes):
    pages = _pages(site)
    times = {o.key.run_id.run_time.strftime("%Y%m%dT%H%M%S.%fZ") for o in outcomes}
    batches = {o.key.batch_identifier for o in outcomes}
    assert len(times) == 2 and len(batches) == 2
    validations = sorted(p for p in pages if p.startswith("validations/"))
    assert [p.split("/")[:4] for p in validations] == [
        ["validations", "lake", "fx_rates", RUN],
        ["validations", "lake", "usage_facts", RUN],
    ]
    assert sorted(p for p in pages if not p.startswith("validations/")) == [
        "expectations/lake/fx_rates.html",
        "expectations/lake/usage_facts.html",
        "index.html",
    ]
    assert _refs(pages["index.html"]).title == f"Data Docs of run {RUN}"
    for name in validations:
        title = _refs(pages[name]).title
        suite = name.split("/")[2]
        assert title.startswith(f"Validations / lake.{suite} / {RUN} / "), title
        assert title.endswith(f" · Data Docs of run {RUN}"), title
    for page in pages.values():
        assert "__none__" not in page.read_text(encoding="utf-8")
    stored = [p.relative_to(site).parts[:8] for p in (site / "_gx").rglob("*.json")]
    assert all(RUN in parts for parts in stored if "validations" in parts)


def test_each_gate_adds_its_pages_and_the_index_lists_all(site, outcomes, tmp_path):
    """A run's gates build its site one after the other, each with its own outcomes: the site
    ends with the same pages as one build of them all, and the index lists every result."""
    for gate in ([outcomes[0]], [outcomes[1]]):
        index = build_data_docs(tmp_path, RUN, gate)
    assert sorted(_pages(index.parent)) == sorted(_pages(site))
    listed = index.read_text(encoding="utf-8")
    for o in outcomes:
        assert o.suite.name.split(".")[1] in listed
    assert listed.count("validations/lake/") == len(outcomes)


def test_site_loads_nothing_remote_and_every_local_asset_exists(site):
    for name, page in _pages(site).items():
        assets = _refs(page).assets
        assert len(assets) >= 12, (name, assets)  # 9 stylesheets, 6 scripts, icon, logo
        for ref in assets:
            assert not re.match(r"^(https?:)?//", ref), (name, ref)
            target = (page.parent / ref.split("?")[0]).resolve()
            assert target.is_file(), (name, ref)
            assert target.is_relative_to(site.resolve()), (name, ref)
    # What the vendored stylesheets load in turn: the woff2 fonts (the .ttf after each is a
    # fallback no current browser asks for; see docs_assets/README.md).
    for css in (site / "static" / "vendor").rglob("*.css"):
        for ref in re.findall(r"url\(([^)]+)\)", css.read_text(encoding="utf-8")):
            ref = ref.strip("'\"")
            assert ref.startswith(("data:", "../webfonts/")), (css, ref)
            if ref.endswith(".woff2"):
                assert (css.parent / ref).is_file(), (css, ref)


def test_site_is_small_and_has_no_chart_library_it_does_not_use(site):
    files = [p for p in site.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    assert size < SIZE_BOUND, size
    assert not [p for p in files if p.suffix == ".gif"]
    assert not (site / "static" / "fonts").exists()
    assert sorted(p.name for p in (site / "static" / "images").iterdir()) == [
        "favicon.ico",
        "logo-long.png",
    ]
    assert not (site / "static" / "vendor" / "vega").exists()


def test_site_root_matches_where_gx_writes_pages():
    assert site_root("ValidationResultsPageRenderer", "lake.usage_facts") == "../" * 5
    assert site_root("ValidationResultsPageRenderer", "a.b.c") == "../" * 6
    assert site_root("ExpectationSuitePageRenderer", "lake.usage_facts") == "../../"
    assert site_root("SiteIndexPageRenderer", None) == "./"


def test_a_chart_page_gets_vega_and_loads_it_locally(spark, tmp_path):
    e = gx_module().expectations
    kl = Suite(
        "lake.models",
        [
            e.ExpectColumnKLDivergenceToBeLessThan(
                column="model",
                partition_object={"values": ["a", "b"], "weights": [0.5, 0.5]},
                threshold=0.1,
            )
        ],
    )
    df = spark.createDataFrame([("a",), ("a",), ("b",)], "model string")
    site = build_data_docs(tmp_path, "run-chart", run_frame_suites([(kl, df)])).parent
    vega = site / "static" / "vendor" / "vega"
    assert sorted(p.name for p in vega.glob("*.js")) == [
        "vega-embed.min.js",
        "vega-lite.min.js",
        "vega.min.js",
    ]
    suite_page = site / "expectations" / "lake" / "models.html"
    assert "vegaEmbed(" in suite_page.read_text(encoding="utf-8")
    assert [r for r in _refs(suite_page).assets if "/vega/" in r] == [
        "../../static/vendor/vega/vega.min.js",
        "../../static/vendor/vega/vega-lite.min.js",
        "../../static/vendor/vega/vega-embed.min.js",
    ]


def _age(site: Path, seconds_ago: int) -> None:
    index = site / "index.html"
    stamp = index.stat().st_mtime - seconds_ago
    os.utime(index, (stamp, stamp))


def test_retention_keeps_the_newest_sites(outcomes, tmp_path):
    runs = ["run-a", "run-b", "run-c"]
    for age, run in zip((300, 200, 100), runs, strict=True):
        _age(build_data_docs(tmp_path, run, outcomes).parent, age)
    data_docs = tmp_path / "data_docs"
    assert sorted(d.name for d in data_docs.iterdir()) == runs  # keep_runs=0 keeps all
    build_data_docs(tmp_path, "run-d", outcomes, keep_runs=2)
    assert sorted(d.name for d in data_docs.iterdir()) == ["run-c", "run-d"]
    # A rebuild of an older run (a retried step) keeps that run: it is the newest build now.
    _age(data_docs / "run-d", 50)
    build_data_docs(tmp_path, "run-c", outcomes, keep_runs=1)
    assert sorted(d.name for d in data_docs.iterdir()) == ["run-c"]


def test_keep_runs_setting(monkeypatch):
    monkeypatch.delenv("LEDGER_DATA_DOCS_KEEP_RUNS", raising=False)
    assert load_settings().data_docs_keep_runs == 30
    monkeypatch.setenv("LEDGER_DATA_DOCS_KEEP_RUNS", "5")
    assert load_settings().data_docs_keep_runs == 5
    monkeypatch.setenv("LEDGER_DATA_DOCS_KEEP_RUNS", "0")
    assert load_settings().data_docs_keep_runs == 0
    monkeypatch.setenv("LEDGER_DATA_DOCS_KEEP_RUNS", "-1")
    with pytest.raises(ValueError, match="LEDGER_DATA_DOCS_KEEP_RUNS must be a whole number"):
        load_settings()


def test_index_renders_offline_in_headless_chromium(site):
    """bootstrap-table builds the validation list from a JS array: its rows (`data-index`)
    exist only if the vendored jQuery, Bootstrap and bootstrap-table ran; every host name is
    unresolvable, so nothing could have come from a CDN."""
    binary = _chromium()
    with tempfile.TemporaryDirectory(prefix="ledger-chromium-") as profile:
        done = subprocess.run(
            [
                *_chromium_args(binary, profile),
                "--host-resolver-rules=MAP * ~NOTFOUND",
                "--virtual-time-budget=5000",
                "--dump-dom",
                (site / "index.html").as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    rows = re.findall(r'<tr class="clickable-row" data-href="([^"]+)" data-index="\d+">', dom)
    assert [h.split("/")[:4] for h in rows if h.startswith("validations/")] == [
        ["validations", "lake", "fx_rates", RUN],
        ["validations", "lake", "usage_facts", RUN],
    ]
    assert [h for h in rows if h.startswith("expectations/")] == [
        "expectations/lake/fx_rates.html",
        "expectations/lake/usage_facts.html",
    ]
    assert all((site / h).is_file() for h in rows)
    assert dom.count("Showing 1 to 2 of 2 rows") == 2  # both tabs
