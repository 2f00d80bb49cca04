"""The run's Data Docs as an offline site: GX's pages with vendored assets, titled by run.

GX 1.x writes CDN URLs (jQuery, Bootstrap, bootstrap-table, Font Awesome, Vega) straight into
its page templates, and its plugin directory is searched *after* its own templates, so it
cannot replace them. The views here put `docs_templates/` first in the Jinja loader of GX's
own view classes (`DefaultJinjaView` builds `self.env` with a `ChoiceLoader`); those templates
load the same libraries from the site's `static/vendor/`, copied from `docs_assets/vendor/`
after each build (sources and licenses: `docs_assets/README.md`).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from great_expectations.render.view import DefaultJinjaPageView
from jinja2 import ChoiceLoader, FileSystemLoader

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).parent / "docs_templates"
VENDOR = Path(__file__).parent / "docs_assets" / "vendor"
# Vega (about 0.8 MB) draws GX's charts; our suites' pages have none, so a site gets it only
# when one of its pages loads it.
CHARTS = "vega"
# GX copies its whole static folder into every site: walkthrough GIFs (3.3 MB) and pictures
# for the how-to modal we switch off, and fonts no stylesheet of the site uses. The pages here
# show only these images (docs_templates/top_navbar.j2, favicon.j2).
USED_IMAGES = {"favicon.ico", "logo-long.png"}
UNUSED_STATIC_DIRS = ("fonts",)


def site_root(renderer_type: str | None, suite_name: str | None) -> str:
    """The relative path from a page to the site root, from where GX's HtmlSiteStore writes
    it: `validations/<suite parts>/<run name>/<run time>/<batch>.html`,
    `expectations/<suite parts>.html`, `index.html` (the depths GX's navbar uses)."""
    renderer_type = renderer_type or ""
    dots = (suite_name or "").count(".")
    if "ValidationResults" in renderer_type or "ProfilingResults" in renderer_type:
        return "../" * (dots + 4)
    if "ExpectationSuite" in renderer_type:
        return "../" * (dots + 1)
    return "./"


def uses_graphs(content) -> bool:
    """Whether a rendered document (its JSON dict) holds a GX chart (a `graph` block)."""
    if isinstance(content, dict):
        if content.get("content_block_type") == "graph":
            return True
        return any(uses_graphs(v) for v in content.values())
    if isinstance(content, list):
        return any(uses_graphs(v) for v in content)
    return False


class LedgerPageView(DefaultJinjaPageView):
    """GX's page view, with the ledger's templates ahead of GX's and the run id to show."""

    def __init__(
        self, run_id: str, custom_styles_directory=None, custom_views_directory=None
    ) -> None:
        super().__init__(custom_styles_directory, custom_views_directory)
        self.env.loader = ChoiceLoader([FileSystemLoader(str(TEMPLATES)), self.env.loader])
        self.env.globals.update(ledger_run_id=run_id, site_root=site_root, uses_graphs=uses_graphs)


class LedgerIndexPageView(LedgerPageView):
    _template = "index_page.j2"


def site_config(root: Path, run_id: str) -> dict:
    """The GX data docs site config: our views for every section and the index, no how-to
    buttons (their modal needs the GIFs and a CDN)."""

    def view(class_name: str) -> dict:
        return {"module_name": __name__, "class_name": class_name, "run_id": run_id}

    def section(renderer: str) -> dict:
        return {"renderer": {"class_name": renderer}, "view": view("LedgerPageView")}

    return {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(root),
        },
        "site_section_builders": {
            "expectations": section("ExpectationSuitePageRenderer"),
            "validations": section("ValidationResultsPageRenderer"),
            "profiling": section("ProfilingResultsPageRenderer"),
        },
        "site_index_builder": {
            "class_name": "DefaultSiteIndexBuilder",
            "view": view("LedgerIndexPageView"),
        },
    }


def finish_site(root: Path) -> None:
    """After GX has built the site: vendored assets in, GX's unused static files out."""
    static = root / "static"
    for image in (static / "images").iterdir():
        if image.name not in USED_IMAGES:
            image.unlink()
    for name in UNUSED_STATIC_DIRS:
        shutil.rmtree(static / name, ignore_errors=True)
    vendor = static / "vendor"
    shutil.copytree(VENDOR, vendor, dirs_exist_ok=True, ignore=shutil.ignore_patterns(CHARTS))
    charts = f"static/vendor/{CHARTS}/"
    if any(charts in page.read_text(encoding="utf-8") for page in root.rglob("*.html")):
        shutil.copytree(VENDOR / CHARTS, vendor / CHARTS, dirs_exist_ok=True)
    else:
        shutil.rmtree(vendor / CHARTS, ignore_errors=True)


def prune_sites(data_docs: Path, keep: int, current: str) -> list[str]:
    """Delete all but the `keep` most recently built run sites under `data_docs` (0 keeps
    all); the current run's site always stays. Returns the run ids removed."""
    if keep <= 0 or not data_docs.is_dir():
        return []
    sites = [d for d in data_docs.iterdir() if d.is_dir() and (d / "index.html").exists()]
    sites.sort(key=lambda d: ((d / "index.html").stat().st_mtime, d.name), reverse=True)
    kept = {d.name for d in sites[:keep]} | {current}
    removed = []
    for d in sites:
        if d.name not in kept:
            shutil.rmtree(d)
            removed.append(d.name)
    if removed:
        log.info("Data Docs retention (%d runs): removed %s", keep, ", ".join(sorted(removed)))
    return sorted(removed)
