"""evidence: sealed originals beside the cleaned copy, picture hashes (SHA-256, PDQ), upload slots

Revision ID: 0012_evidence
Revises: 0010_language
Create Date: 2026-12-01

Issue 16. From now on every uploaded file is kept twice, and `file_sha256` is the SHA-256 of the ORIGINAL as
received; `file_copy_sha256` is the cleaned copy's.

Existing rows: before this revision the original bytes were discarded and `file_sha256` was the hash of the
re-encoded copy. Nothing can bring those originals back, so the upgrade says so instead of pretending: for every
row with a file it moves the value to `file_copy_sha256` (it is, and stays, the correct hash of the file we
hold) and sets `file_sha256` to NULL ("original not kept"); `file_original_key` stays NULL, so such a file has
no original to export and the API shows `original_kept: false`. Their bytes on disk are untouched.

The downgrade puts the copy's hash back into `file_sha256` (what the older code means by it) and drops the new
columns; originals stored meanwhile stay on disk, unreferenced (delete them by hand if wanted: their names end
in `.original`). Hashes and upload slots recorded meanwhile are lost with their columns.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import infra.db.types

revision = "0012_evidence"
down_revision = "0010_language"
branch_labels = None
depends_on = None

SHA = sqlmodel.sql.sqltypes.AutoString(length=64)


def upgrade() -> None:
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        batch_op.add_column(sa.Column("file_copy_sha256", SHA, nullable=True))
        batch_op.add_column(
            sa.Column("file_original_key", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True)
        )
        batch_op.add_column(sa.Column("file_original_size", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("file_sealed", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("image_sha256", SHA, nullable=True))
        batch_op.add_column(sa.Column("image_pdq", SHA, nullable=True))
        batch_op.add_column(sa.Column("image_pdq_quality", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("image_width", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("image_height", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("upload_slot_opened_by", sa.Uuid(), nullable=True))
        batch_op.add_column(
            sa.Column("upload_slot_opened_at", infra.db.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("upload_slot_reason", sa.Text(), nullable=True))
        batch_op.create_foreign_key(
            "fk_evidence_upload_slot_opened_by_app_user", "app_user", ["upload_slot_opened_by"], ["id"]
        )
        batch_op.create_index("ix_evidence_upload_slot_opened_by", ["upload_slot_opened_by"], unique=False)
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        batch_op.alter_column("file_sealed", server_default=None)
    # The hash recorded so far was the copy's: it moves to where the copy's hash belongs; the original's is
    # unknown (never kept).
    op.execute(
        "UPDATE evidence SET file_copy_sha256 = file_sha256, file_sha256 = NULL WHERE file_key IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("UPDATE evidence SET file_sha256 = file_copy_sha256 WHERE file_key IS NOT NULL")
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        batch_op.drop_index("ix_evidence_upload_slot_opened_by")
        batch_op.drop_constraint("fk_evidence_upload_slot_opened_by_app_user", type_="foreignkey")
        for column in (
            "upload_slot_reason",
            "upload_slot_opened_at",
            "upload_slot_opened_by",
            "image_height",
            "image_width",
            "image_pdq_quality",
            "image_pdq",
            "image_sha256",
            "file_sealed",
            "file_original_size",
            "file_original_key",
            "file_copy_sha256",
        ):
            batch_op.drop_column(column)
