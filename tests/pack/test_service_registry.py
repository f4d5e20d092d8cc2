"""The service registry follows the statutory numbering and names, service by service.

The expected lists are test data transcribed from the sources (tests/pack/service_list.py says
which, and when they were read): Schedule 4 of SI 2012/2996 for every number and, where the
April 2023 list could be read, its names (the newer list wins there; the regulations elsewhere).
"""

from __future__ import annotations

import pytest

from chalicelib import PolicySet, load_policy_set
from tests.pack.make_golden import POLICIES
from tests.pack.service_list import APRIL_2023, BLANK, SCHEDULE_4, service_id

SI = "https://www.legislation.gov.uk/uksi/2012/2996/schedule/4/paragraph/"
LIST = ("https://www.england.nhs.uk/long-read/list-of-the-prescribed-specialised-services-"
        "directly-commissioned-by-nhs-england-as-at-april-2023/")


@pytest.fixture(scope="module")
def pack() -> PolicySet:
    return load_policy_set(POLICIES)


@pytest.mark.parametrize(("paragraph", "statutory"), SCHEDULE_4, ids=[p for p, _ in SCHEDULE_4])
def test_every_schedule_4_service_has_its_number_name_and_citation(
    pack: PolicySet, paragraph: str, statutory: str
) -> None:
    number = service_id(paragraph)
    service = pack.checked.services.get(number)
    assert service is not None, f"service {number} (paragraph {paragraph}) is missing"
    assert service.name == APRIL_2023.get(number, statutory)
    assert SI + paragraph in service.provenance.sources
    if number in APRIL_2023:
        assert LIST in service.provenance.sources


def test_the_registry_holds_exactly_the_listed_services(pack: PolicySet) -> None:
    expected = {service_id(p) for p, _ in SCHEDULE_4} | set(APRIL_2023)
    assert set(pack.checked.services) == expected
    assert len(expected) == 151
    assert not set(BLANK) & set(pack.checked.services)


def test_where_the_april_2023_list_renames_a_service_its_name_wins(pack: PolicySet) -> None:
    statutory = {service_id(p): name for p, name in SCHEDULE_4}
    renamed = {n for n, name in APRIL_2023.items() if statutory.get(n) not in (None, name)}
    assert {"3", "16", "29", "31", "32"} <= renamed
    for number in renamed:
        assert pack.checked.services[number].name == APRIL_2023[number]
    # 19A comes from the April 2023 list alone: no paragraph of the 2018 regulations names it.
    assert pack.checked.services["19A"].provenance.sources == (LIST,)


@pytest.mark.parametrize(("number", "name"), [
    ("54", "Fetal medicine services"),
    ("57", "Heart and lung transplantation service (including mechanical circulatory support)"),
    ("69", "Liver transplantation service"),
    ("72", "Major trauma services"),
    ("83", "Paediatric cardiac services"),
    ("94", "Radiotherapy services"),
    ("105", "Specialist cancer services"),
    ("124", "Specialist perinatal mental health services"),
    ("132", "Specialist services for haemophilia and other related bleeding disorders"),
])
def test_the_renumbered_services_named_in_the_issue(pack: PolicySet, number: str, name: str) -> None:
    assert pack.checked.services[number].name == name


def test_a_lettered_service_is_commissioned_only_from_its_paragraph_date(pack: PolicySet) -> None:
    # Paragraph 22A (service 21A) was inserted from 1 April 2014 by SI 2014/452.
    (entry,) = pack.checked.services["21A"].commissioners
    assert entry.outcome == "nhs_england" and entry.start.isoformat() == "2014-04-01"
    assert "https://www.legislation.gov.uk/uksi/2014/452" in entry.provenance.sources
