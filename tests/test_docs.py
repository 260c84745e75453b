"""The documentation: the site builds strictly, broken links fail it, the command reference is the CLI's,
and every command of the getting-started pages runs on the bundled example with the exit code it shows."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ipguard_onnx.exit_codes import ExitCode

from .conftest import Quickstart
from .http_server import PredictionServer

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
GETTING_STARTED = sorted((DOCS / "getting-started").glob("*.md"))
EXPECTED_EXIT = re.compile(r"\s#\s*exit\s+(\d+)\s*$")


def _build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )


def test_the_site_builds_strictly_with_a_reference_page_per_command(tmp_path: Path) -> None:
    from ipguard_onnx.cli import app

    built = _build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert built.returncode == 0, built.stdout + built.stderr
    names = [command.name or command.callback.__name__ for command in app.registered_commands if command.callback]
    assert len(names) == 9
    for name in names:
        page = tmp_path / "site" / "reference" / "cli" / name.replace("_", "-").removesuffix("-command") / "index.html"
        assert page.is_file(), name
    audit_page = (tmp_path / "site" / "reference" / "cli" / "audit" / "index.html").read_text(encoding="utf-8")
    assert "--endpoint" in audit_page and "--report" in audit_page  # generated from the options themselves


def test_a_broken_link_or_a_missing_page_fails_the_build(tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(DOCS, copy / "docs")
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    shutil.copy(ROOT / "BENCHMARKS.md", copy / "BENCHMARKS.md")
    (copy / "examples" / "ci").mkdir(parents=True)
    shutil.copy(ROOT / "examples" / "ci" / "ipguard-audit.yml", copy / "examples" / "ci" / "ipguard-audit.yml")
    assert _build(copy / "mkdocs.yml", tmp_path / "ok").returncode == 0
    index = copy / "docs" / "index.md"
    index.write_text(index.read_text(encoding="utf-8") + "\n[gone](guides/no-such-page.md)\n", encoding="utf-8")
    broken = _build(copy / "mkdocs.yml", tmp_path / "broken")
    assert broken.returncode != 0 and "no-such-page.md" in broken.stdout + broken.stderr
    (copy / "docs" / "guides" / "verdict.md").unlink()  # a page the navigation names
    index.write_text(index.read_text(encoding="utf-8").replace("[gone](guides/no-such-page.md)", ""), encoding="utf-8")
    missing = _build(copy / "mkdocs.yml", tmp_path / "missing")
    assert missing.returncode != 0 and "verdict.md" in missing.stdout + missing.stderr


def _commands(page: Path) -> list[tuple[str, int]]:
    """Each line of the page's ```bash blocks, with the exit code its ``# exit N`` comment names (else 0)."""
    commands: list[tuple[str, int]] = []
    inside = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            inside = line.strip() == "```bash" and not inside
            continue
        if inside and line.strip() and not line.lstrip().startswith("#"):
            found = EXPECTED_EXIT.search(line)
            commands.append((line, int(found.group(1)) if found else 0))
    return commands


def test_the_getting_started_pages_have_runnable_commands() -> None:
    assert [page.stem for page in GETTING_STARTED] == ["ci", "hub", "owner"]
    for page in GETTING_STARTED:
        assert sum(line.startswith("ipguard-onnx ") for line, _ in _commands(page)) >= 4, page


@pytest.mark.parametrize("page", GETTING_STARTED, ids=lambda page: page.stem)
def test_every_getting_started_command_runs_on_the_bundled_example(
    page: Path, quickstart: Quickstart, tmp_path: Path
) -> None:
    """The quickstart's folder is ``demo/``; ``$API_URL`` is a loopback Open Inference Protocol server
    serving the pirated copy."""
    assert quickstart.completed.returncode == 0, quickstart.completed.stdout + quickstart.completed.stderr
    shutil.copytree(quickstart.folder, tmp_path / "demo")
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    with PredictionServer(tmp_path / "demo" / "pirated.onnx") as server:
        environment = {
            **os.environ,
            "PATH": path,
            "HOME": str(tmp_path),
            "API_URL": f"{server.base}/v2/models/digits",
            "IPGUARD_ONNX_PROGRESS_SECONDS": "60",
        }
        for line, expected in _commands(page):
            ran = subprocess.run(
                ["bash", "-c", line], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300
            )
            assert ran.returncode == expected, f"{line}\n{ran.stdout}\n{ran.stderr}"
            assert "Traceback" not in ran.stderr, line


def test_the_exit_codes_page_lists_every_exit_code() -> None:
    page = (DOCS / "reference" / "exit-codes.md").read_text(encoding="utf-8")
    rows = {int(code) for code in re.findall(r"^\|\s*`?(\d+)`?\s*\|", page, flags=re.MULTILINE)}
    assert rows == {int(code) for code in ExitCode}


def test_the_readme_is_short_and_its_links_resolve() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    local = [link for link in links if not link.startswith(("http://", "https://", "mailto:"))]
    missing = [link for link in local if not (ROOT / link).exists()]
    assert local and not missing, missing
    remote = re.search(r"\[[^\]]*\]\((docs/guides/remote-apis\.md)\)", readme)  # how to audit an API: one click
    assert remote is not None and "--endpoint" in (ROOT / remote.group(1)).read_text(encoding="utf-8")
