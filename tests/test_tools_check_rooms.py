"""tools/check_rooms.py: the lint guard that fails on a long module or function, and passes the package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tools import check_rooms

ROOT = Path(__file__).resolve().parent.parent


def package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "reconciler"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def function(name: str, body_lines: int, indent: str = "") -> str:
    """A function `def` line plus `body_lines` statements: 1 + body_lines lines in all."""
    body = "".join(f"{indent}    x{i} = {i}\n" for i in range(body_lines))
    return f"{indent}def {name}() -> None:\n{body}"


def test_a_function_of_sixty_lines_passes_and_sixty_one_fails(tmp_path: Path) -> None:
    root = package(tmp_path, {"ok.py": function("fits", 59), "sub/long.py": "\n\n" + function("sprawls", 60)})

    assert list(check_rooms.offences(root, frozenset())) == ["reconciler/sub/long.py:3 sprawls 61 lines > 60"]


def test_decorators_count_and_methods_are_named_by_their_class(tmp_path: Path) -> None:
    text = "class Room:\n    @staticmethod\n    @other\n" + function("crowded", 58, indent="    ")

    found = list(check_rooms.offences(package(tmp_path, {"room.py": text}), frozenset()))

    assert found == ["reconciler/room.py:2 Room.crowded 61 lines > 60"]


def test_a_function_under_an_if_is_measured_with_its_outer_function(tmp_path: Path) -> None:
    inner = function("route", 61, indent="        ")
    text = "def build() -> None:\n    if True:\n" + inner

    found = list(check_rooms.offences(package(tmp_path, {"app.py": text}), frozenset()))

    assert found == [
        "reconciler/app.py:1 build 64 lines > 60",
        "reconciler/app.py:3 build.route 62 lines > 60",
    ]


def test_a_module_over_five_hundred_lines_fails(tmp_path: Path) -> None:
    root = package(tmp_path, {"fits.py": "x = 1\n" * 500, "big.py": "x = 1\n" * 501})

    assert list(check_rooms.offences(root, frozenset())) == ["reconciler/big.py:1 module 501 lines > 500"]


def test_an_excluded_module_is_not_measured(tmp_path: Path) -> None:
    root = package(tmp_path, {"cli.py": "x = 1\n" * 501 + function("sprawls", 70)})

    assert list(check_rooms.offences(root, frozenset({"reconciler/cli.py"}))) == []
    assert len(list(check_rooms.offences(root, frozenset()))) == 2


def test_the_command_exits_1_with_one_line_per_offence(tmp_path: Path) -> None:
    root = package(tmp_path, {"big.py": "x = 1\n" * 501 + function("sprawls", 61)})

    run = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "check_rooms.py"), str(root)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert run.returncode == 1
    assert run.stdout.splitlines() == [
        "reconciler/big.py:1 module 563 lines > 500",
        "reconciler/big.py:502 sprawls 62 lines > 60",
    ]


def test_the_package_passes_with_no_module_excused() -> None:
    assert not check_rooms.EXCLUDED
    assert check_rooms.main([str(ROOT / "reconciler")]) == 0
