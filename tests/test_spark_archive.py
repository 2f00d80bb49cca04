"""The Spark JVMs' class-data archive (inference_ledger/spark_archive.py): the options that map
it, where it is looked for, and a real session started by get_spark loading Spark's classes
from it (and from the jars without it)."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from inference_ledger import spark_archive
from inference_ledger.settings import load_settings
from inference_ledger.spark import java_options

QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"


def test_the_options_name_the_archive_only_when_the_file_is_there(tmp_path):
    archive = tmp_path / "spark.jsa"
    assert spark_archive.java_options(None) == ""
    assert spark_archive.java_options(archive) == ""
    archive.write_bytes(b"\0")
    assert spark_archive.java_options(archive) == f"-XX:SharedArchiveFile={archive} {QUIET}"


def test_the_setting_is_the_venvs_archive_unless_set_or_off(monkeypatch, tmp_path):
    monkeypatch.delenv("LEDGER_SPARK_CLASS_ARCHIVE", raising=False)
    expected = Path(sys.prefix) / "share/inference-ledger" / f"spark-{version('pyspark')}.jsa"
    assert load_settings().spark_class_archive == expected
    monkeypatch.setenv("LEDGER_SPARK_CLASS_ARCHIVE", str(tmp_path / "other.jsa"))
    assert load_settings().spark_class_archive == tmp_path / "other.jsa"
    monkeypatch.setenv("LEDGER_SPARK_CLASS_ARCHIVE", "off")
    assert load_settings().spark_class_archive is None


def test_the_archive_comes_after_the_projects_options_and_before_the_users(monkeypatch, tmp_path):
    archive = tmp_path / "spark.jsa"
    archive.write_bytes(b"\0")
    monkeypatch.setenv("LEDGER_SPARK_CLASS_ARCHIVE", str(archive))
    monkeypatch.setenv("LEDGER_SPARK_JAVA_OPTIONS", "-Xss4m")
    driver, executor = java_options(load_settings())
    tail = f"-XX:-DontCompileHugeMethods -XX:SharedArchiveFile={archive} {QUIET} -Xss4m"
    assert executor == tail
    assert driver.startswith("-Dlog4j.configurationFile=") and driver.endswith(" " + tail)


def _classes_loaded(tmp_path: Path, archive: str) -> list[str]:
    """The class-load log of a session that get_spark starts in a fresh process."""
    log = tmp_path / f"classes-{Path(archive).name}.log"
    env = {
        **os.environ,
        "LEDGER_HOME": str(tmp_path / "home"),
        "LEDGER_SPARK_CLASS_ARCHIVE": archive,
        "LEDGER_SPARK_JAVA_OPTIONS": f"-Xlog:class+load=info:file={log}",
    }
    script = "from inference_ledger.spark import get_spark; print(get_spark('t').range(3).count())"
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["3"]
    return log.read_text().splitlines()


@pytest.mark.slow
def test_a_session_from_get_spark_maps_sparks_classes_from_the_archive(tmp_path):
    """`make setup` builds the archive; a checkout without one builds it here."""
    archive = load_settings().spark_class_archive
    if archive is None or not archive.is_file():
        archive = spark_archive.build(tmp_path / "spark.jsa")
    mapped = _classes_loaded(tmp_path, str(archive))
    top = [line for line in mapped if line.endswith("source: shared objects file (top)")]
    assert any(" org.apache.spark.SparkContext source: shared objects file (top)" in x for x in top)
    assert len(top) > 5000, len(top)
    plain = _classes_loaded(tmp_path, "off")
    assert not any("(top)" in line for line in plain)
    assert any(" org.apache.spark.SparkContext source: file:" in x for x in plain)
