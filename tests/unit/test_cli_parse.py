"""`parse_args` reads the wizard's own command line (global options only) without building
every command's parser: it must give exactly what the full parser gives, and leave everything
else, mistakes and help included, to the full parser."""

from __future__ import annotations

import pytest

from tui.cli import build_parser, parse_args

SAME = [
    [],
    ["--sandbox"],
    ["--region", "eu-west-1"],
    ["--region=us-east-2", "--profiles-dir", "/tmp/profiles"],
    ["--aws-profile", "probe"],  # an option's value that is also a command's name
    ["--endpoint-url", "http://127.0.0.1:5000"],
    ["--endpoint-url", "https://ec2.example.com/"],
    ["--endpoint-url", "http://[::1]:5000"],
    ["--sandbox", "probe", "disk.vmdk"],
    ["preview", "sample", "--json", "--region", "us-west-2"],
    ["--regio", "eu-west-1"],  # argparse's abbreviations, as the full parser allows them
]

REFUSED = [
    ["--sandbox", "--endpoint-url", "http://127.0.0.1:5000"],  # mutually exclusive
    ["--region", "narnia-1"],
    ["--endpoint-url", "ftp://example.com"],
    ["--endpoint-url", "http://example.com"],  # cleartext beyond loopback
    ["nonsense"],
    ["--no-such-option"],
    ["--region"],
]


@pytest.mark.parametrize("argv", SAME, ids=" ".join)
def test_the_same_namespace_as_the_full_parser(argv: list[str]) -> None:
    assert vars(parse_args(argv)) == vars(build_parser().parse_args(argv))


@pytest.mark.parametrize("argv", REFUSED, ids=" ".join)
def test_mistakes_get_the_full_parsers_message(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as ours:
        parse_args(argv)
    our_err = capsys.readouterr().err
    with pytest.raises(SystemExit) as full:
        build_parser().parse_args(argv)
    assert ours.value.code == full.value.code == 2
    assert our_err == capsys.readouterr().err
    assert "usage: ec2-import-wizard" in our_err and "COMMAND" in our_err


def test_help_is_the_full_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_args(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "preview" in out and "--sandbox" in out


def test_version_and_help_say_what_a_newcomer_needs(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as done:
        parse_args(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"ec2-import-wizard {version('ec2-import-wizard')}"

    with pytest.raises(SystemExit):
        parse_args(["--help"])
    text = capsys.readouterr().out
    assert "examples:" in text and "ec2-import-wizard run web01" in text
    for code in ("0 ", "1 ", "2 ", "3 ", "130 "):  # every exit code, each with its meaning
        assert f"\n  {code}" in text


def test_every_positional_argument_is_explained() -> None:
    """`resume --help` says what RUN_ID is; so does every command of its argument."""
    import argparse

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    unexplained = [
        f"{name} {action.metavar}"
        for name, sub in commands.choices.items()
        for action in sub._actions
        if not action.option_strings and not action.help
    ]
    assert unexplained == []
