# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The option model of the Docker modules, after community.docker's; private.

Each option is declared once: its Ansible type, how a task's value becomes a
comparable (and API) value, where the API keeps it and how two values compare
(``strict``, ``ignore``, ``allow_more_present``). The argument spec, the
comparison that decides a change and the diff all derive from the declarations,
so an option cannot be compared one way and shown another.
An option left out of a task is not compared, as in community.docker.
"""

from __future__ import annotations

from ansible_collections.vic.containers.plugins.module_utils._errors import SpecError

COMPARISONS = ("strict", "ignore", "allow_more_present")


class Option:
    """One module option.

    ``normalize(value, option_name)``: the task's value as the comparable value (raising
    SpecError naming the option when it does not fit); ``observe(obj, extra)``: the same
    shape read from an inspect (``extra``: what else the engine read, the image say);
    ``to_api(body, value)``: the value put in a create body. ``shape`` says how values
    compare: ``value`` (equal), ``set`` (a list whose order does not matter) or ``dict``.
    """

    def __init__(self, name, kind, shape="value", comparison="strict", elements=None, aliases=(), choices=None,
                 default=None, suboptions=None, normalize=None, observe=None, to_api=None, no_log=False):
        self.name = name
        self.kind = kind
        self.shape = shape
        self.comparison = comparison
        self.spec = {"type": kind}
        for key, value in (("elements", elements), ("aliases", list(aliases) or None), ("choices", choices),
                           ("default", default), ("options", suboptions), ("no_log", no_log or None)):
            if value is not None:
                self.spec[key] = value
        self._normalize = normalize
        self._observe = observe
        self._to_api = to_api

    def normalize(self, value):
        return self._normalize(value, self.name) if self._normalize else value

    def observe(self, obj, extra=None):
        return self._observe(obj, extra) if self._observe else None

    def to_api(self, body, value):
        if self._to_api:
            self._to_api(body, value)


def argument_spec(options):
    return {option.name: dict(option.spec) for option in options}


def desired(options, params):
    """{option name: comparable value} of the options a task gives."""
    return {option.name: option.normalize(params[option.name]) for option in options
            if params.get(option.name) is not None}


def comparison_of(option, comparisons):
    """The comparison of ``option``: the task's ``comparisons`` (``*`` for all), else its own."""
    comparisons = comparisons or {}
    return comparisons.get(option.name) or comparisons.get("*") or option.comparison


def same(option, want, have, comparison):
    if comparison == "ignore":
        return True
    if option.shape == "set":
        want_set, have_set = _hashable_set(want), _hashable_set(have or [])
        return want_set <= have_set if comparison == "allow_more_present" else want_set == have_set
    if option.shape == "dict":
        have = have or {}
        if comparison == "allow_more_present":
            return all(have.get(key) == value for key, value in want.items())
        return want == have
    return want == have


def _hashable_set(values):
    return {tuple(sorted(v.items())) if isinstance(v, dict) else v for v in values}


def differences(options, want, obj, extra=None, comparisons=None):
    """(names of the options that differ, diff before, diff after) between ``want`` and an inspected ``obj``."""
    differ, before, after = [], {}, {}
    for option in options:
        if option.name not in want:
            continue
        have = option.observe(obj, extra)
        before[option.name], after[option.name] = have, want[option.name]
        if not same(option, want[option.name], have, comparison_of(option, comparisons)):
            differ.append(option.name)
    return differ, before, after


def differ_phrase(names):
    """Why an object is recreated, for its ``changes`` line: "labels differs", "env, image differ"."""
    return "%s differ%s" % (", ".join(names), "s" if len(names) == 1 else "")


def check_comparisons(options, comparisons):
    """Refuse a ``comparisons`` entry that names no option or no comparison, naming it."""
    names = {option.name for option in options} | {"*"}
    for name, value in (comparisons or {}).items():
        if name not in names:
            raise SpecError("comparisons", "%r is not an option compared with a container's (use one of %s)"
                            % (name, ", ".join(sorted(names))))
        if value not in COMPARISONS:
            raise SpecError("comparisons", "%s: %r is not one of %s" % (name, value, ", ".join(COMPARISONS)))
        shaped = [o for o in options if o.name == name]
        if value == "allow_more_present" and shaped and shaped[0].shape == "value":
            raise SpecError("comparisons", "%s: allow_more_present is for lists and dicts only" % name)
