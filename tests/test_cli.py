"""The ``otelml`` command as a new user meets it: complete help, errors that name the bad setting, and commands that
create no state they were not asked to create."""

import argparse
import os
from dataclasses import fields

import numpy as np
import pytest

from otelml import cli


def _subcommands(parser, path=()):
    """Every (command path, parser) under ``parser``, and the one-line help each has in its parent's help."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            lines = {choice.dest: choice.help for choice in action._choices_actions}
            for name, child in action.choices.items():
                yield path + (name,), child, lines.get(name)
                yield from _subcommands(child, path + (name,))


def test_every_subcommand_has_a_line_and_every_option_a_description_and_its_default():
    commands = list(_subcommands(cli.build_parser()))
    assert {" ".join(path) for path, _, _ in commands} >= {
        "version",
        "sink",
        "analyzer",
        "reference",
        "reference build",
        "reference show",
        "reference pin",
        "reference promote",
        "state",
        "state migrate",
        "demo",
    }
    for path, parser, line in commands:
        assert line, f"{' '.join(path)} has no line in its parent's help"
        text = parser.format_help()
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            where = f"otelml {' '.join(path)} {action.option_strings or action.dest}"
            assert action.help, f"{where} has no description"
            if action.option_strings:
                described = cli._HelpFormatter("otelml")._get_help_string(action)
                assert "default" in described or "required" in described, f"{where} names no default"
                assert action.option_strings[-1] in text


def test_the_analyzer_help_gives_the_analyzers_own_defaults():
    """The flags' argparse defaults are None (a config file may set them), so their text states the default: it must
    be the one the analyzer uses."""
    from otelml.analyzer import AnalyzerConfig

    defaults = {f.name: f.default for f in fields(AnalyzerConfig)}
    checked = 0
    for flag, _, _, text in cli.ANALYZER_OPTIONS:
        value = defaults[flag[2:].replace("-", "_")]
        if value is None:
            continue
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        assert f"(default: {shown})" in text, (flag, text)
        checked += 1
    assert checked >= 9
    help_text = cli.build_parser()._subparsers._group_actions[0].choices["analyzer"].format_help()
    for flag in ("--warmup", "--alerts-endpoint", "--alerts-protocol", "--tls-cert", "--tls-key", "--auth-token"):
        assert flag in help_text


@pytest.mark.parametrize(
    "flags, named",
    [
        (["--window", "-5"], "window must be positive"),
        (["--lateness", "-1"], "lateness must be at least 0"),
        (["--idle-timeout", "0"], "idle_timeout must be positive"),
        (["--warmup", "0"], "warmup must be at least 1"),
        (["--tls-cert", "cert.pem"], "tls_key is not set"),
        (["--tls-key", "key.pem"], "tls_cert is not set"),
        (["--false-alarm-days", "0.001"], "false_alarm_days must be at least 0.00694"),
    ],
)
def test_a_bad_setting_is_named_alone_and_nothing_is_created(tmp_path, capsys, flags, named):
    state_dir = tmp_path / "state"
    assert cli.main(["analyzer", "--state-dir", str(state_dir), *flags]) == 1
    error = capsys.readouterr().err
    assert named in error, error
    others = {"window", "lateness", "idle timeout", "idle_timeout"} - {named.split()[0]}
    if named.split()[0] in {"window", "lateness", "idle_timeout"}:
        assert not any(other in error for other in others), error
    assert not state_dir.exists()


def test_an_unreadable_tls_file_is_named_before_any_state_is_created(tmp_path, capsys):
    state_dir = tmp_path / "state"
    cert = tmp_path / "cert.pem"
    cert.write_text("not used")
    missing = tmp_path / "key.pem"
    assert cli.main(["analyzer", "--state-dir", str(state_dir), "--tls-cert", str(cert), "--tls-key", str(missing)])
    assert f"tls_key: cannot read {missing}" in capsys.readouterr().err
    assert not state_dir.exists()


READ_ONLY = [
    ["reference", "show"],
    ["reference", "show", "--model", "m", "--version", "1"],
    ["reference", "pin", "--model", "m", "--version", "1", "--hash", "c0ffee"],
    ["reference", "promote", "--model", "m", "--version", "1", "--hash", "c0ffee"],
    ["state", "migrate"],
    ["state", "migrate", "--trust-pickles"],
]


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_commands_on_existing_state_create_none_at_a_mistyped_path(tmp_path, capsys, command):
    mistyped = tmp_path / "otelml-stat"
    assert cli.main([*command, "--state-dir", str(mistyped)]) == 1
    assert f"no state at {mistyped}" in capsys.readouterr().err
    assert not mistyped.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main([*command, "--state-dir", str(empty)]) == 1
    assert f"no state at {empty}" in capsys.readouterr().err
    assert os.listdir(empty) == []


def test_reference_show_reads_a_store_that_exists(tmp_path, capsys):
    data = tmp_path / "ref.npy"
    np.save(data, np.random.default_rng(0).normal(size=(300, 3)))
    state_dir = tmp_path / "state"
    build = ["reference", "build", "--model", "m", "--version", "1", "--state-dir", str(state_dir), str(data)]
    assert cli.main(build) == 0
    assert capsys.readouterr().out.startswith("pinned reference")
    assert cli.main(["reference", "show", "--state-dir", str(state_dir)]) == 0
    assert '"status": "pinned"' in capsys.readouterr().out
    assert cli.main(["state", "migrate", "--state-dir", str(state_dir)]) == 0
    assert "0 references pickled" in capsys.readouterr().out


def test_reference_build_with_a_missing_file_creates_nothing(tmp_path, capsys):
    data = tmp_path / "ref.npy"
    np.save(data, np.random.default_rng(0).normal(size=(300, 3)))
    state_dir = tmp_path / "state"
    missing = tmp_path / "typo.npy"
    command = ["reference", "build", "--model", "m", "--version", "1", "--state-dir", str(state_dir)]
    assert cli.main([*command, str(data), str(missing)]) == 1
    assert str(missing) in capsys.readouterr().err
    assert not state_dir.exists()


def test_a_config_file_that_cannot_be_read_is_named_and_nothing_is_created(tmp_path, capsys):
    state_dir = tmp_path / "state"
    missing, broken, unknown = tmp_path / "missing.toml", tmp_path / "broken.toml", tmp_path / "unknown.toml"
    broken.write_text("[analyzer]\nwindow =\n")
    unknown.write_text("[analyzer]\nwindw = 30\n")
    for path, message in [
        (missing, f"config: cannot read {missing}"),
        (broken, f"config: {broken} is not valid TOML"),
        (unknown, "unknown settings in"),
    ]:
        assert cli.main(["analyzer", "--state-dir", str(state_dir), "--config", str(path)]) == 1
        error = capsys.readouterr().err
        assert message in error, error
        assert not state_dir.exists()
    assert "windw" in error
