"""Provenance syntax: `source` and `unverified` parse, format canonically and are checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.cli import main
from chalicelib.dsl import ast
from chalicelib.dsl.formatting import format_text
from chalicelib.dsl.lowering import lower
from chalicelib.dsl.parser import parse_text
from chalicelib.dsl.provenance import counts, render_table
from tests.conftest import HEADER, diagnose

CMS = "https://example.org/cms"
SI = "https://www.legislation.gov.uk/uksi/2012/2996/schedule/4"
TEXT = f'''line NCBPS13A "Adult specialist cardiac services" source "{SI}"
line NCBPS13B "Unnamed" unverified "code seen in public SQL; no source names it"
codeset TAVI: opcs4 = K26.2 source "{CMS}", "{SI}"
codeset DRUGS: drug = cetuximab, "source"
  source "{CMS}"
  unverified "drug list not read"
service "7" "Adult specialist cardiac services" {{
  source "{SI}"
  lines NCBPS13A, NCBPS13B
  programme internal_medicine
  portfolio acute
  highly_specialised no
  commissioner nhs_england from 2013-04-01 source "{SI}"
  commissioner icb_delegated from 2024-04-01 in region "Midlands"
    unverified "delegation list not checked"
}}
rule tavi "TAVI" {{
  source "{CMS}"
  line NCBPS13A
  rank 1
  when dominant procedure in TAVI
}}
policy "P1" version 1 "t" {{
  source "{CMS}"
  unverified "criteria from a summary"
  effective from 2020-01-01
  governs NCBPS13A
  rank 1
  when met: eligible
}}
'''


def module(text: str) -> ast.Module:
    tree = parse_text(text, "t.pss")
    assert not hasattr(tree, "severity"), tree
    return lower(tree, "t.pss")


def by_type(text: str) -> dict[str, ast.Declaration]:
    """Declarations keyed `Type:key` with the key each kind is known by."""
    out: dict[str, ast.Declaration] = {}
    for d in module(text).items:
        key = {ast.LineDecl: "code", ast.ServiceDecl: "id", ast.PolicyDecl: "id"}.get(type(d), "name")
        out[f"{type(d).__name__}:{getattr(d, key)}"] = d
    return out


def test_every_kind_of_declaration_carries_its_clauses() -> None:
    decls = by_type(TEXT)
    line = decls["LineDecl:NCBPS13A"]
    assert isinstance(line, ast.LineDecl) and line.provenance.sources == (SI,)
    assert line.provenance.verified
    unnamed = decls["LineDecl:NCBPS13B"]
    assert unnamed.provenance.sources == () and not unnamed.provenance.verified  # type: ignore[union-attr]
    tavi = decls["CodeSetDecl:TAVI"]
    assert tavi.provenance.sources == (CMS, SI)  # type: ignore[union-attr]
    drugs = decls["CodeSetDecl:DRUGS"]
    assert isinstance(drugs, ast.CodeSetDecl)
    # `source` as a quoted drug name stays an item; the clause below it is provenance.
    assert [i.value for i in drugs.items] == ["cetuximab", "source"]
    assert drugs.provenance.unverified == ("drug list not read",)
    assert not drugs.provenance.verified
    service = decls["ServiceDecl:7"]
    assert isinstance(service, ast.ServiceDecl)
    assert service.provenance.sources == (SI,)
    first, second = service.commissioners
    assert first.provenance.sources == (SI,) and first.provenance.verified
    assert second.scope_values == ("Midlands",)
    assert second.provenance.unverified == ("delegation list not checked",)
    rule = decls["RuleDecl:tavi"]
    assert rule.provenance.verified  # type: ignore[union-attr]
    policy = decls["PolicyDecl:P1"]
    assert isinstance(policy, ast.PolicyDecl)
    assert policy.provenance.sources == (CMS,) and not policy.provenance.verified


def test_a_clause_after_a_commissioner_belongs_to_it_not_to_the_service() -> None:
    text = (
        'service "7" "x" {\n  programme trauma\n  commissioner nhs_england from 2013-04-01\n'
        f'  source "{SI}"\n}}\n'
    )
    (service,) = module(text).items
    assert isinstance(service, ast.ServiceDecl)
    assert service.provenance == ast.NO_PROVENANCE
    assert service.commissioners[0].provenance.sources == (SI,)


def test_several_source_clauses_add_up() -> None:
    (line,) = module(f'line NCBPS13A "x" source "{SI}" source "{CMS}"\n').items
    assert line.provenance.sources == (SI, CMS)  # type: ignore[union-attr]


def test_fmt_is_canonical_idempotent_and_keeps_meaning() -> None:
    messy = TEXT.replace(f'  source "{CMS}"\n  line NCBPS13A', f'  line NCBPS13A\n  source "{CMS}"')
    messy = messy.replace(
        f'codeset TAVI: opcs4 = K26.2 source "{CMS}", "{SI}"',
        f'codeset TAVI: opcs4 = K26.2  # valves\n   source   "{CMS}",\n "{SI}"',
    )
    once = format_text(messy, "t.pss")
    assert isinstance(once, str)
    assert module(once).items == module(messy).items
    assert format_text(once, "t.pss") == once
    # Clauses of a one-line declaration go on the lines below it, indented; a block's go first.
    assert f'codeset TAVI: opcs4 = K26.2  # valves\n  source "{CMS}", "{SI}"\n' in once
    assert f'rule tavi "TAVI" {{\n  source "{CMS}"\n  line NCBPS13A\n' in once
    assert (
        '  commissioner icb_delegated from 2024-04-01 in region "Midlands"\n'
        '    unverified "delegation list not checked"\n' in once
    )
    assert f'service "7" "Adult specialist cardiac services" {{\n  source "{SI}"\n' in once


def test_a_pack_item_without_source_or_reason_warns_at_the_item() -> None:
    text = 'line NCBPS13A "x"\nline NCBPS13B "y" unverified "guessed"\n'
    found = [d for d in diagnose(text) if d.severity == "warning"]
    assert [d.message for d in found] == ["line `NCBPS13A` cites no source"]
    assert found[0].span.line == 2  # the header is line 1
    assert "unverified" in found[0].hint


@pytest.mark.parametrize("url", ["/work/shared/reference/nhs-domain.md", "ftp://x", "https://a b"])
def test_a_source_that_is_not_a_public_address_is_an_error(url: str) -> None:
    found = [d for d in diagnose(f'line NCBPS13A "x" source "{url}"\n') if d.severity == "error"]
    assert len(found) == 1 and "is not a public web address" in found[0].message


def test_an_empty_reason_is_an_error() -> None:
    found = diagnose('line NCBPS13A "x" unverified " "\n')
    assert [d.severity for d in found] == ["error"]


def test_counts_per_file_and_kind() -> None:
    rows = counts([module(TEXT)])
    table = {(r.kind): (r.verified, r.unverified, r.unsourced) for r in rows}
    assert table["line"] == (1, 1, 0)
    assert table["codeset"] == (1, 1, 0)
    assert table["service"] == (1, 0, 0)
    assert table["commissioner"] == (1, 1, 0)
    assert table["rule"] == (1, 0, 0)
    assert table["policy"] == (0, 1, 0)
    text = render_table(rows)
    assert text.splitlines()[0].split() == ["file", "kind", "verified", "unverified", "no", "source"]
    assert any(line.split() == ["all", "files", "line", "1", "1", "0"] for line in text.splitlines())


def test_pss_check_provenance_prints_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "p.pss").write_text(HEADER + TEXT + 'line NCBPS13C "z"\n', encoding="utf-8")
    assert main(["check", "--provenance", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    row = next(line for line in out.splitlines() if line.split()[:2] == [f"{tmp_path.name}/p.pss",
                                                                           "line"])
    assert row.split()[2:] == ["1", "1", "1"]
    assert "line `NCBPS13C` cites no source" in err
