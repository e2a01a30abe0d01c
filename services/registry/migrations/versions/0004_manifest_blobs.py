# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The blobs each manifest references, so deleting an artifact gives its storage back to the quota.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade():
    op.create_table(
        "manifest_blobs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("manifest_digest", sa.String(128), nullable=False, index=True),
        sa.Column("blob_digest", sa.String(128), nullable=False),
        sa.UniqueConstraint("project_id", "manifest_digest", "blob_digest"),
    )


def downgrade():
    op.drop_table("manifest_blobs")
