"""Section entries (CDA clinical statements) → FHIR resources.

An entry is dispatched on its C-CDA template where it has one, else on the element
(observation, organizer, substanceAdministration, procedure, act, encounter) and the kind of
section it sits in (``sections.csv``), so that CDA documents other than C-CDA (WS/T 500)
convert by the same rules. What is planned rather than done (moodCode other than EVN), and
what BayLink does not model (family history, goals, devices…), stays in the section's
narrative and is named in the warnings.
"""

from __future__ import annotations

from typing import Any

from fhir_exchange.convert.cda.context import Context
from fhir_exchange.convert.cda.datatypes import (
    codeable,
    date_time,
    effective,
    identifiers,
    original_text,
    period,
    quantity,
    value_of,
)
from fhir_exchange.convert.cda.header import practitioner, reference
from fhir_exchange.convert.cda.tables import value_map
from fhir_exchange.convert.cda.xml import Element, attr, child, children, elements, local, null, template_ids, text, xsi_type

CCDA = "2.16.840.1.113883.10.20.22.4."
ALLERGY_CONCERN = {CCDA + "30"}
ALLERGY_OBSERVATION = {CCDA + "7"}
PROBLEM_CONCERN = {CCDA + "3", CCDA + "33", CCDA + "34", CCDA + "80", CCDA + "132"}
PROBLEM_OBSERVATION = {CCDA + "4"}
RESULT_ORGANIZER = {CCDA + "1"}
VITALS_ORGANIZER = {CCDA + "26"}
SOCIAL = {CCDA + "38", CCDA + "78", CCDA + "85", "2.16.840.1.113883.10.20.15.3.8", CCDA + "200"}
PROCEDURES = {CCDA + "12", CCDA + "13", CCDA + "14"}
IMMUNIZATION = {CCDA + "52"}
MEDICATION = {CCDA + "16"}
PLANNED_MEDICATION = {CCDA + "42"}
ENCOUNTER = {CCDA + "49"}
PROBLEM_STATUS = {CCDA + "6"}
ALLERGY_STATUS = {CCDA + "28"}
SEVERITY = {CCDA + "8"}
REACTION = {CCDA + "9"}
CRITICALITY = {CCDA + "145"}
DONE = ("EVN", None)

OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
WS_DATA_ELEMENTS = "2.16.156.10011.2.2.1"  # 卫生信息数据元目录
# WS/T 500 data elements that carry a diagnosis code in their value (西医诊断编码, 中医病名/证候代码).
WS_DIAGNOSIS_ELEMENTS = ("DE05.01.024.00", "DE05.10.130.00", "DE05.10.172.00")


def _mood(el: Element) -> str | None:
    return attr(el, "moodCode")


def _negated(el: Element) -> bool:
    return attr(el, "negationInd") == "true"


def _status(el: Element) -> str | None:
    return attr(child(el, "statusCode"), "code")


def _related(el: Element, *kinds: str) -> list[Element]:
    """The clinical statements under entryRelationship/component (of the given elements)."""
    found = []
    for rel in children(el, "entryRelationship") + children(el, "component"):
        for item in elements(rel):
            if local(item) in kinds or (not kinds and local(item) not in ("sequenceNumber", "seperatableInd",
                                                                       "templateId")):
                found.append(item)
    return found


def _category(system: str, code: str, display: str | None = None) -> list[dict[str, Any]]:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return [{"coding": [coding]}]


def _code(ctx: Context, el: Element) -> dict[str, Any] | None:
    concept = codeable(ctx, child(el, "code"))
    if concept is None or not concept.get("text"):
        label = original_text(ctx, child(el, "text"))
        if label:
            concept = {**(concept or {}), "text": label}
    return concept


def _common(ctx: Context, el: Element, resource: dict[str, Any]) -> dict[str, Any]:
    if ids := identifiers(ctx, children(el, "id")):
        resource["identifier"] = ids
    return resource


def _performer(ctx: Context, el: Element) -> list[dict[str, Any]]:
    refs = []
    for item in children(el, "performer") + children(el, "author"):
        entity = child(item, "assignedEntity")
        if entity is None:
            entity = child(item, "assignedAuthor")
        who = practitioner(ctx, entity)
        if who and {"reference": who} not in refs:
            refs.append({"reference": who})
    return refs


def _reasons(ctx: Context, el: Element) -> list[dict[str, Any]]:
    reasons = []
    for rel in children(el, "entryRelationship"):
        if attr(rel, "typeCode") != "RSON":
            continue
        for item in elements(rel):
            concept = codeable(ctx, child(item, "value")) if local(item) == "observation" else _code(ctx, item)
            if concept:
                reasons.append(concept)
    return reasons


class Entries:
    """Converts the entries of one section; ``refs`` collects what the section points at."""

    def __init__(self, ctx: Context, kind: str, section_title: str | None) -> None:
        self.ctx = ctx
        self.kind = kind
        self.section_title = section_title
        self.refs: list[str] = []

    def add(self, resource: dict[str, Any]) -> str:
        url = self.ctx.add(resource)
        self.refs.append(url)
        return url

    def subject(self) -> dict[str, Any]:
        return {"reference": self.ctx.patient}

    # --- dispatch -------------------------------------------------------------------------

    def entry(self, entry: Element) -> None:
        for statement in elements(entry):
            if local(statement) in ("templateId", "sequenceNumber"):
                continue
            self.statement(statement)

    def statement(self, el: Element) -> None:
        kind = local(el)
        templates = template_ids(el)
        mood = _mood(el)
        if kind == "act":
            self.act(el, templates)
        elif kind == "observation":
            self.observation(el, templates)
        elif kind == "organizer":
            self.organizer(el, templates)
        elif kind == "substanceAdministration":
            if templates & IMMUNIZATION or self.kind == "immunizations":
                self.immunization(el)
            else:
                self.medication(el, templates)
        elif kind == "procedure":
            if mood in DONE:
                self.procedure(el)
            else:
                self.ctx.warn("a planned procedure is kept in the section narrative only", el, once="planned-procedure")
        elif kind == "encounter":
            if mood in DONE:
                self.encounter(el)
            else:
                self.ctx.warn("a planned encounter is kept in the section narrative only", el, once="planned-encounter")
        else:
            self.ctx.warn(f"{kind} entries are kept in the section narrative only", el, once=f"entry-{kind}")

    def act(self, el: Element, templates: set[str]) -> None:
        inner = _related(el, "observation", "act", "procedure", "substanceAdministration", "organizer", "encounter")
        if templates & ALLERGY_CONCERN or self.kind == "allergies":
            for item in inner:
                if local(item) == "observation":
                    self.allergy(item, concern=el)
            return
        if templates & PROBLEM_CONCERN or self.kind in ("problems", "diagnoses"):
            for item in inner:
                if local(item) == "observation":
                    self.condition(item, concern=el)
            return
        if templates & PROCEDURES or self.kind == "procedures":
            if _mood(el) in DONE:
                self.procedure(el)
            else:
                self.ctx.warn("a planned act is kept in the section narrative only", el, once="planned-act")
            return
        if inner:
            for item in inner:
                self.statement(item)
            return
        self.ctx.warn("act entries outside problems, allergies and procedures are kept in the narrative only", el,
                      once="act")

    def observation(self, el: Element, templates: set[str]) -> None:
        if _mood(el) not in DONE:
            self.ctx.warn("a planned or requested observation is kept in the section narrative only", el,
                          once="planned-observation")
            return
        code = attr(child(el, "code"), "code")
        if self.ctx.wst500 and attr(child(el, "code"), "codeSystem") == WS_DATA_ELEMENTS:
            # A WS/T 500 data element: a diagnosis code (西医诊断编码, 中医病名…) is a Condition,
            # any other element (入院情况, 检验报告结果…) an Observation, whatever the section.
            if code in WS_DIAGNOSIS_ELEMENTS:
                self.condition(el)
            else:
                self.measurement(el, templates)
            return
        if templates & ALLERGY_OBSERVATION or self.kind == "allergies":
            self.allergy(el)
        elif templates & PROBLEM_OBSERVATION or (self.kind in ("problems", "diagnoses") and not templates) \
                or (self.ctx.wst500 and code in WS_DIAGNOSIS_ELEMENTS):
            self.condition(el)
        elif templates & PROCEDURES:
            self.procedure(el)
        else:
            self.measurement(el, templates)

    # --- conditions and allergies --------------------------------------------------------------

    def condition(self, el: Element, concern: Element | None = None) -> None:
        if _negated(el):
            self.ctx.warn("a negated problem (e.g. 'no known problems') is kept in the narrative only", el,
                          once="negated-problem")
            return
        value = child(el, "value")
        code = codeable(self.ctx, value) if value is not None else None
        if (code is None or not code.get("coding")) and value is not None and xsi_type(value) in ("ST", None):
            label = text(value)
            if label:
                code = {**(code or {}), "text": label}
        if code is None:
            # The observation's own code says what kind of problem it is (C-CDA: "Problem",
            # "Diagnosis"), not which: only its narrative text can stand in for the value.
            label = original_text(self.ctx, child(el, "text"))
            code = {"text": label} if label else None
        resource = _common(self.ctx, el, {"resourceType": "Condition"})
        if concern is not None and not resource.get("identifier"):
            _common(self.ctx, concern, resource)
        clinical = self._clinical_status(el, concern)
        if clinical:
            resource["clinicalStatus"] = {"coding": [{"system": CONDITION_CLINICAL, "code": clinical}]}
        diagnosis = self.kind == "diagnoses" or (concern is not None and template_ids(concern) & {CCDA + "33", CCDA + "34",
                                                                                                     CCDA + "80"})
        resource["category"] = _category(CONDITION_CATEGORY, "encounter-diagnosis" if diagnosis else "problem-list-item")
        if code:
            resource["code"] = code
        resource["subject"] = self.subject()
        when = child(el, "effectiveTime")
        if when is not None:
            low = child(when, "low")
            high = child(when, "high")
            onset = date_time(self.ctx, low) if low is not None else date_time(self.ctx, when)
            if onset:
                resource["onsetDateTime"] = onset
            if high is not None and (end := date_time(self.ctx, high)):
                resource["abatementDateTime"] = end
        recorded = date_time(self.ctx, child(el, "author", "time"))
        if recorded:
            resource["recordedDate"] = recorded
        if "code" not in resource:
            self.ctx.warn("a problem without a code or text is left out", el, once="empty-problem")
            return
        self.add(resource)

    def _clinical_status(self, el: Element, concern: Element | None) -> str | None:
        for item in _related(el, "observation"):
            if template_ids(item) & (PROBLEM_STATUS | ALLERGY_STATUS):
                code = attr(child(item, "value"), "code")
                mapped = value_map("problem_status").get(code or "")
                if mapped:
                    return mapped
        if child(child(el, "effectiveTime"), "high") is not None and not null(child(child(el, "effectiveTime"), "high")):
            return "resolved"
        if concern is not None:
            return value_map("concern_status").get(_status(concern) or "")
        return None

    def allergy(self, el: Element, concern: Element | None = None) -> None:
        if _negated(el):
            self.ctx.warn("a negated allergy (e.g. 'no known allergies') is kept in the narrative only", el,
                          once="negated-allergy")
            return
        resource = _common(self.ctx, el, {"resourceType": "AllergyIntolerance"})
        clinical = self._clinical_status(el, concern)
        if clinical in ("active", "inactive", "resolved"):
            resource["clinicalStatus"] = {"coding": [{"system": ALLERGY_CLINICAL, "code": clinical}]}
        kind = attr(child(el, "value"), "code") or ""
        allergy_type, category = value_map("allergy_type").get(kind, [None, None])
        if allergy_type:
            resource["type"] = allergy_type
        if category:
            resource["category"] = [category]
        for item in _related(el, "observation"):
            if template_ids(item) & CRITICALITY:
                mapped = value_map("criticality").get(attr(child(item, "value"), "code") or "")
                if mapped:
                    resource["criticality"] = mapped
        substance = None
        for participant in children(el, "participant"):
            substance = codeable(self.ctx, child(participant, "participantRole", "playingEntity", "code"))
            if substance:
                break
        if substance is None:
            substance = codeable(self.ctx, child(el, "value")) if kind not in value_map("allergy_type") else None
        if substance:
            resource["code"] = substance
        resource["patient"] = self.subject()
        when = child(el, "effectiveTime")
        onset = date_time(self.ctx, child(when, "low")) if child(when, "low") is not None else date_time(self.ctx, when)
        if onset:
            resource["onsetDateTime"] = onset
        reactions = []
        for item in _related(el, "observation"):
            if not template_ids(item) & REACTION:
                continue
            manifestation = codeable(self.ctx, child(item, "value"))
            if not manifestation:
                continue
            reaction: dict[str, Any] = {"manifestation": [manifestation]}
            for sub in _related(item, "observation"):
                if template_ids(sub) & SEVERITY:
                    severity = value_map("severity").get(attr(child(sub, "value"), "code") or "")
                    if severity:
                        reaction["severity"] = severity
            reactions.append(reaction)
        if reactions:
            resource["reaction"] = reactions
        if "code" not in resource and "type" not in resource and "category" not in resource:
            self.ctx.warn("an allergy naming no substance is left out", el, once="empty-allergy")
            return
        self.add(resource)

    # --- observations and reports ---------------------------------------------------------------

    def _observation_category(self, templates: set[str]) -> list[dict[str, Any]] | None:
        if templates & VITALS_ORGANIZER or self.kind == "vitals" or CCDA + "27" in templates:
            return _category(OBS_CATEGORY, "vital-signs", "Vital Signs")
        if templates & SOCIAL or self.kind == "social":
            return _category(OBS_CATEGORY, "social-history", "Social History")
        if self.kind == "results" or CCDA + "2" in templates:
            return _category(OBS_CATEGORY, "laboratory", "Laboratory")
        return None

    def measurement(self, el: Element, templates: set[str], category: list[dict[str, Any]] | None = None) -> str | None:
        code = _code(self.ctx, el)
        if not code:
            self.ctx.warn("an observation without a code is left out", el, once="uncoded-observation")
            return None
        resource = _common(self.ctx, el, {"resourceType": "Observation"})
        status = value_map("observation_status").get(_status(el) or "", "final")
        resource["status"] = status
        found = category or self._observation_category(templates)
        if found:
            resource["category"] = found
        resource["code"] = code
        resource["subject"] = self.subject()
        resource.update(effective(self.ctx, child(el, "effectiveTime"), "effective"))
        values = children(el, "value")
        if values:
            resource.update(value_of(self.ctx, values[0]))
            if len(values) > 1:
                self.ctx.warn("an observation with several values keeps the first", el, once="many-values")
        # WS/T 500 writes a result's unit as a nested data element (检验定量结果计量单位).
        if "valueQuantity" in resource and "unit" not in resource["valueQuantity"]:
            for item in _related(el, "observation"):
                if attr(child(item, "code"), "code") == "DE04.30.016.00":
                    unit = text(child(item, "value"))
                    if unit:
                        resource["valueQuantity"] = quantity(self.ctx, values[0], unit=unit) or resource["valueQuantity"]
        interpretations = [c for c in (codeable(self.ctx, i) for i in children(el, "interpretationCode")) if c]
        if interpretations:
            resource["interpretation"] = interpretations
        if method := codeable(self.ctx, child(el, "methodCode")):
            resource["method"] = method
        if site := codeable(self.ctx, child(el, "targetSiteCode")):
            resource["bodySite"] = site
        ranges = []
        for item in children(el, "referenceRange"):
            span = self._reference_range(child(item, "observationRange"))
            if span:
                ranges.append(span)
        if ranges:
            resource["referenceRange"] = ranges
        if performers := _performer(self.ctx, el):
            resource["performer"] = performers
        notes = [text(child(item, "text")) for item in _related(el, "act") if text(child(item, "text"))]
        if notes:
            resource["note"] = [{"text": n} for n in notes]
        return self.add(resource)

    def _reference_range(self, el: Element | None) -> dict[str, Any] | None:
        if el is None:
            return None
        result: dict[str, Any] = {}
        value = child(el, "value")
        if value is not None and xsi_type(value) == "IVL_PQ":
            low, high = quantity(self.ctx, child(value, "low")), quantity(self.ctx, child(value, "high"))
            if low:
                result["low"] = {k: v for k, v in low.items() if k in ("value", "unit", "system", "code")}
            if high:
                result["high"] = {k: v for k, v in high.items() if k in ("value", "unit", "system", "code")}
        label = original_text(self.ctx, child(el, "text"))
        if label:
            result["text"] = label
        elif not result and value is not None and text(value):
            result["text"] = text(value)
        return result or None

    def organizer(self, el: Element, templates: set[str]) -> None:
        if _mood(el) not in DONE:
            self.ctx.warn("a planned organizer is kept in the section narrative only", el, once="planned-organizer")
            return
        members: list[str] = []
        category = self._observation_category(templates)
        for item in _related(el):
            if local(item) == "observation":
                if _mood(item) not in DONE:
                    continue
                url = self.measurement(item, template_ids(item), category)
                if url:
                    members.append(url)
            elif local(item) == "organizer":
                self.organizer(item, template_ids(item))
            elif local(item) in ("procedure", "act", "substanceAdministration", "encounter"):
                self.statement(item)
        is_report = templates & RESULT_ORGANIZER or (self.kind == "results" and attr(el, "classCode") != "CLUSTER")
        if not is_report or not members:
            return
        code = _code(self.ctx, el) or ({"text": self.section_title} if self.section_title else {"text": "Results"})
        report = _common(self.ctx, el, {"resourceType": "DiagnosticReport"})
        report["status"] = value_map("report_status").get(_status(el) or "", "final")
        report["category"] = _category(V2_0074, "LAB", "Laboratory")
        report["code"] = code
        report["subject"] = self.subject()
        report.update(effective(self.ctx, child(el, "effectiveTime"), "effective"))
        if performers := _performer(self.ctx, el):
            report["performer"] = performers
        report["result"] = [{"reference": m} for m in members]
        self.add(report)

    # --- medicines and immunisations -------------------------------------------------------------

    def _product(self, el: Element) -> dict[str, Any] | None:
        material = child(el, "consumable", "manufacturedProduct", "manufacturedMaterial")
        concept = codeable(self.ctx, child(material, "code")) if material is not None else None
        if concept is None or not concept.get("text"):
            name = text(child(material, "name")) if material is not None else None
            if name:
                concept = {**(concept or {}), "text": name}
        return concept

    def _dosage(self, el: Element) -> dict[str, Any] | None:
        dosage: dict[str, Any] = {}
        label = original_text(self.ctx, child(el, "text"))
        if label:
            dosage["text"] = label
        for when in children(el, "effectiveTime"):
            if xsi_type(when) == "PIVL_TS":
                span = child(when, "period")
                value, unit = attr(span, "value"), attr(span, "unit")
                mapped = value_map("timing_unit").get(unit or "")
                if value and mapped:
                    try:
                        amount = float(value)
                    except ValueError:
                        continue
                    if amount > 0:
                        dosage["timing"] = {"repeat": {"frequency": 1, "period": amount, "periodUnit": mapped}}
            elif xsi_type(when) == "EIVL_TS":
                event = attr(child(when, "event"), "code")
                if event:
                    dosage.setdefault("timing", {})["code"] = {"text": event}
        if route := codeable(self.ctx, child(el, "routeCode")):
            dosage["route"] = route
        if site := codeable(self.ctx, child(el, "approachSiteCode")):
            dosage["site"] = site
        dose = child(el, "doseQuantity")
        amount = quantity(self.ctx, dose) if dose is not None and child(dose, "low") is None else None
        if dose is not None and child(dose, "low") is not None:
            amount = quantity(self.ctx, child(dose, "low"))
        rate = quantity(self.ctx, child(el, "rateQuantity"))
        if amount or rate:
            dosage["doseAndRate"] = [{k: v for k, v in (("doseQuantity", amount), ("rateQuantity", rate)) if v}]
        return dosage or None

    def _period_of(self, el: Element) -> dict[str, Any]:
        for when in children(el, "effectiveTime"):
            if xsi_type(when) in (None, "IVL_TS", "TS"):
                return effective(self.ctx, when, "effective")
        return {}

    def medication(self, el: Element, templates: set[str]) -> None:
        product = self._product(el)
        if not product:
            self.ctx.warn("a medication without a product is left out", el, once="empty-medication")
            return
        mood = _mood(el)
        dosage = self._dosage(el)
        reasons = _reasons(self.ctx, el)
        if mood in DONE:
            resource = _common(self.ctx, el, {"resourceType": "MedicationStatement"})
            status = "not-taken" if _negated(el) else value_map("medication_statement_status").get(_status(el) or "",
                                                                                                   "unknown")
            resource["status"] = status
            resource["medicationCodeableConcept"] = product
            resource["subject"] = self.subject()
            resource.update(self._period_of(el))
            if reasons:
                resource["reasonCode"] = reasons
            if dosage:
                resource["dosage"] = [dosage]
        else:
            if _negated(el):
                self.ctx.warn("a negated medication order is kept in the narrative only", el, once="negated-order")
                return
            resource = _common(self.ctx, el, {"resourceType": "MedicationRequest"})
            resource["status"] = value_map("medication_request_status").get(_status(el) or "", "unknown")
            planned = templates & PLANNED_MEDICATION or self.kind == "plan"
            resource["intent"] = "plan" if planned else "order"
            resource["medicationCodeableConcept"] = product
            resource["subject"] = self.subject()
            authored = date_time(self.ctx, child(el, "author", "time"))
            if authored:
                resource["authoredOn"] = authored
            requester = _performer(self.ctx, el)
            if requester:
                resource["requester"] = requester[0]
            if reasons:
                resource["reasonCode"] = reasons
            found = self._period_of(el)
            if dosage or found:
                dosage = dict(dosage or {})
                bounds = found.get("effectivePeriod") or ({"start": found["effectiveDateTime"]}
                                                          if "effectiveDateTime" in found else None)
                if bounds:
                    dosage.setdefault("timing", {}).setdefault("repeat", {})["boundsPeriod"] = bounds
                resource["dosageInstruction"] = [dosage]
        self.add(resource)

    def immunization(self, el: Element) -> None:
        if _mood(el) not in DONE:
            self.ctx.warn("a planned immunisation is kept in the section narrative only", el, once="planned-immunization")
            return
        vaccine = self._product(el)
        if not vaccine:
            self.ctx.warn("an immunisation without a vaccine code is left out", el, once="empty-immunization")
            return
        resource = _common(self.ctx, el, {"resourceType": "Immunization"})
        status_code = _status(el)
        if _negated(el) or status_code in ("aborted", "cancelled"):
            resource["status"] = "not-done"
        elif status_code == "nullified":
            resource["status"] = "entered-in-error"
        else:
            resource["status"] = "completed"
        if resource["status"] == "not-done":
            for item in _related(el, "observation"):
                reason = codeable(self.ctx, child(item, "code"))
                if reason:
                    resource["statusReason"] = reason
                    break
        resource["vaccineCode"] = vaccine
        resource["patient"] = self.subject()
        found = self._period_of(el)
        occurrence = found.get("effectiveDateTime") or (found.get("effectivePeriod") or {}).get("start")
        if occurrence:
            resource["occurrenceDateTime"] = occurrence
        else:
            resource["occurrenceString"] = "unknown"
        material = child(el, "consumable", "manufacturedProduct", "manufacturedMaterial")
        lot = text(child(material, "lotNumberText")) if material is not None else None
        if lot:
            resource["lotNumber"] = lot
        maker = text(child(el, "consumable", "manufacturedProduct", "manufacturerOrganization", "name"))
        if maker:
            resource["manufacturer"] = {"display": maker}
        if route := codeable(self.ctx, child(el, "routeCode")):
            resource["route"] = route
        if site := codeable(self.ctx, child(el, "approachSiteCode")):
            resource["site"] = site
        dose = quantity(self.ctx, child(el, "doseQuantity"))
        if dose:
            resource["doseQuantity"] = dose
        performers = _performer(self.ctx, el)
        if performers:
            resource["performer"] = [{"actor": p} for p in performers]
        self.add(resource)

    # --- procedures and encounters -------------------------------------------------------------------

    def procedure(self, el: Element) -> None:
        code = _code(self.ctx, el)
        if not code:
            self.ctx.warn("a procedure without a code is left out", el, once="uncoded-procedure")
            return
        resource = _common(self.ctx, el, {"resourceType": "Procedure"})
        status = "not-done" if _negated(el) else value_map("procedure_status").get(_status(el) or "", "completed")
        resource["status"] = status
        resource["code"] = code
        resource["subject"] = self.subject()
        resource.update(effective(self.ctx, child(el, "effectiveTime"), "performed"))
        sites = [c for c in (codeable(self.ctx, s) for s in children(el, "targetSiteCode")) if c]
        if sites:
            resource["bodySite"] = sites
        performers = _performer(self.ctx, el)
        if performers:
            resource["performer"] = [{"actor": p} for p in performers]
        if reasons := _reasons(self.ctx, el):
            resource["reasonCode"] = reasons
        self.add(resource)

    def encounter(self, el: Element) -> None:
        from fhir_exchange.convert.cda.header import encounter_class_and_type

        resource = _common(self.ctx, el, {"resourceType": "Encounter"})
        when = period(self.ctx, child(el, "effectiveTime"))
        status = value_map("encounter_status").get(_status(el) or "")
        resource["status"] = status or ("finished" if when else "unknown")
        klass, types = encounter_class_and_type(self.ctx, child(el, "code"))
        resource["class"] = klass
        if types:
            resource["type"] = types
        resource["subject"] = self.subject()
        if when:
            resource["period"] = when
        performers = _performer(self.ctx, el)
        if performers:
            resource["participant"] = [{"individual": p} for p in performers]
        diagnoses = []
        for item in _related(el, "act", "observation"):
            before = len(self.refs)
            if local(item) == "act":
                for inner in _related(item, "observation"):
                    self.condition(inner, concern=item)
            else:
                self.condition(item)
            diagnoses.extend(self.refs[before:])
        if diagnoses:
            resource["diagnosis"] = [{"condition": reference(d)} for d in diagnoses]
        for participant in children(el, "participant"):
            if attr(participant, "typeCode") == "LOC":
                name = text(child(participant, "participantRole", "playingEntity", "name"))
                if name:
                    resource.setdefault("location", []).append({"location": {"display": name}})
        self.add(resource)
