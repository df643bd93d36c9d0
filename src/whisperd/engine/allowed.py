"""Which models clients may ask for: the server's allow-list (the ``allowed_models`` setting).

Without an allow-list, any client could make the server download any Hugging Face repository
or read any directory it names. The list holds patterns: ``known`` (every name, alias and
repository of the catalogue, :mod:`whisperd.engine.catalogue`), names, repo ids or directories
with shell wildcards (:func:`fnmatch.fnmatchcase`), and ``*`` for any model. A model of the
catalogue matches a pattern by any of its names and repositories (``Systran/*`` allows
``small``). The server's default model, under any of its names, is always allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from whisperd.engine.catalogue import KnownModel, known_model, known_model_by_repo_id
from whisperd.errors import ModelNotAllowedError

__all__ = ["KNOWN", "ModelAllowList"]

KNOWN = "known"
"""The pattern that allows every model of the catalogue, by name, alias or repository."""


def _catalogued(name: str) -> KnownModel | None:
    """The catalogue's model behind a name, alias or repo id, if any."""
    return known_model(name) or known_model_by_repo_id(name)


@dataclass(frozen=True, slots=True)
class ModelAllowList:
    """The models clients may ask for.

    Attributes:
        patterns: ``known``, ``*``, names, repo ids or directories (shell wildcards allowed).
        default: The server's default model, always allowed.
    """

    patterns: tuple[str, ...]
    default: str

    def allows(self, name: str) -> bool:
        """Whether a client may ask for ``name`` (a name, alias, repo id or directory)."""
        name = name.strip()
        if name in ("", self.default):
            return True
        known = _catalogued(name)
        if known is not None and known == _catalogued(self.default):
            return True
        names = [name.rstrip("/")]
        if known is not None:  # a table model under any of its names
            names += [known.name, *known.aliases, known.repo_id, known.hf_repo_id]
        for pattern in self.patterns:
            if pattern == KNOWN:
                if known is not None:
                    return True
            elif any(fnmatchcase(each, pattern.rstrip("/")) for each in names):
                return True
        return False

    def check(self, name: str) -> None:
        """Refuse a model the list does not allow.

        Raises:
            ModelNotAllowedError: naming the model and the setting that allows more.
        """
        if not self.allows(name):
            raise ModelNotAllowedError(
                f"The model '{name}' is not available on this server: it serves only the "
                "models its operator allows (WHISPERD_ALLOWED_MODELS)."
            )
