"""Cross-border patient matching benchmark: precision, recall and speed on generated pairs.

Each generated person has a Hong Kong record (Traditional characters, Hong Kong
romanisation "CHAN Tai Man", an HKID) and a mainland record (Simplified characters, Hanyu
Pinyin, a travel permit / residence permit, sometimes the HKID too; or, for Macao
residents, Macao romanisation and a Macao ID). Realistic noise: a wrong birth day, a
missing sex, a record with the Chinese name only, and hard negatives (namesakes born the
same day, or the same name born another day). Blocking is as the server does it (same
birth date, or a shared identity document); a pair is "found" when graded certain or
probable (linked, or queued for a person), "auto-linked" when certain.

Usage: ``python bench/matching_bench.py [--persons 1500] [--seed 7]``
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pypinyin import lazy_pinyin  # noqa: E402

from fhir_exchange.identity.documents import hkid_check_character, resident_id_check_character  # noqa: E402
from fhir_exchange.identity.matching import Profile, score  # noqa: E402

HKID = "http://baylink.example.org/fhir/sid/hkid"
PERMIT = "http://baylink.example.org/fhir/sid/cn-travel-permit-hkmo"
RESIDENCE = "http://baylink.example.org/fhir/sid/cn-residence-permit-hkmotw"
MO_BIR = "http://baylink.example.org/fhir/sid/mo-bir"

# (Traditional, Simplified, Hong Kong romanisation, Macao romanisation), commonest first
SURNAMES = [
    ("陳", "陈", "CHAN", "CHAN"), ("李", "李", "LEE", "LEI"), ("張", "张", "CHEUNG", "CHEONG"), ("黃", "黄", "WONG", "WONG"),
    ("王", "王", "WONG", "VONG"), ("梁", "梁", "LEUNG", "LEONG"), ("林", "林", "LAM", "LAM"), ("劉", "刘", "LAU", "LAO"),
    ("吳", "吴", "NG", "NG"), ("何", "何", "HO", "HO"), ("郭", "郭", "KWOK", "KUOK"), ("鄭", "郑", "CHENG", "CHEANG"),
    ("謝", "谢", "TSE", "TSE"), ("周", "周", "CHOW", "CHAO"), ("曾", "曾", "TSANG", "CHANG"), ("葉", "叶", "YIP", "IP"),
    ("羅", "罗", "LAW", "LO"), ("蔡", "蔡", "CHOI", "CHOI"), ("馮", "冯", "FUNG", "FONG"), ("袁", "袁", "YUEN", "UN"),
    ("許", "许", "HUI", "HOI"), ("徐", "徐", "TSUI", "CHUI"), ("麥", "麦", "MAK", "MAC"), ("潘", "潘", "POON", "PUN"),
]
# given-name characters: (Traditional, Simplified, Hong Kong romanisation)
GIVEN = [
    ("大", "大", "Tai"), ("文", "文", "Man"), ("小", "小", "Siu"), ("明", "明", "Ming"), ("志", "志", "Chi"),
    ("強", "强", "Keung"), ("美", "美", "Mei"), ("玲", "玲", "Ling"), ("嘉", "嘉", "Ka"), ("偉", "伟", "Wai"),
    ("俊", "俊", "Chun"), ("傑", "杰", "Kit"), ("國", "国", "Kwok"), ("華", "华", "Wah"), ("英", "英", "Ying"),
    ("永", "永", "Wing"), ("健", "健", "Kin"), ("海", "海", "Hoi"), ("儀", "仪", "Yee"), ("玉", "玉", "Yuk"),
    ("鳳", "凤", "Fung"), ("麗", "丽", "Lai"), ("芳", "芳", "Fong"), ("德", "德", "Tak"), ("輝", "辉", "Fai"),
    ("雄", "雄", "Hung"), ("秀", "秀", "Sau"), ("婷", "婷", "Ting"), ("欣", "欣", "Yan"), ("子", "子", "Tsz"),
    ("詩", "诗", "Sze"), ("珍", "珍", "Chun"), ("榮", "荣", "Wing"), ("康", "康", "Hong"), ("瑩", "莹", "Ying"),
]


def _hkid(rng: random.Random) -> str:
    prefix = rng.choice("ABCDEGHKMPRVYZ")
    digits = f"{rng.randrange(10 ** 6):06d}"
    return f"{prefix}{digits}({hkid_check_character(prefix, digits)})"


def _residence_permit(rng: random.Random, born: date, sex: str) -> str:
    sequence = rng.randrange(500) * 2 + (1 if sex == "male" else 0)
    first17 = f"810000{born:%Y%m%d}{sequence:03d}"
    return first17 + resident_id_check_character(first17)


def _person(rng: random.Random, born: date | None = None, name: tuple[Any, Any] | None = None) -> dict[str, Any]:
    surname = name[0] if name else SURNAMES[min(int(rng.expovariate(0.18)), len(SURNAMES) - 1)]
    given = name[1] if name else tuple(rng.sample(GIVEN, 2))
    sex = rng.choice(("male", "female"))
    born = born or date(1940, 1, 1) + timedelta(days=rng.randrange(365 * 25))
    return {"surname": surname, "given": given, "sex": sex, "born": born, "hkid": _hkid(rng),
            "permit": f"H{rng.randrange(10 ** 8):08d}", "macao": rng.random() < 0.15}


def hong_kong_record(person: dict[str, Any]) -> dict[str, Any]:
    trad = person["surname"][0] + "".join(g[0] for g in person["given"])
    if person["macao"]:
        family, identifiers = person["surname"][3], [{"system": MO_BIR, "value": f"1{person['hkid'][1:7]}(5)"}]
    else:
        family, identifiers = person["surname"][2], [{"system": HKID, "value": person["hkid"]}]
    return {"resourceType": "Patient", "identifier": identifiers,
            "name": [{"family": family, "given": [" ".join(g[2] for g in person["given"])]}, {"text": trad}],
            "gender": person["sex"], "birthDate": person["born"].isoformat()}


def mainland_record(person: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    family = person["surname"][1]
    given = "".join(g[1] for g in person["given"])
    names = [{"family": family, "given": [given]}]
    if rng.random() < 0.7:
        names.append({"family": lazy_pinyin(family)[0].capitalize(), "given": ["".join(lazy_pinyin(given)).capitalize()]})
    born = person["born"]
    if rng.random() < 0.03:  # a mistyped birth day
        born = born + timedelta(days=rng.choice((-1, 1, 10)))
    roll = rng.random()
    if roll < 0.3 and not person["macao"]:
        identifiers = [{"system": PERMIT, "value": person["permit"]}, {"system": HKID, "value": person["hkid"]}]
    elif roll < 0.8:
        identifiers = [{"system": PERMIT, "value": person["permit"]}]
    else:
        identifiers = [{"system": RESIDENCE, "value": _residence_permit(rng, person["born"], person["sex"])}]
    record = {"resourceType": "Patient", "identifier": identifiers, "name": names, "birthDate": born.isoformat()}
    if rng.random() >= 0.05:
        record["gender"] = person["sex"]
    return record


def generate(persons: int, seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rng = random.Random(seed)
    people = []
    for _ in range(persons):
        roll = rng.random()
        if people and roll < 0.10:  # a namesake born the same day: a different person
            twin = rng.choice(people)
            people.append(_person(rng, born=twin["born"], name=(twin["surname"], twin["given"])))
        elif people and roll < 0.20:  # the same name, born another day
            twin = rng.choice(people)
            people.append(_person(rng, name=(twin["surname"], twin["given"])))
        else:
            people.append(_person(rng))
    return [hong_kong_record(p) for p in people], [mainland_record(p, rng) for p in people]


def evaluate(hong_kong: list[dict[str, Any]], mainland: list[dict[str, Any]]) -> dict[str, float]:
    started = time.perf_counter()
    hk_profiles = [Profile.of(r) for r in hong_kong]
    by_birth: dict[str | None, list[int]] = {}
    by_document: dict[tuple[str, str], list[int]] = {}
    for index, profile in enumerate(hk_profiles):
        by_birth.setdefault(profile.birth_date, []).append(index)
        for document in profile.identifiers:
            by_document.setdefault(document, []).append(index)
    found = auto = true_found = true_auto = scored = 0
    for index, record in enumerate(mainland):
        profile = Profile.of(record)
        block = set(by_birth.get(profile.birth_date, []))
        for document in profile.identifiers:
            block.update(by_document.get(document, []))
        for candidate in block:
            match = score(profile, hk_profiles[candidate])
            scored += 1
            if match.grade in ("certain", "probable"):
                found += 1
                true_found += candidate == index
            if match.grade == "certain":
                auto += 1
                true_auto += candidate == index
    elapsed = time.perf_counter() - started
    pairs = len(mainland)
    return {
        "pairs": pairs, "candidates scored": scored, "seconds": elapsed, "records/s": (len(hong_kong) + pairs) / elapsed,
        "found precision": true_found / found if found else 1.0, "found recall": true_found / pairs,
        "auto-link precision": true_auto / auto if auto else 1.0, "auto-link recall": true_auto / pairs,
    }


def table(result: dict[str, float]) -> str:
    return "\n".join([
        "| cross-border pairs | candidates scored | precision (certain+probable) | recall (certain+probable) "
        "| precision (certain: auto-link) | recall (certain) | records/s (profile + blocking + scoring) |",
        "|---|---|---|---|---|---|---|",
        f"| {result['pairs']:,} | {result['candidates scored']:,} | {result['found precision']:.3f} | "
        f"{result['found recall']:.3f} | {result['auto-link precision']:.3f} | {result['auto-link recall']:.3f} | "
        f"{result['records/s']:,.0f} |",
    ])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--persons", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print("## Cross-border patient matching\n")
    print(table(evaluate(*generate(args.persons, args.seed))))


if __name__ == "__main__":
    main()
