"""Settings for the command line: flags, then environment, then a config file, then defaults.

Environment variables are ``VJT_<NAME>`` (``VJT_BASE_URL``, ``VJT_MODEL``, ``VJT_EFFORT``...);
the API key also comes from ``OPENAI_API_KEY``. The config file is TOML with the same names,
at ``$VJT_CONFIG`` or ``~/.config/vibe-jet-tagging/config.toml``::

    base_url = "http://gpu-node:8000/v1"
    effort = "high"
    concurrency = 128
"""

from __future__ import annotations

import logging
import os
import tomllib
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from .errors import VJTError
from .model import DEFAULT_BASE_URL, DEFAULT_MODEL, Effort
from .prompts import DEFAULT_TEMPLATE

__all__ = ["Settings", "config_path", "load_settings"]

logger = logging.getLogger(__name__)


def config_path() -> Path:
    """``$VJT_CONFIG``, else the user's config folder's ``vibe-jet-tagging/config.toml``."""
    env = os.environ.get("VJT_CONFIG")
    if env:
        return Path(env)
    return Path(platformdirs.user_config_dir("vibe-jet-tagging")) / "config.toml"


class Settings(BaseSettings):
    """What the commands that talk to a model server need to know."""

    model_config = SettingsConfigDict(env_prefix="VJT_", extra="ignore", populate_by_name=True)

    base_url: str | list[str] = DEFAULT_BASE_URL
    """One server, or several serving the same model (a list; in ``VJT_BASE_URL``,
    separated by commas)."""
    model: str = DEFAULT_MODEL
    api_key: SecretStr = Field(
        SecretStr("EMPTY"),
        validation_alias=AliasChoices("api_key", "VJT_API_KEY", "OPENAI_API_KEY"),
    )
    effort: Effort = "medium"
    template: str = DEFAULT_TEMPLATE
    shots: int | None = Field(None, ge=0)
    concurrency: int = Field(64, ge=1)
    max_tokens: int | None = Field(None, ge=1)
    timeout: float = Field(600.0, gt=0)
    max_retries: int = Field(4, ge=0)
    structured_output: bool = True
    temperature: float | None = Field(None, ge=0, le=2)
    seed: int | None = None
    cache_dir: Path | None = None
    shared_cache: bool = False
    """Use a cache folder others can write to (refused otherwise: see ``cache``)."""

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
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, config_path()))


def _origin(field: str, flags: dict[str, Any]) -> str:
    """Where the value of ``field`` came from, for error messages."""
    if field in flags:
        return "--" + field.replace("_", "-")
    names = [f"VJT_{field.upper()}"] + (["OPENAI_API_KEY"] if field == "api_key" else [])
    for name in names:
        if name in os.environ:
            return name
    return str(config_path())


def load_settings(**flags: Any) -> Settings:
    """Settings from ``flags`` (``None`` means not given), the environment and the config file.

    Precedence: flags, then ``VJT_*`` variables (and ``OPENAI_API_KEY``), then the config
    file, then the defaults. Raises :class:`VJTError` with one line naming each invalid value
    and where it came from (the flag, the variable or the file).
    """
    given = {k: v for k, v in flags.items() if v is not None}
    try:
        settings = Settings(**given)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            value = error.get("input")
            shown = "***" if field == "api_key" else repr(value)
            problems.append(f"{field} {shown} (from {_origin(field, given)}): {error['msg']}")
        raise VJTError("invalid setting: " + "; ".join(problems)) from None
    except ValueError as exc:  # a malformed config file
        raise VJTError(f"cannot read the config file {config_path()}: {exc}") from None
    _warn_unknown_keys()
    return settings


def _warn_unknown_keys() -> None:
    """Log the config file's keys that are no setting (a typo would be ignored silently)."""
    path = config_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    known = set(Settings.model_fields)
    unknown = sorted(set(data) - known)
    if unknown:
        logger.warning(
            "%s: unknown setting(s) %s ignored; known: %s",
            path,
            ", ".join(unknown),
            ", ".join(sorted(known)),
        )
