# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The repository/artifact index and the audit entries of pushes, pulls and deletions, kept from
Distribution's notifications (so listing repositories needs no catalog walk)."""

from sqlalchemy import delete, select

from ansible_collections.vic.containers.services.registry.store import (
    Artifact, ManifestBlob, Project, ProjectBlob, Repository, Tag, utcnow
)
from ansible_collections.vic.containers.services.registry.views import audit


def project_name(repository):
    """The project's name in a full repository name (its first path element), or None."""
    name, sep, _rest = repository.partition("/")
    return name if sep else None


def project_of(session, repository):
    """The project of a full repository name, or None."""
    name = project_name(repository)
    return None if name is None else session.scalar(select(Project).where(Project.name == name))


def _repository(session, project, name):
    repo = session.scalar(select(Repository).where(Repository.name == name))
    if repo is None:
        repo = Repository(project_id=project.id, name=name)
        session.add(repo)
        session.flush()
    return repo


def _artifact(session, repo, digest):
    return session.scalar(select(Artifact).where(Artifact.repository_id == repo.id, Artifact.digest == digest))


def _resource(repository, tag, digest):
    return "%s:%s" % (repository, tag) if tag else "%s@%s" % (repository, digest)


def pushed(session, actor, repository, digest, media_type, size, tag=None):
    project = project_of(session, repository)
    if project is None:
        return
    repo = _repository(session, project, repository)
    artifact = _artifact(session, repo, digest)
    if artifact is None:
        artifact = Artifact(repository_id=repo.id, digest=digest, media_type=media_type or "", size=size or 0)
        session.add(artifact)
        session.flush()
    repo.updated = utcnow()
    if tag:
        existing = session.scalar(select(Tag).where(Tag.repository_id == repo.id, Tag.name == tag))
        if existing is None:
            session.add(Tag(repository_id=repo.id, artifact_id=artifact.id, name=tag))
        else:
            existing.artifact_id, existing.push_time = artifact.id, utcnow()
    audit(session, actor, "create", _resource(repository, tag, digest), "artifact", project.id)


def pulled(session, actor, repository, digest, tag=None):
    project = project_of(session, repository)
    repo = session.scalar(select(Repository).where(Repository.name == repository)) if project else None
    if repo is None:
        return
    now = utcnow()
    repo.pull_count += 1
    artifact = _artifact(session, repo, digest) if digest else None
    if artifact is not None:
        artifact.pull_time = now
    if tag:
        for row in session.scalars(select(Tag).where(Tag.repository_id == repo.id, Tag.name == tag)):
            row.pull_time = now
    audit(session, actor, "pull", _resource(repository, tag, digest), "artifact", project.id)


def release(session, project_id, digest):
    """The quota gives back the blobs only the deleted manifest ``digest`` held (Harbor frees usage at
    deletion; the bytes leave the disk at garbage collection)."""
    still = select(Artifact.id).join(Repository, Repository.id == Artifact.repository_id).where(
        Repository.project_id == project_id, Artifact.digest == digest)
    if session.scalar(still.limit(1)) is not None:
        return  # the same manifest is in another repository of the project
    session.execute(delete(ManifestBlob).where(ManifestBlob.project_id == project_id,
                                               ManifestBlob.manifest_digest == digest))
    held = select(ManifestBlob.blob_digest).where(ManifestBlob.project_id == project_id)
    session.execute(delete(ProjectBlob).where(ProjectBlob.project_id == project_id, ProjectBlob.digest.not_in(held)))


def deleted(session, actor, repository, digest, tag=None):
    """A manifest (by digest) or, from Distribution 2.8, only a tag was deleted; an emptied repository
    leaves the index."""
    project = project_of(session, repository)
    repo = session.scalar(select(Repository).where(Repository.name == repository)) if project else None
    if repo is None:
        return
    if digest:
        artifact = _artifact(session, repo, digest)
        if artifact is None:
            return  # already gone (the API deleted it and logged it)
        session.execute(delete(Tag).where(Tag.artifact_id == artifact.id))
        session.delete(artifact)
        session.flush()
        release(session, project.id, digest)
    elif tag:
        session.execute(delete(Tag).where(Tag.repository_id == repo.id, Tag.name == tag))
    session.flush()
    if session.scalar(select(Artifact.id).where(Artifact.repository_id == repo.id).limit(1)) is None:
        session.delete(repo)
    audit(session, actor, "delete", _resource(repository, tag, digest), "artifact", project.id)
