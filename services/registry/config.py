# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The service's YAML configuration (the contract with the `registry` role; docs/registry.md)."""

import dataclasses
from pathlib import Path

import yaml


class ConfigError(ValueError):
    """The configuration file is missing a key or holds a wrong value."""


@dataclasses.dataclass(frozen=True)
class Config:
    listen_host: str
    listen_port: int
    external_url: str
    database_url: str
    token_issuer: str
    token_service: str
    token_key: Path
    token_expiry: int
    distribution_url: str
    distribution_config: Path
    distribution_binary: Path
    notify_secret_file: Path | None
    admin_password_file: Path | None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    workers: int = 1

    @property
    def realm(self):
        return self.external_url.rstrip("/") + "/service/token"


def _path(value):
    return Path(value) if value else None


def load(path):
    """The Config of the YAML file at ``path``; ConfigError says what is wrong."""
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError("cannot read %s: %s" % (path, error)) from error
    try:
        host, _sep, port = str(data["listen"]).rpartition(":")
        token = data["token"]
        distribution = data.get("distribution") or {}
        tls = data.get("tls") or {}
        return Config(
            listen_host=host.strip("[]") or "127.0.0.1", listen_port=int(port),
            external_url=str(data["external_url"]).rstrip("/"),
            database_url=str(data["database_url"]),
            token_issuer=str(token.get("issuer", "vic-registry")), token_service=str(token.get("service", "vic-registry")),
            token_key=Path(token["key"]), token_expiry=int(token.get("expiry", 1800)),
            distribution_url=str(distribution.get("url", "http://127.0.0.1:5000")).rstrip("/"),
            distribution_config=Path(distribution.get("config", "/etc/docker/registry/config.yml")),
            distribution_binary=Path(distribution.get("binary", "/usr/bin/docker-registry")),
            notify_secret_file=_path((data.get("notifications") or {}).get("secret_file")),
            admin_password_file=_path(data.get("admin_password_file")),
            tls_cert=_path(tls.get("cert")), tls_key=_path(tls.get("key")),
            workers=max(1, int(data.get("workers", 1))),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ConfigError("%s: missing or wrong key: %s" % (path, error)) from error
