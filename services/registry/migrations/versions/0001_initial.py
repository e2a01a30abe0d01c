# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The first schema: users, projects, members, the repository index, quota blobs, the audit log.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade():
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(255), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("email", sa.String(255), nullable=False),
        sa.Column("realname", sa.String(255), nullable=False),
        sa.Column("comment", sa.String(255), nullable=False),
        sa.Column("sysadmin", sa.Boolean, nullable=False),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("updated", sa.DateTime, nullable=False),
    )
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("meta", sa.JSON, nullable=False),
        sa.Column("storage_limit", sa.BigInteger, nullable=False),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("updated", sa.DateTime, nullable=False),
    )
    op.create_table(
        "members",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("role_id", sa.Integer, nullable=False),
        sa.UniqueConstraint("project_id", "user_id"),
    )
    op.create_table(
        "repositories",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("name", sa.String(512), nullable=False, unique=True),
        sa.Column("pull_count", sa.Integer, nullable=False),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("updated", sa.DateTime, nullable=False),
    )
    op.create_table(
        "artifacts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("repository_id", sa.Integer, sa.ForeignKey("repositories.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("digest", sa.String(128), nullable=False),
        sa.Column("media_type", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("push_time", sa.DateTime, nullable=False),
        sa.Column("pull_time", sa.DateTime, nullable=True),
        sa.UniqueConstraint("repository_id", "digest"),
    )
    op.create_table(
        "tags",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("repository_id", sa.Integer, sa.ForeignKey("repositories.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("artifact_id", sa.Integer, sa.ForeignKey("artifacts.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("push_time", sa.DateTime, nullable=False),
        sa.Column("pull_time", sa.DateTime, nullable=True),
        sa.UniqueConstraint("repository_id", "name"),
    )
    op.create_table(
        "project_blobs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("digest", sa.String(128), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("project_id", "digest"),
    )
    op.create_table(
        "audit_logs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, nullable=True, index=True),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("operation", sa.String(32), nullable=False),
        sa.Column("resource", sa.String(512), nullable=False),
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("op_time", sa.DateTime, nullable=False, index=True),
    )


def downgrade():
    for table in ("audit_logs", "project_blobs", "tags", "artifacts", "repositories", "members", "projects", "users"):
        op.drop_table(table)
