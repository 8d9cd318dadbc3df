"""The torchrun entry's own command line: one line and exit 2 on bad input,
its options documented. Its training under torchrun is pinned in test_tables.py."""

import pytest

from aninfonce.torchrun import main

TORCHRUN_ENV = {"RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29999"}


@pytest.fixture
def outside_torchrun(monkeypatch):
    for name in TORCHRUN_ENV:
        monkeypatch.delenv(name, raising=False)


def test_outside_torchrun_is_one_line(outside_torchrun, capsys):
    assert main(["cifar10-table", "--profile", "smoke"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no process group in the environment") and err.count("\n") == 1


@pytest.mark.parametrize("args, message", [
    (["cifar10-table", "--profile", "huge"], "invalid choice: 'huge'"),
    (["cifar10-table", "--seeds", "0"], "--seeds must be at least 1"),
])
def test_bad_options_are_one_line(args, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_unknown_entry_and_missing_data_are_one_line(monkeypatch, tmp_path, capsys):
    for name, value in TORCHRUN_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ANINFONCE_OFFLINE", "1")
    assert main(["nosuchtable"]) == 2
    assert "no experiment matches 'nosuchtable'" in capsys.readouterr().err
    assert main(["mnist-standin-table", "--profile", "smoke", "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: mnist-standin-table: MNIST not found in") and err.count("\n") == 1


def test_help_names_seeds_and_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "--seeds" in text and "exit codes" in text and "torchrun --nproc_per_node" in text
