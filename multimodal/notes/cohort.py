"""``medany cohort table.parquet "SQL"``: cohort questions over the findings table, answered by DuckDB, read-only.

The table (:mod:`.findings`: a ``.parquet`` file, or a folder of them such as the
``<out>.parts`` of an interrupted ``medany extract``) is two views:

- ``findings``: one row per finding, the table as written;
- ``patients``: one row per patient (``patient``: the note's patient id, or the note
  id for a note that names none) with ``notes`` and the lists of what their notes
  affirm: ``problem_codes`` (HPO), ``icd10_codes``, ``medications`` (generic names),
  ``drug_class_codes`` (ICD-10-CM) and ``allergies``; negated findings, and problems
  the note is unsure of ("possible migraine"), are left out of these lists (they stay
  in ``findings``). A patient whose notes name nothing has no row.

Patients with a headache and an NSAID (ICD-10-CM's salicylates T39.0 and other NSAIDs
T39.3; see :mod:`multimodal.knowledge.drug_class` for which drugs it classes)::

    SELECT patient FROM patients WHERE list_contains(problem_codes, 'HP:0002315')
      AND len(list_filter(drug_class_codes, lambda c: c LIKE 'T39.0%' OR c LIKE 'T39.3%')) > 0

Only a single ``SELECT`` (``WITH`` included) is run; any other statement (COPY,
ATTACH, INSTALL, LOAD, SET, CREATE, PRAGMA ...) is refused before it runs. The
connection is in memory, with extension loading and installation off and file access
switched off except for the table itself (``enable_external_access = false`` with
``allowed_paths``, then the configuration locked), so a SELECT cannot read other files
either (``read_csv('/etc/passwd')`` is refused).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

from ..errors import CohortQueryError, InputError, MissingDataError, QueryRefusedError, require

PATIENTS = """
CREATE VIEW patients AS
SELECT coalesce(patient_id, note_id) AS patient,
       count(DISTINCT note_id) AS notes,
       coalesce(list(DISTINCT code ORDER BY code) FILTER (WHERE kind = 'problem' AND NOT negated
                AND NOT uncertain AND code IS NOT NULL), []) AS problem_codes,
       coalesce(list(DISTINCT icd10_code ORDER BY icd10_code) FILTER (WHERE kind = 'problem' AND NOT negated
                AND NOT uncertain AND icd10_code IS NOT NULL), []) AS icd10_codes,
       coalesce(list(DISTINCT concept ORDER BY concept) FILTER (WHERE kind = 'medication' AND NOT negated),
                []) AS medications,
       coalesce(list(DISTINCT drug_class_code ORDER BY drug_class_code) FILTER (WHERE kind = 'medication'
                AND NOT negated AND drug_class_code IS NOT NULL), []) AS drug_class_codes,
       coalesce(list(DISTINCT concept ORDER BY concept) FILTER (WHERE kind = 'allergy'), []) AS allergies
FROM findings GROUP BY 1
"""


def main(argv: list[str] | None = None) -> int:
    """``medany cohort TABLE "SQL"``: the command line of :func:`cohort`."""
    from ..cli_args import run_command

    return run_command(cohort, argv, prog="medany cohort", positional=("table", "sql"))


def cohort(table: str, sql: str, json: bool = False, csv: bool = False) -> int:
    """Answer a cohort question: one SQL SELECT over the views findings and patients of a findings table.

    Args:
        table: the findings table medany extract wrote (a .parquet file, or a folder of them)
        sql: one SELECT statement over the views findings and patients
        json: print the rows as a JSON list of objects
        csv: print the rows as CSV
    """
    try:
        columns, rows = query(table, sql)
    except InputError as exc:
        print(f"medany cohort: input problem: {exc}", file=sys.stderr)
        return 2
    if json:
        print(_json_rows(columns, rows))
    elif csv:
        sys.stdout.write(_csv_rows(columns, rows))
    else:
        print(_text_table(columns, rows))
    return 0


def connect(table: str | Path):
    """A DuckDB connection whose only data are the views ``findings`` and ``patients`` of ``table`` (locked down:
    see the module docstring)."""
    duckdb = require("duckdb")
    path = Path(table).resolve()
    if path.is_dir():
        files = sorted(path.glob("*.parquet"))
        allow = ("allowed_directories", [str(path) + "/"])
        source = str(path / "*.parquet")
    else:
        files = [path] if path.is_file() else []
        allow = ("allowed_paths", [str(path)])
        source = str(path)
    if not files:
        raise MissingDataError("No findings table there: give the .parquet file medany extract wrote.")
    con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False,
                                             "autoload_known_extensions": False})
    con.execute(f"SET {allow[0]} = ?", [allow[1]])
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    try:
        con.execute(f"CREATE VIEW findings AS SELECT * FROM read_parquet('{_quote(source)}')")
        con.execute("SELECT note_id, patient_id, kind, code, negated FROM findings LIMIT 0")
    except duckdb.Error as exc:
        con.close()
        raise InputError(f"That file is not a findings table ({type(exc).__name__}).", code="bad_table") from None
    con.execute(PATIENTS)
    return con


def check(con, sql: str) -> None:
    """Refuse ``sql`` unless it is exactly one SELECT statement (raises :class:`QueryRefusedError`)."""
    duckdb = require("duckdb")
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise CohortQueryError(_first_line(exc)) from None
    if len(statements) != 1:
        raise QueryRefusedError(f"Give one SQL statement (this has {len(statements)}).")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise QueryRefusedError(f"Only a SELECT is run here, not {kind.name}: the table is read-only.")


def query(table: str | Path, sql: str) -> tuple[list[str], list[tuple]]:
    """``(column names, rows)`` of the SELECT ``sql`` over ``table``'s views (see the module docstring)."""
    duckdb = require("duckdb")
    con = connect(table)
    try:
        check(con, sql)
        try:
            result = con.execute(sql)
            return [d[0] for d in result.description], result.fetchall()
        except duckdb.PermissionException:
            raise QueryRefusedError("The query reads or writes files; only the views findings and patients can "
                                    "be queried.") from None
        except duckdb.Error as exc:
            raise CohortQueryError(_first_line(exc)) from None
    finally:
        con.close()


def _quote(text: str) -> str:
    return text.replace("'", "''")


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _plain(value):
    """A cell as JSON / CSV / a terminal show it (dates and decimals as text, lists as lists)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def _json_rows(columns: list[str], rows: list[tuple]) -> str:
    return json.dumps([dict(zip(columns, map(_plain, r))) for r in rows], indent=1)


def _csv_rows(columns: list[str], rows: list[tuple]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    for r in rows:
        writer.writerow([json.dumps(v) if isinstance(v, (list, dict)) else v for v in map(_plain, r)])
    return buf.getvalue()


def _text_table(columns: list[str], rows: list[tuple]) -> str:
    cells = [columns] + [["" if v is None else ", ".join(map(str, v)) if isinstance(v, list) else str(v)
                          for v in map(_plain, r)] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines + [f"({len(rows)} row{'' if len(rows) == 1 else 's'})"])
