"""Which files a desired state's `workflows:` globs name: inside its repository, by a bounded walk."""

from __future__ import annotations

import os
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

# A glob such as "**" at the top of a large tree must end with a clear error, not walk for minutes.
MAX_VISITED = 10_000
MAX_BYTES = 50 * 1024 * 1024
_WILDCARDS = frozenset("*?[")


@dataclass(frozen=True)
class Matched:
    """What one glob matched, or why it was refused (then `files` is empty)."""

    files: tuple[Path, ...] = ()
    refused: str = ""
    skipped: tuple[str, ...] = ()


def repository_root(start: Path) -> Path:
    """The git work tree holding `start`, or `start` itself when it is in none."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return start


class Walk:
    """Matches globs under one root, sharing one budget of entries visited and bytes to be read."""

    def __init__(self, base: Path, root: Path) -> None:
        self.base = base
        self.root = root.resolve()
        self.visited = 0
        self.size = 0

    def match(self, pattern: str) -> Matched:
        parts = [p for p in pattern.replace("\\", "/").split("/") if p not in ("", ".")]
        if pattern.startswith(("/", "\\")) or os.path.isabs(pattern) or not parts:
            return Matched(
                refused=f"is absolute or empty; globs are relative to the desired file ({self.base}/)"
            )
        fixed = 0
        while fixed < len(parts) and not _WILDCARDS & set(parts[fixed]):
            fixed += 1
        if ".." in parts[fixed:]:
            return Matched(refused="has '..' after a wildcard; put the directory before the wildcards")
        start = Path(os.path.normpath(self.base.joinpath(*parts[:fixed]) if fixed else self.base))
        if not _inside(start.resolve(), self.root):
            return Matched(
                refused=f"leaves the repository ({self.root}/); workflow files are read only inside it"
            )
        rest = parts[fixed:]
        if not rest:
            return self._keep([start] if start.is_file() else [])
        found: list[Path] = []
        error = self._walk(start, rest, found)
        if error:
            return Matched(refused=error)
        return self._keep(sorted(found))

    def _walk(self, start: Path, rest: list[str], found: list[Path]) -> str:
        deep = "**" in rest
        for folder, dirs, names in os.walk(start, followlinks=False):
            relative = Path(folder).relative_to(start).parts
            self.visited += len(dirs) + len(names)
            if self.visited > MAX_VISITED:
                return (
                    f"visits more than {MAX_VISITED:,} files and folders under {start}/; "
                    "name the workflow directory more precisely"
                )
            # Without '**' nothing deeper than the pattern can match; hidden folders as glob skips them.
            dirs[:] = [d for d in dirs if (deep or len(relative) + 1 < len(rest)) and not d.startswith(".")]
            found.extend(Path(folder, n) for n in names if _matches(rest, [*relative, n]))
        return ""

    def _keep(self, candidates: list[Path]) -> Matched:
        files: list[Path] = []
        skipped: list[str] = []
        for path in candidates:
            real = path.resolve()
            if not _inside(real, self.root):
                skipped.append(f"{path} resolves outside the repository ({self.root}/); not read")
                continue
            if not real.is_file():
                continue
            self.size += real.stat().st_size
            if self.size > MAX_BYTES:
                return Matched(
                    refused=f"names more than {MAX_BYTES // 2**20} MB of workflow files; narrow it"
                )
            files.append(path)
        return Matched(tuple(files), skipped=tuple(skipped))


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def _matches(pattern: list[str], parts: list[str]) -> bool:
    """Glob semantics per path segment: '**' spans folders, and wildcards do not match a leading dot."""
    if not pattern:
        return not parts
    head = pattern[0]
    if head == "**":
        return any(_matches(pattern[1:], parts[i:]) for i in range(len(parts) + 1) if not _hidden(parts[:i]))
    if not parts:
        return False
    name = parts[0]
    if name.startswith(".") and not head.startswith("."):
        return False
    return fnmatchcase(name, head) and _matches(pattern[1:], parts[1:])


def _hidden(parts: list[str]) -> bool:
    return any(p.startswith(".") for p in parts)
