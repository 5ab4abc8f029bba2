"""The run record (``run_record.json``): one type, :class:`RunRecord`, built and written by
:meth:`starmix.workflows.runs.run.Run.finish` and read by :meth:`RunRecord.read`, nowhere
else.

A record holds the workflow's registered name, the run's label, its status, the command,
the settings (every option, grouped by option type), the timings of its steps in seconds,
the package versions, the workflow's own entries (data, selection, convergence, detection,
checks, ...; :attr:`RunRecord.details`) and the files the run wrote. Its ``schema`` entry
is its version:

- 1: records written before the entry existed (their ``workflow`` entry was the run's label,
  for the cluster workflow ``"<cluster> <model>"``);
- 2: ``schema``, ``workflow`` (the registered name) and ``label`` entries.

Reading a record of a version it does not know is a :class:`RunRecordError` naming it.
"""

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

SCHEMA = 2
KNOWN_SCHEMAS = (1, 2)
RECORD_NAME = "run_record.json"
FIXED = ("schema", "workflow", "label", "status", "command", "settings", "timings_s",
         "versions")
# schema 1 wrote the label in ``workflow``; these were the workflows' own names, and any
# other label was the cluster workflow's "<cluster> <model>"
SCHEMA_1_NAMES = ("outlier-line", "density", "ages")


class RunRecordError(ValueError):
    """A ``run_record.json`` that is not a starmix run record (or one of a version this
    starmix does not know): the message names the file and what is wrong."""


@dataclass
class RunRecord(Mapping):
    """A run's record. It reads like the JSON object it is written as (``record["status"]``,
    ``record.get("detection")``); :attr:`details` holds the workflow's own entries and
    :attr:`files` the label and path of every file the run wrote (the record included)."""

    workflow: str
    status: str
    files: dict[str, str]
    label: str = ""
    settings: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)
    timings_s: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    command: list = field(default_factory=list)
    schema: int = SCHEMA

    def to_dict(self) -> dict:
        """The JSON object written as ``run_record.json``."""
        return {"schema": self.schema, "workflow": self.workflow,
                "label": self.label or self.workflow, "status": self.status,
                "command": self.command, "settings": self.settings,
                "timings_s": self.timings_s, "versions": self.versions, **self.details,
                "files": {label: str(path) for label, path in self.files.items()}}

    def __getitem__(self, key):
        if key in self.details:  # the workflow's entries: most reads
            return self.details[key]
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())

    @classmethod
    def from_dict(cls, data, source: str = RECORD_NAME) -> "RunRecord":
        """The record of a JSON object read from ``source`` (named in errors): checks its
        version and that it has a workflow, a status and the files it lists."""
        def broken(what):
            return RunRecordError(f"{source} is not a starmix run record: {what}")

        if not isinstance(data, dict):
            raise broken(f"it holds a JSON {type(data).__name__}, not an object")
        schema = data.get("schema", 1)
        if schema not in KNOWN_SCHEMAS:
            raise RunRecordError(f"{source} is a run record of schema {schema!r}, which this "
                                 f"starmix does not know (it reads schemas "
                                 f"{', '.join(map(str, KNOWN_SCHEMAS))}); update starmix")
        files = data.get("files")
        if not isinstance(files, dict):
            raise broken("no 'files' entry")
        if not isinstance(data.get("status"), str):
            raise broken("no 'status' entry")
        if not isinstance(files.get("run_record"), str):
            raise broken("its 'files' entry does not list the run record itself")
        if not all(isinstance(name, str) for name in files.values()):
            raise broken("its 'files' entry holds something other than paths")
        workflow = data.get("workflow")
        if schema > 1 and not isinstance(workflow, str):
            raise broken("no 'workflow' entry")
        label = data.get("label", workflow if isinstance(workflow, str) else "")
        if schema == 1 and workflow not in SCHEMA_1_NAMES:
            workflow = "cluster"
        return cls(workflow=workflow, status=data["status"], files=dict(files), label=label,
                   settings=data.get("settings", {}),
                   details={key: value for key, value in data.items()
                            if key not in (*FIXED, "files")},
                   timings_s=data.get("timings_s", {}), versions=data.get("versions", {}),
                   command=data.get("command", []), schema=schema)

    @classmethod
    def read(cls, path: str | Path) -> "RunRecord":
        """The record in the file ``path`` (a ``RunRecordError`` if it is not one, an
        ``OSError`` if it cannot be read)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise RunRecordError(f"{path} is not a starmix run record: not valid JSON "
                                 f"({err})") from None
        return cls.from_dict(data, str(path))

    def files_beside(self, record_file: Path) -> dict[str, Path]:
        """The files the record lists, found beside ``record_file`` (their recorded folder
        may be another: the folder may have been moved); a ``RunRecordError`` for a file
        listed outside the run's folder."""
        recorded = Path(self.files["run_record"]).parent
        found = {}
        for label, name in self.files.items():
            try:
                relative = Path(name).relative_to(recorded)
            except ValueError:
                relative = None
            if relative is None or ".." in relative.parts:
                raise RunRecordError(f"{record_file} is not a starmix run record: 'files' lists "
                                     f"{name!r} ({label}), outside the run's folder")
            found[label] = Path(record_file).parent / relative
        return found
