"""Settings: defaults < TOML file < SKYLENS_* environment < overrides (CLI flags)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from skylens.config import (
    AuthMode,
    ConfigError,
    LogLevel,
    ProtectionRuleFormat,
    QuotaSource,
    Settings,
    load,
)


def _file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "skylens.toml"
    path.write_text(text)
    return str(path)


def test_defaults() -> None:
    settings = load(environ={})

    assert settings.server.host == "127.0.0.1"
    assert settings.server.port == 9292
    assert settings.server.workers == 1
    assert settings.server.public_endpoint == ""
    assert settings.database.url == ""
    assert settings.database.auto_upgrade is True
    assert settings.images.limit_param_default == 25
    assert settings.images.api_limit_max == 1000
    assert settings.auth.mode == "trusted-headers"
    assert settings.auth.default_project == "default"
    assert settings.auth.default_roles == ("admin", "member", "reader")
    assert settings.auth.allow_remote_trusted_headers is False
    assert Path(settings.data_dir).name == "skylens"
    assert settings.database_url == f"sqlite:///{Path(settings.data_dir) / 'skylens.db'}"


def test_toml_file(tmp_path: Path) -> None:
    config = _file(
        tmp_path,
        f"""
data_dir = "{tmp_path / "data"}"

[server]
host = "::1"
port = 8080
workers = 4
access_log = false

[database]
url = "postgresql://db.example/skylens"
auto_upgrade = false

[images]
limit_param_default = 10

[auth]
default_roles = ["reader"]
""",
    )

    settings = load(config, environ={})

    assert settings.data_dir == str(tmp_path / "data")
    assert settings.server.host == "::1"
    assert settings.server.port == 8080
    assert settings.server.workers == 4
    assert settings.server.access_log is False
    assert settings.database.auto_upgrade is False
    assert settings.database_url == "postgresql://db.example/skylens"
    assert settings.images.limit_param_default == 10
    assert settings.images.api_limit_max == 1000
    assert settings.auth.default_roles == ("reader",)


def test_environment(tmp_path: Path) -> None:
    settings = load(
        environ={
            "SKYLENS_SERVER_PORT": "8081",
            "SKYLENS_DATABASE_URL": "postgresql://env/skylens",
            "SKYLENS_DATA_DIR": str(tmp_path),
            "SKYLENS_AUTH_DEFAULT_ROLES": "a, b,,",
            "SKYLENS_SERVER_ACCESS_LOG": "off",
            "SKYLENS_AUTH_ALLOW_REMOTE_TRUSTED_HEADERS": "TRUE",
        }
    )

    assert settings.server.port == 8081
    assert settings.database_url == "postgresql://env/skylens"
    assert settings.data_dir == str(tmp_path)
    assert settings.auth.default_roles == ("a", "b")
    assert settings.server.access_log is False
    assert settings.auth.allow_remote_trusted_headers is True


def test_data_dir_places_the_embedded_database(tmp_path: Path) -> None:
    settings = load(environ={"SKYLENS_DATA_DIR": str(tmp_path)})

    assert settings.database_url == f"sqlite:///{tmp_path / 'skylens.db'}"


def test_config_file_named_by_the_environment(tmp_path: Path) -> None:
    config = _file(tmp_path, "[server]\nport = 7000\n")

    assert load(environ={"SKYLENS_CONFIG": config}).server.port == 7000


def test_precedence_defaults_file_environment_overrides(tmp_path: Path) -> None:
    config = _file(
        tmp_path,
        "[server]\nport = 1000\nworkers = 3\nhost = '127.0.0.2'\n[images]\ntag_quota = 5\n",
    )
    environ = {"SKYLENS_SERVER_PORT": "2000", "SKYLENS_SERVER_WORKERS": "6"}

    settings = load(
        config,
        environ=environ,
        overrides={"server.port": 3000, "server.workers": None, "data_dir": str(tmp_path)},
    )

    assert settings.server.port == 3000  # override beats environment and file
    assert settings.server.workers == 6  # environment beats file; None overrides nothing
    assert settings.server.host == "127.0.0.2"  # file beats default
    assert settings.images.tag_quota == 5
    assert settings.images.property_quota == 128  # default
    assert settings.data_dir == str(tmp_path)


def test_unknown_environment_names_are_ignored() -> None:
    settings = load(
        environ={
            "SKYLENS_NOPE": "1",
            "SKYLENS_SERVER_NOPE": "1",
            "SKYLENS_SERVER": "1",
            "SKYLENS_INTERNAL_RESOLVED_SETTINGS": "{}",
            "OTHER_SERVER_PORT": "1",
        }
    )

    assert settings == load(environ={})


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[server]\nprot = 1\n", "server.prot"),
        ("colour = 'blue'\n", "colour"),
        ("[nope]\nx = 1\n", "nope"),
        ("[auth]\nmode = 'x'\nallow_remote = true\n", "auth.allow_remote"),
    ],
)
def test_unknown_option_in_the_file_is_named(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(ConfigError, match=rf"unknown option\(s\): {named}\b"):
        load(_file(tmp_path, text), environ={})


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[server]\nport = 'abc'\n", "server.port"),
        ("[server]\nworkers = true\n", "server.workers"),
        ("[server]\naccess_log = 'maybe'\n", "server.access_log"),
        ("[server]\nhost = ['a']\n", "server.host"),
        ("[database]\nauto_upgrade = 2\n", "database.auto_upgrade"),
    ],
)
def test_bad_types_in_the_file_are_named(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(ConfigError, match=rf"invalid value for {named}:"):
        load(_file(tmp_path, text), environ={})


def test_a_section_that_is_not_a_table(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[server\] must be a table"):
        load(_file(tmp_path, "server = 3\n"), environ={})


def test_bad_type_in_the_environment_is_named() -> None:
    with pytest.raises(ConfigError, match=r"invalid value for server\.port"):
        load(environ={"SKYLENS_SERVER_PORT": "eighty"})


def test_unreadable_or_invalid_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load(str(tmp_path / "missing.toml"), environ={})
    with pytest.raises(ConfigError, match="cannot read config file"):
        load(_file(tmp_path, "[server\nport = 1\n"), environ={})


def test_settings_are_frozen() -> None:
    settings = load(environ={})

    with pytest.raises(AttributeError):
        settings.server.port = 1  # type: ignore[misc]
    assert isinstance(settings, Settings)


def test_choices_are_typed() -> None:
    settings = load(
        environ={
            "SKYLENS_AUTH_MODE": "tokens",
            "SKYLENS_AUTH_TOKEN_FILE": "/etc/skylens/tokens.toml",
            "SKYLENS_QUOTAS_SOURCE": "config",
            "SKYLENS_SERVER_LOG_LEVEL": "debug",
        }
    )

    assert settings.auth.mode is AuthMode.TOKENS
    assert settings.quotas.source is QuotaSource.CONFIG
    assert settings.server.log_level is LogLevel.DEBUG
    assert settings.images.property_protection_rule_format is ProtectionRuleFormat.ROLES


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[auth]\nmode = 'kerberos'\n",
            "unknown auth.mode 'kerberos' (supported: trusted-headers, tokens, keystone)",
        ),
        ("[auth]\nmode = 'Tokens'\n", "unknown auth.mode 'Tokens'"),
        ("[quotas]\nsource = 'ldap'\n", "unknown quotas.source 'ldap' (supported: none, "),
        ("[server]\nlog_level = 'INFO'\n", "unknown server.log_level 'INFO' (supported: "),
        (
            "[images]\nproperty_protection_rule_format = 'policies'\n",
            'images.property_protection_rule_format = "policies" is not supported: only "roles"',
        ),
        (
            "[images]\nproperty_protection_rule_format = 'acl'\n",
            "unknown images.property_protection_rule_format 'acl' (supported: roles)",
        ),
        ("[auth]\nmode = 'tokens'\n", 'auth.mode = "tokens" needs auth.token_file'),
        (
            "[auth]\nmode = 'keystone'\n[keystone]\nauth_url = 'http://k/v3'\n",
            'auth.mode = "keystone" needs keystone.username, keystone.password',
        ),
        (
            "[quotas]\nsource = 'keystone'\n",
            'quotas.source = "keystone" needs keystone.endpoint_id',
        ),
        (
            "[quotas.projects.alpha]\nimage_count = 3\n",
            "quotas.projects.alpha.image_count: unknown resource (known: image_size_total, ",
        ),
        (
            "[quotas.projects.alpha]\nimage_size_total = 'lots'\n",
            "quotas.projects.alpha.image_size_total: not an integer: 'lots'",
        ),
        ("[storage]\nsweep_grace_seconds = 0\n", "storage.sweep_grace_seconds must be at least 1"),
        ("[server]\nworkers = 0\n", "server.workers must be at least 1"),
        ("[database]\npool_size = 0\n", "database.pool_size must be at least 1"),
        ("[server]\nbody_read_timeout_seconds = 0\n", "server.body_read_timeout_seconds must be"),
    ],
)
def test_choices_and_what_they_need_are_checked_on_load(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load(_file(tmp_path, text), environ={})

    assert str(raised.value).startswith(message)


def test_import_filtering_and_web_download(tmp_path: Path) -> None:
    text = (
        '[import_filtering]\nallowed_hosts = ["127.0.0.1"]\nallowed_ports = [8080, "9090"]\n'
        "[web_download]\nread_timeout_seconds = 0.5\nmax_resumes = 0\n"
    )
    settings = load(
        _file(tmp_path, text), environ={"SKYLENS_IMPORT_FILTERING_DISALLOWED_PORTS": "22, 25"}
    )

    assert settings.import_filtering.allowed_hosts == ("127.0.0.1",)
    assert settings.import_filtering.allowed_ports == (8080, 9090)
    assert settings.import_filtering.disallowed_ports == (22, 25)
    assert settings.import_filtering.allowed_schemes == ("http", "https")
    assert not settings.import_filtering.allow_private_networks
    assert settings.web_download.read_timeout_seconds == 0.5
    assert settings.web_download.connect_timeout_seconds == 30.0
    assert (settings.web_download.max_redirects, settings.web_download.max_resumes) == (5, 0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[import_filtering]\nallowed_ports = [0]\n", "import_filtering.allowed_ports: ports"),
        ("[import_filtering]\nallowed_ports = ['http']\n", "invalid value for import_filtering"),
        ("[web_download]\nread_timeout_seconds = 0\n", "read_timeout_seconds must be more"),
        ("[web_download]\nconnect_timeout_seconds = true\n", "invalid value for web_download"),
        ("[web_download]\nmax_redirects = -1\n", "web_download.max_redirects must be at least 0"),
    ],
)
def test_web_download_limits_are_checked(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(_file(tmp_path, text), environ={})


def test_import_plugins_as_glance_names_them(tmp_path: Path) -> None:
    text = (
        '[image_import]\nplugins = ["image_conversion", "inject_image_metadata"]\n'
        '[image_conversion]\noutput_format = "qcow2"\n'
        '[inject_metadata_properties]\nignore_user_roles = ["admin", "service"]\n'
        'inject = { os_distro = "ubuntu" }\n'
    )
    settings = load(_file(tmp_path, text), environ={})

    assert settings.image_import.plugins == ("image_conversion", "inject_image_metadata")
    assert settings.image_conversion.output_format == "qcow2"
    assert settings.inject_metadata_properties.ignore_user_roles == ("admin", "service")
    assert settings.inject_metadata_properties.inject == {"os_distro": "ubuntu"}
    assert load(environ={}).image_import.plugins == ()


def test_glance_download_copies_glances_property_prefixes_by_default(tmp_path: Path) -> None:
    default = load(environ={}).glance_download_properties.extra_properties
    text = '[glance_download_properties]\nextra_properties = ["hw_", "os_"]\n'

    assert default == ("hw_", "trait:", "os_distro", "os_secure_boot", "os_type")
    assert load(_file(tmp_path, text), environ={}).glance_download_properties.extra_properties == (
        "hw_",
        "os_",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[image_import]\nplugins = ["bogus"]', "unknown plugin 'bogus'"),
        ('[image_conversion]\noutput_format = "vhd"', "output_format must be one of"),
        (
            "[inject_metadata_properties]\ninject = { os_glance_x = 1 }",
            "'os_glance_x' is not a property an import may set",
        ),
        (
            '[glance_download_properties]\nextra_properties = ["hw_", "os_glance"]',
            "'os_glance' is not a prefix of properties an import may set",
        ),
    ],
)
def test_import_plugin_options_are_checked(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(_file(tmp_path, text), environ={})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server]\nmetrics_port = 70000", "server.metrics_port must be 0 to 65535"),
        ("[server]\nport = 9000\nmetrics_port = 9000", "must differ from server.port"),
        ('[server]\nmetrics_port = 9100\nmetrics_path = ""', "needs server.metrics_path"),
    ],
)
def test_the_metrics_port_is_checked(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(_file(tmp_path, text), environ={})
    server = load(_file(tmp_path, "[server]\nmetrics_port = 9100"), environ={}).server
    assert (server.metrics_port, server.metrics_host, server.metrics_path) == (
        9100,
        "127.0.0.1",
        "/metrics",
    )


def test_image_cache_as_glance_names_it(tmp_path: Path) -> None:
    text = (
        '[image_cache]\ndir = "/var/cache/skylens"\nmax_size = 1024\n'
        'stall_time_seconds = 60\nnode_reference = "http://node-1:9292"\n'
    )
    settings = load(_file(tmp_path, text), environ={"SKYLENS_IMAGE_CACHE_POLL_SECONDS": "0.5"})

    cache = settings.image_cache
    assert (cache.dir, cache.max_size, cache.stall_time_seconds) == ("/var/cache/skylens", 1024, 60)
    assert cache.node() == "http://node-1:9292"
    assert cache.poll_seconds == 0.5
    defaults = load(environ={}).image_cache
    assert defaults.dir == ""  # no cache
    assert defaults.max_size == 10 << 30
    assert defaults.node() == socket.gethostname()


@pytest.mark.parametrize(
    "text",
    [
        "[image_cache]\nmax_size = -1\n",
        "[image_cache]\nstall_time_seconds = 0\n",
        "[image_cache]\npoll_seconds = 0\n",
        f'[image_cache]\nnode_reference = "{"n" * 256}"\n',
    ],
)
def test_image_cache_options_are_checked(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="image_cache"):
        load(_file(tmp_path, text), environ={})
