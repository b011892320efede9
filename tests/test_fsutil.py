"""fsutil: files replaced atomically."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler import fsutil
from reconciler.errors import ReconcilerError


def test_replace_text_reports_a_directory_it_cannot_write_in(tmp_path: Path) -> None:
    with pytest.raises(ReconcilerError, match=r"cannot write .*missing/s.yaml \(No such file or directory\)"):
        fsutil.replace_text(tmp_path / "missing" / "s.yaml", "x\n")
    assert list(tmp_path.iterdir()) == []
