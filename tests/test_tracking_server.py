"""MLflow tracking servers that cannot be reached fail fast, with a clear error."""

import socket

import numpy as np
import pytest

from skestimators import NetRegressor

from .conftest import FAST

pytest.importorskip("mlflow")

from skestimators.tracking import MLflowLogger  # noqa: E402
from skestimators.tracking._mlflow import check_reachable  # noqa: E402


def _closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def no_proxy(monkeypatch):
    for scheme in ("http", "https", "all"):
        for name in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY"):
            monkeypatch.delenv(name, raising=False)


def test_unreachable_server_refuses_the_fit_at_once(no_proxy):
    uri = f"http://127.0.0.1:{_closed_port()}"
    X, y = np.random.RandomState(0).normal(size=(40, 3)), np.arange(40.0)
    model = NetRegressor(**FAST, callbacks=[("mlflow", MLflowLogger(uri))])
    with pytest.raises(ConnectionError, match=f"cannot reach .*{uri}"):
        model.fit(X, y)
    assert not hasattr(model, "net_")  # nothing half-fitted


def test_listening_server_and_other_stores_pass(no_proxy, tmp_path):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        check_reachable(f"http://127.0.0.1:{server.getsockname()[1]}")
    check_reachable(f"sqlite:///{tmp_path}/mlflow.db")
    check_reachable("databricks")
    check_reachable(f"file://{tmp_path}")


@pytest.mark.parametrize("variable", ["http_proxy", "all_proxy"])
def test_server_behind_a_proxy_is_left_to_mlflow(monkeypatch, no_proxy, variable):
    monkeypatch.setenv(variable, "http://proxy.invalid:3128")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)

    def probe(*args, **kwargs):
        raise OSError("probed")  # a direct connection: refused here

    monkeypatch.setattr(socket, "create_connection", probe)
    check_reachable("http://tracking.internal:5000")
    monkeypatch.setenv("no_proxy", "tracking.internal")
    with pytest.raises(ConnectionError, match="probed"):
        check_reachable("http://tracking.internal:5000")  # bypassed: probed


def test_credentials_stay_out_of_the_error(no_proxy):
    uri = f"http://user:s3cret@127.0.0.1:{_closed_port()}"
    with pytest.raises(ConnectionError, match="cannot reach") as error:
        check_reachable(uri)
    assert "s3cret" not in str(error.value) and "127.0.0.1" in str(error.value)


def test_bad_port_is_named(no_proxy):
    with pytest.raises(ConnectionError, match="cannot reach"):
        check_reachable("http://localhost:99999")


def test_a_database_server_down_refuses_the_fit_at_once(no_proxy):
    # Only HTTP(S) servers were tried: a PostgreSQL URL blocked the fit for
    # about 100 s of retries before a raw SQLAlchemy error.
    uri = f"postgresql://user:secret@127.0.0.1:{_closed_port()}/runs"
    with pytest.raises(ConnectionError, match="cannot reach the database") as error:
        check_reachable(uri)
    assert "secret" not in str(error.value)
    check_reachable("postgresql:///runs")  # a local socket: left to MLflow


def test_an_unknown_scheme_is_named(no_proxy, tmp_path):
    # "sqllite://" gave MLflow's message about the model registry.
    with pytest.raises(ValueError, match="scheme 'sqllite', which MLflow does not"):
        check_reachable(f"sqllite:///{tmp_path}/mlflow.db")
