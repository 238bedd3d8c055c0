"""Reading the sources: ICD-10-CM XML, HPO obo and annotations, the drug pickle (never unpickled unsafely), IFCT."""

from __future__ import annotations

import bz2
import os
import pickle

import pytest

from multimodal.knowledge import drug_table, sources

ICD_XML = """<?xml version="1.0"?>
<ICD10CM.tabular><chapter><name>6</name><desc>Diseases of the nervous system (G00-G99)</desc>
<section id="G40-G47"><desc>Episodic and paroxysmal disorders (G40-G47)</desc>
<diag><name>G44</name><desc>Other headache syndromes</desc>
  <diag><name>G44.2</name><desc>Tension-type headache</desc>
    <diag><name>G44.209</name><desc>Tension-type headache, unspecified, not intractable</desc>
      <inclusionTerm><note>Tension headache NOS</note></inclusionTerm></diag></diag></diag>
</section></chapter></ICD10CM.tabular>"""

OBO = """format-version: 1.2

[Term]
id: HP:0002315
name: Headache
def: "Cephalgia, or pain sensed in various parts of the head." [PMID:1]
synonym: "Headaches" EXACT layperson []
synonym: "Head pain" RELATED []
is_a: HP:0012531 ! Pain

[Term]
id: HP:0000001
name: Gone
is_obsolete: true

[Typedef]
id: part_of
"""

HPOA = ("#description: test\ndatabase_id\tdisease_name\tqualifier\thpo_id\treference\tevidence\tonset\tfrequency\tsex\t"
        "modifier\taspect\tbiocuration\nOMIM:157300\tMigraine 1\t\tHP:0002315\tPMID:1\tTAS\t\t\t\t\tP\tx\n"
        "OMIM:157300\tMigraine 1\tNOT\tHP:0000002\tPMID:1\tTAS\t\t\t\t\tP\tx\n")


def test_icd10cm_rows_keep_the_hierarchy_and_inclusion_terms(tmp_path):
    path = tmp_path / "tab.xml"
    path.write_text(ICD_XML)
    rows = {r.code: r for r in sources.icd10cm_rows(path)}
    assert set(rows) == {"chapter 6", "G40-G47", "G44", "G44.2", "G44.209"}
    leaf = rows["G44.209"]
    assert leaf.citation == "ICD-10 G44.209" and leaf.aliases == ["Tension headache NOS", "Tension headache"]
    assert leaf.detail == "billable" and leaf.parents == ["G44.2"] and rows["G44"].parents == ["G40-G47"]


def test_an_icd10_title_is_also_found_by_the_words_a_clinician_writes(tmp_path):
    path = tmp_path / "tab.xml"
    path.write_text(ICD_XML.replace("<desc>Other headache syndromes</desc>", "<desc>Chest pain, unspecified</desc>")
                    .replace("<desc>Tension-type headache</desc>", "<desc>Chronic kidney disease (CKD)</desc>"))
    rows = {r.code: r for r in sources.icd10cm_rows(path)}
    assert rows["G44"].aliases == ["Chest pain"] and rows["G44.2"].aliases == ["Chronic kidney disease"]
    assert rows["G44.209"].aliases == ["Tension headache NOS", "Tension headache"]  # "unspecified" inside stays


def test_hpo_rows_skip_obsolete_terms_and_related_synonyms(tmp_path):
    obo, hpoa = tmp_path / "hp.obo", tmp_path / "phenotype.hpoa"
    obo.write_text(OBO)
    hpoa.write_text(HPOA)
    (term,) = list(sources.hpo_rows(obo))
    assert (term.citation, term.name, term.aliases, term.parents) == ("HPO:0002315", "Headache", ["Headaches"],
                                                                      ["HP:0012531"])
    assert term.detail.startswith("Cephalgia")
    (disease,) = list(sources.disease_rows(hpoa))
    assert disease.citation == "OMIM:157300" and disease.links == [("has_phenotype", "HPO:0002315")]  # NOT dropped


class _Boom:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_the_drug_pickle_is_read_by_an_unpickler_that_builds_nothing_but_plain_data(tmp_path):
    """The package's data is a pickle: a hostile one must be refused, never executed."""
    hostile = tmp_path / "hostile.pkl.bz2"
    hostile.write_bytes(bz2.compress(pickle.dumps({"drug_variant_to_canonical": _Boom()})))
    with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
        drug_table.convert(hostile, tmp_path / "out.json")
    plain = tmp_path / "plain.pkl.bz2"
    data = {"drug_variant_to_canonical": {"aleve": ["naproxen"], "naproxen": ["naproxen"]},
            "drug_canonical_to_data": {"naproxen": {"name": "Naproxen", "drugbank_id": "DB00788",
                                                    "medline_plus_id": "a681029"}},
            "drug_variant_to_variant_data": {}}
    plain.write_bytes(bz2.compress(pickle.dumps(data)))
    table = drug_table.convert(plain, tmp_path / "drugs.json")
    assert drug_table.load(tmp_path / "drugs.json") == table
    (row,) = list(sources.drug_rows(table))
    assert row.citation == "DrugBank DB00788" and row.aliases == ["aleve"] and "a681029" in row.detail


def test_a_synonym_that_is_an_everyday_word_is_not_kept_as_a_name():
    table = {"drug_canonical_to_data": {"sits": {"name": "4-Acetamido-4'-isothiocyanatostilbene disulfonic acid",
                                                 "drugbank_id": "DB04152"}},
             "drug_variant_to_canonical": {"sits": ["sits"], "sits acid": ["sits"]}}
    (row,) = list(sources.drug_rows(table))
    assert row.aliases == ["sits acid"] and row.linkable  # "sits" alone is a verb, not this chemical
    table = {"drug_canonical_to_data": {"rice": {"name": "Rice", "drugbank_id": "DB10563"},
                                        "capso": {"name": "CAPSO", "drugbank_id": "DB03814"}},
             "drug_variant_to_canonical": {"rice": ["rice"], "caps": ["capso"]}}
    capso, rice = list(sources.drug_rows(table))
    assert not rice.linkable and capso.aliases == []  # a meal's rice; "two caps" of a pill


def test_ifct_regional_names_that_are_english_words_are_dropped():
    names = sources.ifct_names("A. Long; B. Begun; E. Eggplant, Aubergine; H. Lavang; Kh. U long; "
                               "Common. Carp fish; [Place of collection: Kolkata]")
    # Hindi "Long" (cloves) and Bengali "Begun" (brinjal) read as English words; English names stay
    assert names == ["Eggplant", "Aubergine", "Lavang", "U long", "Carp fish"]


def test_the_bundled_food_tables_read_with_their_citations():
    usda, ifct = sources.food_sources()
    banana = next(r for r in sources.usda_rows(usda.files[0]) if r.name == "banana")
    assert banana.citation == "USDA FDC 173944" and "89 kcal" in banana.detail
    milk = next(r for r in sources.ifct_rows(ifct.files[0]) if r.code == "L002")
    assert milk.citation == "IFCT L002" and "72.9 kcal" in milk.detail and "Gai ka doodh" in milk.aliases
    assert sum(1 for _ in sources.ifct_rows(ifct.files[0])) == 542
