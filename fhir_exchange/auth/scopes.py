"""SMART App Launch v2 scopes for systems: ``system/<Type|*>.<cruds>`` (v1 ``.read`` /
``.write`` / ``.*`` are read as ``rs`` / ``cud`` / ``cruds``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_SCOPE = re.compile(r"^system/(\*|[A-Z][A-Za-z]+)\.(\*|read|write|[cruds]+)$")
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
ADMIN_SCOPE = "baylink/admin"  # registering clients through the admin API
LETTERS = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}


def parse_scope(scope: str) -> tuple[str, str] | None:
    """(resource type or '*', permission letters) of a system scope; None if it is not one."""
    match = _SCOPE.match(scope)
    if not match:
        return None
    resource_type, permissions = match.groups()
    letters = _V1.get(permissions, permissions)
    if list(letters) != sorted(set(letters), key="cruds".index):
        return None  # v2 letters appear at most once, in the order c r u d s
    return resource_type, letters


@dataclass(frozen=True, slots=True)
class Scopes:
    granted: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Scopes:
        return cls(tuple(dict.fromkeys(s for s in text.split() if s)))

    def allows(self, resource_type: str, letter: str) -> bool:
        for scope in self.granted:
            parsed = parse_scope(scope)
            if parsed and parsed[0] in ("*", resource_type) and letter in parsed[1]:
                return True
        return False

    def has(self, scope: str) -> bool:
        return scope in self.granted

    def within(self, allowed: Scopes) -> Scopes:
        """The requested scopes the client may be given: each requested system scope cut
        down to the permissions its registration allows; other scopes only if registered."""
        result = []
        for scope in self.granted:
            parsed = parse_scope(scope)
            if parsed is None:
                if allowed.has(scope):
                    result.append(scope)
                continue
            resource_type, letters = parsed
            if resource_type == "*":
                # a wildcard request gets each registered scope's permissions it asks for
                for registered in allowed.granted:
                    reg = parse_scope(registered)
                    if reg:
                        kept = "".join(ch for ch in "cruds" if ch in letters and ch in reg[1])
                        if kept:
                            result.append(f"system/{reg[0]}.{kept}")
                continue
            kept = "".join(ch for ch in "cruds" if ch in letters and allowed.allows(resource_type, ch))
            if kept:
                result.append(f"system/{resource_type}.{kept}")
        return Scopes(tuple(dict.fromkeys(result)))

    def __str__(self) -> str:
        return " ".join(self.granted)
