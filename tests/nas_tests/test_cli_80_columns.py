"""Issue 24: every ``--help`` and every listing reads cleanly at 80 columns."""

from __future__ import annotations

import pytest

from nas.cli import app, main


def _commands() -> list[tuple[list[str], object]]:
    """Every command and group of the command line, with its path of words."""
    import typer

    root = typer.main.get_command(app)
    out: list[tuple[list[str], object]] = []

    def walk(cmd: object, path: list[str]) -> None:
        out.append((path, cmd))
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, [*path, name])

    walk(root, [])
    return out


def test_every_help_reads_cleanly_at_80_columns(capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    commands = _commands()
    assert len(commands) > 20  # the walk found the sub-commands
    for path, cmd in commands:
        capsys.readouterr()
        assert main([*path, "--help"]) == 0, path
        out = capsys.readouterr().out
        where = " ".join(["nas", *path])
        assert out.startswith(f"Usage: {where} "), (path, out[:80])
        assert "…" not in out and "<bool>" not in out, (path, out)
        assert "{" not in out.splitlines()[0], (path, out.splitlines()[0])  # usage line
        assert max(len(line) for line in out.splitlines()) <= 80, path
        for param in cmd.params:  # type: ignore[attr-defined]
            for opt in (*param.opts, *param.secondary_opts):
                if opt.startswith("-"):
                    assert opt in out, (path, opt)  # never cut, whatever its length
        text = " ".join(out.replace("│", " ").split())
        for param in cmd.params:  # type: ignore[attr-defined]
            if param.help:  # the description is all there, only re-wrapped
                assert " ".join(param.help.split()) in text, (path, param.help)
        for name in getattr(cmd, "commands", {}):
            assert f" {name} " in out, (path, name)


def test_help_metavars(capsys: pytest.CaptureFixture[str],
                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    capsys.readouterr()
    main(["run", "--help"])
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "Usage: nas run [OPTIONS] FILE"
    assert "--resume  " in out and "--trials INT" in out
    main(["pfn", "train", "--help"])
    out = capsys.readouterr().out
    assert "--progress / --no-progress" in out and "-f, --format table|json|csv" in out
    assert "--checkpoint-every FLOAT" in out
    assert main(["db"]) == 2  # a group alone: its help, on stderr
    err = capsys.readouterr().err
    assert err.startswith("Usage: nas db [OPTIONS] COMMAND") and "upgrade" in err
