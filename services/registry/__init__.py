# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The VIC registry service: users, projects, members and roles in front of Debian's docker-registry
(Distribution 2.8), its token service, a Harbor v2.0 API subset and the audit log (docs/registry.md)."""
