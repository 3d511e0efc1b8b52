"""Two processes share one OptunaSearchCV study on a throwaway PostgreSQL server.

Skipped unless the server binaries (``initdb``, ``pg_ctl``: Debian's
``postgresql`` package puts them in /usr/lib/postgresql/<version>/bin) and
``psycopg`` are installed. PostgreSQL refuses to run as root: under root the
server runs as the ``postgres`` user (created by the Debian package).
"""

import glob
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("psycopg", reason="needs the postgres extra")
pytest.importorskip("sqlalchemy", reason="needs the postgres extra")
optuna = pytest.importorskip("optuna", reason="needs optuna")

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.xdist_group("postgres")


def server_binary(name):
    found = shutil.which(name)
    if found:
        return found

    def version(path):
        major = Path(path).parts[-3]
        return int(major) if major.isdigit() else 0

    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=version)
    return candidates[-1] if candidates else None


def as_server_user(command):
    """``command`` run as a non-root user when we are root."""
    if os.geteuid() != 0:
        return command
    if shutil.which("runuser"):
        return ["runuser", "-u", "postgres", "--", *command]
    return ["su", "postgres", "-s", "/bin/sh", "-c", shlex.join(command)]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    initdb, pg_ctl = server_binary("initdb"), server_binary("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found")
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root without a 'postgres' user to run the server")
    base = Path(tempfile.mkdtemp(prefix="skestimators-pg-"))
    if os.geteuid() == 0:
        os.chown(base, user.pw_uid, user.pw_gid)
    data, log, port = base / "data", base / "server.log", free_port()
    run = {"check": True, "capture_output": True, "text": True, "timeout": 120}
    try:
        subprocess.run(
            as_server_user(
                [
                    initdb,
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ]
            ),
            **run,
        )
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off"
        subprocess.run(
            as_server_user(
                [
                    pg_ctl,
                    "-D",
                    str(data),
                    "-l",
                    str(log),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    options,
                    "start",
                ]
            ),
            **run,
        )
    except subprocess.CalledProcessError as exc:
        text = log.read_text() if log.exists() else ""
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {exc.stderr}\n{text}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            as_server_user([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(base, ignore_errors=True)


WORKER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from optuna.distributions import FloatDistribution
    from sklearn.datasets import make_classification
    from skestimators import NetClassifier
    from skestimators.model_selection import OptunaSearchCV

    url, ready, me = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    (ready / me).touch()
    deadline = time.time() + 60
    while len(list(ready.iterdir())) < 2 and time.time() < deadline:
        time.sleep(0.05)  # start together, so that both share the trials
    X, y = make_classification(200, 8, random_state=0)
    search = OptunaSearchCV(
        NetClassifier(max_epochs=4, device="cpu", random_state=0),
        {"lr": FloatDistribution(1e-3, 1e-1, log=True)},
        n_trials=8, cv=2, storage=url, study_name="shared",
        random_state=int(me), refit=False,
    ).fit(X, y)
    print(search.n_trials_)
""")


def test_two_processes_share_one_study(postgres_url, tmp_path):
    ready = tmp_path / "ready"
    ready.mkdir()
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, postgres_url, str(ready), str(i)],
            cwd=ROOT,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(2)
    ]
    try:
        for worker in workers:
            _, err = worker.communicate(timeout=300)
            assert worker.returncode == 0, err[-3000:]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    study = optuna.load_study(study_name="shared", storage=postgres_url)
    finished = [t for t in study.trials if t.state.is_finished()]
    assert 8 <= len(finished) <= 9  # each process may finish one trial too many
    assert len({t.user_attrs["worker"] for t in finished}) == 2
    assert all(t.intermediate_values for t in finished)  # epoch reports stored

    # A third run of the same study has nothing left to do.
    from optuna.distributions import FloatDistribution
    from sklearn.datasets import make_classification

    from skestimators import NetClassifier
    from skestimators.model_selection import OptunaSearchCV

    X, y = make_classification(200, 8, random_state=0)
    search = OptunaSearchCV(
        NetClassifier(max_epochs=4, device="cpu", random_state=0),
        {"lr": FloatDistribution(1e-3, 1e-1, log=True)},
        n_trials=8,
        cv=2,
        storage=postgres_url,
        study_name="shared",
    ).fit(X, y)
    assert search.n_trials_ == len(finished)
    assert search.best_score_ == study.best_value
