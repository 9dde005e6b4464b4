"""Prompt templates: the YAML files of ``prompts/`` (and ``$VJT_PROMPTS``), found and read.

A template is a YAML file with a ``name``, ``version``, ``description``, a ``system`` message,
a ``human`` message holding ``{jet}`` (the jet rendered in the template's ``format``), and the
number of few-shot ``shots`` with the ``selector`` that picks them. Templates are LangChain
f-string templates: write a literal brace as ``{{`` or ``}}``. The prompt made of one is
:class:`~.prompt.JetPromptTemplate`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from langchain_core.prompts import ChatPromptTemplate
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..config import DEFAULT_TEMPLATE, SelectorName
from ..errors import VJTError
from ..jets.formats import JetFormat

__all__ = [
    "DEFAULT_TEMPLATE",
    "PromptTemplateSpec",
    "SelectorName",
    "TemplateNotFoundError",
    "list_templates",
    "load_template",
    "template_dirs",
]

logger = logging.getLogger(__name__)


class TemplateNotFoundError(VJTError):
    """No template of that name or path; the message lists the ones there are."""


class PromptTemplateSpec(BaseModel):
    """One template file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    version: str
    description: str
    system: str
    human: str = Field(description="the message holding the jet; must contain {jet}")
    format: JetFormat = JetFormat()
    shots: int = Field(0, ge=0, description="few-shot examples, half quark, half gluon")
    selector: SelectorName = "balanced"
    labels: Literal["words", "digits"] = Field(
        "words",
        description="how the template asks for the label: quark/gluon, or 1/0 (then a JSON "
        "label of 1 or 0 is read as quark or gluon)",
    )
    path: Path | None = Field(None, exclude=True)

    @cached_property
    def content_hash(self) -> str:
        """Hash of everything that shapes the messages (not the path or description)."""
        content = self.model_dump(mode="json", exclude={"description"})
        blob = json.dumps(content, sort_keys=True).encode()
        return hashlib.blake2b(blob, digest_size=8).hexdigest()

    @classmethod
    def from_file(cls, path: Path) -> PromptTemplateSpec:
        """Read and check a template file; errors name the file."""
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise VJTError(f"{path}: not a readable YAML template: {exc}") from None
        if not isinstance(data, dict):
            raise VJTError(f"{path}: a template is a YAML mapping with name, version, ...")
        data.setdefault("name", path.stem)
        data["version"] = str(data.get("version", ""))
        try:
            spec = cls(**data, path=path)
        except ValidationError as exc:
            raise VJTError(f"{path}: invalid template: {exc}") from None
        try:
            ChatPromptTemplate.from_messages(
                [("system", spec.system), ("human", spec.human)]
            ).format_messages(jet="")
        except (KeyError, ValueError, IndexError) as exc:
            raise VJTError(
                f"{path}: the messages may only use {{jet}} (write literal braces as {{{{ }}}}): "
                f"{exc!r}"
            ) from None
        if "{jet}" not in spec.human:
            raise VJTError(f"{path}: the human message must contain {{jet}}")
        return spec


def template_dirs() -> list[Path]:
    """Where templates are looked up by name: ``$VJT_PROMPTS`` dirs, then the shipped ones."""
    dirs = [Path(p) for p in os.environ.get("VJT_PROMPTS", "").split(os.pathsep) if p]
    package = Path(str(resources.files("vibe_jet_tagging")))
    # Installed wheel: inside the package. Source checkout (editable install): ../../prompts.
    dirs += [package / "templates", package.parents[1] / "prompts"]
    return [d for d in dirs if d.is_dir()]


def _template_files() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for directory in template_dirs():
        for path in sorted(directory.glob("*.y*ml")):
            found.setdefault(path.stem, path)
    return found


def list_templates() -> list[PromptTemplateSpec]:
    """Every template found by name, sorted by name."""
    return [PromptTemplateSpec.from_file(p) for _, p in sorted(_template_files().items())]


def load_template(name_or_path: str | Path | PromptTemplateSpec) -> PromptTemplateSpec:
    """A template by name (``"few_shot"``) or by path to a YAML file."""
    if isinstance(name_or_path, PromptTemplateSpec):
        return name_or_path
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise TemplateNotFoundError(f"template file {path} does not exist")
        return PromptTemplateSpec.from_file(path)
    files = _template_files()
    if str(name_or_path) not in files:
        known = ", ".join(sorted(files)) or "none found"
        raise TemplateNotFoundError(f"unknown template {str(name_or_path)!r}; known: {known}")
    return PromptTemplateSpec.from_file(files[str(name_or_path)])


# -- few-shot examples ------------------------------------------------------------------------
