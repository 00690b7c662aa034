"""The forges AQE speaks to, by name. Adding one is a folder under forges/ and a line here."""

from __future__ import annotations

from jobs.forges.base import Forge
from jobs.forges.git import FORGE as GIT
from jobs.forges.github import FORGE as GITHUB
from jobs.forges.gitlab import FORGE as GITLAB

FORGES: dict[str, Forge] = {"github": GITHUB, "gitlab": GITLAB, "git": GIT}


def forge(name: str) -> Forge:
    try:
        return FORGES[name]
    except KeyError:
        raise KeyError(f"unknown forge {name!r}; known: {', '.join(FORGES)}") from None
