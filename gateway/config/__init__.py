"""The gateway's configuration: models, loading, plugin options, ``init``.

Settings are declared once in :mod:`gateway.config._models` (sources and
partners in :mod:`gateway.config._connections`); the reference
page ``docs/configuration.md`` is generated from them by
:mod:`gateway.config.reference`.
"""

from gateway.config._connections import PartnerSettings, RetrySettings, SourceSettings
from gateway.config._durations import Duration, format_duration, parse_duration
from gateway.config._environment import check_environment, derived, plugin_folders
from gateway.config._initial import ConfigExists, write_initial_config
from gateway.config._load import CONFIG_ENV, find_config, ignored_files, load_settings
from gateway.config._models import (
    DispatcherSettings,
    GatewaySettings,
    LimitsSettings,
    RetentionSettings,
    Settings,
    StoreSettings,
    ValidationSettings,
)
from gateway.config._plugin_options import CONFIGURATION, check_plugin_options, located
from gateway.config._sizes import Size, parse_size

__all__ = [
    "CONFIGURATION",
    "CONFIG_ENV",
    "ConfigExists",
    "DispatcherSettings",
    "Duration",
    "GatewaySettings",
    "LimitsSettings",
    "PartnerSettings",
    "RetentionSettings",
    "RetrySettings",
    "Settings",
    "Size",
    "SourceSettings",
    "StoreSettings",
    "ValidationSettings",
    "check_environment",
    "check_plugin_options",
    "derived",
    "find_config",
    "format_duration",
    "ignored_files",
    "load_settings",
    "located",
    "parse_duration",
    "parse_size",
    "plugin_folders",
    "write_initial_config",
]
