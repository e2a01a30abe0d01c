# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The metadata store: SQLAlchemy 2 models, the engine (SQLite by default, any SQLAlchemy URL
accepted unchanged) and the Alembic migrations shipped in migrations/, applied programmatically."""

import datetime
import json
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import (
    JSON, BigInteger, Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint, create_engine, event
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"
UNLIMITED = -1


def utcnow():
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    email: Mapped[str] = mapped_column(String(255), default="")
    realname: Mapped[str] = mapped_column(String(255), default="")
    comment: Mapped[str] = mapped_column(String(255), default="")
    sysadmin: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    updated: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # Harbor's metadata: string values ("true"/"false" for the flags).
    meta: Mapped[dict] = mapped_column(JSON, default=dict)
    storage_limit: Mapped[int] = mapped_column(BigInteger, default=UNLIMITED)
    created: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    updated: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    @property
    def public(self):
        return (self.meta or {}).get("public") == "true"


class Member(Base):
    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("project_id", "user_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role_id: Mapped[int] = mapped_column(Integer)


class Repository(Base):
    __tablename__ = "repositories"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(512), unique=True)  # full name: project/repo
    pull_count: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    updated: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class Artifact(Base):
    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("repository_id", "digest"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"), index=True)
    digest: Mapped[str] = mapped_column(String(128))
    media_type: Mapped[str] = mapped_column(String(255), default="")
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    push_time: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    pull_time: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)


class Tag(Base):
    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("repository_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"), index=True)
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    push_time: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    pull_time: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)


class ProjectBlob(Base):
    """A blob counted once in its project's storage usage (the quota)."""
    __tablename__ = "project_blobs"
    __table_args__ = (UniqueConstraint("project_id", "digest"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    digest: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(BigInteger)


class ManifestBlob(Base):
    """A blob a manifest of the project references (itself included): what its deletion may free."""
    __tablename__ = "manifest_blobs"
    __table_args__ = (UniqueConstraint("project_id", "manifest_digest", "blob_digest"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    manifest_digest: Mapped[str] = mapped_column(String(128), index=True)
    blob_digest: Mapped[str] = mapped_column(String(128))


class AuditLog(Base):
    __tablename__ = "audit_logs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int | None] = mapped_column(Integer, index=True, nullable=True)
    username: Mapped[str] = mapped_column(String(255))
    operation: Mapped[str] = mapped_column(String(32))
    resource: Mapped[str] = mapped_column(String(512))
    resource_type: Mapped[str] = mapped_column(String(32))
    op_time: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow, index=True)


class GCRun(Base):
    """One garbage collection: its parameters, status, log and the bytes it freed."""
    __tablename__ = "gc_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="MANUAL")
    parameters: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="Pending")
    freed_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    log: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    updated: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class RemoteRegistry(Base):
    """A registry endpoint replication pushes to."""
    __tablename__ = "remote_registries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    url: Mapped[str] = mapped_column(String(512))
    username: Mapped[str] = mapped_column(String(255), default="")
    # Stored as given (the database is the service's own, 0600): Harbor encrypts it with a key file.
    secret: Mapped[str] = mapped_column(String(1024), default="")
    insecure: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str] = mapped_column(String(1024), default="")
    created: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    updated: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class ReplicationPolicy(Base):
    __tablename__ = "replication_policies"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str] = mapped_column(String(1024), default="")
    dest_registry_id: Mapped[int] = mapped_column(ForeignKey("remote_registries.id"))
    dest_namespace: Mapped[str] = mapped_column(String(255), default="")
    filters: Mapped[list] = mapped_column(JSON, default=list)  # Harbor's [{type: name|tag, value: pattern}]
    trigger: Mapped[str] = mapped_column(String(32), default="manual")  # manual | event_based
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    override: Mapped[bool] = mapped_column(Boolean, default=True)
    created: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    updated: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class ReplicationExecution(Base):
    __tablename__ = "replication_executions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("replication_policies.id", ondelete="CASCADE"), index=True)
    trigger: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="InProgress")
    status_text: Mapped[str] = mapped_column(Text, default="")
    start_time: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    end_time: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)


class ReplicationTask(Base):
    __tablename__ = "replication_tasks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    execution_id: Mapped[int] = mapped_column(ForeignKey("replication_executions.id", ondelete="CASCADE"),
                                              index=True)
    src_resource: Mapped[str] = mapped_column(String(512))
    dst_resource: Mapped[str] = mapped_column(String(512))
    status: Mapped[str] = mapped_column(String(16), default="Pending")
    log: Mapped[str] = mapped_column(Text, default="")
    start_time: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    end_time: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)


def engine_for(url):
    """The engine of ``url``; SQLite gets foreign keys on and WAL (readers do not wait on a writer)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False},
                               json_serializer=json.dumps)

        @event.listens_for(engine, "connect")
        def _pragmas(connection, _record):
            cursor = connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()
        return engine
    return create_engine(url, pool_pre_ping=True)


def migrate(engine):
    """Apply the shipped migrations up to head (idempotent)."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def sessions(engine):
    return sessionmaker(engine, expire_on_commit=False)
