# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Replication: remote registries, policies, executions and their tasks.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade():
    op.create_table(
        "remote_registries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("url", sa.String(512), nullable=False),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("secret", sa.String(1024), nullable=False),
        sa.Column("insecure", sa.Boolean, nullable=False),
        sa.Column("description", sa.String(1024), nullable=False),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("updated", sa.DateTime, nullable=False),
    )
    op.create_table(
        "replication_policies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("description", sa.String(1024), nullable=False),
        sa.Column("dest_registry_id", sa.Integer, sa.ForeignKey("remote_registries.id"), nullable=False),
        sa.Column("dest_namespace", sa.String(255), nullable=False),
        sa.Column("filters", sa.JSON, nullable=False),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("override", sa.Boolean, nullable=False),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("updated", sa.DateTime, nullable=False),
    )
    op.create_table(
        "replication_executions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("policy_id", sa.Integer, sa.ForeignKey("replication_policies.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_text", sa.Text, nullable=False),
        sa.Column("start_time", sa.DateTime, nullable=False),
        sa.Column("end_time", sa.DateTime, nullable=True),
    )
    op.create_table(
        "replication_tasks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("execution_id", sa.Integer, sa.ForeignKey("replication_executions.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("src_resource", sa.String(512), nullable=False),
        sa.Column("dst_resource", sa.String(512), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("log", sa.Text, nullable=False),
        sa.Column("start_time", sa.DateTime, nullable=False),
        sa.Column("end_time", sa.DateTime, nullable=True),
    )


def downgrade():
    for table in ("replication_tasks", "replication_executions", "replication_policies", "remote_registries"):
        op.drop_table(table)
