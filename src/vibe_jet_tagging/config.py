"""Settings of the command line and the Python API: given, then environment, then config file.

One order everywhere (``vjt``, :class:`~vibe_jet_tagging.JetTagger`,
:class:`~vibe_jet_tagging.ChatVLLM`): a value given (a flag, an argument), then the
environment (``VJT_<NAME>``: ``VJT_BASE_URL``, ``VJT_MODEL``, ``VJT_EFFORT``...; the base URL
also from ``OPENAI_BASE_URL`` and the API key from ``OPENAI_API_KEY``), then the config file,
then the defaults. The config file is TOML with the same names, at ``$VJT_CONFIG`` or
``~/.config/vibe-jet-tagging/config.toml``::

    base_url = "http://gpu-node:8000/v1"
    effort = "high"
    concurrency = 128

This module is light (no LangChain, no numpy): the command line imports it before it knows
whether it will talk to a server.
"""

from __future__ import annotations

import logging
import os
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from .errors import ConfigError

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MODEL",
    "DEFAULT_TEMPLATE",
    "EFFORTS",
    "ENVIRONMENT",
    "Effort",
    "SelectorName",
    "Settings",
    "api_settings",
    "config_path",
    "load_settings",
]

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "http://localhost:8000/v1"
DEFAULT_MODEL = "openai/gpt-oss-120b"
DEFAULT_TEMPLATE = "few_shot"
Effort = Literal["low", "medium", "high"]
EFFORTS: tuple[str, ...] = Effort.__args__  # type: ignore[attr-defined]
SelectorName = Literal["balanced", "nearest"]

ENVIRONMENT: dict[str, tuple[str, ...]] = {
    "base_url": ("VJT_BASE_URL", "OPENAI_BASE_URL"),
    "api_key": ("VJT_API_KEY", "OPENAI_API_KEY"),
    "effort": ("VJT_EFFORT", "VJT_REASONING_EFFORT"),
}
"""Environment variables of the settings that are not simply ``VJT_<NAME>``, first wins."""


MAX_CONFIG_BYTES = 1 << 20
"""The largest config file read (a settings file is a few hundred bytes)."""


def readable_config(path: Path) -> bool:
    """Whether ``path`` is a config file to read: ``False`` when there is none; raises
    :class:`~vibe_jet_tagging.errors.ConfigError` for what is no regular file (a FIFO,
    a device such as ``/dev/zero``, a folder) or a file over :data:`MAX_CONFIG_BYTES`."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"the config file {path} is not a regular file (VJT_CONFIG names it)")
    if st.st_size > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"the config file {path} is {st.st_size:,} bytes, more than a config file holds "
            f"({MAX_CONFIG_BYTES:,} at most)"
        )
    return True


PYTHON_NAMES: dict[str, str] = {"effort": "reasoning_effort"}
"""Settings whose Python argument has another name (``effort=`` is an alias there)."""


def config_path() -> Path:
    """``$VJT_CONFIG``, else the user's config folder's ``vibe-jet-tagging/config.toml``."""
    env = os.environ.get("VJT_CONFIG")
    if env:
        return Path(env)
    return Path(platformdirs.user_config_dir("vibe-jet-tagging")) / "config.toml"


class Settings(BaseSettings):
    """What talking to a model server and tagging jets need to know (see the module doc)."""

    model_config = SettingsConfigDict(
        env_prefix="VJT_", extra="ignore", populate_by_name=True, env_ignore_empty=True
    )

    base_url: str | list[str] = Field(
        DEFAULT_BASE_URL, validation_alias=AliasChoices(*ENVIRONMENT["base_url"])
    )
    """One server, or several serving the same model (a list; in ``VJT_BASE_URL``,
    separated by commas)."""
    model: str = DEFAULT_MODEL
    api_key: SecretStr = Field(
        SecretStr("EMPTY"), validation_alias=AliasChoices(*ENVIRONMENT["api_key"])
    )
    effort: Effort = Field("medium", validation_alias=AliasChoices(*ENVIRONMENT["effort"]))
    template: str = DEFAULT_TEMPLATE
    shots: int | None = Field(None, ge=0)
    selector: SelectorName | None = None
    concurrency: int = Field(64, ge=1)
    max_tokens: int | None = Field(None, ge=1)
    timeout: float = Field(600.0, gt=0)
    max_retries: int = Field(4, ge=0)
    structured_output: bool = True
    temperature: float | None = Field(None, ge=0, le=2)
    seed: int | None = Field(None, ge=0)
    cache_dir: Path | None = None
    shared_cache: bool = False
    """Use a cache folder others can write to (refused otherwise: see ``cache``)."""
    max_answer_bytes: int = Field(1 << 20, ge=1)
    """The largest answer read from a server (bytes); a larger one is an ``oversized`` error."""

    @property
    def base_urls(self) -> list[str]:
        """The server(s), as a list."""
        urls = [self.base_url] if isinstance(self.base_url, str) else list(self.base_url)
        return [u.strip() for url in urls for u in url.split(",") if u.strip()]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = config_path()
        if not readable_config(path):
            return (init_settings, env_settings)
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, path))


def environment_names(field: str) -> tuple[str, ...]:
    """The environment variables a setting is read from, first wins."""
    return ENVIRONMENT.get(field, (f"VJT_{field.upper()}",))


def _origin(field: str, given: Mapping[str, Any], given_as: str) -> str:
    """Where the value of ``field`` came from, for error messages."""
    if field in given:
        return given_as
    for name in environment_names(field):
        if os.environ.get(name):
            return name
    return str(config_path())


def _load(given: dict[str, Any], name_of: Any, given_as: Any) -> Settings:
    given = {k: v for k, v in given.items() if v is not None}
    try:
        settings = Settings(**given)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = str(error["loc"][0]) if error["loc"] else "?"
            field = next((f for f, names in ENVIRONMENT.items() if loc in names), loc)
            value = "***" if field == "api_key" else repr(error.get("input"))
            origin = _origin(field, given, given_as(field))
            problems.append(f"{name_of(field)} {value} (from {origin}): {error['msg']}")
        raise ConfigError("invalid setting: " + "; ".join(problems)) from None
    except ConfigError:
        raise
    except ValueError as exc:  # a malformed config file
        raise ConfigError(f"cannot read the config file {config_path()}: {exc}") from None
    _warn_unknown_keys(config_path())
    return settings


def load_settings(**flags: Any) -> Settings:
    """Settings from command-line ``flags`` (``None``: not given), the environment, the file.

    Raises :class:`~vibe_jet_tagging.errors.ConfigError` with one line naming each invalid
    value and where it came from (the flag, the variable or the file). A value is named as
    Python names it (``reasoning_effort 'hgh' (from --effort)``), so that one mistake reads
    the same from the command line and from :class:`~vibe_jet_tagging.JetTagger`.
    """

    def name_of(field: str) -> str:
        return PYTHON_NAMES.get(field, field)

    return _load(flags, name_of, lambda field: "--" + field.replace("_", "-"))


def api_settings(names: Mapping[str, str] | None = None, **arguments: Any) -> Settings:
    """Settings from Python ``arguments`` (``None``: not given), the environment, the file.

    ``names`` maps a setting to the argument it was given as (``{"effort":
    "reasoning_effort"}``), so errors name what the caller wrote.
    """
    names = names or {}

    def name_of(field: str) -> str:
        return names.get(field, field)

    return _load(arguments, name_of, lambda field: "the argument")


def _unknown_keys(path: Path) -> tuple[str, ...]:
    try:
        if not readable_config(path):
            return ()
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ()
    return tuple(sorted(set(data) - set(Settings.model_fields)))


def _warn_unknown_keys(path: Path) -> None:
    """Log the config file's keys that are no setting, once per file version."""
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return
    if (path, mtime) in _WARNED:
        return
    _WARNED.add((path, mtime))
    unknown = _unknown_keys(path)
    if unknown:
        logger.warning(
            "%s: unknown setting(s) %s ignored; known: %s",
            path,
            ", ".join(unknown),
            ", ".join(sorted(Settings.model_fields)),
        )


_WARNED: set[tuple[Path, float]] = set()
