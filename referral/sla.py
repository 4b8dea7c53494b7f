"""How long a receiving institution has to accept a referral, by priority, and the job that
flags and escalates the ones past due.

The default answers the issue: routine within 5 working days, urgent within 24 hours (asap
8 hours, stat 2 hours). Deployments set their own (``BAYLINK_REFERRAL_SLA``, e.g.
``{"routine": "5wd", "urgent": "24h"}``: ``wd`` working days Monday–Friday, ``h`` hours).
Public holidays differ between Hong Kong, Macao and the mainland and are not counted out.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import orjson

from fhir_exchange.notify.outbox import enqueue
from fhir_exchange.service import FhirService
from referral.rules import BUSINESS_STATUS, is_referral_task

DEFAULT_SLA = {"routine": "5wd", "urgent": "24h", "asap": "8h", "stat": "2h"}
WAITING = ("requested", "received")  # not yet accepted or rejected
OVERDUE = {"coding": [{"system": BUSINESS_STATUS, "code": "overdue", "display": "overdue"}],
           "text": "not accepted within its time"}


def parse_sla(text: str | None) -> dict[str, str]:
    if not text:
        return dict(DEFAULT_SLA)
    loaded = orjson.loads(text)
    for priority, limit in loaded.items():
        if not isinstance(limit, str) or not (limit.endswith("wd") or limit.endswith("h")) or not limit.rstrip("wdh").isdigit():
            raise ValueError(f"referral SLA for '{priority}' must look like '5wd' or '24h', not {limit!r}")
    return {**DEFAULT_SLA, **loaded}


def add_working_days(start: datetime, days: int) -> datetime:
    moment = start
    while days > 0:
        moment += timedelta(days=1)
        if moment.weekday() < 5:
            days -= 1
    return moment


def due_by(authored: datetime, priority: str, sla: Mapping[str, str]) -> datetime:
    limit = sla.get(priority) or sla["routine"]
    if limit.endswith("wd"):
        return add_working_days(authored, int(limit[:-2]))
    return authored + timedelta(hours=int(limit[:-1]))


def flag_overdue(service: FhirService, now: datetime, sla: Mapping[str, str]) -> list[str]:
    """Mark waiting referrals past their time ``overdue`` and tell both institutions, once."""
    flagged = []
    query = service.parser.parse("Task", [("code", "http://hl7.org/fhir/CodeSystem/task-code|fulfill"),
                                          ("status", ",".join(WAITING))])
    for stored in service.repo.load(service.repo.search_pks(query)):
        task: dict[str, Any] = dict(stored.content or {})
        if not is_referral_task(task) or not task.get("authoredOn"):
            continue
        if any(c.get("code") == "overdue" for c in (task.get("businessStatus") or {}).get("coding") or []):
            continue
        authored = datetime.fromisoformat(task["authoredOn"].replace("Z", "+00:00"))
        if now <= due_by(authored, task.get("priority", "routine"), sla):
            continue
        task["businessStatus"] = OVERDUE
        service.repo.write_internal("Task", stored.id, task)
        for side in ("owner", "requester"):
            reference = (task.get(side) or {}).get("reference", "")
            enqueue(service.repo.session, f"referral-overdue:Task/{stored.id}:{side}", "referral-overdue", reference,
                    {"task": f"Task/{stored.id}", "priority": task.get("priority", "routine")})
        flagged.append(stored.id)
    return flagged
