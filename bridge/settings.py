"""Settings: YAML file + environment + command line, validated in one place.

Precedence is the contract's: command-line flag, then environment, then YAML,
then default. ``${NAME}`` in YAML is replaced from the environment, and a
missing variable is a config error that names the key, never a silent blank.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError
from standardwebhooks import Webhook

from bridge.cron import CronSchedule, zone

DEFAULT_CONFIG_PATH = "config/bridge.yaml"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


class ConfigError(Exception):
    """Every problem found in the configuration, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def parse_duration(value: object) -> float:
    """Seconds from a number or a string such as ``15``, ``90s``, ``5m``, ``24h``."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 15, 90s, 5m or 24h")
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration; use a number of seconds or 500ms, 90s, 5m, 24h, 1d")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


Duration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
OptionalDuration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]  # 0 = off


def parse_start(value: str, now: datetime) -> datetime:
    """The first-boot start point: ``now``, an RFC3339 time, or a duration back from now."""
    if value.strip().lower() == "now":
        return now
    try:
        return now - timedelta(seconds=parse_duration(value))
    except ValueError:
        pass
    moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Filters the poller owns itself; a user setting them would break the cursor.
_POLLER_OWNED_FILTERS = {"cursor", "limit", "sort_by", "sort_order", "updated_after"}
_KNOWN_FILTERS = {
    "ancestor_run_id", "artifact_type", "automation_id", "created_after", "created_before", "creator",
    "environment_id", "execution_location", "executor", "factory_uid", "metadata", "model_id", "name",
    "q", "schedule_id", "skill", "skill_spec", "source", "state",
}  # fmt: skip


class PollSettings(_Section):
    interval: Duration = 15.0
    lookback: Duration = 30.0
    sweep: Duration = 15.0
    start: str = "now"
    page_size: int = Field(default=100, ge=1, le=1000)
    # Pages one tick reads at most; a bigger backlog is read on by the next tick (from the cursor).
    max_pages: int = Field(default=1000, ge=1)
    filters: dict[str, Any] = Field(default_factory=dict)

    @field_validator("start")
    @classmethod
    def _start_is_readable(cls, value: str) -> str:
        try:
            parse_start(value, datetime.now(UTC))
        except ValueError:
            raise ValueError(f"{value!r} is not 'now', an RFC3339 time or a duration such as 24h") from None
        return value

    @field_validator("filters")
    @classmethod
    def _filters_are_known(cls, value: dict[str, Any]) -> dict[str, Any]:
        owned = sorted(set(value) & _POLLER_OWNED_FILTERS)
        if owned:
            raise ValueError(f"{', '.join(owned)}: set by the poller itself, not allowed as a filter")
        unknown = sorted(set(value) - _KNOWN_FILTERS)
        if unknown:
            allowed = ", ".join(sorted(_KNOWN_FILTERS))
            raise ValueError(f"unknown filter {', '.join(unknown)}; allowed: {allowed}")
        return value


class WebhookTarget(_Section):
    type: Literal["webhook"]
    url: AnyHttpUrl
    secret: SecretStr | None = None
    # Below the delivery claim's lease (2 min), so a slow send is never claimed twice.
    timeout: Annotated[float, BeforeValidator(parse_duration), Field(gt=0, le=60)] = 10.0
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("secret")
    @classmethod
    def _secret_is_standard(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        try:
            if not value.get_secret_value().startswith("whsec_"):
                raise ValueError
            Webhook(value.get_secret_value())  # the library that signs is the judge of what it can sign with
        except Exception:
            raise ValueError("must be a Standard Webhooks secret: whsec_ followed by base64") from None
        return value


class SlackTarget(_Section):
    type: Literal["slack"]
    # A channel id (C0123…), a name (#alerts), or "@creator": a DM to each run's creator.
    channel: str = Field(min_length=1, max_length=200)

    @field_validator("channel")
    @classmethod
    def _channel_is_a_place(cls, value: str) -> str:
        if value.startswith("@") and value != "@creator":
            raise ValueError(f'{value!r}: the only @ channel is "@creator" (a DM to the run\'s creator)')
        return value


class ConsoleTarget(_Section):
    type: Literal["console"]


Target = Annotated[WebhookTarget | SlackTarget | ConsoleTarget, Field(discriminator="type")]


class RouteSettings(_Section):
    name: str = Field(min_length=1)
    events: list[str] = Field(min_length=1)
    to: list[str] = Field(min_length=1)
    sources: list[str] | None = None
    states: list[str] | None = None
    creators: list[str] | None = None
    names: list[str] | None = None
    environments: list[str] | None = None
    skills: list[str] | None = None
    artifact_types: list[str] | None = None
    metadata: dict[str, str] | None = None
    min_cost_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)

    @field_validator("metadata")
    @classmethod
    def _metadata_keys_are_the_apis(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for key, pattern in (value or {}).items():
            if not _METADATA_KEY.match(key):
                raise ValueError(f"{key!r} is not a run metadata key (1-64 characters of a-z A-Z 0-9 . _ -)")
            if pattern.count("[") != pattern.count("]"):
                raise ValueError(f"{key}: {pattern!r} has an unbalanced [ ]")
        return value


_METADATA_KEY = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RemindersSettings(_Section):
    blocked_every: OptionalDuration = 0.0
    stuck_after: OptionalDuration = 0.0


class BudgetsSettings(_Section):
    run_usd: float = Field(default=0.0, ge=0, allow_inf_nan=False)


class DigestSettings(_Section):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    cron: str
    timezone: str = "UTC"
    window: Duration = 24 * 3600.0
    to: list[str] = Field(min_length=1)

    @field_validator("cron")
    @classmethod
    def _cron_is_readable(cls, value: str) -> str:
        CronSchedule.parse(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _zone_is_known(cls, value: str) -> str:
        zone(value)
        return value

    def schedule(self) -> CronSchedule:
        return CronSchedule.parse(self.cron, self.timezone)


_SLACK_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")


class SlackStartSettings(_Section):
    """Starting runs by mentioning the bot (contract: "Start a run")."""

    channels: list[str] = Field(default_factory=list)
    config: dict[str, Any] = Field(default_factory=dict)
    on_behalf_of: bool = False

    @field_validator("channels")
    @classmethod
    def _channels_are_ids(cls, value: list[str]) -> list[str]:
        if "*" in value and len(value) > 1:
            raise ValueError('"*" (any channel the bot is in) must be the only entry')
        bad = [c for c in value if c != "*" and not _SLACK_CHANNEL_ID.match(c)]
        if bad:
            raise ValueError(f'{", ".join(map(repr, bad))}: not a Slack channel id (C0123ABCD…) or "*"')
        return value

    @field_validator("config")
    @classmethod
    def _config_is_an_agent_config(cls, value: dict[str, Any]) -> dict[str, Any]:
        from oz_agent_sdk.types import AmbientAgentConfig

        # The wire names (model_id), as the API and the contract spell them.
        names = {field.alias or name for name, field in AmbientAgentConfig.model_fields.items()}
        unknown = sorted(set(value) - names)
        if unknown:
            allowed = ", ".join(sorted(names))
            raise ValueError(f"unknown agent config key {', '.join(unknown)}; allowed: {allowed}")
        try:
            AmbientAgentConfig.model_validate(value)
        except ValidationError as exc:
            where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"not a valid agent config ({where})") from None
        return value


class SlackSettings(_Section):
    @field_validator("api_url")
    @classmethod
    def _api_url_ends_with_slash(cls, value: str) -> str:
        # slack-sdk appends method names to it: without the slash they replace its last segment.
        return value if value.endswith("/") else value + "/"

    bot_token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    app_token: SecretStr | None = None
    api_url: str = "https://slack.com/api/"
    allowed_users: list[str] = Field(default_factory=list)
    allowed_channels: list[str] = Field(default_factory=list)
    start: SlackStartSettings = Field(default_factory=SlackStartSettings)
    # thread: a child run is told in its parent's thread; separate: its own root.
    children: Literal["thread", "separate"] = "thread"
    plan_approval: str = Field(default="The plan is approved. Go ahead.", min_length=1, max_length=4000)


class OzSettings(_Section):
    api_key: SecretStr | None = None
    base_url: str = "https://app.warp.dev/api/v1"
    timeout: Duration = 30.0


class DeliverySettings(_Section):
    concurrency: int = Field(default=16, ge=1, le=1024)
    max_age: Duration = 24 * 3600.0
    first_retry: Duration = 1.0
    max_backoff: Duration = 300.0
    max_retry_after: Duration = 3600.0
    check_interval: Duration = 1.0
    shutdown_grace: Duration = 10.0
    retention: Duration = 7 * 86400.0
    # A claim on a queue head lasts this long and is renewed every third of it while
    # the send is in flight, so a replica that dies has its claims taken over this soon.
    claim_ttl: Duration = 10.0


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OZ_BRIDGE_", env_nested_delimiter="__", extra="forbid", case_sensitive=False
    )

    database_url: str = "sqlite:///data/bridge.db"
    host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=0, le=65535)
    log_format: Literal["json", "console"] | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    poll: PollSettings = Field(default_factory=PollSettings)
    oz: OzSettings = Field(default_factory=OzSettings)
    slack: SlackSettings = Field(default_factory=SlackSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    targets: dict[str, Target] = Field(default_factory=dict)
    routes: list[RouteSettings] = Field(default_factory=list)
    reminders: RemindersSettings = Field(default_factory=RemindersSettings)
    budgets: BudgetsSettings = Field(default_factory=BudgetsSettings)
    digests: list[DigestSettings] = Field(default_factory=list)

    @field_validator("routes", "digests", mode="before")
    @classmethod
    def _remember_names(cls, value: Any, info: ValidationInfo) -> Any:
        # Problems about a route or digest name it, so they are found without counting.
        if isinstance(value, list):
            _yaml.labels[str(info.field_name)] = [_name_of(item) for item in value]
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url_is_supported(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "sqlite+aiosqlite:///", "postgresql://", "postgresql+asyncpg://")):
            raise ValueError("must be sqlite:///PATH or postgresql://…")
        return value

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            _ContractEnvSource(settings_cls),
            _YamlSource(settings_cls, _yaml.path),
        )


# The variables the contract names outside the OZ_BRIDGE_<SECTION>__<KEY> scheme.
_ENV_ALIASES: dict[str, tuple[str, ...]] = {
    "WARP_API_KEY": ("oz", "api_key"),
    "OZ_API_BASE_URL": ("oz", "base_url"),
    "SLACK_BOT_TOKEN": ("slack", "bot_token"),
    "SLACK_SIGNING_SECRET": ("slack", "signing_secret"),
    "SLACK_APP_TOKEN": ("slack", "app_token"),
    "SLACK_API_URL": ("slack", "api_url"),
    "OZ_BRIDGE_POLL_INTERVAL": ("poll", "interval"),
}


class _YamlRead:
    """The YAML file this load reads, and the problems found while expanding it."""

    path: Path | None = None
    problems: list[tuple[str, str]] = []
    labels: dict[str, list[str | None]] = {}  # section → the names of its items, by index


_yaml = _YamlRead()


class _ContractEnvSource(PydanticBaseSettingsSource):
    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, (section, key) in _ENV_ALIASES.items():
            if os.environ.get(name):
                values.setdefault(section, {})[key] = os.environ[name]
        return values


class _YamlSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return read_yaml(self.path) if self.path else {}


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the config file ({exc.strerror})"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text (byte {exc.start})"]) from None
    except RecursionError:
        raise ConfigError([f"{path}: an alias refers to itself"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError([f"{path}:{where}: {problem}"]) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError([f"{path}: the top level must be a mapping of sections (poll, targets, routes, …)"])
    for section in LABELLED_SECTIONS:
        items = loaded.get(section)
        if isinstance(items, list):
            _yaml.labels[section] = [_name_of(item) for item in items]
    try:
        expanded = _expand(loaded, (), _yaml.problems)
    except RecursionError:
        raise ConfigError([f"{path}: an alias refers to itself"]) from None
    return dict(expanded)


_PLACEHOLDERS = {"url": "https://unset.invalid/", "secret": "whsec_dW5zZXQ=", "api_url": "https://unset.invalid/"}
_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand(value: Any, path: tuple[str, ...], problems: list[tuple[str, str]]) -> Any:
    if isinstance(value, dict):
        return {k: _expand(v, (*path, str(k)), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, (*path, str(i)), problems) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        if name not in os.environ:
            where = _dotted(path)
            problems.append((where, f"{where}: environment variable {name} is not set (used as ${{{name}}})"))
            # A stand-in of the right shape, so the rest of the file is still checked.
            return _PLACEHOLDERS.get(path[-1] if path else "", "unset")
        return os.environ[name]

    return _VAR.sub(replace, value)


LABELLED_SECTIONS = ("routes", "digests")


def _name_of(item: object) -> str | None:
    name = item.get("name") if isinstance(item, dict) else None
    return name[:64] if isinstance(name, str) and name else None


def item_where(section: str, index: int, name: str | None) -> str:
    """How a problem names an item of a list section: ``routes[2] (page-oncall)``."""
    return f"{section}[{index}]" + (f" ({name})" if name else "")


def _dotted(path: tuple[str | int, ...]) -> str:
    text = ""
    for depth, part in enumerate(path):
        if isinstance(part, int) or (isinstance(part, str) and part.isdigit()):
            names = _yaml.labels.get(str(path[0])) if depth == 1 else None
            name = names[int(part)] if names and int(part) < len(names) else None
            text += item_where("", int(part), name)
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def config_path(cli_path: str | None) -> tuple[Path | None, bool]:
    """Which YAML to read, and whether the user asked for it explicitly."""
    if cli_path:
        return Path(cli_path), True
    if os.environ.get("OZ_BRIDGE_CONFIG"):
        return Path(os.environ["OZ_BRIDGE_CONFIG"]), True
    return Path(DEFAULT_CONFIG_PATH), False


def load_settings(
    cli_path: str | None = None, *, check: bool = True, allow_disabled: bool = False, **overrides: Any
) -> Settings:
    """Build validated settings or raise ``ConfigError`` listing every problem at once.

    With ``check``, cross-section problems (unknown targets, bad event patterns…)
    are included too; a key whose ``${VAR}`` is missing is reported once, for that.
    ``allow_disabled`` accepts Slack targets without a token (``run`` switches them off).
    """
    path, explicit = config_path(cli_path)
    if path is not None and not path.exists():
        if explicit:
            raise ConfigError([f"{path}: config file not found"])
        path = None
    _yaml.path, _yaml.problems, _yaml.labels = path, [], {}
    settings: Settings | None = None
    try:
        settings = Settings(**overrides)
        invalid: list[tuple[str, str]] = []
    except ValidationError as exc:
        invalid = [_describe(error) for error in exc.errors()]
    except SettingsError as exc:
        # A list or mapping given in the environment that is not JSON.
        field = str(exc).split('"')[1] if '"' in str(exc) else "?"
        hint = f'OZ_BRIDGE_{field.upper()}__… values that are lists or mappings must be JSON, e.g. \'["U1", "U2"]\''
        raise ConfigError([f"environment: {hint}"]) from None
    missing = _yaml.problems
    unset = {where for where, _ in missing}
    problems = [line for _, line in missing] + [line for where, line in invalid if where not in unset]
    if settings is not None and check:
        from bridge.config_checks import problems as cross_problems

        # A key whose ${VAR} is missing is reported once, for that, not again for its stand-in.
        cross = cross_problems(settings, allow_disabled=allow_disabled)
        problems += [line for line in cross if line.split(":", 1)[0] not in unset]
    if problems or settings is None:
        raise ConfigError(problems)
    return settings


_TAGS = {"webhook", "slack", "console"}


def _describe(error: Any) -> tuple[str, str]:
    loc = tuple(error["loc"])
    if len(loc) > 2 and loc[0] == "targets" and loc[2] in _TAGS:
        loc = loc[:2] + loc[3:]
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    elif error["type"] == "missing":
        message = "required key is missing"
    return _dotted(loc), f"{_dotted(loc)}: {message}"
