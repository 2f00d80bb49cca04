"""docker-compose.yml, checked without Docker: every service, pinned image, mounted path, port
and the environment the DAGs need are there, and no secret is written inline (they all come
from the git-ignored .env, whose template .env.example is committed)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from inference_ledger import orchestration

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
DOCKERFILE = REPO / "docker" / "Dockerfile"

AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
}
# Services that run a Spark driver or executors: they share the ledger's paths.
SPARK_SIDE = [*AIRFLOW_SERVICES, "airflow-init", "spark-worker"]
SECRET_NAME = re.compile(
    r"PASSWORD|SECRET|FERNET|TOKEN|_KEY$|WEBHOOK|CONNECTION_STRING|^AIRFLOW_CONN_(WASB|AWS)", re.I
)
VAR = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def env_example() -> dict[str, str]:
    out = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's variable substitution: ${VAR}, ${VAR:-default}, ${VAR:?error}, $$."""

    def one(m: re.Match) -> str:
        name, op, arg = m.group("name"), m.group("op"), m.group("arg")
        if env.get(name):
            return env[name]
        if op in (":-", "-"):
            return arg
        if op in (":?", "?"):
            raise KeyError(f"{name} is required: {arg}")
        return ""

    return VAR.sub(one, value).replace("$$", "$")


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


MOUNT = re.compile(r"^(?P<source>\$\{[^}]*\}|[^:]+):(?P<target>/[^:]*)(?::(?P<mode>ro|rw))?$")


def mounts(service: dict) -> dict[str, str]:
    """target -> source of a service's volumes (short syntax)."""
    out = {}
    for spec in service.get("volumes") or []:
        m = MOUNT.match(spec)
        assert m, f"unexpected volume syntax {spec!r}"
        out[m.group("target")] = m.group("source")
    return out


def test_every_service_is_there(services):
    assert set(services) == {
        "postgres",
        "airflow-init",
        *AIRFLOW_SERVICES,
        "spark-master",
        "spark-worker",
        "ledger-web",
        "azurite",
    }
    # The emulator only starts when asked for (--profile azurite).
    assert services["azurite"]["profiles"] == ["azurite"]
    for name, command in AIRFLOW_SERVICES.items():
        assert services[name]["command"] == command, name
        env = environment(services[name])
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        assert services[name]["depends_on"]["airflow-init"] == {
            "condition": "service_completed_successfully"
        }
    init = "\n".join(services["airflow-init"]["command"])
    for step in ("airflow db migrate", "airflow users create", "ledger db migrate"):
        assert step in init
    # The pool the ingest DAGs' lake writers share exists before the scheduler starts.
    assert f"airflow pools set {orchestration.LAKE_POOL} 1" in init
    master = services["spark-master"]["command"]
    assert "org.apache.spark.deploy.master.Master" in master
    worker = services["spark-worker"]["command"]
    assert "org.apache.spark.deploy.worker.Worker" in worker
    assert "spark://spark-master:7077" in worker


def test_images_are_pinned(services):
    for name, service in services.items():
        image = service["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest", f"{name}: {image} is not pinned"
        assert re.match(r"\d+\.\d+", tag), f"{name}: {image} has no version tag"
    assert re.fullmatch(r"postgres:16\.\d+(-\w+)?", services["postgres"]["image"])
    assert re.fullmatch(
        r"apache/spark:4\.1\.\d+-scala2\.13-java17(-python3)?-ubuntu",
        services["spark-master"]["image"],
    )
    # The project image: built from docker/Dockerfile, on the Airflow release pyproject pins.
    built = [n for n, s in services.items() if "build" in s]
    assert sorted(built) == sorted([*AIRFLOW_SERVICES, "airflow-init", "spark-worker"])
    for name in built:
        assert services[name]["build"]["dockerfile"] == "docker/Dockerfile"
        assert (REPO / services[name]["build"]["context"] / "docker" / "Dockerfile").is_file()
    base = re.search(r"^FROM (\S+)", DOCKERFILE.read_text(), re.M).group(1)
    pinned = re.search(r'"apache-airflow==([\d.]+)"', (REPO / "pyproject.toml").read_text())
    assert base == f"apache/airflow:{pinned.group(1)}-python3.11"


def test_the_image_installs_the_spark_provider_without_pyspark_client():
    # apache-airflow-providers-apache-spark requires pyspark-client, which overwrites files of
    # the full pyspark (see docs/deploy.md): the image and `make setup` install the provider
    # with --no-deps, at the same version, and check the pyspark version they end with.
    text = DOCKERFILE.read_text()
    install = [line for line in text.splitlines() if "pip install" in line]
    provider = [line for line in install if "providers-apache-spark" in line]
    assert len(provider) == 1 and "--no-deps" in provider[0], provider
    assert not any("pyspark-client" in line for line in install)
    assert "pyspark.__version__ == '4.1.4'" in text
    pinned = re.search(r"apache-airflow-providers-apache-spark==[\d.]+", provider[0]).group(0)
    makefile = (REPO / "Makefile").read_text()
    assert f"SPARK_PROVIDER := {pinned}" in makefile
    assert "--no-deps $(SPARK_PROVIDER)" in makefile


def test_mounted_paths_exist_and_match_across_services(services, compose):
    env = env_example()
    named = set(compose.get("volumes") or {})
    for name, service in services.items():
        for target, source in mounts(service).items():
            resolved = interpolate(source, env)
            assert target.startswith("/"), f"{name}: {target}"
            if resolved.startswith((".", "/")):
                assert (REPO / resolved).exists(), f"{name}: {source} -> {resolved} missing"
            else:
                assert resolved in named, f"{name}: volume {resolved} not declared"
    expected = {
        "/opt/ledger/dags": "./dags",
        "/opt/ledger/jobs": "./jobs",
        "/opt/ledger/sql": "./sql",
        "/var/lib/ledger": "ledger-home",
        "/var/lib/ledger/lake": "ledger-lake",
    }
    for name in SPARK_SIDE:
        m = mounts(services[name])
        for target, source in expected.items():
            assert m.get(target) == source, f"{name}: {target} is {m.get(target)}"
        assert interpolate(m["/var/lib/ledger/landing"], env) == "./docker/landing"
        service_env = environment(services[name])
        assert service_env["LEDGER_HOME"] == "/var/lib/ledger"
        assert interpolate(service_env["LEDGER_LANDING"], env) == "/var/lib/ledger/landing"
        assert service_env["LEDGER_JOBS_DIR"] == "/opt/ledger/jobs"
    for name in AIRFLOW_SERVICES:
        assert environment(services[name])["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/ledger/dags"
    init = mounts(services["postgres"])["/docker-entrypoint-initdb.d"]
    assert init.startswith("./docker/postgres/initdb")


def test_ports(services):
    def published(name):
        return {p.rsplit(":", 1)[1]: p for p in services[name].get("ports", [])}

    assert set(published("postgres")) == {"5432"}
    assert set(published("airflow-apiserver")) == {"8080"}
    assert set(published("spark-master")) == {"7077", "8080"}
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name}: {port} is published on every interface"
    master = services["spark-master"]["command"]
    assert master[master.index("--port") + 1] == "7077"


def test_the_dags_environment(services):
    env = env_example()
    for name in SPARK_SIDE:
        e = environment(services[name])
        for var in ("LEDGER_DATABASE_URL", "LEDGER_HOME", "LEDGER_SPARK_MASTER", "PYSPARK_PYTHON"):
            assert e.get(var), f"{name}: {var} missing"
        assert e["LEDGER_SPARK_MASTER"] == "spark://spark-master:7077"
        url = interpolate(e["LEDGER_DATABASE_URL"], env)
        assert url == "postgresql+psycopg2://ledger_app:change-me@postgres:5432/ledger"
    for name in [*AIRFLOW_SERVICES, "airflow-init"]:
        e = environment(services[name])
        # The spark_default connection resolves to the master's service and port.
        import json
        from types import SimpleNamespace

        conn = json.loads(e["AIRFLOW_CONN_SPARK_DEFAULT"])
        target = orchestration.spark_target(SimpleNamespace(**conn))
        assert target.master == "spark://spark-master:7077"
        meta = interpolate(e["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], env)
        assert meta == "postgresql+psycopg2://airflow:change-me@postgres:5432/airflow"
    # Warehouse and Airflow metadata: separate databases and users, both created at init.
    pg = environment(services["postgres"])
    assert {k for k in pg if k.startswith(("AIRFLOW_DB_", "LEDGER_DB_"))} == {
        f"{p}_{s}" for p in ("AIRFLOW_DB", "LEDGER_DB") for s in ("NAME", "USER", "PASSWORD")
    }
    script = (REPO / "docker/postgres/initdb/10-databases.sh").read_text()
    for statement in (
        'CREATE DATABASE :"airflow_db" OWNER :"airflow_user"',
        'CREATE DATABASE :"ledger_db" OWNER :"ledger_user"',
        "IN ROLE ledger_loader",
    ):
        assert statement in script


def test_no_secret_is_inline(compose, services):
    required = set()
    for name, service in services.items():
        for key, value in environment(service).items():
            for m in VAR.finditer(value):
                if SECRET_NAME.search(m.group("name")) and m.group("op") in (":?", "?", None):
                    required.add(m.group("name"))
            if SECRET_NAME.search(key):
                # A password-like variable is exactly one reference to .env, nothing else.
                assert VAR.fullmatch(value), f"{name}: {key}={value!r} is not ${{VAR}} from .env"
                m = VAR.fullmatch(value)
                assert m.group("op") != ":-" or m.group("arg") == "", f"{name}: {key} default"
            # Credentials inside URLs: user and password are references too.
            for cred in re.finditer(r"://([^@/\s]+)@", value):
                user, _, password = cred.group(1).partition(":")
                assert VAR.fullmatch(user) and VAR.fullmatch(password), f"{name}: {key}"
    # Every secret the file needs is in the template, with a placeholder, not a value.
    example = env_example()
    assert required <= set(example), required - set(example)
    for key in required:
        assert example[key] in ("change-me", ""), f".env.example: {key} has a value"
    # ...and .env itself is never committed.
    assert ".env" in (REPO / ".gitignore").read_text().split()
    tracked = subprocess.run(
        ["git", "ls-files", ".env"], cwd=REPO, capture_output=True, text=True
    ).stdout
    assert tracked.strip() == ""


def test_the_landing_folder_ships_empty():
    landing = REPO / "docker" / "landing"
    assert (landing / "README.md").is_file()
    assert (landing / ".gitignore").read_text().split()[0] == "*"


def test_reports_are_served_read_only_on_loopback(services):
    web = services["ledger-web"]
    assert web["image"].startswith("nginx:") and web["image"].endswith("-alpine")
    assert "ledger-home:/srv/ledger:ro" in web["volumes"]
    assert all(v.endswith(":ro") for v in web["volumes"])
    assert web["read_only"] is True
    assert web["ports"] == ["127.0.0.1:${LEDGER_WEB_PORT:-8088}:80"]
    conf = (REPO / "docker" / "web" / "default.conf").read_text()
    assert "root /srv/ledger;" in conf and "location /reports/" in conf
    assert "location /data_docs/" in conf
