"""A small pack whose items are partly verified, for the tests of provenance in answers."""

from __future__ import annotations

SI = "https://www.legislation.gov.uk/uksi/2012/2996/schedule/4"
CAM = "https://example.org/cam-guidance"
TAVI_PS = "https://www.england.nhs.uk/long-read/tavi-and-savr-position-statement/"

PACK = f'''
codeset TAVI: opcs4 = K26.2 source "{CAM}"
codeset VALVE: opcs4 = K25.2 unverified "analyst logic, not an official rule"
line NCBPS13A "Adult specialist cardiac services" source "{CAM}"
line NCBPS13B "Valve surgery" unverified "no source names this code"
service "7" "Adult specialist cardiac services" {{
  source "{SI}"
  lines NCBPS13A, NCBPS13B
  programme internal_medicine
  portfolio acute
  highly_specialised no
  commissioner nhs_england from 2013-04-01 source "{SI}"
}}
rule tavi "TAVI" {{
  source "{CAM}"
  line NCBPS13A
  rank 1
  when dominant procedure in TAVI
}}
rule valve "Valve" {{
  unverified "guessed from the code"
  line NCBPS13B
  rank 2
  when dominant procedure in VALVE
}}
policy "TAVI-PA" version 1 "TAVI prior approval" {{
  source "{TAVI_PS}"
  effective from 2023-05-01
  governs NCBPS13A
  rank 1
  when met: prior_approval via "Blueteq TAVI"
}}
'''
TAVI = {"date": "2025-06-01", "patient": {"age": 81}, "procedures": ["K26.2"]}
VALVE = {"date": "2025-06-01", "patient": {"age": 81}, "procedures": ["K25.2"]}
NEITHER = {"date": "2025-06-01", "patient": {"age": 81}, "procedures": ["W37.1"]}
