# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""PropertyCollector reads: one call however many objects; private to the collection."""

from __future__ import annotations

try:
    from pyVmomi import vim, vmodl
except ImportError:  # pragma: no cover - reported by the module
    vim = vmodl = None


class ObjectProps:
    """The properties read for one managed object."""

    __slots__ = ("ref", "props")

    def __init__(self, ref, props):
        self.ref = ref
        self.props = props

    @property
    def moid(self):
        return self.ref._moId

    @property
    def type(self):
        return self.ref._wsdlName

    def get(self, name, default=None):
        return self.props.get(name, default)

    def __repr__(self):
        return "<%s:%s %r>" % (self.type, self.moid, self.props.get("name"))


def traversal(name, type_, path, select=()):
    """A named TraversalSpec; ``select`` names the specs to follow from what it reaches."""
    pc = vmodl.query.PropertyCollector
    return pc.TraversalSpec(name=name, type=getattr(vim, type_), path=path, skip=False,
                            selectSet=[pc.SelectionSpec(name=n) for n in select])


def object_spec(obj, select_set=(), skip=False):
    return vmodl.query.PropertyCollector.ObjectSpec(obj=obj, skip=skip, selectSet=list(select_set))


def property_specs(paths_by_type):
    pc = vmodl.query.PropertyCollector
    return [pc.PropertySpec(type=getattr(vim, type_), pathSet=list(paths), all=False)
            for type_, paths in paths_by_type.items()]


def retrieve(session, object_specs, paths_by_type):
    """Read ``paths_by_type`` from the objects ``object_specs`` select, in one call.

    Larger results page through ``ContinueRetrievePropertiesEx``; each page
    is one more round trip, which a real vCenter only needs for huge answers.
    """
    pc = vmodl.query.PropertyCollector
    spec = pc.FilterSpec(objectSet=list(object_specs), propSet=property_specs(paths_by_type),
                         reportMissingObjectsInResults=True)
    collector = session.content.propertyCollector
    result = collector.RetrievePropertiesEx([spec], pc.RetrieveOptions())
    found = []
    while result is not None:
        found.extend(_objects(result.objects))
        if not result.token:
            break
        result = collector.ContinueRetrievePropertiesEx(result.token)
    return found


def retrieve_objects(session, refs, paths):
    """Read the same ``paths`` of a list of objects in one call."""
    if not refs:
        return []
    by_type = {}
    for ref in refs:
        by_type.setdefault(ref._wsdlName, paths)
    return retrieve(session, [object_spec(ref) for ref in refs], by_type)


def _objects(contents):
    for content in contents or ():
        props = {prop.name: prop.val for prop in content.propSet or ()}
        yield ObjectProps(content.obj, props)
